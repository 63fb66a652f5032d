//! Deploys that succeed, and each fault the lab can inject ending with the right exit code, the
//! service back on the previous task definition, and the cause named in the output.

use crate::lab::{Lab, ended, run};
use std::time::Duration;

#[test]
fn healthy_rollout_is_deployed() {
    let lab = Lab::service(&[]);
    let image = lab.image("v2");
    let run = lab.deployer(&["deploy", "--image", &image, "--output", "json"]);
    run.code(0)
        .says("deployed: the new tasks are running and healthy");
    let result = run.result();
    assert_eq!(result["outcome"], "deployed");
    assert_eq!(
        result["previous_task_definition_arn"],
        lab.task_definition_arn.as_str()
    );
    let new = result["task_definition_arn"]
        .as_str()
        .expect("a new task definition");
    assert_ne!(new, lab.task_definition_arn);
    assert_eq!(lab.running_task_definition(), new);
    assert!(
        result["deployment_id"]
            .as_str()
            .is_some_and(|d| d.starts_with("ecs-svc/"))
    );
    assert!(result["duration_ms"].as_u64().is_some());
    assert!(
        result.get("rollback").is_none(),
        "nothing was rolled back: {result}"
    );
}

#[test]
fn crashing_container_is_rolled_back_with_exit_code_and_log_lines() {
    let lab = Lab::service(&[]);
    let image = lab.image("crash");
    lab.fault(
        &image,
        "exit",
        &[
            "--exit-code",
            "3",
            "--log",
            "connecting to db",
            "--log",
            "panic: db unreachable",
        ],
    );
    let run = lab.deployer(&["deploy", "--image", &image]);
    run.code(1)
        .says("2 of the new tasks stopped")
        .says("Essential container in task exited (EssentialContainerExited)")
        .says("container web: exit code 3")
        .says("| panic: db unreachable")
        .says("service events since the deploy began")
        .says("rolled back");
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
}

#[test]
fn image_that_cannot_be_pulled_is_rolled_back() {
    let lab = Lab::service(&[]);
    let image = lab.image("missing");
    lab.fault(&image, "cannot_pull", &[]);
    lab.deployer(&["deploy", "--image", &image])
        .code(1)
        .says("CannotPullContainerError")
        .says("TaskFailedToStart");
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
}

#[test]
fn unhealthy_target_is_rolled_back_with_the_elb_reason() {
    let lab = Lab::service(&[]);
    let image = lab.image("sick");
    lab.fault(&image, "unhealthy", &[]);
    lab.deployer(&["deploy", "--image", &image])
        .code(1)
        .says(": unhealthy (Target.ResponseCodeMismatch")
        .says("Target.ResponseCodeMismatch")
        .says("Health checks failed with these codes: [502]");
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
}

#[test]
fn tasks_stuck_pending_time_out_and_roll_back() {
    let lab = Lab::service(&[]);
    let image = lab.image("stuck");
    lab.fault(&image, "pending", &[]);
    lab.deployer(&["deploy", "--image", &image, "--timeout", "4s"])
        .code(1)
        .says("did not finish within 4s");
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
}

#[test]
fn circuit_breaker_rollback_is_a_failure_that_says_ecs_rolled_back() {
    let lab = Lab::service(&["--breaker", "rollback"]);
    let image = lab.image("breaker");
    lab.fault(&image, "exit", &["--exit-code", "137"]);
    // A high client-side limit lets ECS's own circuit breaker act first.
    let run = lab.deployer(&[
        "deploy",
        "--image",
        &image,
        "--max-failed-tasks",
        "50",
        "--output",
        "json",
    ]);
    run.code(1)
        .says("ECS marked the deployment FAILED")
        .says("circuit breaker")
        .says("ECS is rolling back");
    assert_eq!(run.result()["outcome"], "rolled_back");
    assert_eq!(
        run.result()["rollback"],
        "followed",
        "ECS rolled back, deployer watched"
    );
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
}

#[test]
fn deployment_alarm_rollback_is_a_failure() {
    let lab = Lab::service(&["--alarms", "rollback"]);
    let image = lab.image("alarm");
    lab.fault(&image, "alarm", &[]);
    let run = lab.deployer(&["deploy", "--image", &image, "--output", "json"]);
    run.code(1)
        .says("alarm(s) detected: web-5xx")
        .says("ECS is rolling back");
    assert_eq!(run.result()["outcome"], "rolled_back");
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
    // deployer followed ECS's rollback: its only UpdateService is the deploy's own (A7).
    let updates = lab
        .writes()
        .iter()
        .filter(|w| w["action"] == "ecs:UpdateService")
        .count();
    assert_eq!(updates, 1, "{:?}", lab.writes());
}

#[test]
fn no_rollback_leaves_the_service_and_exits_3() {
    let lab = Lab::service(&[]);
    let image = lab.image("crash-norollback");
    lab.fault(&image, "exit", &["--exit-code", "2"]);
    lab.deployer(&["deploy", "--image", &image, "--no-rollback"])
        .code(3)
        .says("--no-rollback");
    assert_ne!(lab.running_task_definition(), lab.task_definition_arn);
}

#[test]
fn throttling_storm_still_ends_deployed() {
    let lab = Lab::service(&[]);
    for (action, kind, count) in [
        ("DescribeServices", "throttle", "6"),
        ("ListTasks", "error5xx", "4"),
        ("DescribeTargetHealth", "throttle", "4"),
    ] {
        crate::lab::scenario(&[
            "api-fault",
            "--action",
            action,
            "--kind",
            kind,
            "--count",
            count,
            // Only this test's calls: tests share the lab, and their own reads must not be throttled.
            "--match",
            &lab.service,
        ]);
    }
    let image = lab.image("v2");
    let run = lab.deployer(&["deploy", "--image", &image, "--output", "json"]);
    run.code(0).says("deployed");
    // Every fault fired on this test's calls: the storm really happened (tests-audit A4).
    for (action, count) in [
        ("DescribeServices", 6),
        ("ListTasks", 4),
        ("DescribeTargetHealth", 4),
    ] {
        assert_eq!(
            crate::lab::api_fault_counts(&lab.service, action),
            (count, 0),
            "{action}: (fired, remaining)"
        );
    }
    assert_eq!(
        lab.running_task_definition(),
        run.result()["task_definition_arn"]
            .as_str()
            .expect("an ARN")
    );
    assert_eq!(lab.describe()["images"]["web"], image.as_str());
}

#[test]
fn slow_responses_still_end_deployed() {
    let lab = Lab::service(&[]);
    for action in ["DescribeServices", "DescribeTasks"] {
        crate::lab::scenario(&[
            "api-fault",
            "--action",
            action,
            "--kind",
            "delay",
            "--delay-ms",
            "700",
            "--count",
            "3",
            "--match",
            &lab.service,
        ]);
    }
    let image = lab.image("v2");
    let run = lab.deployer(&["deploy", "--image", &image, "--output", "json"]);
    run.code(0).says("deployed");
    // The delays fired on this test's calls (a deploy may end before the last DescribeTasks).
    for (action, at_least) in [("DescribeServices", 3), ("DescribeTasks", 1)] {
        let (fired, _) = crate::lab::api_fault_counts(&lab.service, action);
        assert!(fired >= at_least, "{action}: {fired} delays fired");
    }
    assert_eq!(
        lab.running_task_definition(),
        run.result()["task_definition_arn"]
            .as_str()
            .expect("an ARN")
    );
    assert_eq!(lab.describe()["images"]["web"], image.as_str());
}

#[test]
fn sigterm_while_watching_rolls_back_and_exits_130() {
    let lab = Lab::service(&[]);
    let image = lab.image("slow");
    lab.fault(&image, "pending", &[]);
    let child = lab
        .command(&["deploy", "--image", &image])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("deployer starts");
    // Wait until the service was updated, then cancel the way CI does.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !lab
        .writes()
        .iter()
        .any(|w| w["action"] == "ecs:UpdateService")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "deployer never updated the service"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    lab.wait_for_a_look_after_the_last_write();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let out = child.wait_with_output().expect("deployer ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(stderr.contains("rolling back to"), "{stderr}");
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
}

/// Starts `deployer deploy ARGS --output json`, waits for its UpdateService, then sends SIGTERM.
fn cancelled_after_update(lab: &Lab, args: &[&str]) -> std::process::Child {
    let mut cmd = lab.command(args);
    cmd.args(["--output", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().expect("deployer starts");
    wait_for_updates(lab, 1);
    lab.wait_for_a_look_after_the_last_write();
    signal(&child, "-TERM");
    child
}

/// Waits for `count` writes to the service: the deploy's UpdateService, then the rollback's call
/// (StopServiceDeployment on a rolling update, or UpdateService).
fn wait_for_updates(lab: &Lab, count: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while rollout_writes(lab).len() < count {
        assert!(
            std::time::Instant::now() < deadline,
            "deployer never made write #{count} to the service: {:?}",
            rollout_writes(lab)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn signal(child: &std::process::Child, which: &str) {
    let status = std::process::Command::new("kill")
        .args([which, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// A service whose own image can no longer start (so a rollback to it never gets healthy).
fn service_whose_rollback_cannot_finish() -> Lab {
    let previous = format!("registry.lab/app:prev-{}", crate::lab::unique("t"));
    let lab = Lab::service(&["--image", &previous]);
    lab.fault(&previous, "pending", &[]);
    lab
}

/// R12: a signal whose rollback does not complete is exit 3 with the reason, never 130.
#[test]
fn sigterm_with_a_rollback_that_cannot_finish_exits_3() {
    let lab = service_whose_rollback_cannot_finish();
    let image = lab.image("stuck-too");
    lab.fault(&image, "pending", &[]);
    let started = std::time::Instant::now();
    let run = ended(cancelled_after_update(
        &lab,
        &["deploy", "--image", &image, "--timeout", "8s"],
    ));
    run.code(3)
        .says("interrupted")
        .says("rolling back to")
        .says("did not complete");
    let result = run.result();
    assert_eq!(result["outcome"], "rollback_failed");
    let reason = result["reason"].as_str().expect("a reason");
    assert!(
        reason.starts_with("interrupted by a signal while watching; the rollback to")
            && reason.contains("did not complete"),
        "{reason}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    // deployer did start the rollback (StopServiceDeployment: ECS rolls back to the recorded revision).
    wait_for_updates(&lab, 2);
}

/// README: a second signal stops the waiting for the rollback; ECS goes on with it (exit 130).
#[test]
fn a_second_signal_stops_waiting_for_the_rollback() {
    let lab = service_whose_rollback_cannot_finish();
    let image = lab.image("stuck-again");
    lab.fault(&image, "pending", &[]);
    let child = cancelled_after_update(&lab, &["deploy", "--image", &image]);
    // The rollback's call, then the second signal while deployer waits for the rollback.
    wait_for_updates(&lab, 2);
    lab.wait_for_a_look_after_the_last_write();
    let stopped = std::time::Instant::now();
    signal(&child, "-INT");
    let run = ended(child);
    run.code(130).says("interrupted");
    assert_eq!(run.result()["outcome"], "interrupted");
    assert!(
        stopped.elapsed() < Duration::from_secs(10),
        "the second signal took {:?} to stop the wait",
        stopped.elapsed()
    );
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
}

#[test]
fn rollback_command_returns_to_the_named_task_definition() {
    let lab = Lab::service(&[]);
    let image = lab.image("v2");
    lab.deployer(&["deploy", "--image", &image]).code(0);
    assert_ne!(lab.running_task_definition(), lab.task_definition_arn);
    let run = lab.deployer(&[
        "rollback",
        "--to",
        &lab.task_definition_arn,
        "--output",
        "json",
    ]);
    run.code(0);
    assert_eq!(
        run.result()["task_definition_arn"],
        lab.task_definition_arn.as_str()
    );
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
}

#[test]
fn rollback_command_finds_the_previous_successful_deployment_in_the_history() {
    let lab = Lab::service(&[]);
    let v2 = lab.deployer(&["deploy", "--image", &lab.image("v2"), "--output", "json"]);
    v2.code(0);
    let v2 = v2.result()["task_definition_arn"]
        .as_str()
        .unwrap()
        .to_string();
    lab.deployer(&["deploy", "--image", &lab.image("v3")])
        .code(0);
    // ECS now lists only the v3 deployment; the history says v2 ran before it.
    let run = lab.deployer(&["rollback", "--output", "json"]);
    run.code(0).says(&format!(
        "the last COMPLETED deployment before the current one ran {v2}"
    ));
    assert_eq!(lab.running_task_definition(), v2);
}

#[test]
fn wait_for_idle_waits_for_the_other_deployment() {
    let lab = Lab::service(&[]);
    crate::lab::scenario(&[
        "update",
        "--cluster",
        &lab.cluster,
        "--service",
        &lab.service,
        "--image",
        &lab.image("theirs"),
    ]);
    let image = lab.image("ours");
    lab.deployer(&[
        "deploy",
        "--image",
        &image,
        "--wait-for-idle",
        "--timeout",
        "60s",
    ])
    .code(0)
    .says("--wait-for-idle");
    // Our UpdateService came after their deployment COMPLETED, and ours is what runs (A5).
    let timeline = crate::lab::lab_get("/_lab/timeline");
    let events = timeline.as_array().expect("a timeline");
    let of_ours = |e: &&serde_json::Value| e["service"] == lab.service.as_str();
    let ours = lab.running_task_definition();
    let theirs_created = events
        .iter()
        .filter(of_ours)
        .find(|e| {
            e["what"] == "deployment_created"
                && e["task_definition"] != lab.task_definition_arn.as_str()
                && e["task_definition"] != ours.as_str()
        })
        .expect("their deployment was created");
    let theirs_completed = events
        .iter()
        .filter(of_ours)
        .find(|e| {
            e["what"] == "rollout_completed" && e["deployment"] == theirs_created["deployment"]
        })
        .expect("their deployment COMPLETED");
    let our_update = events
        .iter()
        .filter(of_ours)
        .rfind(|e| e["what"] == "api_write" && e["action"] == "UpdateService")
        .expect("our UpdateService");
    assert!(
        our_update["t"].as_f64() > theirs_completed["t"].as_f64(),
        "our UpdateService {our_update} came before theirs completed {theirs_completed}"
    );
    assert_eq!(lab.describe()["images"]["web"], image.as_str());
}

#[test]
fn env_flag_changes_the_variable_and_keeps_the_rest() {
    let lab = Lab::service(&[]);
    let run = lab.deployer(&[
        "deploy",
        "--env",
        "web:GREETING=bonjour",
        "--env",
        "web:NEW_SECRET=s3cret",
        "--output",
        "json",
    ]);
    run.code(0)
        .says("~ containerDefinitions.web.environment.GREETING (value hidden)");
    assert!(
        !run.stderr.contains("s3cret") && !run.stdout.contains("s3cret"),
        "a value was shown"
    );
    // The registered revision: the variable changed, the new one added, nothing else (A6).
    let env = lab.environment("web");
    let expected = serde_json::json!({"GREETING": "bonjour", "NEW_SECRET": "s3cret"});
    assert_eq!(serde_json::Value::Object(env), expected);
    assert_eq!(
        lab.running_task_definition(),
        run.result()["task_definition_arn"]
            .as_str()
            .expect("an ARN")
    );
}

/// A run with nothing in it must not leave the lab unreachable for the binary.
#[test]
fn missing_endpoint_is_an_error_not_a_hang() {
    let lab = Lab::service(&[]);
    let mut cmd = lab.command(&["status"]);
    cmd.env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_MAX_ATTEMPTS", "1");
    let run = run(cmd);
    run.code(2).says("failed to describe service");
}

/// ECS reads are eventually consistent: right after UpdateService, DescribeServices may still show
/// the service as it was. A read that does not show our new deployment yet is not "ECS rolled back".
#[test]
fn a_stale_read_right_after_the_update_is_not_taken_for_a_rollback() {
    let lab = Lab::service(&[]);
    let image = lab.image("v2");
    // The first three reads of the service after the update answer from before it: armed now, the
    // fault waits for the write (no race with the run's pace).
    crate::lab::scenario(&[
        "api-fault",
        "--action",
        "DescribeServices",
        "--kind",
        "stale",
        "--count",
        "3",
        "--after-write",
        "--match",
        &lab.service,
    ]);
    let child = lab
        .command(&[
            "deploy",
            "--image",
            &image,
            "--output",
            "json",
            "--timeout",
            "90s",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("deployer starts");
    let run = ended(child);
    run.code(0)
        .says("deployed: the new tasks are running and healthy");
    let faults = crate::lab::scenario(&["api-faults"]);
    let stale = faults
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|f| f["kind"] == "stale" && f["match"].to_string().contains(&lab.service))
        })
        .cloned()
        .expect("the stale fault is listed");
    assert_eq!(stale["fired"], 3, "every stale read fired: {stale}");
    assert_eq!(
        lab.running_task_definition(),
        run.result()["task_definition_arn"]
            .as_str()
            .expect("a new revision")
    );
}

/// UpdateService and StopServiceDeployment calls naming the lab's service, in order.
fn rollout_writes(lab: &Lab) -> Vec<String> {
    lab.writes()
        .iter()
        .filter_map(|w| w["action"].as_str())
        .filter(|a| *a == "ecs:UpdateService" || *a == "ecs:StopServiceDeployment")
        .map(String::from)
        .collect()
}

/// Issue 14: a rolling update in flight is rolled back by ECS (StopServiceDeployment ROLLBACK),
/// which deployer follows to the recorded revision. The lab answers the stop at once and starts
/// ECS's rollback deployment a second later, as AWS only records the request: until then our own
/// deployment is still PRIMARY and must not be taken for the rollback.
#[test]
fn a_rolling_update_is_rolled_back_by_ecs_with_stop_service_deployment() {
    let lab = Lab::service(&[]);
    let image = lab.image("crash-stop");
    lab.fault(&image, "exit", &["--exit-code", "2"]);
    let run = lab.deployer(&["deploy", "--image", &image, "--output", "json"]);
    run.code(1)
        .says("(StopServiceDeployment ROLLBACK)")
        .says(&format!(
            "ECS is rolling back to {}",
            lab.task_definition_arn
        ))
        .says(&format!("runs {} again, healthy", lab.task_definition_arn));
    assert!(
        !run.stderr.contains("UpdateService instead"),
        "{}",
        run.stderr
    );
    assert_eq!(
        rollout_writes(&lab),
        ["ecs:UpdateService", "ecs:StopServiceDeployment"],
        "the update, then ECS's rollback and no second UpdateService"
    );
    assert_eq!(run.result()["outcome"], "rolled_back");
    assert_eq!(run.result()["rollback"], "StopServiceDeployment");
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
}

/// Issue 14: where ECS does not accept StopServiceDeployment (here the role may not call it:
/// AccessDenied), the rollback is an UpdateService to the recorded revision, and the output says so.
#[test]
fn a_refused_stop_service_deployment_falls_back_to_update_service() {
    let lab = Lab::service(&[]);
    let image = lab.image("crash-denied");
    lab.fault(&image, "exit", &["--exit-code", "2"]);
    crate::lab::scenario(&[
        "api-fault",
        "--action",
        "StopServiceDeployment",
        "--kind",
        "denied",
        "--match",
        &lab.service,
    ]);
    let run = lab.deployer(&["deploy", "--image", &image, "--output", "json"]);
    run.code(1)
        .says("(StopServiceDeployment ROLLBACK)")
        .says("AccessDenied")
        .says("rolling back with UpdateService instead")
        .says(&format!(
            "rolling back to {} (UpdateService)",
            lab.task_definition_arn
        ));
    assert_eq!(
        crate::lab::api_fault_counts(&lab.service, "StopServiceDeployment"),
        (1, 0),
        "the stop was tried once and refused"
    );
    assert_eq!(
        rollout_writes(&lab),
        [
            "ecs:UpdateService",
            "ecs:StopServiceDeployment",
            "ecs:UpdateService"
        ]
    );
    assert_eq!(run.result()["rollback"], "UpdateService");
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
}
