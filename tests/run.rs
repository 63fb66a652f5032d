//! `deployer run` with real parts: the Docker engine builds a FROM-scratch image, pushes it to the
//! registry behind the lab's ECR, and the service is deployed by digest.

use crate::lab::{Lab, run, scenario};
use std::path::Path;
use std::process::Command;

/// A build context: a git repository with a FROM-scratch Dockerfile around Debian's static busybox.
pub(crate) fn app(lab: &Lab, dockerfile: &str) -> String {
    crate::lab::require_docker();
    let dir = lab.dir.path().join("app");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy("/bin/busybox", dir.join("busybox"))
        .expect("Debian busybox-static is installed (lab/up installs it)");
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    std::fs::write(dir.join(".dockerignore"), "secret.txt\n*.local\n").unwrap();
    std::fs::write(dir.join("secret.txt"), "do not ship me").unwrap();
    std::fs::write(dir.join("index.html"), format!("<h1>{}</h1>", lab.tag)).unwrap();
    let git = |args: &[&str]| {
        let ok = Command::new("git")
            .args([
                "-c",
                "user.name=lab",
                "-c",
                "user.email=lab@example.com",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("git runs");
        assert!(
            ok.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&ok.stderr)
        );
        String::from_utf8_lossy(&ok.stdout).trim().to_string()
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-qm", "app"]);
    git(&["rev-parse", "HEAD"])
}

pub(crate) const DOCKERFILE: &str = r#"FROM scratch
COPY busybox /bin/busybox
COPY . /app/
ARG GREETING
RUN ["/bin/busybox", "sh", "-c", "test ! -e /app/secret.txt && test \"$GREETING\" = hi"]
ENTRYPOINT ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/app"]
"#;

fn run_args(repo: &str) -> Vec<&str> {
    vec![
        "run",
        "--context",
        "app",
        "--repository",
        repo,
        "--build-arg",
        "GREETING=hi",
    ]
}

fn digest(repo: &str, tag: &str) -> Option<String> {
    scenario(&["digest", "--repository", repo, "--tag", tag])["digest"]
        .as_str()
        .map(String::from)
}

pub(crate) fn image_in_service(lab: &Lab) -> String {
    scenario(&[
        "service",
        "--cluster",
        &lab.cluster,
        "--service",
        &lab.service,
    ])["images"]["web"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn run_builds_pushes_and_deploys_by_digest() {
    let lab = Lab::service(&[]);
    let sha = app(&lab, DOCKERFILE);
    let repo = format!("app-{}", lab.tag);
    let mut args = run_args(&repo);
    args.extend([
        "--create-repository",
        "--tag",
        "{sha}",
        "--tag",
        "{branch}-{sha}",
        "--output",
        "json",
    ]);
    let out = lab.deployer(&args);
    // Not a terminal (CI): plain timestamped lines, every build step among them.
    out.code(0)
        .says("building")
        .says("    build: Step 1/")
        .says("pushed")
        .says("deployed");
    let tag = &sha[..12];
    let pushed = digest(&repo, tag).expect("the image is in the registry behind ECR");
    assert_eq!(
        digest(&repo, &format!("main-{tag}")).as_deref(),
        Some(pushed.as_str())
    );
    let deployed = image_in_service(&lab);
    assert!(
        deployed.ends_with(&format!("@{pushed}")),
        "task definition image {deployed} is not {pushed}"
    );
    // The OCI labels carry the commit.
    let inspect = Command::new("docker")
        .args([
            "image",
            "inspect",
            "--format",
            "{{index .Config.Labels \"org.opencontainers.image.revision\"}}",
        ])
        .arg(format!("{}:{tag}", deployed.split('@').next().unwrap()))
        .output()
        .expect("docker runs");
    assert_eq!(String::from_utf8_lossy(&inspect.stdout).trim(), sha);

    // The same commit again: no build, no push, nothing to deploy.
    let again = lab.deployer(&run_args(&repo));
    again
        .code(0)
        .says("is already in ECR")
        .says("no build, no push")
        .says("nothing to deploy");
    assert!(!again.stderr.contains("building"), "{}", again.stderr);
}

#[test]
fn deploy_by_tag_keeps_the_tag() {
    let lab = Lab::service(&[]);
    let sha = app(&lab, DOCKERFILE);
    let repo = format!("app-{}", lab.tag);
    let mut args = run_args(&repo);
    args.extend(["--create-repository", "--deploy-by-tag"]);
    lab.deployer(&args).code(0);
    assert!(image_in_service(&lab).ends_with(&format!("/{repo}:{}", &sha[..12])));
}

#[test]
fn failing_build_step_exits_2_with_the_step_and_its_output() {
    let lab = Lab::service(&[]);
    app(
        &lab,
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo compiling the app; echo boom >&2; exit 3\"]\n",
    );
    let repo = format!("app-{}", lab.tag);
    let mut args = run_args(&repo);
    args.push("--create-repository");
    lab.deployer(&args)
        .code(2)
        .says("docker build failed at Step 3/5 : RUN")
        .says("output of that step:")
        .says("\n    compiling the app")
        .says("\n    boom")
        .says("compiling the app")
        .says("returned a non-zero code: 3")
        .says("refused: nothing was changed");
    // "Nothing was changed" includes ECR: the repository is created only once the build succeeded
    // (tests-audit A1; `writes()` sees the repository's writes).
    lab.assert_no_writes();
    assert_eq!(digest(&repo, "latest"), None);
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
}

#[test]
fn missing_dockerfile_exits_2() {
    let lab = Lab::service(&[]);
    app(&lab, DOCKERFILE);
    let repo = lab.repository();
    let mut args = run_args(&repo);
    args.extend(["--create-repository", "--dockerfile", "Dockerfile.prod"]);
    lab.deployer(&args)
        .code(2)
        .says("Dockerfile")
        .says("Dockerfile.prod` not found")
        .says("refused: nothing was changed");
    // No ecr:CreateRepository either: the Dockerfile is looked for first.
    lab.assert_no_writes();
}

/// R17: `run` checks the files and containers before it creates, builds or pushes anything.
#[test]
fn bad_input_is_refused_before_the_repository_build_or_push() {
    let lab = Lab::service(&[]);
    let sha = app(&lab, DOCKERFILE);
    let repo = lab.repository();
    lab.write(
        "malformed.json",
        "{\"family\": \"web\", \"containerDefinitions\": [",
    );
    lab.write(
        "two.json",
        "{\"family\": \"web\", \"containerDefinitions\": [{\"name\": \"web\", \"image\": \"x\"}, {\"name\": \"side\", \"image\": \"y\"}]}",
    );
    for (extra, says) in [
        (
            vec!["--task-definition", "malformed.json"],
            "malformed.json",
        ),
        (
            vec!["--service-definition", "malformed.json"],
            "malformed.json",
        ),
        (vec!["--container", "nope"], "invalid --container `nope`"),
        (
            vec!["--task-definition", "two.json"],
            "has 2 containers (web, side)",
        ),
        (vec!["--run-task", "nope"], "invalid --run-task `nope`"),
    ] {
        let mut args = run_args(&repo);
        args.push("--create-repository");
        args.extend(extra.iter().copied());
        lab.deployer(&args)
            .code(2)
            .says(says)
            .says("refused: nothing was changed");
        lab.assert_no_writes();
        assert_eq!(digest(&repo, &sha[..12]), None, "{extra:?}: nothing pushed");
    }
}

#[test]
fn missing_repository_says_what_to_do() {
    let lab = Lab::service(&[]);
    app(&lab, DOCKERFILE);
    let repo = format!("app-{}", lab.tag);
    lab.deployer(&run_args(&repo))
        .code(2)
        .says(&format!("ECR repository `{repo}` does not exist"))
        .says("--create-repository");
    lab.assert_no_writes();
}

#[test]
fn invalid_registry_credentials_are_a_clear_error() {
    let lab = Lab::service(&[]);
    let sha = app(&lab, DOCKERFILE);
    let repo = format!("app-{}", lab.tag);
    let mut args = run_args(&repo);
    args.push("--create-repository");
    let mut cmd = lab.command(&args);
    cmd.env("AWS_ACCESS_KEY_ID", "bad-registry-creds");
    run(cmd)
        .code(2)
        .says(&format!("failed to push `{}/{repo}", registry()))
        .says("unauthorized");
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
    // The tag deployer pushes is `{sha}`, not `latest` (tests-audit A3).
    assert_eq!(digest(&repo, &sha[..12]), None);
    assert!(
        lab.writes()
            .iter()
            .all(|w| w["action"] != "ecs:UpdateService"
                && w["action"] != "ecs:RegisterTaskDefinition"),
        "{:?}",
        lab.writes()
    );
}

#[test]
fn registry_down_is_retried_then_a_clear_error_and_nothing_deployed() {
    let lab = Lab::service(&[]);
    app(&lab, DOCKERFILE);
    let repo = format!("app-{}", lab.tag);
    scenario(&["registry", "--down", &repo]);
    let mut args = run_args(&repo);
    args.push("--create-repository");
    lab.deployer(&args)
        .code(2)
        .says("retrying in 1s")
        .says("retrying in 4s")
        .says("after 3 attempts")
        .says(&format!(
            "ECR repository `{repo}` was created by this run and is left in place; the push failed"
        ));
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
    // The one write: the repository, created once the image was built (A1).
    let writes: Vec<_> = lab.writes().iter().map(|w| w["action"].clone()).collect();
    assert_eq!(
        writes,
        [serde_json::json!("ecr:CreateRepository")],
        "{writes:?}"
    );
}

#[test]
fn registry_going_down_mid_push_is_retried_then_a_clear_error_and_nothing_deployed() {
    let lab = Lab::service(&[]);
    let sha = app(&lab, DOCKERFILE);
    let repo = format!("app-{}", lab.tag);
    // The busybox layer is ~2 MB: the registry dies after 300 KB of it.
    scenario(&["registry", "--cut", &format!("{repo}=300000")]);
    let mut args = run_args(&repo);
    args.push("--create-repository");
    lab.deployer(&args)
        .code(2)
        .says("retrying in 1s")
        .says("after 3 attempts")
        .says("refused: nothing was changed");
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
    assert!(
        lab.writes()
            .iter()
            .all(|w| w["action"] != "ecs:UpdateService")
    );
    assert_eq!(digest(&repo, &sha[..12]), None);
}

#[test]
fn scan_findings_at_or_above_max_severity_refuse_the_deploy() {
    let lab = Lab::service(&[]);
    let sha = app(&lab, DOCKERFILE);
    let repo = format!("app-{}", lab.tag);
    let key = format!("{repo}:{}", &sha[..12]);
    scenario(&[
        "registry",
        "--finding",
        &format!("{key}=HIGH:CVE-2026-0001"),
        "--finding",
        &format!("{key}=LOW:CVE-2026-0002"),
    ]);
    let mut args = run_args(&repo);
    args.extend(["--create-repository", "--max-severity", "high"]);
    let out = lab.deployer(&args);
    out.code(2)
        .says("found 1 finding(s) at or above --max-severity")
        .says("HIGH CVE-2026-0001");
    assert!(
        !out.stderr.contains("CVE-2026-0002"),
        "a LOW finding was listed:\n{}",
        out.stderr
    );
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
    // Below the bar, the same image deploys.
    let mut args = run_args(&repo);
    args.extend(["--max-severity", "CRITICAL"]);
    lab.deployer(&args)
        .code(0)
        .says("scan: nothing at or above");
}

#[test]
fn prebuilt_image_needs_no_engine() {
    let lab = Lab::service(&[]);
    let mut cmd = lab.command(&["run", "--image", &lab.image("prebuilt")]);
    cmd.env("DOCKER_HOST", "unix:///nonexistent.sock");
    run(cmd).code(0).says("no build, no push").says("deployed");
}

#[test]
fn promote_tags_an_image_without_pulling_it() {
    let lab = Lab::service(&[]);
    let sha = app(&lab, DOCKERFILE);
    let repo = format!("app-{}", lab.tag);
    let mut args = run_args(&repo);
    args.push("--create-repository");
    lab.deployer(&args).code(0);
    let mut cmd = crate::lab::deployer(Path::new(lab.dir.path()));
    cmd.args([
        "promote",
        "--repository",
        &repo,
        "--from",
        &sha[..12],
        "--to",
        "prod",
    ]);
    run(cmd).code(0).says("now names sha256:");
    assert_eq!(digest(&repo, "prod"), digest(&repo, &sha[..12]));
}

#[test]
fn run_reads_the_build_section_of_deployer_toml() {
    let lab = Lab::service(&[]);
    let sha = app(&lab, DOCKERFILE);
    let repo = format!("app-{}", lab.tag);
    lab.write(
        "deployer.toml",
        &format!(
            "cluster = \"{}\"\nservice = \"{}\"\n\n[build]\ncontext = \"app\"\nrepository = \"{repo}\"\ncontainer = \"web\"\ntags = [\"{{sha}}\", \"stable\"]\ncreate-repository = true\n\n[build.build-args]\nGREETING = \"hi\"\n",
            lab.cluster, lab.service
        ),
    );
    let mut cmd = crate::lab::deployer(lab.dir.path());
    cmd.arg("run");
    run(cmd).code(0).says("deployed");
    assert_eq!(digest(&repo, "stable"), digest(&repo, &sha[..12]));
}

#[test]
fn on_a_terminal_build_and_push_show_a_spinner_instead_of_plain_lines() {
    let lab = Lab::service(&[]);
    app(&lab, DOCKERFILE);
    let repo = format!("app-{}", lab.tag);
    let typescript = lab.dir.path().join("typescript");
    let line = format!(
        "{} run --context app --repository {repo} --build-arg GREETING=hi --create-repository --cluster {} --service {}",
        env!("CARGO_BIN_EXE_deployer"),
        lab.cluster,
        lab.service
    );
    // `script` (util-linux) gives deployer a pseudo-terminal, as a person's shell would.
    let mut cmd = crate::lab::deployer(lab.dir.path());
    let cmd = cmd.env_remove("NO_COLOR").env("TERM", "xterm");
    let status = Command::new("script")
        .args(["-qec", &line])
        .arg(&typescript)
        .env_clear()
        .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .current_dir(lab.dir.path())
        .status()
        .expect("script (util-linux) runs");
    let screen =
        String::from_utf8_lossy(&std::fs::read(&typescript).expect("script wrote the typescript"))
            .into_owned();
    assert!(status.success(), "{screen}");
    assert!(
        screen.contains("Step 1/"),
        "the build steps stay on screen:\n{screen}"
    );
    assert!(
        screen.contains("\x1b[2K"),
        "no spinner was drawn:\n{screen}"
    );
    assert!(
        !screen.contains("    build: Step"),
        "plain CI lines on a terminal:\n{screen}"
    );
    assert!(
        screen.contains("rollout: rollout "),
        "no rollout spinner:\n{screen}"
    );
    assert!(screen.contains("deployed"), "{screen}");
    assert!(
        screen.contains("\x1b[1m==>"),
        "colour on a terminal:\n{screen}"
    );
    // NO_COLOR: the same run again (no build now), on a terminal, without colour.
    let status = Command::new("script")
        .args(["-qec", &line])
        .arg(&typescript)
        .env_clear()
        .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .env("NO_COLOR", "1")
        .current_dir(lab.dir.path())
        .status()
        .expect("script runs");
    let plain = String::from_utf8_lossy(&std::fs::read(&typescript).unwrap()).into_owned();
    assert!(
        status.success() && plain.contains("nothing to deploy"),
        "{plain}"
    );
    assert!(
        !plain.contains("\x1b[1m") && !plain.contains("\x1b[33m"),
        "colour despite NO_COLOR:\n{plain}"
    );
}

/// README: in GitHub Actions the ECR push password is masked (`::add-mask::`) before it is used,
/// and never printed otherwise.
#[test]
fn the_ecr_password_is_masked_in_github_actions() {
    let lab = Lab::service(&[]);
    app(&lab, DOCKERFILE);
    let repo = lab.repository();
    let mut args = run_args(&repo);
    args.push("--create-repository");
    let mut cmd = lab.command(&args);
    cmd.env("GITHUB_ACTIONS", "true");
    let out = run(cmd);
    out.code(0).says("pushed");
    // The lab's ECR token decodes to `AWS:123456789012-auth-token`: the password is after `AWS:`.
    let password = "123456789012-auth-token";
    let mask = format!("::add-mask::{password}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    let masked_at = lines
        .iter()
        .position(|l| *l == mask)
        .unwrap_or_else(|| panic!("no {mask} line\n{}", out.stderr));
    let pushed_at = lines
        .iter()
        .position(|l| l.contains("pushed 127.0.0.1"))
        .expect("a pushed line");
    assert!(masked_at < pushed_at, "masked only after the push");
    assert_eq!(
        out.stderr.matches(password).count(),
        1,
        "the password appears outside its mask line\n{}",
        out.stderr
    );
    assert!(!out.stdout.contains(password));
}

/// The lab's registry (host:port), as lab/up started it: `LAB_REGISTRY_PORT`, default 5077.
fn registry() -> String {
    let port = std::env::var("LAB_REGISTRY_PORT").unwrap_or_else(|_| "5077".into());
    format!("127.0.0.1:{port}")
}
