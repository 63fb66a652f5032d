//! `deployer status`: the service's deployments, tasks, target health and last events, read-only.

use crate::aws::Aws;
use crate::aws::{ecs, elb};
use crate::outcome::{Outcome, RunResult};
use crate::report::output::Output;
use crate::rollout::{Snapshot, TargetView};
use crate::steps::watch::look::Watcher;
use crate::strategy::ServiceDeploymentView;
use crate::target::Target;
use aws_sdk_ecs::types::ServiceEvent;
use serde_json::{Value, json};
use std::fmt::Write;

pub(crate) async fn command(target: &Target, aws: &Aws, out: &Output) -> RunResult {
    let result = RunResult::for_target(target);
    let service = match ecs::describe_service(aws, target).await {
        Ok(service) => service,
        Err(err) => return result.finish(Outcome::Refused, Some(format!("{err:#}"))),
    };
    // An empty deployment id matches no task, so this snapshot lists only the deployments (target
    // health is read below); the events are printed below, so the watcher treats them as seen.
    let seen = service
        .events()
        .iter()
        .filter_map(|e| e.id().map(String::from))
        .collect();
    let mut watcher = Watcher::new(std::time::SystemTime::now(), seen);
    let snapshot = match watcher.snapshot(aws, target, ("", None), out).await {
        Ok(snapshot) => snapshot,
        Err(err) => return result.finish(Outcome::Refused, Some(format!("{err:#}"))),
    };
    let mut text = summary(target, &snapshot);
    let staged = match service.current_service_deployment() {
        Some(arn) if ecs::shape(&service).staged() => ecs::describe_service_deployment(aws, arn)
            .await
            .ok()
            .flatten(),
        _ => None,
    };
    if let Some(sd) = &staged {
        let _ = writeln!(
            text,
            "  service deployment {}: {}, {}{}",
            sd.arn,
            sd.status,
            sd.describe(),
            sd.reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        );
    }
    let targets = match elb::target_health(aws, &snapshot.target_groups).await {
        Ok(targets) => targets,
        Err(err) => return result.finish(Outcome::Refused, Some(format!("{err:#}"))),
    };
    for t in &targets {
        let _ = writeln!(text, "  target {}", t.describe());
    }
    let events: Vec<_> = service.events().iter().take(10).collect();
    last_events(&mut text, &events);
    let detail = detail(&snapshot, &targets, &events, staged.as_ref());
    out.block("status", text.trim_end(), detail);
    let mut result = result.finish(Outcome::Reported, None);
    result.task_definition_arn = Some(snapshot.task_definition.into());
    result
}

/// The service's counts and task definition, then a line for each deployment.
fn summary(target: &Target, snapshot: &Snapshot) -> String {
    let mut text = format!(
        "service {} in cluster {}: {} running of {} desired, task definition {}\n",
        target.service,
        target.cluster,
        snapshot.running,
        snapshot.desired,
        snapshot.task_definition
    );
    for d in &snapshot.deployments {
        let _ = writeln!(
            text,
            "  deployment {} {} {}: {} running, {} pending, {} failed, {}{}",
            d.id,
            d.status,
            d.rollout_state.as_ref().map_or("-", |s| s.as_str()),
            d.running,
            d.pending,
            d.failed,
            d.task_definition,
            d.rollout_state_reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        );
    }
    text
}

/// The service's last events, oldest first.
fn last_events(text: &mut String, events: &[&ServiceEvent]) {
    if !events.is_empty() {
        let _ = writeln!(text, "  last events:");
        for e in events.iter().rev() {
            let at = e
                .created_at()
                .and_then(|t| {
                    t.fmt(aws_sdk_ecs::primitives::DateTimeFormat::DateTime)
                        .ok()
                })
                .unwrap_or_default();
            let _ = writeln!(text, "    {at} {}", e.message().unwrap_or_default());
        }
    }
}

/// The status as JSON.
fn detail(
    snapshot: &Snapshot,
    targets: &[TargetView],
    events: &[&ServiceEvent],
    staged: Option<&ServiceDeploymentView>,
) -> Value {
    json!({
        "task_definition": snapshot.task_definition,
        "running": snapshot.running,
        "desired": snapshot.desired,
        "deployments": snapshot.deployments.iter().map(|d| json!({"id": d.id, "status": d.status, "task_definition": d.task_definition,
            "rollout_state": d.rollout_state, "rollout_state_reason": d.rollout_state_reason, "running": d.running,
            "pending": d.pending, "failed": d.failed, "desired": d.desired})).collect::<Vec<_>>(),
        "targets": targets.iter().map(|t| json!({"target_group": t.target_group, "id": t.id, "port": t.port,
            "state": t.state, "reason": t.reason})).collect::<Vec<_>>(),
        "events": events.iter().map(|e| e.message().unwrap_or_default()).collect::<Vec<_>>(),
        "service_deployment": staged.as_ref().map(|sd| json!({"arn": sd.arn, "status": sd.status,
            "stage": sd.stage, "reason": sd.reason, "production_weight": sd.production_weight,
            "waiting_hook": sd.waiting_hook().map(|h| json!({"id": h.id, "expires": h.expires}))})),
    })
}
