//! The runbook: `deployer deploy` top to bottom, as the deploy happens. Also dispatches the other
//! commands and `deployer plan` (the same steps up to, not including, the first write).

use crate::aws::Aws;
use crate::cli::{Command, Invocation};
use crate::config::{self, DeployConfig, File};
use crate::failure;
use crate::output::{Outcome, Output, RunResult};
use crate::rollback::{self, Restored};
use crate::rollout::{Failure, Verdict, Watched};
use crate::service::{self, Live};
use crate::status;
use crate::task_definition::TaskDefinition;
use crate::watch::{self, Interrupt, Watcher};
use serde_json::json;
use std::time::SystemTime;

pub(crate) async fn dispatch(
    invocation: Invocation,
    file: anyhow::Result<File>,
    out: &Output,
) -> RunResult {
    let file = match file {
        Ok(file) => file,
        Err(err) => return RunResult::refused(format!("{err:#}")),
    };
    let sub = invocation
        .matches
        .subcommand()
        .map(|(_, m)| m.clone())
        .unwrap_or_default();
    match &invocation.cli.command {
        Command::Deploy(args) | Command::Plan(args) => {
            let cfg = match config::deploy(args, &sub, &file) {
                Ok(cfg) => cfg,
                Err(err) => return RunResult::refused(format!("{err:#}")),
            };
            let aws = Aws::load().await;
            // Only commands that change the service catch SIGINT/SIGTERM; the others just stop.
            if matches!(invocation.cli.command, Command::Plan(_)) {
                plan(&cfg, &aws, out, &Interrupt::none()).await
            } else {
                deploy(&cfg, &aws, out, &Interrupt::listen()).await
            }
        }
        Command::Rollback(args) => match config::rollback(args, &sub, &file) {
            Ok(cfg) => rollback::command(&cfg, &Aws::load().await, out, &Interrupt::listen()).await,
            Err(err) => RunResult::refused(format!("{err:#}")),
        },
        Command::Run(args) => match config::run(args, &sub, &file) {
            Ok(cfg) => {
                crate::run::command(&cfg, &Aws::load().await, out, &Interrupt::listen()).await
            }
            Err(err) => RunResult::refused(format!("{err:#}")),
        },
        Command::Promote(args) => {
            crate::run::promote(
                &args.repository,
                &args.from,
                &args.to,
                &Aws::load().await,
                out,
            )
            .await
        }
        Command::Status(args) => match config::target(args, &sub, &file) {
            Ok(target) => status::command(&target, &Aws::load().await, out).await,
            Err(err) => RunResult::refused(format!("{err:#}")),
        },
    }
}

/// Everything up to the first write: read what runs, build the new task definition, compare.
async fn prepare(
    cfg: &DeployConfig,
    aws: &Aws,
    out: &Output,
    interrupt: &Interrupt,
) -> anyhow::Result<(Live, TaskDefinition)> {
    out.step(&format!(
        "checking service `{}` in cluster `{}`",
        cfg.target.service, cfg.target.cluster
    ));
    // A bad file or flag is refused before AWS is asked anything.
    let file = cfg
        .task_definition_file
        .as_deref()
        .map(TaskDefinition::load)
        .transpose()?;
    let live = service::preflight(
        aws,
        &cfg.target,
        cfg.wait_for_idle,
        cfg.timeout,
        out,
        interrupt,
    )
    .await?;
    out.info(&format!(
        "running now: {} (the rollback target)",
        live.task_definition_arn
    ));
    let source = file.unwrap_or_else(|| live.task_definition.clone());
    let new = source.apply(&cfg.images, &cfg.envs)?;
    Ok((live, new))
}

async fn plan(cfg: &DeployConfig, aws: &Aws, out: &Output, interrupt: &Interrupt) -> RunResult {
    let mut result = RunResult::for_target(&cfg.target);
    let (live, new) = match prepare(cfg, aws, out, interrupt).await {
        Ok(prepared) => prepared,
        Err(err) => return result.finish(Outcome::Refused, Some(format!("{err:#}"))),
    };
    result.previous_task_definition_arn = Some(live.task_definition_arn.clone());
    let diff = new.diff(&live.task_definition);
    if diff.is_empty() {
        out.info("no change to the task definition");
        return result.finish(Outcome::Unchanged, None);
    }
    out.block(
        "plan",
        &format!(
            "task definition changes against {}:\n  {}",
            live.task_definition_arn,
            diff.join("\n  ")
        ),
        json!({"changes": diff}),
    );
    result.finish(Outcome::Planned, None)
}

/// `deployer deploy`: the runbook.
pub(crate) async fn deploy(
    cfg: &DeployConfig,
    aws: &Aws,
    out: &Output,
    interrupt: &Interrupt,
) -> RunResult {
    let mut result = RunResult::for_target(&cfg.target);
    let started = SystemTime::now();
    let signals = interrupt.count();

    // 1. Read what runs now and build the new task definition. Any error here changes nothing.
    let (live, new) = match prepare(cfg, aws, out, interrupt).await {
        Ok(prepared) => prepared,
        Err(err) => return result.finish(Outcome::Refused, Some(format!("{err:#}"))),
    };
    result.previous_task_definition_arn = Some(live.task_definition_arn.clone());
    let unchanged = new.same_as(&live.task_definition);
    if unchanged && !cfg.force_new_deployment {
        result.task_definition_arn = Some(live.task_definition_arn.clone());
        return result.finish(Outcome::Unchanged, None);
    }
    for line in new.diff(&live.task_definition) {
        out.info(&line);
    }

    // 2. Register the new revision (unless only a forced redeploy of what runs).
    let task_definition = if unchanged {
        live.task_definition_arn.clone()
    } else {
        out.step(&format!("registering a new revision of `{}`", new.family()));
        match service::register(aws, &new).await {
            Ok(arn) => arn,
            Err(err) => return result.finish(Outcome::Refused, Some(format!("{err:#}"))),
        }
    };
    out.info(&format!("task definition {task_definition}"));
    if let [change] = cfg.images.as_slice() {
        out.image_if_unknown(&change.image.0);
    }
    result.task_definition_arn = Some(task_definition.clone());

    if cfg.github_deployment && out.ci == crate::output::Ci::GitHub {
        let environment = crate::publish::environment();
        out.github_deployment(crate::github::begin_deployment(&environment, out).await);
    }

    // 3. Update the service; from here on, a failure means rolling back.
    if interrupt.count() > signals {
        return result.finish(
            Outcome::Interrupted,
            Some("interrupted before the service was updated; the service was not changed".into()),
        );
    }
    out.step(&format!("updating service `{}`", cfg.target.service));
    let deployment_id =
        match service::update(aws, &cfg.target, &task_definition, cfg.force_new_deployment).await {
            Ok(id) => id,
            Err(err) => return result.finish(Outcome::Refused, Some(format!("{err:#}"))),
        };
    out.info(&format!("deployment {deployment_id}"));
    result.deployment_id = Some(deployment_id.clone());

    // 4. Watch until ECS and every target group say healthy, or something says failed.
    out.step("waiting for the new tasks to run and pass health checks");
    let watched = Watched {
        deployment_id,
        task_definition,
        previous_task_definition: Some(live.task_definition_arn.clone()),
        max_failed_tasks: cfg.max_failed_tasks,
    };
    let end = watch::until_verdict(
        aws,
        &cfg.target,
        &watched,
        Watcher::new(started, live.event_ids.clone()),
        cfg.timeout,
        out,
        interrupt,
        signals,
    )
    .await;
    let failure = match end.verdict {
        Verdict::Healthy => return result.finish(Outcome::Deployed, None),
        Verdict::Failed(failure) => failure,
        Verdict::InProgress(_) => unreachable!("until_verdict returns only Healthy or Failed"),
    };
    out.step(&format!("deploy failed: {}", failure.summary()));

    // 5. Roll back to the exact task definition that ran before (or follow ECS's own rollback) ...
    let restore = if cfg.rollback
        || matches!(
            failure,
            Failure::EcsRolledBack { .. }
                | Failure::RolloutFailed {
                    rolling_back_to: Some(_),
                    ..
                }
        ) {
        Some(
            rollback::start(
                aws,
                &cfg.target,
                &live.task_definition_arn,
                &failure,
                &end.snapshot,
                out,
            )
            .await,
        )
    } else {
        None
    };

    // 6. ... say why it failed while the rollback runs ...
    let report = failure::report(aws, &failure, &end.snapshot, &new, &end.watcher.events).await;
    out.block("failure", &report.text, report.detail);

    // 7. ... and wait for the rollback to be healthy.
    let outcome = match restore {
        None => {
            out.warn("--no-rollback: the service was left as it is");
            Outcome::RollbackFailed
        }
        Some(Err(err)) => {
            out.warn(&format!("{err:#}"));
            Outcome::RollbackFailed
        }
        Some(Ok(started_rollback)) => {
            let seen = if failure == Failure::Interrupted {
                interrupt.count()
            } else {
                signals
            };
            match rollback::finish(
                aws,
                &cfg.target,
                started_rollback,
                cfg.timeout,
                cfg.max_failed_tasks,
                out,
                interrupt,
                seen,
                end.watcher.seen_events(),
            )
            .await
            {
                Restored::Healthy => Outcome::RolledBack,
                Restored::Failed(reason) => {
                    out.warn(&reason);
                    Outcome::RollbackFailed
                }
            }
        }
    };
    let outcome = if failure == Failure::Interrupted {
        Outcome::Interrupted
    } else {
        outcome
    };
    result.finish(outcome, Some(report.summary))
}

impl RunResult {
    pub(crate) fn for_target(target: &crate::config::Target) -> RunResult {
        RunResult {
            cluster: Some(target.cluster.clone()),
            service: Some(target.service.clone()),
            ..RunResult::refused("")
        }
    }

    pub(crate) fn finish(mut self, outcome: Outcome, reason: Option<String>) -> RunResult {
        self.outcome = outcome;
        self.reason = reason;
        self
    }
}
