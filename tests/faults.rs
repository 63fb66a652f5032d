//! Faults the lab used to be too kind to show (issue 13): APIs that accept a request and never
//! answer (AWS and GitHub), and durations too large for the clock.

use crate::lab::{Lab, run, scenario, unique};
use serde_json::Value;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn forge_url() -> String {
    std::env::var("DEPLOYER_FORGE_URL").unwrap_or_else(|_| "http://127.0.0.1:5080".into())
}

/// A bare HTTP POST with a JSON body (the lab's and the forge's control APIs).
fn post(base: &str, path: &str, body: &str) {
    let host = base.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(host).expect("connect to the lab");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a read timeout");
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.") && answer.contains(" 200 "),
        "{path}: {answer}"
    );
}

/// Lets the requests held by one lab `hang` answer when the test ends (even when it fails), and no
/// other test's: tests run in parallel, and releasing every hang would cut another test's short.
struct LabHang(u64);

impl LabHang {
    /// A `hang` of `action` for this test's service: `count` requests held `ms` each (or until the
    /// test ends); with `apply`, applied first and then held.
    fn arm(lab: &Lab, action: &str, (count, ms): (u32, u32), apply: bool) -> LabHang {
        let (count, ms) = (count.to_string(), ms.to_string());
        let mut args = vec![
            "api-fault",
            "--action",
            action,
            "--kind",
            "hang",
            "--count",
            &count,
        ];
        args.extend(["--delay-ms", &ms, "--match", &lab.service]);
        if apply {
            args.push("--apply");
        }
        let armed = scenario(&args);
        LabHang(armed["id"].as_u64().expect("the fault's id"))
    }
}

impl Drop for LabHang {
    fn drop(&mut self) {
        post(
            &crate::lab::endpoint(),
            "/_lab/release",
            &format!(r#"{{"id": {}}}"#, self.0),
        );
    }
}

/// Lets the requests held by one forge hang answer when the test ends, and no other test's.
struct ForgeHang(u64);

impl ForgeHang {
    fn arm(path_regex: &str, method: Option<&str>) -> ForgeHang {
        let mut args = vec![
            "forge-hang",
            "--path-regex",
            path_regex,
            "--count",
            "100",
            "--delay-ms",
            "300000",
        ];
        if let Some(method) = method {
            args.extend(["--method", method]);
        }
        let armed = scenario(&args);
        ForgeHang(armed["id"].as_u64().expect("the forge names the hang"))
    }

    /// How many requests this hang has held.
    fn fired(&self) -> u64 {
        let hangs = scenario(&["forge-hangs"]);
        hangs
            .as_array()
            .into_iter()
            .flatten()
            .find(|h| h["id"].as_u64() == Some(self.0))
            .and_then(|h| h["fired"].as_u64())
            .unwrap_or_else(|| panic!("no forge hang {} in {hangs}", self.0))
    }
}

/// Runs a deploy whose report meets `hang`: the report reached the hang, cost a warning, and the
/// deploy still exits 0 within the reports' bound.
fn ends_despite_the_hang(cmd: Command, hang: &ForgeHang, forge: &str) {
    let started = Instant::now();
    let done = run(cmd);
    let took = started.elapsed().as_secs_f64();
    eprintln!("exit {} after {took:.1} s", done.code);
    done.code(0);
    assert!(
        hang.fired() >= 1,
        "the report never reached the {forge} hang"
    );
    assert!(
        took < 45.0,
        "a hanging {forge} held the job {took:.1} s\n{}",
        done.stderr
    );
    assert!(
        done.stderr.contains("warning") || done.stderr.contains("could not"),
        "a report that cannot be posted is a warning\n{}",
        done.stderr
    );
}

impl Drop for ForgeHang {
    fn drop(&mut self) {
        post(
            &forge_url(),
            "/_forge/release",
            &format!(r#"{{"id": {}}}"#, self.0),
        );
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

fn update_services(lab: &Lab) -> Vec<Value> {
    lab.writes()
        .into_iter()
        .filter(|w| w["action"] == "ecs:UpdateService")
        .collect()
}

/// The deploy's UpdateService, then each rollback call: StopServiceDeployment (ECS's own rollback
/// of a rolling update) or UpdateService back to the recorded revision.
fn service_writes(lab: &Lab) -> Vec<Value> {
    lab.writes()
        .into_iter()
        .filter(|w| {
            w["action"] == "ecs:UpdateService" || w["action"] == "ecs:StopServiceDeployment"
        })
        .collect()
}

/// Starts `deploy` of an image whose tasks never leave PENDING, and returns once UpdateService
/// reached the lab: from here the watch looks with DescribeServices.
fn deploy_that_keeps_watching(lab: &Lab, extra: &[&str]) -> Child {
    let image = lab.image("slow");
    lab.fault(&image, "pending", &[]);
    let mut args = vec!["deploy", "--image", &image];
    args.extend_from_slice(extra);
    let mut child = lab
        .command(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("deployer starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while update_services(lab).is_empty() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("deployer ends");
            panic!(
                "deployer never updated the service\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

/// Every DescribeServices naming this test's service hangs from now on; returns once one is held.
fn hang_describe_services(lab: &Lab) -> LabHang {
    let hang = LabHang::arm(lab, "DescribeServices", (1000, 120000), false);
    let id = hang.0;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let faults = scenario(&["api-faults"]);
        let fired = faults
            .as_array()
            .or_else(|| faults["faults"].as_array())
            .into_iter()
            .flatten()
            .find(|f| f["id"].as_u64() == Some(id))
            .and_then(|f| f["fired"].as_u64())
            .unwrap_or(0);
        if fired > 0 {
            return hang;
        }
        assert!(
            Instant::now() < deadline,
            "no DescribeServices reached the hang: {faults}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The run's output once it ends, or once `limit` passed (then killed: a test never hangs).
fn wait_at_most(mut child: Child, limit: Duration) -> std::process::Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("wait").is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    child.wait_with_output().expect("deployer ends")
}

#[test]
fn sigterm_while_describe_services_hangs_rolls_back_within_two_seconds() {
    let lab = Lab::service(&[]);
    let child = deploy_that_keeps_watching(&lab, &[]);
    let hang = hang_describe_services(&lab);
    let signalled = now();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    // The rollback's call (StopServiceDeployment: ECS's own rollback of the rolling update) must
    // reach ECS while every DescribeServices still hangs.
    let mut writes = service_writes(&lab);
    while writes.len() < 2 && now() - signalled < 10.0 {
        std::thread::sleep(Duration::from_millis(50));
        writes = service_writes(&lab);
    }
    assert_eq!(writes.len(), 2, "the update, then the rollback: {writes:?}");
    assert_eq!(
        writes[1]["action"], "ecs:StopServiceDeployment",
        "{writes:?}"
    );
    let rollback_after = writes[1]["t"].as_f64().expect("a time") - signalled;
    eprintln!("rollback StopServiceDeployment {rollback_after:.2} s after SIGTERM");
    assert!(
        rollback_after < 2.0,
        "the rollback reached ECS {rollback_after:.2} s after the signal, while a read hung"
    );
    // Then the reads answer again, and deployer follows the rollback to the end (README: it waits
    // for the rollback within --timeout after a signal).
    drop(hang);
    let out = wait_at_most(child, Duration::from_secs(60));
    let ended = now() - signalled;
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("exit {ended:.2} s after the signal");
    // ECS's rollback deployment was found and followed: no UpdateService behind it.
    assert_eq!(update_services(&lab).len(), 1, "one rollback\n{stderr}");
    eprintln!("{stderr}");
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
}

#[test]
fn a_hanging_describe_services_ends_the_run_at_its_timeout() {
    let lab = Lab::service(&[]);
    let started = Instant::now();
    let child = deploy_that_keeps_watching(&lab, &["--timeout", "20s"]);
    let _hang = hang_describe_services(&lab);
    let out = wait_at_most(child, Duration::from_secs(90));
    let took = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("exit {:?} after {took:.1} s\n{stderr}", out.status.code());
    assert!(
        matches!(out.status.code(), Some(1 | 3)),
        "rolled back (1) or rollback failed (3), not {:?}\n{stderr}",
        out.status.code()
    );
    // StopServiceDeployment, and since no read shows ECS's rollback deployment within 10 s,
    // UpdateService back to the recorded revision behind it.
    let writes: Vec<_> = service_writes(&lab)
        .iter()
        .map(|w| w["action"].clone())
        .collect();
    assert_eq!(
        writes,
        [
            "ecs:UpdateService",
            "ecs:StopServiceDeployment",
            "ecs:UpdateService"
        ],
        "the rollback was attempted both ways\n{stderr}"
    );
    assert!(
        // 20 s, the rollback (10 s looking for ECS's rollback deployment), and at most 20 s more
        // while the rollback is watched; without the attempt timeout the hang holds it for 120 s.
        took < 55.0,
        "a hanging read held the run {took:.1} s past a 20 s --timeout\n{stderr}"
    );
}

fn pull_request(lab: &Lab) -> (String, std::path::PathBuf) {
    let repo = format!("acme/{}", unique("hang"));
    let event = lab.write(
        "event.json",
        r#"{"number": 7, "pull_request": {"number": 7, "head": {"sha": "2222222222222222222222222222222222222222"}}}"#,
    );
    (repo, event)
}

#[test]
fn a_hanging_github_api_costs_a_warning_never_the_job() {
    let lab = Lab::service(&[]);
    let (repo, event) = pull_request(&lab);
    let hang = ForgeHang::arm(&format!("/repos/{repo}/issues/7/comments"), Some("POST"));
    let mut cmd = lab.command(&["deploy", "--image", &lab.image("v2")]);
    cmd.env("GITHUB_ACTIONS", "true")
        .env("GITHUB_TOKEN", "ghs_faketoken")
        .env("GITHUB_REPOSITORY", &repo)
        .env("GITHUB_API_URL", forge_url())
        .env("GITHUB_SERVER_URL", "https://github.example")
        .env("GITHUB_RUN_ID", "99")
        .env("GITHUB_EVENT_NAME", "pull_request")
        .env("GITHUB_EVENT_PATH", &event)
        .env("GITHUB_SHA", "1111111111111111111111111111111111111111")
        .env("DEPLOYER_ENVIRONMENT", "staging");
    ends_despite_the_hang(cmd, &hang, "GitHub");
}

/// The GitLab side of the same promise: every call to the merge request's notes hangs; the note
/// costs a warning within the reports' bound and the deploy still exits 0.
#[test]
fn a_hanging_gitlab_api_costs_a_warning_never_the_job() {
    let lab = Lab::service(&[]);
    let project = unique("77");
    let hang = ForgeHang::arm(
        &format!("/api/v4/projects/{project}/merge_requests/3/notes.*"),
        None,
    );
    let mut cmd = lab.command(&["deploy", "--image", &lab.image("v2")]);
    cmd.env("GITLAB_CI", "true")
        .env("CI_API_V4_URL", format!("{}/api/v4", forge_url()))
        .env("CI_PROJECT_ID", &project)
        .env("CI_MERGE_REQUEST_IID", "3")
        .env("CI_JOB_URL", "https://gitlab.example/acme/shop/-/jobs/5")
        .env("DEPLOYER_GITLAB_TOKEN", "glpat-fake");
    ends_despite_the_hang(cmd, &hang, "GitLab");
}

#[test]
fn a_huge_timeout_is_refused_with_the_limit_not_a_panic() {
    let lab = Lab::service(&[]);
    for huge in ["9999999999999999999s", "5124095576030432h"] {
        let done = lab.deployer(&["deploy", "--image", &lab.image("v2"), "--timeout", huge]);
        assert!(!done.stderr.contains("panicked"), "{}", done.stderr);
        done.code(2).says("--timeout").says("at most 168 hours");
    }
    lab.assert_no_writes();
}

#[test]
fn a_stop_service_deployment_that_never_answers_falls_back_to_update_service() {
    // ECS's rollback call hangs: deployer gives it 10 s, then puts the recorded revision back with
    // UpdateService (right whether or not ECS applied the stop), instead of waiting on the call.
    let lab = Lab::service(&[]);
    let image = lab.image("crash-hang");
    lab.fault(&image, "exit", &["--exit-code", "2"]);
    let _hang = LabHang::arm(&lab, "StopServiceDeployment", (10, 120000), false);
    let started = Instant::now();
    let run = lab.deployer(&["deploy", "--image", &image, "--output", "json"]);
    let took = started.elapsed().as_secs_f64();
    run.code(1).says(
        "StopServiceDeployment did not answer within 10 s; rolling back with UpdateService instead",
    );
    let writes = service_writes(&lab);
    let actions: Vec<_> = writes.iter().map(|w| w["action"].clone()).collect();
    assert_eq!(
        actions,
        [
            "ecs:UpdateService",
            "ecs:StopServiceDeployment",
            "ecs:UpdateService"
        ],
        "{}",
        run.stderr
    );
    let gap = writes[2]["t"].as_f64().expect("a time") - writes[1]["t"].as_f64().expect("a time");
    eprintln!("UpdateService {gap:.1} s after the hanging StopServiceDeployment; run {took:.1} s");
    assert!(
        (9.0..15.0).contains(&gap),
        "the fallback came {gap:.1} s after the stop, not after its 10 s bound"
    );
    assert_eq!(run.result()["rollback"], "UpdateService");
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
}

#[test]
fn a_second_signal_hurries_a_hanging_rollback_call_to_update_service() {
    // CI cancels with SIGINT, then SIGTERM 7.5 s later, then SIGKILL 2.5 s after that. When ECS's
    // rollback call hangs after the first signal, the second one must not wait out its 10 s bound:
    // UpdateService back to the recorded revision goes out at once, and the run ends.
    let lab = Lab::service(&[]);
    let _hang = LabHang::arm(&lab, "StopServiceDeployment", (10, 120000), false);
    let child = deploy_that_keeps_watching(&lab, &[]);
    let kill = |which: &str| {
        let status = Command::new("kill")
            .args([which, &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    };
    kill("-INT");
    let deadline = Instant::now() + Duration::from_secs(10);
    while service_writes(&lab).len() < 2 {
        assert!(
            Instant::now() < deadline,
            "no StopServiceDeployment after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let second = now();
    kill("-TERM");
    let out = wait_at_most(child, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let writes = service_writes(&lab);
    let actions: Vec<_> = writes.iter().map(|w| w["action"].clone()).collect();
    assert_eq!(
        actions,
        [
            "ecs:UpdateService",
            "ecs:StopServiceDeployment",
            "ecs:UpdateService"
        ],
        "{stderr}"
    );
    let hurried = writes[2]["t"].as_f64().expect("a time") - second;
    let ended = now() - second;
    eprintln!("UpdateService {hurried:.2} s after the second signal; exit {ended:.2} s after it");
    assert!(
        hurried < 2.0,
        "the fallback came {hurried:.2} s after the second signal\n{stderr}"
    );
    assert!(
        stderr.contains("a further signal: not waiting for StopServiceDeployment's answer"),
        "{stderr}"
    );
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
}

#[test]
fn a_stop_applied_but_answered_late_and_our_update_service_both_end_back() {
    // ECS applies StopServiceDeployment but its answer comes after deployer's 10 s, and ECS starts
    // its rollback deployment only after deployer's UpdateService went out: two deployments of the
    // recorded revision, ECS's the newer. The rollback watch follows ECS's (same revision), exit 1.
    let lab = Lab::service(&[]);
    let image = lab.image("crash-late");
    lab.fault(&image, "exit", &["--exit-code", "2"]);
    // ECS starts its rollback deployment 11 s after the stop; deployer's UpdateService goes out
    // after its 10 s wait and is applied at once, but answered 2 s late, so the rollback watch's
    // first look already sees ECS's newer deployment of the same revision.
    scenario(&["stop-lag", "--service", &lab.service, "--seconds", "11"]);
    scenario(&[
        "api-fault",
        "--action",
        "UpdateService",
        "--kind",
        "delay",
        "--after",
        "--after-write",
        "--delay-ms",
        "2000",
        "--match",
        &lab.service,
    ]);
    let _hang = LabHang::arm(&lab, "StopServiceDeployment", (1, 15000), true);
    let run = lab.deployer(&["deploy", "--image", &image, "--output", "json"]);
    run.code(1)
        .says("StopServiceDeployment did not answer within 10 s")
        .says("of the same revision")
        .says(&format!("runs {} again, healthy", lab.task_definition_arn));
    assert_eq!(run.result()["outcome"], "rolled_back");
    assert_eq!(run.result()["rollback"], "UpdateService");
    assert_eq!(lab.running_task_definition(), lab.task_definition_arn);
}

#[test]
fn a_deploy_by_someone_else_after_our_stop_is_not_rolled_back_over() {
    // Between deployer's StopServiceDeployment and ECS's rollback deployment (held back here),
    // someone else deploys another revision: deployer must not UpdateService over it (exit 3).
    let lab = Lab::service(&[]);
    let image = lab.image("crash-theirs");
    lab.fault(&image, "exit", &["--exit-code", "2"]);
    scenario(&["stop-lag", "--service", &lab.service, "--seconds", "120"]);
    let child = lab
        .command(&["deploy", "--image", &image, "--output", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("deployer starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while service_writes(&lab).len() < 2 {
        assert!(Instant::now() < deadline, "no StopServiceDeployment");
        std::thread::sleep(Duration::from_millis(50));
    }
    let theirs = lab.image("theirs");
    scenario(&[
        "update",
        "--cluster",
        &lab.cluster,
        "--service",
        &lab.service,
        "--image",
        &theirs,
    ]);
    let out = wait_at_most(child, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("another deploy started; not rolling back over it"),
        "{stderr}"
    );
    let actions: Vec<_> = service_writes(&lab)
        .iter()
        .map(|w| w["action"].clone())
        .collect();
    assert_eq!(
        actions,
        [
            "ecs:UpdateService",
            "ecs:StopServiceDeployment",
            "ecs:UpdateService"
        ],
        "ours, our stop, theirs; no UpdateService of ours over theirs\n{stderr}"
    );
    assert_ne!(lab.running_task_definition(), lab.task_definition_arn);
}
