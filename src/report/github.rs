//! The pull request on GitHub: one sticky comment per service and environment (found again by a
//! hidden marker and updated in place with PATCH), a commit status `deployer/<service>` on the
//! head commit, and with `--github-deployment` a GitHub deployment with its statuses.
//!
//! octocrab's generic calls are used throughout: its `update_comment` sends POST, which GitHub's
//! API rejects. Every failure here is a warning; reporting never changes a deploy's exit code.

use crate::outcome::Outcome;
use crate::report::Report;
use crate::report::ci::{CONNECT_TIMEOUT, READ_TIMEOUT};
use crate::report::ci::{env, run_url};
use crate::report::output::Output;
use anyhow::{Context, Result};
use octocrab::Octocrab;
use serde_json::{Value, json};
use std::time::Duration;

/// Who and where, from the GitHub Actions environment.
struct Job {
    client: Octocrab,
    repo: String,
    head_sha: Option<String>,
    event: Value,
    event_name: String,
}

fn job(out: &Output) -> Option<Job> {
    let token = env("INPUT_GITHUB-TOKEN")
        .or_else(|| env("INPUT_GITHUB_TOKEN"))
        .or_else(|| env("DEPLOYER_GITHUB_TOKEN"))
        .or_else(|| env("GITHUB_TOKEN"));
    let Some(token) = token else {
        out.warn("no GitHub token (github-token input, DEPLOYER_GITHUB_TOKEN or GITHUB_TOKEN): no pull-request comment, status or deployment");
        return None;
    };
    out.mask(&token);
    let repo = env("GITHUB_REPOSITORY")?;
    let api = env("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into());
    let client = match Octocrab::builder()
        .personal_token(token)
        .set_connect_timeout(Some(CONNECT_TIMEOUT))
        .set_read_timeout(Some(READ_TIMEOUT))
        .base_uri(&api)
        .and_then(|b| b.build())
    {
        Ok(client) => client,
        Err(err) => {
            out.warn(&format!("cannot reach GitHub at `{api}`: {err}"));
            return None;
        }
    };
    let event: Value = env("GITHUB_EVENT_PATH")
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    // On pull_request events GITHUB_SHA is the test merge commit: the head commit is what was built.
    let head_sha = event["pull_request"]["head"]["sha"]
        .as_str()
        .map(String::from)
        .or_else(|| env("GITHUB_SHA"));
    Some(Job {
        client,
        repo,
        head_sha,
        event,
        event_name: env("GITHUB_EVENT_NAME").unwrap_or_default(),
    })
}

fn explain(err: &octocrab::Error) -> String {
    match err {
        octocrab::Error::GitHub { source, .. } if source.status_code.as_u16() == 403 => format!(
            "GitHub refused (403: {}); a pull request from a fork gets a read-only token, or the job lacks `permissions:` for it",
            source.message
        ),
        octocrab::Error::GitHub { source, .. } => {
            format!("GitHub said {}: {}", source.status_code, source.message)
        }
        other => other.to_string(),
    }
}

/// How long creating the GitHub deployment may hold the deploy before it goes on without one.
const BEGIN_BUDGET: Duration = Duration::from_secs(10);

/// Creates the GitHub deployment at the start of a deploy (with `--github-deployment`), within
/// `BEGIN_BUDGET`: a GitHub that does not answer costs a warning, and the deploy goes on.
pub(crate) async fn begin_deployment(environment: &str, out: &Output) -> Option<u64> {
    match tokio::time::timeout(BEGIN_BUDGET, create_deployment(environment, out)).await {
        Ok(id) => id,
        Err(_) => {
            out.warn(&format!(
                "GitHub did not answer within {} s: no GitHub deployment; the deploy goes on",
                BEGIN_BUDGET.as_secs()
            ));
            None
        }
    }
}

async fn create_deployment(environment: &str, out: &Output) -> Option<u64> {
    let job = job(out)?;
    let Some(sha) = &job.head_sha else {
        out.warn("no commit SHA (GITHUB_SHA): no GitHub deployment");
        return None;
    };
    let body = json!({
        "ref": sha, "environment": environment, "auto_merge": false, "required_contexts": [],
        "description": "deployer", "transient_environment": false,
    });
    let created: Result<Value, _> = job
        .client
        .post(format!("/repos/{}/deployments", job.repo), Some(&body))
        .await;
    match created {
        Ok(deployment) => {
            let id = deployment["id"].as_u64()?;
            deployment_status(&job, id, "in_progress", environment, None, out).await;
            Some(id)
        }
        Err(err) => {
            out.warn(&format!(
                "could not create the GitHub deployment: {}",
                explain(&err)
            ));
            None
        }
    }
}

async fn deployment_status(
    job: &Job,
    id: u64,
    state: &str,
    environment: &str,
    description: Option<&str>,
    out: &Output,
) {
    let mut body = json!({"state": state, "environment": environment, "auto_inactive": true});
    if let Some(url) = run_url() {
        body["log_url"] = json!(url);
    }
    if let Some(url) = env("DEPLOYER_ENVIRONMENT_URL") {
        body["environment_url"] = json!(url);
    }
    if let Some(text) = description {
        body["description"] = json!(text.chars().take(140).collect::<String>());
    }
    let result: Result<Value, _> = job
        .client
        .post(
            format!("/repos/{}/deployments/{id}/statuses", job.repo),
            Some(&body),
        )
        .await;
    if let Err(err) = result {
        out.warn(&format!(
            "could not set the GitHub deployment status to {state}: {}",
            explain(&err)
        ));
    }
}

/// At the end: the deployment's final status, the commit status, the sticky PR comment.
pub(crate) async fn publish(
    report: &Report,
    environment: &str,
    run_url: Option<&str>,
    out: &Output,
) {
    let Some(job) = job(out) else { return };
    let outcome = report
        .result
        .as_ref()
        .map_or(Outcome::Refused, |r| r.outcome);
    let success = matches!(outcome, Outcome::Deployed | Outcome::Unchanged);
    let reason = report.result.as_ref().and_then(|r| r.reason.clone());
    if let Some(id) = report.github_deployment {
        let state = if success { "success" } else { "failure" };
        deployment_status(&job, id, state, environment, reason.as_deref(), out).await;
    }
    if let Some(sha) = &job.head_sha {
        // One status per service, or per system (its name) when the run deployed several.
        let service = report
            .system
            .clone()
            .or_else(|| report.result.as_ref().and_then(|r| r.service.clone()))
            .unwrap_or_default();
        let mut body = json!({
            "state": if success { "success" } else { "failure" },
            "context": format!("deployer/{service}"),
            "description": reason.as_deref().unwrap_or(outcome.as_str()).chars().take(140).collect::<String>(),
        });
        if let Some(url) = run_url {
            body["target_url"] = json!(url);
        }
        let result: Result<Value, _> = job
            .client
            .post(format!("/repos/{}/statuses/{sha}", job.repo), Some(&body))
            .await;
        if let Err(err) = result {
            out.warn(&format!(
                "could not set the commit status: {}",
                explain(&err)
            ));
        }
    }
    match pull_request(&job).await {
        Ok(Some(number)) => {
            if let Err(err) = sticky_comment(
                &job,
                number,
                &report.marker(environment),
                &report.markdown(environment, run_url),
            )
            .await
            {
                out.warn(&format!(
                    "could not comment on pull request #{number}: {err:#}"
                ));
            }
        }
        Ok(None) => out.info("no pull request for this commit: no comment"),
        Err(err) => out.warn(&format!("could not find the pull request: {err:#}")),
    }
}

/// The PR: from the event on pull_request events, else the open PR whose head is this commit.
async fn pull_request(job: &Job) -> Result<Option<u64>> {
    if let Some(n) = job.event["pull_request"]["number"]
        .as_u64()
        .or_else(|| job.event["number"].as_u64())
    {
        return Ok(Some(n));
    }
    let Some(sha) = &job.head_sha else {
        return Ok(None);
    };
    if job.event_name != "push" && !job.event_name.is_empty() {
        return Ok(None);
    }
    let pulls: Value = job
        .client
        .get(
            format!("/repos/{}/commits/{sha}/pulls", job.repo),
            None::<&()>,
        )
        .await
        .map_err(|e| anyhow::anyhow!(explain(&e)))
        .context("failed to list the pull requests of this commit")?;
    Ok(pulls
        .as_array()
        .into_iter()
        .flatten()
        .find(|pr| pr["state"] == "open" && pr["head"]["sha"] == sha.as_str())
        .and_then(|pr| pr["number"].as_u64()))
}

/// Updates the comment holding `marker`, or creates it. Never duplicates on re-runs.
async fn sticky_comment(job: &Job, number: u64, marker: &str, body: &str) -> Result<()> {
    let mut page = 1;
    let existing = loop {
        let comments: Value = job
            .client
            .get(
                format!(
                    "/repos/{}/issues/{number}/comments?per_page=100&page={page}",
                    job.repo
                ),
                None::<&()>,
            )
            .await
            .map_err(|e| anyhow::anyhow!(explain(&e)))
            .context("failed to list the comments")?;
        let list = comments.as_array().cloned().unwrap_or_default();
        if let Some(found) = list
            .iter()
            .find(|c| c["body"].as_str().is_some_and(|b| b.contains(marker)))
        {
            break Some(found.clone());
        }
        if list.len() < 100 {
            break None;
        }
        page += 1;
    };
    let payload = json!({"body": body});
    match existing {
        Some(comment) if comment["body"].as_str() == Some(body) => Ok(()),
        Some(comment) => {
            let id = comment["id"].as_u64().context("a comment without an id")?;
            let _: Value = job
                .client
                .patch(
                    format!("/repos/{}/issues/comments/{id}", job.repo),
                    Some(&payload),
                )
                .await
                .map_err(|e| anyhow::anyhow!(explain(&e)))?;
            Ok(())
        }
        None => {
            let _: Value = job
                .client
                .post(
                    format!("/repos/{}/issues/{number}/comments", job.repo),
                    Some(&payload),
                )
                .await
                .map_err(|e| anyhow::anyhow!(explain(&e)))?;
            Ok(())
        }
    }
}
