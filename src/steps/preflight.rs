//! The ECS service before and during a deploy: the pre-flight checks (all reads), and the only two
//! writes deployer makes: RegisterTaskDefinition and UpdateService.

use crate::aws::Aws;
use crate::config::Target;
use crate::output::Output;
use crate::rollout::{self, Busy};
use crate::task_definition::TaskDefinition;
use crate::watch::{Interrupt, deployments, describe_service};
use crate::wire::{RawRequest, RawResponse};
use anyhow::{Context, Result, bail};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// What runs now, recorded before any write: the exact rollback target.
pub(crate) struct Live {
    pub(crate) task_definition_arn: String,
    pub(crate) task_definition: TaskDefinition,
    /// Ids of the service events that happened before this deploy.
    pub(crate) event_ids: HashSet<String>,
}

/// Reads only. Refuses (Err) when the cluster or service is missing or not ACTIVE, the service is not
/// under the ECS deployment controller, or another deployment is in progress (unless `wait_for_idle`).
pub(crate) async fn preflight(
    aws: &Aws,
    target: &Target,
    wait_for_idle: bool,
    timeout: Duration,
    out: &Output,
    interrupt: &Interrupt,
) -> Result<Live> {
    match cluster_status(aws, &target.cluster).await? {
        Some(status) if status == "ACTIVE" => {}
        Some(status) => bail!("cluster `{}` is {status}, not ACTIVE", target.cluster),
        None => bail!(
            "cluster `{}` not found (check the name and the AWS region; to create it and the service, pass --create-missing with --service-definition FILE and --task-definition FILE)",
            target.cluster
        ),
    }
    let deadline = Instant::now() + timeout;
    let mut said_waiting = false;
    let (previous, event_ids) = loop {
        let service = describe_service(aws, target).await.map_err(|err| {
            let text = format!("{err:#}");
            if text.contains("not found in cluster") {
                anyhow::anyhow!(
                    "{text}; to create it, pass --create-missing with --service-definition FILE and --task-definition FILE"
                )
            } else {
                err
            }
        })?;
        if service.status() != Some("ACTIVE") {
            bail!(
                "service `{}` is {}, not ACTIVE",
                target.service,
                service.status().unwrap_or("in an unknown state")
            );
        }
        let controller = service
            .deployment_controller()
            .map(|c| c.r#type().as_str().to_string());
        if let Some(kind) = controller.filter(|k| k != "ECS") {
            bail!(
                "service `{}` uses the {kind} deployment controller; deployer rolls services whose deployment controller is ECS (rolling update). Deploy {kind} services with their own tooling",
                target.service
            );
        }
        match rollout::rollback_target(&deployments(&service)) {
            Ok(previous) => {
                break (
                    previous,
                    service
                        .events()
                        .iter()
                        .filter_map(|e| e.id().map(String::from))
                        .collect(),
                );
            }
            Err(Busy::InProgress {
                deployment,
                task_definition,
            }) if wait_for_idle && Instant::now() < deadline => {
                if !said_waiting {
                    out.info(&format!("waiting for deployment {deployment} ({task_definition}) to finish (--wait-for-idle)"));
                    said_waiting = true;
                }
                let seen = interrupt.count();
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(2)) => {}
                    () = interrupt.after(seen) => bail!("interrupted while waiting for deployment {deployment} to finish; nothing was changed"),
                }
            }
            Err(Busy::InProgress {
                deployment,
                task_definition,
            }) => bail!(
                "another deployment of service `{}` is in progress: {deployment} ({task_definition}); wait for it to finish or pass --wait-for-idle",
                target.service
            ),
            Err(Busy::NoCompleted) => bail!(
                "service `{}` has no COMPLETED deployment to return to if this deploy fails; fix the service first (deployer status shows its deployments)",
                target.service
            ),
        }
    };
    let task_definition = describe_task_definition(aws, &previous).await?;
    Ok(Live {
        task_definition_arn: previous,
        task_definition,
        event_ids,
    })
}

/// The cluster's status (ACTIVE, INACTIVE, …), or None when ECS does not know it.
pub(crate) async fn cluster_status(aws: &Aws, cluster: &str) -> Result<Option<String>> {
    // The services of one run mostly share a cluster: one DescribeClusters answers them all. Only
    // ACTIVE is kept; a missing cluster may be created by --create-missing a moment later.
    static ACTIVE: tokio::sync::Mutex<Vec<String>> = tokio::sync::Mutex::const_new(Vec::new());
    let mut active = ACTIVE.lock().await;
    if active.iter().any(|c| c == cluster) {
        return Ok(Some("ACTIVE".to_string()));
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
        .map(|c| c.status().unwrap_or("in an unknown state").to_string());
    if status.as_deref() == Some("ACTIVE") {
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
pub(crate) async fn register(aws: &Aws, td: &TaskDefinition) -> Result<String> {
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
        .map(String::from)
        .with_context(|| format!("ECS registered family `{family}` but returned no ARN"))
}

/// Points the service at `task_definition`; returns the id of the deployment ECS created.
pub(crate) async fn update(
    aws: &Aws,
    target: &Target,
    task_definition: &str,
    force_new_deployment: bool,
) -> Result<String> {
    let out = aws
        .ecs
        .update_service()
        .cluster(&target.cluster)
        .service(&target.service)
        .task_definition(task_definition)
        .force_new_deployment(force_new_deployment)
        .send()
        .await
        .with_context(|| {
            format!(
                "failed to update service `{}` in cluster `{}` to `{task_definition}`",
                target.service, target.cluster
            )
        })?;
    primary_deployment(out.service(), "UpdateService", &target.service)
}

/// The id of the PRIMARY deployment an UpdateService or CreateService answer names.
pub(crate) fn primary_deployment(
    service: Option<&aws_sdk_ecs::types::Service>,
    call: &str,
    name: &str,
) -> Result<String> {
    service
        .and_then(|s| {
            s.deployments()
                .iter()
                .find(|d| d.status() == Some("PRIMARY"))
        })
        .and_then(|d| d.id().map(String::from))
        .with_context(|| format!("{call} for `{name}` returned no PRIMARY deployment"))
}
