//! The failure report: why a rollout failed, in the words ECS, the ALB and the containers used.
//!
//! Stopped tasks (stoppedReason, stopCode, each container's exit code and reason), the last log
//! lines each failed container wrote to CloudWatch Logs, unhealthy targets with their reason, and
//! the service events since the deploy began.

use crate::aws::{Aws, logs};
use crate::ecs_state::TargetState;
use crate::rollout::{ContainerView, Failure, Snapshot, TaskView};
use crate::task_definition::TaskDefinition;
use serde_json::{Value, json};
use std::fmt::Write;

const LOG_LINES: i32 = 20;
const TASKS_WITH_LOGS: usize = 3;

pub(crate) struct Report {
    pub(crate) summary: String,
    pub(crate) text: String,
    pub(crate) detail: Value,
}

/// Builds the report. Reads CloudWatch Logs; a log that cannot be read is said, not fatal.
pub(crate) async fn report(
    aws: &Aws,
    failure: &Failure,
    snapshot: &Snapshot,
    td: &TaskDefinition,
    events: &[(String, String)],
) -> Report {
    let summary = failure.summary();
    let mut text = format!("why it failed: {summary}\n");
    let mut tasks_json = Vec::new();
    let failed: Vec<_> = snapshot.tasks.iter().filter(|t| t.failed()).collect();
    for (i, task) in failed.iter().enumerate() {
        let with_logs = i < TASKS_WITH_LOGS;
        tasks_json.push(stopped_task(aws, td, task, with_logs, &mut text).await);
    }
    let unhealthy: Vec<_> = snapshot
        .targets
        .iter()
        .filter(|t| t.state == TargetState::Unhealthy)
        .collect();
    for t in &unhealthy {
        let _ = writeln!(text, "  target {}", t.describe());
    }
    let smoke_output = match failure {
        Failure::SmokeTest { output, .. } => output.clone(),
        _ => Vec::new(),
    };
    if !smoke_output.is_empty() {
        let _ = writeln!(text, "  the smoke test's last output lines:");
        for line in &smoke_output {
            let _ = writeln!(text, "    {line}");
        }
    }
    if let Some(sd) = &snapshot.service_deployment {
        let _ = writeln!(
            text,
            "  service deployment {}: {} at {}",
            sd.arn,
            sd.status,
            sd.stage.as_deref().unwrap_or("no stage")
        );
    }
    if !events.is_empty() {
        let _ = writeln!(text, "  service events since the deploy began:");
        for (at, message) in events {
            let _ = writeln!(text, "    {at} {message}");
        }
    }
    let detail = json!({
        "reason": summary,
        "stopped_tasks": tasks_json,
        "unhealthy_targets": unhealthy.iter().map(|t| json!({"target_group": t.target_group, "id": t.id, "port": t.port,
            "reason": t.reason, "description": t.description})).collect::<Vec<_>>(),
        "service_events": events.iter().map(|(at, m)| json!({"at": at, "message": m})).collect::<Vec<_>>(),
        "smoke_test_output": smoke_output,
        "service_deployment": snapshot.service_deployment.as_ref().map(|sd| json!({
            "arn": sd.arn, "status": sd.status, "stage": sd.stage, "reason": sd.reason})),
    });
    Report {
        summary,
        text: text.trim_end().to_string(),
        detail,
    }
}

/// One stopped task: why it stopped, and each container that crashed (with its last log lines
/// when `with_logs`). Appends to `text`, returns the task's JSON.
async fn stopped_task(
    aws: &Aws,
    td: &TaskDefinition,
    task: &TaskView,
    with_logs: bool,
    text: &mut String,
) -> Value {
    let _ = writeln!(
        text,
        "  task {} stopped: {}{}",
        task.id(),
        task.stopped_reason.as_deref().unwrap_or("no reason given"),
        task.stop_code
            .as_deref()
            .map(|c| format!(" ({c})"))
            .unwrap_or_default()
    );
    let mut containers_json = Vec::new();
    for c in &task.containers {
        let crashed = c.exit_code.is_some_and(|code| code != 0) || c.reason.is_some();
        if crashed {
            containers_json.push(crashed_container(aws, td, task, c, with_logs, text).await);
        }
    }
    json!({"task": task.arn, "stopped_reason": task.stopped_reason, "stop_code": task.stop_code, "containers": containers_json})
}

/// A crashed container: its exit code and reason, and its last log lines when `with_logs`.
async fn crashed_container(
    aws: &Aws,
    td: &TaskDefinition,
    task: &TaskView,
    c: &ContainerView,
    with_logs: bool,
    text: &mut String,
) -> Value {
    let _ = writeln!(
        text,
        "    container {}: exit code {}{}",
        c.name,
        c.exit_code.map_or("none".to_string(), |e| e.to_string()),
        c.reason
            .as_deref()
            .map(|r| format!(", {r}"))
            .unwrap_or_default()
    );
    let (lines, source) = if with_logs {
        logs::tail(aws, td, &c.name, task.id(), LOG_LINES).await
    } else {
        (Vec::new(), None)
    };
    if let Some(source) = &source {
        let _ = writeln!(
            text,
            "    last {} log lines of {} ({source}):",
            lines.len(),
            c.name
        );
        for line in &lines {
            let _ = writeln!(text, "      | {line}");
        }
    }
    json!({"name": c.name, "exit_code": c.exit_code, "reason": c.reason, "log_source": source, "log_lines": lines})
}
