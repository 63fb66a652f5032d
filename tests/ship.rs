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
    let action = std::fs::read_to_string(repo().join("action.yml")).unwrap();
    let image = action
        .lines()
        .find(|l| l.trim_start().starts_with("image:"))
        .expect("runs.image");
    assert!(
        image.contains("docker://ghcr.io/")
            && image
                .rsplit(':')
                .next()
                .is_some_and(|v| v.chars().next().is_some_and(|c| c.is_ascii_digit())),
        "{image}"
    );
    assert!(Path::new(&repo().join("Dockerfile")).exists());
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
        text.contains(&format!("image<<")) && text.contains(&image),
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
