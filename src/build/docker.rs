//! The local Docker engine, through bollard: build the image (streaming its output), tag it, push
//! it with ECR credentials. DOCKER_HOST is honoured (unix socket by default, tcp for dind).

use crate::report::output::Output;
use anyhow::{Context, Result, bail};
use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::query_parameters::{BuildImageOptionsBuilder, PushImageOptions, TagImageOptions};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::time::Duration;

/// What a push logs in with: user, password and the registry host (ECR's token, from the caller).
pub(crate) struct Login {
    pub(crate) username: String,
    pub(crate) password: String,
    pub(crate) server: String,
}

pub(crate) async fn connect() -> Result<Docker> {
    let docker = Docker::connect_with_defaults()
        .context("failed to connect to the Docker engine (DOCKER_HOST, or /var/run/docker.sock)")?;
    // Older engines (20.10) speak API 1.41: agree on a version before the first real call.
    docker
        .negotiate_version()
        .await
        .context("failed to reach the Docker engine (is dockerd running? DOCKER_HOST?)")
}

pub(crate) struct Build<'a> {
    pub(crate) context: Vec<u8>,
    pub(crate) dockerfile: &'a str,
    pub(crate) tag: &'a str,
    pub(crate) build_args: &'a HashMap<String, String>,
    pub(crate) labels: &'a HashMap<String, String>,
    pub(crate) target: Option<&'a str>,
    pub(crate) platform: Option<&'a str>,
}

/// Builds and tags the image; on failure the error names the failing step and carries its output.
pub(crate) async fn build(docker: &Docker, spec: Build<'_>, out: &Output) -> Result<()> {
    let mut options = BuildImageOptionsBuilder::new()
        .dockerfile(spec.dockerfile)
        .t(spec.tag)
        .rm(true)
        .forcerm(true)
        .buildargs(spec.build_args)
        .labels(spec.labels);
    if let Some(target) = spec.target {
        options = options.target(target);
    }
    if let Some(platform) = spec.platform {
        options = options.platform(platform);
    }
    let mut stream = docker.build_image(
        options.build(),
        None,
        Some(bollard::body_full(spec.context.into())),
    );
    let phase = out.phase("build");
    let mut step = String::new();
    let mut since_step: Vec<String> = Vec::new();
    while let Some(item) = stream.next().await {
        let message = match item {
            Ok(info) => {
                if let Some(error) = info.error_detail.and_then(|e| e.message) {
                    Some(error)
                } else {
                    let text = strip_ansi(&info.stream.unwrap_or_default());
                    for line in text.lines().filter(|l| !l.trim().is_empty()) {
                        if line.starts_with("Step ") {
                            step = line.to_string();
                            since_step.clear();
                            phase.keep(line);
                            continue;
                        }
                        if !line.starts_with(" ---> ")
                            && !line.starts_with("Removing intermediate container")
                        {
                            since_step.push(line.to_string());
                        }
                        phase.update(line);
                    }
                    None
                }
            }
            Err(bollard::errors::Error::DockerStreamError { error }) => Some(error),
            Err(err) => return Err(err).context("the Docker engine failed during the build"),
        };
        if let Some(error) = message {
            let output = since_step
                .iter()
                .rev()
                .take(20)
                .rev()
                .cloned()
                .collect::<Vec<_>>()
                .join("\n    ");
            bail!(
                "docker build failed at {}: {error}{}",
                if step.is_empty() { "the start" } else { &step },
                if output.is_empty() {
                    String::new()
                } else {
                    format!("\n  output of that step:\n    {output}")
                }
            );
        }
    }
    Ok(())
}

/// Drops the terminal colour codes the engine puts around a step's stderr.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // ESC [ … final letter
            for next in chars.by_ref() {
                if next.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

pub(crate) async fn tag(docker: &Docker, image: &str, repo: &str, tag: &str) -> Result<()> {
    docker
        .tag_image(
            image,
            Some(TagImageOptions {
                repo: Some(repo.to_string()),
                tag: Some(tag.to_string()),
            }),
        )
        .await
        .with_context(|| format!("failed to tag `{image}` as `{repo}:{tag}`"))
}

/// Pushes `repo:tag`, retrying a failed push twice (1 s, then 4 s apart); returns the manifest
/// digest the push reported (`<tag>: digest: sha256:… size: N`), None when it reported none.
pub(crate) async fn push(
    docker: &Docker,
    repo: &str,
    tag: &str,
    credentials: &Login,
    out: &Output,
) -> Result<Option<String>> {
    let mut last = None;
    for (attempt, pause) in [(1, 0u64), (2, 1), (3, 4)] {
        if pause > 0 {
            out.warn(&format!(
                "push of `{repo}:{tag}` failed ({}); retrying in {pause}s (attempt {attempt} of 3)",
                last.as_ref()
                    .map_or(String::new(), |e: &anyhow::Error| format!("{e:#}"))
            ));
            tokio::time::sleep(Duration::from_secs(pause)).await;
        }
        match push_once(docker, repo, tag, credentials, out).await {
            Ok(digest) => return Ok(digest),
            Err(err) => last = Some(err),
        }
    }
    Err(last.expect("three attempts ran"))
        .with_context(|| format!("failed to push `{repo}:{tag}` after 3 attempts"))
}

async fn push_once(
    docker: &Docker,
    repo: &str,
    tag: &str,
    credentials: &Login,
    out: &Output,
) -> Result<Option<String>> {
    let auth = DockerCredentials {
        username: Some(credentials.username.clone()),
        password: Some(credentials.password.clone()),
        serveraddress: Some(credentials.server.clone()),
        ..Default::default()
    };
    let mut stream = docker.push_image(
        repo,
        Some(PushImageOptions {
            tag: Some(tag.to_string()),
            ..Default::default()
        }),
        Some(auth),
    );
    let mut pushed = 0usize;
    let mut existed = 0usize;
    let mut digest = None;
    let phase = out.phase("push");
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(error) = info.error_detail.and_then(|e| e.message) {
                    bail!("{error}");
                }
                match info.status.as_deref() {
                    Some("Pushed") => pushed += 1,
                    Some("Layer already exists") => existed += 1,
                    // The registry already had the blob in another repository: no upload either.
                    Some(s) if s.starts_with("Mounted from") => existed += 1,
                    Some(s) if s.contains("digest: ") => {
                        digest = reported_digest(s);
                        phase.update(s);
                    }
                    Some(s) => phase.update(&format!(
                        "{tag}: {s} ({pushed} layer(s) pushed, {existed} already there)"
                    )),
                    None => {}
                }
            }
            Err(bollard::errors::Error::DockerStreamError { error }) => bail!("{error}"),
            Err(err) => return Err(err).context("the Docker engine failed during the push"),
        }
    }
    drop(phase);
    out.info(&format!(
        "pushed {repo}:{tag}: {pushed} layer(s) uploaded, {existed} already in the registry"
    ));
    Ok(digest)
}

/// The digest in a push's last status line: `<tag>: digest: sha256:<hex> size: <n>`.
fn reported_digest(status: &str) -> Option<String> {
    let (_, rest) = status.split_once("digest: ")?;
    let digest = rest.split_whitespace().next()?;
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| digest.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn colour_codes_are_dropped() {
        assert_eq!(super::strip_ansi("\x1b[91mboom\n\x1b[0m"), "boom\n");
        assert_eq!(super::strip_ansi("plain"), "plain");
    }

    #[test]
    fn the_push_reports_the_digest() {
        let hex = "ab".repeat(32);
        assert_eq!(
            super::reported_digest(&format!("main: digest: sha256:{hex} size: 527")),
            Some(format!("sha256:{hex}"))
        );
        assert_eq!(
            super::reported_digest("main: digest: sha256:short size: 1"),
            None
        );
        assert_eq!(super::reported_digest("Pushed"), None);
    }
}
