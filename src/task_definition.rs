//! Task definitions as ECS's own JSON documents: read, validate, change, compare.
//!
//! Everything here is pure. A document is in the shape `register-task-definition --cli-input-json`
//! takes; describe output is accepted and its read-only fields dropped. Only what the user asked
//! for changes (images, environment); the rest passes through untouched.

use crate::target::{EnvChange, ImageChange};
use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};
use std::path::Path;

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

#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int,
    Bool,
    Array,
    Object,
}

const TOP_LEVEL: &[(&str, Kind)] = &[
    ("family", Kind::Str),
    ("taskRoleArn", Kind::Str),
    ("executionRoleArn", Kind::Str),
    ("networkMode", Kind::Str),
    ("containerDefinitions", Kind::Array),
    ("volumes", Kind::Array),
    ("placementConstraints", Kind::Array),
    ("requiresCompatibilities", Kind::Array),
    ("cpu", Kind::Str),
    ("memory", Kind::Str),
    ("tags", Kind::Array),
    ("pidMode", Kind::Str),
    ("ipcMode", Kind::Str),
    ("proxyConfiguration", Kind::Object),
    ("inferenceAccelerators", Kind::Array),
    ("ephemeralStorage", Kind::Object),
    ("runtimePlatform", Kind::Object),
    ("enableFaultInjection", Kind::Bool),
];

const CONTAINER: &[(&str, Kind)] = &[
    ("name", Kind::Str),
    ("image", Kind::Str),
    ("repositoryCredentials", Kind::Object),
    ("cpu", Kind::Int),
    ("memory", Kind::Int),
    ("memoryReservation", Kind::Int),
    ("links", Kind::Array),
    ("portMappings", Kind::Array),
    ("essential", Kind::Bool),
    ("restartPolicy", Kind::Object),
    ("entryPoint", Kind::Array),
    ("command", Kind::Array),
    ("environment", Kind::Array),
    ("environmentFiles", Kind::Array),
    ("mountPoints", Kind::Array),
    ("volumesFrom", Kind::Array),
    ("linuxParameters", Kind::Object),
    ("secrets", Kind::Array),
    ("dependsOn", Kind::Array),
    ("startTimeout", Kind::Int),
    ("stopTimeout", Kind::Int),
    ("versionConsistency", Kind::Str),
    ("hostname", Kind::Str),
    ("user", Kind::Str),
    ("workingDirectory", Kind::Str),
    ("disableNetworking", Kind::Bool),
    ("privileged", Kind::Bool),
    ("readonlyRootFilesystem", Kind::Bool),
    ("dnsServers", Kind::Array),
    ("dnsSearchDomains", Kind::Array),
    ("extraHosts", Kind::Array),
    ("dockerSecurityOptions", Kind::Array),
    ("interactive", Kind::Bool),
    ("pseudoTerminal", Kind::Bool),
    ("dockerLabels", Kind::Object),
    ("ulimits", Kind::Array),
    ("logConfiguration", Kind::Object),
    ("healthCheck", Kind::Object),
    ("systemControls", Kind::Array),
    ("resourceRequirements", Kind::Array),
    ("firelensConfiguration", Kind::Object),
    ("credentialSpecs", Kind::Array),
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

    /// A JSON or YAML file, validated; `describe-task-definition` output is unwrapped.
    pub(crate) fn load(path: &Path) -> Result<TaskDefinition> {
        let name = path.display();
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read task definition file `{name}`"))?;
        let is_json =
            path.extension().is_some_and(|e| e == "json") || text.trim_start().starts_with('{');
        let value: Value = if is_json {
            serde_json::from_str(&text).map_err(|e| {
                anyhow::anyhow!("invalid task definition `{name}`: not valid JSON: {e}")
            })?
        } else {
            serde_yaml::from_str(&text).map_err(|e| {
                anyhow::anyhow!("invalid task definition `{name}`: not valid YAML: {e}")
            })?
        };
        let value = match value {
            Value::Object(mut map) if map.contains_key("taskDefinition") => {
                map.remove("taskDefinition").unwrap_or(Value::Null)
            }
            other => other,
        };
        let td = TaskDefinition::from_described(value);
        td.validate()
            .with_context(|| format!("invalid task definition `{name}`"))?;
        Ok(td)
    }

    /// Checks the shape and types RegisterTaskDefinition would otherwise reject (after a write attempt).
    pub(crate) fn validate(&self) -> Result<()> {
        let Value::Object(map) = &self.0 else {
            bail!(
                "expected a JSON/YAML object at the top level, found {}",
                kind_of(&self.0)
            );
        };
        check_fields(map, TOP_LEVEL, "")?;
        match map.get("family") {
            Some(Value::String(f)) if valid_family(f) => {}
            Some(Value::String(f)) => bail!(
                "field `family` is `{f}`: expected 1-255 letters, digits, hyphens or underscores"
            ),
            _ => bail!("field `family` is missing: expected the task definition family name"),
        }
        if let Some(Value::String(mode)) = map.get("networkMode")
            && !["bridge", "host", "awsvpc", "none"].contains(&mode.as_str())
        {
            bail!("field `networkMode` is `{mode}`: expected one of bridge, host, awsvpc, none");
        }
        let Some(Value::Array(containers)) = map.get("containerDefinitions") else {
            bail!("field `containerDefinitions` is missing: expected a list of containers");
        };
        if containers.is_empty() {
            bail!("field `containerDefinitions` is empty: expected at least one container");
        }
        let mut names = Vec::new();
        for (i, container) in containers.iter().enumerate() {
            let at = format!("containerDefinitions[{i}]");
            let Value::Object(c) = container else {
                bail!(
                    "field `{at}` must be an object, found {}",
                    kind_of(container)
                );
            };
            check_fields(c, CONTAINER, &format!("{at}."))?;
            let Some(Value::String(name)) = c.get("name") else {
                bail!("field `{at}.name` is missing: every container needs a name");
            };
            if names.contains(name) {
                bail!("field `{at}.name`: container name `{name}` is used twice");
            }
            names.push(name.clone());
            if !matches!(c.get("image"), Some(Value::String(_))) {
                bail!("field `{at}.image` is missing: container `{name}` needs an image");
            }
            if let Some(Value::Array(env)) = c.get("environment") {
                for (j, pair) in env.iter().enumerate() {
                    let ok = pair.get("name").is_some_and(Value::is_string)
                        && pair.get("value").is_none_or(Value::is_string);
                    if !ok {
                        bail!(
                            "field `{at}.environment[{j}]` must be {{\"name\": string, \"value\": string}}, found {pair}"
                        );
                    }
                }
            }
            if let Some(Value::Array(ports)) = c.get("portMappings") {
                for (j, port) in ports.iter().enumerate() {
                    if !port.get("containerPort").is_none_or(|p| p.is_u64()) {
                        bail!(
                            "field `{at}.portMappings[{j}].containerPort` must be an integer, found {}",
                            port["containerPort"]
                        );
                    }
                }
            }
        }
        Ok(())
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
        comparable(&self.0) == comparable(&live.0)
    }

    /// Human lines saying what changes from `live` to `self`. Environment values are never shown.
    pub(crate) fn diff(&self, live: &TaskDefinition) -> Vec<String> {
        let mut lines = Vec::new();
        diff_value("", &comparable(&live.0), &comparable(&self.0), &mut lines);
        lines
    }
}

fn valid_family(family: &str) -> bool {
    !family.is_empty()
        && family.len() <= 255
        && family
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn check_fields(map: &Map<String, Value>, known: &[(&str, Kind)], prefix: &str) -> Result<()> {
    for (key, value) in map {
        let Some((_, kind)) = known.iter().find(|(k, _)| k == key) else {
            let names: Vec<&str> = known.iter().map(|(k, _)| *k).collect();
            bail!(
                "unknown field `{prefix}{key}`: expected one of {}",
                names.join(", ")
            );
        };
        let ok = match kind {
            Kind::Str => value.is_string(),
            Kind::Int => value.is_i64() || value.is_u64(),
            Kind::Bool => value.is_boolean(),
            Kind::Array => value.is_array(),
            Kind::Object => value.is_object(),
        };
        if !ok && !value.is_null() {
            let expected = match kind {
                Kind::Str => "a string",
                Kind::Int => "an integer",
                Kind::Bool => "true or false",
                Kind::Array => "a list",
                Kind::Object => "an object",
            };
            bail!(
                "field `{prefix}{key}` must be {expected}, found {} {value}",
                kind_of(value)
            );
        }
    }
    Ok(())
}

/// The document without what ECS fills in by itself, so a file equals what ECS stored from it:
/// nulls and empty lists, a container's `cpu: 0` and `essential: true`, and a port mapping's
/// `protocol: tcp` and `hostPort` equal to its `containerPort`.
fn comparable(value: &Value) -> Value {
    let mut doc = normalized(value);
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
            for port in c
                .get_mut("portMappings")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
                .filter_map(Value::as_object_mut)
            {
                if port.get("protocol") == Some(&json!("tcp")) {
                    port.remove("protocol");
                }
                if port.get("hostPort").is_some()
                    && port.get("hostPort") == port.get("containerPort")
                {
                    port.remove("hostPort");
                }
            }
        }
    }
    doc
}

/// Drops nulls and empty lists/objects, which ECS treats as absent.
fn normalized(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), normalized(v)))
                .filter(|(_, v)| !is_empty(v))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(normalized).collect()),
        other => other.clone(),
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Lists of objects with a `name` (containers, environment, secrets) are compared by name.
fn by_name(items: &[Value]) -> Option<Vec<(String, &Value)>> {
    items
        .iter()
        .map(|i| {
            i.get("name")
                .and_then(Value::as_str)
                .map(|n| (n.to_string(), i))
        })
        .collect()
}

fn diff_value(path: &str, old: &Value, new: &Value, lines: &mut Vec<String>) {
    if old == new {
        return;
    }
    let hide = path.ends_with(".environment") || path.contains(".environment.");
    // A list that appears or disappears is compared item by item against an empty one.
    let empty = Value::Array(Vec::new());
    let (old, new) = match (old, new) {
        (Value::Null, Value::Array(a)) if by_name(a).is_some() => (&empty, new),
        (Value::Array(a), Value::Null) if by_name(a).is_some() => (old, &empty),
        _ => (old, new),
    };
    match (old, new) {
        (Value::Object(a), Value::Object(b)) if !(hide && a.contains_key("value")) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                diff_value(
                    &child,
                    a.get(key).unwrap_or(&Value::Null),
                    b.get(key).unwrap_or(&Value::Null),
                    lines,
                );
            }
        }
        (Value::Array(a), Value::Array(b)) if by_name(a).is_some() && by_name(b).is_some() => {
            let (a, b) = (
                by_name(a).unwrap_or_default(),
                by_name(b).unwrap_or_default(),
            );
            let mut names: Vec<&String> = a
                .iter()
                .map(|(n, _)| n)
                .chain(b.iter().map(|(n, _)| n))
                .collect();
            names.sort();
            names.dedup();
            for name in names {
                let find = |list: &[(String, &Value)]| {
                    list.iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, v)| (*v).clone())
                };
                let child = format!("{path}.{name}");
                diff_value(
                    &child,
                    &find(&a).unwrap_or(Value::Null),
                    &find(&b).unwrap_or(Value::Null),
                    lines,
                );
            }
        }
        _ if hide => lines.push(match (old.is_null(), new.is_null()) {
            (true, _) => format!("+ {path} (value hidden)"),
            (_, true) => format!("- {path}"),
            _ => format!("~ {path} (value hidden)"),
        }),
        (Value::Null, _) => lines.push(format!("+ {path}: {new}")),
        (_, Value::Null) => lines.push(format!("- {path}: {old}")),
        _ => lines.push(format!("~ {path}: {old} -> {new}")),
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

    #[test]
    fn described_defaults_do_not_count_as_changes() {
        let file =
            td(json!({"family": "web", "containerDefinitions": [{"name": "web", "image": "a:1"}]}));
        let live = TaskDefinition::from_described(
            json!({"family": "web", "revision": 4, "status": "ACTIVE",
            "volumes": [], "containerDefinitions": [{"name": "web", "image": "a:1", "mountPoints": [], "environment": []}]}),
        );
        assert!(file.same_as(&live));
        let stored = TaskDefinition::from_described(
            json!({"family": "web", "containerDefinitions": [{"name": "web", "image": "a:1",
            "cpu": 0, "essential": true, "portMappings": [{"containerPort": 8080, "hostPort": 8080, "protocol": "tcp"}]}]}),
        );
        let written = td(
            json!({"family": "web", "containerDefinitions": [{"name": "web", "image": "a:1", "portMappings": [{"containerPort": 8080}]}]}),
        );
        assert!(written.same_as(&stored), "{:?}", written.diff(&stored));
        let changed = td(
            json!({"family": "web", "containerDefinitions": [{"name": "web", "image": "a:1", "cpu": 256, "portMappings": [{"containerPort": 8080}]}]}),
        );
        assert!(!changed.same_as(&stored));
        assert!(
            !file
                .apply(&[parse_image_change("a:2").unwrap()], &[])
                .unwrap()
                .same_as(&live)
        );
    }

    #[test]
    fn validation_names_the_field() {
        let cases = [
            (json!([]), "top level"),
            (json!({"containerDefinitions": []}), "`family` is missing"),
            (
                json!({"family": "web"}),
                "`containerDefinitions` is missing",
            ),
            (
                json!({"family": "web", "containerDefinitions": []}),
                "is empty",
            ),
            (
                json!({"family": "w b", "containerDefinitions": [{"name": "a", "image": "b"}]}),
                "`family` is `w b`",
            ),
            (
                json!({"family": "web", "containerDefinitions": [{"image": "b"}]}),
                "`containerDefinitions[0].name` is missing",
            ),
            (
                json!({"family": "web", "containerDefinitions": [{"name": "a"}]}),
                "`containerDefinitions[0].image` is missing",
            ),
            (
                json!({"family": "web", "containerDefinitions": [{"name": "a", "image": "b", "memory": "512"}]}),
                "`containerDefinitions[0].memory` must be an integer",
            ),
            (
                json!({"family": "web", "cpu": 256, "containerDefinitions": [{"name": "a", "image": "b"}]}),
                "`cpu` must be a string",
            ),
            (
                json!({"family": "web", "containerDefnitions": []}),
                "unknown field `containerDefnitions`",
            ),
            (
                json!({"family": "web", "networkMode": "vpc", "containerDefinitions": [{"name": "a", "image": "b"}]}),
                "networkMode",
            ),
            (
                json!({"family": "web", "containerDefinitions": [{"name": "a", "image": "b", "environment": [{"name": "X", "value": 1}]}]}),
                "`containerDefinitions[0].environment[0]`",
            ),
            (
                json!({"family": "web", "containerDefinitions": [{"name": "a", "image": "b"}, {"name": "a", "image": "c"}]}),
                "used twice",
            ),
        ];
        for (value, expected) in cases {
            let err = td(value.clone()).validate().unwrap_err().to_string();
            assert!(err.contains(expected), "{value}: {err}");
        }
    }
}
