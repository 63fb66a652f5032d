//! Every shape of service through the binary (issue 15 items 1-3): EC2 bridge and host networking
//! behind instance target groups, NLB ip and instance target groups, and services with no load
//! balancer with and without a container health check. For each: a healthy deploy, an unhealthy
//! target (or container) and a crashing task; a SIGTERM on an EC2 shape; EC2 capacity named.

use crate::lab::Lab;
use std::time::{Duration, Instant};

const EC2_BRIDGE: &[&str] = &[
    "--launch-type",
    "EC2",
    "--network-mode",
    "bridge",
    "--instances",
    "2",
];
const EC2_HOST: &[&str] = &[
    "--launch-type",
    "EC2",
    "--network-mode",
    "host",
    "--instances",
    "4",
];
const NLB_IP: &[&str] = &["--nlb"];
const NLB_INSTANCE: &[&str] = &[
    "--nlb",
    "--launch-type",
    "EC2",
    "--network-mode",
    "bridge",
    "--instances",
    "2",
];
const NO_LB_CHECKED: &[&str] = &["--no-load-balancer", "--health-check"];
const NO_LB: &[&str] = &["--no-load-balancer"];

/// A healthy deploy: exit 0 and the new revision runs; the time to healthy is printed.
fn healthy(shape: &[&str], says: &str) {
    let lab = Lab::service(shape);
    let started = Instant::now();
    let run = lab.deployer(&["deploy", "--image", &lab.image("v2")]);
    run.code(0)
        .says("deployed: the new tasks are running and healthy")
        .says(says);
    eprintln!(
        "{shape:?}: deployed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_ne!(lab.running_task_definition(), lab.task_definition_arn);
}

/// A fault that fails the deploy: exit 1, the cause named, back on the previous revision.
fn fails(shape: &[&str], kind: &str, says: &[&str]) {
    let lab = Lab::service(shape);
    let image = lab.image(kind);
    lab.fault(&image, kind, &["--exit-code", "3"]);
    let run = lab.deployer(&["deploy", "--image", &image, "--timeout", "60s"]);
    run.code(1).says("rolled back");
    for text in says {
        run.says(text);
    }
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
}

const CRASHED: &[&str] = &["2 of the new tasks stopped", "container web: exit code 3"];

#[test]
fn ec2_bridge_alb_healthy() {
    healthy(EC2_BRIDGE, "deployed");
}

#[test]
fn ec2_bridge_alb_unhealthy_instance_target() {
    // instanceId:hostPort, the dynamic host port of the task.
    fails(
        EC2_BRIDGE,
        "unhealthy",
        &[":32", ": unhealthy (Target.ResponseCodeMismatch"],
    );
}

#[test]
fn ec2_bridge_alb_crash() {
    fails(EC2_BRIDGE, "exit", CRASHED);
}

#[test]
fn ec2_host_healthy() {
    healthy(EC2_HOST, "deployed");
}

#[test]
fn ec2_host_unhealthy_instance_target() {
    fails(
        EC2_HOST,
        "unhealthy",
        &[
            "target i-",
            ":8080 in ",
            ": unhealthy (Target.ResponseCodeMismatch",
        ],
    );
}

#[test]
fn ec2_host_crash() {
    fails(EC2_HOST, "exit", CRASHED);
}

#[test]
fn nlb_ip_healthy() {
    healthy(NLB_IP, "deployed");
}

#[test]
fn nlb_ip_unhealthy_target() {
    fails(
        NLB_IP,
        "unhealthy",
        &[
            "target 10.",
            ": unhealthy (Target.FailedHealthChecks: Health checks failed)",
        ],
    );
}

#[test]
fn nlb_ip_crash() {
    fails(NLB_IP, "exit", CRASHED);
}

#[test]
fn nlb_instance_healthy() {
    healthy(NLB_INSTANCE, "deployed");
}

#[test]
fn nlb_instance_unhealthy_target() {
    fails(
        NLB_INSTANCE,
        "unhealthy",
        &["target i-", ": unhealthy (Target.FailedHealthChecks"],
    );
}

#[test]
fn nlb_instance_crash() {
    fails(NLB_INSTANCE, "exit", CRASHED);
}

#[test]
fn no_lb_with_health_check_healthy() {
    healthy(
        NO_LB_CHECKED,
        "no load balancer: gating on container health checks",
    );
}

#[test]
fn no_lb_with_health_check_unhealthy_container() {
    fails(
        NO_LB_CHECKED,
        "unhealthy_container",
        &[
            "container web of task",
            "is UNHEALTHY (health check: CMD-SHELL curl -f http://localhost:8080/health || exit 1)",
        ],
    );
}

#[test]
fn no_lb_with_health_check_crash() {
    fails(NO_LB_CHECKED, "exit", CRASHED);
}

#[test]
fn no_lb_without_health_check_healthy_after_staying_running() {
    let started = Instant::now();
    healthy(NO_LB, "gating on tasks staying RUNNING for 10 s");
    assert!(
        started.elapsed() >= Duration::from_secs(10),
        "the minimum period was not waited"
    );
}

#[test]
fn no_lb_without_health_check_crash() {
    fails(NO_LB, "exit", CRASHED);
}

#[test]
fn ec2_capacity_shortage_is_named_when_the_rollout_stalls() {
    // Host networking on 2 instances with 2 tasks: every port 8080 is taken by the old tasks.
    let lab = Lab::service(&[
        "--launch-type",
        "EC2",
        "--network-mode",
        "host",
        "--instances",
        "2",
    ]);
    // (--no-rollback: a rollback would need the same ports, as on ECS, and stall too.)
    let run = lab.deployer(&[
        "deploy",
        "--image",
        &lab.image("v2"),
        "--timeout",
        "6s",
        "--no-rollback",
    ]);
    run.code(3)
        .says("did not finish within 6s")
        .says("the cause: ECS could not place a task")
        .says("no container instance met all of its requirements");
}

#[test]
fn sigterm_on_ec2_bridge_rolls_back_and_exits_130() {
    let lab = Lab::service(EC2_BRIDGE);
    let image = lab.image("slow");
    lab.fault(&image, "pending", &[]);
    let child = lab
        .command(&["deploy", "--image", &image])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("deployer starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !lab
        .writes()
        .iter()
        .any(|w| w["action"] == "ecs:UpdateService")
    {
        assert!(
            Instant::now() < deadline,
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
    assert!(stderr.contains("rolling back to"), "{stderr}");
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
}
