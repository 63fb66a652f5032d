//! Recovering from a failed deploy, as `recovery::recovery` decided: follow ECS's own rollback
//! (circuit breaker, alarms), ask ECS or CodeDeploy to roll their deployment back
//! (StopServiceDeployment, ContinueServiceDeployment, StopDeployment), UpdateService back to the
//! recorded task definition, scale a service this run created to 0, or leave the service as it is.
//! The command then watches the rollback and `judge` says whether it worked.
//!
//! Rollback never targets "revision minus one": only an ARN that is known to have run.

use crate::aws::{Aws, codedeploy, ecs};
use crate::ecs_state::{DeploymentStatus, RolloutState};
use crate::ids::{DeploymentId, ServiceDeploymentArn, TaskDefinitionArn};
use crate::recovery::{Recovery, Restored, Via};
use crate::report::output::Output;
use crate::rollout::{Ended, Watched};
use crate::signal::{Interrupt, Wait};
use crate::target::Target;
use anyhow::Result;
use std::time::Duration;

/// A rollback that has begun: the deployment to watch.
pub(crate) struct Started {
    pub(crate) deployment_id: DeploymentId,
    pub(crate) task_definition: TaskDefinitionArn,
    /// A staged service's deployment to watch: the rollback's own (after UpdateService), or ours
    /// being rolled back by ECS (`rollback`).
    pub(crate) service_deployment: Option<ServiceDeploymentArn>,
    pub(crate) rollback: bool,
    /// A CODE_DEPLOY service: the CodeDeploy deployment that rolls it back.
    pub(crate) codedeploy: Option<String>,
    /// How the rollback began.
    pub(crate) via: Via,
}

impl Started {
    pub(crate) fn watched(&self, max_failed_tasks: u32) -> Watched {
        Watched {
            deployment_id: self.deployment_id.clone(),
            task_definition: self.task_definition.clone(),
            previous_task_definition: None,
            max_failed_tasks,
            service_deployment: self.service_deployment.clone(),
            rollback: self.rollback,
            codedeploy: self.codedeploy.clone(),
            ..Default::default()
        }
    }
}

/// Where a recovery stands once it has been started.
pub(crate) enum Restoring {
    /// A rollback deployment runs: watch it, then `judge`.
    Watch(Started),
    /// Nothing to watch: already done (and how), or not done (and why).
    Done(Restored, Option<Via>),
}

impl Restoring {
    /// How the rollback began or was done; None when nothing was done.
    pub(crate) fn via(&self) -> Option<Via> {
        match self {
            Restoring::Watch(started) => Some(started.via),
            Restoring::Done(_, via) => *via,
        }
    }
}

/// Starts the recovery `plan` says; only UpdateService/scale-to-0 errors are Err.
pub(crate) async fn start(
    aws: &Aws,
    target: &Target,
    plan: &Recovery,
    out: &Output,
) -> Result<Restoring> {
    let previous = match plan {
        Recovery::Leave(why) => {
            return Ok(Restoring::Done(Restored::Failed(why.clone()), None));
        }
        Recovery::ScaleToZero => return scale_to_zero(aws, target, out).await,
        Recovery::FollowEcs { previous, patience } => {
            if let Some(started) = ecs_rollback(aws, target, None, *patience).await {
                following(&started, previous, out);
                return Ok(Restoring::Watch(started));
            }
            previous
        }
        Recovery::StopRolling {
            service_deployment,
            ours,
            previous,
        } => {
            let ours = (service_deployment, ours);
            if let Some(started) = stop_rolling(aws, target, ours, previous, out).await {
                return Ok(Restoring::Watch(started));
            }
            previous
        }
        Recovery::Restore(previous) => previous,
        Recovery::AlreadyBack => {
            out.info("ECS rolled the service deployment back: the service runs the previous revision again");
            return Ok(Restoring::Done(Restored::Healthy, Some(Via::Followed)));
        }
        Recovery::FollowServiceDeployment(arn) => {
            out.step(&format!(
                "ECS is rolling back service deployment {arn}; following it"
            ));
            return Ok(Restoring::Watch(ecs_rolls_back(arn, Via::Followed)));
        }
        Recovery::CodeDeployStop {
            deployment,
            previous,
        } => {
            return stop_codedeploy(aws, target, deployment, previous.as_ref(), out).await;
        }
        Recovery::CodeDeployOver {
            deployment,
            status,
            previous,
        } => {
            let restored = original_serves(aws, target, deployment, previous.as_ref()).await?;
            if restored == Restored::Healthy {
                out.info(&format!(
                    "CodeDeploy deployment {deployment} ended {status} before production traffic moved: the original task set still serves it"
                ));
            }
            return Ok(Restoring::Done(restored, None));
        }
        Recovery::FollowCodeDeploy(id) => {
            out.step(&format!(
                "CodeDeploy rolls the deployment back ({id}); following it"
            ));
            return Ok(Restoring::Watch(codedeploy_rolls_back(
                id.clone(),
                Via::Followed,
            )));
        }
        Recovery::EcsRollback {
            service_deployment,
            hook,
            previous,
        } => {
            let arn = service_deployment;
            if let Some(via) = ask_ecs_to_roll_back(aws, arn, hook.as_deref(), out).await {
                return Ok(Restoring::Watch(ecs_rolls_back(arn, via)));
            }
            let Some(previous) = previous else {
                let why = format!(
                    "ECS did not roll service deployment {arn} back; name the task definition with --to ARN"
                );
                return Ok(Restoring::Done(Restored::Failed(why), None));
            };
            previous
        }
    };
    update_back(aws, target, previous, out).await
}

/// UpdateService back to `previous`: the rollback deployment to watch.
async fn update_back(
    aws: &Aws,
    target: &Target,
    previous: &TaskDefinitionArn,
    out: &Output,
) -> Result<Restoring> {
    out.step(&format!("rolling back to {previous} (UpdateService)"));
    let updated = ecs::update(aws, target, previous, false).await?;
    out.info(&format!("rollback deployment {}", updated.deployment_id));
    Ok(Restoring::Watch(Started {
        deployment_id: updated.deployment_id,
        task_definition: previous.clone(),
        service_deployment: updated.service_deployment,
        rollback: false,
        codedeploy: None,
        via: Via::UpdateService,
    }))
}

/// A service this run created has nothing earlier to return to: scale it to 0 tasks.
async fn scale_to_zero(aws: &Aws, target: &Target, out: &Output) -> Result<Restoring> {
    out.info(&format!(
        "service `{}` was created by this run: nothing earlier to return to; scaling it to 0 tasks",
        target.service
    ));
    ecs::scale(aws, target, 0).await?;
    Ok(Restoring::Done(Restored::Healthy, Some(Via::ScaleToZero)))
}

/// CodeDeploy's rollback deployment, to watch until it Succeeded.
fn codedeploy_rolls_back(id: String, via: Via) -> Started {
    Started {
        deployment_id: DeploymentId::default(),
        task_definition: TaskDefinitionArn::default(),
        service_deployment: None,
        rollback: true,
        codedeploy: Some(id),
        via,
    }
}

/// StopDeployment with auto-rollback; returns the rollback deployment CodeDeploy starts (waited
/// for up to 10 s), or the stopped one itself when it names none.
async fn stop_codedeploy(
    aws: &Aws,
    target: &Target,
    id: &str,
    previous: Option<&TaskDefinitionArn>,
    out: &Output,
) -> Result<Restoring> {
    out.step(&format!(
        "stopping CodeDeploy deployment {id} with auto-rollback (StopDeployment)"
    ));
    // Bounded like every rollback call: CodeDeploy has no other way back to wait for.
    let asked = Wait::new(Duration::from_secs(10), &Interrupt::none(), 0);
    let Ok(stopped) = asked.until(codedeploy::stop_deployment(aws, id)).await else {
        anyhow::bail!("StopDeployment of CodeDeploy deployment {id} did not answer within 10 s");
    };
    let stopped = stopped?;
    let wait = Wait::new(Duration::from_secs(10), &Interrupt::none(), 0);
    loop {
        let view = match wait.until(codedeploy::deployment(aws, id, "")).await {
            Ok(Ok(view)) => Some(view),
            _ => None,
        };
        if let Some(rollback) = view.as_ref().and_then(|v| v.rollback_deployment.clone()) {
            out.info(&format!("CodeDeploy rollback deployment {rollback}"));
            return Ok(Restoring::Watch(codedeploy_rolls_back(
                rollback,
                Via::StopDeployment,
            )));
        }
        if view.is_some() && !stopped {
            // Over already (it failed on its own, without a rollback): production is back on the
            // original task set when that is the PRIMARY one; nothing was rolled back.
            let restored = original_serves(aws, target, id, previous).await?;
            return Ok(Restoring::Done(restored, None));
        }
        if wait.expired() || wait.pause(Duration::from_millis(500)).await.is_err() {
            let started = codedeploy_rolls_back(id.to_string(), Via::StopDeployment);
            return Ok(Restoring::Watch(started));
        }
    }
}

/// After a CodeDeploy deployment ended with no rollback: whether the service's PRIMARY task set runs
/// `previous` (the original serves production) or not.
async fn original_serves(
    aws: &Aws,
    target: &Target,
    id: &str,
    previous: Option<&TaskDefinitionArn>,
) -> Result<Restored> {
    let service = ecs::describe_service(aws, target).await?;
    let primary = ecs::task_sets(&service)
        .into_iter()
        .find(|(_, status, _)| status == "PRIMARY")
        .map(|(_, _, td)| td);
    Ok(match (primary, previous) {
        (Some(td), Some(previous)) if td == previous.as_str() => Restored::Healthy,
        (primary, _) => Restored::Failed(format!(
            "CodeDeploy deployment {id} ended without a rollback, and the service's PRIMARY task set runs {}; look at the deployment",
            primary.as_deref().unwrap_or("nothing")
        )),
    })
}

/// ECS's rollback of a service deployment, to watch until ROLLBACK_SUCCESSFUL.
fn ecs_rolls_back(arn: &ServiceDeploymentArn, via: Via) -> Started {
    Started {
        deployment_id: DeploymentId::default(),
        task_definition: TaskDefinitionArn::default(),
        service_deployment: Some(arn.clone()),
        rollback: true,
        codedeploy: None,
        via,
    }
}

/// ContinueServiceDeployment(ROLLBACK) at the waiting PAUSE hook, else StopServiceDeployment
/// (ROLLBACK); which one. None, with why said, when ECS says the deployment is already over,
/// refuses the call or does not answer it within 10 s (then UpdateService it is).
async fn ask_ecs_to_roll_back(
    aws: &Aws,
    arn: &ServiceDeploymentArn,
    hook: Option<&str>,
    out: &Output,
) -> Option<Via> {
    let patience = Duration::from_secs(10);
    let wait = Wait::new(patience, &Interrupt::none(), 0);
    let (call, asked) = match hook {
        Some(hook) => {
            out.step(&format!(
                "rolling back service deployment {arn} from PAUSE hook {hook} (ContinueServiceDeployment ROLLBACK)"
            ));
            let asked = ecs::continue_service_deployment(aws, arn.as_str(), hook, true);
            let asked = wait.until(async { asked.await.map(|()| true) }).await;
            (Via::ContinueServiceDeployment, asked)
        }
        None => {
            out.step(&format!(
                "asking ECS to roll back service deployment {arn} (StopServiceDeployment ROLLBACK)"
            ));
            let asked = wait
                .until(ecs::stop_service_deployment(aws, arn.as_str()))
                .await;
            (Via::StopServiceDeployment, asked)
        }
    };
    match asked {
        Ok(Ok(true)) => return Some(call),
        Ok(Ok(false)) => out.info("ECS says the service deployment is already over"),
        Ok(Err(err)) => out.warn(&format!("{err:#}; rolling back with UpdateService instead")),
        Err(_) => out.warn(&format!(
            "{} did not answer within {} s; rolling back with UpdateService instead",
            call.as_str(),
            patience.as_secs()
        )),
    }
    None
}

/// StopServiceDeployment(ROLLBACK) on our rolling update (`ours`: its service deployment and
/// deployment), then ECS's rollback deployment to watch. None, and UpdateService it is, when ECS
/// refuses the stop, starts no rollback deployment within 10 s, or rolls back to a revision other
/// than `previous`: the service goes back to exactly what ran before.
async fn stop_rolling(
    aws: &Aws,
    target: &Target,
    (arn, ours): (&ServiceDeploymentArn, &DeploymentId),
    previous: &TaskDefinitionArn,
    out: &Output,
) -> Option<Started> {
    ask_ecs_to_roll_back(aws, arn, None, out).await?;
    let patience = Duration::from_secs(10);
    match ecs_rollback(aws, target, Some(ours), patience).await {
        Some(started) if started.task_definition == *previous => {
            following(&started, previous, out);
            Some(Started {
                via: Via::StopServiceDeployment,
                ..started
            })
        }
        Some(started) => {
            out.warn(&format!(
                "ECS rolls back to {}, not to {previous}, which ran before this deploy; rolling back with UpdateService",
                started.task_definition
            ));
            None
        }
        None => {
            out.warn(&format!(
                "ECS started no rollback deployment within {} s of StopServiceDeployment; rolling back with UpdateService",
                patience.as_secs()
            ));
            None
        }
    }
}

/// Says which rollback deployment of ECS's is followed, and whether it returns to `previous`.
fn following(started: &Started, previous: &TaskDefinitionArn, out: &Output) {
    out.step(&format!(
        "ECS is rolling back to {} (deployment {}); following it",
        started.task_definition, started.deployment_id
    ));
    if started.task_definition != *previous {
        out.warn(&format!(
            "ECS rolls back to {}, not to {previous}, which ran before this deploy",
            started.task_definition
        ));
    }
}

/// The PRIMARY deployment ECS started on its own to roll back (not `ours`, not FAILED), waiting up
/// to `patience` (at least 5 s, so that one read has the time to answer) for it; each read is raced
/// against that wait, and a read that fails is tried again.
async fn ecs_rollback(
    aws: &Aws,
    target: &Target,
    ours: Option<&DeploymentId>,
    patience: Duration,
) -> Option<Started> {
    let patience = patience.max(Duration::from_secs(5));
    let wait = Wait::new(patience, &Interrupt::none(), 0);
    loop {
        if let Ok(Ok(service)) = wait.until(ecs::describe_service(aws, target)).await {
            let primary = ecs::deployments(&service).into_iter().find(|d| {
                d.status == DeploymentStatus::Primary
                    && d.rollout_state != Some(RolloutState::Failed)
                    && Some(&d.id) != ours
            });
            if let Some(p) = primary {
                return Some(Started {
                    deployment_id: p.id,
                    task_definition: p.task_definition,
                    service_deployment: None,
                    rollback: false,
                    codedeploy: None,
                    via: Via::Followed,
                });
            }
        }
        if wait.expired() || wait.pause(Duration::from_millis(500)).await.is_err() {
            return None;
        }
    }
}

/// Whether the watched rollback brought the service back, said on the terminal.
pub(crate) fn judge(ended: &Ended, started: &Started, target: &Target, out: &Output) -> Restored {
    match ended {
        Ended::Healthy if started.rollback => {
            out.info(&format!(
                "ECS rolled service `{}` back: the previous revision serves traffic again",
                target.service
            ));
            Restored::Healthy
        }
        Ended::Healthy => {
            out.info(&format!(
                "service `{}` runs {} again, healthy",
                target.service, started.task_definition
            ));
            Restored::Healthy
        }
        Ended::Paused(hook) => Restored::Failed(format!(
            "the rollback waits at PAUSE hook {}; continue it with `deployer continue`",
            hook.id
        )),
        Ended::Failed(failure) => Restored::Failed(format!(
            "the rollback to {} did not complete: {}",
            started.task_definition,
            failure.summary()
        )),
    }
}
