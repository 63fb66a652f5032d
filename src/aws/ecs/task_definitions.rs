//! Task definitions: one described (read-only fields dropped) and a new revision registered.

use crate::aws::Aws;
use crate::aws::wire::{RawRequest, RawResponse};
use crate::ids::TaskDefinitionArn;
use crate::task_definition::TaskDefinition;
use anyhow::{Context, Result};

/// The task definition as ECS stores it, read-only fields dropped.
pub(crate) async fn describe_task_definition(aws: &Aws, arn: &str) -> Result<TaskDefinition> {
    let raw = RawResponse::default();
    aws.ecs
        .describe_task_definition()
        .task_definition(arn)
        .customize()
        .interceptor(raw.clone())
        .send()
        .await
        .with_context(|| format!("failed to describe task definition `{arn}`"))?;
    let body = raw
        .take()
        .with_context(|| format!("no response body describing task definition `{arn}`"))?;
    let mut value: serde_json::Value = serde_json::from_slice(&body)
        .with_context(|| format!("ECS sent unreadable JSON for task definition `{arn}`"))?;
    Ok(TaskDefinition::from_described(
        value["taskDefinition"].take(),
    ))
}

/// Registers the document as a new revision of its family; returns the new ARN.
pub(crate) async fn register(aws: &Aws, td: &TaskDefinition) -> Result<TaskDefinitionArn> {
    let family = td.family().to_string();
    // The typed builder only needs to pass validation; RawRequest sends the whole document instead.
    let placeholder = aws_sdk_ecs::types::ContainerDefinition::builder()
        .name("placeholder")
        .build();
    let out = aws
        .ecs
        .register_task_definition()
        .family(&family)
        .container_definitions(placeholder)
        .customize()
        .interceptor(RawRequest(td.to_request_body()))
        .send()
        .await
        .with_context(|| {
            format!("failed to register a new revision of task definition family `{family}`")
        })?;
    out.task_definition()
        .and_then(|t| t.task_definition_arn())
        .map(TaskDefinitionArn::from)
        .with_context(|| format!("ECS registered family `{family}` but returned no ARN"))
}
