//! Whether a task of ours is healthy, or has failed, whatever the shape of the service: ip targets
//! (awsvpc), instance targets (EC2 bridge or host networking: `instanceId:hostPort`), behind an ALB
//! or an NLB alike, and no load balancer at all (container health checks, or RUNNING for a while).
//! Pure: every shape is a table row in the tests below.

use crate::ecs_state::{HealthStatus, TargetState, TaskStatus};
use crate::task_definition::TaskDefinition;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ContainerView {
    pub(crate) name: String,
    pub(crate) exit_code: Option<i32>,
    pub(crate) reason: Option<String>,
    /// The container's health check verdict (None or UNKNOWN without a check).
    pub(crate) health_status: Option<HealthStatus>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct TaskView {
    pub(crate) arn: String,
    pub(crate) started_by: String,
    pub(crate) last_status: TaskStatus,
    pub(crate) health_status: Option<HealthStatus>,
    pub(crate) stopped_reason: Option<String>,
    pub(crate) stop_code: Option<String>,
    pub(crate) containers: Vec<ContainerView>,
    /// awsvpc: the task's own IP, its target id in ip target groups.
    pub(crate) ip: Option<String>,
    /// EC2 bridge/host networking: the EC2 instance it runs on and its containers' host ports;
    /// its targets in instance target groups are `instance:port`.
    pub(crate) instance: Option<String>,
    pub(crate) host_ports: Vec<i32>,
    /// How long the task has been RUNNING when the snapshot was taken.
    pub(crate) running_for: Option<Duration>,
    /// Where it runs: its availability zone, and its subnet (awsvpc).
    pub(crate) zone: Option<String>,
    pub(crate) subnet: Option<String>,
}

impl TaskView {
    pub(crate) fn id(&self) -> &str {
        self.arn.rsplit('/').next().unwrap_or(&self.arn)
    }

    /// Stopped by ECS because a newer deployment replaced it: not a failure of this task.
    fn scaled_in(&self) -> bool {
        self.stopped_reason
            .as_deref()
            .is_some_and(|r| r.starts_with("Scaling activity initiated by"))
    }

    pub(crate) fn failed(&self) -> bool {
        self.last_status == TaskStatus::Stopped && !self.scaled_in()
    }

    /// Whether this target is this task: its IP (awsvpc, the ip path even on EC2), else its
    /// instance with one of its host ports.
    pub(crate) fn owns(&self, target: &TargetView) -> bool {
        match (&self.ip, &self.instance) {
            (Some(ip), _) => &target.id == ip,
            (None, Some(instance)) => {
                &target.id == instance && target.port.is_some_and(|p| self.host_ports.contains(&p))
            }
            (None, None) => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct TargetView {
    pub(crate) target_group: String,
    pub(crate) id: String,
    pub(crate) port: Option<i32>,
    pub(crate) state: TargetState,
    pub(crate) reason: Option<String>,
    pub(crate) description: Option<String>,
}

impl TargetView {
    /// `10.0.1.17:8080 in web-tg: unhealthy (Target.ResponseCodeMismatch: Health checks failed …)`
    pub(crate) fn describe(&self) -> String {
        let reason = match (&self.reason, &self.description) {
            (Some(r), Some(d)) => format!(" ({r}: {d})"),
            (Some(r), None) => format!(" ({r})"),
            (None, Some(d)) => format!(" ({d})"),
            (None, None) => String::new(),
        };
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        format!(
            "{}{port} in {}: {}{reason}",
            self.id,
            self.target_group_name(),
            self.state
        )
    }

    pub(crate) fn target_group_name(&self) -> &str {
        // arn:…:targetgroup/NAME/ID
        self.target_group
            .split('/')
            .nth(1)
            .unwrap_or(&self.target_group)
    }
}

/// How long a task of a service with no load balancer and no container health check must stay
/// RUNNING before it counts as healthy: long enough for a process that dies at start-up (a bad
/// config, a missing secret, a failed connection) to have died.
pub(crate) const MIN_RUNNING: Duration = Duration::from_secs(10);

/// What a new task must show to count as healthy.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) enum Gate {
    /// Healthy in every target group of the service (ALB or NLB; ip or instance targets).
    #[default]
    Targets,
    /// No load balancer; these containers have a `healthCheck` (name, command): the task's
    /// healthStatus HEALTHY.
    ContainerChecks(Vec<(String, String)>),
    /// No load balancer, no health check: RUNNING for the whole of this period.
    StaysRunning(Duration),
}

impl Gate {
    /// The gate of a service: its target groups, else its task definition's container checks.
    pub(crate) fn of(target_groups: &[String], checks: Vec<(String, String)>) -> Gate {
        match (target_groups.is_empty(), checks.is_empty()) {
            (false, _) => Gate::Targets,
            (true, false) => Gate::ContainerChecks(checks),
            (true, true) => Gate::StaysRunning(MIN_RUNNING),
        }
    }

    /// The line said once when the gate is not target health.
    pub(crate) fn announce(&self) -> Option<String> {
        match self {
            Gate::Targets => None,
            Gate::ContainerChecks(_) => {
                Some("no load balancer: gating on container health checks".into())
            }
            Gate::StaysRunning(d) => Some(format!(
                "no load balancer and no container health check: gating on tasks staying RUNNING for {} s",
                d.as_secs()
            )),
        }
    }
}

/// The containers of a task definition that have a `healthCheck`, with its command.
pub(crate) fn container_checks(td: &TaskDefinition) -> Vec<(String, String)> {
    td.0["containerDefinitions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let command = c["healthCheck"]["command"].as_array()?;
            let words: Vec<&str> = command.iter().filter_map(|w| w.as_str()).collect();
            Some((c["name"].as_str()?.to_string(), words.join(" ")))
        })
        .collect()
}

/// What a look says about health: the gate and what the load balancer reported.
pub(crate) struct Health<'a> {
    pub(crate) gate: &'a Gate,
    pub(crate) target_groups: &'a [String],
    pub(crate) targets: &'a [TargetView],
    pub(crate) grace: Duration,
}

/// Why a running task of ours failed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Sick {
    Target(TargetView),
    Container {
        task: String,
        container: String,
        check: Option<String>,
    },
}

/// True when this running task passes the gate.
pub(crate) fn task_healthy(h: &Health, task: &TaskView) -> bool {
    if task.health_status == Some(HealthStatus::Unhealthy) {
        return false;
    }
    match h.gate {
        // A task with neither an IP nor an instance binding matches no target: never healthy.
        Gate::Targets => h.target_groups.iter().all(|tg| {
            h.targets
                .iter()
                .any(|t| &t.target_group == tg && task.owns(t) && t.state == TargetState::Healthy)
        }),
        Gate::ContainerChecks(_) => task.health_status == Some(HealthStatus::Healthy),
        Gate::StaysRunning(min) => task.running_for.is_some_and(|d| d >= *min),
    }
}

/// Fail-fast for a running task of ours past the health-check grace period: a target of its
/// unhealthy (with the ELB's reason), or a container health check UNHEALTHY.
pub(crate) fn task_sick(h: &Health, task: &TaskView) -> Option<Sick> {
    if task.running_for.is_none_or(|d| d < h.grace) {
        return None;
    }
    if let Some(t) = h
        .targets
        .iter()
        .find(|t| task.owns(t) && t.state == TargetState::Unhealthy)
    {
        return Some(Sick::Target(t.clone()));
    }
    if task.health_status != Some(HealthStatus::Unhealthy) || *h.gate == Gate::Targets {
        return None;
    }
    let container = task
        .containers
        .iter()
        .find(|c| c.health_status == Some(HealthStatus::Unhealthy))
        .map(|c| c.name.clone())
        .unwrap_or_else(|| "?".into());
    let check = match h.gate {
        Gate::ContainerChecks(checks) => checks
            .iter()
            .find(|(name, _)| *name == container)
            .map(|(_, command)| command.clone()),
        _ => None,
    };
    Some(Sick::Container {
        task: task.id().to_string(),
        container,
        check,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TG: &str = "arn:targetgroup/web-tg/1";

    fn ip_task() -> TaskView {
        TaskView {
            arn: "arn:task/c/1".into(),
            last_status: TaskStatus::Running,
            ip: Some("10.0.0.1".into()),
            running_for: Some(Duration::from_secs(60)),
            ..Default::default()
        }
    }

    fn instance_task(ports: &[i32]) -> TaskView {
        TaskView {
            ip: None,
            instance: Some("i-1".into()),
            host_ports: ports.to_vec(),
            ..ip_task()
        }
    }

    fn bare_task() -> TaskView {
        TaskView {
            ip: None,
            ..ip_task()
        }
    }

    fn target(id: &str, port: i32, state: &str) -> TargetView {
        TargetView {
            target_group: TG.into(),
            id: id.into(),
            port: Some(port),
            state: state.into(),
            reason: Some("Target.FailedHealthChecks".into()),
            ..Default::default()
        }
    }

    fn checked(status: &str) -> TaskView {
        TaskView {
            health_status: Some(status.into()),
            containers: vec![ContainerView {
                name: "web".into(),
                health_status: Some(status.into()),
                ..Default::default()
            }],
            ip: None,
            ..ip_task()
        }
    }

    fn running_for(secs: u64) -> TaskView {
        TaskView {
            running_for: Some(Duration::from_secs(secs)),
            ..bare_task()
        }
    }

    #[test]
    fn every_shape_of_service() {
        let groups = vec![TG.to_string()];
        let checks =
            Gate::ContainerChecks(vec![("web".into(), "CMD-SHELL curl -f /health".into())]);
        let stays = Gate::StaysRunning(MIN_RUNNING);
        #[rustfmt::skip]
        type Case<'a> = (&'a str, &'a Gate, Vec<TargetView>, TaskView, bool, Option<&'a str>);
        let cases: Vec<Case> = vec![
            (
                "ip target healthy",
                &Gate::Targets,
                vec![target("10.0.0.1", 8080, "healthy")],
                ip_task(),
                true,
                None,
            ),
            (
                "ip target initial",
                &Gate::Targets,
                vec![target("10.0.0.1", 8080, "initial")],
                ip_task(),
                false,
                None,
            ),
            (
                "ip target unhealthy",
                &Gate::Targets,
                vec![target("10.0.0.1", 8080, "unhealthy")],
                ip_task(),
                false,
                Some("target"),
            ),
            (
                "another ip unhealthy",
                &Gate::Targets,
                vec![
                    target("10.0.0.1", 8080, "healthy"),
                    target("10.0.0.9", 8080, "unhealthy"),
                ],
                ip_task(),
                true,
                None,
            ),
            (
                "instance target healthy on our host port",
                &Gate::Targets,
                vec![target("i-1", 32768, "healthy")],
                instance_task(&[32768]),
                true,
                None,
            ),
            (
                "instance healthy on another task's port",
                &Gate::Targets,
                vec![target("i-1", 32769, "healthy")],
                instance_task(&[32768]),
                false,
                None,
            ),
            (
                "another task on our instance unhealthy",
                &Gate::Targets,
                vec![
                    target("i-1", 32768, "healthy"),
                    target("i-1", 32769, "unhealthy"),
                ],
                instance_task(&[32768]),
                true,
                None,
            ),
            (
                "instance target unhealthy on our port",
                &Gate::Targets,
                vec![target("i-1", 32768, "unhealthy")],
                instance_task(&[32768]),
                false,
                Some("target"),
            ),
            (
                "host networking: host port = container port",
                &Gate::Targets,
                vec![target("i-1", 8080, "healthy")],
                instance_task(&[8080]),
                true,
                None,
            ),
            (
                "another instance on our port",
                &Gate::Targets,
                vec![target("i-2", 8080, "healthy")],
                instance_task(&[8080]),
                false,
                None,
            ),
            (
                "neither IP nor instance: never silently healthy",
                &Gate::Targets,
                vec![target("10.0.0.1", 8080, "healthy")],
                bare_task(),
                false,
                None,
            ),
            (
                "awsvpc on EC2 keeps the ip path",
                &Gate::Targets,
                vec![target("10.0.0.1", 8080, "healthy")],
                TaskView {
                    instance: Some("i-1".into()),
                    ..ip_task()
                },
                true,
                None,
            ),
            (
                "no LB, check HEALTHY",
                &checks,
                vec![],
                checked("HEALTHY"),
                true,
                None,
            ),
            (
                "no LB, check UNKNOWN yet",
                &checks,
                vec![],
                checked("UNKNOWN"),
                false,
                None,
            ),
            (
                "no LB, check UNHEALTHY",
                &checks,
                vec![],
                checked("UNHEALTHY"),
                false,
                Some("container"),
            ),
            (
                "no LB, no check, RUNNING 10 s",
                &stays,
                vec![],
                running_for(10),
                true,
                None,
            ),
            (
                "no LB, no check, RUNNING 9 s",
                &stays,
                vec![],
                running_for(9),
                false,
                None,
            ),
        ];
        for (name, gate, targets, task, healthy, sick) in cases {
            let h = Health {
                gate,
                target_groups: if *gate == Gate::Targets { &groups } else { &[] },
                targets: &targets,
                grace: Duration::from_secs(30),
            };
            assert_eq!(task_healthy(&h, &task), healthy, "{name}: healthy");
            let got = task_sick(&h, &task).map(|s| match s {
                Sick::Target(_) => "target",
                Sick::Container { .. } => "container",
            });
            assert_eq!(got, sick, "{name}: sick");
        }
    }

    #[test]
    fn an_unhealthy_container_names_its_check_and_waits_out_the_grace_period() {
        let gate = Gate::ContainerChecks(vec![("web".into(), "CMD-SHELL curl -f /health".into())]);
        let mut h = Health {
            gate: &gate,
            target_groups: &[],
            targets: &[],
            grace: Duration::from_secs(120),
        };
        assert_eq!(task_sick(&h, &checked("UNHEALTHY")), None);
        h.grace = Duration::ZERO;
        assert_eq!(
            task_sick(&h, &checked("UNHEALTHY")),
            Some(Sick::Container {
                task: "1".into(),
                container: "web".into(),
                check: Some("CMD-SHELL curl -f /health".into()),
            })
        );
    }

    #[test]
    fn container_checks_are_read_from_the_task_definition() {
        let td = TaskDefinition(serde_json::json!({"containerDefinitions": [
            {"name": "web", "healthCheck": {"command": ["CMD-SHELL", "curl -f localhost/health"]}},
            {"name": "log"}
        ]}));
        assert_eq!(
            container_checks(&td),
            vec![(
                "web".to_string(),
                "CMD-SHELL curl -f localhost/health".to_string()
            )]
        );
    }

    #[test]
    fn the_gate_follows_the_service() {
        let tg = vec![TG.to_string()];
        let check = vec![("web".to_string(), "CMD true".to_string())];
        assert_eq!(Gate::of(&tg, check.clone()), Gate::Targets);
        assert_eq!(Gate::of(&[], check.clone()), Gate::ContainerChecks(check));
        assert_eq!(Gate::of(&[], vec![]), Gate::StaysRunning(MIN_RUNNING));
        assert_eq!(Gate::Targets.announce(), None);
        assert_eq!(
            Gate::StaysRunning(MIN_RUNNING).announce().as_deref(),
            Some(
                "no load balancer and no container health check: gating on tasks staying RUNNING for 10 s"
            )
        );
    }
}
