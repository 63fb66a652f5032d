//! `--smoke-test COMMAND`: while a PAUSE hook holds a staged deployment at POST_TEST_TRAFFIC_SHIFT
//! (test traffic on the new tasks, production still on the old), run COMMAND on this machine with
//! `DEPLOYER_TEST_URL` and `DEPLOYER_PRODUCTION_URL` set. Its output streams as `smoke> line`; the
//! last lines go into the failure report when it does not exit 0.

use crate::aws::{Aws, elb};
use crate::report::output::Output;
use crate::rollout::Failure;
use crate::signal::{Stop, Wait};
use crate::strategy::Shape;
use std::collections::VecDeque;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;

/// The output lines kept for the failure report.
const LAST_LINES: usize = 20;

/// Runs the smoke test to its end (or until the wait ends: then it is killed).
pub(crate) async fn run(
    aws: &Aws,
    command: &str,
    shape: Option<&Shape>,
    wait: &Wait,
    out: &Output,
) -> Result<(), Failure> {
    let test_url = url(
        aws,
        shape.and_then(|s| s.test_listener_rule.as_deref()),
        out,
    )
    .await;
    let production_url = url(
        aws,
        shape.and_then(|s| s.production_listener_rule.as_deref()),
        out,
    )
    .await;
    out.step(&format!(
        "smoke test: test traffic reaches the new tasks at {}",
        if test_url.is_empty() {
            "(no test listener)"
        } else {
            &test_url
        }
    ));
    let spawned = Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("DEPLOYER_TEST_URL", &test_url)
        .env("DEPLOYER_PRODUCTION_URL", &production_url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(err) => {
            return Err(Failure::SmokeTest {
                how: format!("could not start: {err}"),
                output: Vec::new(),
            });
        }
    };
    let lines = std::sync::Mutex::new(VecDeque::new());
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let ended = wait
        .until(async {
            tokio::join!(relay(stdout, &lines, out), relay(stderr, &lines, out),);
            child.wait().await
        })
        .await;
    let output: Vec<String> = lines.into_inner().unwrap_or_default().into();
    let how = match ended {
        Ok(Ok(status)) if status.success() => {
            out.info("smoke test passed (exit 0)");
            return Ok(());
        }
        Ok(Ok(status)) => match status.code() {
            Some(code) => format!("exited with code {code}"),
            None => "was killed by a signal".to_string(),
        },
        Ok(Err(err)) => format!("could not be waited for: {err}"),
        Err(Stop::Signal) => return Err(Failure::Interrupted),
        Err(Stop::Deadline) => format!(
            "did not finish within {}s (--timeout)",
            wait.timeout().as_secs()
        ),
    };
    Err(Failure::SmokeTest { how, output })
}

/// Prints each line of one of the command's streams and keeps the last ones.
async fn relay(
    stream: Option<impl AsyncRead + Unpin>,
    kept: &std::sync::Mutex<VecDeque<String>>,
    out: &Output,
) {
    let Some(stream) = stream else {
        return;
    };
    let mut reader = BufReader::new(stream).lines();
    while let Ok(Some(line)) = reader.next_line().await {
        out.info(&format!("smoke> {line}"));
        let mut kept = kept.lock().expect("no thread panics holding the lines");
        kept.push_back(line);
        if kept.len() > LAST_LINES {
            kept.pop_front();
        }
    }
}

/// The URL a listener rule answers on; empty (with a warning) when it cannot be read.
async fn url(aws: &Aws, rule: Option<&str>, out: &Output) -> String {
    let Some(rule) = rule else {
        return String::new();
    };
    match elb::listener_url(aws, rule).await {
        Ok(url) => url,
        Err(err) => {
            out.warn(&format!("{err:#}; the smoke test gets no URL for it"));
            String::new()
        }
    }
}
