//! `--run-task`: a one-off task (database migrations) from the new task definition, with the
//! service's network, run to its end before the service is touched. Its logs stream to the
//! terminal; an essential container that exits non-zero stops the deploy.

use crate::aws::Aws;
use crate::config::{RunTask, Target};
use crate::output::Output;
use crate::task_definition::TaskDefinition;
use crate::watch::Interrupt;
use crate::wire::{RawRequest, RawResponse};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How one container of the one-off task ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Exit {
    pub(crate) container: String,
    pub(crate) essential: bool,
    pub(crate) exit_code: Option<i64>,
    pub(crate) reason: Option<String>,
}

/// Pure: the containers whose end stops the deploy (an essential one, or the named one, that did
/// not exit 0).
pub(crate) fn failed<'a>(exits: &'a [Exit], named: Option<&str>) -> Vec<&'a Exit> {
    exits
        .iter()
        .filter(|e| e.essential || Some(e.container.as_str()) == named)
        .filter(|e| e.exit_code != Some(0))
        .collect()
}

/// The RunTask request (pure): the service's network and placement, the container override.
pub(crate) fn request(
    target: &Target,
    task_definition: &str,
    spec: &RunTask,
    network: &Value,
    placement: &Value,
) -> Value {
    let mut body = json!({
        "cluster": target.cluster,
        "taskDefinition": task_definition,
        "count": 1,
        "startedBy": "deployer",
        "group": format!("deployer:{}", target.service),
    });
    if !network.is_null() {
        body["networkConfiguration"] = network.clone();
    }
    if let Some(map) = placement.as_object() {
        for (k, v) in map {
            body[k] = v.clone();
        }
    }
    if let (Some(container), Some(command)) = (&spec.container, &spec.command) {
        body["overrides"] =
            json!({"containerOverrides": [{"name": container, "command": command}]});
    }
    body
}

/// The service's network configuration and launch type / capacity provider strategy, as ECS
/// stores them (raw JSON, so nothing is lost on the way to RunTask).
pub(crate) async fn placement_of(aws: &Aws, target: &Target) -> Result<(Value, Value)> {
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
    let body: Value = serde_json::from_slice(&raw.take().unwrap_or_default())
        .context("ECS sent unreadable JSON describing the service")?;
    let service = &body["services"][0];
    let mut placement = json!({});
    match service
        .get("capacityProviderStrategy")
        .filter(|s| s.as_array().is_some_and(|a| !a.is_empty()))
    {
        Some(strategy) => placement["capacityProviderStrategy"] = strategy.clone(),
        None => {
            if let Some(launch) = service.get("launchType") {
                placement["launchType"] = launch.clone();
            }
        }
    }
    if let Some(version) = service.get("platformVersion") {
        placement["platformVersion"] = version.clone();
    }
    Ok((
        service
            .get("networkConfiguration")
            .cloned()
            .unwrap_or(Value::Null),
        placement,
    ))
}

/// Runs the task and waits for it to stop. Err when it could not run or a container failed.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run(
    aws: &Aws,
    target: &Target,
    task_definition_arn: &str,
    td: &TaskDefinition,
    spec: &RunTask,
    (network, placement): (Value, Value),
    timeout: Duration,
    out: &Output,
    interrupt: &Interrupt,
) -> Result<()> {
    let what = match (&spec.container, &spec.command) {
        (Some(c), Some(cmd)) => format!("container `{c}` with `{}`", cmd.join(" ")),
        (Some(c), None) => format!("container `{c}`"),
        _ => "the new task definition".to_string(),
    };
    out.step(&format!("running a one-off task before the update: {what}"));
    let body = request(target, task_definition_arn, spec, &network, &placement);
    let started = aws
        .ecs
        .run_task()
        .task_definition(task_definition_arn)
        .customize()
        .interceptor(RawRequest(body.to_string().into_bytes()))
        .send()
        .await
        .with_context(|| format!("failed to run a one-off task of `{task_definition_arn}`"))?;
    if let Some(f) = started.failures().first() {
        bail!(
            "ECS could not start the one-off task: {} {}",
            f.reason().unwrap_or_default(),
            f.detail().unwrap_or_default()
        );
    }
    let task_arn = started
        .tasks()
        .first()
        .and_then(|t| t.task_arn())
        .context("RunTask returned no task")?
        .to_string();
    let task_id = task_arn.rsplit('/').next().unwrap_or(&task_arn).to_string();
    out.info(&format!("one-off task {task_id}"));

    let deadline = Instant::now() + timeout;
    let mut tokens: HashMap<String, String> = HashMap::new();
    let seen = interrupt.count();
    let task = loop {
        let described = aws
            .ecs
            .describe_tasks()
            .cluster(&target.cluster)
            .tasks(&task_arn)
            .send()
            .await
            .with_context(|| format!("failed to describe one-off task {task_id}"))?;
        let task = described
            .tasks()
            .first()
            .cloned()
            .context("the one-off task disappeared")?;
        stream_logs(aws, td, &task_id, &mut tokens, out).await;
        if task.last_status() == Some("STOPPED") {
            break task;
        }
        if Instant::now() > deadline {
            stop(aws, target, &task_arn, "deployer: --timeout passed").await;
            bail!(
                "the one-off task {task_id} did not stop within {timeout:?}; it was stopped and the service was not changed"
            );
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
            () = interrupt.after(seen) => {
                stop(aws, target, &task_arn, "deployer: interrupted").await;
                bail!("interrupted while the one-off task {task_id} ran; it was stopped and the service was not changed");
            }
        }
    };
    stream_logs(aws, td, &task_id, &mut tokens, out).await;
    let essential: HashMap<String, bool> = td.essential_containers();
    let exits: Vec<Exit> = task
        .containers()
        .iter()
        .map(|c| {
            let name = c.name().unwrap_or_default().to_string();
            Exit {
                essential: essential.get(&name).copied().unwrap_or(true),
                container: name,
                exit_code: c.exit_code().map(i64::from),
                reason: c.reason().map(String::from),
            }
        })
        .collect();
    let failures = failed(&exits, spec.container.as_deref());
    if failures.is_empty() {
        out.info(&format!(
            "one-off task {task_id} finished: every essential container exited 0"
        ));
        return Ok(());
    }
    let mut text = format!(
        "the one-off task {task_id} failed ({}), so the service was not updated:",
        task.stopped_reason().unwrap_or("stopped")
    );
    for exit in failures {
        let code = exit
            .exit_code
            .map_or("no exit code".to_string(), |c| format!("exit code {c}"));
        text.push_str(&format!("\n  container `{}`: {code}", exit.container));
        if let Some(reason) = &exit.reason {
            text.push_str(&format!(" ({reason})"));
        }
        let (lines, source) = crate::failure::log_tail(aws, td, &exit.container, &task_id).await;
        if !lines.is_empty() {
            text.push_str(&format!(
                "\n  last log lines ({}):",
                source.unwrap_or_default()
            ));
            for line in lines {
                text.push_str(&format!("\n    {line}"));
            }
        }
    }
    bail!(text)
}

async fn stop(aws: &Aws, target: &Target, task_arn: &str, reason: &str) {
    let _ = aws
        .ecs
        .stop_task()
        .cluster(&target.cluster)
        .task(task_arn)
        .reason(reason)
        .send()
        .await;
}

/// Prints the lines each container wrote since the last look.
async fn stream_logs(
    aws: &Aws,
    td: &TaskDefinition,
    task_id: &str,
    tokens: &mut HashMap<String, String>,
    out: &Output,
) {
    for container in td.container_names() {
        let Some(logs) = td.awslogs(&container) else {
            continue;
        };
        let Some(prefix) = logs.stream_prefix.as_deref() else {
            continue;
        };
        let mut request = aws
            .logs(logs.region.as_deref())
            .get_log_events()
            .log_group_name(&logs.group)
            .log_stream_name(format!("{prefix}/{container}/{task_id}"))
            .start_from_head(true);
        if let Some(token) = tokens.get(&container) {
            request = request.next_token(token);
        }
        // The stream appears only once the container writes; until then there is nothing to show.
        let Ok(page) = request.send().await else {
            continue;
        };
        for event in page.events() {
            if let Some(message) = event.message() {
                out.info(&format!("{container}> {}", message.trim_end()));
            }
        }
        if let Some(token) = page.next_forward_token() {
            tokens.insert(container.clone(), token.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_essential_or_named_containers_that_did_not_exit_0_fail_the_run() {
        let exit = |name: &str, essential: bool, code: Option<i64>| Exit {
            container: name.into(),
            essential,
            exit_code: code,
            reason: None,
        };
        let names = |v: Vec<&Exit>| {
            v.into_iter()
                .map(|e| e.container.clone())
                .collect::<Vec<_>>()
        };
        for (exits, named, want) in [
            (vec![exit("app", true, Some(0))], None, vec![]),
            (vec![exit("app", true, Some(1))], None, vec!["app"]),
            (vec![exit("app", true, None)], None, vec!["app"]),
            (
                vec![
                    exit("app", true, Some(0)),
                    exit("sidecar", false, Some(137)),
                ],
                None,
                vec![],
            ),
            (
                vec![exit("app", true, Some(0)), exit("migrate", false, Some(2))],
                Some("migrate"),
                vec!["migrate"],
            ),
        ] {
            assert_eq!(names(failed(&exits, named)), want);
        }
    }

    #[test]
    fn the_request_carries_the_services_network_and_the_override() {
        let target = Target {
            cluster: "shop".into(),
            service: "api".into(),
        };
        let network =
            json!({"awsvpcConfiguration": {"subnets": ["subnet-a"], "securityGroups": ["sg-1"]}});
        let spec = RunTask {
            container: Some("api".into()),
            command: Some(vec!["./migrate".into(), "up".into()]),
        };
        let body = request(
            &target,
            "arn:td:3",
            &spec,
            &network,
            &json!({"launchType": "FARGATE"}),
        );
        assert_eq!(body["networkConfiguration"], network);
        assert_eq!(body["launchType"], "FARGATE");
        assert_eq!(
            body["overrides"]["containerOverrides"][0],
            json!({"name": "api", "command": ["./migrate", "up"]})
        );
        let whole = RunTask {
            container: None,
            command: None,
        };
        assert!(
            request(&target, "arn:td:3", &whole, &Value::Null, &json!({}))
                .get("overrides")
                .is_none()
        );
    }
}
