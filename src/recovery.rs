//! After a failed deploy, decided: what to do to get the service back (`recovery`) and how the run
//! ends (`final_outcome`). Pure functions of the failure and what pre-flight recorded.

use crate::ecs_state::{DeploymentStatus, RolloutState};
use crate::ids::{DeploymentId, ServiceDeploymentArn, TaskDefinitionArn};
use crate::outcome::Outcome;
use crate::rollout::{DeploymentView, Failure};
use crate::strategy::ServiceDeploymentView;
use std::time::Duration;

/// What to do after a failed deploy.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Recovery {
    /// ECS rolls back by itself (circuit breaker, alarms): follow its deployment, waiting up to
    /// `patience` for it to appear, else UpdateService to `previous`.
    FollowEcs {
        previous: TaskDefinitionArn,
        patience: Duration,
    },
    /// UpdateService back to the task definition recorded before the deploy.
    Restore(TaskDefinitionArn),
    /// A service this run created: nothing earlier to return to, so scale it to 0.
    ScaleToZero,
    /// Leave the service as it is, and why.
    Leave(String),
    /// BLUE_GREEN, LINEAR, CANARY in flight: ask ECS to roll its service deployment back
    /// (ContinueServiceDeployment ROLLBACK at a waiting PAUSE hook, else StopServiceDeployment
    /// ROLLBACK); if ECS says it is already over, refuses or does not answer within 10 s,
    /// UpdateService to `previous`.
    EcsRollback {
        service_deployment: ServiceDeploymentArn,
        hook: Option<String>,
        /// None from `deployer rollback`, which has no recorded revision to fall back to.
        previous: Option<TaskDefinitionArn>,
    },
    /// ECS already rolls the service deployment back: watch it to its end.
    FollowServiceDeployment(ServiceDeploymentArn),
    /// ECS rolled the service deployment back (ROLLBACK_SUCCESSFUL): nothing left to do.
    AlreadyBack,
    /// A rolling update in flight that ECS knows as service deployment `service_deployment`:
    /// StopServiceDeployment(ROLLBACK), then follow ECS's rollback deployment (not `ours`) of
    /// `previous`; UpdateService to `previous` where ECS refuses the stop, starts no rollback
    /// deployment within 10 s, or rolls back to another revision.
    StopRolling {
        service_deployment: ServiceDeploymentArn,
        ours: DeploymentId,
        previous: TaskDefinitionArn,
    },
    /// CODE_DEPLOY in flight: StopDeployment with auto-rollback, then watch CodeDeploy's rollback;
    /// `previous` is what must serve again if CodeDeploy says the deployment is already over.
    CodeDeployStop {
        deployment: String,
        previous: Option<TaskDefinitionArn>,
    },
    /// A CodeDeploy deployment that ended (`status`) with no rollback: back when the original task
    /// set, running `previous`, is still the PRIMARY one (production never moved), else not.
    CodeDeployOver {
        deployment: String,
        status: String,
        previous: Option<TaskDefinitionArn>,
    },
    /// CodeDeploy rolls the deployment back with this deployment: watch it.
    FollowCodeDeploy(String),
}

/// How the service was put back, as the result's `rollback` field says it: the call deployer made,
/// or `followed` when ECS or CodeDeploy rolled back on their own and deployer only watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    UpdateService,
    StopServiceDeployment,
    ContinueServiceDeployment,
    /// CodeDeploy's StopDeployment with auto-rollback.
    StopDeployment,
    /// A service this run created, scaled to 0 (UpdateService desiredCount 0).
    ScaleToZero,
    Followed,
}

impl Via {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Via::UpdateService => "UpdateService",
            Via::StopServiceDeployment => "StopServiceDeployment",
            Via::ContinueServiceDeployment => "ContinueServiceDeployment",
            Via::StopDeployment => "StopDeployment",
            Via::ScaleToZero => "ScaleToZero",
            Via::Followed => "followed",
        }
    }
}

/// Pure: the recovery for `failure`. `rollback` is `--rollback` (on unless `--no-rollback`);
/// `previous` the task definition that ran before (None on a first deploy); `ecs_rolls_back`
/// whether the service's circuit breaker or alarms are set to roll back.
pub(crate) fn recovery(
    failure: &Failure,
    rollback: bool,
    previous: Option<&TaskDefinitionArn>,
    ecs_rolls_back: bool,
    staged: Option<&ServiceDeploymentView>,
) -> Recovery {
    if let (Some(sd), Some(previous)) = (staged, previous)
        && !matches!(failure, Failure::Superseded { .. })
    {
        return staged_recovery(sd, rollback, previous);
    }
    let ecs_is_rolling_back = matches!(
        failure,
        Failure::EcsRolledBack { .. }
            | Failure::RolloutFailed {
                rolling_back_to: Some(_),
                ..
            }
    );
    let Some(previous) = previous else {
        return match rollback {
            true => Recovery::ScaleToZero,
            false => Recovery::Leave("--no-rollback: the service was left as it is".into()),
        };
    };
    if !rollback && !ecs_is_rolling_back {
        return Recovery::Leave("--no-rollback: the service was left as it is".into());
    }
    let previous = previous.clone();
    match failure {
        Failure::Superseded {
            deployment,
            task_definition,
        } => Recovery::Leave(format!(
            "not rolling back: deployment {deployment} ({task_definition}) started after ours and rolling back would undo it; look at the service"
        )),
        _ if ecs_is_rolling_back => Recovery::FollowEcs {
            previous,
            patience: Duration::ZERO,
        },
        // The circuit breaker or alarms are set to roll back: give ECS a moment rather than race it.
        Failure::RolloutFailed { .. } if ecs_rolls_back => Recovery::FollowEcs {
            previous,
            patience: Duration::from_secs(10),
        },
        _ => Recovery::Restore(previous),
    }
}

/// Pure: on a rolling update that ECS knows as a service deployment (`rolling`: its ARN and our
/// deployment's id), a restore of the previous revision asks ECS to roll back first
/// (StopServiceDeployment), with UpdateService behind it. Every other plan stays as it is.
pub(crate) fn prefer_ecs_rollback(
    plan: Recovery,
    rolling: Option<(ServiceDeploymentArn, DeploymentId)>,
) -> Recovery {
    match (plan, rolling) {
        (Recovery::Restore(previous), Some((service_deployment, ours))) => Recovery::StopRolling {
            service_deployment,
            ours,
            previous,
        },
        (plan, _) => plan,
    }
}

/// Pure: ECS's rollback deployment in one read of the service's deployments: the PRIMARY one that
/// has not failed. After our StopServiceDeployment (`ours` given) it must not be ours, and the read
/// must list ours as no longer PRIMARY: a read from before our update (ECS reads are eventually
/// consistent) lists ours nowhere, and its PRIMARY is the old deployment, not a rollback.
pub(crate) fn ecs_rollback_in<'a>(
    deployments: &'a [DeploymentView],
    ours: Option<&DeploymentId>,
) -> Option<&'a DeploymentView> {
    if let Some(ours) = ours
        && !deployments
            .iter()
            .any(|d| d.id == *ours && d.status != DeploymentStatus::Primary)
    {
        return None;
    }
    deployments.iter().find(|d| {
        d.status == DeploymentStatus::Primary
            && d.rollout_state != Some(RolloutState::Failed)
            && Some(&d.id) != ours
    })
}

/// A staged (BLUE_GREEN, LINEAR, CANARY) deployment: ECS's own rollback wherever it can act.
fn staged_recovery(
    sd: &ServiceDeploymentView,
    rollback: bool,
    previous: &TaskDefinitionArn,
) -> Recovery {
    let arn = ServiceDeploymentArn::from(sd.arn.as_str());
    match sd.status.as_str() {
        "ROLLBACK_SUCCESSFUL" => Recovery::AlreadyBack,
        "ROLLBACK_REQUESTED" | "ROLLBACK_IN_PROGRESS" => Recovery::FollowServiceDeployment(arn),
        _ if !rollback => Recovery::Leave("--no-rollback: the service was left as it is".into()),
        "PENDING" | "IN_PROGRESS" => Recovery::EcsRollback {
            service_deployment: arn,
            hook: sd.waiting_hook().map(|h| h.id.clone()),
            previous: Some(previous.clone()),
        },
        // STOPPED, ROLLBACK_FAILED, or SUCCESSFUL after all: a new deployment of what ran before.
        _ => Recovery::Restore(previous.clone()),
    }
}

/// Pure: how a failed deploy ends. Back on the previous revision is exit 1; not back is exit 3;
/// a signal is exit 130 (the rollback was started either way).
/// A signal ends the run with 130 only when the rollback it started is healthy, or still going
/// because a second signal stopped the wait (`wait_stopped`); a rollback that failed, timed out or
/// was never started (`--no-rollback`, a failed UpdateService) is exit 3, whatever stopped the deploy.
pub(crate) fn final_outcome(failure: &Failure, restored: &Restored, wait_stopped: bool) -> Outcome {
    match (failure, restored) {
        (Failure::Interrupted, Restored::Healthy) => Outcome::Interrupted,
        (Failure::Interrupted, Restored::Failed(_)) if wait_stopped => Outcome::Interrupted,
        (_, Restored::Healthy) => Outcome::RolledBack,
        (_, Restored::Failed(_)) => Outcome::RollbackFailed,
    }
}

/// Whether a recovery brought the service back.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Restored {
    Healthy,
    Failed(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_to_do_after_a_failure() {
        let failed = |rolling_back: bool| Failure::RolloutFailed {
            reason: "tasks failed to start".into(),
            rolling_back_to: rolling_back.then(|| ("ecs-svc/2".into(), "web:1".into())),
        };
        let ecs_rolled_back = Failure::EcsRolledBack {
            deployment: Some("ecs-svc/2".into()),
            task_definition: "web:1".into(),
        };
        let superseded = Failure::Superseded {
            deployment: "ecs-svc/3".into(),
            task_definition: "web:3".into(),
        };
        let stopped = Failure::TasksStopped { count: 2, limit: 2 };
        let follow = |secs| Recovery::FollowEcs {
            previous: "web:1".into(),
            patience: Duration::from_secs(secs),
        };
        let restore = Recovery::Restore("web:1".into());
        let no_rollback = Recovery::Leave("--no-rollback: the service was left as it is".into());
        // (failure, --rollback, previous, breaker/alarms roll back) → recovery, why
        let cases = [
            (
                &stopped,
                true,
                Some("web:1"),
                false,
                restore.clone(),
                "restore the recorded ARN",
            ),
            (
                &Failure::Interrupted,
                true,
                Some("web:1"),
                false,
                restore.clone(),
                "a signal restores too",
            ),
            (
                &failed(true),
                true,
                Some("web:1"),
                true,
                follow(0),
                "ECS already rolls back: follow it",
            ),
            (
                &ecs_rolled_back,
                false,
                Some("web:1"),
                true,
                follow(0),
                "follow ECS even with --no-rollback",
            ),
            (
                &failed(false),
                true,
                Some("web:1"),
                true,
                follow(10),
                "breaker set to roll back: give it 10 s",
            ),
            (
                &failed(false),
                true,
                Some("web:1"),
                false,
                restore.clone(),
                "no breaker rollback: restore",
            ),
            (
                &stopped,
                false,
                Some("web:1"),
                false,
                no_rollback.clone(),
                "--no-rollback leaves it",
            ),
            (
                &stopped,
                true,
                None,
                false,
                Recovery::ScaleToZero,
                "a first deploy scales to 0",
            ),
            (
                &stopped,
                false,
                None,
                false,
                no_rollback.clone(),
                "a first deploy with --no-rollback",
            ),
        ];
        for (failure, rollback, previous, ecs, want, why) in cases {
            let previous = previous.map(TaskDefinitionArn::from);
            assert_eq!(
                recovery(failure, rollback, previous.as_ref(), ecs, None),
                want,
                "{why}"
            );
        }
        let Recovery::Leave(why) = recovery(&superseded, true, Some(&"web:1".into()), false, None)
        else {
            panic!("a newer deployment is never undone");
        };
        assert!(
            why.starts_with("not rolling back: deployment ecs-svc/3"),
            "{why}"
        );
    }

    #[test]
    fn a_rolling_restore_asks_ecs_first_when_ecs_knows_the_service_deployment() {
        let previous = TaskDefinitionArn::from("web:1");
        let handle = || {
            Some((
                ServiceDeploymentArn::from("arn:sd/2"),
                DeploymentId::from("ecs-svc/2"),
            ))
        };
        let stop = Recovery::StopRolling {
            service_deployment: "arn:sd/2".into(),
            ours: "ecs-svc/2".into(),
            previous: previous.clone(),
        };
        let follow = Recovery::FollowEcs {
            previous: previous.clone(),
            patience: Duration::ZERO,
        };
        let leave = Recovery::Leave("--no-rollback".into());
        // (plan, rolling handle) → plan, why
        let cases = [
            (
                Recovery::Restore(previous.clone()),
                handle(),
                stop,
                "a restore asks ECS first",
            ),
            (
                Recovery::Restore(previous.clone()),
                None,
                Recovery::Restore(previous.clone()),
                "no service deployment known: UpdateService",
            ),
            (
                follow.clone(),
                handle(),
                follow,
                "ECS already rolls back: follow it",
            ),
            (leave.clone(), handle(), leave, "--no-rollback stays"),
            (
                Recovery::ScaleToZero,
                handle(),
                Recovery::ScaleToZero,
                "a created service",
            ),
        ];
        for (plan, rolling, want, why) in cases {
            assert_eq!(prefer_ecs_rollback(plan, rolling), want, "{why}");
        }
    }

    #[test]
    fn ecs_rollback_deployment_is_told_from_ours_and_from_a_stale_read() {
        let dep = |id: &str, status: &str, state: &str| DeploymentView {
            id: id.into(),
            status: status.into(),
            task_definition: format!("td-of-{id}").as_str().into(),
            rollout_state: Some(state.into()),
            ..Default::default()
        };
        let old = dep("old", "PRIMARY", "COMPLETED");
        let ours_primary = dep("ours", "PRIMARY", "IN_PROGRESS");
        let ours_failed = dep("ours", "ACTIVE", "FAILED");
        let rollback = dep("rb", "PRIMARY", "IN_PROGRESS");
        let ours = DeploymentId::from("ours");
        // (deployments, ours) → ECS's rollback deployment, why
        let cases = [
            (
                vec![old.clone()],
                Some(&ours),
                None,
                "a stale read: ours nowhere",
            ),
            (
                vec![ours_primary.clone(), dep("old", "ACTIVE", "COMPLETED")],
                Some(&ours),
                None,
                "the stop is only requested: ours still PRIMARY",
            ),
            (
                vec![rollback.clone(), ours_failed.clone()],
                Some(&ours),
                Some("rb"),
                "ECS's rollback deployment",
            ),
            (
                vec![rollback.clone(), ours_failed.clone()],
                None,
                Some("rb"),
                "circuit breaker: the PRIMARY one",
            ),
            (
                vec![dep("ours", "PRIMARY", "FAILED")],
                None,
                None,
                "failed and nothing started yet",
            ),
            (
                vec![rollback.clone(), dep("ours", "ACTIVE", "IN_PROGRESS")],
                Some(&ours),
                Some("rb"),
                "ours not marked failed yet",
            ),
        ];
        for (deployments, ours, want, why) in cases {
            let got = ecs_rollback_in(&deployments, ours).map(|d| d.id.as_str());
            assert_eq!(got, want, "{why}");
        }
    }

    #[test]
    fn how_a_failed_deploy_ends() {
        use Outcome::*;
        let back = Restored::Healthy;
        let not_back = Restored::Failed("the rollback did not complete".into());
        let stopped = Failure::TasksStopped { count: 2, limit: 2 };
        let signal = &Failure::Interrupted;
        // (failure, restored, a second signal stopped the wait) → outcome
        for (failure, restored, wait_stopped, want) in [
            (&stopped, &back, false, RolledBack),
            (&stopped, &not_back, false, RollbackFailed),
            (&stopped, &not_back, true, RollbackFailed),
            (signal, &back, false, Interrupted),
            // The rollback a signal started failed (or never started): a person must look.
            (signal, &not_back, false, RollbackFailed),
            // A second signal stopped the wait: ECS goes on with the rollback.
            (signal, &not_back, true, Interrupted),
        ] {
            assert_eq!(
                final_outcome(failure, restored, wait_stopped),
                want,
                "{failure:?} {restored:?} {wait_stopped}"
            );
        }
    }

    #[test]
    fn a_staged_deployment_is_rolled_back_by_ecs_wherever_ecs_can() {
        let sd = |status: &str, hook: bool| ServiceDeploymentView {
            arn: "arn:sd/1".into(),
            status: status.into(),
            hooks: hook
                .then(|| crate::strategy::HookView {
                    id: "ecs-pause-1".into(),
                    pause: true,
                    status: "AWAITING_ACTION".into(),
                    expires: None,
                })
                .into_iter()
                .collect(),
            ..Default::default()
        };
        let previous = TaskDefinitionArn::from("web:1");
        let ask = |hook: Option<&str>| Recovery::EcsRollback {
            service_deployment: "arn:sd/1".into(),
            hook: hook.map(String::from),
            previous: Some(previous.clone()),
        };
        let stopped = Failure::TasksStopped { count: 2, limit: 2 };
        // (service deployment, --rollback) → recovery, why
        let cases = [
            (
                sd("IN_PROGRESS", false),
                true,
                ask(None),
                "in flight: StopServiceDeployment",
            ),
            (
                sd("IN_PROGRESS", true),
                true,
                ask(Some("ecs-pause-1")),
                "paused: Continue ROLLBACK",
            ),
            (sd("PENDING", false), true, ask(None), "not started yet"),
            (
                sd("ROLLBACK_IN_PROGRESS", false),
                true,
                Recovery::FollowServiceDeployment("arn:sd/1".into()),
                "ECS rolls back",
            ),
            (
                sd("ROLLBACK_IN_PROGRESS", false),
                false,
                Recovery::FollowServiceDeployment("arn:sd/1".into()),
                "even with --no-rollback",
            ),
            (
                sd("ROLLBACK_SUCCESSFUL", false),
                true,
                Recovery::AlreadyBack,
                "ECS rolled back",
            ),
            (
                sd("STOPPED", false),
                true,
                Recovery::Restore(previous.clone()),
                "stopped: deploy the previous",
            ),
            (
                sd("ROLLBACK_FAILED", false),
                true,
                Recovery::Restore(previous.clone()),
                "ECS's rollback failed",
            ),
            (
                sd("IN_PROGRESS", false),
                false,
                Recovery::Leave("--no-rollback: the service was left as it is".into()),
                "--no-rollback",
            ),
        ];
        for (view, rollback, want, why) in cases {
            assert_eq!(
                recovery(&stopped, rollback, Some(&previous), false, Some(&view)),
                want,
                "{why}"
            );
        }
    }
}
