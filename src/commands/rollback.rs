//! `deployer rollback`: back to `--to`, or to the last COMPLETED deployment before the current one;
//! and `restore`, the watch of a rollback that every command shares.
//!
//! Rollback never targets "revision minus one": only an ARN that is known to have run.

use crate::aws::{Aws, ecs};
use crate::config::RollbackConfig;
use crate::ecs_state::{DeploymentStatus, RolloutState};
use crate::ids::TaskDefinitionArn;
use crate::outcome::{Outcome, RunResult};
use crate::recovery::Recovery;
use crate::recovery::Restored;
use crate::report::output::Output;
use crate::rollout::{Ended, Failure};
use crate::signal::{Interrupt, Wait};
use crate::steps::recover::{self, Restoring, Started};
use crate::steps::watch::{self, look::Watcher};
use crate::strategy::ServiceDeploymentView;
use crate::target::Target;
use anyhow::{Context, Result};
use aws_sdk_ecs::types::Service;
use std::collections::HashSet;
use std::time::SystemTime;

/// `deployer rollback`.
pub(crate) async fn command(
    cfg: &RollbackConfig,
    aws: &Aws,
    out: &Output,
    interrupt: &Interrupt,
) -> RunResult {
    let mut result = RunResult::for_target(&cfg.target);
    let service = match ecs::describe_service(aws, &cfg.target).await {
        Ok(service) => service,
        Err(err) => return result.finish(Outcome::Refused, Some(format!("{err:#}"))),
    };
    let current = TaskDefinitionArn::from(service.task_definition().unwrap_or_default());
    result.previous_task_definition_arn = Some(current.to_string());
    let wait = Wait::new(cfg.timeout, interrupt, interrupt.count());
    if cfg.to.is_none()
        && let Some(in_flight) = staged_in_flight(aws, &service).await
    {
        // A blue/green, linear or canary deployment under way: ECS's own rollback.
        return roll_back_in_flight(aws, cfg, in_flight, &wait, out, result).await;
    }
    let to = match &cfg.to {
        Some(to) => TaskDefinitionArn::from(to.as_str()),
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
    result.task_definition_arn = Some(to.to_string());
    if to == current && ecs::deployments(&service).len() == 1 {
        out.info(&format!(
            "service `{}` already runs {to}",
            cfg.target.service
        ));
        return result.finish(Outcome::Unchanged, None);
    }
    if let Err(err) = ecs::describe_task_definition(aws, to.as_str()).await {
        return result.finish(Outcome::Refused, Some(format!("{err:#}")));
    }
    out.step(&format!(
        "rolling service `{}` back from {current} to {to}",
        cfg.target.service
    ));
    let updated = match ecs::update(aws, &cfg.target, &to, false).await {
        Ok(updated) => updated,
        Err(err) => return result.finish(Outcome::Refused, Some(format!("{err:#}"))),
    };
    result.deployment_id = Some(updated.deployment_id.to_string());
    let staged = ecs::shape(&service).staged();
    let started = Started {
        deployment_id: updated.deployment_id,
        task_definition: to,
        service_deployment: updated.service_deployment.filter(|_| staged),
        rollback: false,
        codedeploy: None,
        via: crate::recovery::Via::UpdateService,
    };
    result.service_deployment_arn = started.service_deployment.as_ref().map(String::from);
    let events = ecs::event_ids(&service);
    let watched = (&cfg.target, cfg.max_failed_tasks);
    match restore(aws, watched, &started, &wait, events, out).await {
        // The command did what was asked: the service runs `--to`, healthy (exit 0).
        Restored::Healthy => result.finish(Outcome::Deployed, None),
        Restored::Failed(reason) => result.finish(Outcome::RollbackFailed, Some(reason)),
    }
}

/// The staged service deployment in flight (PENDING, IN_PROGRESS), if the service has one.
async fn staged_in_flight(aws: &Aws, service: &Service) -> Option<ServiceDeploymentView> {
    if !ecs::shape(service).staged() {
        return None;
    }
    let arn = service.current_service_deployment()?;
    let sd = ecs::describe_service_deployment(aws, arn).await.ok()??;
    sd.in_flight().then_some(sd)
}

/// `deployer rollback` during a staged deployment: ContinueServiceDeployment(ROLLBACK) at a
/// waiting PAUSE hook, else StopServiceDeployment(ROLLBACK); then watch ECS roll it back.
async fn roll_back_in_flight(
    aws: &Aws,
    cfg: &RollbackConfig,
    sd: ServiceDeploymentView,
    wait: &Wait,
    out: &Output,
    mut result: RunResult,
) -> RunResult {
    let plan = Recovery::EcsRollback {
        service_deployment: sd.arn.as_str().into(),
        hook: sd.waiting_hook().map(|h| h.id.clone()),
        previous: None,
    };
    result.service_deployment_arn = Some(sd.arn.clone());
    let restoring =
        match recover::start(aws, &cfg.target, &plan, out, (&Interrupt::none(), 0)).await {
            Ok(restoring) => restoring,
            Err(err) => return result.finish(Outcome::RollbackFailed, Some(format!("{err:#}"))),
        };
    let restored = match restoring {
        Restoring::Watch(started) if started.rollback => {
            let watched = (&cfg.target, cfg.max_failed_tasks);
            restore(aws, watched, &started, wait, HashSet::new(), out).await
        }
        Restoring::Done(Restored::Failed(why), _) => Restored::Failed(why),
        _ => Restored::Failed(format!(
            "service deployment {} ended before ECS could roll it back; name the task definition with --to ARN",
            sd.arn
        )),
    };
    match restored {
        Restored::Healthy => result.finish(Outcome::Deployed, None),
        Restored::Failed(reason) => result.finish(Outcome::RollbackFailed, Some(reason)),
    }
}

/// Watches a rollback deployment until it is healthy or fails; a signal stops the wait (the
/// rollback goes on in ECS).
pub(crate) async fn restore(
    aws: &Aws,
    (target, max_failed_tasks): (&Target, u32),
    started: &Started,
    wait: &Wait,
    seen_events: HashSet<String>,
    out: &Output,
) -> Restored {
    out.step("waiting for the rollback to be healthy");
    let mut watcher = Watcher::new(SystemTime::now(), seen_events);
    let mut watched = started.watched(max_failed_tasks);
    loop {
        let end = watch::until_done(aws, target, &watched, watcher, wait, out).await;
        // A newer deployment of the same revision replaced the rollback's own (ECS's rollback after
        // a stop it answered late): the service goes to the same place; follow that one.
        if let Ended::Failed(Failure::Superseded {
            deployment,
            task_definition,
        }) = &end.ended
            && *task_definition == started.task_definition
            && *deployment != watched.deployment_id
        {
            out.info(&format!(
                "deployment {deployment} of the same revision, {task_definition}, replaced the rollback's; following it"
            ));
            watched.deployment_id = deployment.clone();
            watcher = end.watcher;
            continue;
        }
        return recover::judge(&end.ended, started, target, out);
    }
}

/// The task definition of the last COMPLETED deployment before the current one: one ECS still lists
/// beside the current deployment, else the newest SUCCESSFUL one in the service's deployment history.
async fn earlier_successful(
    aws: &Aws,
    target: &Target,
    service: &aws_sdk_ecs::types::Service,
    current: &TaskDefinitionArn,
) -> Result<TaskDefinitionArn> {
    if let Some(d) = ecs::deployments(service).into_iter().find(|d| {
        d.status != DeploymentStatus::Primary
            && d.rollout_state == Some(RolloutState::Completed)
            && d.task_definition != *current
    }) {
        return Ok(d.task_definition);
    }
    let revisions = ecs::successful_revisions(aws, target).await?;
    earlier_than_current(&revisions, current.as_str())
        .map(TaskDefinitionArn::from)
        .with_context(|| {
        format!("service `{}` has no SUCCESSFUL deployment of a task definition other than {current}; name one with --to ARN", target.service)
    })
}

/// Newest first, the first successful deployment whose task definition is not the current one.
fn earlier_than_current(successful: &[(i64, String)], current: &str) -> Option<String> {
    let mut sorted = successful.to_vec();
    sorted.sort_by_key(|b| std::cmp::Reverse(b.0));
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
        type Case<'a> = (&'a [(i64, &'a str)], Option<&'a str>);
        let cases: &[Case] = &[
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
