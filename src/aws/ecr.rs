//! Amazon ECR: the repository, the push credentials, what is already there, promotion to another
//! tag without pulling (BatchGetImage + PutImage), and the scan gate.

use crate::severity;
use crate::signal::{Stop, Wait};
use anyhow::{Context, Result, bail};
use aws_sdk_ecr::types::{FindingSeverity, ImageIdentifier, ImageScanningConfiguration};
use std::time::Duration;

pub(crate) struct Repository {
    pub(crate) name: String,
    /// `host/name`, what images are tagged and pushed as.
    pub(crate) uri: String,
}

/// Push credentials: user, password and the registry host they are for.
pub(crate) struct Credentials {
    pub(crate) username: String,
    pub(crate) password: String,
    pub(crate) server: String,
}

pub(crate) async fn repository(
    ecr: &aws_sdk_ecr::Client,
    name: &str,
    create: bool,
) -> Result<Repository> {
    match ecr
        .describe_repositories()
        .repository_names(name)
        .send()
        .await
    {
        Ok(out) => {
            let repo = out
                .repositories()
                .first()
                .with_context(|| format!("ECR returned no repository `{name}`"))?;
            Ok(Repository {
                name: name.to_string(),
                uri: repo.repository_uri().unwrap_or_default().to_string(),
            })
        }
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_repository_not_found_exception()) =>
        {
            if !create {
                bail!(
                    "ECR repository `{name}` does not exist: create it (aws ecr create-repository --repository-name {name} --image-scanning-configuration scanOnPush=true) or pass --create-repository"
                );
            }
            let out = ecr
                .create_repository()
                .repository_name(name)
                .image_scanning_configuration(
                    ImageScanningConfiguration::builder()
                        .scan_on_push(true)
                        .build(),
                )
                .send()
                .await
                .with_context(|| format!("failed to create ECR repository `{name}`"))?;
            let uri = out
                .repository()
                .and_then(|r| r.repository_uri())
                .unwrap_or_default()
                .to_string();
            Ok(Repository {
                name: name.to_string(),
                uri,
            })
        }
        Err(err) => Err(err).with_context(|| format!("failed to describe ECR repository `{name}`")),
    }
}

pub(crate) async fn credentials(ecr: &aws_sdk_ecr::Client) -> Result<Credentials> {
    let out = ecr
        .get_authorization_token()
        .send()
        .await
        .context("failed to get an ECR authorization token")?;
    let data = out
        .authorization_data()
        .first()
        .context("ECR returned no authorization data")?;
    let token = data
        .authorization_token()
        .context("ECR returned no authorization token")?;
    let decoded = aws_smithy_types::base64::decode(token)
        .context("the ECR authorization token is not base64")?;
    let decoded = String::from_utf8(decoded).context("the ECR authorization token is not UTF-8")?;
    let (username, password) = decoded
        .split_once(':')
        .context("the ECR authorization token is not USER:PASSWORD")?;
    let server = data.proxy_endpoint().unwrap_or_default();
    let server = server
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .to_string();
    Ok(Credentials {
        username: username.to_string(),
        password: password.to_string(),
        server,
    })
}

/// The digest of `tag` in the repository, or None when the tag is not there.
pub(crate) async fn digest_of(
    ecr: &aws_sdk_ecr::Client,
    repository: &str,
    tag: &str,
) -> Result<Option<String>> {
    let result = ecr
        .describe_images()
        .repository_name(repository)
        .image_ids(ImageIdentifier::builder().image_tag(tag).build())
        .send()
        .await;
    match result {
        Ok(out) => Ok(out
            .image_details()
            .first()
            .and_then(|d| d.image_digest())
            .map(String::from)),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_image_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(err) => {
            Err(err).with_context(|| format!("failed to look up `{repository}:{tag}` in ECR"))
        }
    }
}

/// Gives an image that is in ECR another tag, without pulling it.
pub(crate) async fn promote(
    ecr: &aws_sdk_ecr::Client,
    repository: &str,
    from: &str,
    to: &str,
) -> Result<String> {
    let out = ecr
        .batch_get_image()
        .repository_name(repository)
        .image_ids(ImageIdentifier::builder().image_tag(from).build())
        .send()
        .await
        .with_context(|| format!("failed to read the manifest of `{repository}:{from}`"))?;
    let image = out
        .images()
        .first()
        .with_context(|| format!("`{repository}:{from}` is not in ECR"))?;
    let manifest = image
        .image_manifest()
        .with_context(|| format!("ECR returned no manifest for `{repository}:{from}`"))?;
    let put = ecr
        .put_image()
        .repository_name(repository)
        .image_manifest(manifest)
        .set_image_manifest_media_type(image.image_manifest_media_type().map(String::from))
        .image_tag(to)
        .send()
        .await;
    match put {
        Ok(out) => Ok(out
            .image()
            .and_then(|i| i.image_id())
            .and_then(|i| i.image_digest())
            .unwrap_or_default()
            .to_string()),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_image_already_exists_exception()) =>
        {
            Ok(image
                .image_id()
                .and_then(|i| i.image_digest())
                .unwrap_or_default()
                .to_string())
        }
        Err(err) => {
            Err(err).with_context(|| format!("failed to tag `{repository}:{from}` as `{to}`"))
        }
    }
}

/// Waits for the image scan and refuses when findings at or above `max_severity` exist.
pub(crate) async fn scan_gate(
    ecr: &aws_sdk_ecr::Client,
    repository: &str,
    digest: &str,
    max_severity: usize,
    wait: &Wait,
) -> Result<Vec<String>> {
    loop {
        let out = ecr
            .describe_image_scan_findings()
            .repository_name(repository)
            .image_id(ImageIdentifier::builder().image_digest(digest).build())
            .send()
            .await
            .with_context(|| {
                format!("failed to read the scan findings of `{repository}@{digest}`")
            })?;
        let status = out
            .image_scan_status()
            .and_then(|s| s.status())
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        if status == "COMPLETE" {
            let findings = out
                .image_scan_findings()
                .map(|f| f.findings())
                .unwrap_or_default();
            let blocking: Vec<String> = findings
                .iter()
                .filter(|f| {
                    f.severity()
                        .is_some_and(|s| severity::rank(s.as_str()) >= max_severity)
                })
                .map(|f| {
                    format!(
                        "{} {}",
                        f.severity().map(FindingSeverity::as_str).unwrap_or("?"),
                        f.name().unwrap_or("unnamed finding")
                    )
                })
                .collect();
            return Ok(blocking);
        }
        if status == "FAILED" || wait.expired() {
            bail!(
                "the ECR scan of `{repository}@{digest}` did not complete (status {status}); not deploying an unscanned image"
            );
        }
        if wait.pause(Duration::from_secs(2)).await == Err(Stop::Signal) {
            bail!(
                "interrupted while waiting for the ECR scan of `{repository}@{digest}`; nothing was deployed"
            );
        }
    }
}
