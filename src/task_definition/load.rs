//! Reading a task definition file (JSON or YAML, describe output unwrapped) and checking it
//! against the fields RegisterTaskDefinition takes, with the offending field named.

use super::TaskDefinition;
use anyhow::{Context, Result, bail};
use serde_json::{Map, Value};
use std::path::Path;

/// A file whose text starts with this is read as JSON, whatever its name.
const JSON_OBJECT_START: char = '{';

/// What a container's `environment` must be.
const ENVIRONMENT: &str = "a list of {\"name\": string, \"value\": string}";

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

impl TaskDefinition {
    /// A JSON or YAML file, validated; `describe-task-definition` output is unwrapped.
    pub(crate) fn load(path: &Path) -> Result<TaskDefinition> {
        let name = path.display();
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read task definition file `{name}`"))?;
        let td = TaskDefinition::from_described(unwrap_described(parse(path, &text)?));
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
            check_container(&format!("containerDefinitions[{i}]"), container, &mut names)?;
        }
        Ok(())
    }
}

/// The file's text as a document: JSON when the name ends in `.json` or the text starts with `{`,
/// YAML otherwise.
fn parse(path: &Path, text: &str) -> Result<Value> {
    let name = path.display();
    let is_json = path.extension().is_some_and(|e| e == "json")
        || text.trim_start().starts_with(JSON_OBJECT_START);
    if is_json {
        serde_json::from_str(text)
            .map_err(|e| anyhow::anyhow!("invalid task definition `{name}`: not valid JSON: {e}"))
    } else {
        serde_yaml::from_str(text)
            .map_err(|e| anyhow::anyhow!("invalid task definition `{name}`: not valid YAML: {e}"))
    }
}

/// `describe-task-definition` output holds the document under `taskDefinition`.
fn unwrap_described(value: Value) -> Value {
    match value {
        Value::Object(mut map) if map.contains_key("taskDefinition") => {
            map.remove("taskDefinition").unwrap_or(Value::Null)
        }
        other => other,
    }
}

/// One entry of `containerDefinitions`, at `at`; its name must not be in `names` yet.
fn check_container(at: &str, container: &Value, names: &mut Vec<String>) -> Result<()> {
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
        check_environment(at, env)?;
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
    Ok(())
}

/// A container's `environment`: a list of `{"name": string, "value": string}`.
fn check_environment(at: &str, env: &[Value]) -> Result<()> {
    for (j, pair) in env.iter().enumerate() {
        let ok = pair.get("name").is_some_and(Value::is_string)
            && pair.get("value").is_none_or(Value::is_string);
        if !ok {
            bail!(
                "field `{at}.environment[{j}]` must be {{\"name\": string, \"value\": string}}, found {}",
                shape(pair)
            );
        }
    }
    Ok(())
}

/// What an environment entry holds, told by its keys and their kinds: never a value.
fn shape(pair: &Value) -> String {
    let Value::Object(map) = pair else {
        return kind_of(pair).to_string();
    };
    let keys: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("`{k}` ({})", kind_of(v)))
        .collect();
    let mut text = format!("an object with {}", keys.join(", "));
    if map.keys().any(|k| k == "Name" || k == "Value") {
        text.push_str("; the keys are `name` and `value`, in lower case");
    }
    text
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
            // An environment's values are never shown: only what kind of value was found.
            let (expected, found) = if key == "environment" {
                (ENVIRONMENT, kind_of(value).to_string())
            } else {
                (expected, format!("{} {value}", kind_of(value)))
            };
            bail!("field `{prefix}{key}` must be {expected}, found {found}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn td(value: Value) -> TaskDefinition {
        TaskDefinition(value)
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

    #[test]
    fn validation_never_shows_environment_values() {
        let with_env = |environment: Value| json!({"family": "web", "containerDefinitions": [{"name": "a", "image": "b", "environment": environment}]});
        let cases = [
            (
                with_env(json!({"SECRET": "zzz-secret"})),
                "`containerDefinitions[0].environment` must be a list of",
            ),
            (with_env(json!("SECRET=zzz-secret")), "found a string"),
            (
                with_env(json!([{"Name": "SECRET", "Value": "zzz-secret"}])),
                "`Name` (a string), `Value` (a string); the keys are `name` and `value`",
            ),
            (
                with_env(json!([{"name": "SECRET", "value": 12345}])),
                "`containerDefinitions[0].environment[0]` must be",
            ),
            (with_env(json!(["SECRET=zzz-secret"])), "found a string"),
        ];
        for (value, expected) in cases {
            let err = format!("{:#}", td(value.clone()).validate().unwrap_err());
            assert!(err.contains(expected), "{value}: {err}");
            assert!(
                !err.contains("zzz") && !err.contains("12345"),
                "{value}: {err}"
            );
        }
    }
}
