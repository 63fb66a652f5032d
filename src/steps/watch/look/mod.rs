//! One look at a rollout: DescribeServices, the tasks of the watched deployment and the target
//! health, reading only what the last look did not already tell (`lists_needed`, `health_due`).

use crate::aws::Aws;
use crate::aws::{ecs, elb, pace, reads};
use crate::ecs_state::TaskStatus;
use crate::health::{Gate, container_checks};
use crate::ids::ServiceDeploymentArn;
use crate::report::output::Output;
use crate::rollout::{Snapshot, TargetView, TaskView};
use crate::strategy::ServiceDeploymentView;
use crate::target::Target;
use anyhow::{Context, Result};
use aws_sdk_ecs::types::{DeploymentRolloutState, Service, Task};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime};

mod events;
mod plan;
mod task_view;
mod tasks;

use tasks::{counts, live_known};

pub(crate) use plan::{
    Counts, Lists, full_read_due, health_due, lists_needed, looks_since_full_after, same_state,
};

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
        let first = self.first_reads(aws, target).await;
        let service = first.service?;
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
        let mut described = first.known.with_context(|| {
            format!(
                "failed to describe the tasks of service `{}`",
                target.service
            )
        })?;
        let ours = service
            .deployments()
            .iter()
            .find(|d| d.id() == Some(deployment_id));
        let ours_unseen_for = self.ours_unseen_for(ours.is_some());
        let completed =
            ours.is_some_and(|d| d.rollout_state() == Some(&DeploymentRolloutState::Completed));
        let counts = counts(&service, ours, deployment_id);
        let full = self.full_read(completed);
        let lists = self.lists(full, counts, live_known(&described, deployment_id));
        self.describe_unseen(aws, target, &lists, full, &mut described)
            .await?;
        self.learn_instances(aws, &target.cluster, &described, deployment_id)
            .await?;
        let (tasks, live) = self.task_views(&described, deployment_id);
        let any_running = tasks.iter().any(|t| t.last_status == TaskStatus::Running);
        self.read_health(
            aws,
            first.health,
            &target_groups,
            full,
            any_running,
            completed,
        )
        .await?;
        let targets = self.targets.clone();
        self.remember(live, counts, any_running, &target_groups, &lists);
        let gate = match ours.and_then(|d| d.task_definition()) {
            Some(td) if target_groups.is_empty() => self.no_lb_gate(aws, td, out).await?,
            _ if target_groups.is_empty() => Gate::StaysRunning(crate::health::MIN_RUNNING),
            _ => Gate::Targets,
        };
        Ok(Snapshot {
            task_definition: service.task_definition().unwrap_or_default().into(),
            desired: service.desired_count(),
            running: service.running_count(),
            deployments: ecs::deployments(&service),
            tasks,
            target_groups,
            targets,
            health_check_grace: health_check_grace(&service),
            ecs_rolls_back: ecs_rolls_back(&service),
            ours_unseen_for,
            current_service_deployment: service.current_service_deployment().map(String::from),
            codedeploy: None,
            service_deployment: staged,
            gate,
            placement: self.placement(),
            subnets: subnets(&service),
        })
    }

    /// What a look reads first, at once: the service, the tasks of ours already known alive, and
    /// the target health if one of them ran last time. Target groups come from the last look: a
    /// service's load balancers do not change mid-deploy. Only then, if the counts call for it
    /// (`lists_needed`), ListTasks and DescribeTasks for the tasks never seen.
    async fn first_reads(&self, aws: &Aws, target: &Target) -> FirstReads {
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
        FirstReads {
            service,
            known,
            health: HealthRead {
                result: health,
                read: read_health,
                groups: known_groups,
                every,
                since_read,
            },
        }
    }

    /// The health read: afresh on a full read; the one read with the service when the target
    /// groups are those of the last look; else again when due (`health_due`) or when the groups
    /// changed while a task of ours runs. Otherwise the last read stands.
    async fn read_health(
        &mut self,
        aws: &Aws,
        first: HealthRead,
        target_groups: &[String],
        full: bool,
        any_running: bool,
        completed: bool,
    ) -> Result<()> {
        let since_running = self.first_running.values().min().map(|at| at.elapsed());
        if full && !target_groups.is_empty() {
            self.targets = elb::target_health(aws, target_groups).await?;
            self.health_read_at = Some(Instant::now());
        } else if first.read && target_groups == first.groups {
            self.targets = first.result?;
            self.health_read_at = Some(Instant::now());
        } else if health_due(
            any_running,
            completed,
            first.since_read,
            since_running,
            first.every,
        ) || (any_running && target_groups != first.groups)
        {
            self.targets = elb::target_health(aws, target_groups).await?;
            self.health_read_at = Some(Instant::now());
        }
        Ok(())
    }

    /// How long the watched deployment has not been seen since the first look (None once seen).
    fn ours_unseen_for(&mut self, seen_now: bool) -> Option<Duration> {
        let first_look = *self.first_look.get_or_insert_with(Instant::now);
        self.ours_seen |= seen_now;
        (!self.ours_seen).then(|| first_look.elapsed())
    }

    /// What the next look starts from: the tasks alive, the counts, whether one of ours ran, the
    /// target groups, and when the tasks were last listed.
    fn remember(
        &mut self,
        live: Vec<String>,
        counts: Option<Counts>,
        any_running: bool,
        target_groups: &[String],
        lists: &Lists,
    ) {
        self.live = live;
        self.counts = counts;
        self.any_running = any_running;
        self.target_groups = Some(target_groups.to_vec());
        if lists.running || lists.stopped {
            self.listed_at = Some(Instant::now());
        }
    }

    /// The last service event saying ECS could not place a task.
    fn placement(&self) -> Option<String> {
        self.events
            .iter()
            .rev()
            .find(|(_, m)| m.contains("unable to place a task"))
            .map(|(_, m)| m.clone())
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
}

/// What a look reads first (`Watcher::first_reads`), each answer as it came.
struct FirstReads {
    service: Result<Service>,
    known: Result<Vec<Task>>,
    health: HealthRead,
}

/// The target health read with the service, and what decided whether to read it.
struct HealthRead {
    result: Result<Vec<TargetView>>,
    /// Whether it was read: the target groups of the last look, when due.
    read: bool,
    groups: Vec<String>,
    every: Duration,
    since_read: Option<Duration>,
}

/// The service's health check grace period.
fn health_check_grace(service: &Service) -> Duration {
    Duration::from_secs(
        service
            .health_check_grace_period_seconds()
            .unwrap_or(0)
            .max(0) as u64,
    )
}

/// The subnets of the service's awsvpc configuration.
fn subnets(service: &Service) -> Vec<String> {
    service
        .network_configuration()
        .and_then(|n| n.awsvpc_configuration())
        .map(|v| v.subnets().to_vec())
        .unwrap_or_default()
}

/// Whether ECS rolls a failed deployment back itself: the circuit breaker or alarms with rollback.
fn ecs_rolls_back(service: &Service) -> bool {
    let config = service.deployment_configuration();
    config.is_some_and(|c| {
        c.deployment_circuit_breaker()
            .is_some_and(|b| b.enable() && b.rollback())
            || c.alarms().is_some_and(|a| a.enable() && a.rollback())
    })
}
