//! A first deploy (`--create-missing`): what does not exist yet is created from files in the repo.
//! The cluster (Fargate and Fargate Spot, Container Insights on) and the service (from a file in the
//! shape `aws ecs create-service --cli-input-json` takes). The ECR repository is `ecr::repository`'s.

use crate::aws::Aws;
use crate::config::Target;
use crate::output::{Outcome, Output, RunResult};
use crate::wire::RawRequest;
use anyhow::{Context, Result, bail};
use aws_sdk_ecs::types::{CapacityProviderStrategyItem, ClusterSetting, ClusterSettingName};
use serde_json::{Value, json};
use std::path::Path;

/// What exists before the deploy (reads only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Missing {
    pub(crate) cluster: bool,
    pub(crate) service: bool,
}

pub(crate) async fn missing(aws: &Aws, target: &Target) -> Result<Missing> {
    let cluster = crate::service::cluster_status(aws, &target.cluster)
        .await?
        .as_deref()
        != Some("ACTIVE");
    if cluster {
        return Ok(Missing {
            cluster,
            service: true,
        });
    }
    let service = !matches!(
        crate::watch::find_service(aws, target).await?,
        Ok(s) if matches!(s.status(), Some("ACTIVE" | "DRAINING"))
    );
    Ok(Missing { cluster, service })
}

/// The keys CreateService takes (the request's JSON names).
const CREATE_SERVICE_KEYS: [&str; 26] = [
    "cluster",
    "serviceName",
    "taskDefinition",
    "availabilityZoneRebalancing",
    "loadBalancers",
    "serviceRegistries",
    "desiredCount",
    "clientToken",
    "launchType",
    "capacityProviderStrategy",
    "platformVersion",
    "role",
    "deploymentConfiguration",
    "placementConstraints",
    "placementStrategy",
    "networkConfiguration",
    "healthCheckGracePeriodSeconds",
    "schedulingStrategy",
    "deploymentController",
    "tags",
    "enableECSManagedTags",
    "propagateTags",
    "enableExecuteCommand",
    "serviceConnectConfiguration",
    "volumeConfigurations",
    "vpcLatticeConfigurations",
];

/// A service definition file, checked before anything is created.
#[derive(Debug, Clone)]
pub(crate) struct ServiceDefinition(pub(crate) Value);

impl ServiceDefinition {
    pub(crate) fn load(path: &Path, target: &Target) -> Result<ServiceDefinition> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read service definition `{}`", path.display()))?;
        let value: Value = if text.trim_start().starts_with('{') {
            serde_json::from_str(&text).map_err(|e| {
                anyhow::anyhow!(
                    "invalid JSON in service definition `{}`: {e}",
                    path.display()
                )
            })?
        } else {
            serde_yaml::from_str(&text).map_err(|e| {
                anyhow::anyhow!(
                    "invalid YAML in service definition `{}`: {e}",
                    path.display()
                )
            })?
        };
        Self::check(value, target)
            .with_context(|| format!("invalid service definition `{}`", path.display()))
    }

    /// Pure: the checks ECS would make later, made now with the field named.
    pub(crate) fn check(value: Value, target: &Target) -> Result<ServiceDefinition> {
        let Some(map) = value.as_object() else {
            bail!(
                "expected a JSON object in the shape `aws ecs create-service --cli-input-json` takes"
            );
        };
        for key in map.keys() {
            if !CREATE_SERVICE_KEYS.contains(&key.as_str()) {
                bail!(
                    "unknown field `{key}` (CreateService takes: {})",
                    CREATE_SERVICE_KEYS.join(", ")
                );
            }
        }
        let name_of = |v: &Value| {
            v.as_str()
                .map(|s| s.rsplit('/').next().unwrap_or(s).to_string())
        };
        if let Some(name) = map.get("serviceName").map(name_of)
            && name.as_deref() != Some(target.service.as_str())
        {
            bail!(
                "`serviceName` is {}, but the service to deploy is `{}`",
                map["serviceName"],
                target.service
            );
        }
        if let Some(cluster) = map.get("cluster").map(name_of)
            && cluster.as_deref()
                != Some(target.cluster.rsplit('/').next().unwrap_or(&target.cluster))
        {
            bail!(
                "`cluster` is {}, but the cluster to deploy to is `{}`",
                map["cluster"],
                target.cluster
            );
        }
        if map.contains_key("launchType") && map.contains_key("capacityProviderStrategy") {
            bail!(
                "`launchType` and `capacityProviderStrategy` cannot both be set; ECS takes one or the other"
            );
        }
        if let Some(kind) = map.get("deploymentController").and_then(|c| c.get("type"))
            && kind != "ECS"
        {
            bail!(
                "`deploymentController.type` is {kind}; deployer rolls services whose deployment controller is ECS"
            );
        }
        if let Some(count) = map.get("desiredCount")
            && count.as_u64().is_none_or(|c| c > 100_000)
        {
            bail!("`desiredCount` is {count}; expected a whole number of 0 or more");
        }
        for (i, lb) in map
            .get("loadBalancers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if lb.get("targetGroupArn").and_then(Value::as_str).is_none()
                && lb.get("loadBalancerName").and_then(Value::as_str).is_none()
            {
                bail!("`loadBalancers[{i}]` needs `targetGroupArn`");
            }
            if lb.get("containerName").and_then(Value::as_str).is_none() {
                bail!("`loadBalancers[{i}].containerName` is missing");
            }
            if !lb.get("containerPort").is_some_and(Value::is_u64) {
                bail!("`loadBalancers[{i}].containerPort` is missing or not a port number");
            }
        }
        if let Some(vpc) = map
            .get("networkConfiguration")
            .map(|n| &n["awsvpcConfiguration"])
        {
            let subnets = vpc["subnets"].as_array().map(Vec::len).unwrap_or(0);
            if subnets == 0 {
                bail!(
                    "`networkConfiguration.awsvpcConfiguration.subnets` must list at least one subnet"
                );
            }
            if let Some(ip) = vpc.get("assignPublicIp")
                && ip != "ENABLED"
                && ip != "DISABLED"
            {
                bail!(
                    "`networkConfiguration.awsvpcConfiguration.assignPublicIp` is {ip}; expected \"ENABLED\" or \"DISABLED\""
                );
            }
        }
        Ok(ServiceDefinition(value))
    }

    /// The network the service's tasks get (for `--run-task` before the service exists).
    pub(crate) fn network(&self) -> Value {
        self.0
            .get("networkConfiguration")
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// Launch type or capacity provider strategy, as RunTask takes them.
    pub(crate) fn placement(&self) -> Value {
        let mut out = json!({});
        for key in ["launchType", "capacityProviderStrategy", "platformVersion"] {
            if let Some(v) = self.0.get(key) {
                out[key] = v.clone();
            }
        }
        out
    }
}

/// Creates the cluster: Fargate and Fargate Spot capacity providers, Container Insights on.
pub(crate) async fn cluster(aws: &Aws, name: &str, out: &Output) -> Result<()> {
    out.step(&format!(
        "creating cluster `{name}` (FARGATE and FARGATE_SPOT, Container Insights on)"
    ));
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

/// Creates the service on `task_definition`; returns the id of its first deployment.
pub(crate) async fn service(
    aws: &Aws,
    target: &Target,
    definition: &ServiceDefinition,
    task_definition: &str,
    out: &Output,
) -> Result<String> {
    out.step(&format!(
        "creating service `{}` in cluster `{}`",
        target.service, target.cluster
    ));
    let mut body = definition.0.clone();
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
    crate::service::primary_deployment(created.service(), "CreateService", &target.service)
}

/// Undoes a first deploy: a service this run created has nothing earlier to go back to, so it is
/// scaled to zero (not deleted: its events and the failed tasks stay for a person to read).
pub(crate) async fn undo(aws: &Aws, target: &Target, out: &Output) -> RunResult {
    let result = RunResult::for_target(target);
    out.info(&format!(
        "service `{}` was created by this run: nothing earlier to return to; scaling it to 0 tasks",
        target.service
    ));
    match aws
        .ecs
        .update_service()
        .cluster(&target.cluster)
        .service(&target.service)
        .desired_count(0)
        .send()
        .await
    {
        Ok(_) => result.finish(Outcome::Deployed, None),
        Err(err) => result.finish(
            Outcome::RollbackFailed,
            Some(format!(
                "failed to scale service `{}` to 0: {:#}",
                target.service,
                anyhow::Error::from(err)
            )),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_definitions_are_checked_with_the_field_named() {
        let target = Target {
            cluster: "shop".into(),
            service: "api".into(),
        };
        let good = json!({
            "serviceName": "api", "desiredCount": 2, "launchType": "FARGATE",
            "loadBalancers": [{"targetGroupArn": "arn:tg", "containerName": "api", "containerPort": 8080}],
            "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-a", "subnet-b"], "assignPublicIp": "DISABLED"}},
            "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": true, "rollback": true}},
            "healthCheckGracePeriodSeconds": 30,
            "serviceConnectConfiguration": {"enabled": true, "namespace": "shop"}
        });
        assert!(ServiceDefinition::check(good.clone(), &target).is_ok());
        for (change, expect) in [
            (json!({"servceName": "api"}), "unknown field `servceName`"),
            (json!({"serviceName": "web"}), "`serviceName`"),
            (json!({"cluster": "other"}), "`cluster`"),
            (
                json!({"capacityProviderStrategy": [{"capacityProvider": "FARGATE"}]}),
                "cannot both be set",
            ),
            (json!({"desiredCount": -1}), "`desiredCount`"),
            (
                json!({"loadBalancers": [{"targetGroupArn": "arn:tg", "containerName": "api"}]}),
                "containerPort",
            ),
            (
                json!({"networkConfiguration": {"awsvpcConfiguration": {"subnets": []}}}),
                "subnets",
            ),
            (
                json!({"deploymentController": {"type": "CODE_DEPLOY"}}),
                "deploymentController",
            ),
        ] {
            let mut bad = good.clone();
            for (k, v) in change.as_object().unwrap() {
                bad[k] = v.clone();
            }
            let err = format!("{:#}", ServiceDefinition::check(bad, &target).unwrap_err());
            assert!(err.contains(expect), "{change}: {err}");
        }
    }
}
