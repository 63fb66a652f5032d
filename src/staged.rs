//! The verdict on a BLUE_GREEN, LINEAR or CANARY deployment: the service deployment
//! (DescribeServiceDeployments) tells the truth, not `deployments[]`. Pure, like `rollout::verdict`,
//! whose client-side fail-fast (stopped tasks, unhealthy green targets) applies here too.

use crate::rollout::{Failure, Progress, Snapshot, Verdict, Watched, tasks_failed};
use crate::strategy::ServiceDeploymentView;

/// Pure: where the watched service deployment stands.
pub(crate) fn verdict(snapshot: &Snapshot, watched: &Watched) -> Verdict {
    let Some(sd) = &snapshot.service_deployment else {
        // Not in the reads yet (eventually consistent), or gone: in progress until the bound.
        if snapshot
            .ours_unseen_for
            .is_none_or(|d| d < crate::rollout::NOT_YET_VISIBLE)
        {
            return Verdict::InProgress(progress(snapshot, watched, None));
        }
        return Verdict::Failed(Failure::ServiceDeployment {
            status: "MISSING".into(),
            reason: "ECS does not know the service deployment".into(),
        });
    };
    if watched.rollback {
        return rollback_verdict(snapshot, watched, sd);
    }
    if let Some(current) = snapshot
        .current_service_deployment
        .as_ref()
        .filter(|c| **c != sd.arn && sd.status != "SUCCESSFUL")
    {
        return Verdict::Failed(Failure::Superseded {
            deployment: current.as_str().into(),
            task_definition: snapshot.task_definition.clone(),
        });
    }
    match sd.status.as_str() {
        "SUCCESSFUL" => return Verdict::Healthy,
        "PENDING" | "IN_PROGRESS" => {}
        status => {
            return Verdict::Failed(Failure::ServiceDeployment {
                status: status.to_string(),
                reason: sd
                    .reason
                    .clone()
                    .unwrap_or_else(|| "no reason given".into()),
            });
        }
    }
    if let Some(failure) = tasks_failed(snapshot, watched) {
        return Verdict::Failed(failure);
    }
    if let Some(hook) = sd.waiting_hook()
        && watched
            .pause_at
            .as_deref()
            .is_some_and(|stage| sd.stage.as_deref() == Some(stage))
    {
        return Verdict::Paused(hook.clone());
    }
    let progress = progress(snapshot, watched, Some(sd));
    let all_healthy = progress.running > 0 && progress.healthy == progress.running;
    if let Some(until) = &watched.until
        && sd.reached(until)
        && all_healthy
    {
        return Verdict::Healthy;
    }
    Verdict::InProgress(progress)
}

/// Watching ECS roll our service deployment back: ROLLBACK_SUCCESSFUL is the good end.
fn rollback_verdict(snapshot: &Snapshot, watched: &Watched, sd: &ServiceDeploymentView) -> Verdict {
    match sd.status.as_str() {
        "ROLLBACK_SUCCESSFUL" => Verdict::Healthy,
        "ROLLBACK_FAILED" | "STOPPED" | "SUCCESSFUL" => {
            Verdict::Failed(Failure::ServiceDeployment {
                status: sd.status.clone(),
                reason: sd
                    .reason
                    .clone()
                    .unwrap_or_else(|| "no reason given".into()),
            })
        }
        _ => Verdict::InProgress(progress(snapshot, watched, Some(sd))),
    }
}

fn progress(
    snapshot: &Snapshot,
    watched: &Watched,
    sd: Option<&ServiceDeploymentView>,
) -> Progress {
    let state = sd.map_or_else(|| "not yet visible".into(), |s| s.status.clone());
    Progress {
        stage: Some(sd.map_or_else(
            || format!("{} not yet visible to reads", watched.deployment_id),
            ServiceDeploymentView::describe,
        )),
        groups: (!snapshot.target_groups.is_empty()).then(|| {
            let names: Vec<&str> = snapshot
                .target_groups
                .iter()
                .map(|arn| arn.split('/').nth(1).unwrap_or(arn))
                .collect();
            names.join(", ")
        }),
        ..Progress::of_tasks(snapshot, watched, state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs_state::{TargetState, TaskStatus};
    use crate::rollout::{TargetView, TaskView};
    use crate::strategy::HookView;
    use std::time::Duration;

    const ARN: &str = "arn:sd/ours";

    fn look(status: &str, stage: &str, healthy: bool) -> Snapshot {
        let task = |n: u8| TaskView {
            arn: format!("arn:task/{n}"),
            started_by: "ecs-svc/ours".into(),
            last_status: TaskStatus::Running,
            ip: Some(format!("10.0.0.{n}")),
            running_for: Some(Duration::from_secs(60)),
            ..Default::default()
        };
        let target = |n: u8| TargetView {
            target_group: "arn:targetgroup/web-tg2/2".into(),
            id: format!("10.0.0.{n}"),
            state: if healthy {
                TargetState::Healthy
            } else {
                TargetState::Initial
            },
            ..Default::default()
        };
        Snapshot {
            desired: 2,
            tasks: vec![task(1), task(2)],
            target_groups: vec!["arn:targetgroup/web-tg2/2".into()],
            targets: vec![target(1), target(2)],
            service_deployment: Some(ServiceDeploymentView {
                arn: ARN.into(),
                status: status.into(),
                reason: Some("because".into()),
                stage: Some(stage.into()),
                ..Default::default()
            }),
            current_service_deployment: Some(ARN.into()),
            ..Default::default()
        }
    }

    fn watched() -> Watched {
        Watched {
            deployment_id: "ecs-svc/ours".into(),
            max_failed_tasks: 2,
            service_deployment: Some(ARN.into()),
            ..Default::default()
        }
    }

    fn kind(v: &Verdict) -> String {
        match v {
            Verdict::InProgress(_) => "in_progress".into(),
            Verdict::Healthy => "healthy".into(),
            Verdict::Paused(h) => format!("paused {}", h.id),
            Verdict::Failed(Failure::ServiceDeployment { status, .. }) => {
                format!("failed {status}")
            }
            Verdict::Failed(f) => format!("{f:?}")
                .split([' ', '{', '('])
                .next()
                .unwrap_or_default()
                .to_string(),
        }
    }

    #[test]
    fn the_service_deployment_decides() {
        let until = |stage: &str| Watched {
            until: Some(stage.into()),
            ..watched()
        };
        let paused = {
            let mut s = look("IN_PROGRESS", "POST_TEST_TRAFFIC_SHIFT", true);
            s.service_deployment.as_mut().unwrap().hooks = vec![HookView {
                id: "ecs-pause-1".into(),
                pause: true,
                status: "AWAITING_ACTION".into(),
                expires: None,
            }];
            s
        };
        let superseded = Snapshot {
            current_service_deployment: Some("arn:sd/newer".into()),
            ..look("IN_PROGRESS", "SCALE_UP", false)
        };
        let stopped_task = {
            let mut s = look("IN_PROGRESS", "SCALE_UP", false);
            for t in &mut s.tasks {
                t.last_status = TaskStatus::Stopped;
                t.stopped_reason = Some("Essential container in task exited".into());
            }
            s
        };
        let unhealthy = {
            let mut s = look("IN_PROGRESS", "SCALE_UP", false);
            s.targets[0].state = TargetState::Unhealthy;
            s
        };
        let unseen = Snapshot {
            service_deployment: None,
            ours_unseen_for: Some(Duration::from_secs(2)),
            ..look("IN_PROGRESS", "SCALE_UP", false)
        };
        let with_pause_at = Watched {
            pause_at: Some("POST_TEST_TRAFFIC_SHIFT".into()),
            ..watched()
        };
        let rollback = Watched {
            rollback: true,
            ..watched()
        };
        // (look, watched, verdict, why)
        let cases: Vec<(Snapshot, Watched, &str, &str)> = vec![
            (
                look("SUCCESSFUL", "CLEAN_UP", true),
                watched(),
                "healthy",
                "ECS says SUCCESSFUL",
            ),
            (
                look("IN_PROGRESS", "BAKE_TIME", true),
                watched(),
                "in_progress",
                "the bake is not the end",
            ),
            (
                look("IN_PROGRESS", "BAKE_TIME", true),
                until("BAKE_TIME"),
                "healthy",
                "--until BAKE_TIME reached, green healthy",
            ),
            (
                look("IN_PROGRESS", "CLEAN_UP", true),
                until("BAKE_TIME"),
                "healthy",
                "a stage past --until counts",
            ),
            (
                look("IN_PROGRESS", "BAKE_TIME", false),
                until("BAKE_TIME"),
                "in_progress",
                "reached but green not healthy",
            ),
            (
                look("IN_PROGRESS", "SCALE_UP", true),
                until("BAKE_TIME"),
                "in_progress",
                "not reached",
            ),
            (
                look("ROLLBACK_SUCCESSFUL", "SCALE_UP", false),
                watched(),
                "failed ROLLBACK_SUCCESSFUL",
                "ECS rolled back",
            ),
            (
                look("ROLLBACK_IN_PROGRESS", "SCALE_UP", false),
                watched(),
                "failed ROLLBACK_IN_PROGRESS",
                "ECS is rolling back",
            ),
            (
                look("STOPPED", "SCALE_UP", false),
                watched(),
                "failed STOPPED",
                "stopped",
            ),
            (
                superseded,
                watched(),
                "Superseded",
                "a newer deployment replaced ours",
            ),
            (
                Snapshot {
                    current_service_deployment: Some("arn:sd/newer".into()),
                    ..look("SUCCESSFUL", "CLEAN_UP", true)
                },
                watched(),
                "healthy",
                "ours ended SUCCESSFUL before a newer one started",
            ),
            (
                stopped_task,
                watched(),
                "TasksStopped",
                "green tasks crash: fail fast",
            ),
            (
                unhealthy,
                watched(),
                "UnhealthyTarget",
                "green target unhealthy: fail fast",
            ),
            (
                paused.clone(),
                with_pause_at,
                "paused ecs-pause-1",
                "--smoke-test: stop at the PAUSE hook",
            ),
            (
                paused,
                watched(),
                "in_progress",
                "a PAUSE hook without --smoke-test is waited at",
            ),
            (unseen, watched(), "in_progress", "not yet in the reads"),
            (
                look("ROLLBACK_IN_PROGRESS", "SCALE_UP", false),
                rollback.clone(),
                "in_progress",
                "the rollback goes on",
            ),
            (
                look("ROLLBACK_SUCCESSFUL", "SCALE_UP", false),
                rollback.clone(),
                "healthy",
                "rolled back",
            ),
            (
                look("ROLLBACK_FAILED", "SCALE_UP", false),
                rollback,
                "failed ROLLBACK_FAILED",
                "the rollback failed",
            ),
        ];
        for (snapshot, watched, want, why) in cases {
            assert_eq!(kind(&verdict(&snapshot, &watched)), want, "{why}");
        }
    }

    #[test]
    fn progress_names_the_stage_and_the_traffic() {
        let mut s = look("IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", true);
        s.service_deployment.as_mut().unwrap().production_weight = Some(50.0);
        let Verdict::InProgress(p) = verdict(&s, &watched()) else {
            panic!("in progress");
        };
        assert_eq!(
            p.summary(),
            "PRODUCTION_TRAFFIC_SHIFT 50% → green: 2/2 new tasks running, 0 pending, 2/2 healthy in web-tg2"
        );
    }
}
