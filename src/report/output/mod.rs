//! Where the story of a run goes: human lines on stderr, and with `--output json` one JSON object
//! per line on stdout, the last one always `{"event":"result",…}`.
//!
//! Nothing here decides anything; it only renders what the runbook reports.

use crate::cli::OutputFormat;
use crate::outcome::{Outcome, RunResult};
use crate::report::Report;
use serde_json::{Value, json};
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Instant;

mod phase;

pub(crate) use phase::Phase;

pub(crate) struct Output {
    json: bool,
    started: Instant,
    color: bool,
    tty: bool,
    pub(crate) ci: Ci,
    /// The structured story of this run, rendered for the PR, the MR and CI at the end.
    pub(crate) report: Mutex<Report>,
    /// The CI log section now open (GitHub group / GitLab section), with its GitLab name.
    section: Mutex<Option<String>>,
    /// The spinner on screen (terminal only): lines are printed above it, not through it.
    active: Mutex<Option<indicatif::ProgressBar>>,
    /// Set on the output of one service of several: its lines carry the name, its JSON events a
    /// `service` field, and it opens no CI sections (services run side by side).
    scope: Option<String>,
}

/// Where the run happens: each CI has its own log markup and output files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ci {
    None,
    GitHub,
    GitLab,
}

impl Ci {
    pub(crate) fn detect() -> Ci {
        let on = |name: &str| std::env::var(name).is_ok_and(|v| v == "true");
        if on("GITHUB_ACTIONS") {
            Ci::GitHub
        } else if on("GITLAB_CI") {
            Ci::GitLab
        } else {
            Ci::None
        }
    }
}

impl Output {
    pub(crate) fn new(format: OutputFormat, started: Instant) -> Output {
        let tty = std::io::stderr().is_terminal();
        let color = tty && std::env::var_os("NO_COLOR").is_none();
        Output {
            json: format == OutputFormat::Json,
            started,
            color,
            tty,
            ci: Ci::detect(),
            report: Mutex::new(Report::default()),
            section: Mutex::new(None),
            active: Mutex::new(None),
            scope: None,
        }
    }

    /// The output of one service of several: same clock and format, its own report, no spinners.
    pub(crate) fn child(&self, name: &str) -> Output {
        Output {
            json: self.json,
            started: self.started,
            color: self.color,
            tty: false,
            ci: self.ci,
            report: Mutex::new(Report::default()),
            section: Mutex::new(None),
            active: Mutex::new(None),
            scope: Some(name.to_string()),
        }
    }

    fn elapsed_ms(&self) -> u128 {
        self.started.elapsed().as_millis()
    }

    fn line(&self, mark: &str, message: &str) {
        let secs = self.started.elapsed().as_secs_f64();
        let scope = self
            .scope
            .as_ref()
            .map(|name| format!("{name} | "))
            .unwrap_or_default();
        let text = format!("[{secs:6.1}s] {scope}{mark}{message}");
        match self
            .active
            .lock()
            .expect("no thread panics while holding the spinner")
            .as_ref()
        {
            Some(bar) => bar.println(text),
            None => {
                let _ = writeln!(std::io::stderr().lock(), "{text}");
            }
        }
    }

    fn event(&self, mut value: Value) {
        if self.json {
            value["elapsed_ms"] = json!(self.elapsed_ms());
            if let Some(name) = &self.scope {
                value["service_name"] = json!(name);
            }
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{value}");
            let _ = out.flush();
        }
    }

    fn record(&self, change: impl FnOnce(&mut Report)) {
        change(
            &mut self
                .report
                .lock()
                .expect("no thread panics while holding the report"),
        );
    }

    /// Closes the open CI log section (GitHub group, GitLab collapsible section).
    fn close_section(&self) {
        let mut open = self
            .section
            .lock()
            .expect("no thread panics while holding the section");
        if let Some(name) = open.take() {
            let mut err = std::io::stderr().lock();
            let _ = match self.ci {
                Ci::GitHub => writeln!(err, "::endgroup::"),
                Ci::GitLab => writeln!(err, "\x1b[0Ksection_end:{}:{name}\r\x1b[0K", unix_now()),
                Ci::None => Ok(()),
            };
        }
    }

    fn open_section(&self, title: &str, n: usize) {
        if self.scope.is_some() {
            return;
        }
        self.close_section();
        let name = format!("deployer_step_{n}");
        let mut err = std::io::stderr().lock();
        let _ = match self.ci {
            Ci::GitHub => writeln!(err, "::group::{}", escape_command(title)),
            Ci::GitLab => writeln!(
                err,
                "\x1b[0Ksection_start:{}:{name}\r\x1b[0K{title}",
                unix_now()
            ),
            Ci::None => return,
        };
        drop(err);
        *self
            .section
            .lock()
            .expect("no thread panics while holding the section") = Some(name);
    }

    /// Several services: the system's name, what the report is about.
    pub(crate) fn system(&self, name: &str) {
        self.record(|r| r.system = Some(name.to_string()));
    }

    /// One service's finished report, part of this run's.
    pub(crate) fn service_report(&self, report: Report) {
        self.record(|r| r.services.push(report));
    }

    /// The GitHub deployment this run reports to at the end.
    pub(crate) fn github_deployment(&self, id: Option<u64>) {
        self.record(|r| r.github_deployment = id);
    }

    /// The image a deploy puts in, unless `run` already said which one it built.
    pub(crate) fn image_if_unknown(&self, reference: &str) {
        self.record(|r| {
            if r.image.is_none() {
                r.image = Some(reference.to_string());
            }
        });
    }

    /// The image a run built or deploys, for the report.
    pub(crate) fn image(&self, reference: &str, digest: Option<&str>) {
        self.record(|r| {
            r.image = Some(reference.to_string());
            r.image_digest = digest.map(String::from);
        });
    }

    /// A phase of the run begins.
    pub(crate) fn step(&self, message: &str) {
        let now = self.elapsed_ms();
        let mut n = 0;
        self.record(|r| {
            r.begin_step(message, now);
            n = r.steps.len();
        });
        self.open_section(message, n);
        self.line(
            if self.color {
                "\x1b[1m==>\x1b[0m "
            } else {
                "==> "
            },
            message,
        );
        self.event(json!({"event": "step", "message": message}));
    }

    pub(crate) fn info(&self, message: &str) {
        self.line("    ", message);
        self.event(json!({"event": "info", "message": message}));
    }

    pub(crate) fn warn(&self, message: &str) {
        self.record(|r| r.warnings.push(message.to_string()));
        self.line(
            if self.color {
                "\x1b[33mwarning:\x1b[0m "
            } else {
                "warning: "
            },
            message,
        );
        self.event(json!({"event": "warning", "message": message}));
    }

    /// `verify`'s findings: a line each on stderr, recorded for the report (PR comment, JSON report),
    /// and one `{"event": "verify", "findings": [...]}` line on stdout.
    pub(crate) fn findings(&self, findings: &[crate::findings::Finding]) {
        self.record(|r| r.findings.extend(findings.iter().cloned()));
        for f in findings {
            let prefix = match (f.level, self.color) {
                (crate::findings::Level::Error, true) => "\x1b[31merror:\x1b[0m ",
                (crate::findings::Level::Error, false) => "error: ",
                (crate::findings::Level::Warning, true) => "\x1b[33mwarning:\x1b[0m ",
                (crate::findings::Level::Warning, false) => "warning: ",
            };
            self.line(prefix, &f.line());
        }
        let list: Vec<Value> = findings
            .iter()
            .map(crate::findings::Finding::to_json)
            .collect();
        self.event(json!({"event": "verify", "findings": list}));
    }

    /// Keeps a secret out of CI logs (GitHub Actions masks it from here on).
    pub(crate) fn mask(&self, secret: &str) {
        if self.ci == Ci::GitHub && !secret.is_empty() {
            // On stderr: stdout is reserved for --output json; the runner reads commands from both.
            eprintln!("::add-mask::{secret}");
        }
    }

    /// One ECS service event, printed once.
    pub(crate) fn service_event(&self, at: &str, message: &str) {
        self.record(|r| r.events.push((at.to_string(), message.to_string())));
        self.line("    ecs: ", message);
        self.event(json!({"event": "service_event", "at": at, "message": message}));
    }

    /// Rollout progress, printed when it changes.
    pub(crate) fn progress(&self, summary: &str, detail: Value) {
        self.line("    ", summary);
        let mut value = json!({"event": "progress", "message": summary});
        if let Value::Object(map) = detail {
            for (k, v) in map {
                value[k] = v;
            }
        }
        self.event(value);
    }

    /// A staged deployment entered a lifecycle stage: a `stage` event, and a row of the report's
    /// stage timeline.
    pub(crate) fn stage(&self, stage: &str, detail: Value) {
        let now = self.elapsed_ms();
        self.record(|r| r.stages.push((now, stage.to_string())));
        let mut value = json!({"event": "stage", "stage": stage});
        if let Value::Object(map) = detail {
            for (k, v) in map {
                value[k] = v;
            }
        }
        self.event(value);
    }

    /// A multi-line block (a failure report, a diff): text as is on stderr, structured on stdout.
    pub(crate) fn block(&self, kind: &str, text: &str, detail: Value) {
        if kind == "failure" {
            self.record(|r| {
                r.failure_text = Some(text.to_string());
                r.failure = Some(detail.clone());
            });
        }
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{text}");
        drop(err);
        let mut value = json!({"event": kind});
        if let Value::Object(map) = detail {
            for (k, v) in map {
                value[k] = v;
            }
        }
        self.event(value);
    }

    pub(crate) fn result(&self, result: &RunResult) {
        let now = self.elapsed_ms();
        self.record(|r| {
            r.end_step(now);
            r.result = Some(result.clone());
            r.duration_ms = now;
        });
        self.close_section();
        let outcome = result.outcome;
        if let (Ci::GitHub, Some(reason)) = (self.ci, &result.reason)
            && !matches!(
                outcome,
                Outcome::Deployed | Outcome::Unchanged | Outcome::Planned | Outcome::Reported
            )
        {
            eprintln!(
                "::error title=deployer {}::{}",
                outcome.as_str(),
                escape_command(reason)
            );
        }
        let verdict = match outcome {
            Outcome::Deployed => "deployed: the new tasks are running and healthy".to_string(),
            Outcome::Unchanged => "nothing to deploy".to_string(),
            Outcome::Planned | Outcome::Reported => String::new(),
            Outcome::RolledBack => {
                "rolled back: the service is back on the previous task definition".to_string()
            }
            Outcome::RollbackFailed => {
                "rollback did not complete: a person must look at the service".to_string()
            }
            Outcome::Refused => "refused: nothing was changed".to_string(),
            Outcome::Interrupted => "interrupted".to_string(),
            Outcome::Skipped => "skipped: not deployed".to_string(),
        };
        let verdict = match outcome {
            Outcome::RolledBack if !result.services.is_empty() => {
                "rolled back: every service this run changed is back on its previous task definition"
                    .to_string()
            }
            Outcome::Deployed if !result.services.is_empty() => {
                "deployed: every service's new tasks are running and healthy".to_string()
            }
            _ => verdict,
        };
        match (&result.reason, verdict.is_empty()) {
            (Some(reason), _) if outcome != Outcome::Unchanged => {
                let scope = self
                    .scope
                    .as_ref()
                    .map(|name| format!("{name} | "))
                    .unwrap_or_default();
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "{scope}error: {reason}");
                if !verdict.is_empty() {
                    let _ = writeln!(err, "{scope}{verdict}");
                }
            }
            (_, false) => self.line("", &verdict),
            _ => {}
        }
        let mut value = result.to_json();
        value["event"] = json!(if self.scope.is_some() {
            "service_result"
        } else {
            "result"
        });
        value["duration_ms"] = json!(self.elapsed_ms());
        self.event(value);
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A workflow command's message: `%`, CR and LF escaped as the runner expects.
fn escape_command(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}
