//! Comparing two task definitions: what ECS fills in by itself does not count, and lists of
//! named items (containers, environment, secrets) are compared by name.

use serde_json::{Map, Value, json};

/// The document without what ECS fills in by itself, so a file equals what ECS stored from it:
/// nulls and empty lists, a container's `cpu: 0` and `essential: true`, and a port mapping's
/// `protocol: tcp` and `hostPort` equal to its `containerPort`.
pub(super) fn comparable(value: &Value) -> Value {
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

pub(super) fn diff_value(path: &str, old: &Value, new: &Value, lines: &mut Vec<String>) {
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
            diff_objects(path, a, b, lines)
        }
        (Value::Array(a), Value::Array(b)) => match (by_name(a), by_name(b)) {
            (Some(a), Some(b)) => diff_named(path, &a, &b, lines),
            _ => lines.push(changed(path, old, new, hide)),
        },
        _ => lines.push(changed(path, old, new, hide)),
    }
}

/// Two objects, key by key (in key order).
fn diff_objects(
    path: &str,
    a: &Map<String, Value>,
    b: &Map<String, Value>,
    lines: &mut Vec<String>,
) {
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

/// Two lists of named items, name by name (in name order).
fn diff_named(path: &str, a: &[(String, &Value)], b: &[(String, &Value)], lines: &mut Vec<String>) {
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
        diff_value(
            &format!("{path}.{name}"),
            &find(a).unwrap_or(Value::Null),
            &find(b).unwrap_or(Value::Null),
            lines,
        );
    }
}

/// The line for a value added, removed or changed at `path`; `hide` leaves the values out. A value
/// that is printed (a whole container, say) has its environment values masked.
fn changed(path: &str, old: &Value, new: &Value, hide: bool) -> String {
    let (old, new) = (masked(old), masked(new));
    match (old.is_null(), new.is_null()) {
        (true, _) if hide => format!("+ {path} (value hidden)"),
        (_, true) if hide => format!("- {path}"),
        _ if hide => format!("~ {path} (value hidden)"),
        (true, _) => format!("+ {path}: {new}"),
        (_, true) => format!("- {path}: {old}"),
        _ => format!("~ {path}: {old} -> {new}"),
    }
}

/// What a masked environment value reads as.
const HIDDEN: &str = "(value hidden)";

/// `value` with every environment value replaced by `HIDDEN`, wherever an `environment` key is:
/// in a list of `{"name", "value"}` pairs (in any capitalisation) only the names are left, in a
/// map only the keys, and anything else in its place is hidden whole.
pub(super) fn masked(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if k.eq_ignore_ascii_case("environment") {
                        names_only(v)
                    } else {
                        masked(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(masked).collect()),
        other => other.clone(),
    }
}

/// An `environment`, its names kept and everything else hidden.
fn names_only(env: &Value) -> Value {
    let hidden = || json!(HIDDEN);
    match env {
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| match item {
                    Value::Object(pair) => Value::Object(
                        pair.iter()
                            .map(|(k, v)| match v {
                                Value::String(_) if k.eq_ignore_ascii_case("name") => {
                                    (k.clone(), v.clone())
                                }
                                _ => (k.clone(), hidden()),
                            })
                            .collect(),
                    ),
                    _ => hidden(),
                })
                .collect(),
        ),
        Value::Object(map) => Value::Object(map.keys().map(|k| (k.clone(), hidden())).collect()),
        Value::Null => Value::Null,
        _ => hidden(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_image_change;
    use crate::task_definition::TaskDefinition;

    fn td(value: Value) -> TaskDefinition {
        TaskDefinition(value)
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
    fn environment_values_never_appear_in_the_diff() {
        let web = json!({"name": "web", "image": "a:1", "environment": [{"name": "A", "value": "zzz-a"}]});
        let sidecar = |environment: Value| json!({"name": "sidecar", "image": "s:1", "environment": environment});
        let doc = |containers: Vec<Value>| {
            td(json!({"family": "web", "containerDefinitions": containers}))
        };
        // (live, new, a line that must be there)
        let cases = [
            (
                doc(vec![web.clone()]),
                doc(vec![
                    web.clone(),
                    sidecar(json!([{"name": "SECRET", "value": "zzz-secret"}])),
                ]),
                "+ containerDefinitions.sidecar: {\"environment\":[{\"name\":\"SECRET\",\"value\":\"(value hidden)\"}]",
            ),
            (
                doc(vec![
                    web.clone(),
                    sidecar(json!([{"name": "SECRET", "value": "zzz-secret"}])),
                ]),
                doc(vec![web.clone()]),
                "- containerDefinitions.sidecar: {\"environment\":[{\"name\":\"SECRET\",\"value\":\"(value hidden)\"}]",
            ),
            (
                doc(vec![web.clone()]),
                doc(vec![
                    json!({"name": "web", "image": "a:1", "environment": [{"name": "A", "value": "zzz-b"}]}),
                ]),
                "~ containerDefinitions.web.environment.A (value hidden)",
            ),
            (
                doc(vec![web.clone()]),
                doc(vec![
                    json!({"name": "web", "image": "a:1", "environment": [{"name": "A", "value": "zzz-a"}, {"name": "B", "value": "zzz-b"}]}),
                ]),
                "+ containerDefinitions.web.environment.B (value hidden)",
            ),
            (
                doc(vec![web.clone()]),
                doc(vec![web.clone(), sidecar(json!({"SECRET": "zzz-secret"}))]),
                "\"environment\":{\"SECRET\":\"(value hidden)\"}",
            ),
            (
                doc(vec![web.clone()]),
                doc(vec![
                    web.clone(),
                    sidecar(json!([{"Name": "SECRET", "Value": "zzz-secret"}])),
                ]),
                "\"environment\":[{\"Name\":\"SECRET\",\"Value\":\"(value hidden)\"}]",
            ),
            (
                doc(vec![web.clone()]),
                doc(vec![web.clone(), sidecar(json!(["SECRET=zzz-secret"]))]),
                "\"environment\":[\"(value hidden)\"]",
            ),
            (
                doc(vec![web.clone()]),
                doc(vec![
                    json!({"name": "web", "image": "a:1", "environment": ["A=zzz-b"]}),
                ]),
                "~ containerDefinitions.web.environment (value hidden)",
            ),
        ];
        for (live, new, expected) in cases {
            let lines = new.diff(&live);
            assert!(
                lines.iter().any(|l| l.contains(expected)),
                "{lines:?} lacks {expected:?}"
            );
            assert!(lines.iter().all(|l| !l.contains("zzz")), "{lines:?}");
        }
    }
}
