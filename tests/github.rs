//! The pull request on GitHub, against the lab's fake GitHub (lab/forge.py), which checks every
//! request against GitHub's OpenAPI description (npm @octokit/openapi).

use crate::lab::{Lab, Run, run, scenario, unique};
use serde_json::Value;
use std::process::Command;

fn forge_url() -> String {
    std::env::var("DEPLOYER_FORGE_URL").unwrap_or_else(|_| "http://127.0.0.1:5080".into())
}

struct Pr {
    repo: String,
    head: String,
    event: std::path::PathBuf,
}

/// A pull_request event for PR #7 whose head commit differs from the merge commit in GITHUB_SHA.
fn pull_request_event(lab: &Lab) -> Pr {
    let repo = format!("acme/{}", unique("shop"));
    // The counter itself goes into the SHA, so every PR of a run has its own head (A9).
    let name = unique("");
    let counter: u32 = name
        .trim_end_matches('z')
        .rsplit('x')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no counter in {name}"));
    let head = format!(
        "{:040x}",
        u128::from(std::process::id()) << 64 | u128::from(counter)
    );
    let event = lab.write(
        "event.json",
        &format!(
            r#"{{"number": 7, "pull_request": {{"number": 7, "head": {{"sha": "{head}"}}}}}}"#
        ),
    );
    Pr { repo, head, event }
}

fn github(lab: &Lab, pr: &Pr, args: &[&str], event_name: &str) -> Command {
    let mut cmd = lab.command(args);
    cmd.env("GITHUB_ACTIONS", "true")
        .env("GITHUB_TOKEN", "ghs_faketoken")
        .env("GITHUB_REPOSITORY", &pr.repo)
        .env("GITHUB_API_URL", forge_url())
        .env("GITHUB_SERVER_URL", "https://github.example")
        .env("GITHUB_RUN_ID", "99")
        .env("GITHUB_EVENT_NAME", event_name)
        .env("GITHUB_EVENT_PATH", &pr.event)
        .env("GITHUB_SHA", "1111111111111111111111111111111111111111")
        .env("DEPLOYER_ENVIRONMENT", "staging");
    cmd
}

fn requests(repo: &str) -> Vec<Value> {
    let all = scenario(&["forge-requests", "--repo", repo]);
    let list = all.as_array().cloned().unwrap_or_default();
    for r in &list {
        assert!(
            r["violation"].is_null(),
            "a request GitHub's API description does not allow: {r}"
        );
        assert!(
            r["auth"]
                .as_str()
                .is_some_and(|a| a == "Bearer ghs_faketoken"),
            "{r}"
        );
    }
    list
}

fn sent<'a>(list: &'a [Value], method: &str, path_end: &str) -> Vec<&'a Value> {
    list.iter()
        .filter(|r| {
            r["method"] == method && r["path"].as_str().is_some_and(|p| p.contains(path_end))
        })
        .collect()
}

#[test]
fn one_sticky_comment_created_then_updated_and_a_status_on_the_head_commit() {
    let lab = Lab::service(&[]);
    let pr = pull_request_event(&lab);
    run(github(
        &lab,
        &pr,
        &["deploy", "--image", &lab.image("v2")],
        "pull_request",
    ))
    .code(0);
    run(github(
        &lab,
        &pr,
        &["deploy", "--image", &lab.image("v3")],
        "pull_request",
    ))
    .code(0);
    let list = requests(&pr.repo);
    let created = sent(&list, "POST", "/issues/7/comments");
    assert_eq!(created.len(), 1, "the comment is created once: {list:#?}");
    let updated = sent(&list, "PATCH", "/issues/comments/");
    assert_eq!(
        updated.len(),
        1,
        "the second run updates it in place: {list:#?}"
    );
    let body = updated[0]["body"]["body"].as_str().unwrap();
    assert!(
        body.contains("✅ deployed") && body.contains(&lab.image("v3")),
        "{body}"
    );
    assert!(body.contains(&format!(
        "<!-- deployer:v1 service={}/{} env=staging -->",
        lab.cluster, lab.service
    )));
    let statuses = sent(&list, "POST", &format!("/statuses/{}", pr.head));
    assert_eq!(
        statuses.len(),
        2,
        "a commit status on the PR head, not the merge commit: {list:#?}"
    );
    assert_eq!(
        statuses[0]["body"]["context"],
        format!("deployer/{}", lab.service)
    );
    assert_eq!(statuses[0]["body"]["state"], "success");
    assert_eq!(
        statuses[0]["body"]["target_url"],
        format!("https://github.example/{}/actions/runs/99", pr.repo)
    );
}

#[test]
fn a_failed_deploy_comments_the_cause_and_sets_a_failure_status() {
    let lab = Lab::service(&[]);
    let pr = pull_request_event(&lab);
    let image = lab.image("crash");
    lab.fault(
        &image,
        "exit",
        &["--exit-code", "9", "--log", "panic: no DATABASE_URL"],
    );
    run(github(
        &lab,
        &pr,
        &["deploy", "--image", &image],
        "pull_request",
    ))
    .code(1);
    let list = requests(&pr.repo);
    let body = sent(&list, "POST", "/issues/7/comments")[0]["body"]["body"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        body.contains("↩️ failed, rolled back")
            && body.contains("container web: exit code 9")
            && body.contains("panic: no DATABASE_URL"),
        "{body}"
    );
    assert_eq!(
        sent(&list, "POST", &format!("/statuses/{}", pr.head))[0]["body"]["state"],
        "failure"
    );
}

#[test]
fn on_push_the_pull_request_comes_from_the_commit() {
    let lab = Lab::service(&[]);
    let mut pr = pull_request_event(&lab);
    pr.event = lab.write("push.json", r#"{"ref": "refs/heads/feature"}"#);
    let sha = "2222222222222222222222222222222222222222";
    scenario(&[
        "forge-pulls",
        "--repo",
        &pr.repo,
        "--sha",
        sha,
        "--number",
        "12",
    ]);
    let mut cmd = github(&lab, &pr, &["deploy", "--image", &lab.image("v2")], "push");
    cmd.env("GITHUB_SHA", sha);
    run(cmd).code(0);
    let list = requests(&pr.repo);
    assert_eq!(
        sent(&list, "GET", &format!("/commits/{sha}/pulls")).len(),
        1
    );
    assert_eq!(
        sent(&list, "POST", "/issues/12/comments").len(),
        1,
        "{list:#?}"
    );
}

#[test]
fn no_pull_request_is_a_notice_not_a_failure() {
    let lab = Lab::service(&[]);
    let mut pr = pull_request_event(&lab);
    pr.event = lab.write("push.json", r#"{"ref": "refs/heads/main"}"#);
    let out = run(github(
        &lab,
        &pr,
        &["deploy", "--image", &lab.image("v2")],
        "push",
    ));
    out.code(0)
        .says("no pull request for this commit: no comment");
    assert!(sent(&requests(&pr.repo), "POST", "/comments").is_empty());
}

#[track_caller]
fn refused_report_keeps(out: &Run, code: i32) {
    out.code(code)
        .says("GitHub refused (403: Resource not accessible by integration)");
}

#[test]
fn a_403_is_a_warning_and_the_exit_code_stays() {
    let lab = Lab::service(&[]);
    let pr = pull_request_event(&lab);
    scenario(&["forge-fail", "--repo", &pr.repo, "--status", "403"]);
    refused_report_keeps(
        &run(github(
            &lab,
            &pr,
            &["deploy", "--image", &lab.image("v2")],
            "pull_request",
        )),
        0,
    );
    let image = lab.image("crash");
    lab.fault(&image, "exit", &[]);
    refused_report_keeps(
        &run(github(
            &lab,
            &pr,
            &["deploy", "--image", &image],
            "pull_request",
        )),
        1,
    );
}

#[test]
fn without_a_token_there_is_a_warning_and_no_request() {
    let lab = Lab::service(&[]);
    let pr = pull_request_event(&lab);
    let mut cmd = github(
        &lab,
        &pr,
        &["deploy", "--image", &lab.image("v2")],
        "pull_request",
    );
    cmd.env_remove("GITHUB_TOKEN");
    run(cmd).code(0).says("no GitHub token");
    assert!(requests(&pr.repo).is_empty());
}

#[test]
fn github_deployment_in_progress_then_success_on_the_head_commit() {
    let lab = Lab::service(&[]);
    let pr = pull_request_event(&lab);
    let mut cmd = github(
        &lab,
        &pr,
        &["deploy", "--image", &lab.image("v2"), "--github-deployment"],
        "pull_request",
    );
    cmd.env("DEPLOYER_ENVIRONMENT_URL", "https://staging.example");
    run(cmd).code(0);
    let list = requests(&pr.repo);
    let created: Vec<&Value> = sent(&list, "POST", "/deployments")
        .into_iter()
        .filter(|r| r["path"].as_str().unwrap().ends_with("/deployments"))
        .collect();
    assert_eq!(created.len(), 1, "{list:#?}");
    let body = &created[0]["body"];
    assert_eq!(body["ref"], pr.head.as_str());
    assert_eq!(body["auto_merge"], false);
    assert_eq!(body["required_contexts"], serde_json::json!([]));
    assert_eq!(body["environment"], "staging");
    let states: Vec<&Value> = sent(&list, "POST", "/statuses")
        .into_iter()
        .filter(|r| r["path"].as_str().unwrap().contains("/deployments/"))
        .map(|r| &r["body"]["state"])
        .collect();
    assert_eq!(
        states,
        [&Value::from("in_progress"), &Value::from("success")]
    );
    let last = sent(&list, "POST", "/statuses")
        .into_iter()
        .rfind(|r| r["path"].as_str().unwrap().contains("/deployments/"))
        .unwrap();
    assert_eq!(last["body"]["environment_url"], "https://staging.example");
}

#[test]
fn several_services_make_one_comment_and_one_status() {
    let api = Lab::service(&[]);
    let web = Lab::service(&[]);
    let pr = pull_request_event(&api);
    api.write(
        "deployer.toml",
        &format!(
            "name = \"shop\"\n\n[services.api]\ncluster = \"{}\"\nservice = \"{}\"\nimage = \"{}\"\n\n\
             [services.web]\ncluster = \"{}\"\nservice = \"{}\"\ndepends-on = [\"api\"]\nimage = \"{}\"\n",
            api.cluster,
            api.service,
            api.image("v2"),
            web.cluster,
            web.service,
            web.image("v2")
        ),
    );
    let cmd = github(&api, &pr, &["run"], "pull_request");
    // `run` with [services] takes no --cluster/--service: drop the ones Lab::command adds.
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .take_while(|a| a != "--cluster")
        .collect();
    let mut system = crate::lab::deployer(api.dir.path());
    system.args(&args);
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            system.env(k, v);
        }
    }
    run(system)
        .code(0)
        .says("deployed: every service's new tasks are running and healthy");
    let list = requests(&pr.repo);
    let created = sent(&list, "POST", "/issues/7/comments");
    assert_eq!(created.len(), 1, "one comment for the whole run: {list:#?}");
    let body = created[0]["body"]["body"].as_str().unwrap();
    for lab in [&api, &web] {
        assert!(
            body.contains(&format!("| `{}/{}` |", lab.cluster, lab.service)),
            "{body}"
        );
    }
    assert!(
        body.contains("<!-- deployer:v1 service=shop env=staging -->"),
        "{body}"
    );
    let statuses = sent(&list, "POST", &format!("/statuses/{}", pr.head));
    assert_eq!(statuses.len(), 1, "{list:#?}");
    assert_eq!(statuses[0]["body"]["context"], "deployer/shop");
    assert_eq!(statuses[0]["body"]["state"], "success");
}

/// A7: a failed deploy with an environment change: the value reaches neither the terminal, the
/// JSON lines, the summary, the JSON report, nor any request to GitHub (comment, status).
#[test]
fn a_failed_deploy_never_sends_an_environment_value() {
    let lab = Lab::service(&[]);
    let pr = pull_request_event(&lab);
    let image = lab.image("crash-env");
    lab.fault(&image, "exit", &["--exit-code", "4"]);
    let summary = lab.write("summary.md", "");
    let report = lab.dir.path().join("report.json");
    let mut cmd = github(
        &lab,
        &pr,
        &[
            "deploy",
            "--image",
            &image,
            "--env",
            "web:API_KEY=hunter2-failed",
            "--output",
            "json",
        ],
        "pull_request",
    );
    cmd.env("GITHUB_STEP_SUMMARY", &summary)
        .env("DEPLOYER_REPORT", &report);
    let out = run(cmd);
    out.code(1).says("environment.API_KEY (value hidden)");
    let list = requests(&pr.repo);
    assert!(
        !sent(&list, "POST", "/issues/7/comments").is_empty(),
        "a comment was posted: {list:?}"
    );
    for (name, text) in [
        ("stderr", out.stderr.clone()),
        ("stdout", out.stdout.clone()),
        ("summary", std::fs::read_to_string(&summary).unwrap()),
        ("report", std::fs::read_to_string(&report).unwrap()),
        ("GitHub requests", serde_json::to_string(&list).unwrap()),
    ] {
        assert!(
            !text.contains("hunter2-failed"),
            "the value leaked into {name}"
        );
    }
}

#[test]
fn a_network_error_while_publishing_is_a_warning_and_the_exit_code_stays() {
    // README: a report that cannot be posted (here: nothing listens where the API should be) is a
    // warning, never a changed exit code.
    let lab = Lab::service(&[]);
    let pr = pull_request_event(&lab);
    let mut cmd = github(
        &lab,
        &pr,
        &["deploy", "--image", &lab.image("v2")],
        "pull_request",
    );
    cmd.env("GITHUB_API_URL", "http://127.0.0.1:9");
    let out = run(cmd);
    out.code(0)
        .says("deployed: the new tasks are running and healthy")
        .says("warning: could not set the commit status")
        .says("warning: could not comment on pull request #7");
    assert!(
        requests(&pr.repo).is_empty(),
        "nothing reached the fake GitHub"
    );
}
