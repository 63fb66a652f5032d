//! Tasks: the one-off RunTask, the tasks it may have started, one described or stopped, and the
//! EC2 instances of container instances.

use crate::aws::Aws;
use crate::aws::wire::RawRequest;
use anyhow::{Context, Result, bail};
use aws_sdk_ecs::types::DesiredStatus;
use serde_json::Value;

/// RunTask with a request sent as written; returns the task's ARN.
/// One RunTask attempt: the SDK does not retry it, as an answer lost after ECS started the task
/// would start a second one where ECS does not de-duplicate by `clientToken`; the caller looks for
/// the task (`one_off_tasks`) before it tries again with the same token.
pub(crate) async fn run_task(aws: &Aws, task_definition: &str, body: Value) -> Result<String> {
    let once = aws_sdk_ecs::config::Builder::new()
        .retry_config(aws_sdk_ecs::config::retry::RetryConfig::disabled());
    let started = aws
        .ecs
        .run_task()
        .task_definition(task_definition)
        .customize()
        .config_override(once)
        .interceptor(RawRequest(body.to_string().into_bytes()))
        .send()
        .await
        .with_context(|| format!("failed to run a one-off task of `{task_definition}`"))?;
    if let Some(f) = started.failures().first() {
        bail!(
            "ECS could not start the one-off task: {} {}",
            f.reason().unwrap_or_default(),
            f.detail().unwrap_or_default()
        );
    }
    started
        .tasks()
        .first()
        .and_then(|t| t.task_arn())
        .map(String::from)
        .context("RunTask returned no task")
}

/// The tasks deployer started (`startedBy` deployer) in `group` from `task_definition`, created
/// at or after `since`, RUNNING or STOPPED: what a RunTask whose answer was lost may have started.
pub(crate) async fn one_off_tasks(
    aws: &Aws,
    cluster: &str,
    (task_definition, group): (&str, &str),
    since: std::time::SystemTime,
) -> Result<Vec<String>> {
    // arn:…:task-definition/FAMILY:REVISION
    let family = task_definition
        .rsplit('/')
        .next()
        .and_then(|r| r.split(':').next())
        .unwrap_or(task_definition);
    let mut arns = Vec::new();
    for status in [DesiredStatus::Running, DesiredStatus::Stopped] {
        let listed = aws
            .ecs
            .list_tasks()
            .cluster(cluster)
            .started_by("deployer")
            .family(family)
            .desired_status(status)
            .send()
            .await
            .with_context(|| format!("failed to list the one-off tasks in cluster `{cluster}`"))?;
        arns.extend(listed.task_arns().iter().cloned());
    }
    if arns.is_empty() {
        return Ok(arns);
    }
    arns.truncate(100);
    let described = aws
        .ecs
        .describe_tasks()
        .cluster(cluster)
        .set_tasks(Some(arns))
        .send()
        .await
        .with_context(|| format!("failed to describe the one-off tasks in cluster `{cluster}`"))?;
    Ok(described
        .tasks()
        .iter()
        .filter(|t| t.group() == Some(group) && t.task_definition_arn() == Some(task_definition))
        .filter(|t| {
            t.created_at()
                .and_then(|at| std::time::SystemTime::try_from(*at).ok())
                .is_some_and(|at| at >= since)
        })
        .filter_map(|t| t.task_arn().map(String::from))
        .collect())
}

/// One task as DescribeTasks tells it; None when ECS does not know it (yet).
pub(crate) async fn describe_task(
    aws: &Aws,
    cluster: &str,
    task_arn: &str,
) -> Result<Option<aws_sdk_ecs::types::Task>> {
    let described = aws
        .ecs
        .describe_tasks()
        .cluster(cluster)
        .tasks(task_arn)
        .send()
        .await?;
    Ok(described.tasks().first().cloned())
}

/// StopTask with the reason ECS shows as the task's stoppedReason.
pub(crate) async fn stop_task(
    aws: &Aws,
    cluster: &str,
    task_arn: &str,
    reason: &str,
) -> Result<()> {
    aws.ecs
        .stop_task()
        .cluster(cluster)
        .task(task_arn)
        .reason(reason)
        .send()
        .await
        .with_context(|| format!("failed to stop task {task_arn}"))?;
    Ok(())
}

/// The EC2 instance id of each of these container instances (DescribeContainerInstances, 100 a
/// call); ones ECS no longer knows are left out.
pub(crate) async fn container_instances(
    aws: &Aws,
    cluster: &str,
    arns: &[String],
) -> Result<std::collections::HashMap<String, String>> {
    let mut found = std::collections::HashMap::new();
    for chunk in arns.chunks(100) {
        crate::aws::pace::call(crate::aws::pace::Group::EcsTaskReads).await;
        let described = aws
            .ecs
            .describe_container_instances()
            .cluster(cluster)
            .set_container_instances(Some(chunk.to_vec()))
            .send()
            .await
            .with_context(|| {
                format!("failed to describe the container instances of cluster `{cluster}`")
            })?;
        for ci in described.container_instances() {
            if let (Some(arn), Some(id)) = (ci.container_instance_arn(), ci.ec2_instance_id()) {
                found.insert(arn.to_string(), id.to_string());
            }
        }
    }
    Ok(found)
}
