//! Races and lost answers (issue 13 items 5, 8, 9): slow and reordered reads at COMPLETED, someone
//! else's deploy between pre-flight and UpdateService, writes whose answer is lost, a one-off task
//! DescribeTasks does not know yet.

use crate::lab::{Lab, Run, scenario};
use serde_json::Value;
use std::io::Read;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Arms a lab API fault; returns its id.
fn api_fault(action: &str, kind: &str, extra: &[&str]) -> u64 {
    let mut args = vec!["api-fault", "--action", action, "--kind", kind];
    args.extend_from_slice(extra);
    scenario(&args)["id"].as_u64().expect("the fault's id")
}

/// How often the fault `id` fired so far.
fn fired(id: u64) -> u64 {
    let faults = scenario(&["api-faults"]);
    faults
        .as_array()
        .or_else(|| faults["faults"].as_array())
        .into_iter()
        .flatten()
        .find(|f| f["id"].as_u64() == Some(id))
        .and_then(|f| f["fired"].as_u64())
        .unwrap_or(0)
}

#[track_caller]
fn wait_fired(id: u64, limit: Duration) {
    let deadline = Instant::now() + limit;
    while fired(id) == 0 {
        assert!(Instant::now() < deadline, "fault {id} never fired");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn spawn(lab: &Lab, args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut cmd = lab.command(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("deployer starts")
}

/// The run's output once it ends, and how long that took; killed after `limit` (a test never hangs).
fn finish(mut child: Child, limit: Duration) -> (Run, Duration) {
    let started = Instant::now();
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).ok();
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).ok();
        s
    });
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code().unwrap_or(-1);
        }
        if started.elapsed() > limit {
            child.kill().ok();
            child.wait().ok();
            break -1;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let run = Run {
        code,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    };
    (run, started.elapsed())
}

fn count(lab: &Lab, action: &str) -> usize {
    lab.writes()
        .iter()
        .filter(|w| w["action"] == action)
        .count()
}

/// Slow, reordered, late answers on every read a look makes for this service.
fn slow_reads(lab: &Lab) -> Vec<u64> {
    ["DescribeTasks", "ListTasks", "DescribeTargetHealth"]
        .iter()
        .map(|action| {
            let extra = [
                "--delay-ms",
                "400",
                "--jitter-ms",
                "350",
                "--after",
                "--count",
                "100000",
                "--match",
                &lab.service,
            ];
            api_fault(action, "delay", &extra)
        })
        .collect()
}

#[test]
fn a_completed_rollout_gets_a_verdict_under_slow_reordered_reads() {
    let lab = Lab::service(&[]);
    let faults = slow_reads(&lab);
    let image = lab.image("slow-reads");
    let child = spawn(
        &lab,
        &[
            "deploy",
            "--image",
            &format!("web={image}"),
            "--timeout",
            "3m",
        ],
        &[],
    );
    let (run, took) = finish(child, Duration::from_secs(200));
    run.code(0).says("deployed");
    assert!(
        took < Duration::from_secs(60),
        "a healthy deploy under slow reads took {took:?}\n{}",
        run.stderr
    );
    for id in &faults {
        assert!(fired(*id) > 0, "fault {id} never fired");
    }
    eprintln!("healthy deploy under slow reordered reads: {took:?}");
}

#[test]
fn a_rollback_under_slow_reordered_reads_ends_exit_1() {
    let lab = Lab::service(&[]);
    let crash = lab.image("slow-reads-crash");
    lab.fault(&crash, "exit", &[]);
    let faults = slow_reads(&lab);
    let child = spawn(
        &lab,
        &[
            "deploy",
            "--image",
            &format!("web={crash}"),
            "--timeout",
            "3m",
        ],
        &[],
    );
    let (run, took) = finish(child, Duration::from_secs(200));
    run.code(1);
    assert!(
        took < Duration::from_secs(90),
        "a rollback under slow reads took {took:?}\n{}",
        run.stderr
    );
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
    for id in &faults {
        assert!(fired(*id) > 0, "fault {id} never fired");
    }
    eprintln!("rollback under slow reordered reads: {took:?}");
}

#[test]
fn a_deploy_whose_service_changed_during_the_migration_is_refused() {
    let lab = Lab::service(&[]);
    // The migration's RunTask is held until the test has deployed something else meanwhile.
    let hold = api_fault(
        "RunTask",
        "hang",
        &["--delay-ms", "9000", "--match", &lab.cluster],
    );
    let image = lab.image("migrating");
    let child = spawn(
        &lab,
        &[
            "deploy",
            "--image",
            &format!("web={image}"),
            "--run-task",
            "web",
            "--run-task-command",
            "./manage migrate",
            "--output",
            "json",
        ],
        &[],
    );
    wait_fired(hold, Duration::from_secs(60));
    let other = scenario(&[
        "update",
        "--cluster",
        &lab.cluster,
        "--service",
        &lab.service,
        "--image",
        &lab.image("someone-else"),
    ])["task_definition_arn"]
        .as_str()
        .expect("the other deploy's ARN")
        .to_string();
    scenario(&["release", "--id", &hold.to_string()]);
    let (run, _) = finish(child, Duration::from_secs(120));
    run.code(2)
        .says("changed since pre-flight")
        .says(&other)
        .says("nothing was changed");
    assert_eq!(run.result()["outcome"], "refused");
    assert_eq!(lab.running_task_definition(), other);
    assert_eq!(
        count(&lab, "ecs:UpdateService"),
        1,
        "only the other deploy's UpdateService: {:?}",
        lab.writes()
    );
}

#[test]
fn two_wait_for_idle_deploys_behind_a_slow_deployment_update_once() {
    let lab = Lab::service(&[]);
    let stuck = lab.image("stuck");
    lab.fault(&stuck, "pending", &[]);
    let update = |image: &str| {
        scenario(&[
            "update",
            "--cluster",
            &lab.cluster,
            "--service",
            &lab.service,
            "--image",
            image,
        ])
    };
    update(&stuck);
    let deploy = |what: &str| {
        spawn(
            &lab,
            &[
                "deploy",
                "--image",
                &format!("web={}", lab.image(what)),
                "--wait-for-idle",
                "--timeout",
                "3m",
                "--output",
                "json",
            ],
            &[],
        )
    };
    let first = deploy("first");
    std::thread::sleep(Duration::from_secs(1));
    let second = deploy("second");
    std::thread::sleep(Duration::from_secs(6));
    // Both wait; each takes 3 s between seeing the service idle and its UpdateService.
    let slow = api_fault(
        "RegisterTaskDefinition",
        "delay",
        &[
            "--delay-ms",
            "3000",
            "--count",
            "2",
            "--match",
            &lab.service,
        ],
    );
    update(&lab.image("unstuck"));
    let (a, _) = finish(first, Duration::from_secs(200));
    let (b, _) = finish(second, Duration::from_secs(200));
    assert_eq!(fired(slow), 2, "both registered behind the slow deployment");
    let mut codes = [a.code, b.code];
    codes.sort();
    assert_eq!(
        codes,
        [0, 2],
        "exactly one deploys\n--- first:\n{}\n--- second:\n{}",
        a.stderr,
        b.stderr
    );
    let (won, lost) = if a.code == 0 { (&a, &b) } else { (&b, &a) };
    lost.says("changed since pre-flight");
    assert_eq!(
        lab.running_task_definition(),
        won.result()["task_definition_arn"]
            .as_str()
            .unwrap_or_default()
    );
}

#[test]
fn an_update_whose_answer_is_lost_is_watched_not_refused() {
    let lab = Lab::service(&[]);
    // Every attempt the SDK makes (2 here) is applied, and answered 500.
    api_fault(
        "UpdateService",
        "apply_then_error",
        &["--count", "2", "--match", &lab.service],
    );
    let image = lab.image("lost-answer");
    let child = spawn(
        &lab,
        &[
            "deploy",
            "--image",
            &format!("web={image}"),
            "--output",
            "json",
        ],
        &[("AWS_MAX_ATTEMPTS", "2")],
    );
    let (run, _) = finish(child, Duration::from_secs(120));
    run.code(0).says("the write took effect, watching it");
    assert_eq!(run.result()["outcome"], "deployed");
    assert_eq!(
        lab.running_task_definition(),
        run.result()["task_definition_arn"]
            .as_str()
            .unwrap_or_default()
    );
}

#[test]
fn a_lost_update_answer_of_a_crashing_image_is_rolled_back() {
    let lab = Lab::service(&[]);
    let crash = lab.image("lost-answer-crash");
    lab.fault(&crash, "exit", &[]);
    api_fault(
        "UpdateService",
        "apply_then_error",
        &["--count", "2", "--match", &lab.service],
    );
    let child = spawn(
        &lab,
        &["deploy", "--image", &format!("web={crash}")],
        &[("AWS_MAX_ATTEMPTS", "2")],
    );
    let (run, _) = finish(child, Duration::from_secs(120));
    run.code(1).says("the write took effect, watching it");
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
}

#[test]
fn an_update_that_never_applied_is_still_refused() {
    let lab = Lab::service(&[]);
    api_fault(
        "UpdateService",
        "error5xx",
        &["--count", "2", "--match", &lab.service],
    );
    let image = lab.image("never-applied");
    let child = spawn(
        &lab,
        &[
            "deploy",
            "--image",
            &format!("web={image}"),
            "--output",
            "json",
        ],
        &[("AWS_MAX_ATTEMPTS", "2")],
    );
    let (run, _) = finish(child, Duration::from_secs(120));
    run.code(2);
    assert_eq!(run.result()["outcome"], "refused");
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
}

fn migrate(lab: &Lab, what: &str) -> Run {
    let image = lab.image(what);
    let child = spawn(
        lab,
        &[
            "deploy",
            "--image",
            &format!("web={image}"),
            "--run-task",
            "web",
            "--run-task-command",
            "./manage migrate",
        ],
        &[],
    );
    finish(child, Duration::from_secs(120)).0
}

#[test]
fn a_lost_run_task_answer_starts_one_migration() {
    let lab = Lab::service(&[]);
    let lost = api_fault(
        "RunTask",
        "apply_then_error",
        &["--count", "1", "--match", &lab.cluster],
    );
    let run = migrate(&lab, "lost-run-task");
    assert_eq!(fired(lost), 1);
    // The lab does not de-duplicate by clientToken: each RunTask that reached it started a task.
    let runs: Vec<Value> = lab
        .writes()
        .into_iter()
        .filter(|w| w["action"] == "ecs:RunTask")
        .collect();
    assert_eq!(
        runs.len(),
        1,
        "one RunTask, one migration: {runs:?}\n{}",
        run.stderr
    );
    run.code(0)
        .says("but it started the one-off task")
        .says("finished: every essential container exited 0")
        .says("deployed");
}

#[test]
fn a_one_off_task_not_yet_visible_is_polled_not_abandoned() {
    let lab = Lab::service(&[]);
    let stale = api_fault(
        "DescribeTasks",
        "stale",
        &["--count", "3", "--match", &lab.cluster],
    );
    let run = migrate(&lab, "not-yet-visible");
    run.code(0)
        .says("finished: every essential container exited 0")
        .says("deployed");
    assert!(fired(stale) >= 1, "the stale read never fired");
}

#[test]
fn a_create_service_whose_answer_is_lost_is_watched_not_refused() {
    let dir = Lab::service(&["--no-lb"]);
    let (cluster, name) = (crate::lab::unique("new"), crate::lab::unique("first"));
    let net = scenario(&["network", "--name", &crate::lab::unique("net")]);
    let td = dir.write(
        "task.json",
        &serde_json::json!({
            "family": name, "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
            "cpu": "256", "memory": "512",
            "executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
            "containerDefinitions": [{
                "name": "api", "image": "registry.lab/app:first", "essential": true,
                "portMappings": [{"containerPort": 8080}],
                "logConfiguration": {"logDriver": "awslogs", "options": {
                    "awslogs-group": "/ecs/lab", "awslogs-region": "us-east-1",
                    "awslogs-stream-prefix": "api"}}
            }]
        })
        .to_string(),
    );
    let svc = dir.write(
        "service.json",
        &serde_json::json!({
            "serviceName": name, "desiredCount": 2, "launchType": "FARGATE",
            "loadBalancers": [{"targetGroupArn": net["target_group_arn"],
                               "containerName": "api", "containerPort": 8080}],
            "networkConfiguration": {"awsvpcConfiguration": {
                "subnets": net["subnets"], "securityGroups": [net["security_group"]],
                "assignPublicIp": "DISABLED"}},
            "healthCheckGracePeriodSeconds": 30
        })
        .to_string(),
    );
    let lost = api_fault(
        "CreateService",
        "apply_then_error",
        &["--count", "2", "--match", &name],
    );
    let mut cmd = crate::lab::deployer(dir.dir.path());
    cmd.args(["deploy", "--cluster", &cluster, "--service", &name])
        .args(["--create-missing", "--output", "json"])
        .arg("--task-definition")
        .arg(&td)
        .arg("--service-definition")
        .arg(&svc)
        .env("AWS_MAX_ATTEMPTS", "2");
    let run = crate::lab::run(cmd);
    assert!(fired(lost) >= 1, "the lost answer never happened");
    run.code(0).says("the write took effect, watching it");
    assert_eq!(run.result()["outcome"], "deployed");
}

#[test]
fn ecs_rollback_under_slow_reordered_reads_ends_exit_1() {
    let lab = Lab::service(&["--breaker", "rollback"]);
    let crash = lab.image("slow-reads-breaker");
    lab.fault(&crash, "exit", &[]);
    let faults = slow_reads(&lab);
    let child = spawn(
        &lab,
        &[
            "deploy",
            "--image",
            &format!("web={crash}"),
            "--timeout",
            "3m",
        ],
        &[],
    );
    let (run, took) = finish(child, Duration::from_secs(200));
    run.code(1);
    assert!(
        took < Duration::from_secs(90),
        "ECS's rollback under slow reads took {took:?}\n{}",
        run.stderr
    );
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
    for id in &faults {
        assert!(fired(*id) > 0, "fault {id} never fired");
    }
    eprintln!("ECS's rollback under slow reordered reads: {took:?}");
}
