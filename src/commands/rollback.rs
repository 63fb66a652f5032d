//! Putting the service back: after a failed deploy (to the task definition recorded before it, or
//! by following ECS's own circuit-breaker/alarm rollback), and as `deployer rollback`.
//!
//! Rollback never targets "revision minus one": only an ARN that is known to have run.

use crate::aws::Aws;
use crate::config::{RollbackConfig, Target};
use crate::output::{Outcome, Output, RunResult};
use crate::rollout::{Failure, Snapshot, Verdict, Watched};
use crate::service;
use crate::watch::{self, Interrupt, Watcher, deployments, describe_service};
use anyhow::{Context, Result, bail};
use aws_sdk_ecs::types::ServiceDeploymentStatus;
use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime};

/// A rollback that has begun: the deployment to watch.
pub(crate) struct Started {
    deployment_id: String,
    task_definition: String,
}

pub(crate) enum Restored {
    Healthy,
    Failed(String),
}

/// Starts the rollback: follows ECS's when ECS already rolls back, else calls UpdateService.
pub(crate) async fn start(
    aws: &Aws,
    target: &Target,
    previous: &str,
    failure: &Failure,
    snapshot: &Snapshot,
    out: &Output,
) -> Result<Started> {
    match failure {
        Failure::Superseded {
            deployment,
            task_definition,
        } => bail!(
            "not rolling back: deployment {deployment} ({task_definition}) started after ours and rolling back would undo it; look at the service"
        ),
        Failure::EcsRolledBack { .. }
        | Failure::RolloutFailed {
            rolling_back_to: Some(_),
            ..
        } => {
            if let Some(started) = ecs_rollback(aws, target, previous, out, Duration::ZERO).await? {
                return Ok(started);
            }
        }
        Failure::RolloutFailed {
            rolling_back_to: None,
            ..
        } if snapshot.ecs_rolls_back => {
            // The circuit breaker or alarms are set to roll back: give ECS a moment rather than race it.
            if let Some(started) =
                ecs_rollback(aws, target, previous, out, Duration::from_secs(10)).await?
            {
                return Ok(started);
            }
        }
        _ => {}
    }
    out.step(&format!("rolling back to {previous}"));
    let deployment_id = service::update(aws, target, previous, false).await?;
    out.info(&format!("rollback deployment {deployment_id}"));
    Ok(Started {
        deployment_id,
        task_definition: previous.to_string(),
    })
}

/// The PRIMARY deployment ECS started on its own to roll back, waiting up to `patience` for it.
async fn ecs_rollback(
    aws: &Aws,
    target: &Target,
    previous: &str,
    out: &Output,
    patience: Duration,
) -> Result<Option<Started>> {
    let deadline = Instant::now() + patience;
    loop {
        let service = describe_service(aws, target).await?;
        let primary = deployments(&service)
            .into_iter()
            .find(|d| d.status == "PRIMARY" && d.rollout_state.as_deref() != Some("FAILED"));
        if let Some(p) = primary {
            out.step(&format!(
                "ECS is rolling back to {} (deployment {}); following it",
                p.task_definition, p.id
            ));
            if p.task_definition != previous {
                out.warn(&format!(
                    "ECS rolls back to {}, not to {previous}, which ran before this deploy",
                    p.task_definition
                ));
            }
            return Ok(Some(Started {
                deployment_id: p.id,
                task_definition: p.task_definition,
            }));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Watches the rollback until healthy. A second signal stops the wait (the rollback goes on in ECS).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn finish(
    aws: &Aws,
    target: &Target,
    started: Started,
    timeout: Duration,
    max_failed_tasks: u32,
    out: &Output,
    interrupt: &Interrupt,
    signals_seen: u32,
    seen_events: HashSet<String>,
) -> Restored {
    out.step("waiting for the rollback to be healthy");
    let watched = Watched {
        deployment_id: started.deployment_id.clone(),
        task_definition: started.task_definition.clone(),
        previous_task_definition: None,
        max_failed_tasks,
    };
    let end = watch::until_verdict(
        aws,
        target,
        &watched,
        Watcher::new(SystemTime::now(), seen_events),
        timeout,
        out,
        interrupt,
        signals_seen,
    )
    .await;
    match end.verdict {
        Verdict::Healthy => {
            out.info(&format!(
                "service `{}` runs {} again, healthy",
                target.service, started.task_definition
            ));
            Restored::Healthy
        }
        Verdict::Failed(failure) => Restored::Failed(format!(
            "the rollback to {} did not complete: {}",
            started.task_definition,
            failure.summary()
        )),
        Verdict::InProgress(_) => Restored::Failed("the rollback is still in progress".into()),
    }
}

/// `deployer rollback`: back to `--to`, or to the last COMPLETED deployment before the current one.
pub(crate) async fn command(
    cfg: &RollbackConfig,
    aws: &Aws,
    out: &Output,
    interrupt: &Interrupt,
) -> RunResult {
    let mut result = RunResult::for_target(&cfg.target);
    let service = match describe_service(aws, &cfg.target).await {
        Ok(service) => service,
        Err(err) => return result.finish(Outcome::Refused, Some(format!("{err:#}"))),
    };
    let current = service.task_definition().unwrap_or_default().to_string();
    result.previous_task_definition_arn = Some(current.clone());
    let to = match &cfg.to {
        Some(to) => to.clone(),
        None => match earlier_successful(aws, &cfg.target, &service, &current).await {
            Ok(to) => {
                out.info(&format!(
                    "the last COMPLETED deployment before the current one ran {to}"
                ));
                to
            }
            Err(err) => return result.finish(Outcome::Refused, Some(format!("{err:#}"))),
        },
    };
    result.task_definition_arn = Some(to.clone());
    if to == current && deployments(&service).len() == 1 {
        out.info(&format!(
            "service `{}` already runs {to}",
            cfg.target.service
        ));
        return result.finish(Outcome::Unchanged, None);
    }
    if let Err(err) = service::describe_task_definition(aws, &to).await {
        return result.finish(Outcome::Refused, Some(format!("{err:#}")));
    }
    out.step(&format!(
        "rolling service `{}` back from {current} to {to}",
        cfg.target.service
    ));
    let deployment_id = match service::update(aws, &cfg.target, &to, false).await {
        Ok(id) => id,
        Err(err) => return result.finish(Outcome::Refused, Some(format!("{err:#}"))),
    };
    result.deployment_id = Some(deployment_id.clone());
    let started = Started {
        deployment_id,
        task_definition: to,
    };
    let seen = interrupt.count();
    let old_events = service
        .events()
        .iter()
        .filter_map(|e| e.id().map(String::from))
        .collect();
    match finish(
        aws,
        &cfg.target,
        started,
        cfg.timeout,
        cfg.max_failed_tasks,
        out,
        interrupt,
        seen,
        old_events,
    )
    .await
    {
        Restored::Healthy => result.finish(Outcome::Deployed, None),
        Restored::Failed(reason) => result.finish(Outcome::RollbackFailed, Some(reason)),
    }
}

/// The task definition of the last COMPLETED deployment before the current one: one ECS still lists
/// beside the current deployment, else the newest SUCCESSFUL one in the service's deployment history.
async fn earlier_successful(
    aws: &Aws,
    target: &Target,
    service: &aws_sdk_ecs::types::Service,
    current: &str,
) -> Result<String> {
    if let Some(d) = deployments(service).into_iter().find(|d| {
        d.status != "PRIMARY"
            && d.rollout_state.as_deref() == Some("COMPLETED")
            && d.task_definition != current
    }) {
        return Ok(d.task_definition);
    }
    let history = aws
        .ecs
        .list_service_deployments()
        .cluster(&target.cluster)
        .service(&target.service)
        .status(ServiceDeploymentStatus::Successful)
        .send()
        .await
        .with_context(|| format!("failed to read the deployment history of service `{}`; name the task definition with --to ARN", target.service))?;
    let briefs: Vec<(i64, String)> = history
        .service_deployments()
        .iter()
        .filter_map(|d| {
            Some((
                d.created_at().map_or(0, |t| t.secs()),
                d.target_service_revision_arn()?.to_string(),
            ))
        })
        .collect();
    let mut revisions = Vec::new();
    for chunk in briefs.chunks(20) {
        let out = aws
            .ecs
            .describe_service_revisions()
            .set_service_revision_arns(Some(chunk.iter().map(|(_, arn)| arn.clone()).collect()))
            .send()
            .await
            .with_context(|| {
                format!(
                    "failed to describe the service revisions of `{}`",
                    target.service
                )
            })?;
        for r in out.service_revisions() {
            let created = briefs
                .iter()
                .find(|(_, arn)| Some(arn.as_str()) == r.service_revision_arn())
                .map_or(0, |(t, _)| *t);
            if let Some(td) = r.task_definition() {
                revisions.push((created, td.to_string()));
            }
        }
    }
    earlier_than_current(&revisions, current).with_context(|| {
        format!("service `{}` has no SUCCESSFUL deployment of a task definition other than {current}; name one with --to ARN", target.service)
    })
}

/// Newest first, the first successful deployment whose task definition is not the current one.
fn earlier_than_current(successful: &[(i64, String)], current: &str) -> Option<String> {
    let mut sorted = successful.to_vec();
    sorted.sort_by(|a, b| b.0.cmp(&a.0));
    sorted
        .into_iter()
        .map(|(_, td)| td)
        .find(|td| td != current)
}

#[cfg(test)]
mod tests {
    use super::earlier_than_current;

    #[test]
    fn the_newest_successful_deployment_that_is_not_the_current_one() {
        let history = |items: &[(i64, &str)]| {
            items
                .iter()
                .map(|(t, td)| (*t, td.to_string()))
                .collect::<Vec<_>>()
        };
        let cases: &[(&[(i64, &str)], Option<&str>)] = &[
            (&[(1, "web:1"), (2, "web:2"), (3, "web:3")], Some("web:2")),
            (&[(3, "web:3"), (1, "web:1"), (2, "web:2")], Some("web:2")),
            (&[(1, "web:1"), (2, "web:3"), (3, "web:3")], Some("web:1")),
            (&[(1, "web:3")], None),
            (&[], None),
        ];
        for (items, expected) in cases {
            assert_eq!(
                earlier_than_current(&history(items), "web:3").as_deref(),
                *expected,
                "{items:?}"
            );
        }
    }
}
