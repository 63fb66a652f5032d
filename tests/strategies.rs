//! BLUE_GREEN, LINEAR and CANARY services (ECS-native deployments with lifecycle stages), through the
//! real binary against the lab's stage machine: each strategy's happy path, the faults ECS and
//! deployer roll back from, SIGTERM mid-shift, `--until`, the smoke-test gate, and refusals.

use crate::lab::{Lab, Run, ended, scenario, try_scenario};
use serde_json::Value;
use std::time::{Duration, Instant};

/// A staged service: `strategy` with `extra` scenario options (bake minutes are lab seconds).
fn staged(strategy: &str, extra: &[&str]) -> Lab {
    let mut args = vec!["--strategy", strategy];
    args.extend_from_slice(extra);
    Lab::service(&args)
}

/// What the lab says of the service's current service deployment.
fn service_deployment(lab: &Lab) -> Value {
    scenario(&[
        "service-deployment",
        "--cluster",
        &lab.cluster,
        "--service",
        &lab.service,
    ])
}

/// Waits (up to 60 s) until the lab's service deployment is in `stage`, or later.
#[track_caller]
fn wait_for_stage(lab: &Lab, stages: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // Until deployer has built, pushed and updated the service, the lab may have no service
        // deployment to show.
        let sd = try_scenario(&[
            "service-deployment",
            "--cluster",
            &lab.cluster,
            "--service",
            &lab.service,
        ]);
        if let Ok(sd) = &sd
            && stages.iter().any(|s| sd["stage"] == *s)
            && sd["status"] == "IN_PROGRESS"
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never reached {stages:?}: {sd:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn writes_of(lab: &Lab, action: &str) -> usize {
    lab.writes()
        .iter()
        .filter(|w| w["action"] == action)
        .count()
}

#[test]
fn blue_green_is_deployed_when_ecs_says_successful() {
    let lab = staged("BLUE_GREEN", &["--bake-minutes", "1"]);
    let image = lab.image("v2");
    let run = lab.deployer(&[
        "deploy",
        "--image",
        &image,
        "--output",
        "json",
        "--timeout",
        "60s",
    ]);
    run.code(0)
        .says("deploys as: blue/green, bake 1 min, alternate target group")
        .says("PRODUCTION_TRAFFIC_SHIFT 100% → green")
        .says("deployed: the new tasks are running and healthy");
    let result = run.result();
    let new = result["task_definition_arn"]
        .as_str()
        .expect("a new revision");
    assert_eq!(lab.running_task_definition(), new);
    let sd = service_deployment(&lab);
    assert_eq!(sd["status"], "SUCCESSFUL");
    assert_eq!(
        result["service_deployment_arn"],
        sd["service_deployment_arn"]
    );
    // The stages as JSON events, in ECS's order.
    let stages: Vec<String> = run
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == "stage")
        .map(|v| v["stage"].as_str().unwrap_or_default().to_string())
        .collect();
    let at = |s: &str| stages.iter().position(|x| x == s);
    assert!(
        at("SCALE_UP") < at("PRODUCTION_TRAFFIC_SHIFT"),
        "{stages:?}"
    );
    assert!(
        at("PRODUCTION_TRAFFIC_SHIFT") < at("BAKE_TIME"),
        "{stages:?}"
    );
}

#[test]
fn linear_and_canary_are_deployed_step_by_step() {
    for (strategy, extra) in [
        (
            "LINEAR",
            &["--step-percent", "50", "--step-bake-minutes", "1"][..],
        ),
        (
            "CANARY",
            &["--canary-percent", "20", "--canary-bake-minutes", "1"][..],
        ),
    ] {
        let mut args = extra.to_vec();
        args.extend(["--bake-minutes", "1"]);
        let lab = staged(strategy, &args);
        let image = lab.image("v2");
        let run = lab.deployer(&["deploy", "--image", &image, "--timeout", "60s"]);
        let first = if strategy == "LINEAR" { "50" } else { "20" };
        run.code(0)
            .says(&format!("PRODUCTION_TRAFFIC_SHIFT {first}% → green"))
            .says("deployed: the new tasks are running and healthy");
        assert_eq!(
            service_deployment(&lab)["status"],
            "SUCCESSFUL",
            "{strategy}"
        );
        assert_ne!(
            lab.running_task_definition(),
            lab.task_definition_arn,
            "{strategy}"
        );
    }
}

#[test]
fn crashing_green_tasks_are_rolled_back_by_ecs_and_exit_1() {
    let lab = staged(
        "BLUE_GREEN",
        &["--bake-minutes", "1", "--breaker", "rollback"],
    );
    let image = lab.image("crash");
    lab.fault(
        &image,
        "exit",
        &["--exit-code", "3", "--log", "boom: no DATABASE_URL"],
    );
    let started = Instant::now();
    let run = lab.deployer(&["deploy", "--image", &image, "--timeout", "60s"]);
    run.code(1)
        .says("exit code 3")
        .says("boom: no DATABASE_URL");
    assert!(started.elapsed() < Duration::from_secs(30), "failed fast");
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
    let sd = service_deployment(&lab);
    assert_eq!(sd["status"], "ROLLBACK_SUCCESSFUL", "{sd}");
    // Production traffic never left blue.
    let weights = sd["production_weights"].as_object().expect("weights");
    assert!(
        weights
            .iter()
            .any(|(tg, w)| tg.contains("-tg1/") && *w == 100),
        "{sd}"
    );
}

#[test]
fn unhealthy_green_targets_end_the_watch_with_ecs_rolling_back() {
    let lab = staged("BLUE_GREEN", &["--bake-minutes", "1"]);
    let image = lab.image("sick");
    lab.fault(&image, "unhealthy", &[]);
    let run = lab.deployer(&["deploy", "--image", &image, "--timeout", "60s"]);
    run.code(1)
        .says("unhealthy")
        .says("StopServiceDeployment ROLLBACK")
        .says("the previous revision serves traffic again");
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
    assert_eq!(service_deployment(&lab)["status"], "ROLLBACK_SUCCESSFUL");
    assert_eq!(
        writes_of(&lab, "ecs:UpdateService"),
        1,
        "ECS rolled back, not a second deploy"
    );
}

#[test]
fn sigterm_during_the_traffic_shift_rolls_back_through_ecs_within_a_second() {
    let lab = staged("BLUE_GREEN", &["--bake-minutes", "30"]);
    let image = lab.image("v2");
    let child = lab.spawn(&["deploy", "--image", &image, "--timeout", "90s"]);
    wait_for_stage(&lab, &["BAKE_TIME"]);
    let signalled = Instant::now();
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    // ECS is asked to roll back within about a second of the signal.
    while !service_deployment(&lab)["status"]
        .as_str()
        .is_some_and(|s| s.starts_with("ROLLBACK"))
    {
        assert!(
            signalled.elapsed() < Duration::from_secs(2),
            "ECS was not asked to roll back within 2 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let asked = signalled.elapsed();
    let run = ended(child);
    run.code(130)
        .says("interrupted")
        .says("StopServiceDeployment ROLLBACK");
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
    assert_eq!(service_deployment(&lab)["status"], "ROLLBACK_SUCCESSFUL");
    eprintln!("signal to ROLLBACK_REQUESTED in the lab: {asked:?}");
}

#[test]
fn until_bake_time_returns_while_ecs_bakes() {
    let lab = staged("BLUE_GREEN", &["--bake-minutes", "60"]);
    let image = lab.image("v2");
    let started = Instant::now();
    let run = lab.deployer(&[
        "deploy",
        "--image",
        &image,
        "--until",
        "bake_time",
        "--output",
        "json",
        "--timeout",
        "60s",
    ]);
    run.code(0).says("deployed");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "did not wait out a 60 s bake"
    );
    assert_eq!(run.result()["stage"], "BAKE_TIME");
    let sd = service_deployment(&lab);
    assert_eq!(sd["status"], "IN_PROGRESS", "ECS still bakes: {sd}");
    assert_eq!(sd["stage"], "BAKE_TIME");
}

#[test]
fn a_passing_smoke_test_lets_the_deployment_go_on() {
    let lab = staged(
        "BLUE_GREEN",
        &[
            "--bake-minutes",
            "1",
            "--pause-hook",
            "POST_TEST_TRAFFIC_SHIFT",
        ],
    );
    let image = lab.image("v2");
    let check = r#"echo "testing $DEPLOYER_TEST_URL (production $DEPLOYER_PRODUCTION_URL)"; case "$DEPLOYER_TEST_URL" in http://*:8080) exit 0;; *) exit 9;; esac"#;
    let run = lab.deployer(&[
        "deploy",
        "--image",
        &image,
        "--smoke-test",
        check,
        "--timeout",
        "60s",
    ]);
    run.code(0)
        .says("smoke> testing http://")
        .says(":8080 (production http://")
        .says("smoke test passed")
        .says("deployed: the new tasks are running and healthy");
    assert_eq!(service_deployment(&lab)["status"], "SUCCESSFUL");
}

#[test]
fn a_failing_smoke_test_rolls_back_from_the_hook_with_its_output() {
    let lab = staged(
        "BLUE_GREEN",
        &[
            "--bake-minutes",
            "1",
            "--pause-hook",
            "POST_TEST_TRAFFIC_SHIFT",
        ],
    );
    let image = lab.image("v2");
    let run = lab.deployer(&[
        "deploy",
        "--image",
        &image,
        "--smoke-test",
        "echo checkout page 500; exit 3",
        "--timeout",
        "60s",
    ]);
    run.code(1)
        .says("the smoke test exited with code 3")
        .says("checkout page 500")
        .says("ContinueServiceDeployment ROLLBACK");
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
    assert_eq!(service_deployment(&lab)["status"], "ROLLBACK_SUCCESSFUL");
}

#[test]
fn a_newer_deployment_supersedes_ours_exit_3_without_a_rollback() {
    let lab = staged("BLUE_GREEN", &["--bake-minutes", "30"]);
    let ours = lab.image("ours");
    let child = lab.spawn(&["deploy", "--image", &ours, "--timeout", "60s"]);
    wait_for_stage(&lab, &["BAKE_TIME"]);
    let theirs = lab.image("theirs");
    scenario(&[
        "update",
        "--cluster",
        &lab.cluster,
        "--service",
        &lab.service,
        "--image",
        &theirs,
    ]);
    let run = ended(child);
    run.code(3).says("replaced ours");
    assert_eq!(
        writes_of(&lab, "ecs:StopServiceDeployment"),
        0,
        "never undo their deploy"
    );
}

#[test]
fn what_a_staged_service_cannot_do_is_refused_before_any_write() {
    let rolling = Lab::service(&[]);
    let image = rolling.image("v2");
    rolling
        .deployer(&["deploy", "--image", &image, "--until", "BAKE_TIME"])
        .code(2)
        .says("--until needs a BLUE_GREEN, LINEAR or CANARY service");
    rolling.assert_no_writes();
    rolling
        .deployer(&["deploy", "--image", &image, "--until", "SOON"])
        .code(2)
        .says("invalid --until `SOON`");
    let no_hook = staged("BLUE_GREEN", &["--bake-minutes", "1"]);
    let image = no_hook.image("v2");
    no_hook
        .deployer(&["deploy", "--image", &image, "--smoke-test", "true"])
        .code(2)
        .says("--smoke-test needs a PAUSE lifecycle hook at POST_TEST_TRAFFIC_SHIFT");
    no_hook.assert_no_writes();
}

#[test]
fn rollback_command_rolls_back_a_deployment_waiting_at_a_pause_hook() {
    let lab = staged(
        "BLUE_GREEN",
        &[
            "--bake-minutes",
            "1",
            "--pause-hook",
            "POST_TEST_TRAFFIC_SHIFT",
            "--hook-timeout-minutes",
            "120",
        ],
    );
    let image = lab.image("v2");
    // Somebody's deploy that stops at the hook (deployer's own watch gives up at its timeout).
    let child = lab.spawn(&["deploy", "--image", &image, "--timeout", "60s"]);
    wait_for_stage(&lab, &["POST_TEST_TRAFFIC_SHIFT"]);
    let run = lab.deployer(&["rollback", "--timeout", "30s"]);
    run.code(0).says("ContinueServiceDeployment ROLLBACK");
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
    assert_eq!(service_deployment(&lab)["status"], "ROLLBACK_SUCCESSFUL");
    let deploy = ended(child);
    assert_eq!(
        deploy.code, 1,
        "the deploy sees ECS roll back: {}",
        deploy.stderr
    );
}

#[test]
fn status_shows_a_waiting_pause_hook_and_continue_lets_the_deployment_finish() {
    let lab = staged(
        "BLUE_GREEN",
        &[
            "--bake-minutes",
            "1",
            "--pause-hook",
            "POST_TEST_TRAFFIC_SHIFT",
            "--hook-timeout-minutes",
            "120",
        ],
    );
    let image = lab.image("v2");
    let child = lab.spawn(&["deploy", "--image", &image, "--timeout", "60s"]);
    wait_for_stage(&lab, &["POST_TEST_TRAFFIC_SHIFT"]);
    lab.deployer(&["status"])
        .code(0)
        .says("service deployment arn:")
        .says("POST_TEST_TRAFFIC_SHIFT")
        .says("PAUSE hook ecs-pause-");
    lab.deployer(&["continue", "--timeout", "30s"])
        .code(0)
        .says("ContinueServiceDeployment CONTINUE")
        .says("deployed");
    assert_eq!(service_deployment(&lab)["status"], "SUCCESSFUL");
    ended(child)
        .code(0)
        .says("deployed: the new tasks are running and healthy");
    // Nothing waits any more: continue refuses, with nothing changed.
    lab.deployer(&["continue"])
        .code(2)
        .says("has no deployment waiting at a PAUSE hook");
}

#[test]
fn an_update_answer_without_the_service_deployment_is_followed_through_the_listing() {
    let lab = staged("BLUE_GREEN", &["--bake-minutes", "1"]);
    scenario(&["hide-current-deployment", "--service", &lab.service]);
    let image = lab.image("v2");
    let run = lab.deployer(&[
        "deploy",
        "--image",
        &image,
        "--timeout",
        "60s",
        "--output",
        "json",
    ]);
    run.code(0)
        .says("service deployment arn:")
        .says("PRODUCTION_TRAFFIC_SHIFT 100% → green");
    let found = run.result()["service_deployment_arn"].clone();
    let all = crate::lab::lab_get(&format!(
        "/_lab/service-deployments?service={}",
        lab.service
    ));
    let ours = all
        .as_array()
        .and_then(|all| all.iter().find(|d| d["serviceDeploymentArn"] == found))
        .unwrap_or_else(|| panic!("{found} is not one of the service's deployments: {all}"));
    assert_eq!(
        ours["status"], "SUCCESSFUL",
        "found by ListServiceDeployments"
    );
}

#[test]
fn an_alarm_during_the_bake_is_rolled_back_by_ecs_and_exits_1() {
    let lab = staged(
        "BLUE_GREEN",
        &["--bake-minutes", "4", "--alarms", "rollback"],
    );
    let image = lab.image("noisy");
    lab.fault(&image, "alarm", &[]);
    let run = lab.deployer(&["deploy", "--image", &image, "--timeout", "60s"]);
    run.code(1)
        .says("BAKE_TIME")
        .says("alarm")
        .says("the previous revision serves traffic again");
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
    assert_eq!(service_deployment(&lab)["status"], "ROLLBACK_SUCCESSFUL");
}

#[test]
fn a_failing_lifecycle_hook_is_rolled_back_by_ecs_and_exits_1() {
    let lab = staged(
        "BLUE_GREEN",
        &["--bake-minutes", "1", "--lambda-hook", "POST_SCALE_UP"],
    );
    scenario(&["hook-fault", "--target", &lab.service, "--kind", "fail"]);
    let image = lab.image("v2");
    let run = lab.deployer(&["deploy", "--image", &image, "--timeout", "60s"]);
    run.code(1)
        .says("POST_SCALE_UP")
        .says("the previous revision serves traffic again");
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
    assert_eq!(service_deployment(&lab)["status"], "ROLLBACK_SUCCESSFUL");
}

#[test]
fn a_lifecycle_hook_that_times_out_is_rolled_back_by_ecs_and_exits_1() {
    // A Lambda hook that never answers times out after timeoutInMinutes (lab: 2 s) with its
    // timeout action ROLLBACK: ECS rolls back, and deployer says which hook, at which stage.
    let lab = staged(
        "BLUE_GREEN",
        &[
            "--bake-minutes",
            "1",
            "--lambda-hook",
            "POST_SCALE_UP",
            "--hook-timeout-minutes",
            "2",
        ],
    );
    scenario(&["hook-fault", "--target", &lab.service, "--kind", "timeout"]);
    let image = lab.image("v2");
    let run = lab.deployer(&["deploy", "--image", &image, "--timeout", "60s"]);
    run.code(1)
        .says("POST_SCALE_UP")
        .says("timed out")
        .says("the previous revision serves traffic again");
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
    assert_eq!(service_deployment(&lab)["status"], "ROLLBACK_SUCCESSFUL");
    assert_eq!(
        writes_of(&lab, "ecs:UpdateService"),
        1,
        "ECS's rollback, not ours"
    );
}

/// A deploy that someone stops (`stop_type` ROLLBACK or ABORT) from the console once it bakes.
fn stopped_mid_bake(lab: &Lab, stop_type: &str) -> Run {
    let image = lab.image("v2");
    let child = lab.spawn(&["deploy", "--image", &image, "--timeout", "90s"]);
    wait_for_stage(lab, &["BAKE_TIME"]);
    let (cluster, service) = (lab.cluster.as_str(), lab.service.as_str());
    scenario(&[
        "stop-service-deployment",
        "--cluster",
        cluster,
        "--service",
        service,
        "--stop-type",
        stop_type,
    ]);
    ended(child)
}

#[test]
fn a_users_own_stop_with_rollback_ends_the_watch_with_exit_1_and_no_second_rollback() {
    // Someone stops our deployment from the console while it bakes: ECS rolls it back, and the
    // watch ends on that with the reason ECS gives, without a rollback of its own on top.
    let lab = staged("BLUE_GREEN", &["--bake-minutes", "30"]);
    let run = stopped_mid_bake(&lab, "ROLLBACK");
    run.code(1)
        .says("stop requested")
        .says("the previous revision serves traffic again");
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
    assert_eq!(service_deployment(&lab)["status"], "ROLLBACK_SUCCESSFUL");
    assert_eq!(
        writes_of(&lab, "ecs:StopServiceDeployment"),
        1,
        "the user's stop only"
    );
    assert_eq!(
        writes_of(&lab, "ecs:UpdateService"),
        1,
        "no rollback on top"
    );
}

#[test]
fn a_users_abort_leaves_ours_stopped_and_deployer_restores_the_previous_revision() {
    // ABORT stops the deployment where it is (green serving, no rollback): deployer puts the
    // recorded revision back with UpdateService and watches that to the end.
    let lab = staged("BLUE_GREEN", &["--bake-minutes", "8"]);
    let run = stopped_mid_bake(&lab, "ABORT");
    run.code(1)
        .says("(StopServiceDeployment ABORT)")
        .says(&format!(
            "rolling back to {} (UpdateService)",
            lab.task_definition_arn
        ))
        .says(&format!("runs {} again, healthy", lab.task_definition_arn));
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
    assert_eq!(
        writes_of(&lab, "ecs:UpdateService"),
        2,
        "ours, then the restore"
    );
}

#[test]
fn a_refused_stop_of_a_staged_deployment_falls_back_to_update_service() {
    // The role may not call StopServiceDeployment: a failure mid-bake puts the recorded revision
    // back with UpdateService (a new blue/green deployment of it) instead of ending not back.
    let lab = staged("BLUE_GREEN", &["--bake-minutes", "30"]);
    scenario(&[
        "api-fault",
        "--action",
        "StopServiceDeployment",
        "--kind",
        "denied",
        "--match",
        &lab.service,
    ]);
    let image = lab.image("v2");
    let child = lab.spawn(&[
        "deploy",
        "--image",
        &image,
        "--timeout",
        "90s",
        "--output",
        "json",
    ]);
    wait_for_stage(&lab, &["BAKE_TIME"]);
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    let run = ended(child);
    run.code(130)
        .says("(StopServiceDeployment ROLLBACK)")
        .says("AccessDenied")
        .says("rolling back with UpdateService instead")
        .says(&format!(
            "rolling back to {} (UpdateService)",
            lab.task_definition_arn
        ));
    assert_eq!(run.result()["rollback"], "UpdateService");
    assert_eq!(
        writes_of(&lab, "ecs:UpdateService"),
        2,
        "ours, then the restore"
    );
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
}
