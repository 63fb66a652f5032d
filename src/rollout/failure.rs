//! How a rollout failed (`Failure`), and the one line each failure says.

use crate::health::TargetView;
use crate::ids::{DeploymentId, TaskDefinitionArn};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Failure {
    /// ECS marked our deployment FAILED (circuit breaker, alarms); `rolling_back_to` when ECS started a rollback.
    RolloutFailed {
        reason: String,
        rolling_back_to: Option<(DeploymentId, TaskDefinitionArn)>,
    },
    /// Our deployment is gone and the service runs the previous task definition again: ECS rolled back.
    EcsRolledBack {
        deployment: Option<DeploymentId>,
        task_definition: TaskDefinitionArn,
    },
    /// Somebody else's deployment replaced ours.
    Superseded {
        deployment: DeploymentId,
        task_definition: TaskDefinitionArn,
    },
    TasksStopped {
        count: usize,
        limit: u32,
    },
    UnhealthyTarget(TargetView),
    /// No load balancer: a container health check of a task of ours said UNHEALTHY.
    UnhealthyContainer {
        task: String,
        container: String,
        check: Option<String>,
    },
    Timeout {
        waited: Duration,
        progress: String,
    },
    Interrupted,
    /// `--smoke-test` did not pass: how it ended, and its last output lines.
    SmokeTest {
        how: String,
        output: Vec<String>,
    },
    /// A CodeDeploy deployment Failed or was Stopped; `rollback` is the deployment CodeDeploy
    /// started to roll it back, if any.
    CodeDeploy {
        status: String,
        reason: String,
        rollback: Option<String>,
    },
    /// A BLUE_GREEN, LINEAR or CANARY service deployment ended, or is ending, other than SUCCESSFUL.
    ServiceDeployment {
        status: String,
        reason: String,
    },
}

impl Failure {
    pub(crate) fn summary(&self) -> String {
        match self {
            Failure::RolloutFailed {
                reason,
                rolling_back_to: Some((_, td)),
            } => {
                format!("ECS marked the deployment FAILED ({reason}) and is rolling back to {td}")
            }
            Failure::RolloutFailed {
                reason,
                rolling_back_to: None,
            } => format!("ECS marked the deployment FAILED: {reason}"),
            Failure::EcsRolledBack {
                task_definition, ..
            } => format!(
                "ECS rolled the deployment back (circuit breaker or deployment alarms): the service runs {task_definition} again"
            ),
            Failure::Superseded {
                deployment,
                task_definition,
            } => {
                format!(
                    "another deployment ({deployment}, {task_definition}) replaced ours while we watched"
                )
            }
            Failure::TasksStopped { count, limit } => {
                format!(
                    "{count} of the new tasks stopped (the limit is {limit}, --max-failed-tasks)"
                )
            }
            Failure::UnhealthyTarget(t) => format!("target {}", t.describe()),
            Failure::UnhealthyContainer {
                task,
                container,
                check,
            } => {
                let check = check
                    .as_ref()
                    .map(|c| format!(" (health check: {c})"))
                    .unwrap_or_default();
                format!("container {container} of task {task} is UNHEALTHY{check}")
            }
            Failure::Timeout { waited, progress } => {
                format!(
                    "the rollout did not finish within {}s ({progress})",
                    waited.as_secs()
                )
            }
            Failure::Interrupted => "interrupted by a signal while watching".to_string(),
            Failure::SmokeTest { how, .. } => format!("the smoke test {how}"),
            Failure::CodeDeploy {
                status,
                reason,
                rollback: Some(by),
            } => format!(
                "the CodeDeploy deployment {status} ({reason}); CodeDeploy rolls it back ({by})"
            ),
            Failure::CodeDeploy { status, reason, .. } => {
                format!("the CodeDeploy deployment {status}: {reason}")
            }
            Failure::ServiceDeployment { status, reason } => match status.as_str() {
                "ROLLBACK_SUCCESSFUL" => format!(
                    "ECS rolled the service deployment back ({reason}): the service runs the previous revision again"
                ),
                "ROLLBACK_REQUESTED" | "ROLLBACK_IN_PROGRESS" => {
                    format!("ECS is rolling the service deployment back ({reason})")
                }
                "STOP_REQUESTED" => format!("the service deployment is being stopped: {reason}"),
                _ => format!("the service deployment ended {status}: {reason}"),
            },
        }
    }
}
