//! `deployer run` under cancels and doubtful images: a signal during the build stops the run before
//! any ECS write; a mutable first tag is built and pushed every time and the pushed digest deploys;
//! the scan gate reads counts and every page, and refuses an image that was not or could not be
//! scanned.

use crate::lab::{Lab, run, scenario};
use crate::run::{DOCKERFILE, app, image_in_service};
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn run_args(repo: &str) -> Vec<&str> {
    vec![
        "run",
        "--context",
        "app",
        "--repository",
        repo,
        "--build-arg",
        "GREETING=hi",
        "--create-repository",
    ]
}

fn digest(repo: &str, tag: &str) -> Option<String> {
    scenario(&["digest", "--repository", repo, "--tag", tag])["digest"]
        .as_str()
        .map(String::from)
}

/// No ECS write named this test's cluster or service (the repository's ECR writes are allowed).
#[track_caller]
fn no_ecs_writes(lab: &Lab) {
    let ecs: Vec<_> = lab
        .writes()
        .into_iter()
        .filter(|w| w["action"].as_str().unwrap_or_default().starts_with("ecs:"))
        .collect();
    assert!(ecs.is_empty(), "expected no ECS write, found {ecs:?}");
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
}

#[test]
fn sigterm_during_the_build_exits_130_and_deploys_nothing() {
    let lab = Lab::service(&[]);
    // COPY index.html (unique to the test) before the slow RUN, so no build cache skips it.
    app(
        &lab,
        "FROM scratch\nCOPY busybox /busybox\nCOPY index.html /index.html\nRUN [\"/busybox\", \"sleep\", \"8\"]\n",
    );
    let repo = format!("app-{}", lab.tag);
    let mut cmd = lab.command(&run_args(&repo));
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("deployer starts");
    std::thread::sleep(Duration::from_millis(2500));
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(ok.success());
    let signalled = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if signalled.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("deployer did not exit within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = signalled.elapsed();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    eprintln!("SIGTERM to exit: {:.2} s", took.as_secs_f64());
    assert!(
        stderr.contains("building"),
        "not killed mid-build:\n{stderr}"
    );
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted while building") && stderr.contains("nothing was deployed"),
        "{stderr}"
    );
    assert!(
        took < Duration::from_secs(3),
        "exit took {took:?} after SIGTERM (the build's RUN sleeps 8 s)"
    );
    no_ecs_writes(&lab);
}

#[test]
fn a_mutable_first_tag_builds_and_deploys_each_commit() {
    let lab = Lab::service(&[]);
    app(&lab, DOCKERFILE);
    let repo = format!("app-{}", lab.tag);
    let mut args = run_args(&repo);
    args.extend(["--tag", "{branch}"]);
    lab.deployer(&args).code(0).says("deployed");
    let first = image_in_service(&lab);
    assert_eq!(
        first.rsplit('@').next(),
        digest(&repo, "main").as_deref(),
        "{first}"
    );
    // A second commit with other content, on the same branch: the tag `main` exists already.
    let dir = lab.dir.path().join("app");
    std::fs::write(dir.join("index.html"), "<h1>second commit</h1>").unwrap();
    for git in [
        &["add", "."][..],
        &[
            "-c",
            "user.name=lab",
            "-c",
            "user.email=lab@example.com",
            "commit",
            "-qm",
            "second",
        ],
    ] {
        let ok = Command::new("git")
            .args(git)
            .current_dir(&dir)
            .status()
            .unwrap();
        assert!(ok.success());
    }
    let second = lab.deployer(&args);
    second.code(0).says("building").says("deployed");
    assert!(
        !second.stderr.contains("no build, no push"),
        "{}",
        second.stderr
    );
    let deployed = image_in_service(&lab);
    assert_ne!(
        deployed, first,
        "the second commit deployed the first image"
    );
    assert_eq!(
        deployed.rsplit('@').next(),
        digest(&repo, "main").as_deref(),
        "{deployed}"
    );
}

/// Builds the app and runs with `--max-severity HIGH`, after `registry` set up the scan of its tag.
fn gated_run(lab: &Lab, registry: &[String], extra: &[&str]) -> (crate::lab::Run, Duration) {
    let sha = app(lab, DOCKERFILE);
    let repo = format!("app-{}", lab.tag);
    let key = format!("{repo}:{}", &sha[..12]);
    let mut setup = vec!["registry".to_string()];
    setup.extend(registry.iter().map(|a| a.replace("KEY", &key)));
    scenario(&setup.iter().map(String::as_str).collect::<Vec<_>>());
    let mut args = run_args(&repo);
    args.extend(["--max-severity", "HIGH"]);
    args.extend(extra);
    let started = Instant::now();
    let out = run(lab.command(&args));
    (out, started.elapsed())
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

#[test]
fn scan_gate_pages_through_findings_and_reads_the_counts() {
    let lab = Lab::service(&[]);
    // 150 LOW, then 1 CRITICAL: the CRITICAL is on the second page.
    let (out, _) = gated_run(
        &lab,
        &strings(&[
            "--findings-count",
            "KEY=LOW:150",
            "--findings-count",
            "KEY=CRITICAL:1",
        ]),
        &[],
    );
    out.code(2)
        .says("found 1 finding(s) at or above --max-severity")
        .says("CRITICAL CVE-LAB-CRITICAL-0");
    assert!(!out.stderr.contains("CVE-LAB-LOW"), "{}", out.stderr);
    no_ecs_writes(&lab);
}

#[test]
fn scan_gate_decides_an_enhanced_scan_from_its_findings() {
    let lab = Lab::service(&[]);
    let (out, took) = gated_run(
        &lab,
        &strings(&[
            "--scan",
            "KEY=enhanced",
            "--finding",
            "KEY=CRITICAL:CVE-2026-4242",
        ]),
        &[],
    );
    out.code(2).says("CRITICAL CVE-2026-4242");
    assert!(took < Duration::from_secs(60), "took {took:?}");
    no_ecs_writes(&lab);
}

#[test]
fn scan_gate_refuses_an_image_ecr_could_not_scan() {
    let lab = Lab::service(&[]);
    let (out, took) = gated_run(&lab, &strings(&["--scan", "KEY=unsupported"]), &[]);
    out.code(2)
        .says("UNSUPPORTED_IMAGE")
        .says("could not be scanned")
        .says("drop --max-severity");
    assert!(took < Duration::from_secs(60), "took {took:?}");
    no_ecs_writes(&lab);
}

#[test]
fn scan_gate_says_scan_on_push_is_off_when_there_is_no_scan() {
    let lab = Lab::service(&[]);
    let (out, _) = gated_run(&lab, &strings(&["--scan", "KEY=not_found"]), &[]);
    out.code(2)
        .says("scan on push is off")
        .says("scanOnPush=true");
    no_ecs_writes(&lab);
}

#[test]
fn scan_gate_waits_for_a_scan_in_progress_then_deploys() {
    let lab = Lab::service(&[]);
    let (out, _) = gated_run(&lab, &strings(&["--scan", "KEY=in_progress:3"]), &[]);
    out.code(0)
        .says("scan: nothing at or above --max-severity")
        .says("deployed");
    assert_ne!(lab.running_task_definition(), lab.task_definition_arn);
}

#[test]
fn scan_gate_wait_is_bounded_by_the_timeout() {
    let lab = Lab::service(&[]);
    let (out, took) = gated_run(
        &lab,
        &strings(&["--scan", "KEY=pending"]),
        &["--timeout", "8s"],
    );
    out.code(2).says("did not finish within --timeout");
    assert!(took < Duration::from_secs(60), "took {took:?}");
    no_ecs_writes(&lab);
}

#[test]
fn sigterm_during_the_scan_wait_exits_130_and_deploys_nothing() {
    use std::io::{BufRead, BufReader};
    let lab = Lab::service(&[]);
    let sha = app(&lab, DOCKERFILE);
    let repo = format!("app-{}", lab.tag);
    scenario(&[
        "registry",
        "--scan",
        &format!("{repo}:{}=pending", &sha[..12]),
    ]);
    let mut args = run_args(&repo);
    args.extend(["--max-severity", "HIGH"]);
    let mut cmd = lab.command(&args);
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("deployer starts");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut stderr = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        stderr.push_str(&line);
        stderr.push('\n');
        if line.contains("waiting for the ECR image scan") {
            break;
        }
    }
    assert!(
        stderr.contains("waiting for the ECR image scan"),
        "{stderr}"
    );
    std::thread::sleep(Duration::from_millis(1500));
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(ok.success());
    let signalled = Instant::now();
    let reader = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if signalled.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("deployer did not exit within 30 s of SIGTERM\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = signalled.elapsed();
    stderr.push_str(&reader.join().unwrap().join("\n"));
    eprintln!("SIGTERM to exit (scan wait): {:.2} s", took.as_secs_f64());
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("nothing was deployed"), "{stderr}");
    assert!(took < Duration::from_secs(3), "exit took {took:?}");
    no_ecs_writes(&lab);
}
