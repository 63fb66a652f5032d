//! `deployer continue`: a BLUE_GREEN, LINEAR or CANARY deployment waits at a PAUSE hook (a person
//! looked at the test traffic and is satisfied): ContinueServiceDeployment(CONTINUE), then watch the
//! deployment to its end. A deployment that then fails is reported, not rolled back by deployer
//! (ECS's own rollback is followed); `deployer rollback` is the way back.

use crate::aws::{Aws, ecs};
use crate::config::RollbackConfig;
use crate::ecs_state::DeploymentStatus;
use crate::ids::ServiceDeploymentArn;
use crate::outcome::{Outcome, RunResult};
use crate::report::output::Output;
use crate::rollout::{DeploymentView, Ended, Failure, Watched};
use crate::signal::{Interrupt, Wait};
use crate::steps::watch::{self, look::Watcher};
use std::time::SystemTime;

pub(crate) async fn command(
    cfg: &RollbackConfig,
    aws: &Aws,
    out: &Output,
    interrupt: &Interrupt,
) -> RunResult {
    let mut result = RunResult::for_target(&cfg.target);
    let service = match ecs::describe_service(aws, &cfg.target).await {
        Ok(service) => service,
        Err(err) => return result.refuse(&err),
    };
    let waiting = match service.current_service_deployment() {
        Some(arn) => ecs::describe_service_deployment(aws, arn).await,
        None => Ok(None),
    };
    let sd = match waiting {
        Ok(Some(sd)) if sd.in_flight() && sd.waiting_hook().is_some() => sd,
        Ok(_) => {
            let why = format!(
                "service `{}` has no deployment waiting at a PAUSE hook; nothing to continue",
                cfg.target.service
            );
            return result.finish(Outcome::Refused, Some(why));
        }
        Err(err) => return result.refuse(&err),
    };
    let hook = sd.waiting_hook().map(|h| h.id.clone()).unwrap_or_default();
    out.step(&format!(
        "continuing service deployment {} at PAUSE hook {hook} (ContinueServiceDeployment CONTINUE)",
        sd.arn
    ));
    if let Err(err) = ecs::continue_service_deployment(aws, &sd.arn, &hook, false).await {
        return result.refuse(&err);
    }
    let watched = watched_primary(&ecs::deployments(&service), cfg, &sd.arn);
    result.task_definition_arn = Some(watched.task_definition.to_string());
    result.deployment_id = Some(watched.deployment_id.to_string());
    result.service_deployment_arn = Some(sd.arn.clone());
    out.step("waiting for the deployment to finish");
    let watcher = Watcher::new(SystemTime::now(), ecs::event_ids(&service));
    let wait = Wait::new(cfg.timeout, interrupt, interrupt.count());
    let end = watch::until_done(aws, &cfg.target, &watched, watcher, &wait, out).await;
    result.stage = end
        .snapshot
        .service_deployment
        .as_ref()
        .and_then(|s| s.stage.clone());
    finish(result, end.ended)
}

/// What the watch follows: the PRIMARY deployment (its id and task definition) of the service
/// deployment that was continued.
fn watched_primary(deployments: &[DeploymentView], cfg: &RollbackConfig, sd_arn: &str) -> Watched {
    let primary = deployments
        .iter()
        .find(|d| d.status == DeploymentStatus::Primary);
    Watched {
        deployment_id: primary.map(|p| p.id.clone()).unwrap_or_default(),
        task_definition: primary
            .map(|p| p.task_definition.clone())
            .unwrap_or_default(),
        max_failed_tasks: cfg.max_failed_tasks,
        service_deployment: Some(ServiceDeploymentArn::from(sd_arn)),
        ..Default::default()
    }
}

/// How the continued deployment ended: deployed, waiting at another PAUSE hook (reported), or
/// failed: rolled back when ECS's rollback succeeded, else left as it is.
fn finish(result: RunResult, ended: Ended) -> RunResult {
    match ended {
        Ended::Healthy => result.finish(Outcome::Deployed, None),
        Ended::Paused(hook) => result.finish(
            Outcome::Reported,
            Some(format!(
                "the deployment waits at another PAUSE hook, {}",
                hook.id
            )),
        ),
        Ended::Failed(failure) => {
            let back = matches!(&failure, Failure::ServiceDeployment { status, .. } if status == "ROLLBACK_SUCCESSFUL");
            let outcome = match (&failure, back) {
                (Failure::Interrupted, _) => Outcome::Interrupted,
                (_, true) => Outcome::RolledBack,
                _ => Outcome::RollbackFailed,
            };
            let hint = if back {
                String::new()
            } else {
                "; the deployment was left as it is: `deployer rollback` rolls it back".into()
            };
            result.finish(outcome, Some(format!("{}{hint}", failure.summary())))
        }
    }
}
