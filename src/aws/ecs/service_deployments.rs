//! Service deployments (ECS's own rollouts): their history, one described, the target groups of a
//! revision, and stopping or continuing one.

use crate::aws::Aws;
use crate::strategy::{HookView, ServiceDeploymentView};
use crate::target::Target;
use anyhow::{Context, Result};
use aws_sdk_ecs::types::{
    DeploymentLifecycleHookAction, DeploymentLifecycleHookTargetType, StopServiceDeploymentStopType,
};

/// The task definitions of the service's SUCCESSFUL deployments, with when each was created.
pub(crate) async fn successful_revisions(aws: &Aws, target: &Target) -> Result<Vec<(i64, String)>> {
    let history = aws
        .ecs
        .list_service_deployments()
        .cluster(&target.cluster)
        .service(&target.service)
        .status(aws_sdk_ecs::types::ServiceDeploymentStatus::Successful)
        .send()
        .await
        .with_context(|| format!("failed to read the deployment history of service `{}`; name the task definition with --to ARN", target.service))?;
    let briefs: Vec<(i64, String)> = history
        .service_deployments()
        .iter()
        .filter_map(|d| {
            Some((
                d.created_at().map_or(0, |t| t.secs()),
                d.target_service_revision_arn()?.to_string(),
            ))
        })
        .collect();
    let mut revisions = Vec::new();
    for chunk in briefs.chunks(20) {
        let out = aws
            .ecs
            .describe_service_revisions()
            .set_service_revision_arns(Some(chunk.iter().map(|(_, arn)| arn.clone()).collect()))
            .send()
            .await
            .with_context(|| {
                format!(
                    "failed to describe the service revisions of `{}`",
                    target.service
                )
            })?;
        for r in out.service_revisions() {
            let created = briefs
                .iter()
                .find(|(_, arn)| Some(arn.as_str()) == r.service_revision_arn())
                .map_or(0, |(t, _)| *t);
            if let Some(td) = r.task_definition() {
                revisions.push((created, td.to_string()));
            }
        }
    }
    Ok(revisions)
}

/// The service deployment as DescribeServiceDeployments tells it; None when ECS does not know it.
pub(crate) async fn describe_service_deployment(
    aws: &Aws,
    arn: &str,
) -> Result<Option<ServiceDeploymentView>> {
    let out = aws
        .ecs
        .describe_service_deployments()
        .service_deployment_arns(arn)
        .send()
        .await
        .with_context(|| format!("failed to describe service deployment `{arn}`"))?;
    let Some(d) = out.service_deployments().first() else {
        return Ok(None);
    };
    let target = d.target_service_revision();
    Ok(Some(ServiceDeploymentView {
        arn: arn.to_string(),
        status: d
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        reason: d.status_reason().map(String::from),
        stage: d.lifecycle_stage().map(|s| s.as_str().to_string()),
        target_revision: target.and_then(|t| t.arn()).map(String::from),
        production_weight: target.and_then(|t| t.requested_production_traffic_weight()),
        test_weight: target.and_then(|t| t.requested_test_traffic_weight()),
        hooks: d
            .lifecycle_hook_details()
            .iter()
            .map(|h| HookView {
                id: h.hook_id().unwrap_or_default().to_string(),
                pause: h.target_type() == Some(&DeploymentLifecycleHookTargetType::Pause),
                status: h
                    .status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                expires: h
                    .expires_at()
                    .and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok()),
            })
            .collect(),
    }))
}

/// The target groups a service revision's tasks are in (its resolved configuration): the green
/// groups of a blue/green deployment, which alternate from one deployment to the next.
pub(crate) async fn revision_target_groups(aws: &Aws, revision: &str) -> Result<Vec<String>> {
    let out = aws
        .ecs
        .describe_service_revisions()
        .service_revision_arns(revision)
        .send()
        .await
        .with_context(|| format!("failed to describe service revision `{revision}`"))?;
    Ok(out
        .service_revisions()
        .iter()
        .filter_map(|r| r.resolved_configuration())
        .flat_map(|c| c.load_balancers())
        .filter_map(|lb| lb.target_group_arn().map(String::from))
        .collect())
}

/// StopServiceDeployment(ROLLBACK): ECS rolls its own deployment back. Ok(false) when ECS says the
/// deployment is already over (ConflictException).
pub(crate) async fn stop_service_deployment(aws: &Aws, arn: &str) -> Result<bool> {
    let sent = aws
        .ecs
        .stop_service_deployment()
        .service_deployment_arn(arn)
        .stop_type(StopServiceDeploymentStopType::Rollback)
        .send()
        .await;
    match sent {
        Ok(_) => Ok(true),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_conflict_exception()) =>
        {
            Ok(false)
        }
        Err(err) => Err(anyhow::Error::from(err))
            .with_context(|| format!("failed to stop service deployment `{arn}` (ROLLBACK)")),
    }
}

/// ContinueServiceDeployment: lets a PAUSE hook go on (`rollback` false) or rolls back from it.
pub(crate) async fn continue_service_deployment(
    aws: &Aws,
    arn: &str,
    hook: &str,
    rollback: bool,
) -> Result<()> {
    let action = match rollback {
        true => DeploymentLifecycleHookAction::Rollback,
        false => DeploymentLifecycleHookAction::Continue,
    };
    aws.ecs
        .continue_service_deployment()
        .service_deployment_arn(arn)
        .hook_id(hook)
        .action(action.clone())
        .send()
        .await
        .with_context(|| {
            format!(
                "failed to continue service deployment `{arn}` at hook `{hook}` ({})",
                action.as_str()
            )
        })?;
    Ok(())
}

/// The newest service deployment of the service created since `since` (a few seconds' slack for
/// clock skew): how a staged deploy finds its own when the UpdateService answer names none.
pub(crate) async fn newest_since(
    aws: &Aws,
    target: &Target,
    since: std::time::SystemTime,
) -> Result<Option<crate::ids::ServiceDeploymentArn>> {
    let after = since - std::time::Duration::from_secs(5);
    let listed = aws
        .ecs
        .list_service_deployments()
        .cluster(&target.cluster)
        .service(&target.service)
        .created_at(
            aws_sdk_ecs::types::CreatedAt::builder()
                .after(aws_smithy_types::DateTime::from(after))
                .build(),
        )
        .send()
        .await
        .with_context(|| {
            format!(
                "failed to list the service deployments of `{}` to find the one UpdateService started",
                target.service
            )
        })?;
    Ok(listed
        .service_deployments()
        .iter()
        .filter_map(|d| Some((d.created_at()?.as_secs_f64(), d.service_deployment_arn()?)))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, arn)| arn.into()))
}
