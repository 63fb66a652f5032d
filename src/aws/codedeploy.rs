//! CodeDeploy calls for services under the CODE_DEPLOY controller: start a deployment from an
//! AppSpec, read it (with its ECS target's lifecycle events and task sets), stop it with a
//! rollback, and continue one that waits (READY_WAIT).

use crate::aws::Aws;
use crate::strategy::{CodeDeployView, EventView};
use anyhow::{Context, Result};
use aws_sdk_codedeploy::types::{
    AppSpecContent, DeploymentWaitType, RevisionLocation, RevisionLocationType,
};
use serde_json::Value;

/// CreateDeployment of the AppSpec; returns the deployment id.
pub(crate) async fn create_deployment(
    aws: &Aws,
    (application, group): (&str, &str),
    appspec: &Value,
) -> Result<String> {
    let content = appspec.to_string();
    let revision = RevisionLocation::builder()
        .revision_type(RevisionLocationType::AppSpecContent)
        .app_spec_content(AppSpecContent::builder().content(&content).build())
        .build();
    let out = aws
        .codedeploy
        .create_deployment()
        .application_name(application)
        .deployment_group_name(group)
        .revision(revision)
        .description("deployer")
        .send()
        .await
        .with_context(|| {
            format!(
                "failed to create a CodeDeploy deployment in application `{application}`, deployment group `{group}` (name them with --codedeploy-application and --codedeploy-deployment-group)"
            )
        })?;
    out.deployment_id()
        .map(String::from)
        .context("CodeDeploy created a deployment but returned no id")
}

/// The deployment and its ECS target (`cluster:service`), as one view.
pub(crate) async fn deployment(aws: &Aws, id: &str, target: &str) -> Result<CodeDeployView> {
    let got = aws
        .codedeploy
        .get_deployment()
        .deployment_id(id)
        .send()
        .await
        .with_context(|| format!("failed to read CodeDeploy deployment `{id}`"))?;
    let info = got.deployment_info();
    let mut view = CodeDeployView {
        id: id.to_string(),
        status: info
            .and_then(|i| i.status())
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        error: info.and_then(|i| i.error_information()).map(|e| {
            format!(
                "{}: {}",
                e.code().map(|c| c.as_str()).unwrap_or("error"),
                e.message().unwrap_or_default()
            )
        }),
        rollback_deployment: info
            .and_then(|i| i.rollback_info())
            .and_then(|r| r.rollback_deployment_id())
            .map(String::from),
        ..Default::default()
    };
    // The target appears once CodeDeploy starts on it: until then there are no events to show.
    if let Ok(t) = aws
        .codedeploy
        .get_deployment_target()
        .deployment_id(id)
        .target_id(target)
        .send()
        .await
        && let Some(ecs) = t.deployment_target().and_then(|t| t.ecs_target())
    {
        view.events = ecs
            .lifecycle_events()
            .iter()
            .map(|e| EventView {
                name: e.lifecycle_event_name().unwrap_or_default().to_string(),
                status: e
                    .status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                diagnostics: e.diagnostics().map(|d| {
                    let mut text = d.message().unwrap_or_default().to_string();
                    if let Some(tail) = d.log_tail().filter(|t| !t.is_empty()) {
                        text.push_str(&format!(" (log tail: {})", tail.trim()));
                    }
                    text
                }),
            })
            .collect();
        view.green_weight = ecs
            .task_sets_info()
            .iter()
            .find(|s| s.task_set_label().map(|l| l.as_str()) == Some("Green"))
            .map(|s| s.traffic_weight());
    }
    Ok(view)
}

/// StopDeployment with auto-rollback: CodeDeploy puts the original task set back. Ok(false) when
/// CodeDeploy says the deployment is already over (DeploymentAlreadyCompletedException).
pub(crate) async fn stop_deployment(aws: &Aws, id: &str) -> Result<bool> {
    let sent = aws
        .codedeploy
        .stop_deployment()
        .deployment_id(id)
        .auto_rollback_enabled(true)
        .send()
        .await;
    match sent {
        Ok(_) => Ok(true),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_deployment_already_completed_exception()) =>
        {
            Ok(false)
        }
        Err(err) => Err(anyhow::Error::from(err)).with_context(|| {
            format!("failed to stop CodeDeploy deployment `{id}` (with auto-rollback)")
        }),
    }
}

/// ContinueDeployment(READY_WAIT): a deployment waiting with test traffic on green goes on.
pub(crate) async fn continue_deployment(aws: &Aws, id: &str) -> Result<()> {
    aws.codedeploy
        .continue_deployment()
        .deployment_id(id)
        .deployment_wait_type(DeploymentWaitType::ReadyWait)
        .send()
        .await
        .with_context(|| format!("failed to continue CodeDeploy deployment `{id}` (READY_WAIT)"))?;
    Ok(())
}

/// The deployment group's test and production listeners (the first of each), for `--smoke-test`.
pub(crate) async fn listeners(
    aws: &Aws,
    (application, group): (&str, &str),
) -> Result<(Option<String>, Option<String>)> {
    let out = aws
        .codedeploy
        .get_deployment_group()
        .application_name(application)
        .deployment_group_name(group)
        .send()
        .await
        .with_context(|| format!("failed to read CodeDeploy deployment group `{group}`"))?;
    let pair = out
        .deployment_group_info()
        .and_then(|g| g.load_balancer_info())
        .and_then(|l| l.target_group_pair_info_list().first());
    let first = |route: Option<&aws_sdk_codedeploy::types::TrafficRoute>| {
        route.and_then(|r| r.listener_arns().first().cloned())
    };
    Ok((
        first(pair.and_then(|p| p.test_traffic_route())),
        first(pair.and_then(|p| p.prod_traffic_route())),
    ))
}
