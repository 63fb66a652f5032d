//! Pre-flight, all reads: the files and flags checked, what runs now recorded (the exact rollback
//! target), the service checked ready for a deploy (ACTIVE, ECS controller, no deployment in
//! progress unless `--wait-for-idle`), and the new task definition built. Nothing here writes.

use crate::aws::{Aws, ecs};
use crate::codedeploy;
use crate::config::DeployConfig;
use crate::ecs_state::{DeploymentStatus, Status};
use crate::ids::{DeploymentId, TaskDefinitionArn};
use crate::report::output::Output;
use crate::rollout::{self, Busy};
use crate::service_definition::ServiceDefinition;
use crate::signal::{Interrupt, Stop, Wait};
use crate::strategy::Shape;
use crate::target::Target;
use crate::task_definition::TaskDefinition;
use anyhow::{Result, bail};
use aws_sdk_ecs::types::Service;
use std::collections::HashSet;
use std::time::Duration;

/// What runs now, recorded before any write: the exact rollback target.
pub(crate) struct Live {
    pub(crate) task_definition_arn: TaskDefinitionArn,
    pub(crate) task_definition: TaskDefinition,
    /// Ids of the service events that happened before this deploy.
    pub(crate) event_ids: HashSet<String>,
    /// How the service rolls out (ROLLING, BLUE_GREEN, LINEAR, CANARY; its hooks).
    pub(crate) shape: Shape,
    /// The PRIMARY deployment pre-flight saw: UpdateService is refused if it is no longer PRIMARY.
    pub(crate) primary: Option<DeploymentId>,
}

/// What the deploy starts from, read before any write.
pub(crate) struct Prepared {
    /// What runs now (the rollback target); None when the service is to be created.
    pub(crate) live: Option<Live>,
    pub(crate) new: TaskDefinition,
    /// `--create-missing` and the service does not exist: what to create.
    pub(crate) create: Option<Creation>,
}

pub(crate) struct Creation {
    pub(crate) cluster: bool,
    pub(crate) definition: ServiceDefinition,
}

/// Everything up to the first write: read what runs, build the new task definition, compare.
pub(crate) async fn prepare(
    cfg: &DeployConfig,
    aws: &Aws,
    out: &Output,
    interrupt: &Interrupt,
) -> anyhow::Result<Prepared> {
    out.step(&format!(
        "checking service `{}` in cluster `{}`",
        cfg.target.service, cfg.target.cluster
    ));
    // A bad file or flag is refused before AWS is asked anything.
    let file = cfg
        .task_definition_file
        .as_deref()
        .map(TaskDefinition::load)
        .transpose()?;
    let definition = cfg
        .service_definition
        .as_deref()
        .map(|path| ServiceDefinition::load(path, &cfg.target))
        .transpose()?;
    if cfg.create_missing {
        let missing = missing(aws, &cfg.target).await?;
        if missing.service {
            return to_create(cfg, &missing, definition, file, out);
        }
    }
    let live = live(
        aws,
        &cfg.target,
        cfg.wait_for_idle,
        &Wait::new(cfg.timeout, interrupt, interrupt.count()),
        out,
    )
    .await?;
    out.info(&format!(
        "running now: {} (the rollback target)",
        live.task_definition_arn
    ));
    if live.shape.staged() {
        out.info(&format!("deploys as: {}", live.shape.describe()));
    }
    live.shape
        .check(cfg.until.as_deref(), cfg.smoke_test.is_some())
        .map_err(|why| anyhow::anyhow!("service `{}`: {why}", cfg.target.service))?;
    let source = file.unwrap_or_else(|| live.task_definition.clone());
    let new = source.apply(&cfg.images, &cfg.envs)?;
    check_run_task(cfg, &new)?;
    Ok(Prepared {
        live: Some(live),
        new,
        create: None,
    })
}

/// `--create-missing` and the service (or its cluster) does not exist: what to create, from the
/// service definition and the task definition files, both required.
fn to_create(
    cfg: &DeployConfig,
    missing: &Missing,
    definition: Option<ServiceDefinition>,
    file: Option<TaskDefinition>,
    out: &Output,
) -> Result<Prepared> {
    let what = if missing.cluster {
        format!("cluster `{}` does not exist", cfg.target.cluster)
    } else {
        format!(
            "service `{}` does not exist in cluster `{}`",
            cfg.target.service, cfg.target.cluster
        )
    };
    let Some(definition) = definition else {
        bail!(
            "{what}; to create the service, --create-missing needs --service-definition FILE (the JSON `aws ecs create-service --cli-input-json` takes)"
        );
    };
    let Some(file) = file else {
        bail!(
            "{what}; to create the service, --create-missing needs --task-definition FILE: a new service has no task definition to start from"
        );
    };
    out.info(&format!("{what}: it will be created (--create-missing)"));
    let new = file.apply(&cfg.images, &cfg.envs)?;
    check_run_task(cfg, &new)?;
    Ok(Prepared {
        live: None,
        new,
        create: Some(Creation {
            cluster: missing.cluster,
            definition,
        }),
    })
}

fn check_run_task(cfg: &DeployConfig, new: &TaskDefinition) -> anyhow::Result<()> {
    if let Some(container) = cfg.run_task.as_ref().and_then(|r| r.container.as_ref()) {
        let names = new.container_names();
        if !names.contains(container) {
            bail!(
                "invalid --run-task `{container}`: task definition family `{}` has no such container (it has: {})",
                new.family(),
                names.join(", ")
            );
        }
    }
    Ok(())
}

impl Prepared {
    /// The task definition that runs now (the rollback target); None on a first deploy.
    pub(crate) fn previous(&self) -> Option<TaskDefinitionArn> {
        self.live.as_ref().map(|l| l.task_definition_arn.clone())
    }

    /// The new task definition is the one that runs.
    pub(crate) fn unchanged(&self) -> bool {
        self.live
            .as_ref()
            .is_some_and(|l| self.new.same_as(&l.task_definition))
    }

    /// The service events that happened before the deploy (not to be printed as new).
    pub(crate) fn event_ids(&self) -> HashSet<String> {
        self.live
            .as_ref()
            .map(|l| l.event_ids.clone())
            .unwrap_or_default()
    }

    /// The changes to the task definition, a line each (environment values never shown).
    pub(crate) fn show_diff(&self, out: &Output) {
        if let Some(live) = &self.live {
            for line in self.new.diff(&live.task_definition) {
                out.info(&line);
            }
        }
    }
}

/// What exists before the deploy (reads only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Missing {
    pub(crate) cluster: bool,
    pub(crate) service: bool,
}

pub(crate) async fn missing(aws: &Aws, target: &Target) -> Result<Missing> {
    let cluster = ecs::cluster_status(aws, &target.cluster).await? != Some(Status::Active);
    if cluster {
        return Ok(Missing {
            cluster,
            service: true,
        });
    }
    let service = !matches!(
        ecs::find_service(aws, target).await?,
        Ok(s) if matches!(s.status().map(Status::from), Some(Status::Active | Status::Draining))
    );
    Ok(Missing { cluster, service })
}

/// Reads only. Refuses (Err) when the cluster or service is missing or not ACTIVE, the service is not
/// under the ECS deployment controller, or another deployment is in progress (unless `wait_for_idle`,
/// then it waits within `wait`).
pub(crate) async fn live(
    aws: &Aws,
    target: &Target,
    wait_for_idle: bool,
    wait: &Wait,
    out: &Output,
) -> Result<Live> {
    match ecs::cluster_status(aws, &target.cluster).await? {
        Some(Status::Active) => {}
        Some(status) => bail!("cluster `{}` is {status}, not ACTIVE", target.cluster),
        None => bail!(
            "cluster `{}` not found (check the name and the AWS region; to create it and the service, pass --create-missing with --service-definition FILE and --task-definition FILE)",
            target.cluster
        ),
    }
    let mut said_waiting = false;
    let (previous, service) = loop {
        let service = match ecs::find_service(aws, target).await? {
            Ok(service) => service,
            Err(reason) => bail!(
                "service `{}` not found in cluster `{}`{}; to create it, pass --create-missing with --service-definition FILE and --task-definition FILE",
                target.service,
                target.cluster,
                reason.map(|r| format!(" ({r})")).unwrap_or_default()
            ),
        };
        match ready(&service) {
            Ok(previous) => break (previous, service),
            Err(Busy::InProgress {
                deployment,
                task_definition,
            }) if wait_for_idle && !wait.expired() => {
                if !said_waiting {
                    out.info(&format!("waiting for deployment {deployment} ({task_definition}) to finish (--wait-for-idle)"));
                    said_waiting = true;
                }
                if wait.pause(Duration::from_secs(2)).await == Err(Stop::Signal) {
                    bail!(
                        "interrupted while waiting for deployment {deployment} to finish; nothing was changed"
                    );
                }
            }
            Err(busy) => bail!(refusal(target, &busy)),
        }
    };
    let task_definition = ecs::describe_task_definition(aws, previous.as_str()).await?;
    Ok(Live {
        task_definition_arn: previous,
        task_definition,
        event_ids: ecs::event_ids(&service),
        shape: ecs::shape(&service),
        primary: ecs::deployments(&service)
            .into_iter()
            .find(|d| d.status == DeploymentStatus::Primary)
            .map(|d| d.id),
    })
}

/// Pure: the rollback target when the service is ready for a deploy, else why not.
fn ready(service: &Service) -> Result<TaskDefinitionArn, Busy> {
    let status = Status::from(service.status().unwrap_or("in an unknown state"));
    if status != Status::Active {
        return Err(Busy::NotActive(status));
    }
    let controller = service
        .deployment_controller()
        .map(|c| c.r#type().as_str().to_string());
    if controller.as_deref() == Some("CODE_DEPLOY") {
        let service_td = service.task_definition().unwrap_or_default();
        return codedeploy::rollback_target(&ecs::task_sets(service), service_td);
    }
    if let Some(kind) = controller.filter(|k| k != "ECS") {
        return Err(Busy::Controller(kind));
    }
    rollout::rollback_target(&ecs::deployments(service))
}

/// What a person reads when the service is not ready for a deploy.
fn refusal(target: &Target, busy: &Busy) -> String {
    let service = &target.service;
    match busy {
        Busy::NotActive(status) => format!("service `{service}` is {status}, not ACTIVE"),
        Busy::Controller(kind) => format!(
            "service `{service}` uses the {kind} deployment controller; deployer rolls services whose deployment controller is ECS (rolling, blue/green, linear or canary) or CODE_DEPLOY. Deploy {kind} services with their own tooling"
        ),
        Busy::InProgress {
            deployment,
            task_definition,
        } => format!(
            "another deployment of service `{service}` is in progress: {deployment} ({task_definition}); wait for it to finish or pass --wait-for-idle"
        ),
        Busy::NoCompleted => format!(
            "service `{service}` has no COMPLETED deployment to return to if this deploy fails; fix the service first (deployer status shows its deployments)"
        ),
    }
}
