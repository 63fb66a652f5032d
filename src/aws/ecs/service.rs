//! The service as ECS describes it: DescribeServices (typed and raw JSON), its deployments, its
//! events, its rollout shape and its CODE_DEPLOY task sets.

use crate::aws::Aws;
use crate::aws::reads;
use crate::aws::wire::RawResponse;
use crate::rollout::DeploymentView;
use crate::strategy::{Hook, Shape, Strategy};
use crate::target::Target;
use anyhow::{Context, Result, bail};
use aws_sdk_ecs::types::{DeploymentLifecycleHookTargetType, DeploymentStrategy, Service};
use serde_json::Value;
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

/// The ids of the service's events as they are now (those a watch must not print as new).
pub(crate) fn event_ids(service: &Service) -> std::collections::HashSet<String> {
    service
        .events()
        .iter()
        .filter_map(|e| e.id().map(String::from))
        .collect()
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
