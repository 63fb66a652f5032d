//! The story of one run, kept once as it happens and rendered for each place people look: the job
//! summary and the pull-request comment (Markdown), GitHub's outputs file, GitLab's dotenv file and
//! a JSON report. Rendering is pure; posting lives in `github.rs` and `gitlab.rs`.
//!
//! Invariant: nothing here ever holds an environment-variable value or a token; the task-definition
//! diff names variables only, and secrets never enter the report.

pub(crate) mod ci;
pub(crate) mod github;
pub(crate) mod gitlab;
pub(crate) mod output;
pub(crate) mod publish;

use crate::outcome::{Outcome, RunResult};
use serde_json::{Value, json};
use std::fmt::Write;

#[derive(Debug, Clone, Default)]
pub(crate) struct Step {
    pub(crate) name: String,
    pub(crate) started_ms: u128,
    pub(crate) duration_ms: u128,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Report {
    pub(crate) steps: Vec<Step>,
    pub(crate) image: Option<String>,
    pub(crate) image_digest: Option<String>,
    pub(crate) events: Vec<(String, String)>,
    /// Why it failed: the text block and its structured form (`failure::Report`).
    pub(crate) failure_text: Option<String>,
    pub(crate) failure: Option<Value>,
    pub(crate) result: Option<RunResult>,
    pub(crate) duration_ms: u128,
    /// The GitHub deployment made at the start (`--github-deployment`), to finish at the end.
    pub(crate) github_deployment: Option<u64>,
    /// Several services in one run: the system's name, and each service's own report.
    pub(crate) system: Option<String>,
    pub(crate) services: Vec<Report>,
    /// Warnings worth a reader's eye (tasks in one zone, revisions not tidied).
    pub(crate) warnings: Vec<String>,
    /// A staged (blue/green, linear, canary) deployment's lifecycle stages, with when each began.
    pub(crate) stages: Vec<(u128, String)>,
    /// `verify`'s findings (errors and warnings), with their stable codes.
    pub(crate) findings: Vec<crate::findings::Finding>,
}

impl Report {
    pub(crate) fn begin_step(&mut self, name: &str, now_ms: u128) {
        self.end_step(now_ms);
        self.steps.push(Step {
            name: name.to_string(),
            started_ms: now_ms,
            duration_ms: 0,
        });
    }

    pub(crate) fn end_step(&mut self, now_ms: u128) {
        if let Some(last) = self.steps.last_mut().filter(|s| s.duration_ms == 0) {
            last.duration_ms = now_ms.saturating_sub(last.started_ms).max(1);
        }
    }

    fn outcome(&self) -> Outcome {
        self.result.as_ref().map_or(Outcome::Refused, |r| r.outcome)
    }

    fn field(&self, pick: impl Fn(&RunResult) -> Option<&String>) -> String {
        self.result
            .as_ref()
            .and_then(pick)
            .cloned()
            .unwrap_or_default()
    }

    /// `cluster/service`, what a comment and a status are about.
    pub(crate) fn subject(&self) -> String {
        if let Some(name) = &self.system {
            return name.clone();
        }
        format!(
            "{}/{}",
            self.field(|r| r.cluster.as_ref()),
            self.field(|r| r.service.as_ref())
        )
    }

    /// The name:value pairs every platform gets as outputs.
    pub(crate) fn outputs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("outcome", self.outcome().as_str().to_string()),
            (
                "task-definition-arn",
                self.field(|r| r.task_definition_arn.as_ref()),
            ),
            (
                "previous-task-definition-arn",
                self.field(|r| r.previous_task_definition_arn.as_ref()),
            ),
            ("image", self.image.clone().unwrap_or_default()),
            (
                "image-digest",
                self.image_digest.clone().unwrap_or_default(),
            ),
            ("deployment-id", self.field(|r| r.deployment_id.as_ref())),
            ("reason", self.field(|r| r.reason.as_ref())),
        ]
    }

    /// The hidden line that finds this service's comment again: one comment per service and environment.
    pub(crate) fn marker(&self, environment: &str) -> String {
        format!(
            "<!-- deployer:v1 service={} env={environment} -->",
            self.subject()
        )
    }

    /// This service's row of the comment's table.
    fn row(&self) -> String {
        let short = |arn: String| arn.rsplit('/').next().map(String::from).unwrap_or(arn);
        let old = short(self.field(|r| r.previous_task_definition_arn.as_ref()));
        let new = short(self.field(|r| r.task_definition_arn.as_ref()));
        let task_definitions = match (old.is_empty(), new.is_empty()) {
            (false, false) if old != new => format!("`{old}` → `{new}`"),
            (false, _) => format!("`{old}`"),
            (true, false) => format!("`{new}`"),
            _ => "—".to_string(),
        };
        let image = match (&self.image, &self.image_digest) {
            (Some(image), _) => format!("`{}`", shorten_digest(image)),
            _ => "—".to_string(),
        };
        format!(
            "| `{}` | {image} | {task_definitions} | {} | {} |",
            self.subject(),
            duration(self.duration_ms),
            badge(self.outcome())
        )
    }

    fn why(&self) -> Option<String> {
        self.result
            .as_ref()
            .and_then(|r| r.reason.as_ref())
            .filter(|_| self.outcome() != Outcome::Deployed)
            .map(|reason| one_line(reason))
    }

    fn failure_details(&self, md: &mut String, whose: &str) {
        if let Some(text) = &self.failure_text {
            let _ = writeln!(
                md,
                "\n<details><summary>{whose}Failure report: stopped tasks, exit codes, log lines, targets, events</summary>\n"
            );
            let _ = writeln!(md, "```text\n{}\n```\n</details>", fence_safe(text));
        }
    }

    /// `verify`'s errors and warnings, a line each.
    fn verify_findings(&self, md: &mut String) {
        let own = self.findings.iter().map(|f| (String::new(), f));
        let services = self.services.iter().flat_map(|s| {
            let whose = format!("`{}`: ", s.subject());
            s.findings.iter().map(move |f| (whose.clone(), f))
        });
        for (whose, f) in own.chain(services) {
            let level = match f.level {
                crate::findings::Level::Error => "❌ error",
                crate::findings::Level::Warning => "⚠️ warning",
            };
            let _ = writeln!(md, "\n{level} {whose}{}", one_line(&f.line()));
        }
    }

    /// The PR/MR comment and the job summary.
    pub(crate) fn markdown(&self, environment: &str, run_url: Option<&str>) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "### deployer: `{}` ({environment})\n", self.subject());
        let _ = writeln!(
            md,
            "| service | image | task definition | duration | outcome |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|");
        if self.services.is_empty() {
            let _ = writeln!(md, "{}", self.row());
        } else {
            for service in &self.services {
                let _ = writeln!(md, "{}", service.row());
            }
            let _ = writeln!(
                md,
                "| **all** | | | {} | {} |",
                duration(self.duration_ms),
                badge(self.outcome())
            );
        }
        if let Some(why) = self.why() {
            let _ = writeln!(md, "\n**Why:** {why}");
        }
        for (whose, warning) in
            self.warnings
                .iter()
                .map(|w| (String::new(), w))
                .chain(self.services.iter().flat_map(|s| {
                    s.warnings
                        .iter()
                        .map(|w| (format!("`{}`: ", s.subject()), w))
                }))
        {
            let _ = writeln!(md, "\n⚠️ {whose}{}", one_line(warning));
        }
        self.verify_findings(&mut md);
        self.failure_details(&mut md, "");
        for service in &self.services {
            if let Some(why) = service.why().filter(|_| service.failure_text.is_some()) {
                let _ = writeln!(md, "\n**`{}`:** {why}", service.subject());
            }
            service.failure_details(&mut md, &format!("`{}`: ", service.subject()));
        }
        if !self.steps.is_empty() {
            let _ = writeln!(md, "\n<details><summary>Steps</summary>\n");
            let _ = writeln!(md, "| step | took |\n|---|---|");
            for step in &self.steps {
                let _ = writeln!(
                    md,
                    "| {} | {} |",
                    one_line(&step.name).replace('|', "\\|"),
                    duration(step.duration_ms)
                );
            }
            let _ = writeln!(md, "\n</details>");
        }
        if !self.stages.is_empty() {
            let _ = writeln!(md, "\n<details><summary>Stages</summary>\n");
            let _ = writeln!(md, "| stage | at |\n|---|---|");
            for (at, stage) in &self.stages {
                let _ = writeln!(
                    md,
                    "| {} | {} |",
                    one_line(stage).replace('|', "\\|"),
                    duration(*at)
                );
            }
            let _ = writeln!(md, "\n</details>");
        }
        if let Some(url) = run_url {
            let _ = writeln!(md, "\n[The job's log]({url})");
        }
        let _ = writeln!(md, "\n{}", self.marker(environment));
        truncate(md, 60_000)
    }

    /// GitLab's dotenv report: single-line `KEY=value`, no comments or blank lines.
    pub(crate) fn dotenv(&self) -> String {
        self.outputs()
            .into_iter()
            .map(|(name, value)| {
                format!(
                    "DEPLOYER_{}={}\n",
                    name.to_uppercase().replace('-', "_"),
                    one_line(&value)
                )
            })
            .collect()
    }

    /// The whole report as one JSON document (the CI artifact).
    pub(crate) fn json(&self) -> Value {
        let outputs: serde_json::Map<String, Value> = self
            .outputs()
            .into_iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        json!({
            "subject": self.subject(),
            "outputs": outputs,
            "duration_ms": self.duration_ms,
            "steps": self.steps.iter().map(|s| json!({"name": s.name, "started_ms": s.started_ms, "duration_ms": s.duration_ms})).collect::<Vec<_>>(),
            "service_events": self.events.iter().map(|(at, m)| json!({"at": at, "message": m})).collect::<Vec<_>>(),
            "failure": self.failure,
            "services": self.services.iter().map(Report::json).collect::<Vec<_>>(),
            "warnings": self.warnings,
            "findings": self.findings.iter().map(crate::findings::Finding::to_json).collect::<Vec<_>>(),
        })
    }
}

/// GitHub's outputs file: `name<<DELIM` … `DELIM`, with a delimiter found in no value.
pub(crate) fn github_outputs(outputs: &[(&str, String)], nonce: u64) -> String {
    let mut delimiter = format!("ghadelimiter_{nonce:016x}");
    while outputs.iter().any(|(_, v)| v.contains(&delimiter)) {
        delimiter.push('_');
    }
    outputs
        .iter()
        .map(|(name, value)| format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"))
        .collect()
}

fn badge(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Deployed => "✅ deployed",
        Outcome::Unchanged => "➖ nothing to deploy",
        Outcome::RolledBack => "↩️ failed, rolled back",
        Outcome::RollbackFailed => "🚨 failed, rollback did not complete",
        Outcome::Refused => "⛔ refused, nothing changed",
        Outcome::Interrupted => "⏹️ interrupted, rolled back",
        Outcome::Skipped => "⏭️ not started",
        Outcome::Planned | Outcome::Reported => "ℹ️ no change made",
    }
}

fn duration(ms: u128) -> String {
    let secs = ms / 1000;
    match secs {
        0 => format!("{:.1}s", ms as f64 / 1000.0),
        1..=59 => format!("{secs}s"),
        _ => format!("{}m {:02}s", secs / 60, secs % 60),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn shorten_digest(image: &str) -> String {
    match image.split_once("@sha256:") {
        Some((repo, hex)) => format!("{repo}@sha256:{}…", &hex[..hex.len().min(12)]),
        None => image.to_string(),
    }
}

/// Log lines may hold anything, ``` included: keep them from closing the code block.
fn fence_safe(text: &str) -> String {
    text.replace("```", "ˋˋˋ")
}

fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max - 200;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str(
            "\n\n…(cut to fit a comment; the job summary and the JSON report hold everything)\n",
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(outcome: Outcome) -> Report {
        Report {
            image: Some("123.dkr.ecr.us-east-1.amazonaws.com/web@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into()),
            image_digest: Some("sha256:0123".into()),
            duration_ms: 92_000,
            steps: vec![Step { name: "updating service `web`".into(), started_ms: 0, duration_ms: 1500 }],
            result: Some(RunResult {
                outcome,
                cluster: Some("prod".into()),
                service: Some("web".into()),
                task_definition_arn: Some("arn:aws:ecs:us-east-1:1:task-definition/web:42".into()),
                previous_task_definition_arn: Some("arn:aws:ecs:us-east-1:1:task-definition/web:41".into()),
                deployment_id: Some("ecs-svc/1".into()),
                reason: (outcome != Outcome::Deployed).then(|| "2 of the new tasks stopped".to_string()),
                services: vec![],
                restored: None,
                rollback: None,
                service_deployment_arn: None,
                stage: None,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn comment_table_and_marker() {
        let md = report(Outcome::Deployed).markdown("staging", Some("https://ci/run/1"));
        assert!(md.contains("| `prod/web` | `123.dkr.ecr.us-east-1.amazonaws.com/web@sha256:0123456789ab…` | `web:41` → `web:42` | 1m 32s | ✅ deployed |"), "{md}");
        assert!(
            md.trim_end()
                .ends_with("<!-- deployer:v1 service=prod/web env=staging -->"),
            "{md}"
        );
        assert!(!md.contains("Why:"));
        let mut failed = report(Outcome::RolledBack);
        failed.failure_text = Some("why it failed: x\n  | ``` injected".into());
        let md = failed.markdown("staging", None);
        assert!(
            md.contains("↩️ failed, rolled back")
                && md.contains("**Why:** 2 of the new tasks stopped"),
            "{md}"
        );
        assert!(
            md.contains("<details><summary>Failure report") && md.contains("ˋˋˋ injected"),
            "{md}"
        );
    }

    #[test]
    fn verify_findings_are_listed_in_the_comment_and_the_json_report() {
        let finding = |code, level| crate::findings::Finding {
            code,
            level,
            container: Some("web".into()),
            field: "secrets[0].valueFrom".into(),
            value: "db".into(),
            problem: "no such secret".into(),
            what_to_do: "create it".into(),
        };
        let mut refused = report(Outcome::Refused);
        refused.findings = vec![
            finding("secret-not-found", crate::findings::Level::Error),
            finding("check-denied", crate::findings::Level::Warning),
        ];
        let md = refused.markdown("staging", None);
        assert!(
            md.contains("❌ error [secret-not-found] container `web`, secrets[0].valueFrom = `db`: no such secret; create it"),
            "{md}"
        );
        assert!(md.contains("⚠️ warning [check-denied]"), "{md}");
        let system = Report {
            system: Some("shop".into()),
            services: vec![refused.clone()],
            ..Default::default()
        };
        let md = system.markdown("staging", None);
        assert!(
            md.contains("❌ error `prod/web`: [secret-not-found]"),
            "{md}"
        );
        let json = refused.json();
        assert_eq!(json["findings"][0]["code"], "secret-not-found");
        assert_eq!(json["findings"][1]["severity"], "warning");
    }

    #[test]
    fn a_system_has_one_comment_with_a_row_per_service() {
        let mut api = report(Outcome::RolledBack);
        api.result.as_mut().unwrap().service = Some("api".into());
        api.result.as_mut().unwrap().reason =
            Some("deployed, then rolled back because `web` failed".into());
        let mut web = report(Outcome::RolledBack);
        web.failure_text = Some("why it failed: 2 of the new tasks stopped".into());
        web.warnings = vec!["all 2 healthy tasks run in us-east-1a".into()];
        let system = Report {
            system: Some("shop".into()),
            services: vec![api, web],
            result: Some(RunResult {
                reason: Some(
                    "`web` failed: 2 of the new tasks stopped (rolled back: api, web)".into(),
                ),
                ..report(Outcome::RolledBack).result.unwrap()
            }),
            ..Default::default()
        };
        let md = system.markdown("production", None);
        assert!(md.starts_with("### deployer: `shop` (production)"), "{md}");
        assert!(md.contains("| `prod/api` |"), "{md}");
        assert!(md.contains("| `prod/web` |"), "{md}");
        assert!(md.contains("| **all** |"), "{md}");
        assert!(md.contains("**Why:** `web` failed"), "{md}");
        assert!(md.contains("`prod/web`: Failure report"), "{md}");
        assert!(
            md.contains("⚠️ `prod/web`: all 2 healthy tasks run in us-east-1a"),
            "{md}"
        );
        assert!(
            md.contains("<!-- deployer:v1 service=shop env=production -->"),
            "{md}"
        );
        assert_eq!(system.json()["services"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn outputs_in_each_format() {
        let r = report(Outcome::RolledBack);
        let gh = github_outputs(&r.outputs(), 7);
        assert!(gh.starts_with("outcome<<ghadelimiter_0000000000000007\nrolled_back\nghadelimiter_0000000000000007\n"), "{gh}");
        let dotenv = r.dotenv();
        assert!(
            dotenv.contains("DEPLOYER_OUTCOME=rolled_back\n")
                && dotenv.contains(
                    "DEPLOYER_TASK_DEFINITION_ARN=arn:aws:ecs:us-east-1:1:task-definition/web:42\n"
                ),
            "{dotenv}"
        );
        assert!(
            dotenv
                .lines()
                .all(|l| !l.is_empty() && !l.starts_with('#') && l.contains('='))
        );
        let tricky = github_outputs(
            &[("reason", "a\nghadelimiter_0000000000000007\nb".into())],
            7,
        );
        assert!(
            tricky.starts_with("reason<<ghadelimiter_0000000000000007_\n"),
            "{tricky}"
        );
    }

    #[test]
    fn long_comments_are_cut_on_a_char_boundary() {
        let text = truncate("é".repeat(40_000), 60_000);
        assert!(text.len() <= 60_000 && text.ends_with("hold everything)\n"));
    }
}
