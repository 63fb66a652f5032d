//! `deployer verify` and `deployer init` through the binary: each misconfiguration the lab seeds
//! (`scenario.py create --misconfigure KIND`) is refused before any write with its finding named;
//! a denied IAM read is a warning; `init` round-trips (plan: no change, verify: passes).

use crate::lab::{Lab, deployer, run, scenario};
use serde_json::Value;

/// A deploy of the misconfigured service (a new image: another lab image, or with `ecr` a tag
/// never pushed to the service's ECR repository) is refused (exit 2) with the finding's code, and
/// nothing is written; `deployer verify` says the same.
#[track_caller]
fn refused_before_any_write(kind: &str, code: &str, ecr: bool) {
    let lab = Lab::service(&["--misconfigure", kind]);
    let image = if ecr {
        format!(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/{}:{}",
            lab.service, lab.tag
        )
    } else {
        lab.image("v2")
    };
    lab.deployer(&["deploy", "--image", &image])
        .code(2)
        .says(&format!("[{code}]"))
        .says("--no-verify")
        .says("refused: nothing was changed");
    lab.deployer(&["verify", "--image", &image])
        .code(2)
        .says(&format!("[{code}]"));
    lab.assert_no_writes();
}

#[test]
fn a_missing_secret_is_refused() {
    refused_before_any_write("missing-secret", "secret-not-found", false);
}

#[test]
fn a_missing_log_group_is_refused() {
    refused_before_any_write("missing-log-group", "log-group-not-found", false);
}

#[test]
fn an_unpushed_tag_is_refused() {
    refused_before_any_write("unpushed-tag", "image-not-found", true);
}

#[test]
fn a_role_that_does_not_trust_ecs_tasks_is_refused() {
    refused_before_any_write("untrusted-role", "role-not-trusted", false);
}

#[test]
fn a_wrong_container_port_is_refused() {
    refused_before_any_write("wrong-port", "lb-port-missing", false);
}

#[test]
fn a_fargate_pair_ecs_rejects_is_refused() {
    refused_before_any_write("bad-fargate-pair", "fargate-size-invalid", false);
}

#[test]
fn an_instance_target_group_under_awsvpc_is_refused() {
    refused_before_any_write("instance-target-group", "target-type-mismatch", false);
}

#[test]
fn a_healthy_service_passes_and_deploys() {
    let lab = Lab::service(&[]);
    let image = lab.image("v2");
    lab.deployer(&["verify", "--image", &image])
        .code(0)
        .says("is not in Amazon ECR: not checked")
        .says("verify: 0 errors, 0 warnings");
    lab.assert_no_writes();
    lab.deployer(&["deploy", "--image", &image])
        .code(0)
        .says("verifying the task definition")
        .says("verify: 0 errors, 0 warnings");
}

#[test]
fn warnings_are_printed_and_do_not_refuse() {
    let lab = Lab::service(&["--desired", "1"]);
    let image = lab.image("v2");
    lab.deployer(&["deploy", "--image", &image, "--no-rollback"])
        .code(0)
        .says("warning: [desired-count-low] desiredCount = `1`")
        .says("warning: [no-rollback]");
}

#[test]
fn no_verify_skips_the_checks_from_the_flag_the_variable_and_the_file() {
    let lab = Lab::service(&["--misconfigure", "missing-log-group"]);
    let run_with = |args: &[&str], env: Option<(&str, &str)>| {
        let mut cmd = lab.command(args);
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        run(cmd)
    };
    let v2 = lab.image("v2");
    let out = run_with(&["deploy", "--image", &v2, "--no-verify"], None);
    out.code(0);
    assert!(!out.stderr.contains("verifying"), "{}", out.stderr);
    let v3 = lab.image("v3");
    run_with(
        &["deploy", "--image", &v3],
        Some(("DEPLOYER_NO_VERIFY", "true")),
    )
    .code(0);
    lab.write("deployer.toml", "no-verify = true\n");
    let v4 = lab.image("v4");
    run_with(&["deploy", "--image", &v4], None).code(0);
}

#[test]
fn json_lists_the_findings_with_stable_codes() {
    let lab = Lab::service(&["--misconfigure", "missing-secret"]);
    let run = lab.deployer(&["verify", "--output", "json"]);
    run.code(2);
    let verify: Value = run
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["event"] == "verify")
        .unwrap_or_else(|| panic!("no verify event\n{}", run.stdout));
    let finding = &verify["findings"][0];
    assert_eq!(finding["code"], "secret-not-found", "{verify}");
    assert_eq!(finding["severity"], "error");
    assert_eq!(finding["container"], "web");
    assert_eq!(finding["field"], "secrets[2].valueFrom");
    assert_eq!(verify["findings"].as_array().unwrap().len(), 1, "{verify}");
    assert_eq!(run.result()["outcome"], "refused");
    // Secret values are never read: the lab's secret and parameter hold "never-read".
    assert!(!run.stdout.contains("never-read") && !run.stderr.contains("never-read"));
}

#[test]
fn a_denied_iam_read_is_a_warning_naming_the_permission() {
    let lab = Lab::service(&["--misconfigure", "untrusted-role"]);
    let role = format!("{}-task", lab.service);
    scenario(&[
        "api-fault",
        "--action",
        "iam:GetRole",
        "--kind",
        "denied",
        "--match",
        &role,
    ]);
    lab.deployer(&["verify"])
        .code(0)
        .says("warning: [check-denied] taskRoleArn")
        .says("not checked: IAM denied iam:GetRole")
        .says("verify: 0 errors, 1 warning");
    let faults = scenario(&["api-faults"]);
    let fired = faults
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["match"][0] == role.as_str() && f["fired"] == 1);
    assert!(fired, "the denied fault did not fire: {faults}");
}

#[test]
fn init_round_trips_plan_unchanged_and_verify_passing() {
    let lab = Lab::service(&[]);
    lab.deployer(&["init"])
        .code(0)
        .says("wrote ./deployer.toml")
        .says("wrote ./task-definition.json")
        .says("wrote ./service-definition.json");
    lab.assert_no_writes();
    let toml = std::fs::read_to_string(lab.dir.path().join("deployer.toml")).unwrap();
    assert!(
        toml.contains(&format!("cluster = \"{}\"", lab.cluster)),
        "{toml}"
    );
    // The files alone: no --cluster/--service, deployer.toml names them.
    let plan = run({
        let mut cmd = deployer(lab.dir.path());
        cmd.arg("plan");
        cmd
    });
    plan.code(0).says("no change to the task definition");
    let verify = run({
        let mut cmd = deployer(lab.dir.path());
        cmd.arg("verify");
        cmd
    });
    verify.code(0).says("verify: 0 errors");
    lab.deployer(&["init"])
        .code(2)
        .says("already exist; pass --force to overwrite");
    lab.deployer(&["init", "--force", "--dir", "again"]).code(0);
    lab.deployer(&["init", "--force"]).code(0);
    lab.assert_no_writes();
}
