//! The runbook: `deployer deploy` top to bottom, as the deploy happens. Also dispatches the other
//! commands and `deployer plan` (the same steps up to, not including, the first write).

use crate::aws::Aws;
use crate::cli::{Command, Invocation};
use crate::config::{self, DeployConfig, File};
use crate::create::{self, ServiceDefinition};
use crate::failure;
use crate::output::{Outcome, Output, RunResult};
use crate::rollback::{self, Restored};
use crate::rollout::{Failure, Verdict, Watched};
use crate::run_task;
use crate::service::{self, Live};
use crate::status;
use crate::task_definition::TaskDefinition;
use crate::tidy;
use crate::watch::{self, Interrupt, Watcher};
use anyhow::bail;
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
        Command::Run(args) if file.is_system() => match config::system(args, &sub, &file) {
            Ok(cfg) => {
                crate::system::run(&cfg, &Aws::load().await, out, &Interrupt::listen()).await
            }
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

/// What the deploy starts from, read before any write.
struct Prepared {
    /// What runs now (the rollback target); None when the service is to be created.
    live: Option<Live>,
    new: TaskDefinition,
    /// `--create-missing` and the service does not exist: what to create.
    create: Option<Creation>,
}

struct Creation {
    cluster: bool,
    definition: ServiceDefinition,
}

/// Everything up to the first write: read what runs, build the new task definition, compare.
async fn prepare(
    cfg: &DeployConfig,
    aws: &Aws,
    out: &Output,
    interrupt: &Interrupt,
) -> anyhow::Result<Prepared> {
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
    let definition = cfg
        .service_definition
        .as_deref()
        .map(|path| ServiceDefinition::load(path, &cfg.target))
        .transpose()?;
    if cfg.create_missing {
        let missing = create::missing(aws, &cfg.target).await?;
        if missing.service {
            let what = if missing.cluster {
                format!("cluster `{}` does not exist", cfg.target.cluster)
            } else {
                format!(
                    "service `{}` does not exist in cluster `{}`",
                    cfg.target.service, cfg.target.cluster
                )
            };
            let Some(definition) = definition else {
                bail!(
                    "{what}; to create the service, --create-missing needs --service-definition FILE (the JSON `aws ecs create-service --cli-input-json` takes)"
                );
            };
            let Some(file) = file else {
                bail!(
                    "{what}; to create the service, --create-missing needs --task-definition FILE: a new service has no task definition to start from"
                );
            };
            out.info(&format!("{what}: it will be created (--create-missing)"));
            let new = file.apply(&cfg.images, &cfg.envs)?;
            check_run_task(cfg, &new)?;
            return Ok(Prepared {
                live: None,
                new,
                create: Some(Creation {
                    cluster: missing.cluster,
                    definition,
                }),
            });
        }
    }
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
    check_run_task(cfg, &new)?;
    Ok(Prepared {
        live: Some(live),
        new,
        create: None,
    })
}

fn check_run_task(cfg: &DeployConfig, new: &TaskDefinition) -> anyhow::Result<()> {
    if let Some(container) = cfg.run_task.as_ref().and_then(|r| r.container.as_ref()) {
        let names = new.container_names();
        if !names.contains(container) {
            bail!(
                "invalid --run-task `{container}`: task definition family `{}` has no such container (it has: {})",
                new.family(),
                names.join(", ")
            );
        }
    }
    Ok(())
}

async fn plan(cfg: &DeployConfig, aws: &Aws, out: &Output, interrupt: &Interrupt) -> RunResult {
    let mut result = RunResult::for_target(&cfg.target);
    let prepared = match prepare(cfg, aws, out, interrupt).await {
        Ok(prepared) => prepared,
        Err(err) => return result.finish(Outcome::Refused, Some(format!("{err:#}"))),
    };
    let Some(live) = prepared.live else {
        out.info("the service does not exist: a deploy would create it from --service-definition");
        return result.finish(Outcome::Planned, None);
    };
    result.previous_task_definition_arn = Some(live.task_definition_arn.clone());
    let diff = prepared.new.diff(&live.task_definition);
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
    let Prepared { live, new, create } = match prepare(cfg, aws, out, interrupt).await {
        Ok(prepared) => prepared,
        Err(err) => return result.finish(Outcome::Refused, Some(format!("{err:#}"))),
    };
    let previous = live.as_ref().map(|l| l.task_definition_arn.clone());
    result.previous_task_definition_arn = previous.clone();
    let unchanged = live
        .as_ref()
        .is_some_and(|l| new.same_as(&l.task_definition));
    if unchanged && !cfg.force_new_deployment {
        result.task_definition_arn = previous;
        return result.finish(Outcome::Unchanged, None);
    }
    if let Some(live) = &live {
        for line in new.diff(&live.task_definition) {
            out.info(&line);
        }
    }
    if let Some(Creation { cluster: true, .. }) = &create
        && let Err(err) = create::cluster(aws, &cfg.target.cluster, out).await
    {
        return result.finish(Outcome::Refused, Some(format!("{err:#}")));
    }

    // 2. Register the new revision (unless only a forced redeploy of what runs).
    let task_definition = match (&live, unchanged) {
        (Some(live), true) => live.task_definition_arn.clone(),
        _ => {
            out.step(&format!("registering a new revision of `{}`", new.family()));
            match service::register(aws, &new).await {
                Ok(arn) => arn,
                Err(err) => return result.finish(Outcome::Refused, Some(format!("{err:#}"))),
            }
        }
    };
    out.info(&format!("task definition {task_definition}"));
    if let [change] = cfg.images.as_slice() {
        out.image_if_unknown(&change.image.0);
    }
    result.task_definition_arn = Some(task_definition.clone());

    // 3. The one-off task (migrations) runs to its end before the service moves.
    if let Some(spec) = &cfg.run_task {
        let placement = match &create {
            Some(c) => Ok((c.definition.network(), c.definition.placement())),
            None => run_task::placement_of(aws, &cfg.target).await,
        };
        let ran = match placement {
            Ok(placement) => {
                run_task::run(
                    aws,
                    &cfg.target,
                    &task_definition,
                    &new,
                    spec,
                    placement,
                    cfg.timeout,
                    out,
                    interrupt,
                )
                .await
            }
            Err(err) => Err(err),
        };
        if let Err(err) = ran {
            let outcome = if interrupt.count() > signals {
                Outcome::Interrupted
            } else {
                Outcome::Refused
            };
            return result.finish(outcome, Some(format!("{err:#}")));
        }
    }

    if cfg.github_deployment && out.ci == crate::output::Ci::GitHub {
        let environment = crate::publish::environment();
        out.github_deployment(crate::github::begin_deployment(&environment, out).await);
    }

    // 4. Update (or create) the service; from here on, a failure means rolling back.
    if interrupt.count() > signals {
        return result.finish(
            Outcome::Interrupted,
            Some("interrupted before the service was updated; the service was not changed".into()),
        );
    }
    let updated = match &create {
        Some(c) => create::service(aws, &cfg.target, &c.definition, &task_definition, out).await,
        None => {
            out.step(&format!("updating service `{}`", cfg.target.service));
            service::update(aws, &cfg.target, &task_definition, cfg.force_new_deployment).await
        }
    };
    let deployment_id = match updated {
        Ok(id) => id,
        Err(err) => return result.finish(Outcome::Refused, Some(format!("{err:#}"))),
    };
    out.info(&format!("deployment {deployment_id}"));
    result.deployment_id = Some(deployment_id.clone());

    // 5. Watch until ECS and every target group say healthy, or something says failed.
    out.step("waiting for the new tasks to run and pass health checks");
    let watched = Watched {
        deployment_id,
        task_definition: task_definition.clone(),
        previous_task_definition: previous.clone(),
        max_failed_tasks: cfg.max_failed_tasks,
    };
    let end = watch::until_verdict(
        aws,
        &cfg.target,
        &watched,
        Watcher::new(
            started,
            live.as_ref()
                .map(|l| l.event_ids.clone())
                .unwrap_or_default(),
        ),
        cfg.timeout,
        out,
        interrupt,
        signals,
    )
    .await;
    let failure = match end.verdict {
        Verdict::Healthy => {
            tidy::after_healthy(
                cfg,
                aws,
                &new,
                &task_definition,
                previous.as_deref(),
                &end.snapshot,
                out,
            )
            .await;
            return result.finish(Outcome::Deployed, None);
        }
        Verdict::Failed(failure) => failure,
        Verdict::InProgress(_) => unreachable!("until_verdict returns only Healthy or Failed"),
    };
    out.step(&format!("deploy failed: {}", failure.summary()));

    // 6. Roll back to the exact task definition that ran before (or follow ECS's own rollback) ...
    let ecs_rolls_back = matches!(
        failure,
        Failure::EcsRolledBack { .. }
            | Failure::RolloutFailed {
                rolling_back_to: Some(_),
                ..
            }
    );
    let restore = match &previous {
        Some(previous) if cfg.rollback || ecs_rolls_back => {
            Some(rollback::start(aws, &cfg.target, previous, &failure, &end.snapshot, out).await)
        }
        _ => None,
    };

    // 7. ... say why it failed while the rollback runs ...
    let report = failure::report(aws, &failure, &end.snapshot, &new, &end.watcher.events).await;
    out.block("failure", &report.text, report.detail);

    // 8. ... and wait for the rollback to be healthy.
    let outcome = match restore {
        None if previous.is_none() && cfg.rollback => {
            // A service this run created has nothing earlier to return to.
            let undone = create::undo(aws, &cfg.target, out).await;
            match undone.outcome {
                Outcome::Deployed => Outcome::RolledBack,
                _ => {
                    out.warn(undone.reason.as_deref().unwrap_or_default());
                    Outcome::RollbackFailed
                }
            }
        }
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
    result.restored = Some(outcome == Outcome::RolledBack);
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
