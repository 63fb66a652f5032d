//! The tasks of a look: which listings it makes, the tasks never seen described, and the views
//! of the watched deployment's tasks kept (others remembered as foreign, never described again).

use super::task_view::host_ports;
use super::{Counts, Lists, Watcher, full_read_due, lists_needed, looks_since_full_after};
use crate::aws::{Aws, ecs, reads};
use crate::ecs_state::TaskStatus;
use crate::rollout::TaskView;
use crate::target::Target;
use anyhow::{Context, Result};
use aws_sdk_ecs::types::{Deployment, DeploymentRolloutState, DesiredStatus, Service, Task};
use std::collections::HashSet;

impl Watcher {
    /// Whether this look reads everything afresh (`full_read_due`), counting the looks at a
    /// COMPLETED rollout since the last full read.
    pub(super) fn full_read(&mut self, completed: bool) -> bool {
        let full = full_read_due(completed, self.looks_since_full);
        self.looks_since_full = looks_since_full_after(completed, full, self.looks_since_full);
        full
    }

    /// The listings this look makes: both on a full read, else what the counts call for.
    pub(super) fn lists(&self, full: bool, counts: Option<Counts>, live_known: usize) -> Lists {
        match full {
            true => Lists {
                running: true,
                stopped: true,
            },
            false => lists_needed(
                self.counts,
                counts,
                live_known,
                self.listed_at.map(|at| at.elapsed()),
            ),
        }
    }

    /// The listing: ListTasks RUNNING and STOPPED as `lists` says, then DescribeTasks of the
    /// tasks never seen (on a full read, the known ones again too), added to `described`.
    pub(super) async fn describe_unseen(
        &self,
        aws: &Aws,
        target: &Target,
        lists: &Lists,
        full: bool,
        described: &mut Vec<Task>,
    ) -> Result<()> {
        let (running, stopped) = tokio::join!(
            listed(aws, target, lists.running, DesiredStatus::Running),
            listed(aws, target, lists.stopped, DesiredStatus::Stopped),
        );
        // A full read describes the known tasks again too, after the listing.
        let mut seen: HashSet<String> = match full {
            true => HashSet::new(),
            false => self.live.iter().cloned().collect(),
        };
        let unseen: Vec<String> = running?
            .into_iter()
            .chain(stopped?)
            .filter(|a| {
                !self.foreign.contains(a) && !self.stopped.contains_key(a) && seen.insert(a.clone())
            })
            .collect();
        if !unseen.is_empty() {
            // A task described again replaces its first answer of this look.
            described.retain(|t| !t.task_arn().is_some_and(|a| unseen.iter().any(|u| u == a)));
            described.extend(
                reads::tasks(&aws.ecs, &target.cluster, &unseen)
                    .await
                    .with_context(|| {
                        format!(
                            "failed to describe the tasks of service `{}`",
                            target.service
                        )
                    })?,
            );
        }
        Ok(())
    }

    /// The task views of the watched deployment (those seen stopped before, then those described),
    /// and the ARNs of its tasks still alive. Tasks of other deployments are remembered as foreign.
    pub(super) fn task_views(
        &mut self,
        described: &[Task],
        deployment_id: &str,
    ) -> (Vec<TaskView>, Vec<String>) {
        let mut tasks: Vec<TaskView> = self
            .stopped
            .values()
            .filter(|t| t.started_by == deployment_id)
            .cloned()
            .collect();
        let mut live = Vec::new();
        for task in described {
            let view = self.task_view(task);
            if view.started_by != deployment_id {
                // Tasks never change deployments: no need to describe this one again.
                self.foreign.insert(view.arn.clone());
                continue;
            }
            if view.last_status == TaskStatus::Stopped {
                self.stopped.insert(view.arn.clone(), view.clone());
            } else {
                live.push(view.arn.clone());
            }
            tasks.push(view);
        }
        (tasks, live)
    }

    /// The EC2 instance of each task of ours with host ports (bridge/host networking) not known
    /// yet: one DescribeContainerInstances for all of them, each remembered for the watch.
    pub(super) async fn learn_instances(
        &mut self,
        aws: &Aws,
        cluster: &str,
        described: &[aws_sdk_ecs::types::Task],
        deployment_id: &str,
    ) -> Result<()> {
        let mut unknown: Vec<String> = described
            .iter()
            .filter(|t| t.started_by() == Some(deployment_id) && !host_ports(t).is_empty())
            .filter_map(|t| t.container_instance_arn())
            .filter(|arn| !self.instances.contains_key(*arn))
            .map(String::from)
            .collect();
        unknown.sort();
        unknown.dedup();
        if !unknown.is_empty() {
            self.instances
                .extend(ecs::container_instances(aws, cluster, &unknown).await?);
        }
        Ok(())
    }
}

/// The watched deployment's counts; a CODE_DEPLOY service's tasks belong to a task set, not a
/// deployment.
pub(super) fn counts(
    service: &Service,
    ours: Option<&Deployment>,
    deployment_id: &str,
) -> Option<Counts> {
    ours.map(|d| Counts {
        live: d.running_count() + d.pending_count(),
        failed: d.failed_tasks(),
        rollout_failed: d.rollout_state() == Some(&DeploymentRolloutState::Failed),
    })
    .or_else(|| {
        let set = service
            .task_sets()
            .iter()
            .find(|s| s.id() == Some(deployment_id))?;
        Some(Counts {
            live: set.running_count() + set.pending_count(),
            failed: 0,
            rollout_failed: false,
        })
    })
}

/// How many tasks of the watched deployment were described alive (not STOPPED).
pub(super) fn live_known(described: &[Task], deployment_id: &str) -> usize {
    described
        .iter()
        .filter(|t| {
            t.started_by() == Some(deployment_id)
                && t.last_status().map(TaskStatus::from) != Some(TaskStatus::Stopped)
        })
        .count()
}

/// ListTasks of the service when `wanted`, else nothing.
pub(super) async fn listed(
    aws: &Aws,
    target: &Target,
    wanted: bool,
    status: DesiredStatus,
) -> Result<Vec<String>> {
    if !wanted {
        return Ok(Vec::new());
    }
    reads::task_arns(&aws.ecs, &target.cluster, &target.service, status)
        .await
        .with_context(|| format!("failed to list the tasks of service `{}`", target.service))
}
