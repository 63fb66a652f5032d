//! Services under the CODE_DEPLOY controller, through the real binary against the lab's CodeDeploy
//! (lab/codedeploy.py): deployed at Succeeded, CodeDeploy's own rollback followed, deployer's
//! StopDeployment on a failed gate and on SIGTERM, `--until` a lifecycle event, the smoke test at
//! a ready wait.

use crate::lab::{Lab, scenario, try_scenario};
use serde_json::Value;
use std::time::{Duration, Instant};

fn codedeploy_service(extra: &[&str]) -> Lab {
    let mut args = vec!["--controller", "CODE_DEPLOY"];
    args.extend_from_slice(extra);
    Lab::service(&args)
}

/// The newest CodeDeploy deployment of the service, as the lab tells it.
fn newest(lab: &Lab) -> Value {
    scenario(&[
        "codedeploy",
        "--cluster",
        &lab.cluster,
        "--service",
        &lab.service,
    ])
}

#[test]
fn a_codedeploy_service_is_deployed_through_codedeploy() {
    let lab = codedeploy_service(&[]);
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
        .says(&format!(
            "creating a CodeDeploy deployment in application `AppECS-{}-{}`",
            lab.cluster, lab.service
        ))
        .says("AllowTraffic 100% → green")
        .says("deployed: the new tasks are running and healthy");
    let new = run.result()["task_definition_arn"]
        .as_str()
        .expect("a new revision")
        .to_string();
    assert_eq!(lab.running_task_definition(), new);
    assert_eq!(newest(&lab)["status"], "Succeeded");
    assert!(
        !lab.writes()
            .iter()
            .any(|w| w["action"] == "ecs:UpdateService"),
        "a CODE_DEPLOY service is never sent UpdateService"
    );
}

#[test]
fn a_crashing_replacement_is_rolled_back_by_codedeploy_with_the_cause() {
    let lab = codedeploy_service(&["--auto-rollback"]);
    let image = lab.image("crash");
    lab.fault(
        &image,
        "exit",
        &["--exit-code", "3", "--log", "boom: no DATABASE_URL"],
    );
    let run = lab.deployer(&["deploy", "--image", &image, "--timeout", "60s"]);
    run.code(1)
        .says("exit code 3")
        .says("boom: no DATABASE_URL")
        .says("CodeDeploy");
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
}

#[test]
fn an_unhealthy_replacement_is_stopped_with_a_rollback() {
    let lab = codedeploy_service(&["--termination-wait-minutes", "30"]);
    let image = lab.image("sick");
    lab.fault(&image, "unhealthy", &[]);
    let run = lab.deployer(&["deploy", "--image", &image, "--timeout", "60s"]);
    run.code(1).says("unhealthy");
    assert_eq!(
        lab.running_task_definition(),
        lab.task_definition_arn,
        "{}",
        run.stderr
    );
}

#[test]
fn sigterm_stops_the_codedeploy_deployment_with_a_rollback() {
    let lab = codedeploy_service(&["--termination-wait-minutes", "60"]);
    let image = lab.image("v2");
    let child = lab.spawn(&["deploy", "--image", &image, "--timeout", "90s"]);
    // Wait until traffic is on the replacement (the termination wait holds the original); until
    // deployer has built, pushed and created the deployment, the lab has none for the service.
    let traffic_moved = || {
        try_scenario(&[
            "codedeploy",
            "--cluster",
            &lab.cluster,
            "--service",
            &lab.service,
        ])
        .ok()
        .and_then(|d| d["lifecycle_events"].as_array().cloned())
        .is_some_and(|events| {
            events
                .iter()
                .any(|e| e["lifecycleEventName"] == "AllowTraffic" && e["status"] == "Succeeded")
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !traffic_moved() {
        assert!(
            Instant::now() < deadline,
            "traffic never moved: {:?}",
            try_scenario(&[
                "codedeploy",
                "--cluster",
                &lab.cluster,
                "--service",
                &lab.service
            ])
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    let run = crate::lab::ended(child);
    run.code(130).says("StopDeployment");
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
}

#[test]
fn until_allow_traffic_returns_during_the_termination_wait() {
    let lab = codedeploy_service(&["--termination-wait-minutes", "60"]);
    let image = lab.image("v2");
    let started = Instant::now();
    let run = lab.deployer(&[
        "deploy",
        "--image",
        &image,
        "--until",
        "allowtraffic",
        "--timeout",
        "60s",
    ]);
    run.code(0).says("deployed");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "did not wait out the termination wait"
    );
    assert_eq!(
        newest(&lab)["status"],
        "InProgress",
        "CodeDeploy still holds the original"
    );
}

#[test]
fn the_smoke_test_runs_at_the_ready_wait() {
    let lab = codedeploy_service(&["--ready-wait", "--auto-rollback"]);
    let image = lab.image("v2");
    let check = r#"echo "testing $DEPLOYER_TEST_URL"; case "$DEPLOYER_TEST_URL" in http://*:8080) exit 0;; *) exit 9;; esac"#;
    lab.deployer(&[
        "deploy",
        "--image",
        &image,
        "--smoke-test",
        check,
        "--timeout",
        "60s",
    ])
    .code(0)
    .says("smoke> testing http://")
    .says("ContinueDeployment READY_WAIT")
    .says("deployed");
    assert_eq!(newest(&lab)["status"], "Succeeded");
    let broken = lab.image("v3");
    lab.deployer(&[
        "deploy",
        "--image",
        &broken,
        "--smoke-test",
        "echo cart 500; exit 2",
        "--timeout",
        "60s",
    ])
    .code(1)
    .says("the smoke test exited with code 2")
    .says("cart 500")
    .says("StopDeployment");
    assert_ne!(
        lab.running_task_definition(),
        lab.task_definition_arn,
        "still the first deploy's"
    );
}

#[test]
fn a_deployment_codedeploy_fails_before_traffic_moves_is_exit_1_with_the_original_serving() {
    // No auto-rollback, and a client-side limit high enough that CodeDeploy fails the crashing
    // replacement first (at Install): production never moved, so the service is where it was.
    let lab = codedeploy_service(&[]);
    let image = lab.image("crash-first");
    lab.fault(&image, "exit", &["--exit-code", "3"]);
    let run = lab.deployer(&[
        "deploy",
        "--image",
        &image,
        "--max-failed-tasks",
        "50",
        "--timeout",
        "60s",
        "--output",
        "json",
    ]);
    run.code(1)
        .says("before production traffic moved: the original task set still serves it");
    let result = run.result();
    assert_eq!(result["outcome"], "rolled_back");
    assert!(
        result.get("rollback").is_none(),
        "nothing was rolled back: {result}"
    );
    assert_eq!(newest(&lab)["status"], "Failed");
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
}

#[test]
fn a_stop_deployment_that_never_answers_ends_the_run_within_seconds_with_exit_3() {
    // SIGTERM, and CodeDeploy's StopDeployment hangs: CI kills a job about 10 s after its first
    // signal, so the call gets 10 s and the run ends saying the rollback did not happen.
    let lab = codedeploy_service(&["--termination-wait-minutes", "60"]);
    let image = lab.image("v2");
    let child = lab.spawn(&["deploy", "--image", &image, "--timeout", "90s"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let id = loop {
        let found = try_scenario(&[
            "codedeploy",
            "--cluster",
            &lab.cluster,
            "--service",
            &lab.service,
        ]);
        if let Some(id) = found
            .ok()
            .and_then(|d| d["deployment_id"].as_str().map(String::from))
        {
            break id;
        }
        assert!(Instant::now() < deadline, "no CodeDeploy deployment");
        std::thread::sleep(Duration::from_millis(100));
    };
    let hang = scenario(&[
        "api-fault",
        "--action",
        "StopDeployment",
        "--kind",
        "hang",
        "--count",
        "5",
        "--delay-ms",
        "60000",
        "--match",
        &id,
    ]);
    let signalled = Instant::now();
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    let run = crate::lab::ended(child);
    let ended = signalled.elapsed();
    eprintln!("exit {:?} after the signal", ended);
    run.code(3).says(&format!(
        "StopDeployment of CodeDeploy deployment {id} did not answer within 10 s"
    ));
    assert!(
        ended < Duration::from_secs(20),
        "a hanging StopDeployment held the run {ended:?} after the signal"
    );
    let hang = hang["id"].as_u64().expect("the fault's id").to_string();
    scenario(&["release", "--id", &hang]);
}
