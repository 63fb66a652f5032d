//! The runbook: `deployer deploy` top to bottom, as the deploy happens, and `deployer plan` (the
//! same steps up to, not including, the first write). Each branch is a named function below.

use crate::aws::Aws;
use crate::aws::ecs::{self, Updated};
use crate::commands::rollback;
use crate::config::DeployConfig;
use crate::ids::{DeploymentId, ServiceDeploymentArn, TaskDefinitionArn};
use crate::outcome::{Outcome, RunResult};
use crate::recovery::{self, Restored, Via};
use crate::report::output::{Ci, Output};
use crate::rollout::{Ended, Failure, Watched};
use crate::signal::{Interrupt, Wait};
use crate::steps::preflight::{self, Prepared};
use crate::steps::recover::{self, Restoring};
use crate::steps::watch::{self, WatchEnd, look::Watcher};
use crate::steps::{codedeploy, create, failure_report, recheck, run_task, smoke_test, tidy};
use std::time::SystemTime;

/// `deployer deploy`: the runbook.
pub(crate) async fn deploy(
    cfg: &DeployConfig,
    aws: &Aws,
    out: &Output,
    interrupt: &Interrupt,
) -> RunResult {
    let mut result = RunResult::for_target(&cfg.target);
    let (started, signals) = (SystemTime::now(), interrupt.count());
    // 1. Read what runs now and build the new task definition. Any error here changes nothing.
    let start = match preflight::prepare(cfg, aws, out, interrupt).await {
        Ok(start) => start,
        Err(err) => return result.refuse(&err),
    };
    if let Err(err) = super::verify::before_deploy(cfg, aws, &start, out).await {
        return result.refuse(&err);
    }
    result.previous_task_definition_arn = start.previous().map(String::from);
    if start.unchanged() && !cfg.force_new_deployment {
        result.task_definition_arn = start.previous().map(String::from);
        return result.finish(Outcome::Unchanged, None);
    }
    start.show_diff(out);
    // 2. Register the new revision (a forced redeploy of what runs registers nothing).
    let task_definition = match register(cfg, aws, &start, out).await {
        Ok(arn) => arn,
        Err(err) => return result.refuse(&err),
    };
    result.task_definition_arn = Some(task_definition.to_string());
    // 3. The one-off task (migrations) runs to its end before the service moves.
    if let Err(err) = one_off_task(cfg, aws, &start, &task_definition, out, interrupt).await {
        let signalled = interrupt.count() > signals;
        return result.finish(
            Outcome::stopped_or_refused(signalled),
            Some(format!("{err:#}")),
        );
    }
    begin_github_deployment(cfg, out).await;
    // 4. Update (or create) the service; from here on, a failure means rolling back.
    if interrupt.count() > signals {
        let why = "interrupted before the service was updated; the service was not changed";
        return result.finish(Outcome::Interrupted, Some(why.into()));
    }
    let write_wait = Wait::new(cfg.timeout, interrupt, signals);
    let updated = match guarded_update(cfg, aws, &start, &task_definition, out, &write_wait).await {
        Ok(updated) => updated,
        Err(err) => return result.refuse(&err),
    };
    result.deployment_id = Some(updated.deployment_id.to_string());
    let rolling = rolling_handle(&start, &updated);
    // 5. Watch until ECS and every target group say healthy, or something says failed.
    out.step("waiting for the new tasks to run and pass health checks");
    let watched = watched(cfg, &start, updated, &task_definition);
    result.service_deployment_arn = watched.service_deployment.as_ref().map(String::from);
    let watcher = Watcher::new(started, start.event_ids());
    let wait = Wait::new(cfg.timeout, interrupt, signals);
    let end = watch_rollout(cfg, aws, &start, watched, watcher, &wait, out).await;
    result.stage = end.stage();
    let failure = match &end.ended {
        Ended::Failed(failure) => failure.clone(),
        _ => {
            tidy(cfg, aws, &start, &task_definition, &end, out).await;
            return result.finish(Outcome::Deployed, None);
        }
    };
    // 6. Roll back (or follow ECS's rollback), say why it failed, and wait for the rollback.
    let failed_on = (&failure, rolling);
    let recovered = recover(cfg, aws, &start, failed_on, end, out, (interrupt, signals)).await;
    failed(result, &failure, recovered)
}

/// How a failed deploy ends, from the failure and what the recovery did.
fn failed(mut result: RunResult, failure: &Failure, recovered: Recovered) -> RunResult {
    let Recovered {
        restored,
        wait_stopped,
        summary,
        via,
    } = recovered;
    result.restored = Some(restored == Restored::Healthy);
    result.rollback = via.map(Via::as_str);
    let outcome = recovery::final_outcome(failure, &restored, wait_stopped);
    let reason = match (&restored, outcome) {
        // Interrupted, and the rollback did not complete: the reason says why (exit 3).
        (Restored::Failed(why), Outcome::RollbackFailed) if *failure == Failure::Interrupted => {
            format!("{summary}; {why}")
        }
        _ => summary,
    };
    result.finish(outcome, Some(reason))
}

/// The warning for a service at desiredCount 0: its deploy proves nothing.
pub(crate) const DESIRED_ZERO: &str = "desiredCount is 0: no task was started, nothing was proven";

/// After a healthy deploy: `--keep-revisions`, the zone-spread warning, and desiredCount 0 said.
async fn tidy(
    cfg: &DeployConfig,
    aws: &Aws,
    start: &Prepared,
    task_definition: &TaskDefinitionArn,
    end: &WatchEnd,
    out: &Output,
) {
    let previous = start.previous();
    let (new, snapshot) = (&start.new, &end.snapshot);
    if snapshot.desired == 0 {
        // Healthy by arithmetic only (0 of 0): say so; the outcome stays deployed (R9).
        out.warn(DESIRED_ZERO);
    }
    tidy::after_healthy(
        cfg,
        aws,
        new,
        task_definition.as_str(),
        previous.as_ref().map(TaskDefinitionArn::as_str),
        snapshot,
        out,
    )
    .await;
}

/// Registers the new revision; on a first deploy creates the cluster first when it is missing.
async fn register(
    cfg: &DeployConfig,
    aws: &Aws,
    start: &Prepared,
    out: &Output,
) -> anyhow::Result<TaskDefinitionArn> {
    if let Some(creation) = &start.create
        && creation.cluster
    {
        create::cluster(aws, &cfg.target.cluster, out).await?;
    }
    let arn = match &start.live {
        Some(live) if start.unchanged() => live.task_definition_arn.clone(),
        _ => {
            out.step(&format!(
                "registering a new revision of `{}`",
                start.new.family()
            ));
            ecs::register(aws, &start.new).await?
        }
    };
    out.info(&format!("task definition {arn}"));
    if let [change] = cfg.images.as_slice() {
        out.image_if_unknown(&change.image.0);
    }
    Ok(arn)
}

/// `--run-task`: the one-off task, with the service's own network and placement.
async fn one_off_task(
    cfg: &DeployConfig,
    aws: &Aws,
    start: &Prepared,
    task_definition: &TaskDefinitionArn,
    out: &Output,
    interrupt: &Interrupt,
) -> anyhow::Result<()> {
    let Some(spec) = &cfg.run_task else {
        return Ok(());
    };
    let placement = match &start.create {
        Some(c) => (c.definition.network(), c.definition.placement()),
        None => run_task::placement_of(aws, &cfg.target).await?,
    };
    let wait = Wait::new(cfg.timeout, interrupt, interrupt.count());
    let task = run_task::OneOff {
        target: &cfg.target,
        task_definition_arn: task_definition.as_str(),
        td: &start.new,
        spec,
        placement,
    };
    run_task::run(aws, task, &wait, out).await
}

/// `--github-deployment`: a GitHub deployment for this run, begun before the service moves.
async fn begin_github_deployment(cfg: &DeployConfig, out: &Output) {
    if cfg.github_deployment && out.ci == Ci::GitHub {
        let environment = crate::report::ci::environment();
        out.github_deployment(crate::report::github::begin_deployment(&environment, out).await);
    }
}

/// UpdateService (or CreateService on a first deploy); returns the new deployment's id.
async fn update(
    cfg: &DeployConfig,
    aws: &Aws,
    start: &Prepared,
    task_definition: &TaskDefinitionArn,
    out: &Output,
) -> anyhow::Result<Updated> {
    let updated = match &start.create {
        Some(c) => {
            let arn = task_definition.as_str();
            Updated {
                deployment_id: create::service(aws, &cfg.target, &c.definition, arn, out).await?,
                service_deployment: None,
                codedeploy: None,
                staged: false,
            }
        }
        None if start.live.as_ref().is_some_and(|l| l.shape.codedeploy) => {
            let names = (cfg.codedeploy.0.as_str(), cfg.codedeploy.1.as_str());
            let id = codedeploy::deploy(aws, &cfg.target, task_definition, names, out).await?;
            Updated {
                deployment_id: Default::default(),
                service_deployment: None,
                codedeploy: Some(id),
                staged: false,
            }
        }
        None => {
            out.step(&format!("updating service `{}`", cfg.target.service));
            let sent = std::time::SystemTime::now();
            let mut updated =
                ecs::update(aws, &cfg.target, task_definition, cfg.force_new_deployment).await?;
            let staged = start.live.as_ref().is_some_and(|l| l.shape.staged());
            if staged && updated.service_deployment.is_none() {
                // An answer without currentServiceDeployment: the newest one since we sent it.
                updated.service_deployment = ecs::newest_since(aws, &cfg.target, sent).await?;
            }
            updated
        }
    };
    if updated.codedeploy.is_none() {
        out.info(&format!("deployment {}", updated.deployment_id));
    }
    if let Some(arn) = &updated.service_deployment {
        out.info(&format!("service deployment {arn}"));
    }
    Ok(updated)
}

/// `update`, guarded on both sides: refused when the service's PRIMARY deployment is no longer
/// the one pre-flight recorded (another deploy went ahead during `--run-task` or `--wait-for-idle`);
/// after a write error, the service is read again, and a write ECS applied although its answer was
/// lost is watched (and rolled back) like any other, not reported as "nothing changed".
async fn guarded_update(
    cfg: &DeployConfig,
    aws: &Aws,
    start: &Prepared,
    task_definition: &TaskDefinitionArn,
    out: &Output,
    wait: &Wait,
) -> anyhow::Result<Updated> {
    let before = start.live.as_ref().and_then(|l| l.primary.clone());
    if let (Some(live), Some(primary)) = (&start.live, &before) {
        let recorded = (primary, &live.task_definition_arn);
        recheck::unchanged_since_preflight(aws, &cfg.target, recorded).await?;
    }
    let err = match update(cfg, aws, start, task_definition, out).await {
        Ok(updated) => return Ok(updated),
        Err(err) => err,
    };
    let ours = (before.as_ref(), task_definition);
    let Some((deployment_id, service_deployment)) =
        recheck::write_took_effect(aws, &cfg.target, ours, wait).await
    else {
        return Err(err);
    };
    out.warn(&format!(
        "{err:#}; but the service now runs deployment {deployment_id} of {task_definition}: the write took effect, watching it"
    ));
    out.info(&format!("deployment {deployment_id}"));
    Ok(Updated {
        deployment_id,
        service_deployment,
        codedeploy: None,
        staged: start.live.as_ref().is_some_and(|l| l.shape.staged()),
    })
}

/// ECS's handle on a rolling update: the service deployment UpdateService started and our
/// deployment, for StopServiceDeployment to roll it back. None on other kinds of service and on a
/// service this run created.
fn rolling_handle(
    start: &Prepared,
    updated: &Updated,
) -> Option<(ServiceDeploymentArn, DeploymentId)> {
    let live = start.live.as_ref().filter(|_| start.create.is_none())?;
    let rolling = !live.shape.staged() && !live.shape.codedeploy && updated.codedeploy.is_none();
    let arn = updated.service_deployment.clone().filter(|_| rolling)?;
    Some((arn, updated.deployment_id.clone()))
}

/// What the watch follows: our deployment; on a staged (BLUE_GREEN, LINEAR, CANARY) service, the
/// service deployment UpdateService started, with `--until` and the `--smoke-test` pause.
fn watched(
    cfg: &DeployConfig,
    start: &Prepared,
    updated: Updated,
    task_definition: &TaskDefinitionArn,
) -> Watched {
    let staged = start.live.as_ref().is_some_and(|l| l.shape.staged());
    Watched {
        deployment_id: updated.deployment_id,
        task_definition: task_definition.clone(),
        previous_task_definition: start.previous(),
        max_failed_tasks: cfg.max_failed_tasks,
        service_deployment: updated.service_deployment.filter(|_| staged),
        until: cfg.until.clone(),
        pause_at: cfg.smoke_test.as_ref().map(|_| {
            let stage = if updated.codedeploy.is_some() {
                "READY_WAIT"
            } else {
                "POST_TEST_TRAFFIC_SHIFT"
            };
            stage.to_string()
        }),
        rollback: false,
        codedeploy: updated.codedeploy,
    }
}

/// Watches the rollout; at the `--smoke-test` PAUSE hook runs the smoke test, then lets ECS go on
/// (ContinueServiceDeployment CONTINUE) and watches on, or ends with the test's failure.
async fn watch_rollout(
    cfg: &DeployConfig,
    aws: &Aws,
    start: &Prepared,
    mut watched: Watched,
    watcher: Watcher,
    wait: &Wait,
    out: &Output,
) -> WatchEnd {
    let mut end = watch::until_done(aws, &cfg.target, &watched, watcher, wait, out).await;
    if let (Ended::Paused(_), Some(command), Some(id)) =
        (&end.ended, &cfg.smoke_test, &watched.codedeploy)
    {
        let names = (cfg.codedeploy.0.as_str(), cfg.codedeploy.1.as_str());
        let shape = codedeploy::listeners(aws, names, out).await;
        if let Err(failure) = smoke_test::run(aws, command, Some(&shape), wait, out).await {
            end.ended = Ended::Failed(failure);
            return end;
        }
        out.step("smoke test passed: continuing the CodeDeploy deployment (ContinueDeployment READY_WAIT)");
        if let Err(err) = crate::aws::codedeploy::continue_deployment(aws, id).await {
            let how = format!("passed, but the deployment could not be continued: {err:#}");
            end.ended = Ended::Failed(Failure::SmokeTest {
                how,
                output: vec![],
            });
            return end;
        }
        watched.pause_at = None;
        return watch::until_done(aws, &cfg.target, &watched, end.watcher, wait, out).await;
    }
    while let (Ended::Paused(hook), Some(command), Some(arn)) =
        (&end.ended, &cfg.smoke_test, &watched.service_deployment)
    {
        let shape = start.live.as_ref().map(|l| &l.shape);
        let tested = smoke_test::run(aws, command, shape, wait, out).await;
        let hook = hook.id.clone();
        if let Err(failure) = tested {
            end.ended = Ended::Failed(failure);
            break;
        }
        out.step(&format!(
            "smoke test passed: continuing at PAUSE hook {hook}"
        ));
        if let Err(err) = ecs::continue_service_deployment(aws, arn.as_str(), &hook, false).await {
            end.ended = Ended::Failed(Failure::ServiceDeployment {
                status: "PAUSED".into(),
                reason: format!("{err:#}"),
            });
            break;
        }
        watched.pause_at = None;
        end = watch::until_done(aws, &cfg.target, &watched, end.watcher, wait, out).await;
    }
    end
}

/// After a failure: start the recovery `recovery::recovery` decides (on a rolling update ECS's own
/// rollback first: `recovery::prefer_ecs_rollback`), report why the deploy failed while it runs,
/// then watch it. Returns whether the service is back, and the failure's summary.
async fn recover(
    cfg: &DeployConfig,
    aws: &Aws,
    start: &Prepared,
    (failure, rolling): (&Failure, Option<(ServiceDeploymentArn, DeploymentId)>),
    end: WatchEnd,
    out: &Output,
    (interrupt, signals): (&Interrupt, u32),
) -> Recovered {
    out.step(&format!("deploy failed: {}", failure.summary()));
    let previous = start.previous();
    let plan = match &end.snapshot.codedeploy {
        Some(cd) => crate::codedeploy::recovery(cd, cfg.rollback, previous.as_ref()),
        None => recovery::recovery(
            failure,
            cfg.rollback,
            previous.as_ref(),
            end.snapshot.ecs_rolls_back,
            end.snapshot.service_deployment.as_ref(),
        ),
    };
    let plan = recovery::prefer_ecs_rollback(plan, rolling);
    // After a signal, a further one hurries the rollback call and stops the wait for the rollback
    // (ECS goes on with it); otherwise the first one does.
    let seen = if *failure == Failure::Interrupted {
        interrupt.count()
    } else {
        signals
    };
    let restoring = recover::start(aws, &cfg.target, &plan, out, (interrupt, seen)).await;
    let via = restoring.as_ref().ok().and_then(Restoring::via);
    let events = &end.watcher.events;
    let report = failure_report::report(aws, failure, &end.snapshot, &start.new, events).await;
    out.block("failure", &report.text, report.detail);
    let mut wait_stopped = false;
    let restored = match restoring {
        Ok(Restoring::Watch(started)) => {
            let wait = Wait::new(cfg.timeout, interrupt, seen);
            let target = (&cfg.target, cfg.max_failed_tasks);
            let restored =
                rollback::restore(aws, target, &started, &wait, end.watcher.seen_events(), out)
                    .await;
            wait_stopped = interrupt.count() > seen;
            restored
        }
        Ok(Restoring::Done(restored, _)) => restored,
        Err(err) => Restored::Failed(format!("{err:#}")),
    };
    if let Restored::Failed(why) = &restored {
        out.warn(why);
    }
    Recovered {
        restored,
        wait_stopped,
        summary: report.summary,
        via,
    }
}

/// What `recover` did: whether the service is back, whether a second signal stopped the wait, the
/// failure's summary, and how the rollback was done (None: nothing was done).
struct Recovered {
    restored: Restored,
    wait_stopped: bool,
    summary: String,
    via: Option<Via>,
}
