//! Sends the finished report where people look: the files CI reads (GitHub's outputs and job
//! summary; GitLab's dotenv and JSON report) and, from `github.rs`, the pull request.
//!
//! Invariant: nothing here changes the run's outcome. A report that cannot be written or posted is
//! a warning on the terminal, never an error.

use crate::outcome::Outcome;
use crate::report;
use crate::report::ci::{env, environment, run_url};
use crate::report::output::{Ci, Output};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// Every report together (files, GitHub, GitLab) gets this long; then the run ends with a warning.
pub(crate) const BUDGET: Duration = Duration::from_secs(30);

/// `all`, bounded by `BUDGET`: a hanging GitHub or GitLab API costs the job a warning, never the
/// job itself, and never the exit code.
pub(crate) async fn bounded(out: &Output) {
    if tokio::time::timeout(BUDGET, all(out)).await.is_err() {
        out.warn(&format!(
            "the reports were not all posted within {} s (GitHub or GitLab did not answer): gave up; the run's outcome stands",
            BUDGET.as_secs()
        ));
    }
}

pub(crate) async fn all(out: &Output) {
    let report = out
        .report
        .lock()
        .expect("no thread panics while holding the report")
        .clone();
    let outcome = report.result.as_ref().map(|r| r.outcome);
    if matches!(outcome, None | Some(Outcome::Planned | Outcome::Reported)) {
        return;
    }
    let environment = environment();
    if let Some(path) = env("DEPLOYER_REPORT") {
        write(
            out,
            Path::new(&path),
            &format!("{:#}\n", report.json()),
            false,
        );
    }
    match out.ci {
        Ci::GitHub => {
            let run_url = run_url();
            if let Some(path) = env("GITHUB_OUTPUT") {
                write(
                    out,
                    Path::new(&path),
                    &report::github_outputs(&report.outputs(), nonce()),
                    true,
                );
            }
            if let Some(path) = env("GITHUB_STEP_SUMMARY") {
                write(
                    out,
                    Path::new(&path),
                    &report.markdown(&environment, run_url.as_deref()),
                    true,
                );
            }
            crate::report::github::publish(&report, &environment, run_url.as_deref(), out).await;
        }
        Ci::GitLab => {
            let dotenv = env("DEPLOYER_DOTENV").unwrap_or_else(|| "deployer.env".into());
            write(out, Path::new(&dotenv), &report.dotenv(), false);
            if env("DEPLOYER_REPORT").is_none() {
                write(
                    out,
                    Path::new("deployer-report.json"),
                    &format!("{:#}\n", report.json()),
                    false,
                );
            }
            crate::report::gitlab::publish(&report, &environment, out).await;
        }
        Ci::None => {}
    }
}

fn write(out: &Output, path: &Path, text: &str, append: bool) {
    let result = std::fs::OpenOptions::new()
        .create(true)
        .append(append)
        .write(true)
        .truncate(!append)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    if let Err(err) = result {
        out.warn(&format!(
            "could not write the report to `{}`: {err}",
            path.display()
        ));
    }
}

/// A value no output is likely to contain, for the heredoc delimiter (checked again in `report`).
fn nonce() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}
