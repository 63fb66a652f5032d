//! A run of several services, decided: the dependency layers (`order`), how the run ends from each
//! service's outcome (`overall`), and how a service stopped by another's failure is labelled
//! (`relabel`). Pure functions, table-tested.

use crate::outcome::{Outcome, RunResult};
use std::collections::HashMap;

/// Dependency layers: every service of a layer depends only on services of earlier layers.
/// Err names a cycle, e.g. "web → api → web".
pub(crate) fn order(services: &[(&str, &[String])]) -> Result<Vec<Vec<usize>>, String> {
    let index: HashMap<&str, usize> = services.iter().enumerate().map(|(i, s)| (s.0, i)).collect();
    let mut layer_of: Vec<Option<usize>> = vec![None; services.len()];
    fn visit(
        i: usize,
        services: &[(&str, &[String])],
        index: &HashMap<&str, usize>,
        layer_of: &mut Vec<Option<usize>>,
        path: &mut Vec<usize>,
    ) -> Result<usize, String> {
        if let Some(layer) = layer_of[i] {
            return Ok(layer);
        }
        if let Some(at) = path.iter().position(|&p| p == i) {
            let mut names: Vec<&str> = path[at..].iter().map(|&p| services[p].0).collect();
            names.push(services[i].0);
            return Err(names.join(" → "));
        }
        path.push(i);
        let mut layer = 0;
        for dep in services[i].1 {
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

/// Pure: the result of a service that a signal-free abort stopped, because `failed` failed first.
/// Stopped before its UpdateService: skipped. Its own rollback ended healthy: rolled back. Else its
/// rollback did not complete.
pub(crate) fn relabel(result: &mut RunResult, failed: &str) {
    if result.outcome != Outcome::Interrupted {
        return;
    }
    let (outcome, reason) = if result.deployment_id.is_none() {
        (
            Outcome::Skipped,
            format!("stopped before its service was updated, because `{failed}` failed"),
        )
    } else if result.restored == Some(true) {
        (
            Outcome::RolledBack,
            format!("stopped and rolled back because `{failed}` failed"),
        )
    } else {
        (
            Outcome::RollbackFailed,
            format!("stopped because `{failed}` failed, but its rollback did not complete"),
        )
    };
    result.outcome = outcome;
    result.reason = Some(reason);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(name: &str, deps: &[&str]) -> (String, Vec<String>) {
        (name.into(), deps.iter().map(|d| d.to_string()).collect())
    }

    fn order(services: &[(String, Vec<String>)]) -> Result<Vec<Vec<usize>>, String> {
        let borrowed: Vec<(&str, &[String])> = services
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        super::order(&borrowed)
    }

    #[test]
    fn layers_follow_depends_on() {
        let names =
            |services: &[(String, Vec<String>)], layers: Vec<Vec<usize>>| -> Vec<Vec<String>> {
                layers
                    .into_iter()
                    .map(|l| l.into_iter().map(|i| services[i].0.clone()).collect())
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

    #[test]
    fn a_service_stopped_by_another_failure_says_what_became_of_it() {
        let r = |outcome: Outcome, deployment: bool, restored: Option<bool>| RunResult {
            outcome,
            deployment_id: deployment.then(|| "ecs-svc/1".to_string()),
            restored,
            ..RunResult::refused("")
        };
        use Outcome::*;
        // (what it ended as, updated?, its rollback healthy?) → (label, reason starts with)
        for (result, want, why) in [
            (
                r(Interrupted, false, None),
                Skipped,
                "stopped before its service was updated",
            ),
            (
                r(Interrupted, true, Some(true)),
                RolledBack,
                "stopped and rolled back",
            ),
            (
                r(Interrupted, true, Some(false)),
                RollbackFailed,
                "stopped because `api` failed, but",
            ),
            (
                r(Interrupted, true, None),
                RollbackFailed,
                "stopped because `api` failed, but",
            ),
            (r(Deployed, true, None), Deployed, ""),
            (r(RolledBack, true, Some(true)), RolledBack, ""),
        ] {
            let mut result = result;
            let before = result.reason.clone();
            relabel(&mut result, "api");
            assert_eq!(result.outcome, want, "{why}");
            if why.is_empty() {
                assert_eq!(result.reason, before, "left as it was");
            } else {
                assert!(
                    result.reason.as_deref().unwrap().starts_with(why),
                    "{:?}",
                    result.reason
                );
            }
        }
    }
}
