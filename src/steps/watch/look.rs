//! One look at a rollout: DescribeServices, the tasks of the watched deployment and the target
//! health, reading only what the last look did not already tell (`lists_needed`, `health_due`).

use crate::aws::Aws;
use crate::aws::{ecs, elb, pace, reads};
use crate::ecs_state::TaskStatus;
use crate::health::{Gate, container_checks};
use crate::ids::ServiceDeploymentArn;
use crate::report::output::Output;
use crate::rollout::{ContainerView, Snapshot, TargetView, TaskView};
use crate::strategy::ServiceDeploymentView;
use crate::target::Target;
use anyhow::{Context, Result};
use aws_sdk_ecs::types::{DeploymentRolloutState, DesiredStatus, Service};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime};

/// Remembers what was already described and printed, so each poll asks only for what is new.
#[derive(Default)]
pub(crate) struct Watcher {
    stopped: HashMap<String, TaskView>,
    foreign: HashSet<String>,
    first_running: HashMap<String, Instant>,
    seen_events: HashSet<String>,
    pub(crate) events: Vec<(String, String)>,
    since: Option<SystemTime>,
    target_groups: Option<Vec<String>>,
    /// Tasks of the watched deployment not stopped at the last look: described again each look.
    live: Vec<String>,
    /// The deployment's counts at the last look, and when its tasks were last listed.
    counts: Option<Counts>,
    listed_at: Option<Instant>,
    /// Whether a task of ours ran at the last look: target health is read only then.
    any_running: bool,
    /// The last target health read, and when.
    targets: Vec<TargetView>,
    health_read_at: Option<Instant>,
    /// Looks at a COMPLETED rollout since the last full read (None: none since it said COMPLETED).
    looks_since_full: Option<u32>,
    /// When the first look began, and whether any look has shown the watched deployment.
    first_look: Option<Instant>,
    ours_seen: bool,
    /// A staged deployment's target revision and the target groups its tasks are in.
    green: Option<(String, Vec<String>)>,
    /// The deployment (or CodeDeploy task set) whose tasks the last look kept: `foreign` is about it.
    following: String,
    /// Container instance ARN → EC2 instance id (EC2 bridge/host tasks; never changes for a task).
    instances: HashMap<String, String>,
    /// No load balancer: the gate of each task definition watched, and whether it was said.
    gates: HashMap<String, Gate>,
    gate_said: bool,
}

/// A deployment's counts as DescribeServices gives them: what tells a look whether to list tasks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Counts {
    /// Running and pending tasks.
    pub(crate) live: i32,
    pub(crate) failed: i32,
    pub(crate) rollout_failed: bool,
}

/// Which ListTasks calls a look makes.
#[derive(Debug, PartialEq)]
pub(crate) struct Lists {
    pub(crate) running: bool,
    pub(crate) stopped: bool,
}

/// Pure: whether a look reads target health. Not before a task of ours runs (nothing to match);
/// always once ECS says COMPLETED (the verdict's proof); else when the last read, or the first
/// running task, is `every` old.
pub(crate) fn health_due(
    any_running: bool,
    completed: bool,
    since_read: Option<Duration>,
    since_running: Option<Duration>,
    every: Duration,
) -> bool {
    any_running && (completed || since_read.or(since_running).is_none_or(|d| d >= every))
}

/// A COMPLETED rollout with no verdict yet is read in full at least once in this many looks.
const FULL_EVERY: u32 = 3;

/// Pure: whether this look reads everything afresh: ListTasks RUNNING and STOPPED, DescribeTasks of
/// every task listed (those known too), then target health. The first look that sees COMPLETED does,
/// then every `FULL_EVERY`th look until a verdict, so a skipped listing, a task ECS replaced between
/// looks or an answer that came late can never hold the verdict on a stale read.
pub(crate) fn full_read_due(completed: bool, looks_since_full: Option<u32>) -> bool {
    completed && looks_since_full.is_none_or(|n| n + 1 >= FULL_EVERY)
}

/// Pure: whether two looks saw the same thing; how long tasks have been running does not count,
/// or no look would ever be unchanged and the pause would never grow.
pub(crate) fn same_state(a: &Snapshot, b: &Snapshot) -> bool {
    let still = |s: &Snapshot| {
        let mut s = s.clone();
        s.tasks.iter_mut().for_each(|t| t.running_for = None);
        s
    };
    still(a) == still(b)
}

/// Every task is listed again this often, whatever the counts say.
const RELIST: Duration = Duration::from_secs(10);

/// Pure: the listings a look needs, given the deployment's counts at the last look and now, how
/// many of its tasks are known alive (described this look), and how long since the last listing.
/// Tasks already known are described each look, so a listing is needed only for tasks never seen:
/// RUNNING when ECS counts more than are known, STOPPED when one failed or left between two looks.
pub(crate) fn lists_needed(
    before: Option<Counts>,
    now: Option<Counts>,
    live_known: usize,
    since_listed: Option<Duration>,
) -> Lists {
    let Some(now) = now else {
        // The deployment is gone (rolled back, superseded): the report wants every task it had.
        return Lists {
            running: true,
            stopped: true,
        };
    };
    let stale = since_listed.is_some_and(|d| d >= RELIST);
    if now.rollout_failed || stale {
        return Lists {
            running: true,
            stopped: true,
        };
    }
    Lists {
        running: now.live.max(0) as usize > live_known,
        stopped: match before {
            None => now.failed > 0,
            Some(b) => now.failed != b.failed || now.live < b.live,
        },
    }
}

impl Watcher {
    /// Prints only events after `since`, and never those in `already_seen` (ids read before the deploy,
    /// which guards against clock skew between this machine and ECS).
    pub(crate) fn new(since: SystemTime, already_seen: HashSet<String>) -> Watcher {
        Watcher {
            since: Some(since - Duration::from_secs(5)),
            seen_events: already_seen,
            ..Default::default()
        }
    }

    /// The ids of every event printed or skipped so far, to hand on to the next watch.
    pub(crate) fn seen_events(&self) -> HashSet<String> {
        self.seen_events.clone()
    }

    /// Prints the service events that are new since the watch began, oldest first.
    fn print_events(&mut self, service: &Service, out: &Output) {
        let mut fresh: Vec<(aws_sdk_ecs::primitives::DateTime, String, String)> = Vec::new();
        for event in service.events() {
            let id = event.id().unwrap_or_default().to_string();
            let Some(at) = event.created_at() else {
                continue;
            };
            let after_start = self
                .since
                .is_none_or(|since| SystemTime::try_from(*at).is_ok_and(|t| t >= since));
            if after_start && self.seen_events.insert(id.clone()) {
                fresh.push((*at, id, event.message().unwrap_or_default().to_string()));
            }
        }
        fresh.sort_by(|a, b| {
            a.0.secs()
                .cmp(&b.0.secs())
                .then(a.0.subsec_nanos().cmp(&b.0.subsec_nanos()))
        });
        for (at, _, message) in fresh {
            let at = at
                .fmt(aws_sdk_ecs::primitives::DateTimeFormat::DateTime)
                .unwrap_or_default();
            out.service_event(&at, &message);
            self.events.push((at, message));
        }
    }

    /// One look at the service, its tasks of `deployment_id` and its target groups; with a
    /// `service_deployment` (BLUE_GREEN, LINEAR, CANARY) that deployment too, and the target groups
    /// its new revision's tasks are in (green), not the service's configured ones.
    pub(crate) async fn snapshot(
        &mut self,
        aws: &Aws,
        target: &Target,
        (deployment_id, service_deployment): (&str, Option<&ServiceDeploymentArn>),
        out: &Output,
    ) -> Result<Snapshot> {
        // First, at once: the service, the tasks of ours already known alive, and the target health
        // if one of them ran last time. Target groups come from the last look: a service's load
        // balancers do not change mid-deploy. Then, only if the counts call for it (`lists_needed`),
        // ListTasks and DescribeTasks for the tasks never seen.
        let known_groups = self.target_groups.clone().unwrap_or_default();
        let every = pace::target_health_every(&known_groups);
        let since_running = self.first_running.values().min().map(|at| at.elapsed());
        let since_read = self.health_read_at.map(|at| at.elapsed());
        let read_health = !known_groups.is_empty()
            && health_due(self.any_running, false, since_read, since_running, every);
        let (service, known, health) = tokio::join!(
            ecs::describe_service(aws, target),
            reads::tasks(&aws.ecs, &target.cluster, &self.live),
            async {
                match read_health {
                    true => elb::target_health(aws, &known_groups).await,
                    false => Ok(Vec::new()),
                }
            },
        );
        let service = service?;
        if self.following != deployment_id {
            // Whose tasks are ours changed (a CodeDeploy task set appeared): forget the others.
            self.foreign.clear();
            self.following = deployment_id.to_string();
        }
        self.print_events(&service, out);
        let staged = match service_deployment {
            Some(arn) => ecs::describe_service_deployment(aws, arn.as_str()).await?,
            None => None,
        };
        let target_groups = self
            .target_groups_now(aws, &service, staged.as_ref())
            .await?;
        let mut described = known.with_context(|| {
            format!(
                "failed to describe the tasks of service `{}`",
                target.service
            )
        })?;
        let ours = service
            .deployments()
            .iter()
            .find(|d| d.id() == Some(deployment_id));
        let first_look = *self.first_look.get_or_insert_with(Instant::now);
        self.ours_seen |= ours.is_some();
        let ours_unseen_for = (!self.ours_seen).then(|| first_look.elapsed());
        let completed =
            ours.is_some_and(|d| d.rollout_state() == Some(&DeploymentRolloutState::Completed));
        let counts = ours
            .map(|d| Counts {
                live: d.running_count() + d.pending_count(),
                failed: d.failed_tasks(),
                rollout_failed: d.rollout_state() == Some(&DeploymentRolloutState::Failed),
            })
            // A CODE_DEPLOY service's tasks belong to a task set, not a deployment.
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
            });
        let live_known = described
            .iter()
            .filter(|t| {
                t.started_by() == Some(deployment_id)
                    && t.last_status().map(TaskStatus::from) != Some(TaskStatus::Stopped)
            })
            .count();
        let full = full_read_due(completed, self.looks_since_full);
        self.looks_since_full = match (completed, full) {
            (false, _) => None,
            (true, true) => Some(0),
            (true, false) => self.looks_since_full.map(|n| n + 1),
        };
        let lists = match full {
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
        };
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
        self.learn_instances(aws, &target.cluster, &described, deployment_id)
            .await?;
        let mut tasks: Vec<TaskView> = self
            .stopped
            .values()
            .filter(|t| t.started_by == deployment_id)
            .cloned()
            .collect();
        let mut live = Vec::new();
        for task in &described {
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
        let any_running = tasks.iter().any(|t| t.last_status == TaskStatus::Running);
        let since_running = self.first_running.values().min().map(|at| at.elapsed());
        if full && !target_groups.is_empty() {
            self.targets = elb::target_health(aws, &target_groups).await?;
            self.health_read_at = Some(Instant::now());
        } else if read_health && target_groups == known_groups {
            self.targets = health?;
            self.health_read_at = Some(Instant::now());
        } else if health_due(any_running, completed, since_read, since_running, every)
            || (any_running && target_groups != known_groups)
        {
            self.targets = elb::target_health(aws, &target_groups).await?;
            self.health_read_at = Some(Instant::now());
        }
        let targets = self.targets.clone();
        self.live = live;
        self.counts = counts;
        self.any_running = any_running;
        self.target_groups = Some(target_groups.clone());
        if lists.running || lists.stopped {
            self.listed_at = Some(Instant::now());
        }
        let gate = match ours.and_then(|d| d.task_definition()) {
            Some(td) if target_groups.is_empty() => self.no_lb_gate(aws, td, out).await?,
            _ if target_groups.is_empty() => Gate::StaysRunning(crate::health::MIN_RUNNING),
            _ => Gate::Targets,
        };
        let placement = self
            .events
            .iter()
            .rev()
            .find(|(_, m)| m.contains("unable to place a task"))
            .map(|(_, m)| m.clone());
        let config = service.deployment_configuration();
        let ecs_rolls_back = config.is_some_and(|c| {
            c.deployment_circuit_breaker()
                .is_some_and(|b| b.enable() && b.rollback())
                || c.alarms().is_some_and(|a| a.enable() && a.rollback())
        });
        Ok(Snapshot {
            task_definition: service.task_definition().unwrap_or_default().into(),
            desired: service.desired_count(),
            running: service.running_count(),
            deployments: ecs::deployments(&service),
            tasks,
            target_groups,
            targets,
            health_check_grace: Duration::from_secs(
                service
                    .health_check_grace_period_seconds()
                    .unwrap_or(0)
                    .max(0) as u64,
            ),
            ecs_rolls_back,
            ours_unseen_for,
            current_service_deployment: service.current_service_deployment().map(String::from),
            codedeploy: None,
            service_deployment: staged,
            gate,
            placement,
            subnets: service
                .network_configuration()
                .and_then(|n| n.awsvpc_configuration())
                .map(|v| v.subnets().to_vec())
                .unwrap_or_default(),
        })
    }

    /// The target groups whose health decides: a staged deployment's green groups (the target
    /// revision's resolved configuration, read once), else the service's configured ones.
    async fn target_groups_now(
        &mut self,
        aws: &Aws,
        service: &Service,
        staged: Option<&ServiceDeploymentView>,
    ) -> Result<Vec<String>> {
        if let Some(revision) = staged.and_then(|s| s.target_revision.as_deref()) {
            if self.green.as_ref().is_none_or(|(r, _)| r != revision) {
                let groups = ecs::revision_target_groups(aws, revision).await?;
                self.green = Some((revision.to_string(), groups));
            }
            if let Some((_, groups)) = self.green.as_ref().filter(|(_, g)| !g.is_empty()) {
                return Ok(groups.clone());
            }
        }
        Ok(service
            .load_balancers()
            .iter()
            .filter_map(|lb| lb.target_group_arn().map(String::from))
            .collect())
    }

    /// The EC2 instance of each task of ours with host ports (bridge/host networking) not known
    /// yet: one DescribeContainerInstances for all of them, each remembered for the watch.
    async fn learn_instances(
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

    /// A service with no load balancer gates on its task definition's container health checks,
    /// else on tasks staying RUNNING (read once per task definition, said once per watch).
    async fn no_lb_gate(&mut self, aws: &Aws, task_definition: &str, out: &Output) -> Result<Gate> {
        if !self.gates.contains_key(task_definition) {
            let td = ecs::describe_task_definition(aws, task_definition).await?;
            let gate = Gate::of(&[], container_checks(&td));
            self.gates.insert(task_definition.to_string(), gate);
        }
        let gate = self.gates[task_definition].clone();
        if !self.gate_said {
            self.gate_said = true;
            if let Some(line) = gate.announce() {
                out.info(&line);
            }
        }
        Ok(gate)
    }

    fn task_view(&mut self, task: &aws_sdk_ecs::types::Task) -> TaskView {
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
fn host_ports(task: &aws_sdk_ecs::types::Task) -> Vec<i32> {
    task.containers()
        .iter()
        .flat_map(|c| c.network_bindings())
        .filter_map(|b| b.host_port())
        .collect()
}

/// ListTasks of the service when `wanted`, else nothing.
async fn listed(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_look_is_unchanged_however_long_its_tasks_have_run() {
        let task = |status: &str, secs| TaskView {
            arn: "t1".into(),
            last_status: status.into(),
            running_for: Some(Duration::from_secs(secs)),
            ..Default::default()
        };
        let look = |t| Snapshot {
            tasks: vec![t],
            ..Default::default()
        };
        assert!(same_state(
            &look(task("RUNNING", 1)),
            &look(task("RUNNING", 9))
        ));
        assert!(!same_state(
            &look(task("RUNNING", 1)),
            &look(task("STOPPED", 1))
        ));
    }

    #[test]
    fn target_health_is_read_when_a_decision_needs_it() {
        let s = |n| Some(Duration::from_millis(n));
        let every = Duration::from_millis(3800);
        for (running, completed, since_read, since_running, every, due, why) in [
            (
                false,
                true,
                None,
                None,
                every,
                false,
                "no task of ours runs: nothing to match",
            ),
            (
                true,
                false,
                None,
                s(10),
                Duration::ZERO,
                true,
                "alone, every look reads",
            ),
            (
                true,
                false,
                s(250),
                s(900),
                Duration::ZERO,
                true,
                "alone, every look reads",
            ),
            (
                true,
                false,
                None,
                s(10),
                every,
                false,
                "sharing the rate: not at once",
            ),
            (
                true,
                false,
                None,
                s(3800),
                every,
                true,
                "sharing the rate: once the share is due",
            ),
            (
                true,
                false,
                s(1000),
                s(9000),
                every,
                false,
                "read a second ago",
            ),
            (
                true,
                true,
                s(10),
                s(9000),
                every,
                true,
                "ECS says COMPLETED: the proof is read now",
            ),
        ] {
            assert_eq!(
                health_due(running, completed, since_read, since_running, every),
                due,
                "{why}"
            );
        }
    }

    #[test]
    fn a_completed_rollout_is_read_in_full_every_few_looks() {
        for (completed, since_full, due, why) in [
            (
                false,
                None,
                false,
                "in progress: the counts decide what is read",
            ),
            (true, None, true, "the first look that sees COMPLETED"),
            (true, Some(0), false, "read in full at the last look"),
            (
                true,
                Some(2),
                true,
                "the third look since: read in full again",
            ),
            (true, Some(1), false, "two looks since"),
            (true, Some(7), true, "however the counts and pacing went"),
            (false, Some(1), false, "no longer COMPLETED"),
        ] {
            assert_eq!(full_read_due(completed, since_full), due, "{why}");
        }
        // Whatever the pacing, no more than FULL_EVERY looks at COMPLETED go without a full read.
        let mut since = None;
        let mut gap = 0;
        for _ in 0..20 {
            let full = full_read_due(true, since);
            since = match full {
                true => Some(0),
                false => since.map(|n: u32| n + 1),
            };
            gap = if full { 0 } else { gap + 1 };
            assert!(gap < FULL_EVERY);
        }
    }

    #[test]
    fn a_look_lists_tasks_only_for_tasks_never_seen() {
        let c = |live, failed| {
            Some(Counts {
                live,
                failed,
                rollout_failed: false,
            })
        };
        let secs = |s| Some(Duration::from_secs(s));
        let both = Lists {
            running: true,
            stopped: true,
        };
        let none = Lists {
            running: false,
            stopped: false,
        };
        let running = Lists {
            running: true,
            stopped: false,
        };
        let stopped = Lists {
            running: false,
            stopped: true,
        };
        for (before, now, known, since, want, why) in [
            (
                None,
                c(0, 0),
                0,
                None,
                &none,
                "a new deployment with no task yet",
            ),
            (
                None,
                c(2, 0),
                0,
                None,
                &running,
                "ECS counts two tasks never seen",
            ),
            (
                c(2, 0),
                c(2, 0),
                2,
                secs(1),
                &none,
                "every task is known: describing them is enough",
            ),
            (c(2, 0), c(3, 0), 2, secs(1), &running, "one more task"),
            (
                c(2, 0),
                c(2, 1),
                2,
                secs(1),
                &stopped,
                "a task failed between two looks",
            ),
            (
                c(2, 1),
                c(2, 0),
                2,
                secs(1),
                &stopped,
                "failedTasks went back (ECS counts consecutive failures)",
            ),
            (
                c(2, 0),
                c(1, 0),
                1,
                secs(1),
                &stopped,
                "a task left between two looks",
            ),
            (
                c(2, 0),
                c(2, 0),
                1,
                secs(1),
                &running,
                "a known task stopped and ECS already counts its replacement",
            ),
            (
                None,
                c(0, 2),
                0,
                None,
                &stopped,
                "tasks failed before the first look",
            ),
            (
                c(2, 0),
                c(2, 0),
                2,
                secs(10),
                &both,
                "ten seconds since the last listing",
            ),
            (
                c(2, 0),
                None,
                2,
                secs(1),
                &both,
                "the deployment is gone: the report wants all its tasks",
            ),
            (
                c(2, 0),
                Some(Counts {
                    live: 2,
                    failed: 0,
                    rollout_failed: true,
                }),
                2,
                secs(1),
                &both,
                "the rollout failed",
            ),
        ] {
            assert_eq!(&lists_needed(before, now, known, since), want, "{why}");
        }
    }
}
