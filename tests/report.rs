//! Reports where people look: GitHub Actions' outputs file, job summary and log commands; GitLab's
//! dotenv file, JSON report and log sections; the CI heartbeat.

use crate::lab::{Lab, run};
use std::collections::HashMap;

/// Parses a `$GITHUB_OUTPUT` file as the runner does (actions/runner FileCommandManager):
/// `name=value` lines, or `name<<DELIM` … `DELIM` blocks.
fn github_outputs(text: &str) -> HashMap<String, String> {
    let mut values = HashMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.is_empty() {
            continue;
        }
        let heredoc = line.find("<<");
        let equals = line.find('=');
        match (heredoc, equals) {
            (Some(h), e) if e.is_none_or(|e| h < e) => {
                let (name, delimiter) = (&line[..h], &line[h + 2..]);
                assert!(
                    !name.is_empty() && !delimiter.is_empty(),
                    "Invalid format: {line}"
                );
                let mut value = Vec::new();
                loop {
                    let next = lines
                        .next()
                        .unwrap_or_else(|| panic!("Matching delimiter not found '{delimiter}'"));
                    if next == delimiter {
                        break;
                    }
                    value.push(next);
                }
                values.insert(name.to_string(), value.join("\n"));
            }
            (_, Some(e)) => {
                values.insert(line[..e].to_string(), line[e + 1..].to_string());
            }
            _ => panic!("Invalid format: {line}"),
        }
    }
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "the file must end with a newline"
    );
    values
}

#[test]
fn github_actions_outputs_summary_and_log_commands() {
    let lab = Lab::service(&[]);
    let outputs = lab.write("github_output", "earlier=kept\n");
    let summary = lab.write("summary.md", "");
    let image = lab.image("v2");
    let mut cmd = lab.command(&["deploy", "--image", &image]);
    cmd.env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", &outputs)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("DEPLOYER_ENVIRONMENT", "staging");
    let out = run(cmd);
    out.code(0)
        .says("::group::checking service")
        .says("::endgroup::");
    let values = github_outputs(&std::fs::read_to_string(&outputs).unwrap());
    assert_eq!(
        values["earlier"], "kept",
        "earlier outputs are kept (the file is appended to)"
    );
    assert_eq!(values["outcome"], "deployed");
    assert_eq!(values["image"], image);
    assert_eq!(
        values["previous-task-definition-arn"],
        lab.task_definition_arn
    );
    assert_eq!(values["task-definition-arn"], lab.running_task_definition());
    assert!(values["deployment-id"].starts_with("ecs-svc/"));
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.contains("| service | image | task definition | duration | outcome |"),
        "{md}"
    );
    assert!(
        md.contains(&format!(
            "| `{}/{}` | `{image}` |",
            lab.cluster, lab.service
        )),
        "{md}"
    );
    assert!(md.contains("✅ deployed"), "{md}");
    assert!(
        md.contains(&format!(
            "<!-- deployer:v1 service={}/{} env=staging -->",
            lab.cluster, lab.service
        )),
        "{md}"
    );
}

#[test]
fn github_actions_failure_is_an_error_annotation_with_the_report_in_the_summary() {
    let lab = Lab::service(&[]);
    let image = lab.image("crash");
    lab.fault(
        &image,
        "exit",
        &["--exit-code", "4", "--log", "fatal: config missing"],
    );
    let outputs = lab.write("github_output", "");
    let summary = lab.write("summary.md", "");
    let mut cmd = lab.command(&["deploy", "--image", &image]);
    cmd.env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", &outputs)
        .env("GITHUB_STEP_SUMMARY", &summary);
    let out = run(cmd);
    out.code(1)
        .says("::error title=deployer rolled_back::2 of the new tasks stopped");
    let values = github_outputs(&std::fs::read_to_string(&outputs).unwrap());
    assert_eq!(values["outcome"], "rolled_back");
    assert!(values["reason"].contains("2 of the new tasks stopped"));
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.contains("↩️ failed, rolled back") && md.contains("<details><summary>Failure report"),
        "{md}"
    );
    assert!(
        md.contains("container web: exit code 4") && md.contains("| fatal: config missing"),
        "{md}"
    );
}

#[test]
fn gitlab_dotenv_json_report_and_sections() {
    let lab = Lab::service(&[]);
    let dotenv = lab.dir.path().join("deployer.env");
    let mut cmd = lab.command(&["deploy", "--image", &lab.image("v2")]);
    cmd.env("GITLAB_CI", "true");
    let out = run(cmd);
    out.code(0)
        .says("section_start:")
        .says(":deployer_step_1\r\x1b[0Kchecking service")
        .says("section_end:");
    let text = std::fs::read_to_string(&dotenv).expect("deployer.env in the working directory");
    for line in text.lines() {
        assert!(
            !line.is_empty() && !line.starts_with('#'),
            "dotenv allows no blank or comment lines: {line:?}"
        );
        let (name, _) = line.split_once('=').expect("KEY=value");
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{name}"
        );
    }
    assert!(text.contains("DEPLOYER_OUTCOME=deployed\n"), "{text}");
    assert!(
        text.contains(&format!(
            "DEPLOYER_PREVIOUS_TASK_DEFINITION_ARN={}\n",
            lab.task_definition_arn
        )),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(lab.dir.path().join("deployer-report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(json["outputs"]["outcome"], "deployed");
    assert!(
        json["steps"].as_array().is_some_and(|s| s.len() >= 4),
        "{json}"
    );
}

#[test]
fn a_report_file_anywhere_and_nothing_outside_ci() {
    let lab = Lab::service(&[]);
    let path = lab.dir.path().join("report.json");
    let mut cmd = lab.command(&["deploy", "--image", &lab.image("v2")]);
    cmd.env("DEPLOYER_REPORT", &path);
    let out = run(cmd);
    out.code(0);
    assert!(
        !out.stderr.contains("::group::") && !out.stderr.contains("section_start"),
        "{}",
        out.stderr
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(json["outputs"]["outcome"], "deployed");
    assert!(!lab.dir.path().join("deployer.env").exists());
}

#[test]
fn a_heartbeat_line_while_nothing_changes() {
    let lab = Lab::service(&[]);
    let image = lab.image("stuck");
    lab.fault(&image, "pending", &[]);
    let mut cmd = lab.command(&["deploy", "--image", &image, "--timeout", "5s"]);
    cmd.env("DEPLOYER_HEARTBEAT_SECS", "1");
    run(cmd).code(1).says("(still waiting, ");
}

#[test]
fn environment_values_never_reach_a_report() {
    let lab = Lab::service(&[]);
    let summary = lab.write("summary.md", "");
    let report = lab.dir.path().join("report.json");
    let mut cmd = lab.command(&[
        "deploy",
        "--env",
        "web:API_KEY=hunter2-secret",
        "--output",
        "json",
    ]);
    cmd.env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("DEPLOYER_REPORT", &report);
    let out = run(cmd);
    out.code(0);
    for (name, text) in [
        ("stderr", out.stderr.clone()),
        ("stdout", out.stdout.clone()),
        ("summary", std::fs::read_to_string(&summary).unwrap()),
        ("report", std::fs::read_to_string(&report).unwrap()),
    ] {
        assert!(
            !text.contains("hunter2-secret"),
            "the value leaked into {name}"
        );
    }
    assert!(out.stderr.contains("environment.API_KEY (value hidden)"));
}

fn gitlab_requests(project: &str) -> Vec<serde_json::Value> {
    crate::lab::scenario(&["forge-requests", "--repo", &format!("gitlab:{project}")])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn gitlab(lab: &Lab, project: &str, args: &[&str]) -> std::process::Command {
    let mut cmd = lab.command(args);
    let forge =
        std::env::var("DEPLOYER_FORGE_URL").unwrap_or_else(|_| "http://127.0.0.1:5080".into());
    cmd.env("GITLAB_CI", "true")
        .env("CI_API_V4_URL", format!("{forge}/api/v4"))
        .env("CI_PROJECT_ID", project)
        .env("CI_MERGE_REQUEST_IID", "3")
        .env("CI_JOB_URL", "https://gitlab.example/acme/shop/-/jobs/5")
        .env("DEPLOYER_GITLAB_TOKEN", "glpat-fake");
    cmd
}

#[test]
fn gitlab_merge_request_note_created_then_updated() {
    let lab = Lab::service(&[]);
    let project = crate::lab::unique("42");
    run(gitlab(
        &lab,
        &project,
        &["deploy", "--image", &lab.image("v2")],
    ))
    .code(0);
    run(gitlab(
        &lab,
        &project,
        &["deploy", "--image", &lab.image("v3")],
    ))
    .code(0);
    let list = gitlab_requests(&project);
    for r in &list {
        assert!(r["violation"].is_null() && r["auth"] == "glpat-fake", "{r}");
    }
    let posts: Vec<_> = list.iter().filter(|r| r["method"] == "POST").collect();
    let puts: Vec<_> = list.iter().filter(|r| r["method"] == "PUT").collect();
    assert_eq!(
        (posts.len(), puts.len()),
        (1, 1),
        "one note, then updated in place: {list:#?}"
    );
    assert!(posts[0]["path"].as_str().unwrap().ends_with(&format!(
        "/api/v4/projects/{project}/merge_requests/3/notes"
    )));
    let body = puts[0]["body"]["body"].as_str().unwrap();
    assert!(
        body.contains("✅ deployed") && body.contains(&lab.image("v3")) && body.contains("jobs/5"),
        "{body}"
    );
}

/// A7: a failed deploy with an environment change: the value reaches neither the MR note, the
/// dotenv, the JSON report nor the terminal.
#[test]
fn a_failed_deploy_never_puts_an_environment_value_in_the_merge_request() {
    let lab = Lab::service(&[]);
    let project = crate::lab::unique("43");
    let image = lab.image("crash-gl");
    lab.fault(&image, "exit", &["--exit-code", "4"]);
    let out = run(gitlab(
        &lab,
        &project,
        &[
            "deploy",
            "--image",
            &image,
            "--env",
            "web:API_KEY=hunter2-gitlab",
        ],
    ));
    out.code(1).says("environment.API_KEY (value hidden)");
    let list = gitlab_requests(&project);
    assert!(
        list.iter().any(|r| r["method"] == "POST"),
        "a note was posted: {list:?}"
    );
    let dir = lab.dir.path();
    for (name, text) in [
        ("stderr", out.stderr.clone()),
        ("stdout", out.stdout.clone()),
        (
            "dotenv",
            std::fs::read_to_string(dir.join("deployer.env")).unwrap(),
        ),
        (
            "report",
            std::fs::read_to_string(dir.join("deployer-report.json")).unwrap(),
        ),
        ("GitLab requests", serde_json::to_string(&list).unwrap()),
    ] {
        assert!(
            !text.contains("hunter2-gitlab"),
            "the value leaked into {name}"
        );
    }
}

#[test]
fn gitlab_without_a_token_or_refused_is_a_warning() {
    let lab = Lab::service(&[]);
    let project = crate::lab::unique("43");
    let mut cmd = gitlab(&lab, &project, &["deploy", "--image", &lab.image("v2")]);
    cmd.env_remove("DEPLOYER_GITLAB_TOKEN");
    run(cmd)
        .code(0)
        .says("no GitLab token in DEPLOYER_GITLAB_TOKEN");
    assert!(gitlab_requests(&project).is_empty());
    crate::lab::scenario(&[
        "forge-fail",
        "--repo",
        &format!("gitlab:{project}"),
        "--status",
        "403",
    ]);
    let image = lab.image("crash");
    lab.fault(&image, "exit", &[]);
    run(gitlab(&lab, &project, &["deploy", "--image", &image]))
        .code(1)
        .says("could not write the note on merge request !3");
}

/// A busy merge request: 150 notes written after the sticky note put it on page 2 of GitLab's
/// newest-first list (100 a page); the next deploy reads on to page 2 and updates the note there
/// instead of adding a second one.
#[test]
fn gitlab_note_on_page_two_is_updated_not_added_again() {
    let lab = Lab::service(&[]);
    let project = crate::lab::unique("44");
    run(gitlab(
        &lab,
        &project,
        &["deploy", "--image", &lab.image("v2")],
    ))
    .code(0);
    let forge =
        std::env::var("DEPLOYER_FORGE_URL").unwrap_or_else(|_| "http://127.0.0.1:5080".into());
    let seed = format!(
        "import json, urllib.request\n\
         for i in range(150):\n\
         \x20   body = json.dumps({{'body': f'review comment {{i}}'}}).encode()\n\
         \x20   urllib.request.urlopen(urllib.request.Request('{forge}/api/v4/projects/{project}/merge_requests/3/notes', data=body, method='POST', headers={{'PRIVATE-TOKEN': 'reviewer', 'Content-Type': 'application/json'}}), timeout=10)\n"
    );
    let seeded = std::process::Command::new("python3")
        .args(["-c", &seed])
        .output()
        .expect("python3 runs");
    assert!(
        seeded.status.success(),
        "{}",
        String::from_utf8_lossy(&seeded.stderr)
    );
    let before = gitlab_requests(&project).len();
    run(gitlab(
        &lab,
        &project,
        &["deploy", "--image", &lab.image("v3")],
    ))
    .code(0);
    let list = gitlab_requests(&project);
    let second = &list[before..];
    for r in second {
        assert!(r["violation"].is_null() && r["auth"] == "glpat-fake", "{r}");
    }
    let of = |method: &str| second.iter().filter(|r| r["method"] == method).count();
    assert_eq!(
        (of("POST"), of("PUT")),
        (0, 1),
        "the note on page 2 is updated, not added again: {second:#?}"
    );
    assert!(
        second.iter().any(|r| r["method"] == "GET"
            && r["query"]
                .as_str()
                .unwrap()
                .split('&')
                .any(|p| p == "page=2")),
        "page 2 was read: {second:#?}"
    );
    let put = second.iter().find(|r| r["method"] == "PUT").unwrap();
    assert!(
        put["body"]["body"]
            .as_str()
            .unwrap()
            .contains(&lab.image("v3")),
        "{put}"
    );
}
