//! A service definition file (the shape `aws ecs create-service --cli-input-json` takes), checked
//! before anything is created: what `--create-missing` creates a service from.

use crate::target::Target;
use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};
use std::path::Path;

/// A file whose text starts with this is read as JSON.
const JSON_OBJECT_START: char = '{';

/// The keys CreateService takes (the request's JSON names).
pub(crate) const CREATE_SERVICE_KEYS: [&str; 26] = [
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
        Self::check(parse(path, &text)?, target)
            .with_context(|| format!("invalid service definition `{}`", path.display()))
    }

    /// Pure: the checks ECS would make later, made now with the field named.
    pub(crate) fn check(value: Value, target: &Target) -> Result<ServiceDefinition> {
        let Some(map) = value.as_object() else {
            bail!(
                "expected a JSON object in the shape `aws ecs create-service --cli-input-json` takes"
            );
        };
        check_keys(map)?;
        check_names(map, target)?;
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
        check_load_balancers(map)?;
        check_network(map)?;
        check_strategy(map)?;
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

/// The file's text as a document: JSON when it starts with `{`, YAML otherwise.
fn parse(path: &Path, text: &str) -> Result<Value> {
    if text.trim_start().starts_with(JSON_OBJECT_START) {
        serde_json::from_str(text).map_err(|e| {
            anyhow::anyhow!(
                "invalid JSON in service definition `{}`: {e}",
                path.display()
            )
        })
    } else {
        serde_yaml::from_str(text).map_err(|e| {
            anyhow::anyhow!(
                "invalid YAML in service definition `{}`: {e}",
                path.display()
            )
        })
    }
}

/// Every key is one CreateService takes.
fn check_keys(map: &Map<String, Value>) -> Result<()> {
    for key in map.keys() {
        if !CREATE_SERVICE_KEYS.contains(&key.as_str()) {
            bail!(
                "unknown field `{key}` (CreateService takes: {})",
                CREATE_SERVICE_KEYS.join(", ")
            );
        }
    }
    Ok(())
}

/// `serviceName` and `cluster`, when given (as names or ARNs), are the ones being deployed.
fn check_names(map: &Map<String, Value>, target: &Target) -> Result<()> {
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
        && cluster.as_deref() != Some(target.cluster.rsplit('/').next().unwrap_or(&target.cluster))
    {
        bail!(
            "`cluster` is {}, but the cluster to deploy to is `{}`",
            map["cluster"],
            target.cluster
        );
    }
    Ok(())
}

/// Each load balancer names its target group, container and port.
fn check_load_balancers(map: &Map<String, Value>) -> Result<()> {
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
    Ok(())
}

/// `deploymentConfiguration.strategy` and its settings as ECS takes them: BLUE_GREEN with a bake
/// time, hooks on stages that take them, linear/canary settings only with their strategy, and a
/// load-balanced staged service naming its alternate target group and production listener rule.
fn check_strategy(map: &Map<String, Value>) -> Result<()> {
    let config = map.get("deploymentConfiguration").unwrap_or(&Value::Null);
    let shape = crate::strategy::Shape::from_definition(config, map.get("loadBalancers"))
        .map_err(|why| anyhow::anyhow!("`deploymentConfiguration`: {why}"))?;
    shape
        .check(None, false)
        .map_err(|why| anyhow::anyhow!("`deploymentConfiguration`: {why}"))?;
    if !shape.staged() {
        return Ok(());
    }
    for (i, lb) in map
        .get("loadBalancers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let advanced = &lb["advancedConfiguration"];
        for field in [
            "alternateTargetGroupArn",
            "productionListenerRule",
            "roleArn",
        ] {
            if advanced.get(field).and_then(Value::as_str).is_none() {
                bail!(
                    "`loadBalancers[{i}].advancedConfiguration.{field}` is missing; a {} service needs it",
                    config["strategy"].as_str().unwrap_or("staged")
                );
            }
        }
    }
    Ok(())
}

/// An awsvpc network lists a subnet, and `assignPublicIp` is ENABLED or DISABLED.
fn check_network(map: &Map<String, Value>) -> Result<()> {
    let Some(vpc) = map
        .get("networkConfiguration")
        .map(|n| &n["awsvpcConfiguration"])
    else {
        return Ok(());
    };
    let subnets = vpc["subnets"].as_array().map(Vec::len).unwrap_or(0);
    if subnets == 0 {
        bail!("`networkConfiguration.awsvpcConfiguration.subnets` must list at least one subnet");
    }
    if let Some(ip) = vpc.get("assignPublicIp")
        && ip != "ENABLED"
        && ip != "DISABLED"
    {
        bail!(
            "`networkConfiguration.awsvpcConfiguration.assignPublicIp` is {ip}; expected \"ENABLED\" or \"DISABLED\""
        );
    }
    Ok(())
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

    #[test]
    fn a_staged_service_definition_is_checked_as_ecs_would() {
        let target = Target {
            cluster: "shop".into(),
            service: "api".into(),
        };
        let lb = |advanced: Value| {
            json!([{"targetGroupArn": "arn:tg1", "containerName": "api", "containerPort": 8080,
                "advancedConfiguration": advanced}])
        };
        let wired = json!({"alternateTargetGroupArn": "arn:tg2", "productionListenerRule": "arn:rule",
            "roleArn": "arn:role"});
        let with = |config: Value, advanced: Value| {
            json!({"serviceName": "api", "desiredCount": 2, "deploymentConfiguration": config,
                "loadBalancers": lb(advanced)})
        };
        // (deploymentConfiguration, advancedConfiguration) → refused with (None: accepted)
        let cases = [
            (
                json!({"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 5}),
                wired.clone(),
                None,
            ),
            (
                json!({"strategy": "BLUE_GREEN"}),
                wired.clone(),
                Some("no bakeTimeInMinutes"),
            ),
            (
                json!({"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 5}),
                json!({}),
                Some("alternateTargetGroupArn` is missing"),
            ),
            (
                json!({"strategy": "LINEAR", "bakeTimeInMinutes": 5, "linearConfiguration": {"stepPercent": 25.0}}),
                wired.clone(),
                None,
            ),
            (
                json!({"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 5, "canaryConfiguration": {"canaryPercent": 5.0}}),
                wired.clone(),
                Some("`canaryConfiguration` is for the CANARY strategy"),
            ),
            (
                json!({"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 5,
                "lifecycleHooks": [{"targetType": "PAUSE", "lifecycleStages": ["PRODUCTION_TRAFFIC_SHIFT"]}]}),
                wired.clone(),
                Some("a PAUSE hook on PRODUCTION_TRAFFIC_SHIFT"),
            ),
            (
                json!({"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 5,
                "lifecycleHooks": [{"targetType": "PAUSE", "lifecycleStages": ["POST_TEST_TRAFFIC_SHIFT"]}]}),
                wired.clone(),
                None,
            ),
            (json!({"strategy": "SHADOW"}), json!({}), Some("`SHADOW`")),
        ];
        for (config, advanced, want) in cases {
            let checked = ServiceDefinition::check(with(config.clone(), advanced), &target);
            match want {
                None => assert!(checked.is_ok(), "{config}: {:?}", checked.err()),
                Some(text) => {
                    let err = format!("{:#}", checked.expect_err("refused"));
                    assert!(err.contains(text), "{config}: {err}");
                }
            }
        }
    }
}
