//! Bad input and unsafe states: exit 2, a message naming the file, field or value, and not one
//! write call to AWS.

use crate::lab::{Lab, scenario};

#[track_caller]
fn refused(lab: &Lab, args: &[&str], expected: &str) {
    let run = lab.deployer(args);
    run.code(2)
        .says(expected)
        .says("refused: nothing was changed");
    lab.assert_no_writes();
}

#[test]
fn bad_input_corpus() {
    let lab = Lab::service(&[]);
    // The files name the service's own family, so a RegisterTaskDefinition would count as ours (A7).
    let family = &lab.service;
    let malformed = lab.write(
        "malformed.json",
        &format!("{{\"family\": \"{family}\", \"containerDefinitions\": ["),
    );
    let wrong_type = lab.write("wrong.yaml", &format!("family: {family}\ncontainerDefinitions:\n  - name: web\n    image: app:v1\n    memory: \"a lot\"\n"));
    let unknown_field = lab.write(
        "typo.json",
        &format!(r#"{{"family": "{family}", "containerDefinition": []}}"#),
    );
    let not_an_object = lab.write("list.yaml", &format!("- family: {family}\n"));
    // Valid, so the deploy reads the live service before it refuses: the no-writes check bites.
    let valid = lab.write(
        "valid.json",
        &format!(
            r#"{{"family": "{family}", "containerDefinitions": [{{"name": "web", "image": "registry.lab/app:v1", "memory": 256}}]}}"#
        ),
    );
    let missing = lab.dir.path().join("absent.json").display().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["deploy", "--image", "db=registry.lab/app:v2"],
            "names container `db`, but task definition",
        ),
        (
            vec!["deploy", "--image", "Registry.lab/App:v2"],
            "invalid image reference",
        ),
        (
            vec!["deploy", "--image", "registry.lab/app:"],
            "invalid image reference",
        ),
        (
            vec!["deploy", "--image", "web=registry.lab/app@sha256:abc"],
            "digest must be sha256",
        ),
        (
            vec!["deploy", "--timeout", "soon"],
            "invalid duration `soon`",
        ),
        (vec!["deploy", "--timeout", "15"], "invalid duration `15`"),
        (
            vec!["deploy", "--env", "GREETING"],
            "invalid --env `GREETING`",
        ),
        (
            vec!["deploy", "--max-failed-tasks", "0"],
            "max-failed-tasks `0`",
        ),
        (
            vec!["rollback", "--max-failed-tasks", "0"],
            "max-failed-tasks `0`",
        ),
        (
            vec!["deploy", "--max-failed-tasks", "two"],
            "invalid value 'two'",
        ),
        (
            vec!["deploy", "--task-definition", malformed.to_str().unwrap()],
            "not valid JSON",
        ),
        (
            vec!["deploy", "--task-definition", wrong_type.to_str().unwrap()],
            "`containerDefinitions[0].memory` must be an integer",
        ),
        (
            vec![
                "deploy",
                "--task-definition",
                unknown_field.to_str().unwrap(),
            ],
            "unknown field `containerDefinition`",
        ),
        (
            vec![
                "deploy",
                "--task-definition",
                not_an_object.to_str().unwrap(),
            ],
            "expected a JSON/YAML object",
        ),
        (
            vec!["deploy", "--task-definition", &missing],
            "failed to read task definition file",
        ),
        (
            vec!["deploy", "--frobnicate"],
            "unexpected argument '--frobnicate'",
        ),
        (
            vec![
                "deploy",
                "--task-definition",
                valid.to_str().unwrap(),
                "--image",
                "db=registry.lab/app:v2",
            ],
            "names container `db`, but task definition",
        ),
    ];
    for (args, expected) in cases {
        let run = lab.deployer(&args);
        assert_eq!(run.code, 2, "{args:?}: expected exit 2\n{}", run.stderr);
        assert!(
            run.stderr.contains(expected),
            "{args:?}: stderr lacks {expected:?}\n{}",
            run.stderr
        );
    }
    lab.assert_no_writes();
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
}

#[test]
fn bare_image_with_two_containers_is_refused() {
    let lab = Lab::service(&["--containers", "2"]);
    refused(
        &lab,
        &["deploy", "--image", "registry.lab/app:v2"],
        "does not say which container",
    );
}

#[test]
fn missing_cluster_and_service_are_refused() {
    let lab = Lab::service(&[]);
    let mut cmd = crate::lab::deployer(lab.dir.path());
    cmd.args([
        "deploy",
        "--cluster",
        "no-such-cluster",
        "--service",
        &lab.service,
        "--image",
        "registry.lab/app:v2",
    ]);
    let run = crate::lab::run(cmd);
    run.code(2).says("cluster `no-such-cluster` not found");
    let mut cmd = crate::lab::deployer(lab.dir.path());
    cmd.args([
        "deploy",
        "--cluster",
        &lab.cluster,
        "--service",
        "no-such-service",
        "--image",
        "registry.lab/app:v2",
    ]);
    crate::lab::run(cmd)
        .code(2)
        .says("service `no-such-service` not found");
    let mut cmd = crate::lab::deployer(lab.dir.path());
    cmd.args(["deploy", "--image", "registry.lab/app:v2"]);
    crate::lab::run(cmd)
        .code(2)
        .says("missing cluster: pass --cluster");
    lab.assert_no_writes();
}

#[test]
fn another_deployment_in_progress_is_refused_by_name() {
    let lab = Lab::service(&[]);
    let theirs = lab.image("theirs");
    lab.fault(&theirs, "pending", &[]);
    scenario(&[
        "update",
        "--cluster",
        &lab.cluster,
        "--service",
        &lab.service,
        "--image",
        &theirs,
    ]);
    let before = lab.writes().len();
    let run = lab.deployer(&["deploy", "--image", &lab.image("ours"), "--output", "json"]);
    run.code(2)
        .says("another deployment of service")
        .says("ecs-svc/")
        .says("--wait-for-idle");
    assert_eq!(run.result()["outcome"], "refused");
    assert_eq!(lab.writes().len(), before, "deployer wrote to AWS");
}

/// README: an EXTERNAL deployment controller is refused before any write.
#[test]
fn external_controller_is_refused() {
    let lab = Lab::service(&["--controller", "EXTERNAL"]);
    refused(
        &lab,
        &["deploy", "--image", &lab.image("v2")],
        "uses the EXTERNAL deployment controller",
    );
}

#[test]
fn a_code_deploy_service_with_no_such_codedeploy_application_is_refused() {
    // CODE_DEPLOY services deploy through CodeDeploy (tests/codedeploy.rs); one whose application
    // is not there is refused naming the flags, and the service is never sent UpdateService.
    let lab = Lab::service(&["--controller", "CODE_DEPLOY"]);
    let run = lab.deployer(&[
        "deploy",
        "--image",
        &lab.image("v2"),
        "--codedeploy-application",
        "no-such-app",
    ]);
    run.code(2)
        .says("failed to create a CodeDeploy deployment in application `no-such-app`")
        .says("--codedeploy-application");
    assert!(
        !lab.writes()
            .iter()
            .any(|w| w["action"] == "ecs:UpdateService"),
        "{:?}",
        lab.writes()
    );
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
}

#[test]
fn a_malformed_environment_is_refused_without_its_values() {
    let lab = Lab::service(&[]);
    let as_map = lab.write(
        "map.yaml",
        "family: web\ncontainerDefinitions:\n  - name: web\n    image: registry.lab/app:v1\n    environment:\n      SECRET: zzz-secret-value\n",
    );
    let capitalised = lab.write(
        "cfn.json",
        r#"{"family": "web", "containerDefinitions": [{"name": "web", "image": "registry.lab/app:v1", "environment": [{"Name": "SECRET", "Value": "zzz-secret-value"}]}]}"#,
    );
    for (file, expected) in [
        (
            &as_map,
            "`containerDefinitions[0].environment` must be a list",
        ),
        (
            &capitalised,
            "`containerDefinitions[0].environment[0]` must be",
        ),
    ] {
        for output in ["text", "json"] {
            let run = lab.deployer(&[
                "plan",
                "--task-definition",
                file.to_str().unwrap(),
                "--output",
                output,
            ]);
            run.code(2).says(expected);
            for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
                assert!(
                    !text.contains("zzz-secret-value"),
                    "{}, --output {output}: the value is on {stream}\n{text}",
                    file.display()
                );
            }
        }
    }
    lab.assert_no_writes();
}

/// README: two `[services]` tables naming the same ECS service are refused before any write.
#[test]
fn two_services_tables_naming_one_ecs_service_are_refused() {
    let lab = Lab::service(&[]);
    lab.write(
        "deployer.toml",
        &format!(
            "[services.a]\ncluster = \"{c}\"\nservice = \"{s}\"\nimage = \"{a}\"\n\n\
             [services.b]\ncluster = \"{c}\"\nservice = \"{s}\"\nimage = \"{b}\"\n",
            c = lab.cluster,
            s = lab.service,
            a = lab.image("v2"),
            b = lab.image("v3"),
        ),
    );
    let mut cmd = crate::lab::deployer(lab.dir.path());
    cmd.arg("run");
    crate::lab::run(cmd).code(2).says(&format!(
        "two entries of `[services]` in {} deploy the same ECS service `{}` in cluster `{}`",
        lab.dir.path().join("deployer.toml").display(),
        lab.service,
        lab.cluster
    ));
    lab.assert_no_writes();
}
