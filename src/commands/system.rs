//! Several services in one `deployer run`: each is built and deployed by the usual runbook, in
//! `depends-on` order (independent ones side by side), and when one fails the run is rolled back as
//! `--rollback-scope` says, so the system is never left half new. Every service's files are
//! checked before the first one is touched.

use crate::aws::Aws;
use crate::cli::RollbackScope;
use crate::commands::{deploy, rollback, run};
use crate::config::{RollbackConfig, SystemConfig, SystemService};
use crate::order::{order, overall, relabel};
use crate::outcome::{Outcome, RunResult};
use crate::recovery::{Recovery, Restored, Via};
use crate::report::output::Output;
use crate::signal::Interrupt;
use crate::steps::recover::{self, Restoring};
use futures_util::future::join_all;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::watch;

/// What every service's deploy of one run shares.
struct Run<'a> {
    cfg: &'a SystemConfig,
    aws: &'a Aws,
    outputs: Vec<Output>,
    /// One interrupt for every service: a signal, or the first failure under --rollback-scope run.
    abort: watch::Sender<u32>,
    system_interrupt: Interrupt,
    /// Each service's outcome once it has one (its dependents wait on it).
    done: Vec<watch::Sender<Option<Outcome>>>,
    names: HashMap<&'a str, usize>,
    /// The service whose failure stopped the run (the first to fail, not the first in the file).
    culprit: Mutex<Option<usize>>,
}

pub(crate) async fn run(
    cfg: &SystemConfig,
    aws: &Aws,
    out: &Output,
    interrupt: &Interrupt,
) -> RunResult {
    let deps: Vec<(&str, &[String])> = cfg
        .services
        .iter()
        .map(|s| (s.name.as_str(), s.depends_on.as_slice()))
        .collect();
    let layers = order(&deps).expect("config::system checked the order");
    // A bad file of the last service refuses the run before the first one is built or deployed.
    if let Err(why) = check_files(cfg) {
        return RunResult::refused(why);
    }
    let signals = interrupt.count();
    announce(cfg, &layers, out);
    let (abort, stop) = watch::channel(0u32);
    forward_signals(interrupt, abort.clone());
    let run = Run {
        cfg,
        aws,
        outputs: cfg.services.iter().map(|s| out.child(&s.name)).collect(),
        abort,
        system_interrupt: Interrupt::from_receiver(stop),
        done: cfg
            .services
            .iter()
            .map(|_| watch::channel(None).0)
            .collect(),
        names: deps.iter().enumerate().map(|(i, (n, _))| (*n, i)).collect(),
        culprit: Mutex::new(None),
    };
    let mut results: Vec<RunResult> = join_all((0..cfg.services.len()).map(|i| run.one(i))).await;
    let signalled = interrupt.count() > signals;
    let culprit = run
        .culprit
        .lock()
        .expect("no thread panics holding it")
        .to_owned();
    let first_failure = culprit
        .or_else(|| results.iter().position(|r| !r.outcome.went_well()))
        .map(|i| {
            (
                cfg.services[i].name.clone(),
                results[i].reason.clone().unwrap_or_default(),
            )
        });
    if let Some((failed, _)) = &first_failure {
        // Services stopped mid-rollout by another's failure rolled themselves back: say so.
        for (r, s) in results.iter_mut().zip(&cfg.services) {
            if !signalled && &s.name != failed {
                relabel(r, failed);
            }
        }
        if cfg.rollback_scope == RollbackScope::Run {
            run.roll_back_deployed(&layers, &mut results, failed, interrupt)
                .await;
        }
    }
    for child in &run.outputs {
        let report = child
            .report
            .lock()
            .expect("no thread panics holding it")
            .clone();
        out.service_report(report);
    }
    RunResult {
        outcome: overall(&results, signalled),
        reason: first_failure.map(|(name, reason)| summary(&results, cfg, &name, &reason)),
        services: results,
        ..RunResult::refused("")
    }
}

/// Every service's task-definition and service-definition files (and build contexts) read and
/// checked as `deployer run` checks one service's, asking AWS nothing; every bad one is named.
fn check_files(cfg: &SystemConfig) -> Result<(), String> {
    let bad: Vec<String> = cfg
        .services
        .iter()
        .filter_map(|s| {
            run::check_files(&s.run)
                .err()
                .map(|err| format!("`[services.{}]`: {err:#}", s.name))
        })
        .collect();
    if bad.is_empty() {
        return Ok(());
    }
    Err(format!(
        "checking every service's files before the first deploy (nothing was built or changed): {}",
        bad.join("; ")
    ))
}

/// "deploying 3 services of `shop`: db, then api + jobs"
fn announce(cfg: &SystemConfig, layers: &[Vec<usize>], out: &Output) {
    out.system(&cfg.name);
    let layers: Vec<String> = layers
        .iter()
        .map(|l| {
            let names: Vec<&str> = l.iter().map(|&i| cfg.services[i].name.as_str()).collect();
            names.join(" + ")
        })
        .collect();
    out.step(&format!(
        "deploying {} services of `{}`: {}",
        cfg.services.len(),
        cfg.name,
        layers.join(", then ")
    ));
}

/// Every signal to the process counts as an abort of every service.
fn forward_signals(interrupt: &Interrupt, abort: watch::Sender<u32>) {
    let outer = interrupt.clone();
    tokio::spawn(async move {
        let mut seen = outer.count();
        loop {
            outer.after(seen).await;
            seen = outer.count();
            abort.send_modify(|n| *n += 1);
        }
    });
}

/// "`api` failed: … (rolled back: web, jobs)"
fn summary(results: &[RunResult], cfg: &SystemConfig, name: &str, reason: &str) -> String {
    let rolled_back: Vec<&str> = results
        .iter()
        .zip(&cfg.services)
        .filter(|(r, _)| r.outcome == Outcome::RolledBack)
        .map(|(_, s)| s.name.as_str())
        .collect();
    let mut text = format!("`{name}` failed: {reason}");
    if !rolled_back.is_empty() {
        text.push_str(&format!(" (rolled back: {})", rolled_back.join(", ")));
    }
    text
}

impl Run<'_> {
    fn aborted(&self) -> bool {
        *self.abort.borrow() > 0
    }

    /// One service: wait for what it depends on, ship its images, run the runbook.
    async fn one(&self, i: usize) -> RunResult {
        let service = &self.cfg.services[i];
        let child = &self.outputs[i];
        let result = RunResult::for_target(&service.run.deploy.target);
        let result = match self.blocked_by(service).await {
            Some(dep) => result.finish(
                Outcome::Skipped,
                Some(format!(
                    "not deployed: `{dep}`, which it depends on, did not deploy"
                )),
            ),
            None if self.aborted() => skipped(result),
            None => match run::with_images(&service.run, self.aws, child).await {
                Err(err) => result.refuse(&err),
                Ok(_) if self.aborted() => skipped(result),
                Ok(cfg) => deploy::deploy(&cfg, self.aws, child, &self.system_interrupt).await,
            },
        };
        if !result.outcome.went_well() {
            let mut first = self.culprit.lock().expect("no thread panics holding it");
            if first.is_none() && !self.aborted() {
                *first = Some(i);
            }
            if self.cfg.rollback_scope == RollbackScope::Run {
                self.abort.send_modify(|n| *n += 1);
            }
        }
        child.result(&result);
        let _ = self.done[i].send(Some(result.outcome));
        result
    }

    /// The first service it depends on that did not end deployed or unchanged.
    async fn blocked_by<'s>(&self, service: &'s SystemService) -> Option<&'s str> {
        for dep in &service.depends_on {
            let mut rx = self.done[self.names[dep.as_str()]].subscribe();
            let outcome = *rx
                .wait_for(Option::is_some)
                .await
                .expect("senders live as long as the run");
            if !matches!(outcome, Some(Outcome::Deployed | Outcome::Unchanged)) {
                return Some(dep);
            }
        }
        None
    }

    /// --rollback-scope run: put back what this run deployed, dependents first.
    async fn roll_back_deployed(
        &self,
        layers: &[Vec<usize>],
        results: &mut [RunResult],
        failed: &str,
        interrupt: &Interrupt,
    ) {
        for layer in layers.iter().rev() {
            let deployed = layer
                .iter()
                .copied()
                .filter(|&i| results[i].outcome == Outcome::Deployed);
            let restores = deployed.map(|i| {
                let previous = results[i].previous_task_definition_arn.clone();
                async move { (i, self.roll_back_one(i, previous, failed, interrupt).await) }
            });
            for (i, (via, restored)) in join_all(restores).await {
                let r = &mut results[i];
                r.rollback = Some(via.as_str());
                match restored {
                    Ok(()) => {
                        r.outcome = Outcome::RolledBack;
                        r.reason = Some(format!(
                            "deployed, then rolled back because `{failed}` failed"
                        ));
                    }
                    Err(why) => {
                        r.outcome = Outcome::RollbackFailed;
                        r.reason = Some(format!(
                            "deployed, then the rollback after `{failed}` failed did not complete: {why}"
                        ));
                    }
                }
                self.outputs[i].result(r);
            }
        }
    }

    /// Back to `previous` (as `deployer rollback --to` does), or to 0 tasks for a service this run
    /// created; with how.
    async fn roll_back_one(
        &self,
        i: usize,
        previous: Option<String>,
        failed: &str,
        interrupt: &Interrupt,
    ) -> (Via, Result<(), String>) {
        let service = &self.cfg.services[i];
        let child = &self.outputs[i];
        let target = &service.run.deploy.target;
        child.step(&format!(
            "rolling back `{}` because `{failed}` failed",
            service.name
        ));
        let Some(to) = previous else {
            let none = (&crate::signal::Interrupt::none(), 0);
            let scaled =
                recover::start(self.aws, target, &Recovery::ScaleToZero, child, none).await;
            return match scaled {
                Ok(Restoring::Done(Restored::Healthy, _)) => (Via::ScaleToZero, Ok(())),
                Ok(_) => (
                    Via::ScaleToZero,
                    Err("the service was not scaled to 0".into()),
                ),
                Err(err) => (Via::ScaleToZero, Err(format!("{err:#}"))),
            };
        };
        let cfg = RollbackConfig {
            target: target.clone(),
            to: Some(to),
            timeout: service.run.deploy.timeout,
            max_failed_tasks: service.run.deploy.max_failed_tasks,
        };
        let restored = rollback::command(&cfg, self.aws, child, interrupt).await;
        match restored.outcome {
            Outcome::Deployed | Outcome::Unchanged => (Via::UpdateService, Ok(())),
            _ => (Via::UpdateService, Err(restored.reason.unwrap_or_default())),
        }
    }
}

/// Not started: the run stopped first.
fn skipped(result: RunResult) -> RunResult {
    result.finish(
        Outcome::Skipped,
        Some(
            "not deployed: the run stopped before it started (another service failed, or a signal)"
                .into(),
        ),
    )
}
