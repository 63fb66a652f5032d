//! A task as a look sees it (`TaskView`): its status, containers, address and instance, and how
//! long it has been running since a look first saw it run.

use super::Watcher;
use crate::ecs_state::TaskStatus;
use crate::rollout::{ContainerView, TaskView};
use std::time::Instant;

impl Watcher {
    /// The task as the verdict reads it; remembers when a look first saw it run.
    pub(super) fn task_view(&mut self, task: &aws_sdk_ecs::types::Task) -> TaskView {
        let arn = task.task_arn().unwrap_or_default().to_string();
        let last_status = TaskStatus::from(task.last_status().unwrap_or_default());
        let running_for = (last_status == TaskStatus::Running).then(|| {
            self.first_running
                .entry(arn.clone())
                .or_insert_with(Instant::now)
                .elapsed()
        });
        let ip = task
            .attachments()
            .iter()
            .flat_map(|a| a.details())
            .find(|d| d.name() == Some("privateIPv4Address"))
            .and_then(|d| d.value().map(String::from))
            .or_else(|| {
                task.containers()
                    .iter()
                    .flat_map(|c| c.network_interfaces())
                    .find_map(|n| n.private_ipv4_address().map(String::from))
            });
        let subnet = task
            .attachments()
            .iter()
            .flat_map(|a| a.details())
            .find(|d| d.name() == Some("subnetId"))
            .and_then(|d| d.value().map(String::from));
        TaskView {
            zone: task.availability_zone().map(String::from),
            subnet,
            arn,
            started_by: task.started_by().unwrap_or_default().to_string(),
            last_status,
            health_status: task.health_status().map(|h| h.as_str().into()),
            stopped_reason: task
                .stopped_reason()
                .filter(|r| !r.is_empty())
                .map(String::from),
            stop_code: task.stop_code().map(|c| c.as_str().to_string()),
            containers: task
                .containers()
                .iter()
                .map(|c| ContainerView {
                    name: c.name().unwrap_or_default().to_string(),
                    exit_code: c.exit_code(),
                    reason: c.reason().map(String::from),
                    health_status: c.health_status().map(|h| h.as_str().into()),
                })
                .collect(),
            ip,
            instance: task
                .container_instance_arn()
                .and_then(|arn| self.instances.get(arn).cloned()),
            host_ports: host_ports(task),
            running_for,
        }
    }
}

/// The host ports of a task's containers (bridge/host networking; none for awsvpc).
pub(super) fn host_ports(task: &aws_sdk_ecs::types::Task) -> Vec<i32> {
    task.containers()
        .iter()
        .flat_map(|c| c.network_bindings())
        .filter_map(|b| b.host_port())
        .collect()
}
