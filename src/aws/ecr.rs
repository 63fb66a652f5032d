//! Amazon ECR: the repository, the push credentials, what is already there, promotion to another
//! tag without pulling (BatchGetImage + PutImage), and the scan gate.

use crate::severity;
use crate::signal::{Stop, Wait};
use anyhow::{Context, Result, bail};
use aws_sdk_ecr::operation::describe_image_scan_findings::DescribeImageScanFindingsOutput;
use aws_sdk_ecr::types::{FindingSeverity, ImageIdentifier, ImageScanningConfiguration};
use std::collections::BTreeMap;
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

/// The repository, or None when ECR has no repository of that name (a read only).
pub(crate) async fn find_repository(
    ecr: &aws_sdk_ecr::Client,
    name: &str,
) -> Result<Option<Repository>> {
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
            Ok(Some(Repository {
                name: name.to_string(),
                uri: repo.repository_uri().unwrap_or_default().to_string(),
            }))
        }
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_repository_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(err) => Err(err).with_context(|| format!("failed to describe ECR repository `{name}`")),
    }
}

/// The repository, created (scan on push) when missing and `create` allows it.
pub(crate) async fn repository(
    ecr: &aws_sdk_ecr::Client,
    name: &str,
    create: bool,
) -> Result<Repository> {
    if let Some(repository) = find_repository(ecr, name).await? {
        return Ok(repository);
    }
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

/// Waits for the image scan and returns the findings at or above `max_severity` (empty: go on).
/// COMPLETE (basic scanning) and ACTIVE with counts (enhanced scanning) decide, from
/// `findingSeverityCounts` and every page of findings; IN_PROGRESS and PENDING wait, within
/// `wait` (the run's `--timeout` and the signals); an image that was not or could not be scanned
/// is refused with what to do.
pub(crate) async fn scan_gate(
    ecr: &aws_sdk_ecr::Client,
    repository: &str,
    digest: &str,
    max_severity: usize,
    wait: &Wait,
) -> Result<Vec<String>> {
    let image = format!("{repository}@{digest}");
    let stopped = |stop: Stop| scan_stopped(&image, wait, stop);
    loop {
        let first = wait
            .until(scan_page(ecr, repository, digest, None))
            .await
            .map_err(stopped)??;
        let status = first.image_scan_status();
        let code = status
            .and_then(|s| s.status())
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        let description = status.and_then(|s| s.description()).unwrap_or_default();
        match scan_step(&code, first.image_scan_findings().is_some()) {
            ScanStep::Judge => {
                return blocking(ecr, repository, digest, max_severity, first, wait).await;
            }
            ScanStep::Wait => {}
            ScanStep::Unsupported => bail!(
                "ECR could not scan `{image}` (UNSUPPORTED_IMAGE: {description}): its operating system or package manager is not one basic scanning supports (a FROM-scratch image, for one); not deploying an image that could not be scanned. Use a base image ECR can scan, turn on enhanced scanning for the repository, or drop --max-severity to deploy without the scan gate"
            ),
            ScanStep::Unavailable => bail!(
                "ECR has no scan findings for `{image}` ({code}: {description}): the image could not be scanned; not deploying it. Rescan it (aws ecr start-image-scan --repository-name {repository} --image-id imageDigest={digest}), push it again, or drop --max-severity to deploy without the scan gate"
            ),
            ScanStep::Failed => bail!(
                "the ECR scan of `{image}` failed ({description}); not deploying an unscanned image. Rescan it (aws ecr start-image-scan --repository-name {repository} --image-id imageDigest={digest}) or drop --max-severity"
            ),
            ScanStep::Unknown => bail!(
                "the ECR scan of `{image}` has status {code} ({description}); not deploying an image whose scan did not complete"
            ),
        }
        wait.pause(Duration::from_secs(2)).await.map_err(stopped)?;
    }
}

/// What the scan gate does with a scan status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScanStep {
    /// Findings are in: count them against --max-severity.
    Judge,
    /// Not done yet: look again (within --timeout).
    Wait,
    Unsupported,
    Unavailable,
    Failed,
    Unknown,
}

/// Pure: the scan gate's next step for a scan `status` (ImageScanStatus), with or without findings.
fn scan_step(status: &str, has_findings: bool) -> ScanStep {
    match status {
        "COMPLETE" | "ACTIVE" if has_findings => ScanStep::Judge,
        // Enhanced scanning not yet reporting counts, or a scan not yet done: wait.
        "ACTIVE" | "IN_PROGRESS" | "PENDING" | "" => ScanStep::Wait,
        "UNSUPPORTED_IMAGE" => ScanStep::Unsupported,
        "FINDINGS_UNAVAILABLE" | "SCAN_ELIGIBILITY_EXPIRED" => ScanStep::Unavailable,
        "FAILED" => ScanStep::Failed,
        _ => ScanStep::Unknown,
    }
}

fn scan_stopped(image: &str, wait: &Wait, stop: Stop) -> anyhow::Error {
    match stop {
        Stop::Signal => anyhow::anyhow!(
            "interrupted while waiting for the ECR scan of `{image}`; nothing was deployed"
        ),
        Stop::Deadline => anyhow::anyhow!(
            "the ECR scan of `{image}` did not finish within --timeout ({}s); not deploying an unscanned image",
            wait.timeout().as_secs()
        ),
    }
}

/// One page of an image's scan findings; ScanNotFoundException becomes what to do about it.
async fn scan_page(
    ecr: &aws_sdk_ecr::Client,
    repository: &str,
    digest: &str,
    next_token: Option<String>,
) -> Result<DescribeImageScanFindingsOutput> {
    let result = ecr
        .describe_image_scan_findings()
        .repository_name(repository)
        .image_id(ImageIdentifier::builder().image_digest(digest).build())
        .set_next_token(next_token)
        .send()
        .await;
    match result {
        Ok(out) => Ok(out),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_scan_not_found_exception()) =>
        {
            bail!(
                "ECR has no scan of `{repository}@{digest}` (ScanNotFoundException): scan on push is off for repository `{repository}`. Turn it on (aws ecr put-image-scanning-configuration --repository-name {repository} --image-scanning-configuration scanOnPush=true) and push again, or drop --max-severity"
            )
        }
        Err(err) => Err(err).with_context(|| {
            format!("failed to read the scan findings of `{repository}@{digest}`")
        }),
    }
}

/// The findings at or above `max_severity`: every page's basic and enhanced findings by name, and
/// whatever `findingSeverityCounts` counts beyond those as a count.
async fn blocking(
    ecr: &aws_sdk_ecr::Client,
    repository: &str,
    digest: &str,
    max_severity: usize,
    first: DescribeImageScanFindingsOutput,
    wait: &Wait,
) -> Result<Vec<String>> {
    let counted: BTreeMap<String, i64> = first
        .image_scan_findings()
        .and_then(|f| f.finding_severity_counts())
        .map(|counts| {
            counts
                .iter()
                .filter(|(s, n)| severity::rank(s.as_str()) >= max_severity && **n > 0)
                .map(|(s, n)| (s.as_str().to_string(), i64::from(*n)))
                .collect()
        })
        .unwrap_or_default();
    let has_counts = first
        .image_scan_findings()
        .is_some_and(|f| f.finding_severity_counts().is_some());
    if has_counts && counted.is_empty() {
        return Ok(Vec::new());
    }
    let mut named: Vec<(String, String)> = Vec::new();
    let mut page = first;
    loop {
        if let Some(findings) = page.image_scan_findings() {
            for f in findings.findings() {
                let severity = f.severity().map(FindingSeverity::as_str).unwrap_or("?");
                named.push((
                    severity.to_string(),
                    f.name().unwrap_or("unnamed finding").to_string(),
                ));
            }
            for f in findings.enhanced_findings() {
                let name = f
                    .package_vulnerability_details()
                    .and_then(|d| d.vulnerability_id())
                    .or(f.title())
                    .unwrap_or("unnamed finding");
                named.push((f.severity().unwrap_or("?").to_string(), name.to_string()));
            }
        }
        let Some(token) = page.next_token().map(String::from) else {
            break;
        };
        page = wait
            .until(scan_page(ecr, repository, digest, Some(token)))
            .await
            .map_err(|stop| scan_stopped(&format!("{repository}@{digest}"), wait, stop))??;
    }
    named.retain(|(severity, _)| severity::rank(severity) >= max_severity);
    let mut blocking: Vec<String> = named.iter().map(|(s, n)| format!("{s} {n}")).collect();
    for (severity, count) in &counted {
        let listed = named.iter().filter(|(s, _)| s == severity).count() as i64;
        if *count > listed {
            blocking.push(format!(
                "{} more {severity} finding(s) counted by ECR",
                count - listed
            ));
        }
    }
    Ok(blocking)
}

/// Whether the image (tag or digest) is in its ECR repository, in its account and region.
pub(crate) async fn image_exists(
    aws: &crate::aws::Aws,
    image: &crate::findings::EcrImage,
) -> crate::findings::Seen<()> {
    use crate::findings::Seen;
    let config = aws_sdk_ecr::config::Builder::from(&aws.sdk)
        .region(aws_config::Region::new(image.region.clone()));
    let ecr = aws_sdk_ecr::Client::from_conf(config.build());
    let id = if image.by_digest {
        ImageIdentifier::builder().image_digest(&image.reference)
    } else {
        ImageIdentifier::builder().image_tag(&image.reference)
    };
    let result = ecr
        .describe_images()
        .registry_id(&image.account)
        .repository_name(&image.repository)
        .image_ids(id.build())
        .send()
        .await;
    match result {
        Ok(out) if !out.image_details().is_empty() => Seen::Found(()),
        Ok(_) => Seen::Missing,
        Err(err) => crate::aws::iam::seen(
            err,
            &["ImageNotFoundException", "RepositoryNotFoundException"],
            "ecr:DescribeImages",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every ImageScanStatus (basic and enhanced scanning), with and without findings (A8).
    #[test]
    fn scan_gate_steps() {
        use ScanStep::*;
        for (status, has_findings, want) in [
            ("COMPLETE", true, Judge),
            ("ACTIVE", true, Judge),
            ("ACTIVE", false, Wait),
            ("IN_PROGRESS", false, Wait),
            ("PENDING", false, Wait),
            ("", false, Wait),
            ("UNSUPPORTED_IMAGE", false, Unsupported),
            ("FINDINGS_UNAVAILABLE", false, Unavailable),
            ("SCAN_ELIGIBILITY_EXPIRED", false, Unavailable),
            ("FAILED", false, Failed),
            ("FAILED", true, Failed),
            ("COMPLETE", false, Unknown),
            ("LIMIT_EXCEEDED", false, Unknown),
        ] {
            assert_eq!(
                scan_step(status, has_findings),
                want,
                "{status} {has_findings}"
            );
        }
    }
}
