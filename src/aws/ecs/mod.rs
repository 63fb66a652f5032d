//! ECS calls: the service and its deployments, clusters, task definitions, and the one UpdateService.
//!
//! One file per concern; every caller names these through `aws::ecs`.

mod service;
mod service_deployments;
mod task_definitions;
mod tasks;
mod update;

pub(crate) use service::{
    deployments, describe_service, describe_service_raw, event_ids, find_service, shape, task_sets,
};
pub(crate) use service_deployments::{
    continue_service_deployment, describe_service_deployment, newest_since, revision_target_groups,
    stop_service_deployment, successful_revisions,
};
pub(crate) use task_definitions::{describe_task_definition, register};
pub(crate) use tasks::{container_instances, describe_task, one_off_tasks, run_task, stop_task};
pub(crate) use update::{Updated, create_service, scale, update};

use crate::aws::Aws;
use crate::ecs_state::Status;
use anyhow::{Context, Result};
use aws_sdk_ecs::types::{CapacityProviderStrategyItem, ClusterSetting, ClusterSettingName};

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
