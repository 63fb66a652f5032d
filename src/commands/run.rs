//! `deployer run`, the whole job top to bottom: find the commit, make sure the ECR repository
//! exists, build and push the image (skipped when the tag is already in ECR), gate on the scan,
//! then deploy it by digest through the same runbook as `deployer deploy`.

use crate::aws::Aws;
use crate::config::{BuildConfig, DeployConfig, ImageChange, RunConfig};
use crate::deploy;
use crate::ecr;
use crate::engine;
use crate::image_ref::ImageRef;
use crate::output::{Outcome, Output, RunResult};
use crate::source::Commit;
use crate::watch::Interrupt;
use anyhow::{Context, Result, bail};
use std::time::{Duration, SystemTime};

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
        let image = ship(build, aws, out).await?;
        deploy_cfg.images.push(ImageChange {
            container: build.container.clone(),
            image,
        });
    }
    Ok(deploy_cfg)
}

/// Builds and pushes unless the tag is already in ECR; returns the reference to deploy.
async fn ship(build: &BuildConfig, aws: &Aws, out: &Output) -> Result<ImageRef> {
    let commit = Commit::read(&build.context)?;
    let tags: Vec<String> = build
        .tags
        .iter()
        .map(|t| commit.tag(t))
        .collect::<Result<_>>()?;
    let primary = &tags[0];
    out.step(&format!(
        "image for commit {} ({})",
        &commit.sha[..commit.sha.len().min(12)],
        tags.join(", ")
    ));
    let repo = ecr::repository(&aws.ecr, &build.repository, build.create_repository).await?;
    let digest = match ecr::digest_of(&aws.ecr, &repo.name, primary).await? {
        Some(digest) => {
            out.info(&format!(
                "{}:{primary} is already in ECR ({digest}): no build, no push",
                repo.uri
            ));
            for tag in &tags[1..] {
                if ecr::digest_of(&aws.ecr, &repo.name, tag).await?.is_none() {
                    ecr::promote(&aws.ecr, &repo.name, primary, tag).await?;
                    out.info(&format!("tagged it {tag} too (no pull)"));
                }
            }
            digest
        }
        None => build_and_push(build, &commit, &repo, &tags, aws, out).await?,
    };
    if let Some(max) = build.max_severity {
        out.step("waiting for the ECR image scan");
        let blocking =
            ecr::scan_gate(&aws.ecr, &repo.name, &digest, max, Duration::from_secs(600)).await?;
        if !blocking.is_empty() {
            bail!(
                "the ECR scan of {}@{digest} found {} finding(s) at or above --max-severity:\n  {}",
                repo.uri,
                blocking.len(),
                blocking.join("\n  ")
            );
        }
        out.info("scan: nothing at or above --max-severity");
    }
    let reference = if build.deploy_by_tag {
        format!("{}:{primary}", repo.uri)
    } else {
        format!("{}@{digest}", repo.uri)
    };
    out.image(&reference, Some(&digest));
    ImageRef::parse(&reference).with_context(|| {
        format!(
            "ECR repository URI `{}` does not make a valid image reference",
            repo.uri
        )
    })
}

async fn build_and_push(
    build: &BuildConfig,
    commit: &Commit,
    repo: &ecr::Repository,
    tags: &[String],
    aws: &Aws,
    out: &Output,
) -> Result<String> {
    let docker = engine::connect().await?;
    let context = crate::context::tar(&build.context, &build.dockerfile)?;
    let mut labels = build.labels.clone();
    labels.insert(
        "org.opencontainers.image.revision".into(),
        commit.sha.clone(),
    );
    if let Some(url) = &commit.repository_url {
        labels.insert("org.opencontainers.image.source".into(), url.clone());
    }
    let created = aws_smithy_types::DateTime::from(SystemTime::now())
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default();
    labels.insert("org.opencontainers.image.created".into(), created);
    let image = format!("{}:{}", repo.uri, tags[0]);
    out.step(&format!(
        "building {image} ({} KiB of context)",
        context.len() / 1024
    ));
    engine::build(
        &docker,
        engine::Build {
            context,
            dockerfile: &build.dockerfile,
            tag: &image,
            build_args: &build.build_args,
            labels: &labels,
            target: build.target.as_deref(),
            platform: build.platform.as_deref(),
        },
        out,
    )
    .await?;
    for tag in &tags[1..] {
        engine::tag(&docker, &image, &repo.uri, tag).await?;
    }
    out.step(&format!("pushing to {}", repo.uri));
    let credentials = ecr::credentials(&aws.ecr).await?;
    out.mask(&credentials.password);
    for tag in tags {
        engine::push(&docker, &repo.uri, tag, &credentials, out).await?;
    }
    ecr::digest_of(&aws.ecr, &repo.name, &tags[0])
        .await?
        .with_context(|| format!("pushed {image}, but ECR does not list it"))
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
