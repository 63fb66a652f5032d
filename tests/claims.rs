//! README claims that had no test (issue 13, "Trust under faults"): extra tags added without a pull, only missing layers pushed, `--github-deployment` on a failure and on a hanging API, the zone-spread warning in the PR comment and the JSON, `DEPLOYER_DOTENV` and `DEPLOYER_GITLAB_TOKEN_VARIABLE`, `--rollback-scope service` with a dependent, and `--keep-revisions` keeping what is in use with its trouble only a warning.

#[allow(dead_code)]
mod lab;

use lab::{Lab, run, scenario, unique};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn forge_url() -> String {
    std::env::var("DEPLOYER_FORGE_URL").unwrap_or_else(|_| "http://127.0.0.1:5080".into())
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=lab", "-c", "user.email=lab@example.com"])
        .args(["-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Writes `files` into the build context `app/` (a git repository) and commits them; the commit.
fn commit(lab: &Lab, files: &[(&str, &str)]) -> String {
    lab::require_docker();
    let dir = lab.dir.path().join("app");
    if !dir.join(".git").exists() {
        std::fs::create_dir_all(&dir).expect("the context directory");
        git(&dir, &["init", "-q"]);
    }
    for (name, text) in files {
        std::fs::write(dir.join(name), text).expect("a context file");
    }
    git(&dir, &["add", "."]);
    git(&dir, &["commit", "-qm", "app"]);
    git(&dir, &["rev-parse", "HEAD"])
}

fn digest(repo: &str, tag: &str) -> Option<String> {
    scenario(&["digest", "--repository", repo, "--tag", tag])["digest"]
        .as_str()
        .map(String::from)
}

/// `deployer ARGS` in GitHub Actions on pull request #7 of a fresh repository of the fake GitHub.
fn github(lab: &Lab, args: &[&str]) -> (String, Command) {
    let repo = format!("acme/{}", unique("claims"));
    let event = lab.write(
        "event.json",
        r#"{"number": 7, "pull_request": {"number": 7, "head": {"sha": "2222222222222222222222222222222222222222"}}}"#,
    );
    let mut cmd = lab.command(args);
    cmd.env("GITHUB_ACTIONS", "true")
        .env("GITHUB_TOKEN", "ghs_faketoken")
        .env("GITHUB_REPOSITORY", &repo)
        .env("GITHUB_API_URL", forge_url())
        .env("GITHUB_SERVER_URL", "https://github.example")
        .env("GITHUB_RUN_ID", "99")
        .env("GITHUB_EVENT_NAME", "pull_request")
        .env("GITHUB_EVENT_PATH", event)
        .env("GITHUB_SHA", "1111111111111111111111111111111111111111");
    (repo, cmd)
}

/// What deployer sent the fake forge for `repo` (`gitlab:PROJECT` for GitLab), each request
/// one GitHub's API description allows.
fn forge_requests(repo: &str) -> Vec<Value> {
    let list = scenario(&["forge-requests", "--repo", repo]);
    let list = list.as_array().cloned().unwrap_or_default();
    for r in &list {
        assert!(r["violation"].is_null(), "a request GitHub rejects: {r}");
    }
    list
}

/// The states of the GitHub deployment statuses posted, in order.
fn deployment_states(list: &[Value]) -> Vec<&Value> {
    list.iter()
        .filter(|r| {
            r["method"] == "POST"
                && r["path"]
                    .as_str()
                    .is_some_and(|p| p.contains("/deployments/") && p.ends_with("/statuses"))
        })
        .map(|r| &r["body"]["state"])
        .collect()
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn active_revisions(family: &str) -> Value {
    scenario(&["revisions", "--family", family])["active"].clone()
}

/// Claim 1: the commit's tag already in ECR, a missing extra tag is added to the same image
/// (BatchGetImage + PutImage), with no engine at all: nothing is built, pushed or pulled.
#[test]
fn missing_extra_tags_are_added_to_an_image_in_ecr_without_a_pull() {
    let lab = Lab::service(&[]);
    let sha = commit(
        &lab,
        &[
            ("Dockerfile", "FROM scratch\nCOPY index.html /app/\n"),
            ("index.html", &lab.tag),
        ],
    );
    let repo = lab.repository();
    let build = ["run", "--context", "app", "--repository", &repo];
    let mut first = build.to_vec();
    first.push("--create-repository");
    lab.deployer(&first).code(0).says("pushed");
    let pushed = digest(&repo, &sha[..12]).expect("the commit's tag is in ECR");
    let extra = format!("release-{}", &sha[..12]);
    assert_eq!(digest(&repo, &extra), None);
    let mut tags = build.to_vec();
    tags.extend(["--tag", "{sha}", "--tag", "release-{sha}"]);
    let no_engine = || {
        let mut cmd = lab.command(&tags);
        cmd.env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
        run(cmd)
    };
    no_engine()
        .code(0)
        .says("is already in ECR")
        .says(&format!("tagged it {extra} too (no pull)"))
        .says("nothing to deploy");
    assert_eq!(digest(&repo, &extra).as_deref(), Some(pushed.as_str()));
    // A tag already there is left alone: one PutImage in all, for the tag that was missing.
    let again = no_engine();
    again.code(0).says("is already in ECR");
    assert!(!again.stderr.contains("tagged it"), "{}", again.stderr);
    let puts: Vec<Value> = lab
        .writes()
        .into_iter()
        .filter(|w| w["action"] == "ecr:PutImage")
        .map(|w| w["imageTag"].clone())
        .collect();
    assert_eq!(puts, [json!(extra)]);
}

/// Claim 2: a second commit that changes one of two layers uploads that one only, and says so.
#[test]
fn only_the_layers_the_registry_lacks_are_pushed_with_the_counts() {
    let lab = Lab::service(&[]);
    // A base layer no other push to this registry has, so nothing is mounted from elsewhere.
    let base = format!("{} {}", lab.tag, now());
    let first = commit(
        &lab,
        &[
            (
                "Dockerfile",
                "FROM scratch\nCOPY base.txt /base.txt\nCOPY index.html /app/\n",
            ),
            ("base.txt", &base),
            ("index.html", &format!("one {base}")),
        ],
    );
    let repo = lab.repository();
    let args = ["run", "--context", "app", "--repository", &repo];
    let mut create = args.to_vec();
    create.push("--create-repository");
    lab.deployer(&create).code(0).says(&format!(
        "/{repo}:{}: 2 layer(s) uploaded, 0 already in the registry",
        &first[..12]
    ));
    let second = commit(&lab, &[("index.html", &format!("two {base}"))]);
    lab.deployer(&args)
        .code(0)
        .says(&format!(
            "/{repo}:{}: 1 layer(s) uploaded, 1 already in the registry",
            &second[..12]
        ))
        .says("deployed");
    assert_ne!(digest(&repo, &first[..12]), digest(&repo, &second[..12]));
}

/// Claim 3: a failed deploy leaves its GitHub deployment `failure`, with the reason.
#[test]
fn a_failed_deploy_sets_its_github_deployment_to_failure() {
    let lab = Lab::service(&[]);
    let bad = lab.image("crash");
    lab.fault(&bad, "exit", &["--exit-code", "3"]);
    let (repo, cmd) = github(&lab, &["deploy", "--image", &bad, "--github-deployment"]);
    run(cmd).code(1).says("2 of the new tasks stopped");
    let list = forge_requests(&repo);
    let created = list
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"] == format!("/repos/{repo}/deployments"))
        .count();
    assert_eq!(created, 1, "{list:#?}");
    assert_eq!(
        deployment_states(&list),
        [&json!("in_progress"), &json!("failure")]
    );
    let failure = list
        .iter()
        .rfind(|r| {
            r["body"]["state"] == "failure" && r["path"].to_string().contains("/deployments/")
        })
        .expect("the failure status");
    assert!(
        failure["body"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("2 of the new tasks stopped")),
        "{failure}"
    );
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
}

/// Claim 3: GitHub accepts the deployment's creation and never answers: the service update waits
/// about 10 s for it, then the deploy goes on without a GitHub deployment.
#[test]
fn a_hanging_github_deployment_call_holds_the_deploy_about_ten_seconds() {
    let lab = Lab::service(&[]);
    let (repo, cmd) = github(
        &lab,
        &["deploy", "--image", &lab.image("v2"), "--github-deployment"],
    );
    // Held for 60 s (then the forge answers by itself): every attempt hangs.
    let hang = scenario(&[
        "forge-hang",
        "--method",
        "POST",
        "--path-regex",
        &format!("/repos/{repo}/deployments"),
        "--count",
        "5",
        "--delay-ms",
        "60000",
    ]);
    let id = hang["id"].as_u64().expect("the forge names the hang");
    let started = now();
    let out = run(cmd);
    let took = now() - started;
    out.code(0).says("deployed");
    assert!(
        out.stderr.contains("no GitHub deployment")
            || out
                .stderr
                .contains("could not create the GitHub deployment"),
        "{}",
        out.stderr
    );
    let fired = scenario(&["forge-hangs"])
        .as_array()
        .into_iter()
        .flatten()
        .find(|h| h["id"].as_u64() == Some(id))
        .and_then(|h| h["fired"].as_u64());
    assert!(
        fired >= Some(1),
        "the deployment call never reached the hang"
    );
    let update = lab
        .writes()
        .iter()
        .find(|w| w["action"] == "ecs:UpdateService")
        .and_then(|w| w["t"].as_f64())
        .expect("the service was updated");
    let held = update - started;
    eprintln!("UpdateService {held:.1} s after the start; exit after {took:.1} s");
    assert!(
        (9.0..25.0).contains(&held),
        "the hanging GitHub call held the update {held:.1} s (about 10 s expected)\n{}",
        out.stderr
    );
    assert!(deployment_states(&forge_requests(&repo)).is_empty());
}

/// Claim 4: tasks all in one of two zones: the warning is a JSON `warning` line, in the JSON
/// report's warnings and in the PR comment.
#[test]
fn the_zone_spread_warning_reaches_the_json_and_the_pr_comment() {
    let lab = Lab::service(&[]);
    let one = lab.image("onezone");
    lab.fault(&one, "one_zone", &[]);
    let report = lab.dir.path().join("report.json");
    let (repo, mut cmd) = github(&lab, &["deploy", "--image", &one, "--output", "json"]);
    cmd.env("DEPLOYER_REPORT", &report);
    let out = run(cmd);
    out.code(0);
    let zone = "all 2 healthy tasks run in us-east-1a, although the service's subnets span us-east-1a, us-east-1b";
    let lines = json_lines(&out.stdout);
    assert!(
        lines
            .iter()
            .any(|e| e["event"] == "warning"
                && e["message"].as_str().is_some_and(|m| m.contains(zone))),
        "no JSON warning line\n{}",
        out.stdout
    );
    assert_eq!(out.result()["outcome"], "deployed");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert!(json["warnings"].to_string().contains(zone), "{json}");
    let list = forge_requests(&repo);
    let comment = list
        .iter()
        .find(|r| r["method"] == "POST" && r["path"] == format!("/repos/{repo}/issues/7/comments"))
        .unwrap_or_else(|| panic!("no PR comment: {list:#?}"));
    let body = comment["body"]["body"].as_str().unwrap();
    assert!(body.contains(&format!("⚠️ {zone}")), "{body}");
}

/// Claim 5: `DEPLOYER_DOTENV` moves the dotenv report; `DEPLOYER_GITLAB_TOKEN_VARIABLE` names the
/// variable holding the token, taking the place of `DEPLOYER_GITLAB_TOKEN`.
#[test]
fn dotenv_path_and_gitlab_token_variable_are_honoured() {
    let lab = Lab::service(&[]);
    let project = unique("45");
    std::fs::create_dir(lab.dir.path().join("out")).unwrap();
    let mut cmd = lab.command(&["deploy", "--image", &lab.image("v2")]);
    cmd.env("GITLAB_CI", "true")
        .env("CI_API_V4_URL", format!("{}/api/v4", forge_url()))
        .env("CI_PROJECT_ID", &project)
        .env("CI_MERGE_REQUEST_IID", "3")
        .env("DEPLOYER_GITLAB_TOKEN", "glpat-default")
        .env("DEPLOYER_GITLAB_TOKEN_VARIABLE", "SHOP_NOTES_TOKEN")
        .env("SHOP_NOTES_TOKEN", "glpat-named")
        .env("DEPLOYER_DOTENV", "out/deploy.env");
    run(cmd).code(0);
    let dotenv = std::fs::read_to_string(lab.dir.path().join("out/deploy.env"))
        .expect("the dotenv at DEPLOYER_DOTENV");
    assert!(dotenv.contains("DEPLOYER_OUTCOME=deployed\n"), "{dotenv}");
    assert!(!lab.dir.path().join("deployer.env").exists());
    let list = forge_requests(&format!("gitlab:{project}"));
    assert!(
        list.iter().any(|r| r["method"] == "POST"),
        "no note: {list:?}"
    );
    for r in &list {
        assert_eq!(r["auth"], "glpat-named", "{r}");
    }
}

/// Claim 6: `--rollback-scope service`: the failed service is rolled back, the service that
/// depends on it is skipped (never touched), an independent one stays deployed.
#[test]
fn rollback_scope_service_skips_the_dependents_and_keeps_the_rest() {
    let api = Lab::service(&[]);
    let web = Lab::service(&[]);
    let worker = Lab::service(&[]);
    let bad = api.image("crash");
    api.fault(&bad, "exit", &[]);
    let table = |name: &str, lab: &Lab, image: &str, extra: &str| {
        format!(
            "[services.{name}]\ncluster = \"{}\"\nservice = \"{}\"\nimage = \"web={image}\"\n{extra}\n",
            lab.cluster, lab.service
        )
    };
    api.write(
        "deployer.toml",
        &[
            "name = \"shop\"\ntimeout = \"60s\"\n".to_string(),
            table("api", &api, &bad, ""),
            table("web", &web, &web.image("v2"), "depends-on = [\"api\"]"),
            table("worker", &worker, &worker.image("v2"), ""),
        ]
        .join("\n"),
    );
    let mut cmd = lab::deployer(api.dir.path());
    cmd.args(["run", "--rollback-scope", "service", "--output", "json"]);
    let out = run(cmd);
    out.code(1).says("2 of the new tasks stopped");
    let result = out.result();
    let outcome = |lab: &Lab| {
        result["services"]
            .as_array()
            .expect("a services array")
            .iter()
            .find(|s| s["service"] == lab.service.as_str())
            .map(|s| s["outcome"].clone())
            .unwrap_or_else(|| panic!("no {} in {result}", lab.service))
    };
    assert_eq!(outcome(&api), "rolled_back");
    assert_eq!(outcome(&web), "skipped");
    assert_eq!(outcome(&worker), "deployed");
    assert_eq!(api.running_task_definition(), api.task_definition_arn);
    web.assert_no_writes();
    assert_ne!(worker.running_task_definition(), worker.task_definition_arn);
}

/// Claim 7: `--keep-revisions` keeps a revision another service of the same cluster is deploying,
/// and one it runs with no task at all (only the service says so), and deregisters the rest.
#[test]
fn keep_revisions_keeps_what_another_service_of_the_cluster_runs_or_deploys() {
    let lab = Lab::service(&[]);
    let family = lab.service.clone();
    let arn = |n: u32| {
        let one = &lab.task_definition_arn;
        format!("{}:{n}", &one[..one.rfind(':').unwrap()])
    };
    // 2: registered by another pipeline, never used.
    scenario(&["register", "--family", &family, "--image", "a:2"]);
    // 3: another service of the cluster is deploying it (its tasks never get past PENDING).
    let busy = unique("busy");
    let stuck = lab.image("stuck");
    lab.fault(&stuck, "pending", &[]);
    let on = |service: &str, revision: &str, extra: &[&str]| {
        let mut args = vec!["create", "--cluster", &lab.cluster, "--service", service];
        args.extend([
            "--family",
            &family,
            "--task-definition",
            revision,
            "--no-lb",
        ]);
        args.extend(extra);
        scenario(&args);
    };
    on(&busy, &lab.task_definition_arn, &["--desired", "1"]);
    let deploying = scenario(&[
        "update",
        "--cluster",
        &lab.cluster,
        "--service",
        &busy,
        "--image",
        &stuck,
    ]);
    assert_eq!(deploying["task_definition_arn"], arn(3).as_str());
    // 4: another service of the cluster runs it at desiredCount 0: no task names it.
    scenario(&["register", "--family", &family, "--image", "a:4"]);
    on(&unique("idle"), &arn(4), &["--desired", "0"]);
    lab.deployer(&[
        "deploy",
        "--image",
        &lab.image("v5"),
        "--keep-revisions",
        "1",
    ])
    .code(0)
    .says(&format!(
        "deregistered 1 old revision(s) of `{family}`: {family}:2"
    ));
    // 5 is new, 1 the rollback target, 3 being deployed, 4 run by a service without tasks.
    assert_eq!(active_revisions(&family), json!([1, 3, 4, 5]));
}

/// Claim 7: trouble while tidying revisions is a warning: the deploy stays deployed, exit 0.
#[test]
fn keep_revisions_trouble_is_only_a_warning() {
    let lab = Lab::service(&[]);
    let family = lab.service.clone();
    scenario(&["register", "--family", &family, "--image", "a:2"]);
    scenario(&[
        "api-fault",
        "--action",
        "ecs:DeregisterTaskDefinition",
        "--kind",
        "denied",
        "--count",
        "5",
        "--match",
        &family,
    ]);
    let out = lab.deployer(&[
        "deploy",
        "--image",
        &lab.image("v3"),
        "--keep-revisions",
        "1",
        "--output",
        "json",
    ]);
    out.code(0).says(&format!(
        "warning: tidying revisions of `{family}` (--keep-revisions 1): failed to deregister"
    ));
    assert_eq!(out.result()["outcome"], "deployed");
    assert!(
        json_lines(&out.stdout)
            .iter()
            .any(|e| e["event"] == "warning"
                && e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("tidying revisions"))),
        "{}",
        out.stdout
    );
    assert_eq!(
        lab::api_fault_counts(&family, "ecs:DeregisterTaskDefinition").0,
        1
    );
    assert_eq!(active_revisions(&family), json!([1, 2, 3]));
    assert_ne!(lab.running_task_definition(), lab.task_definition_arn);
}
