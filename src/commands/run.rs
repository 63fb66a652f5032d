//! `deployer run`: ship the images (`steps::ship`), then the same runbook as `deployer deploy`,
//! with the pushed images put in. Also `deployer promote`.

use crate::aws::{Aws, ecr, ecs};
use crate::commands::deploy;
use crate::config::{DeployConfig, RunConfig};
use crate::outcome::{Outcome, RunResult};
use crate::report::output::Output;
use crate::service_definition::ServiceDefinition;
use crate::signal::{Interrupt, Stop, Wait};
use crate::steps::ship;
use crate::target::ImageChange;
use crate::task_definition::TaskDefinition;
use anyhow::{Result, bail};
use std::time::Duration;

pub(crate) async fn command(
    cfg: &RunConfig,
    aws: &Aws,
    out: &Output,
    interrupt: &Interrupt,
) -> RunResult {
    // Signals count from process start (the listener is set up just before this): a cancel during
    // the build, the push or the scan wait ends the run there, before any ECS write.
    // Bad input is refused before anything is created, built or pushed (R17).
    if let Err(err) = check_inputs(cfg, aws).await {
        return RunResult::for_target(&cfg.deploy.target)
            .finish(Outcome::Refused, Some(format!("{err:#}")));
    }
    let wait = Wait::new(cfg.deploy.timeout, interrupt, 0);
    let shipped = Wait::new(Duration::MAX, interrupt, 0)
        .until(with_images_until(cfg, aws, out, &wait))
        .await;
    let interrupted = || {
        RunResult::for_target(&cfg.deploy.target).finish(
            Outcome::Interrupted,
            Some(
                "interrupted while building, pushing or waiting for the image scan; nothing was deployed"
                    .into(),
            ),
        )
    };
    match shipped {
        Err(Stop::Signal) => interrupted(),
        Err(Stop::Deadline) => RunResult::for_target(&cfg.deploy.target).finish(
            Outcome::Refused,
            Some("the build did not finish in time".into()),
        ),
        // A signal that came as the shipping ended still stops the run before the deploy.
        Ok(_) if interrupt.count() > 0 => interrupted(),
        Ok(Ok(deploy_cfg)) => deploy::deploy(&deploy_cfg, aws, out, interrupt).await,
        Ok(Err(err)) => RunResult::for_target(&cfg.deploy.target)
            .finish(Outcome::Refused, Some(format!("{err:#}"))),
    }
}

/// What pre-flight would refuse once the images are pushed, checked before anything is created,
/// built or pushed: the task-definition and service-definition files, the container each build
/// goes into, `--image`/`--env` containers, `--run-task`'s container, and each build's context and
/// Dockerfile. With no task-definition file the service's live one is read (reads only).
pub(crate) async fn check_inputs(cfg: &RunConfig, aws: &Aws) -> Result<()> {
    check_files(cfg)?;
    // A file was checked just now; a service --create-missing is to create needs one, and
    // pre-flight says so.
    if cfg.deploy.task_definition_file.is_some() || cfg.deploy.create_missing {
        return Ok(());
    }
    let service = ecs::describe_service(aws, &cfg.deploy.target).await?;
    let live =
        ecs::describe_task_definition(aws, service.task_definition().unwrap_or_default()).await?;
    check_containers(cfg, &live)
}

/// The part of `check_inputs` that asks AWS nothing: each build's context and Dockerfile, the
/// service-definition file, and the task-definition file with the containers the run names in it.
pub(crate) fn check_files(cfg: &RunConfig) -> Result<()> {
    let deploy = &cfg.deploy;
    for build in &cfg.builds {
        crate::build::context::check(&build.context, &build.dockerfile)?;
    }
    if let Some(path) = &deploy.service_definition {
        ServiceDefinition::load(path, &deploy.target)?;
    }
    match &deploy.task_definition_file {
        Some(path) => check_containers(cfg, &TaskDefinition::load(path)?),
        None => Ok(()),
    }
}

/// The containers the run names exist in `source`: each build's, `--image`/`--env`'s and
/// `--run-task`'s.
fn check_containers(cfg: &RunConfig, source: &TaskDefinition) -> Result<()> {
    let deploy = &cfg.deploy;
    let names = source.container_names();
    let family = source.family();
    // Each build's image goes into its container.
    for build in &cfg.builds {
        match &build.container {
            Some(name) if !names.contains(name) => bail!(
                "invalid --container `{name}`: task definition `{family}` has only: {}",
                names.join(", ")
            ),
            None if names.len() != 1 => bail!(
                "task definition `{family}` has {} containers ({}): name the one that gets the built image with --container NAME (or `container` under [build])",
                names.len(),
                names.join(", ")
            ),
            _ => {}
        }
    }
    source.apply(&deploy.images, &deploy.envs)?;
    if let Some(container) = deploy.run_task.as_ref().and_then(|r| r.container.as_ref())
        && !names.contains(container)
    {
        bail!(
            "invalid --run-task `{container}`: task definition family `{family}` has no such container (it has: {})",
            names.join(", ")
        );
    }
    Ok(())
}

/// Builds and pushes what the run builds; returns the deploy with the pushed images put in.
pub(crate) async fn with_images(cfg: &RunConfig, aws: &Aws, out: &Output) -> Result<DeployConfig> {
    let wait = Wait::new(cfg.deploy.timeout, &Interrupt::none(), 0);
    with_images_until(cfg, aws, out, &wait).await
}

/// `with_images`, with `wait` bounding the scan gate's wait (the run's `--timeout` and signals).
pub(crate) async fn with_images_until(
    cfg: &RunConfig,
    aws: &Aws,
    out: &Output,
    wait: &Wait,
) -> Result<DeployConfig> {
    let mut deploy_cfg = cfg.deploy.clone();
    if cfg.builds.is_empty() {
        out.info("--image names a prebuilt image: no build, no push");
    }
    for build in &cfg.builds {
        let image = ship::ship(build, aws, out, wait).await?;
        deploy_cfg.images.push(ImageChange {
            container: build.container.clone(),
            image,
        });
    }
    Ok(deploy_cfg)
}

/// `deployer promote`: another tag for an image already in ECR.
pub(crate) async fn promote(
    repository: &str,
    from: &str,
    to: &str,
    aws: &Aws,
    out: &Output,
) -> RunResult {
    let mut result = RunResult::refused("");
    match ecr::promote(&aws.ecr, repository, from, to).await {
        Ok(digest) => {
            out.info(&format!(
                "{repository}:{to} now names {digest} (as {repository}:{from})"
            ));
            result.reason = None;
            result.outcome = Outcome::Deployed;
            result
        }
        Err(err) => result.finish(Outcome::Refused, Some(format!("{err:#}"))),
    }
}
