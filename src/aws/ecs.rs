//! ECS calls: the service and its deployments, clusters, task definitions, and the one UpdateService.

use crate::aws::Aws;
use crate::aws::reads;
use crate::aws::wire::{RawRequest, RawResponse};
use crate::ecs_state::{DeploymentStatus, Status};
use crate::ids::{DeploymentId, ServiceDeploymentArn, TaskDefinitionArn};
use crate::rollout::DeploymentView;
use crate::strategy::{Hook, HookView, ServiceDeploymentView, Shape, Strategy};
use crate::target::Target;
use crate::task_definition::TaskDefinition;
use anyhow::{Context, Result, bail};
use aws_sdk_ecs::types::{
    CapacityProviderStrategyItem, ClusterSetting, ClusterSettingName,
    DeploymentLifecycleHookAction, DeploymentLifecycleHookTargetType, DeploymentStrategy,
    DesiredStatus, Service, StopServiceDeploymentStopType,
};
use serde_json::{Value, json};
use std::time::Duration;

/// The service, or None with ECS's reason (MISSING) when the cluster has no such service.
pub(crate) async fn find_service(aws: &Aws, target: &Target) -> Result<reads::Found> {
    reads::service(&aws.ecs, &target.cluster, &target.service)
        .await
        .with_context(|| {
            format!(
                "failed to describe service `{}` in cluster `{}`",
                target.service, target.cluster
            )
        })
}

pub(crate) async fn describe_service(aws: &Aws, target: &Target) -> Result<Service> {
    match find_service(aws, target).await? {
        Ok(service) => Ok(service),
        Err(reason) => bail!(
            "service `{}` not found in cluster `{}`{}",
            target.service,
            target.cluster,
            reason.map(|r| format!(" ({r})")).unwrap_or_default()
        ),
    }
}

pub(crate) fn deployments(service: &Service) -> Vec<DeploymentView> {
    service
        .deployments()
        .iter()
        .map(|d| DeploymentView {
            id: d.id().unwrap_or_default().into(),
            status: d.status().unwrap_or_default().into(),
            task_definition: d.task_definition().unwrap_or_default().into(),
            rollout_state: d.rollout_state().map(|s| s.as_str().into()),
            rollout_state_reason: d.rollout_state_reason().map(String::from),
            desired: d.desired_count(),
            running: d.running_count(),
            pending: d.pending_count(),
            failed: d.failed_tasks(),
        })
        .collect()
}

/// The cluster's status (ACTIVE, INACTIVE, …), or None when ECS does not know it.
pub(crate) async fn cluster_status(aws: &Aws, cluster: &str) -> Result<Option<Status>> {
    // The services of one run mostly share a cluster: one DescribeClusters answers them all. Only
    // ACTIVE is kept; a missing cluster may be created by --create-missing a moment later.
    static ACTIVE: tokio::sync::Mutex<Vec<String>> = tokio::sync::Mutex::const_new(Vec::new());
    let mut active = ACTIVE.lock().await;
    if active.iter().any(|c| c == cluster) {
        return Ok(Some(Status::Active));
    }
    let clusters = aws
        .ecs
        .describe_clusters()
        .clusters(cluster)
        .send()
        .await
        .with_context(|| format!("failed to describe cluster `{cluster}`"))?;
    let status = clusters
        .clusters()
        .first()
        .map(|c| Status::from(c.status().unwrap_or("in an unknown state")));
    if status == Some(Status::Active) {
        active.push(cluster.to_string());
    }
    Ok(status)
}

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

/// What UpdateService started: the deployment in `deployments[]`, and the service deployment
/// (`currentServiceDeployment`) that BLUE_GREEN, LINEAR and CANARY services are watched through.
pub(crate) struct Updated {
    pub(crate) deployment_id: DeploymentId,
    pub(crate) service_deployment: Option<ServiceDeploymentArn>,
    /// A CODE_DEPLOY service: the CodeDeploy deployment (no UpdateService is sent).
    pub(crate) codedeploy: Option<String>,
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

/// Creates the cluster: Fargate and Fargate Spot capacity providers, Container Insights on.
pub(crate) async fn create_cluster(aws: &Aws, name: &str) -> Result<()> {
    let fargate = CapacityProviderStrategyItem::builder()
        .capacity_provider("FARGATE")
        .weight(1)
        .base(0)
        .build()
        .context("building the capacity provider strategy")?;
    aws.ecs
        .create_cluster()
        .cluster_name(name)
        .capacity_providers("FARGATE")
        .capacity_providers("FARGATE_SPOT")
        .default_capacity_provider_strategy(fargate)
        .settings(
            ClusterSetting::builder()
                .name(ClusterSettingName::ContainerInsights)
                .value("enabled")
                .build(),
        )
        .send()
        .await
        .with_context(|| format!("failed to create cluster `{name}`"))?;
    Ok(())
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

/// The ids of the service's events as they are now (those a watch must not print as new).
pub(crate) fn event_ids(service: &Service) -> std::collections::HashSet<String> {
    service
        .events()
        .iter()
        .filter_map(|e| e.id().map(String::from))
        .collect()
}

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

/// DescribeServices of one service as ECS sent it (JSON), for the fields the SDK's types drop.
pub(crate) async fn describe_service_raw(aws: &Aws, target: &Target) -> Result<Value> {
    let raw = RawResponse::default();
    aws.ecs
        .describe_services()
        .cluster(&target.cluster)
        .services(&target.service)
        .customize()
        .interceptor(raw.clone())
        .send()
        .await
        .with_context(|| format!("failed to describe service `{}`", target.service))?;
    serde_json::from_slice(&raw.take().unwrap_or_default())
        .context("ECS sent unreadable JSON describing the service")
}

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

/// How the service rolls out: strategy, bake time, alternate target group and lifecycle hooks.
pub(crate) fn shape(service: &Service) -> Shape {
    let config = service.deployment_configuration();
    let minutes = |m: Option<i32>| m.map(|m| Duration::from_secs(m.max(0) as u64 * 60));
    let strategy = match config.and_then(|c| c.strategy()) {
        None | Some(DeploymentStrategy::Rolling) => Strategy::Rolling,
        Some(DeploymentStrategy::BlueGreen) => Strategy::BlueGreen,
        Some(DeploymentStrategy::Linear) => {
            let linear = config.and_then(|c| c.linear_configuration());
            Strategy::Linear {
                step_percent: linear.and_then(|l| l.step_percent()).unwrap_or(10.0),
                step_bake: minutes(linear.and_then(|l| l.step_bake_time_in_minutes()))
                    .unwrap_or(Duration::from_secs(360)),
            }
        }
        Some(DeploymentStrategy::Canary) => {
            let canary = config.and_then(|c| c.canary_configuration());
            Strategy::Canary {
                canary_percent: canary.and_then(|c| c.canary_percent()).unwrap_or(5.0),
                canary_bake: minutes(canary.and_then(|c| c.canary_bake_time_in_minutes()))
                    .unwrap_or(Duration::from_secs(600)),
            }
        }
        Some(other) => Strategy::Other(other.as_str().to_string()),
    };
    let advanced = service
        .load_balancers()
        .iter()
        .find_map(|lb| lb.advanced_configuration());
    Shape {
        strategy,
        bake: minutes(config.and_then(|c| c.bake_time_in_minutes())),
        alternate: advanced
            .and_then(|a| a.alternate_target_group_arn())
            .map(|arn| arn.split('/').nth(1).unwrap_or(arn).to_string()),
        test_listener_rule: advanced
            .and_then(|a| a.test_listener_rule())
            .map(String::from),
        production_listener_rule: advanced
            .and_then(|a| a.production_listener_rule())
            .map(String::from),
        codedeploy: service
            .deployment_controller()
            .is_some_and(|c| c.r#type().as_str() == "CODE_DEPLOY"),
        hooks: config
            .map(|c| c.lifecycle_hooks())
            .unwrap_or_default()
            .iter()
            .map(|h| Hook {
                pause: h.target_type() == Some(&DeploymentLifecycleHookTargetType::Pause),
                stages: h
                    .lifecycle_stages()
                    .iter()
                    .map(|s| s.as_str().to_string())
                    .collect(),
            })
            .collect(),
    }
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

/// A CODE_DEPLOY service's task sets: id, status and task definition.
pub(crate) fn task_sets(service: &Service) -> Vec<crate::codedeploy::TaskSet> {
    service
        .task_sets()
        .iter()
        .map(|s| {
            (
                s.id().unwrap_or_default().to_string(),
                s.status().unwrap_or_default().to_string(),
                s.task_definition().unwrap_or_default().to_string(),
            )
        })
        .collect()
}
