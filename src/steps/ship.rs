//! Shipping an image: find the commit, make sure the ECR repository exists, build and push the image
//! (skipped when the commit's tag is already in ECR), and gate on the ECR scan. The reference to
//! deploy comes back as a value.

use crate::aws::{Aws, ecr};
use crate::build::git::Commit;
use crate::build::{context, docker};
use crate::config::BuildConfig;
use crate::image_ref::ImageRef;
use crate::report::output::Output;
use crate::signal::Wait;
use anyhow::{Context, Result, bail};
use std::collections::HashMap;
use std::time::SystemTime;

/// Builds and pushes unless the commit's tag is already in ECR; returns the reference to deploy.
/// `wait` bounds the scan gate's wait (the run's `--timeout`, and the signals).
pub(crate) async fn ship(
    build: &BuildConfig,
    aws: &Aws,
    out: &Output,
    wait: &Wait,
) -> Result<ImageRef> {
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
    // The context and Dockerfile first: nothing is created for a build that cannot start.
    context::check(&build.context, &build.dockerfile)?;
    // With --create-repository a missing repository is created only once the image is built.
    let found = if build.create_repository {
        ecr::find_repository(&aws.ecr, &build.repository).await?
    } else {
        Some(ecr::repository(&aws.ecr, &build.repository, false).await?)
    };
    // The "already in ECR" shortcut is only sound for a tag unique to the commit: a mutable tag
    // such as `{branch}` names whatever was pushed last, so that is always built and pushed.
    let commit_unique = build.tags[0].contains("{sha}") || build.tags[0].contains("{full_sha}");
    let existing = match &found {
        Some(repo) if commit_unique => ecr::digest_of(&aws.ecr, &repo.name, primary)
            .await?
            .map(|digest| (digest, repo)),
        _ => None,
    };
    let (repo, digest) = match existing {
        Some((digest, repo)) => already_pushed(repo, digest, &tags, aws, out).await?,
        None => build_and_push(build, &commit, found, &tags, aws, out).await?,
    };
    scan_gate(build, &repo, &digest, aws, out, wait).await?;
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

/// The commit's image is already in ECR under its first tag: no build, no push; each other tag
/// missing from the repository is added to the same image, without a pull.
async fn already_pushed(
    repo: &ecr::Repository,
    digest: String,
    tags: &[String],
    aws: &Aws,
    out: &Output,
) -> Result<(ecr::Repository, String)> {
    let primary = &tags[0];
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
    Ok((
        ecr::Repository {
            name: repo.name.clone(),
            uri: repo.uri.clone(),
        },
        digest,
    ))
}

/// With `--max-severity`, waits for the ECR image scan of the pushed digest and refuses the image
/// when it found anything at or above that severity.
async fn scan_gate(
    build: &BuildConfig,
    repo: &ecr::Repository,
    digest: &str,
    aws: &Aws,
    out: &Output,
    wait: &Wait,
) -> Result<()> {
    let Some(max) = build.max_severity else {
        return Ok(());
    };
    out.step("waiting for the ECR image scan");
    let blocking = ecr::scan_gate(&aws.ecr, &repo.name, digest, max, wait).await?;
    if !blocking.is_empty() {
        bail!(
            "the ECR scan of {}@{digest} found {} finding(s) at or above --max-severity:\n  {}",
            repo.uri,
            blocking.len(),
            blocking.join("\n  ")
        );
    }
    out.info("scan: nothing at or above --max-severity");
    Ok(())
}

/// Builds the image, creates the repository when it is missing (`--create-repository`, only once
/// the build succeeded), pushes every tag; returns the repository and the pushed digest.
async fn build_and_push(
    build: &BuildConfig,
    commit: &Commit,
    found: Option<ecr::Repository>,
    tags: &[String],
    aws: &Aws,
    out: &Output,
) -> Result<(ecr::Repository, String)> {
    let docker = docker::connect().await?;
    let context = context::tar(&build.context, &build.dockerfile)?;
    let labels = image_labels(build, commit);
    // Until the repository exists, the image is built under a local name and tagged after.
    let local = format!("deployer-build/{}", build.repository);
    let built_as = found
        .as_ref()
        .map_or(local.as_str(), |repo| repo.uri.as_str());
    let image = format!("{built_as}:{}", tags[0]);
    out.step(&format!(
        "building {image} ({} KiB of context)",
        context.len() / 1024
    ));
    docker::build(
        &docker,
        docker::Build {
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
    let created = found.is_none();
    let repo = match found {
        Some(repo) => repo,
        None => {
            let repo = ecr::repository(&aws.ecr, &build.repository, true).await?;
            out.info(&format!(
                "created ECR repository `{}` (scan on push)",
                repo.name
            ));
            docker::tag(&docker, &image, &repo.uri, &tags[0]).await?;
            repo
        }
    };
    let image = format!("{}:{}", repo.uri, tags[0]);
    for tag in &tags[1..] {
        docker::tag(&docker, &image, &repo.uri, tag).await?;
    }
    let digest = push_all(&docker, &repo, tags, created, aws, out).await?;
    Ok((repo, digest))
}

/// Pushes every tag; the digest to deploy is the one the push of the first tag reported (a re-read
/// of the tag could see another build's push that moved it meanwhile), else ECR's.
async fn push_all(
    docker: &bollard::Docker,
    repo: &ecr::Repository,
    tags: &[String],
    created: bool,
    aws: &Aws,
    out: &Output,
) -> Result<String> {
    out.step(&format!("pushing to {}", repo.uri));
    let credentials = ecr_login(aws, out).await?;
    let mut pushed = None;
    for tag in tags {
        // A push that fails after --create-repository made the repository says so: the run did
        // change ECR, and the repository is left for the next run.
        let digest = match docker::push(docker, &repo.uri, tag, &credentials, out).await {
            Ok(digest) => digest,
            Err(err) if created => {
                return Err(err.context(format!(
                    "ECR repository `{}` was created by this run and is left in place; the push failed",
                    repo.name
                )));
            }
            Err(err) => return Err(err),
        };
        if pushed.is_none() {
            pushed = Some(digest);
        }
    }
    match pushed.flatten() {
        Some(digest) => Ok(digest),
        None => ecr::digest_of(&aws.ecr, &repo.name, &tags[0])
            .await?
            .with_context(|| format!("pushed {}:{}, but ECR does not list it", repo.uri, tags[0])),
    }
}

/// The image's labels: the configured ones, then the OCI revision (the commit), source (the
/// repository's URL, when known) and created (now).
fn image_labels(build: &BuildConfig, commit: &Commit) -> HashMap<String, String> {
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
    labels
}

/// ECR's login for the push (GetAuthorizationToken), its password masked in the CI log first.
async fn ecr_login(aws: &Aws, out: &Output) -> Result<docker::Login> {
    let credentials = ecr::credentials(&aws.ecr).await?;
    out.mask(&credentials.password);
    Ok(docker::Login {
        username: credentials.username,
        password: credentials.password,
        server: credentials.server,
    })
}
