//! `deployer init`: the files deployer starts from, made from a live service. Reads only; the
//! command writes them. Shaping is pure: the task definition as a file (describe output with
//! read-only and default fields dropped, keys in order), the service in the create-service shape,
//! and deployer.toml.

use crate::aws::{Aws, ecs};
use crate::findings::EcrImage;
use crate::service_definition::{self, ServiceDefinition};
use crate::target::Target;
use crate::task_definition::TaskDefinition;
use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};
use std::path::Path;

pub(crate) const CONFIG_FILE: &str = "deployer.toml";
pub(crate) const TASK_DEFINITION_FILE: &str = "task-definition.json";
pub(crate) const SERVICE_DEFINITION_FILE: &str = "service-definition.json";

/// The three files, as text, in the order they are written.
pub(crate) struct Files(pub(crate) Vec<(&'static str, String)>);

/// Reads the service and the task definition it runs, and shapes the files. `dir` is where they
/// go (a Dockerfile there makes deployer.toml's `[build]` table).
pub(crate) async fn read(aws: &Aws, target: &Target, dir: &Path) -> Result<Files> {
    let mut raw = ecs::describe_service_raw(aws, target).await?;
    let service = raw["services"][0].take();
    if service.is_null() || service.get("status").and_then(Value::as_str) == Some("INACTIVE") {
        bail!(
            "service `{}` not found in cluster `{}`: init writes its files from a live service",
            target.service,
            target.cluster
        );
    }
    let arn = service
        .get("taskDefinition")
        .and_then(Value::as_str)
        .context("the service has no task definition")?;
    let td = ecs::describe_task_definition(aws, arn).await?;
    let td_file = task_definition_file(&td.0);
    let definition = service_definition_file(&service, &target.cluster);
    ServiceDefinition::check(definition.clone(), target).context(
        "the service definition made from the live service does not pass deployer's own checks",
    )?;
    let dockerfile = dir.join("Dockerfile").is_file();
    Ok(Files(vec![
        (CONFIG_FILE, config_file(target, &td.0, dockerfile)),
        (TASK_DEFINITION_FILE, pretty(&td_file)),
        (SERVICE_DEFINITION_FILE, pretty(&definition)),
    ]))
}

fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("a Value always serializes");
    text.push('\n');
    text
}

/// Nulls and empty lists and objects dropped, keys sorted, at every depth.
fn tidy(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for key in keys {
                let v = tidy(&map[key]);
                let empty = matches!(&v, Value::Null)
                    || v.as_array().is_some_and(Vec::is_empty)
                    || v.as_object().is_some_and(Map::is_empty);
                if !empty {
                    out.insert(key.clone(), v);
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(tidy).collect()),
        other => other.clone(),
    }
}

/// Describe output as a file RegisterTaskDefinition takes: read-only fields are already gone
/// (`TaskDefinition::from_described`); ECS's defaults go too (a container's cpu 0, essential true).
pub(crate) fn task_definition_file(described: &Value) -> Value {
    let mut doc = TaskDefinition::from_described(described.clone()).0;
    if let Some(containers) = doc
        .get_mut("containerDefinitions")
        .and_then(Value::as_array_mut)
    {
        for c in containers.iter_mut().filter_map(Value::as_object_mut) {
            if c.get("cpu") == Some(&json!(0)) {
                c.remove("cpu");
            }
            if c.get("essential") == Some(&json!(true)) {
                c.remove("essential");
            }
        }
    }
    tidy(&doc)
}

/// DescribeServices' service in the shape `aws ecs create-service --cli-input-json` takes.
pub(crate) fn service_definition_file(service: &Value, cluster: &str) -> Value {
    let mut out = Map::new();
    for key in service_definition::CREATE_SERVICE_KEYS {
        if let Some(v) = service.get(key) {
            out.insert(key.to_string(), v.clone());
        }
    }
    out.remove("clientToken");
    let last = |s: &str| s.rsplit('/').next().unwrap_or(s).to_string();
    out.insert("cluster".into(), json!(last(cluster)));
    if let Some(td) = service.get("taskDefinition").and_then(Value::as_str) {
        let family = last(td);
        let family = family
            .rsplit_once(':')
            .map_or(family.clone(), |(f, _)| f.to_string());
        out.insert("taskDefinition".into(), json!(family));
    }
    if out.contains_key("capacityProviderStrategy") {
        out.remove("launchType");
    }
    tidy(&Value::Object(out))
}

/// deployer.toml: the service, the two files, and `[build]` when the first container's image is
/// in ECR and a Dockerfile is there to build it.
pub(crate) fn config_file(target: &Target, td: &Value, dockerfile: bool) -> String {
    let quote = |s: &str| serde_json::to_string(s).expect("a string serializes");
    let mut text = format!(
        "# Written by `deployer init` from the live service. Flags and DEPLOYER_* variables override it.\n\
         cluster = {}\nservice = {}\ntask-definition = {}\nservice-definition = {}\n",
        quote(&target.cluster),
        quote(&target.service),
        quote(TASK_DEFINITION_FILE),
        quote(SERVICE_DEFINITION_FILE),
    );
    let first = td
        .get("containerDefinitions")
        .and_then(Value::as_array)
        .and_then(|c| c.first());
    let image = first.and_then(|c| c.get("image")).and_then(Value::as_str);
    let name = first.and_then(|c| c.get("name")).and_then(Value::as_str);
    if let (Some(ecr), Some(name), true) = (image.and_then(EcrImage::parse), name, dockerfile) {
        text.push_str(&format!(
            "\n[build]\ncontext = \".\"\nrepository = {}\ncontainer = {}\n",
            quote(&ecr.repository),
            quote(name)
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            cluster: "prod".into(),
            service: "web".into(),
        }
    }

    #[test]
    fn the_task_definition_file_drops_read_only_and_default_fields() {
        let described = json!({
            "taskDefinitionArn": "arn:aws:ecs:us-east-1:1:task-definition/web:3", "revision": 3,
            "status": "ACTIVE", "family": "web", "volumes": [], "placementConstraints": [],
            "containerDefinitions": [{"name": "web", "image": "app:v1", "cpu": 0, "essential": true,
                "mountPoints": [], "environment": [{"name": "A", "value": "1"}]}],
            "registeredAt": "2026-01-01", "compatibilities": ["EC2", "FARGATE"]});
        let file = task_definition_file(&described);
        assert_eq!(
            file,
            json!({"containerDefinitions": [{"environment": [{"name": "A", "value": "1"}], "image": "app:v1", "name": "web"}], "family": "web"})
        );
        assert!(TaskDefinition(file).same_as(&TaskDefinition::from_described(described)));
    }

    #[test]
    fn the_service_definition_is_in_the_create_service_shape() {
        let service = json!({
            "serviceArn": "arn:aws:ecs:us-east-1:1:service/prod/web", "serviceName": "web",
            "clusterArn": "arn:aws:ecs:us-east-1:1:cluster/prod", "status": "ACTIVE",
            "taskDefinition": "arn:aws:ecs:us-east-1:1:task-definition/web:3", "desiredCount": 2,
            "runningCount": 2, "launchType": "FARGATE", "deployments": [{"id": "ecs-svc/1"}],
            "events": [], "serviceRegistries": [],
            "loadBalancers": [{"targetGroupArn": "arn:tg", "containerName": "web", "containerPort": 8080}]});
        let file = service_definition_file(&service, "prod");
        assert_eq!(
            file,
            json!({"cluster": "prod", "desiredCount": 2, "launchType": "FARGATE",
                "loadBalancers": [{"containerName": "web", "containerPort": 8080, "targetGroupArn": "arn:tg"}],
                "serviceName": "web", "taskDefinition": "web"})
        );
        assert!(ServiceDefinition::check(file, &target()).is_ok());
    }

    #[test]
    fn deployer_toml_has_a_build_table_only_for_an_ecr_image_with_a_dockerfile() {
        let ecr = json!({"containerDefinitions": [{"name": "web", "image": "1.dkr.ecr.us-east-1.amazonaws.com/web:abc"}]});
        let other = json!({"containerDefinitions": [{"name": "web", "image": "nginx:1"}]});
        let with = config_file(&target(), &ecr, true);
        assert!(with.contains(
            "cluster = \"prod\"\nservice = \"web\"\ntask-definition = \"task-definition.json\""
        ));
        assert!(
            with.contains("[build]\ncontext = \".\"\nrepository = \"web\"\ncontainer = \"web\""),
            "{with}"
        );
        assert!(!config_file(&target(), &ecr, false).contains("[build]"));
        assert!(!config_file(&target(), &other, true).contains("[build]"));
    }
}
