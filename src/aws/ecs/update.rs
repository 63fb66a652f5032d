//! The writes to a service: UpdateService (the one deployer sends lives only here), CreateService
//! and the desired count.

use crate::aws::Aws;
use crate::aws::wire::RawRequest;
use crate::ecs_state::DeploymentStatus;
use crate::ids::{DeploymentId, ServiceDeploymentArn, TaskDefinitionArn};
use crate::target::Target;
use anyhow::{Context, Result};
use serde_json::{Value, json};

/// What UpdateService started: the deployment in `deployments[]`, and the service deployment
/// (`currentServiceDeployment`) that BLUE_GREEN, LINEAR and CANARY services are watched through.
pub(crate) struct Updated {
    pub(crate) deployment_id: DeploymentId,
    pub(crate) service_deployment: Option<ServiceDeploymentArn>,
    /// A CODE_DEPLOY service: the CodeDeploy deployment (no UpdateService is sent).
    pub(crate) codedeploy: Option<String>,
    /// The answer's strategy is BLUE_GREEN, LINEAR or CANARY (watched through `service_deployment`).
    pub(crate) staged: bool,
}

/// Points the service at `task_definition` (the one UpdateService deployer sends).
pub(crate) async fn update(
    aws: &Aws,
    target: &Target,
    task_definition: &TaskDefinitionArn,
    force_new_deployment: bool,
) -> Result<Updated> {
    let out = aws
        .ecs
        .update_service()
        .cluster(&target.cluster)
        .service(&target.service)
        .task_definition(task_definition.as_str())
        .force_new_deployment(force_new_deployment)
        .send()
        .await
        .with_context(|| {
            format!(
                "failed to update service `{}` in cluster `{}` to `{task_definition}`",
                target.service, target.cluster
            )
        })?;
    Ok(Updated {
        deployment_id: primary_deployment(out.service(), "UpdateService", &target.service)?,
        service_deployment: out
            .service()
            .and_then(|s| s.current_service_deployment())
            .map(ServiceDeploymentArn::from),
        codedeploy: None,
        staged: out.service().is_some_and(|s| super::shape(s).staged()),
    })
}

/// The id of the PRIMARY deployment an UpdateService or CreateService answer names.
pub(crate) fn primary_deployment(
    service: Option<&aws_sdk_ecs::types::Service>,
    call: &str,
    name: &str,
) -> Result<DeploymentId> {
    service
        .and_then(|s| {
            s.deployments()
                .iter()
                .find(|d| d.status().map(DeploymentStatus::from) == Some(DeploymentStatus::Primary))
        })
        .and_then(|d| d.id().map(DeploymentId::from))
        .with_context(|| format!("{call} for `{name}` returned no PRIMARY deployment"))
}

/// CreateService from a service definition (sent as written); returns the first deployment's id.
pub(crate) async fn create_service(
    aws: &Aws,
    target: &Target,
    definition: &Value,
    task_definition: &str,
) -> Result<DeploymentId> {
    let mut body = definition.clone();
    body["cluster"] = json!(target.cluster);
    body["serviceName"] = json!(target.service);
    body["taskDefinition"] = json!(task_definition);
    let created = aws
        .ecs
        .create_service()
        .service_name(&target.service)
        .customize()
        .interceptor(RawRequest(body.to_string().into_bytes()))
        .send()
        .await
        .with_context(|| {
            format!(
                "failed to create service `{}` in cluster `{}`",
                target.service, target.cluster
            )
        })?;
    primary_deployment(created.service(), "CreateService", &target.service)
}

/// Sets the service's desired count (UpdateService with nothing else).
pub(crate) async fn scale(aws: &Aws, target: &Target, desired: i32) -> Result<()> {
    aws.ecs
        .update_service()
        .cluster(&target.cluster)
        .service(&target.service)
        .desired_count(desired)
        .send()
        .await
        .with_context(|| format!("failed to scale service `{}` to {desired}", target.service))?;
    Ok(())
}
