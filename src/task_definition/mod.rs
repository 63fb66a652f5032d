//! Task definitions as ECS's own JSON documents: read, validate, change, compare.
//!
//! Everything here is pure. A document is in the shape `register-task-definition --cli-input-json`
//! takes; describe output is accepted and its read-only fields dropped. Only what the user asked
//! for changes (images, environment); the rest passes through untouched. Reading and validating a
//! file is in `load`, comparing two documents in `diff`.

mod diff;
mod load;

use crate::target::{EnvChange, ImageChange};
use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};

/// Fields DescribeTaskDefinition returns that RegisterTaskDefinition does not take.
const READ_ONLY: &[&str] = &[
    "taskDefinitionArn",
    "revision",
    "status",
    "requiresAttributes",
    "compatibilities",
    "registeredAt",
    "registeredBy",
    "deregisteredAt",
    "deleteRequestedAt",
];

/// A task definition in RegisterTaskDefinition's shape.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TaskDefinition(pub(crate) Value);

/// An awslogs log configuration of one container.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AwsLogs {
    pub(crate) group: String,
    pub(crate) region: Option<String>,
    pub(crate) stream_prefix: Option<String>,
}

impl TaskDefinition {
    /// The `taskDefinition` object of a DescribeTaskDefinition response.
    pub(crate) fn from_described(mut value: Value) -> TaskDefinition {
        if let Value::Object(map) = &mut value {
            for key in READ_ONLY {
                map.remove(*key);
            }
        }
        TaskDefinition(value)
    }

    pub(crate) fn family(&self) -> &str {
        self.0
            .get("family")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    fn containers(&self) -> impl Iterator<Item = &Map<String, Value>> {
        self.0
            .get("containerDefinitions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
    }

    /// Each container's `essential` (ECS's default: true).
    pub(crate) fn essential_containers(&self) -> std::collections::HashMap<String, bool> {
        self.containers()
            .filter_map(|c| {
                let name = c.get("name")?.as_str()?.to_string();
                Some((
                    name,
                    c.get("essential").and_then(Value::as_bool).unwrap_or(true),
                ))
            })
            .collect()
    }

    pub(crate) fn container_names(&self) -> Vec<String> {
        self.containers()
            .filter_map(|c| c.get("name")?.as_str().map(String::from))
            .collect()
    }

    #[cfg(test)]
    pub(crate) fn image_of(&self, container: &str) -> Option<String> {
        self.containers()
            .find(|c| c.get("name").and_then(Value::as_str) == Some(container))?
            .get("image")?
            .as_str()
            .map(String::from)
    }

    pub(crate) fn awslogs(&self, container: &str) -> Option<AwsLogs> {
        let c = self
            .containers()
            .find(|c| c.get("name").and_then(Value::as_str) == Some(container))?;
        let log = c.get("logConfiguration")?;
        if log.get("logDriver")?.as_str()? != "awslogs" {
            return None;
        }
        let options = log.get("options")?;
        let opt = |k: &str| options.get(k).and_then(Value::as_str).map(String::from);
        Some(AwsLogs {
            group: opt("awslogs-group")?,
            region: opt("awslogs-region"),
            stream_prefix: opt("awslogs-stream-prefix"),
        })
    }

    /// Applies the user's image and environment changes. Unknown containers are refused.
    pub(crate) fn apply(
        &self,
        images: &[ImageChange],
        envs: &[EnvChange],
    ) -> Result<TaskDefinition> {
        let names = self.container_names();
        let resolve = |container: &Option<String>, what: &str| -> Result<String> {
            match container {
                Some(name) if names.contains(name) => Ok(name.clone()),
                Some(name) => bail!(
                    "{what} names container `{name}`, but task definition `{}` has only: {}",
                    self.family(),
                    names.join(", ")
                ),
                None if names.len() == 1 => Ok(names[0].clone()),
                None => bail!(
                    "{what} does not say which container: task definition `{}` has {} ({}); write CONTAINER=… ",
                    self.family(),
                    names.len(),
                    names.join(", ")
                ),
            }
        };
        let mut doc = self.0.clone();
        let containers = doc["containerDefinitions"]
            .as_array_mut()
            .expect("validated: containerDefinitions is a list");
        for change in images {
            let name = resolve(&change.container, &format!("--image `{}`", change.image.0))?;
            let c = containers
                .iter_mut()
                .find(|c| c["name"] == name.as_str())
                .expect("resolved above");
            c["image"] = json!(change.image.0);
        }
        for change in envs {
            let name = resolve(&change.container, &format!("--env `{}`", change.key))?;
            let c = containers
                .iter_mut()
                .find(|c| c["name"] == name.as_str())
                .expect("resolved above");
            let env = c
                .as_object_mut()
                .expect("validated: a container is an object")
                .entry("environment")
                .or_insert_with(|| json!([]));
            let list = env
                .as_array_mut()
                .context("field `environment` is not a list")?;
            match list
                .iter_mut()
                .find(|pair| pair["name"] == change.key.as_str())
            {
                Some(pair) => pair["value"] = json!(change.value),
                None => list.push(json!({"name": change.key, "value": change.value})),
            }
        }
        Ok(TaskDefinition(doc))
    }

    /// The request body for RegisterTaskDefinition.
    pub(crate) fn to_request_body(&self) -> Vec<u8> {
        serde_json::to_vec(&self.0).expect("a serde_json::Value always serializes")
    }

    /// True when registering `self` would give ECS nothing new compared with `live`.
    pub(crate) fn same_as(&self, live: &TaskDefinition) -> bool {
        diff::comparable(&self.0) == diff::comparable(&live.0)
    }

    /// Human lines saying what changes from `live` to `self`. Environment values are never shown.
    pub(crate) fn diff(&self, live: &TaskDefinition) -> Vec<String> {
        let mut lines = Vec::new();
        diff::diff_value(
            "",
            &diff::comparable(&live.0),
            &diff::comparable(&self.0),
            &mut lines,
        );
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_env_change, parse_image_change};

    fn td(value: Value) -> TaskDefinition {
        TaskDefinition(value)
    }

    fn two_containers() -> TaskDefinition {
        td(json!({"family": "web", "containerDefinitions": [
            {"name": "web", "image": "app:v1", "environment": [{"name": "A", "value": "1"}]},
            {"name": "proxy", "image": "envoy:1"}]}))
    }

    #[test]
    fn apply_changes_only_what_was_asked() {
        let base = two_containers();
        let new = base
            .apply(
                &[parse_image_change("web=app:v2").unwrap()],
                &[parse_env_change("proxy:B=2").unwrap()],
            )
            .unwrap();
        assert_eq!(new.image_of("web").as_deref(), Some("app:v2"));
        assert_eq!(new.image_of("proxy").as_deref(), Some("envoy:1"));
        assert_eq!(
            new.0["containerDefinitions"][1]["environment"],
            json!([{"name": "B", "value": "2"}])
        );
        assert_eq!(
            new.diff(&base),
            vec![
                "+ containerDefinitions.proxy.environment.B (value hidden)".to_string(),
                "~ containerDefinitions.web.image: \"app:v1\" -> \"app:v2\"".to_string(),
            ]
        );
    }

    #[test]
    fn bare_image_needs_a_single_container() {
        let err = two_containers()
            .apply(&[parse_image_change("app:v2").unwrap()], &[])
            .unwrap_err();
        assert!(
            err.to_string().contains("does not say which container"),
            "{err}"
        );
        let err = two_containers()
            .apply(&[parse_image_change("db=app:v2").unwrap()], &[])
            .unwrap_err();
        assert!(
            err.to_string().contains("`db`") && err.to_string().contains("web, proxy"),
            "{err}"
        );
    }
}
