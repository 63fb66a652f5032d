//! The checks of the service's availability: its task count, its subnets' zones, and whether a
//! failed deploy rolls back.

use serde_json::{Value, json};
use std::collections::BTreeSet;

use super::{Finding, Seen, unchecked};

pub(crate) fn check_availability(
    service: &Value,
    zones: &Seen<Vec<String>>,
    rollback: bool,
) -> Vec<Finding> {
    let mut out = Vec::new();
    if service.is_null() {
        return out;
    }
    let desired = service
        .get("desiredCount")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if desired < 2 {
        out.push(
            Finding::warning("desired-count-low", "desiredCount", &desired.to_string()).says(
                "fewer than 2 tasks: one task stopping takes the service down",
                "run at least 2 tasks",
            ),
        );
    }
    match zones {
        Seen::Found(zones) => {
            let distinct: BTreeSet<&String> = zones.iter().collect();
            if distinct.len() == 1 {
                let zone = distinct.into_iter().next().cloned().unwrap_or_default();
                out.push(
                    Finding::warning(
                        "single-zone",
                        "networkConfiguration.awsvpcConfiguration.subnets",
                        &zone,
                    )
                    .says(
                        "every subnet of the service is in one availability zone",
                        "add subnets in at least one more zone",
                    ),
                );
            }
        }
        seen => out.extend(unchecked(
            seen,
            "networkConfiguration.awsvpcConfiguration.subnets",
            "",
            None,
        )),
    }
    let config = service.get("deploymentConfiguration");
    let on = |key: &str| {
        config.and_then(|c| c.get(key)).is_some_and(|b| {
            b.get("enable") == Some(&json!(true)) && b.get("rollback") == Some(&json!(true))
        })
    };
    if !rollback && !on("deploymentCircuitBreaker") && !on("alarms") {
        out.push(Finding::warning("no-rollback", "deploymentConfiguration", "").says(
            "--no-rollback and neither the circuit breaker nor alarms roll back: a failed deploy stays failed",
            "drop --no-rollback, or enable the deployment circuit breaker with rollback",
        ));
    }
    out
}

/// The subnets of the service's awsvpc configuration.
pub(crate) fn subnets(service: &Value) -> Vec<String> {
    service
        .get("networkConfiguration")
        .and_then(|n| n.get("awsvpcConfiguration"))
        .and_then(|a| a.get("subnets"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(String::from))
        .collect()
}
