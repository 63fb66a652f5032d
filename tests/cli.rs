//! The contract users script against: config precedence, `--output json`, plan, status, unchanged.

use crate::lab::Lab;

#[test]
fn nothing_to_deploy_exits_0_without_writes() {
    let lab = Lab::service(&[]);
    let run = lab.deployer(&[
        "deploy",
        "--image",
        "registry.lab/app:v1",
        "--output",
        "json",
    ]);
    run.code(0).says("nothing to deploy");
    assert_eq!(run.result()["outcome"], "unchanged");
    lab.assert_no_writes();
}

#[test]
fn force_new_deployment_redeploys_the_same_revision() {
    let lab = Lab::service(&[]);
    let before: Vec<String> = lab.describe()["deployments"]
        .as_array()
        .expect("deployments")
        .iter()
        .map(|d| d["id"].as_str().expect("an id").to_string())
        .collect();
    let run = lab.deployer(&["deploy", "--force-new-deployment", "--output", "json"]);
    run.code(0);
    let result = run.result();
    // A binary that ignored the flag would say "unchanged" and write nothing (tests-audit A2).
    assert_eq!(result["outcome"], "deployed");
    assert_eq!(
        result["task_definition_arn"],
        lab.task_definition_arn.as_str()
    );
    let deployment = result["deployment_id"].as_str().expect("a deployment id");
    assert!(
        !before.iter().any(|id| id == deployment),
        "{deployment} is not a new deployment ({before:?})"
    );
    let writes: Vec<String> = lab
        .writes()
        .iter()
        .map(|w| w["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(writes, ["ecs:UpdateService"], "{writes:?}");
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
}

/// R15: a comma inside an `--env` value is part of the value, never a second variable.
#[test]
fn env_values_keep_their_commas() {
    let lab = Lab::service(&[]);
    lab.deployer(&["deploy", "--env", "web:OPTS=a=1,b=2"])
        .code(0)
        .says("deployed");
    let env = lab.environment("web");
    assert_eq!(env["OPTS"], "a=1,b=2", "{env:?}");
    assert_eq!(env["GREETING"], "hello", "{env:?}");
    assert_eq!(env.len(), 2, "no variable `b`: {env:?}");
    // DEPLOYER_ENV: a comma separates only before the next CONTAINER:KEY=.
    let mut cmd = lab.command(&["deploy"]);
    cmd.env(
        "DEPLOYER_ENV",
        "web:URL=postgres://h/db?x=1,y=2,web:MODE=fast\nweb:LIST=a,b",
    );
    crate::lab::run(cmd).code(0).says("deployed");
    let env = lab.environment("web");
    assert_eq!(env["URL"], "postgres://h/db?x=1,y=2", "{env:?}");
    assert_eq!(env["MODE"], "fast", "{env:?}");
    assert_eq!(env["LIST"], "a,b", "{env:?}");
    assert_eq!(env.len(), 5, "{env:?}");
}

/// R9: a service at desiredCount 0 is "deployed" with nothing proven: said on the terminal, in
/// the JSON lines and in the report; the exit code stays 0.
#[test]
fn desired_count_zero_is_said_to_prove_nothing() {
    let lab = Lab::service(&["--desired", "0"]);
    let report = lab.dir.path().join("report.json");
    let mut cmd = lab.command(&["deploy", "--image", &lab.image("v2"), "--output", "json"]);
    cmd.env("DEPLOYER_REPORT", &report);
    let run = crate::lab::run(cmd);
    run.code(0)
        .says("warning: desiredCount is 0: no task was started, nothing was proven");
    assert_eq!(run.result()["outcome"], "deployed");
    assert!(
        run.stdout
            .lines()
            .any(|l| l.contains("\"event\":\"warning\"")
                && l.contains("desiredCount is 0: no task was started, nothing was proven")),
        "{}",
        run.stdout
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("the JSON report")).unwrap();
    assert!(
        report["warnings"]
            .as_array()
            .expect("warnings")
            .iter()
            .any(|w| w == "desiredCount is 0: no task was started, nothing was proven"),
        "{report}"
    );
    let healthy = Lab::service(&[]);
    let run = healthy.deployer(&["deploy", "--image", &healthy.image("v2")]);
    run.code(0);
    assert!(!run.stderr.contains("desiredCount is 0"), "{}", run.stderr);
}

#[test]
fn plan_prints_the_diff_and_writes_nothing() {
    let lab = Lab::service(&[]);
    let run = lab.deployer(&[
        "plan",
        "--image",
        &lab.image("v2"),
        "--env",
        "web:GREETING=hi",
        "--output",
        "json",
    ]);
    run.code(0)
        .says("~ containerDefinitions.web.image: \"registry.lab/app:v1\" -> \"registry.lab/app:v2-")
        .says("~ containerDefinitions.web.environment.GREETING (value hidden)");
    assert_eq!(run.result()["outcome"], "planned");
    lab.assert_no_writes();
}

#[test]
fn plan_from_a_describe_output_file_in_yaml() {
    let lab = Lab::service(&[]);
    let file = lab.write(
        "td.yaml",
        "taskDefinition:\n  taskDefinitionArn: arn:aws:ecs:us-east-1:123456789012:task-definition/web:9\n  revision: 9\n  status: ACTIVE\n  family: web\n  networkMode: awsvpc\n  containerDefinitions:\n    - name: web\n      image: registry.lab/app:v7\n      memory: 256\n",
    );
    lab.deployer(&["plan", "--task-definition", file.to_str().unwrap()])
        .code(0)
        .says("registry.lab/app:v7");
    lab.assert_no_writes();
}

#[test]
fn json_output_is_one_object_per_line_ending_with_the_result() {
    let lab = Lab::service(&[]);
    let run = lab.deployer(&["deploy", "--image", &lab.image("v2"), "--output", "json"]);
    run.code(0);
    let lines: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert!(lines.iter().any(|l| l["event"] == "step"));
    assert!(lines.iter().any(|l| l["event"] == "service_event"));
    let result = run.result();
    for key in [
        "outcome",
        "cluster",
        "service",
        "task_definition_arn",
        "previous_task_definition_arn",
        "deployment_id",
        "reason",
        "duration_ms",
    ] {
        assert!(result.get(key).is_some(), "result lacks {key}: {result}");
    }
    assert_eq!(result["cluster"], lab.cluster.as_str());
}

#[test]
fn flags_win_over_environment_and_environment_over_the_file() {
    let lab = Lab::service(&[]);
    let image = lab.image("v2");
    // The file alone is enough.
    lab.write(
        "deployer.toml",
        &format!(
            "cluster = \"{}\"\nservice = \"{}\"\nimage = \"{image}\"\ntimeout = \"2m\"\n",
            lab.cluster, lab.service
        ),
    );
    let mut cmd = crate::lab::deployer(lab.dir.path());
    cmd.arg("plan");
    crate::lab::run(cmd).code(0).says(&image);
    // The environment beats the file: a wrong cluster from DEPLOYER_CLUSTER is used (and fails).
    let mut cmd = crate::lab::deployer(lab.dir.path());
    cmd.arg("plan").env("DEPLOYER_CLUSTER", "from-env");
    crate::lab::run(cmd)
        .code(2)
        .says("cluster `from-env` not found");
    // The flag beats the environment.
    let mut cmd = crate::lab::deployer(lab.dir.path());
    cmd.args(["plan", "--cluster", &lab.cluster])
        .env("DEPLOYER_CLUSTER", "from-env");
    crate::lab::run(cmd).code(0);
    // A bad value in the file names the file and the field.
    lab.write("deployer.toml", "cluster = 3\n");
    let mut cmd = crate::lab::deployer(lab.dir.path());
    cmd.arg("plan");
    crate::lab::run(cmd)
        .code(2)
        .says("deployer.toml")
        .says("cluster");
    lab.write("deployer.toml", "clustr = \"x\"\n");
    let mut cmd = crate::lab::deployer(lab.dir.path());
    cmd.arg("plan");
    crate::lab::run(cmd).code(2).says("unknown field `clustr`");
    lab.assert_no_writes();
}

#[test]
fn config_file_found_upward_and_named_with_config() {
    let lab = Lab::service(&[]);
    lab.write(
        "deployer.toml",
        &format!(
            "cluster = \"{}\"\nservice = \"{}\"\n",
            lab.cluster, lab.service
        ),
    );
    let nested = lab.dir.path().join("a/b");
    std::fs::create_dir_all(&nested).unwrap();
    let mut cmd = crate::lab::deployer(&nested);
    // The upward search itself: no DEPLOYER_CONFIG.
    cmd.env_remove("DEPLOYER_CONFIG").arg("status");
    crate::lab::run(cmd).code(0).says(&lab.service);
    let other = lab.write("other.toml", "cluster = \"elsewhere\"\nservice = \"x\"\n");
    let mut cmd = crate::lab::deployer(&nested);
    cmd.args(["status", "--config", other.to_str().unwrap()]);
    crate::lab::run(cmd)
        .code(2)
        .says("service `x` in cluster `elsewhere`");
}

#[test]
fn status_shows_deployments_targets_and_events() {
    let lab = Lab::service(&[]);
    let run = lab.deployer(&["status", "--output", "json"]);
    run.code(0)
        .says("PRIMARY COMPLETED")
        .says(": healthy")
        .says("has reached a steady state");
    assert_eq!(
        run.result()["task_definition_arn"],
        lab.task_definition_arn.as_str()
    );
}

#[test]
fn a_file_deployed_twice_is_unchanged_the_second_time() {
    let lab = Lab::service(&[]);
    let file = lab.write(
        "td.json",
        &format!(
            r#"{{"family": "{}", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512",
               "containerDefinitions": [{{"name": "web", "image": "{}", "memory": 256,
               "portMappings": [{{"containerPort": 8080}}], "environment": [{{"name": "A", "value": "1"}}]}}]}}"#,
            lab.service,
            lab.image("file")
        ),
    );
    let path = file.to_str().unwrap();
    lab.deployer(&["deploy", "--task-definition", path])
        .code(0)
        .says("deployed");
    // ECS stores defaults the file leaves out (cpu 0, essential, hostPort, protocol): still no change.
    lab.deployer(&["deploy", "--task-definition", path])
        .code(0)
        .says("nothing to deploy");
}

#[test]
fn plan_shows_the_names_of_an_added_containers_environment_never_the_values() {
    let lab = Lab::service(&[]);
    let file = lab.write(
        "td.yaml",
        "family: web\nnetworkMode: awsvpc\ncontainerDefinitions:\n  - name: web\n    image: registry.lab/app:v1\n  - name: sidecar\n    image: registry.lab/app:v1\n    environment: [{name: SECRET, value: zzz-secret-value}]\n",
    );
    for output in ["text", "json"] {
        let run = lab.deployer(&[
            "plan",
            "--task-definition",
            file.to_str().unwrap(),
            "--output",
            output,
        ]);
        run.code(0)
            .says("+ containerDefinitions.sidecar:")
            .says("SECRET");
        for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
            assert!(
                !text.contains("zzz-secret-value"),
                "--output {output}: the value is on {stream}\n{text}"
            );
        }
        if output == "json" {
            assert_eq!(run.result()["outcome"], "planned");
            let changes: Vec<String> = run
                .stdout
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter_map(|v| v["changes"].as_array().cloned())
                .flatten()
                .filter_map(|c| c.as_str().map(String::from))
                .collect();
            assert!(
                changes
                    .iter()
                    .any(|c| c.starts_with("+ containerDefinitions.sidecar:")
                        && c.contains("SECRET")),
                "no change names SECRET\n{}",
                run.stdout
            );
        }
    }
    lab.assert_no_writes();
}

/// R21: `run-task: false` (DEPLOYER_RUN_TASK=false) turns the one-off task off; it is not a
/// container named `false`.
#[test]
fn run_task_false_is_off() {
    let lab = Lab::service(&[]);
    let mut cmd = lab.command(&["deploy", "--image", &lab.image("v2")]);
    cmd.env("DEPLOYER_RUN_TASK", "false");
    crate::lab::run(cmd).code(0).says("deployed");
    let actions: Vec<_> = lab.writes().iter().map(|w| w["action"].clone()).collect();
    assert!(!actions.contains(&"ecs:RunTask".into()), "{actions:?}");
}
