//! `--run-task`: a one-off task (database migrations) from the new task definition, with the
//! service's network, run to its end before the service is touched. Its logs stream to the
//! terminal; an essential container that exits non-zero stops the deploy.

use crate::aws::{Aws, ecs, logs};
use crate::ecs_state::TaskStatus;
use crate::report::output::Output;
use crate::signal::{Stop, Wait};
use crate::target::{RunTask, Target};
use crate::task_definition::TaskDefinition;
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
    let body = ecs::describe_service_raw(aws, target).await?;
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

/// The one-off task to run: the new revision, with the service's network and placement.
pub(crate) struct OneOff<'a> {
    pub(crate) target: &'a Target,
    pub(crate) task_definition_arn: &'a str,
    pub(crate) td: &'a TaskDefinition,
    pub(crate) spec: &'a RunTask,
    pub(crate) placement: (Value, Value),
}

/// The wait ended (deadline or signal) before the one-off task stopped: StopTask, and why.
async fn stop_early(
    aws: &Aws,
    target: &Target,
    task_arn: &str,
    task_id: &str,
    stop: Stop,
    wait: &Wait,
) -> anyhow::Error {
    let (reason, said) = match stop {
        Stop::Deadline => (
            "deployer: --timeout passed",
            format!("did not stop within {:?}", wait.timeout()),
        ),
        Stop::Signal => ("deployer: interrupted", "was interrupted".to_string()),
    };
    let _ = ecs::stop_task(aws, &target.cluster, task_arn, reason).await;
    anyhow::anyhow!(
        "the one-off task {task_id} {said}; it was stopped and the service was not changed"
    )
}

/// Runs the task and waits (within `wait`) for it to stop. Err when it could not run, a container
/// failed, or the wait ended first (then the task is stopped).
pub(crate) async fn run(aws: &Aws, task: OneOff<'_>, wait: &Wait, out: &Output) -> Result<()> {
    let OneOff {
        target,
        task_definition_arn,
        td,
        spec,
        placement: (network, placement),
    } = task;
    let what = match (&spec.container, &spec.command) {
        (Some(c), Some(cmd)) => format!("container `{c}` with `{}`", cmd.join(" ")),
        (Some(c), None) => format!("container `{c}`"),
        _ => "the new task definition".to_string(),
    };
    out.step(&format!("running a one-off task before the update: {what}"));
    let mut body = request(target, task_definition_arn, spec, &network, &placement);
    body["clientToken"] = json!(client_token());
    let task_arn = start(aws, (target, task_definition_arn), body, wait, out).await?;
    let task_id = task_arn.rsplit('/').next().unwrap_or(&task_arn).to_string();
    out.info(&format!("one-off task {task_id}"));
    let mut tokens: HashMap<String, Option<String>> = HashMap::new();
    let started = Instant::now();
    let stopped = loop {
        // The read is raced against --timeout and the signals too: a DescribeTasks that hangs
        // must not hold the wait, nor leave the task running.
        let task = match wait
            .until(ecs::describe_task(aws, &target.cluster, &task_arn))
            .await
        {
            Ok(task) => {
                task.with_context(|| format!("failed to describe one-off task {task_id}"))?
            }
            Err(stop) => return Err(stop_early(aws, target, &task_arn, &task_id, stop, wait).await),
        };
        // ECS reads are eventually consistent: right after RunTask, DescribeTasks may not know
        // the task yet. It is polled for a while, not abandoned (it may be running a migration).
        let task = match task {
            Some(task) => Some(task),
            None if started.elapsed() < NOT_YET_VISIBLE => None,
            None => {
                let _ =
                    ecs::stop_task(aws, &target.cluster, &task_arn, "deployer: not visible").await;
                bail!(
                    "the one-off task {task_id} was not visible to DescribeTasks within {}s of RunTask; it was stopped and the service was not changed",
                    NOT_YET_VISIBLE.as_secs()
                )
            }
        };
        if let Some(task) = task {
            stream_logs(aws, td, &task_id, &mut tokens, out).await;
            if task.last_status().map(TaskStatus::from) == Some(TaskStatus::Stopped) {
                break task;
            }
        }
        if let Err(stop) = wait.pause(Duration::from_millis(500)).await {
            return Err(stop_early(aws, target, &task_arn, &task_id, stop, wait).await);
        }
    };
    stream_logs(aws, td, &task_id, &mut tokens, out).await;
    let exits = exits(&stopped, td);
    let failures = failed(&exits, spec.container.as_deref());
    if failures.is_empty() {
        out.info(&format!(
            "one-off task {task_id} finished: every essential container exited 0"
        ));
        return Ok(());
    }
    let stopped_reason = stopped.stopped_reason().unwrap_or("stopped");
    bail!(failure_text(aws, td, &task_id, stopped_reason, &failures).await)
}

/// How long a one-off task RunTask returned may stay unknown to DescribeTasks.
const NOT_YET_VISIBLE: Duration = Duration::from_secs(30);

/// RunTask attempts before giving up (each after looking for a task the last one started).
const RUN_ATTEMPTS: u32 = 4;

/// A token unique to this run's RunTask (ECS's idempotency key, at most 64 characters): the time
/// in nanoseconds and the process id.
fn client_token() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("deployer-{nanos:x}-{:x}", std::process::id())
}

/// RunTask, once per attempt with the same `clientToken`. After an error (a lost answer, a
/// timeout, a 5xx) the task may have started anyway: deployer looks for it first and follows it,
/// and tries again only when there is none, so a migration never runs twice.
async fn start(
    aws: &Aws,
    (target, task_definition): (&Target, &str),
    body: Value,
    wait: &Wait,
    out: &Output,
) -> Result<String> {
    let sent = std::time::SystemTime::now() - Duration::from_secs(5);
    let group = format!("deployer:{}", target.service);
    let mut attempt = 1;
    loop {
        let err = match ecs::run_task(aws, task_definition, body.clone()).await {
            Ok(arn) => return Ok(arn),
            Err(err) if format!("{err}").starts_with("ECS could not start") => return Err(err),
            Err(err) => err,
        };
        let found = ecs::one_off_tasks(aws, &target.cluster, (task_definition, &group), sent)
            .await
            .unwrap_or_default();
        if let Some(arn) = found.first() {
            out.warn(&format!(
                "RunTask failed ({err:#}), but it started the one-off task: following {arn}"
            ));
            return Ok(arn.clone());
        }
        if attempt >= RUN_ATTEMPTS || wait.pause(Duration::from_secs(1)).await.is_err() {
            return Err(err);
        }
        out.warn(&format!(
            "RunTask failed ({err:#}) and started no task: trying again with the same client token"
        ));
        attempt += 1;
    }
}

/// How each container of the stopped task ended.
fn exits(task: &aws_sdk_ecs::types::Task, td: &TaskDefinition) -> Vec<Exit> {
    let essential: HashMap<String, bool> = td.essential_containers();
    task.containers()
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
        .collect()
}

/// Why the one-off task failed: each failed container's exit code and last log lines.
async fn failure_text(
    aws: &Aws,
    td: &TaskDefinition,
    task_id: &str,
    stopped_reason: &str,
    failures: &[&Exit],
) -> String {
    let mut text = format!(
        "the one-off task {task_id} failed ({stopped_reason}), so the service was not updated:"
    );
    for exit in failures {
        let code = exit
            .exit_code
            .map_or("no exit code".to_string(), |c| format!("exit code {c}"));
        text.push_str(&format!("\n  container `{}`: {code}", exit.container));
        if let Some(reason) = &exit.reason {
            text.push_str(&format!(" ({reason})"));
        }
        let (lines, source) = logs::tail(aws, td, &exit.container, task_id, 20).await;
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
    text
}

/// Prints the lines each container wrote since the last look.
async fn stream_logs(
    aws: &Aws,
    td: &TaskDefinition,
    task_id: &str,
    tokens: &mut HashMap<String, Option<String>>,
    out: &Output,
) {
    for container in td.container_names() {
        let Ok(stream) = logs::Stream::of(td, &container, task_id) else {
            continue;
        };
        let token = tokens.get(&container).cloned().flatten();
        // The stream appears only once the container writes; until then there is nothing to show.
        let Some((lines, next)) = logs::since(aws, &stream, token.as_deref()).await else {
            continue;
        };
        for line in lines {
            out.info(&format!("{container}> {line}"));
        }
        if next.is_some() {
            tokens.insert(container.clone(), next);
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
