//! The merge request on GitLab: one sticky note per service and environment, found again by a
//! hidden marker and updated in place (PUT). CI_JOB_TOKEN cannot write notes, so the token comes
//! from a project access token variable (DEPLOYER_GITLAB_TOKEN, or the one named by
//! DEPLOYER_GITLAB_TOKEN_VARIABLE). Every failure here is a warning, never the run's outcome.

use crate::report::Report;
use crate::report::ci::env;
use crate::report::ci::{CONNECT_TIMEOUT, READ_TIMEOUT};
use crate::report::output::Output;
use anyhow::{Context, Result};
use octocrab::Octocrab;
use serde_json::{Value, json};

pub(crate) async fn publish(report: &Report, environment: &str, out: &Output) {
    let Some(iid) = env("CI_MERGE_REQUEST_IID") else {
        out.info("not a merge-request pipeline (no CI_MERGE_REQUEST_IID): no MR note");
        return;
    };
    let variable =
        env("DEPLOYER_GITLAB_TOKEN_VARIABLE").unwrap_or_else(|| "DEPLOYER_GITLAB_TOKEN".into());
    let Some(token) = env(&variable) else {
        out.warn(&format!(
            "no GitLab token in {variable}: no MR note (CI_JOB_TOKEN cannot write notes; add a project access token with api scope as a masked variable)"
        ));
        return;
    };
    let (Some(api), Some(project)) = (env("CI_API_V4_URL"), env("CI_PROJECT_ID")) else {
        out.warn("CI_API_V4_URL or CI_PROJECT_ID is missing: no MR note");
        return;
    };
    let run_url = env("CI_JOB_URL");
    let body = report.markdown(environment, run_url.as_deref());
    if let Err(err) = sticky_note(
        &api,
        &token,
        &project,
        &iid,
        &report.marker(environment),
        &body,
    )
    .await
    {
        out.warn(&format!(
            "could not write the note on merge request !{iid}: {err:#}"
        ));
    }
}

async fn sticky_note(
    api: &str,
    token: &str,
    project: &str,
    iid: &str,
    marker: &str,
    body: &str,
) -> Result<()> {
    // octocrab as a plain HTTPS client: same TLS stack, retries and timeouts, GitLab's token header.
    let client = Octocrab::builder()
        .set_connect_timeout(Some(CONNECT_TIMEOUT))
        .set_read_timeout(Some(READ_TIMEOUT))
        .base_uri(api)
        .and_then(|b| {
            b.add_header(
                "PRIVATE-TOKEN".parse().expect("a valid header name"),
                token.to_string(),
            )
            .build()
        })
        .with_context(|| format!("failed to set up a client for `{api}`"))?;
    let notes_path = format!(
        "{}/projects/{project}/merge_requests/{iid}/notes",
        api.trim_end_matches('/')
    );
    let notes: Value = client
        .get(
            format!("{notes_path}?per_page=100&sort=desc&order_by=updated_at"),
            None::<&()>,
        )
        .await
        .map_err(explain)
        .context("failed to list the merge request's notes")?;
    let existing =
        notes.as_array().into_iter().flatten().find(|n| {
            n["system"] != true && n["body"].as_str().is_some_and(|b| b.contains(marker))
        });
    let payload = json!({"body": body});
    match existing {
        Some(note) if note["body"].as_str() == Some(body) => Ok(()),
        Some(note) => {
            let id = note["id"].as_u64().context("a note without an id")?;
            let _: Value = client
                .put(format!("{notes_path}/{id}"), Some(&payload))
                .await
                .map_err(explain)?;
            Ok(())
        }
        None => {
            let _: Value = client
                .post(notes_path, Some(&payload))
                .await
                .map_err(explain)?;
            Ok(())
        }
    }
}

fn explain(err: octocrab::Error) -> anyhow::Error {
    match err {
        octocrab::Error::GitHub { source, .. } => {
            anyhow::anyhow!("GitLab said {}: {}", source.status_code, source.message)
        }
        other => anyhow::anyhow!(other.to_string()),
    }
}
