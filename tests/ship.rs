//! What ships: action.yml, the example workflows and the GitLab template pass schema validation
//! (check-jsonschema's vendored schemas, offline) and zizmor's offline audit; the binary reads the
//! Action's INPUT_* variables as it does flags.

use crate::lab::{Lab, run};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tool(name: &str) -> PathBuf {
    let path = repo().join(".lab/venv/bin").join(name);
    assert!(
        path.exists(),
        "{name} is not installed in .lab/venv: run `lab/up` (or `scripts/test`)"
    );
    path
}

#[track_caller]
fn passes(mut cmd: Command) {
    let out = cmd.current_dir(repo()).output().expect("the tool runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn workflows() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("workflows/github"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 4,
        "the example workflows, the project's CI and the release workflow: {files:?}"
    );
    files
}

#[test]
fn action_workflows_and_gitlab_template_pass_their_schemas() {
    let mut cmd = Command::new(tool("check-jsonschema"));
    cmd.args(["--builtin-schema", "vendor.github-actions", "action.yml"]);
    passes(cmd);
    let mut cmd = Command::new(tool("check-jsonschema"));
    cmd.args(["--builtin-schema", "vendor.github-workflows"])
        .args(workflows());
    passes(cmd);
    let mut cmd = Command::new(tool("check-jsonschema"));
    cmd.args([
        "--builtin-schema",
        "vendor.gitlab-ci",
        "workflows/gitlab/deployer.gitlab-ci.yml",
    ]);
    passes(cmd);
}

#[test]
fn zizmor_finds_nothing() {
    let mut cmd = Command::new(tool("zizmor"));
    cmd.args(["--offline", "--config", "workflows/zizmor.yml"])
        .args(workflows())
        .arg("action.yml");
    passes(cmd);
}

#[test]
fn the_action_image_is_pinned_by_version_not_built() {
    let action: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(repo().join("action.yml")).unwrap()).unwrap();
    assert_eq!(action["runs"]["using"], "docker");
    let image = action["runs"]["image"].as_str().expect("runs.image");
    let version = image.rsplit(':').next().unwrap_or_default();
    assert!(
        image.starts_with("docker://ghcr.io/")
            && version.chars().next().is_some_and(|c| c.is_ascii_digit()),
        "{image}"
    );
    assert!(repo().join("Dockerfile").exists());
}

#[test]
fn the_binary_reads_action_inputs_as_flags() {
    let lab = Lab::service(&[]);
    let outputs = lab.write("github_output", "");
    let image = lab.image("from-input");
    // What the runner does for `uses: deployer-project/deployer` with `with:` inputs and `args: [run]`.
    let mut cmd = crate::lab::deployer(lab.dir.path());
    cmd.arg("run")
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", &outputs)
        .env("INPUT_CLUSTER", &lab.cluster)
        .env("INPUT_SERVICE", &lab.service)
        .env("INPUT_IMAGE", format!("web={image}"))
        .env("INPUT_WAIT-FOR-MINUTES", "5")
        .env("INPUT_MAX-FAILED-TASKS", "2")
        .env("INPUT_ROLLBACK", "true")
        .env("INPUT_FORCE-NEW-DEPLOYMENT", "false")
        .env("INPUT_CREATE-REPOSITORY", "false")
        .env("INPUT_WAIT-FOR-IDLE", "false")
        .env("INPUT_GITHUB-DEPLOYMENT", "false")
        .env("INPUT_CONTAINER", "")
        .env("INPUT_TAGS", "");
    run(cmd).code(0).says("no build, no push").says("deployed");
    let text = std::fs::read_to_string(&outputs).unwrap();
    assert!(
        text.contains(&"image<<".to_string()) && text.contains(&image),
        "{text}"
    );
    let mut cmd = crate::lab::deployer(lab.dir.path());
    cmd.arg("run")
        .env("GITHUB_ACTIONS", "true")
        .env("INPUT_ROLLBACK", "perhaps");
    run(cmd)
        .code(2)
        .says("invalid input `rollback`: `perhaps` is not true or false");
}

/// What the runner sets for a Docker action step: an `INPUT_<NAME>` for every input action.yml
/// declares, its default (or empty) unless `with` gives it.
fn runner_inputs(cmd: &mut Command, with: &[(&str, &str)]) {
    let action: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(repo().join("action.yml")).unwrap()).unwrap();
    for (name, input) in action["inputs"].as_mapping().expect("inputs") {
        let name = name.as_str().unwrap();
        let given = with.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        let value = given
            .or_else(|| input["default"].as_str().filter(|d| !d.contains("${{")))
            .unwrap_or("");
        cmd.env(format!("INPUT_{}", name.to_uppercase()), value);
    }
}

/// R16: inputs the workflow leaves out send no flag, so deployer.toml (and DEPLOYER_*) apply:
/// `timeout = "20s"` ends a stuck rollout after 20 s, not after a 15-minute input default.
#[test]
fn action_inputs_left_out_leave_deployer_toml_in_force() {
    let lab = Lab::service(&[]);
    let image = lab.image("stuck-action");
    lab.fault(&image, "pending", &[]);
    lab.write("deployer.toml", "timeout = \"20s\"\nmax-failed-tasks = 3\n");
    let mut cmd = crate::lab::deployer(lab.dir.path());
    cmd.args(["run", "--output", "json"])
        .env("GITHUB_ACTIONS", "true");
    runner_inputs(
        &mut cmd,
        &[
            ("cluster", &lab.cluster),
            ("service", &lab.service),
            ("image", &format!("web={image}")),
        ],
    );
    let started = std::time::Instant::now();
    let out = run(cmd);
    out.code(1).says("the rollout did not finish within 20s");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(120),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
    // A value given in `with` is still a flag, above the file.
    let mut cmd = crate::lab::deployer(lab.dir.path());
    cmd.args(["plan", "--output", "json"])
        .env("GITHUB_ACTIONS", "true");
    runner_inputs(&mut cmd, &[("wait-for-minutes", "ten")]);
    run(cmd).code(2).says("invalid input `wait-for-minutes`");
}

/// The GitLab template, included and extended as a user would, run by gitlab-ci-local in shell
/// mode against the lab. Services are cleared: a prebuilt image needs no Docker-in-Docker, and
/// nothing may be pulled from outside this machine.
#[test]
fn gitlab_template_runs_in_gitlab_ci_local() {
    let lab = Lab::service(&[]);
    let gcl = repo().join(".lab/npm/node_modules/.bin/gitlab-ci-local");
    assert!(
        gcl.exists(),
        "gitlab-ci-local is not installed: run `lab/up` (or `scripts/test`)"
    );
    let project = lab.dir.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::copy(
        repo().join("workflows/gitlab/deployer.gitlab-ci.yml"),
        project.join("deployer.gitlab-ci.yml"),
    )
    .unwrap();
    let image = lab.image("from-gitlab");
    std::fs::write(
        project.join(".gitlab-ci.yml"),
        format!(
            "include:\n  - local: deployer.gitlab-ci.yml\ndeploy:\n  extends: .deployer\n  services: []\n  environment:\n    name: lab\n  variables:\n    DEPLOYER_CLUSTER: {}\n    DEPLOYER_SERVICE: {}\n    DEPLOYER_IMAGE: web={image}\n",
            lab.cluster, lab.service
        ),
    )
    .unwrap();
    for args in [
        &["init", "-q"][..],
        &["add", "."],
        &[
            "-c",
            "user.name=lab",
            "-c",
            "user.email=lab@example.com",
            "commit",
            "-qm",
            "ci",
        ],
    ] {
        assert!(
            Command::new("git")
                .args(args)
                .current_dir(&project)
                .status()
                .unwrap()
                .success()
        );
    }
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_deployer"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new(gcl);
    cmd.current_dir(&project)
        .env("PATH", path)
        .arg("--force-shell-executor");
    for var in [
        format!("AWS_ENDPOINT_URL={}", crate::lab::endpoint()),
        "AWS_ACCESS_KEY_ID=test".into(),
        "AWS_SECRET_ACCESS_KEY=test".into(),
        "AWS_REGION=us-east-1".into(),
        "AWS_EC2_METADATA_DISABLED=true".into(),
        "GITLAB_CI=true".into(), // gitlab-ci-local says false to mark a local run; GitLab says true
    ] {
        cmd.args(["--variable", &var]);
    }
    let out = cmd.arg("deploy").output().expect("gitlab-ci-local runs");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && log.contains("PASS  deploy"),
        "{log}"
    );
    assert!(
        log.contains("deployed: the new tasks are running and healthy"),
        "{log}"
    );
    let dotenv = std::fs::read_to_string(
        project.join(".gitlab-ci-local/artifacts/deploy/.gitlab-ci-reports/dotenv/deployer.env"),
    )
    .unwrap_or_else(|e| panic!("no dotenv report artifact ({e}):\n{log}"));
    assert!(dotenv.contains("DEPLOYER_OUTCOME=deployed\n"), "{dotenv}");
    assert!(
        project
            .join(".gitlab-ci-local/artifacts/deploy/deployer-report.json")
            .exists(),
        "{log}"
    );
    let running = crate::lab::scenario(&[
        "service",
        "--cluster",
        &lab.cluster,
        "--service",
        &lab.service,
    ]);
    assert_eq!(running["images"]["web"], image.as_str());
}
