//! `deployer run`: ship the images (`steps::ship`), then the same runbook as `deployer deploy`,
//! with the pushed images put in. Also `deployer promote`.

use crate::aws::{Aws, ecr};
use crate::commands::deploy;
use crate::config::{DeployConfig, RunConfig};
use crate::outcome::{Outcome, RunResult};
use crate::report::output::Output;
use crate::signal::Interrupt;
use crate::steps::ship;
use crate::target::ImageChange;
use anyhow::Result;

pub(crate) async fn command(
    cfg: &RunConfig,
    aws: &Aws,
    out: &Output,
    interrupt: &Interrupt,
) -> RunResult {
    match with_images(cfg, aws, out).await {
        Ok(deploy_cfg) => deploy::deploy(&deploy_cfg, aws, out, interrupt).await,
        Err(err) => RunResult::for_target(&cfg.deploy.target)
            .finish(Outcome::Refused, Some(format!("{err:#}"))),
    }
}

/// Builds and pushes what the run builds; returns the deploy with the pushed images put in.
pub(crate) async fn with_images(cfg: &RunConfig, aws: &Aws, out: &Output) -> Result<DeployConfig> {
    let mut deploy_cfg = cfg.deploy.clone();
    if cfg.builds.is_empty() {
        out.info("--image names a prebuilt image: no build, no push");
    }
    for build in &cfg.builds {
        let image = ship::ship(build, aws, out).await?;
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
