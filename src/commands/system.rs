//! Several services in one `deployer run`: each is built and deployed by the usual runbook, in
//! `depends-on` order (independent ones side by side), and when one fails the run is rolled back as
//! `--rollback-scope` says, so the system is never left half new.

use crate::aws::Aws;
use crate::cli::RollbackScope;
use crate::config::{RollbackConfig, SystemConfig, SystemService};
use crate::output::{Outcome, Output, RunResult};
use crate::watch::Interrupt;
use futures_util::future::join_all;
use std::collections::HashMap;
use tokio::sync::watch;

/// Dependency layers: every service of a layer depends only on services of earlier layers.
/// Err names a cycle, e.g. "web → api → web".
pub(crate) fn order(services: &[SystemService]) -> Result<Vec<Vec<usize>>, String> {
    let index: HashMap<&str, usize> = services
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let mut layer_of: Vec<Option<usize>> = vec![None; services.len()];
    fn visit(
        i: usize,
        services: &[SystemService],
        index: &HashMap<&str, usize>,
        layer_of: &mut Vec<Option<usize>>,
        path: &mut Vec<usize>,
    ) -> Result<usize, String> {
        if let Some(layer) = layer_of[i] {
            return Ok(layer);
        }
        if let Some(at) = path.iter().position(|&p| p == i) {
            let mut names: Vec<&str> = path[at..]
                .iter()
                .map(|&p| services[p].name.as_str())
                .collect();
            names.push(&services[i].name);
            return Err(names.join(" → "));
        }
        path.push(i);
        let mut layer = 0;
        for dep in &services[i].depends_on {
            let &d = index
                .get(dep.as_str())
                .ok_or_else(|| format!("unknown service `{dep}`"))?;
            layer = layer.max(visit(d, services, index, layer_of, path)? + 1);
        }
        path.pop();
        layer_of[i] = Some(layer);
        Ok(layer)
    }
    for i in 0..services.len() {
        visit(i, services, &index, &mut layer_of, &mut Vec::new())?;
    }
    let depth = layer_of.iter().flatten().max().map_or(0, |m| m + 1);
    let mut layers = vec![Vec::new(); depth];
    for (i, layer) in layer_of.iter().enumerate() {
        layers[layer.expect("every service visited")].push(i);
    }
    Ok(layers)
}

/// What the whole run ended as, from each service's outcome (pure).
pub(crate) fn overall(results: &[RunResult], signalled: bool) -> Outcome {
    let any = |o: Outcome| results.iter().any(|r| r.outcome == o);
    if signalled {
        Outcome::Interrupted
    } else if any(Outcome::RollbackFailed) || any(Outcome::Interrupted) {
        Outcome::RollbackFailed
    } else if any(Outcome::RolledBack) {
        Outcome::RolledBack
    } else if any(Outcome::Refused) {
        // Refused services changed nothing; the others were either not started or rolled back
        // (which the arm above catches), or deployed under --rollback-scope service.
        if any(Outcome::Deployed) {
            Outcome::RolledBack
        } else {
            Outcome::Refused
        }
    } else if results
        .iter()
        .all(|r| matches!(r.outcome, Outcome::Unchanged | Outcome::Skipped))
    {
        Outcome::Unchanged
    } else {
        Outcome::Deployed
    }
}

pub(crate) async fn run(
    cfg: &SystemConfig,
    aws: &Aws,
    out: &Output,
    interrupt: &Interrupt,
) -> RunResult {
    let layers = order(&cfg.services).expect("config::system checked the order");
    let signals = interrupt.count();
    out.system(&cfg.name);
    out.step(&format!(
        "deploying {} services of `{}`: {}",
        cfg.services.len(),
        cfg.name,
        layers
            .iter()
            .map(|l| l
                .iter()
                .map(|&i| cfg.services[i].name.as_str())
                .collect::<Vec<_>>()
                .join(" + "))
            .collect::<Vec<_>>()
            .join(", then ")
    ));
    // One interrupt for every service: a signal, or the first failure under --rollback-scope run.
    let (abort, stop) = watch::channel(0u32);
    let system_interrupt = Interrupt::from_receiver(stop);
    {
        let abort = abort.clone();
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
    // The service whose failure stopped the run (the first to fail, not the first in the file).
    let culprit: std::sync::Mutex<Option<usize>> = std::sync::Mutex::new(None);
    let outputs: Vec<Output> = cfg.services.iter().map(|s| out.child(&s.name)).collect();
    let (done_tx, done_rx): (Vec<_>, Vec<_>) = cfg
        .services
        .iter()
        .map(|_| watch::channel(None::<Outcome>))
        .unzip();
    let names: HashMap<&str, usize> = cfg
        .services
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let one = |i: usize| {
        let service = &cfg.services[i];
        let child = &outputs[i];
        let done_rx = &done_rx;
        let names = &names;
        let abort = &abort;
        let system_interrupt = &system_interrupt;
        let done = &done_tx[i];
        let culprit = &culprit;
        async move {
            let mut result = RunResult::for_target(&service.run.deploy.target);
            // Wait for what this service depends on to be deployed and healthy.
            for dep in &service.depends_on {
                let mut rx = done_rx[names[dep.as_str()]].clone();
                let outcome = *rx
                    .wait_for(Option::is_some)
                    .await
                    .expect("senders live as long as the run");
                if !matches!(outcome, Some(Outcome::Deployed | Outcome::Unchanged)) {
                    result = result.finish(
                        Outcome::Skipped,
                        Some(format!(
                            "not deployed: `{dep}`, which it depends on, did not deploy"
                        )),
                    );
                    child.result(&result);
                    let _ = done.send(Some(result.outcome));
                    return result;
                }
            }
            let aborted = |result: RunResult| {
                result.finish(
                    Outcome::Skipped,
                    Some("not deployed: the run stopped before it started (another service failed, or a signal)".into()),
                )
            };
            if *abort.borrow() > 0 {
                let result = aborted(result);
                child.result(&result);
                let _ = done.send(Some(result.outcome));
                return result;
            }
            let result = match crate::run::with_images(&service.run, aws, child).await {
                Err(err) => result.finish(Outcome::Refused, Some(format!("{err:#}"))),
                Ok(_) if *abort.borrow() > 0 => aborted(result),
                Ok(deploy_cfg) => {
                    crate::deploy::deploy(&deploy_cfg, aws, child, system_interrupt).await
                }
            };
            let failed = !matches!(
                result.outcome,
                Outcome::Deployed | Outcome::Unchanged | Outcome::Skipped
            );
            if failed {
                let mut first = culprit
                    .lock()
                    .expect("no thread panics while holding the culprit");
                if first.is_none() && *abort.borrow() == 0 {
                    *first = Some(i);
                }
                if cfg.rollback_scope == RollbackScope::Run {
                    abort.send_modify(|n| *n += 1);
                }
            }
            child.result(&result);
            let _ = done.send(Some(result.outcome));
            result
        }
    };
    let mut results: Vec<RunResult> = join_all((0..cfg.services.len()).map(one)).await;
    let signalled = interrupt.count() > signals;

    let culprit = culprit
        .into_inner()
        .expect("no thread panics while holding the culprit");
    let first_failure = culprit
        .or_else(|| {
            results.iter().position(|r| {
                !matches!(
                    r.outcome,
                    Outcome::Deployed | Outcome::Unchanged | Outcome::Skipped
                )
            })
        })
        .map(|i| {
            (
                cfg.services[i].name.clone(),
                results[i].reason.clone().unwrap_or_default(),
            )
        });

    // Services stopped mid-rollout by another's failure rolled themselves back: say so.
    if let Some((failed, _)) = &first_failure {
        for (r, s) in results.iter_mut().zip(&cfg.services) {
            if r.outcome == Outcome::Interrupted && !signalled && &s.name != failed {
                if r.deployment_id.is_none() {
                    // Stopped before its UpdateService (in pre-flight or its one-off task).
                    r.outcome = Outcome::Skipped;
                    r.reason = Some(format!(
                        "stopped before its service was updated, because `{failed}` failed"
                    ));
                } else if r.restored == Some(true) {
                    r.outcome = Outcome::RolledBack;
                    r.reason = Some(format!("stopped and rolled back because `{failed}` failed"));
                } else {
                    r.outcome = Outcome::RollbackFailed;
                    r.reason = Some(format!(
                        "stopped because `{failed}` failed, but its rollback did not complete"
                    ));
                }
            }
        }
    }

    // --rollback-scope run: put back what this run deployed, dependents first.
    if let (Some((failed, _)), RollbackScope::Run) = (&first_failure, cfg.rollback_scope) {
        for layer in layers.iter().rev() {
            let restores = layer
                .iter()
                .copied()
                .filter(|&i| results[i].outcome == Outcome::Deployed)
                .map(|i| {
                    let service = &cfg.services[i];
                    let r = &results[i];
                    let child = &outputs[i];
                    let interrupt = &interrupt;
                    async move {
                        let previous = r.previous_task_definition_arn.clone();
                        child.step(&format!(
                            "rolling back `{}` because `{failed}` failed",
                            service.name
                        ));
                        let outcome = match previous {
                            Some(to) => {
                                let cfg = RollbackConfig {
                                    target: service.run.deploy.target.clone(),
                                    to: Some(to),
                                    timeout: service.run.deploy.timeout,
                                    max_failed_tasks: service.run.deploy.max_failed_tasks,
                                };
                                crate::rollback::command(&cfg, aws, child, interrupt).await
                            }
                            None => {
                                crate::create::undo(aws, &service.run.deploy.target, child).await
                            }
                        };
                        (i, outcome)
                    }
                });
            for (i, restored) in join_all(restores).await {
                let r = &mut results[i];
                if matches!(restored.outcome, Outcome::Deployed | Outcome::Unchanged) {
                    r.outcome = Outcome::RolledBack;
                    r.reason = Some(format!(
                        "deployed, then rolled back because `{failed}` failed"
                    ));
                } else {
                    r.outcome = Outcome::RollbackFailed;
                    r.reason = Some(format!(
                        "deployed, then the rollback after `{failed}` failed did not complete: {}",
                        restored.reason.unwrap_or_default()
                    ));
                }
                outputs[i].result(r);
            }
        }
    }

    for child in &outputs {
        let report = child
            .report
            .lock()
            .expect("no thread panics while holding the report")
            .clone();
        out.service_report(report);
    }
    let outcome = overall(&results, signalled);
    let reason = first_failure.map(|(name, reason)| {
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
    });
    RunResult {
        outcome,
        cluster: None,
        service: None,
        task_definition_arn: None,
        previous_task_definition_arn: None,
        deployment_id: None,
        reason,
        services: results,
        restored: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DeployConfig, RunConfig, Target};

    fn service(name: &str, deps: &[&str]) -> SystemService {
        SystemService {
            name: name.into(),
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            run: RunConfig {
                builds: vec![],
                deploy: DeployConfig {
                    target: Target {
                        cluster: "c".into(),
                        service: name.into(),
                    },
                    images: vec![],
                    envs: vec![],
                    task_definition_file: None,
                    timeout: std::time::Duration::from_secs(1),
                    max_failed_tasks: 2,
                    rollback: true,
                    wait_for_idle: false,
                    force_new_deployment: false,
                    github_deployment: false,
                    run_task: None,
                    keep_revisions: None,
                    create_missing: false,
                    service_definition: None,
                },
            },
        }
    }

    #[test]
    fn layers_follow_depends_on() {
        let names = |services: &[SystemService], layers: Vec<Vec<usize>>| -> Vec<Vec<String>> {
            layers
                .into_iter()
                .map(|l| l.into_iter().map(|i| services[i].name.clone()).collect())
                .collect()
        };
        for (services, want) in [
            (
                vec![service("api", &[]), service("web", &["api"])],
                vec![vec!["api"], vec!["web"]],
            ),
            (
                vec![service("a", &[]), service("b", &[])],
                vec![vec!["a", "b"]],
            ),
            (
                vec![
                    service("db", &[]),
                    service("api", &["db"]),
                    service("jobs", &["db"]),
                    service("web", &["api", "jobs"]),
                ],
                vec![vec!["db"], vec!["api", "jobs"], vec!["web"]],
            ),
        ] {
            assert_eq!(names(&services, order(&services).unwrap()), want);
        }
        let cycle = vec![service("web", &["api"]), service("api", &["web"])];
        assert_eq!(order(&cycle).unwrap_err(), "web → api → web");
        let own = vec![service("web", &["web"])];
        assert_eq!(order(&own).unwrap_err(), "web → web");
    }

    #[test]
    fn the_run_ends_as_its_worst_service() {
        let r = |o: Outcome| RunResult {
            outcome: o,
            ..RunResult::refused("")
        };
        use Outcome::*;
        for (outcomes, signalled, want) in [
            (vec![Deployed, Deployed], false, Deployed),
            (vec![Unchanged, Deployed], false, Deployed),
            (vec![Unchanged, Unchanged], false, Unchanged),
            (vec![RolledBack, RolledBack], false, RolledBack),
            (vec![Refused, Skipped], false, Refused),
            (vec![RolledBack, Skipped], false, RolledBack),
            (vec![RolledBack, RollbackFailed], false, RollbackFailed),
            (vec![Deployed, Refused], false, RolledBack),
            (vec![RolledBack, Deployed], true, Interrupted),
        ] {
            let results: Vec<RunResult> = outcomes.iter().map(|&o| r(o)).collect();
            assert_eq!(overall(&results, signalled), want, "{outcomes:?}");
        }
    }
}
