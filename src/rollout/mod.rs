//! Decisions about a rollout, as pure functions of what ECS and the ALB report (a `Snapshot`).
//!
//! `verdict` says whether *our* deployment has succeeded, failed (and why), or is still going;
//! `rollback_target` says which task definition ran before we touched the service. Neither does I/O,
//! so every edge case is a table row in the tests below.

use crate::ecs_state::{DeploymentStatus, RolloutState, Status, TaskStatus};
pub(crate) use crate::health::{ContainerView, Gate, TargetView, TaskView};
use crate::health::{Health, Sick};
use crate::ids::{DeploymentId, ServiceDeploymentArn, TaskDefinitionArn};
use crate::strategy::CodeDeployView;
use crate::strategy::{HookView, ServiceDeploymentView};
use std::time::Duration;

mod failure;

pub(crate) use failure::Failure;

#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct DeploymentView {
    pub(crate) id: DeploymentId,
    pub(crate) status: DeploymentStatus,
    pub(crate) task_definition: TaskDefinitionArn,
    pub(crate) rollout_state: Option<RolloutState>,
    pub(crate) rollout_state_reason: Option<String>,
    pub(crate) desired: i32,
    pub(crate) running: i32,
    pub(crate) pending: i32,
    pub(crate) failed: i32,
}

/// One look at the service: what DescribeServices, DescribeTasks and DescribeTargetHealth said.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Snapshot {
    pub(crate) task_definition: TaskDefinitionArn,
    pub(crate) desired: i32,
    pub(crate) running: i32,
    pub(crate) deployments: Vec<DeploymentView>,
    /// The tasks of the deployment being watched, running and stopped.
    pub(crate) tasks: Vec<TaskView>,
    pub(crate) target_groups: Vec<String>,
    pub(crate) targets: Vec<TargetView>,
    pub(crate) health_check_grace: Duration,
    /// The service's circuit breaker or deployment alarms roll back by themselves.
    pub(crate) ecs_rolls_back: bool,
    /// The service's awsvpc subnets.
    pub(crate) subnets: Vec<String>,
    /// The watched service deployment (BLUE_GREEN, LINEAR, CANARY), and the service's current one.
    pub(crate) service_deployment: Option<ServiceDeploymentView>,
    pub(crate) current_service_deployment: Option<String>,
    /// The watched CodeDeploy deployment (CODE_DEPLOY services).
    pub(crate) codedeploy: Option<CodeDeployView>,
    /// Some(how long we have watched) while no read has shown our deployment yet. ECS reads are
    /// eventually consistent: right after UpdateService a read may still show the service before it.
    pub(crate) ours_unseen_for: Option<Duration>,
    /// What a new task must show to count as healthy (target health, container checks, RUNNING).
    pub(crate) gate: Gate,
    /// The last service event since the watch began saying ECS could not place a task.
    pub(crate) placement: Option<String>,
}

impl Snapshot {
    pub(crate) fn health(&self) -> Health<'_> {
        Health {
            gate: &self.gate,
            target_groups: &self.target_groups,
            targets: &self.targets,
            grace: self.health_check_grace,
        }
    }
}

/// How long a deployment UpdateService returned may stay invisible to reads before its absence
/// means something (ECS documents eventual consistency but gives no bound).
pub(crate) const NOT_YET_VISIBLE: Duration = Duration::from_secs(30);

/// What is being watched.
#[derive(Debug, Clone, Default)]
pub(crate) struct Watched {
    pub(crate) deployment_id: DeploymentId,
    pub(crate) task_definition: TaskDefinitionArn,
    /// The task definition that ran before; None when watching a rollback.
    pub(crate) previous_task_definition: Option<TaskDefinitionArn>,
    pub(crate) max_failed_tasks: u32,
    /// BLUE_GREEN, LINEAR, CANARY: the service deployment that tells the truth (`staged::verdict`).
    pub(crate) service_deployment: Option<ServiceDeploymentArn>,
    /// `--until STAGE`: done once the deployment reaches it with the new tasks healthy.
    pub(crate) until: Option<String>,
    /// `--smoke-test`: stop watching when a PAUSE hook waits at this stage.
    pub(crate) pause_at: Option<String>,
    /// Watching ECS roll the service deployment back: ROLLBACK_SUCCESSFUL is the good end.
    pub(crate) rollback: bool,
    /// A CODE_DEPLOY service: the CodeDeploy deployment that tells the truth (`codedeploy::verdict`).
    pub(crate) codedeploy: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Progress {
    pub(crate) rollout_state: String,
    /// A staged deployment's stage and traffic (`PRODUCTION_TRAFFIC_SHIFT 50% → green`), and the
    /// green target groups by name.
    pub(crate) stage: Option<String>,
    pub(crate) groups: Option<String>,
    pub(crate) running: usize,
    pub(crate) pending: usize,
    pub(crate) desired: i32,
    pub(crate) healthy: usize,
    pub(crate) target_groups: usize,
    pub(crate) deployments: usize,
    /// Our tasks that stopped, and how many it takes to fail.
    pub(crate) failed: usize,
    pub(crate) max_failed: u32,
}

impl Progress {
    /// The counts of our tasks in `snapshot` (ECS's desired count, every running task of ours and
    /// how many pass the gate), under `rollout_state`; no stage, no group names. The staged and
    /// CodeDeploy verdicts start from it.
    pub(crate) fn of_tasks(
        snapshot: &Snapshot,
        watched: &Watched,
        rollout_state: String,
    ) -> Progress {
        let running = running(snapshot);
        Progress {
            rollout_state,
            stage: None,
            groups: None,
            running: running.len(),
            pending: snapshot
                .tasks
                .iter()
                .filter(|t| t.last_status.starting())
                .count(),
            desired: snapshot.desired,
            healthy: running.iter().filter(|t| task_healthy(snapshot, t)).count(),
            target_groups: snapshot.target_groups.len(),
            deployments: snapshot.deployments.len(),
            failed: snapshot.tasks.iter().filter(|t| t.failed()).count(),
            max_failed: watched.max_failed_tasks,
        }
    }

    /// One more stopped task would fail the deploy: worth looking more often.
    pub(crate) fn on_the_edge(&self) -> bool {
        self.failed > 0 && self.failed + 1 >= self.max_failed as usize
    }

    /// Every new task runs: what is left (health checks, old tasks draining, COMPLETED) may end at
    /// any look. Target health is not asked: a run of many services reads it seldom (`pace`).
    pub(crate) fn nearly_done(&self) -> bool {
        self.desired > 0 && self.running >= self.desired as usize
    }
}

impl Progress {
    pub(crate) fn summary(&self) -> String {
        let head = match &self.stage {
            Some(stage) => stage.clone(),
            None => format!("rollout {}", self.rollout_state),
        };
        let mut s = format!(
            "{head}: {}/{} new tasks running, {} pending",
            self.running, self.desired, self.pending
        );
        match &self.groups {
            Some(names) => s.push_str(&format!(
                ", {}/{} healthy in {names}",
                self.healthy, self.desired
            )),
            None if self.target_groups > 0 => s.push_str(&format!(
                ", {}/{} healthy in {} target group(s)",
                self.healthy, self.desired, self.target_groups
            )),
            None => {}
        }
        if self.deployments > 1 && self.stage.is_none() {
            s.push_str(&format!(", {} deployments", self.deployments));
        }
        s
    }
}

/// How a watch ended: the verdict, once it is no longer in progress.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ended {
    Healthy,
    Failed(Failure),
    /// A PAUSE hook waits where the watch was told to stop (`--smoke-test`).
    Paused(HookView),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verdict {
    InProgress(Progress),
    Healthy,
    Failed(Failure),
    Paused(HookView),
}

/// True when this running task passes the service's gate (`health::task_healthy`).
fn task_healthy(snapshot: &Snapshot, task: &TaskView) -> bool {
    crate::health::task_healthy(&snapshot.health(), task)
}

/// The watched deployment's tasks that run.
fn running(snapshot: &Snapshot) -> Vec<&TaskView> {
    snapshot
        .tasks
        .iter()
        .filter(|t| t.last_status == TaskStatus::Running)
        .collect()
}

/// Client-side fail-fast, whatever the strategy: `--max-failed-tasks` of ours stopped, or a
/// running task of ours unhealthy after the health-check grace period (a target of its, or a
/// container health check with no load balancer).
pub(crate) fn tasks_failed(snapshot: &Snapshot, watched: &Watched) -> Option<Failure> {
    let failed = snapshot.tasks.iter().filter(|t| t.failed()).count();
    if failed >= watched.max_failed_tasks as usize {
        return Some(Failure::TasksStopped {
            count: failed,
            limit: watched.max_failed_tasks,
        });
    }
    let health = snapshot.health();
    running(snapshot).into_iter().find_map(|task| {
        crate::health::task_sick(&health, task).map(|sick| match sick {
            Sick::Target(t) => Failure::UnhealthyTarget(t),
            Sick::Container {
                task,
                container,
                check,
            } => Failure::UnhealthyContainer {
                task,
                container,
                check,
            },
        })
    })
}

pub(crate) fn verdict(snapshot: &Snapshot, watched: &Watched) -> Verdict {
    let primary = snapshot
        .deployments
        .iter()
        .find(|d| d.status == DeploymentStatus::Primary);
    let Some(ours) = snapshot
        .deployments
        .iter()
        .find(|d| d.id == watched.deployment_id)
    else {
        return ours_gone(snapshot, watched, primary);
    };
    if let Some(failure) = rollout_failed(ours, primary) {
        return Verdict::Failed(failure);
    }
    if let Some(failure) = no_longer_primary(ours, primary, watched) {
        return Verdict::Failed(failure);
    }
    if let Some(failure) = tasks_failed(snapshot, watched) {
        return Verdict::Failed(failure);
    }
    let running = running(snapshot);
    let healthy = running.iter().filter(|t| task_healthy(snapshot, t)).count();
    if healthy_everywhere(snapshot, ours, running.len(), healthy) {
        return Verdict::Healthy;
    }
    Verdict::InProgress(progress(snapshot, watched, ours, running.len(), healthy))
}

/// Our deployment is not in the service's list: not visible yet (just after the update), else ECS
/// rolled back to the task definition that ran before, else another deployment superseded ours.
fn ours_gone(snapshot: &Snapshot, watched: &Watched, primary: Option<&DeploymentView>) -> Verdict {
    if snapshot
        .ours_unseen_for
        .is_some_and(|d| d < NOT_YET_VISIBLE)
    {
        return Verdict::InProgress(not_yet_visible(snapshot, watched));
    }
    let other = primary.map(|p| p.id.clone());
    if snapshot.task_definition != watched.task_definition
        && watched
            .previous_task_definition
            .as_ref()
            .is_none_or(|p| *p == snapshot.task_definition)
    {
        return Verdict::Failed(Failure::EcsRolledBack {
            deployment: other,
            task_definition: snapshot.task_definition.clone(),
        });
    }
    Verdict::Failed(Failure::Superseded {
        deployment: other.unwrap_or_else(|| "unknown".into()),
        task_definition: snapshot.task_definition.clone(),
    })
}

/// ECS marked our deployment FAILED, and the deployment it rolls back to, if it started one.
fn rollout_failed(ours: &DeploymentView, primary: Option<&DeploymentView>) -> Option<Failure> {
    if ours.rollout_state != Some(RolloutState::Failed) {
        return None;
    }
    let rolling_back_to = primary
        .filter(|p| p.id != ours.id && p.task_definition != ours.task_definition)
        .map(|p| (p.id.clone(), p.task_definition.clone()));
    let reason = ours
        .rollout_state_reason
        .clone()
        .unwrap_or_else(|| "no reason given".into());
    Some(Failure::RolloutFailed {
        reason,
        rolling_back_to,
    })
}

/// Our deployment is no longer PRIMARY: ECS rolled back to the previous task definition, or
/// another deployment superseded ours.
fn no_longer_primary(
    ours: &DeploymentView,
    primary: Option<&DeploymentView>,
    watched: &Watched,
) -> Option<Failure> {
    if ours.status == DeploymentStatus::Primary {
        return None;
    }
    let p = primary.cloned().unwrap_or_default();
    if watched.previous_task_definition.as_ref() == Some(&p.task_definition) {
        return Some(Failure::EcsRolledBack {
            deployment: Some(p.id),
            task_definition: p.task_definition,
        });
    }
    Some(Failure::Superseded {
        deployment: p.id,
        task_definition: p.task_definition,
    })
}

/// Healthy: ECS says COMPLETED (or says nothing), ours is the only deployment, the service runs
/// what it wants, and every running task of ours is healthy.
fn healthy_everywhere(
    snapshot: &Snapshot,
    ours: &DeploymentView,
    running: usize,
    healthy: usize,
) -> bool {
    let completed = ours
        .rollout_state
        .as_ref()
        .is_none_or(|s| *s == RolloutState::Completed);
    completed
        && snapshot.deployments.len() == 1
        && snapshot.running == snapshot.desired
        && running as i32 == ours.desired
        && healthy == running
}

/// Where a rollout still going stands.
fn progress(
    snapshot: &Snapshot,
    watched: &Watched,
    ours: &DeploymentView,
    running: usize,
    healthy: usize,
) -> Progress {
    Progress {
        rollout_state: ours
            .rollout_state
            .as_ref()
            .map_or_else(|| "unknown".into(), |s| s.to_string()),
        running,
        pending: snapshot
            .tasks
            .iter()
            .filter(|t| t.last_status.starting())
            .count(),
        desired: ours.desired,
        healthy,
        target_groups: snapshot.target_groups.len(),
        deployments: snapshot.deployments.len(),
        failed: snapshot.tasks.iter().filter(|t| t.failed()).count(),
        max_failed: watched.max_failed_tasks,
        stage: None,
        groups: None,
    }
}

fn not_yet_visible(snapshot: &Snapshot, watched: &Watched) -> Progress {
    Progress {
        rollout_state: format!("{} not yet visible to reads", watched.deployment_id),
        running: 0,
        pending: 0,
        desired: snapshot.desired,
        healthy: 0,
        target_groups: snapshot.target_groups.len(),
        deployments: snapshot.deployments.len(),
        failed: 0,
        max_failed: watched.max_failed_tasks,
        stage: None,
        groups: None,
    }
}

/// Why the service is not ready for a deploy.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Busy {
    /// The service is DRAINING or INACTIVE.
    NotActive(Status),
    /// Not under the ECS deployment controller (CODE_DEPLOY, EXTERNAL).
    Controller(String),
    InProgress {
        deployment: DeploymentId,
        task_definition: TaskDefinitionArn,
    },
    NoCompleted,
}

/// The task definition the service runs now (its COMPLETED PRIMARY deployment): the rollback target.
pub(crate) fn rollback_target(deployments: &[DeploymentView]) -> Result<TaskDefinitionArn, Busy> {
    if let Some(d) = deployments
        .iter()
        .find(|d| d.rollout_state == Some(RolloutState::InProgress))
    {
        return Err(Busy::InProgress {
            deployment: d.id.clone(),
            task_definition: d.task_definition.clone(),
        });
    }
    let primary = deployments
        .iter()
        .find(|d| d.status == DeploymentStatus::Primary);
    match primary {
        Some(p) if p.rollout_state == Some(RolloutState::Completed) => {
            Ok(p.task_definition.clone())
        }
        // Services that predate rolloutState: a lone PRIMARY deployment is a finished one.
        Some(p) if p.rollout_state.is_none() && deployments.len() == 1 => {
            Ok(p.task_definition.clone())
        }
        Some(p) if p.rollout_state.is_none() => Err(Busy::InProgress {
            deployment: p.id.clone(),
            task_definition: p.task_definition.clone(),
        }),
        _ => Err(Busy::NoCompleted),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "arn:td/web:1";
    const NEW: &str = "arn:td/web:2";
    const OTHER: &str = "arn:td/web:3";

    fn dep(id: &str, status: &str, td: &str, state: Option<&str>, desired: i32) -> DeploymentView {
        DeploymentView {
            id: id.into(),
            status: status.into(),
            task_definition: td.into(),
            rollout_state: state.map(RolloutState::from),
            rollout_state_reason: Some(format!("reason for {id}")),
            desired,
            ..Default::default()
        }
    }

    fn task(n: u8, status: &str) -> TaskView {
        TaskView {
            arn: format!("arn:task/c/{n}"),
            started_by: "ours".into(),
            last_status: status.into(),
            ip: Some(format!("10.0.0.{n}")),
            running_for: Some(Duration::from_secs(60)),
            ..Default::default()
        }
    }

    fn stopped(n: u8, reason: &str) -> TaskView {
        TaskView {
            stopped_reason: Some(reason.into()),
            ..task(n, "STOPPED")
        }
    }

    fn target(n: u8, state: &str) -> TargetView {
        TargetView {
            target_group: "arn:targetgroup/web-tg/1".into(),
            id: format!("10.0.0.{n}"),
            port: Some(8080),
            state: state.into(),
            ..Default::default()
        }
    }

    fn snap(
        deployments: Vec<DeploymentView>,
        tasks: Vec<TaskView>,
        targets: Vec<TargetView>,
    ) -> Snapshot {
        let running = tasks
            .iter()
            .filter(|t| t.last_status == TaskStatus::Running)
            .count() as i32;
        Snapshot {
            task_definition: deployments
                .iter()
                .find(|d| d.status == DeploymentStatus::Primary)
                .map(|d| d.task_definition.clone())
                .unwrap_or_default(),
            desired: 2,
            running,
            deployments,
            tasks,
            target_groups: vec!["arn:targetgroup/web-tg/1".into()],
            targets,
            ..Default::default()
        }
    }

    fn watched() -> Watched {
        Watched {
            deployment_id: "ours".into(),
            task_definition: NEW.into(),
            previous_task_definition: Some(OLD.into()),
            max_failed_tasks: 2,
            ..Default::default()
        }
    }

    fn kind(v: &Verdict) -> String {
        match v {
            Verdict::InProgress(_) => "in_progress".into(),
            Verdict::Healthy => "healthy".into(),
            Verdict::Paused(_) => "paused".into(),
            Verdict::Failed(f) => format!("{f:?}")
                .split([' ', '{', '('])
                .next()
                .unwrap_or_default()
                .to_string(),
        }
    }

    #[test]
    fn verdicts() {
        let completed = || dep("ours", "PRIMARY", NEW, Some("COMPLETED"), 2);
        let in_progress = || dep("ours", "PRIMARY", NEW, Some("IN_PROGRESS"), 2);
        let old_active = || dep("old", "ACTIVE", OLD, Some("COMPLETED"), 2);
        let healthy_pair = || vec![target(1, "healthy"), target(2, "healthy")];
        let mut cases: Vec<(&str, Snapshot, &str)> = vec![
            (
                "completed, both healthy",
                snap(
                    vec![completed()],
                    vec![task(1, "RUNNING"), task(2, "RUNNING")],
                    healthy_pair(),
                ),
                "healthy",
            ),
            (
                "rolloutState not reported, one deployment",
                snap(
                    vec![dep("ours", "PRIMARY", NEW, None, 2)],
                    vec![task(1, "RUNNING"), task(2, "RUNNING")],
                    healthy_pair(),
                ),
                "healthy",
            ),
            (
                "COMPLETED but a target still initial",
                snap(
                    vec![completed()],
                    vec![task(1, "RUNNING"), task(2, "RUNNING")],
                    vec![target(1, "healthy"), target(2, "initial")],
                ),
                "in_progress",
            ),
            (
                "COMPLETED but no target registered",
                snap(
                    vec![completed()],
                    vec![task(1, "RUNNING"), task(2, "RUNNING")],
                    vec![target(1, "healthy")],
                ),
                "in_progress",
            ),
            (
                "healthy but the old deployment still drains",
                snap(
                    vec![in_progress(), old_active()],
                    vec![task(1, "RUNNING"), task(2, "RUNNING")],
                    healthy_pair(),
                ),
                "in_progress",
            ),
            (
                "one running of two",
                snap(
                    vec![completed()],
                    vec![task(1, "RUNNING")],
                    vec![target(1, "healthy")],
                ),
                "in_progress",
            ),
            (
                "rollout FAILED, no rollback",
                snap(
                    vec![dep("ours", "PRIMARY", NEW, Some("FAILED"), 2)],
                    vec![],
                    vec![],
                ),
                "RolloutFailed",
            ),
            (
                "rollout FAILED, ECS rolls back",
                snap(
                    vec![
                        dep("ecs", "PRIMARY", OLD, Some("IN_PROGRESS"), 2),
                        dep("ours", "ACTIVE", NEW, Some("FAILED"), 2),
                    ],
                    vec![],
                    vec![],
                ),
                "RolloutFailed",
            ),
            (
                "our deployment vanished, service on old",
                snap(
                    vec![dep("ecs", "PRIMARY", OLD, Some("COMPLETED"), 2)],
                    vec![],
                    vec![],
                ),
                "EcsRolledBack",
            ),
            (
                "our deployment ACTIVE, primary on old",
                snap(
                    vec![
                        dep("ecs", "PRIMARY", OLD, Some("IN_PROGRESS"), 2),
                        dep("ours", "ACTIVE", NEW, Some("IN_PROGRESS"), 2),
                    ],
                    vec![],
                    vec![],
                ),
                "EcsRolledBack",
            ),
            (
                "somebody deployed something else",
                snap(
                    vec![
                        dep("them", "PRIMARY", OTHER, Some("IN_PROGRESS"), 2),
                        dep("ours", "ACTIVE", NEW, Some("IN_PROGRESS"), 2),
                    ],
                    vec![],
                    vec![],
                ),
                "Superseded",
            ),
            (
                "our deployment vanished, service on a third TD",
                snap(
                    vec![dep("them", "PRIMARY", OTHER, Some("COMPLETED"), 2)],
                    vec![],
                    vec![],
                ),
                "Superseded",
            ),
            (
                "one task stopped (limit 2)",
                snap(
                    vec![in_progress(), old_active()],
                    vec![
                        stopped(1, "Essential container in task exited"),
                        task(2, "RUNNING"),
                    ],
                    vec![],
                ),
                "in_progress",
            ),
            (
                "two tasks stopped",
                snap(
                    vec![in_progress(), old_active()],
                    vec![
                        stopped(1, "Essential container in task exited"),
                        stopped(2, "CannotPullContainerError"),
                    ],
                    vec![],
                ),
                "TasksStopped",
            ),
            (
                "tasks scaled in are no failures",
                snap(
                    vec![in_progress()],
                    vec![
                        stopped(1, "Scaling activity initiated by (deployment x)"),
                        stopped(2, "Scaling activity initiated by (deployment x)"),
                    ],
                    vec![],
                ),
                "in_progress",
            ),
            (
                "an unhealthy target of ours",
                snap(
                    vec![in_progress(), old_active()],
                    vec![task(1, "RUNNING"), task(2, "RUNNING")],
                    vec![target(1, "healthy"), target(2, "unhealthy")],
                ),
                "UnhealthyTarget",
            ),
            (
                "an unhealthy target that is not ours",
                snap(
                    vec![in_progress(), old_active()],
                    vec![task(1, "RUNNING")],
                    vec![target(1, "healthy"), target(9, "unhealthy")],
                ),
                "in_progress",
            ),
        ];
        let on_instance = |n: u8, port: i32| TaskView {
            ip: None,
            instance: Some("i-1".into()),
            host_ports: vec![port],
            ..task(n, "RUNNING")
        };
        let instance_target = |port: i32, state: &str| TargetView {
            id: "i-1".into(),
            port: Some(port),
            ..target(1, state)
        };
        let no_lb = |gate: Gate, tasks: Vec<TaskView>| Snapshot {
            target_groups: vec![],
            gate,
            ..snap(vec![completed()], tasks, vec![])
        };
        let checked = |n: u8, status: &str| TaskView {
            health_status: Some(status.into()),
            containers: vec![ContainerView {
                name: "web".into(),
                health_status: Some(status.into()),
                ..Default::default()
            }],
            ..task(n, "RUNNING")
        };
        let check = || Gate::ContainerChecks(vec![("web".into(), "CMD true".into())]);
        cases.extend([
            (
                "EC2 bridge: both instance targets healthy",
                snap(
                    vec![completed()],
                    vec![on_instance(1, 32768), on_instance(2, 32769)],
                    vec![
                        instance_target(32768, "healthy"),
                        instance_target(32769, "healthy"),
                    ],
                ),
                "healthy",
            ),
            (
                "EC2 bridge: an instance target of ours unhealthy",
                snap(
                    vec![in_progress(), old_active()],
                    vec![on_instance(1, 32768)],
                    vec![instance_target(32768, "unhealthy")],
                ),
                "UnhealthyTarget",
            ),
            (
                "load-balanced task with neither IP nor instance",
                snap(
                    vec![completed()],
                    vec![
                        TaskView {
                            ip: None,
                            ..task(1, "RUNNING")
                        },
                        task(2, "RUNNING"),
                    ],
                    healthy_pair(),
                ),
                "in_progress",
            ),
            (
                "no LB: both containers HEALTHY",
                no_lb(check(), vec![checked(1, "HEALTHY"), checked(2, "HEALTHY")]),
                "healthy",
            ),
            (
                "no LB: a container UNHEALTHY",
                no_lb(
                    check(),
                    vec![checked(1, "HEALTHY"), checked(2, "UNHEALTHY")],
                ),
                "UnhealthyContainer",
            ),
            (
                "no LB, no check: RUNNING 60 s of 10",
                no_lb(
                    Gate::StaysRunning(Duration::from_secs(10)),
                    vec![task(1, "RUNNING"), task(2, "RUNNING")],
                ),
                "healthy",
            ),
            (
                "no LB, no check: RUNNING 60 s of 120",
                no_lb(
                    Gate::StaysRunning(Duration::from_secs(120)),
                    vec![task(1, "RUNNING"), task(2, "RUNNING")],
                ),
                "in_progress",
            ),
        ]);
        // Each failure as a whole value, not only its variant: which deployment ECS rolls back
        // with and to what (that decides between following ECS and UpdateService), which target,
        // how many tasks (tests-audit A8). Every failing row must be listed here.
        let rolled_back_by_ecs = Failure::EcsRolledBack {
            deployment: Some("ecs".into()),
            task_definition: OLD.into(),
        };
        let superseded = Failure::Superseded {
            deployment: "them".into(),
            task_definition: OTHER.into(),
        };
        let whole: Vec<(&str, Failure)> = vec![
            (
                "rollout FAILED, no rollback",
                Failure::RolloutFailed {
                    reason: "reason for ours".into(),
                    rolling_back_to: None,
                },
            ),
            (
                "rollout FAILED, ECS rolls back",
                Failure::RolloutFailed {
                    reason: "reason for ours".into(),
                    rolling_back_to: Some(("ecs".into(), OLD.into())),
                },
            ),
            (
                "our deployment vanished, service on old",
                rolled_back_by_ecs.clone(),
            ),
            ("our deployment ACTIVE, primary on old", rolled_back_by_ecs),
            ("somebody deployed something else", superseded.clone()),
            ("our deployment vanished, service on a third TD", superseded),
            (
                "two tasks stopped",
                Failure::TasksStopped { count: 2, limit: 2 },
            ),
            (
                "an unhealthy target of ours",
                Failure::UnhealthyTarget(target(2, "unhealthy")),
            ),
            (
                "EC2 bridge: an instance target of ours unhealthy",
                Failure::UnhealthyTarget(instance_target(32768, "unhealthy")),
            ),
            (
                "no LB: a container UNHEALTHY",
                Failure::UnhealthyContainer {
                    task: "2".into(),
                    container: "web".into(),
                    check: Some("CMD true".into()),
                },
            ),
        ];
        for (name, snapshot, expected) in cases {
            let got = verdict(&snapshot, &watched());
            assert_eq!(kind(&got), expected, "{name}");
            if let Verdict::Failed(failure) = got {
                let (_, want) = whole
                    .iter()
                    .find(|(row, _)| *row == name)
                    .unwrap_or_else(|| panic!("{name}: its whole Failure is not in the table"));
                assert_eq!(&failure, want, "{name}");
            }
        }
    }

    #[test]
    fn unhealthy_within_the_grace_period_is_waited_out() {
        let mut s = snap(
            vec![dep("ours", "PRIMARY", NEW, Some("IN_PROGRESS"), 2)],
            vec![task(1, "RUNNING")],
            vec![target(1, "unhealthy")],
        );
        s.health_check_grace = Duration::from_secs(120);
        assert_eq!(kind(&verdict(&s, &watched())), "in_progress");
        s.health_check_grace = Duration::from_secs(30);
        assert_eq!(kind(&verdict(&s, &watched())), "UnhealthyTarget");
    }

    #[test]
    fn one_failed_task_short_of_the_limit_is_on_the_edge() {
        let one = snap(
            vec![dep("ours", "PRIMARY", NEW, Some("IN_PROGRESS"), 2)],
            vec![stopped(1, "x"), task(2, "RUNNING")],
            vec![],
        );
        let none = snap(
            vec![dep("ours", "PRIMARY", NEW, Some("IN_PROGRESS"), 2)],
            vec![task(2, "RUNNING")],
            vec![],
        );
        let edge = |s: &Snapshot| matches!(verdict(s, &watched()), Verdict::InProgress(p) if p.on_the_edge());
        assert!(edge(&one));
        assert!(!edge(&none));
    }

    #[test]
    fn nearly_done_once_every_new_task_runs() {
        let p = |running: usize, desired: i32, healthy: usize, target_groups: usize| Progress {
            rollout_state: "IN_PROGRESS".into(),
            stage: None,
            groups: None,
            running,
            pending: 0,
            desired,
            healthy,
            target_groups,
            deployments: 2,
            failed: 0,
            max_failed: 2,
        };
        for (progress, want) in [
            (p(2, 2, 2, 1), true),
            (p(2, 2, 1, 1), true),
            (p(1, 2, 1, 1), false),
            (p(2, 2, 0, 0), true),
            (p(0, 0, 0, 0), false),
        ] {
            assert_eq!(progress.nearly_done(), want, "{progress:?}");
        }
    }

    #[test]
    fn max_failed_tasks_is_honoured() {
        let s = snap(
            vec![dep("ours", "PRIMARY", NEW, Some("IN_PROGRESS"), 2)],
            vec![stopped(1, "x"), stopped(2, "y"), stopped(3, "z")],
            vec![],
        );
        let mut w = watched();
        w.max_failed_tasks = 4;
        assert_eq!(kind(&verdict(&s, &w)), "in_progress");
        w.max_failed_tasks = 3;
        assert_eq!(kind(&verdict(&s, &w)), "TasksStopped");
    }

    #[test]
    fn rollback_targets() {
        let ok = rollback_target(&[dep("a", "PRIMARY", OLD, Some("COMPLETED"), 2)]);
        assert_eq!(ok, Ok(OLD.into()));
        assert_eq!(
            rollback_target(&[dep("a", "PRIMARY", OLD, None, 2)]),
            Ok(OLD.into())
        );
        assert!(matches!(
            rollback_target(&[dep("b", "PRIMARY", NEW, Some("IN_PROGRESS"), 2), dep("a", "ACTIVE", OLD, Some("COMPLETED"), 2)]),
            Err(Busy::InProgress { deployment, .. }) if deployment.as_str() == "b"
        ));
        assert!(matches!(
            rollback_target(&[
                dep("b", "PRIMARY", NEW, None, 2),
                dep("a", "ACTIVE", OLD, None, 2)
            ]),
            Err(Busy::InProgress { .. })
        ));
        assert_eq!(
            rollback_target(&[dep("b", "PRIMARY", NEW, Some("FAILED"), 2)]),
            Err(Busy::NoCompleted)
        );
        assert_eq!(rollback_target(&[]), Err(Busy::NoCompleted));
    }

    #[test]
    fn a_read_that_does_not_show_our_new_deployment_yet_is_not_a_rollback() {
        let stale = Snapshot {
            task_definition: OLD.into(),
            desired: 2,
            deployments: vec![DeploymentView {
                id: "ecs-svc/old".into(),
                status: "PRIMARY".into(),
                task_definition: OLD.into(),
                rollout_state: Some("COMPLETED".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        // (never seen for, verdict): within the bound it is in progress; after it, ECS rolled back.
        for (unseen, want) in [
            (Some(Duration::from_secs(1)), "in_progress"),
            (Some(NOT_YET_VISIBLE), "EcsRolledBack"),
            (None, "EcsRolledBack"),
        ] {
            let snapshot = Snapshot {
                ours_unseen_for: unseen,
                ..stale.clone()
            };
            assert_eq!(kind(&verdict(&snapshot, &watched())), want, "{unseen:?}");
        }
    }
}
