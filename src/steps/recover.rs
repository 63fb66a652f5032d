//! Recovering from a failed deploy, as `recovery::recovery` decided: follow ECS's own rollback
//! (circuit breaker, alarms), ask ECS or CodeDeploy to roll their deployment back
//! (StopServiceDeployment, ContinueServiceDeployment, StopDeployment), UpdateService back to the
//! recorded task definition, scale a service this run created to 0, or leave the service as it is.
//! The command then watches the rollback and `judge` says whether it worked.
//!
//! Rollback never targets "revision minus one": only an ARN that is known to have run.

use crate::aws::{Aws, codedeploy, ecs};
use crate::ids::{DeploymentId, ServiceDeploymentArn, TaskDefinitionArn};
use crate::recovery::{self, Recovery, Restored, Via};
use crate::report::output::Output;
use crate::rollout::{Ended, Watched};
use crate::signal::{Interrupt, Stop, Wait};
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

/// Starts the recovery `plan` says; only UpdateService/scale-to-0 errors are Err. A signal after
/// `signals.1` (CI's second: SIGTERM 7.5 s after SIGINT, then SIGKILL) stops waiting on ECS's or
/// CodeDeploy's answers: the surest call, UpdateService, goes out at once where there is one.
pub(crate) async fn start(
    aws: &Aws,
    target: &Target,
    plan: &Recovery,
    out: &Output,
    signals: (&Interrupt, u32),
) -> Result<Restoring> {
    let previous = match plan {
        Recovery::Leave(why) => {
            return Ok(Restoring::Done(Restored::Failed(why.clone()), None));
        }
        Recovery::ScaleToZero => return scale_to_zero(aws, target, out).await,
        Recovery::FollowEcs { previous, patience } => {
            if let Some(started) = ecs_rollback(aws, target, None, *patience, signals).await {
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
            if let Some(restoring) = stop_rolling(aws, target, ours, previous, (out, signals)).await
            {
                return Ok(restoring);
            }
            previous
        }
        Recovery::Restore(previous) => previous,
        Recovery::AlreadyBack => {
            ecs_rolled_back(target, out);
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
            let previous = previous.as_ref();
            return stop_codedeploy(aws, target, deployment, previous, (out, signals)).await;
        }
        Recovery::CodeDeployOver {
            deployment,
            status,
            previous,
        } => {
            let over = (deployment.as_str(), status.as_str(), previous.as_ref());
            return codedeploy_over(aws, target, over, out).await;
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
            let asked = (service_deployment, hook.as_deref(), previous.as_ref());
            return staged_rollback(aws, target, asked, out, signals).await;
        }
    };
    update_back(aws, target, previous, out).await
}

/// A staged deployment in flight: ECS's own rollback (`ask_ecs_to_roll_back`), else UpdateService
/// to `previous` when there is one (`deployer rollback` has none).
async fn staged_rollback(
    aws: &Aws,
    target: &Target,
    (arn, hook, previous): (
        &ServiceDeploymentArn,
        Option<&str>,
        Option<&TaskDefinitionArn>,
    ),
    out: &Output,
    signals: (&Interrupt, u32),
) -> Result<Restoring> {
    let how = (hook, previous.is_some());
    if let Some(via) = ask_ecs_to_roll_back(aws, arn, how, out, signals).await {
        return Ok(Restoring::Watch(ecs_rolls_back(arn, via)));
    }
    match previous {
        Some(previous) => update_back(aws, target, previous, out).await,
        None => {
            let why = format!(
                "ECS did not roll service deployment {arn} back; name the task definition with --to ARN"
            );
            Ok(Restoring::Done(Restored::Failed(why), None))
        }
    }
}

/// A CodeDeploy deployment over without a rollback (`deployment`, its `status`): back when the
/// original task set, running `previous`, still serves production; nothing was rolled back.
async fn codedeploy_over(
    aws: &Aws,
    target: &Target,
    (deployment, status, previous): (&str, &str, Option<&TaskDefinitionArn>),
    out: &Output,
) -> Result<Restoring> {
    let restored = original_serves(aws, target, deployment, previous).await?;
    if restored == Restored::Healthy {
        out.info(&format!(
            "CodeDeploy deployment {deployment} ended {status} before production traffic moved: the original task set still serves it"
        ));
    }
    Ok(Restoring::Done(restored, None))
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
        // A rolling service is judged by its deployment; only a staged one by its service deployment.
        service_deployment: updated.service_deployment.filter(|_| updated.staged),
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
    (out, (interrupt, seen)): (&Output, (&Interrupt, u32)),
) -> Result<Restoring> {
    out.step(&format!(
        "stopping CodeDeploy deployment {id} with auto-rollback (StopDeployment)"
    ));
    // Bounded like every rollback call: CodeDeploy has no other way back to wait for.
    let asked = Wait::new(Duration::from_secs(10), interrupt, seen);
    let Ok(stopped) = asked.until(codedeploy::stop_deployment(aws, id)).await else {
        anyhow::bail!(
            "StopDeployment of CodeDeploy deployment {id} did not answer within 10 s (or before a further signal)"
        );
    };
    let stopped = stopped?;
    let wait = Wait::new(Duration::from_secs(10), interrupt, seen);
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
    (hook, fallback): (Option<&str>, bool),
    out: &Output,
    (interrupt, seen): (&Interrupt, u32),
) -> Option<Via> {
    let instead = match fallback {
        true => "rolling back with UpdateService instead",
        false => "no recorded revision to roll back to with UpdateService",
    };
    let patience = Duration::from_secs(10);
    let wait = Wait::new(patience, interrupt, seen);
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
        Ok(Err(err)) => out.warn(&format!("{err:#}; {instead}")),
        Err(Stop::Deadline) => out.warn(&format!(
            "{} did not answer within {} s; {instead}",
            call.as_str(),
            patience.as_secs()
        )),
        Err(Stop::Signal) => out.warn(&format!(
            "a further signal: not waiting for {}'s answer; {instead}",
            call.as_str()
        )),
    }
    None
}

/// StopServiceDeployment(ROLLBACK) on our rolling update (`ours`: its service deployment and
/// deployment), then ECS's rollback deployment to watch. None, and UpdateService it is, when ECS
/// refuses the stop or does not answer it, or no rollback deployment shows within 10 s. A new
/// PRIMARY deployment of another revision than `previous` is someone else's deploy (ECS rolls back
/// to the last completed revision, which pre-flight recorded): it is not rolled back over.
async fn stop_rolling(
    aws: &Aws,
    target: &Target,
    (arn, ours): (&ServiceDeploymentArn, &DeploymentId),
    previous: &TaskDefinitionArn,
    (out, signals): (&Output, (&Interrupt, u32)),
) -> Option<Restoring> {
    ask_ecs_to_roll_back(aws, arn, (None, true), out, signals).await?;
    let patience = Duration::from_secs(10);
    match ecs_rollback(aws, target, Some(ours), patience, signals).await {
        Some(started) if started.task_definition == *previous => {
            following(&started, previous, out);
            Some(Restoring::Watch(Started {
                via: Via::StopServiceDeployment,
                ..started
            }))
        }
        Some(other) => Some(Restoring::Done(
            Restored::Failed(format!(
                "after StopServiceDeployment the service runs deployment {} of {}, not {previous}: another deploy started; not rolling back over it; look at the service",
                other.deployment_id, other.task_definition
            )),
            Some(Via::StopServiceDeployment),
        )),
        None => {
            out.warn(&format!(
                "no rollback deployment of ECS's seen within {} s of StopServiceDeployment (or before a further signal); rolling back with UpdateService",
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

/// The deployment ECS started to roll back (`recovery::ecs_rollback_in`), waiting up
/// to `patience` (at least 5 s, so that one read has the time to answer) for it; each read is raced
/// against that wait, and a read that fails is tried again.
async fn ecs_rollback(
    aws: &Aws,
    target: &Target,
    ours: Option<&DeploymentId>,
    patience: Duration,
    (interrupt, seen): (&Interrupt, u32),
) -> Option<Started> {
    let patience = patience.max(Duration::from_secs(5));
    let wait = Wait::new(patience, interrupt, seen);
    loop {
        if let Ok(Ok(service)) = wait.until(ecs::describe_service(aws, target)).await {
            let deployments = ecs::deployments(&service);
            if let Some(p) = recovery::ecs_rollback_in(&deployments, ours) {
                return Some(Started {
                    deployment_id: p.id.clone(),
                    task_definition: p.task_definition.clone(),
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

/// ECS's rollback is over and healthy, whether deployer watched it to its end or found it done.
fn ecs_rolled_back(target: &Target, out: &Output) {
    out.info(&format!(
        "ECS rolled service `{}` back: the previous revision serves traffic again",
        target.service
    ));
}

/// Whether the watched rollback brought the service back, said on the terminal.
pub(crate) fn judge(ended: &Ended, started: &Started, target: &Target, out: &Output) -> Restored {
    match ended {
        Ended::Healthy if started.rollback => {
            ecs_rolled_back(target, out);
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
