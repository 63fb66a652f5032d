//! The checks of the service's load balancers against the new task definition: the container and
//! port each target group names, that ELB knows each target group, the port's protocol, and the
//! target type the network mode needs.

use serde_json::Value;
use std::collections::BTreeSet;

use super::references::{containers, text};
use super::{Finding, Seen, TargetGroup, unchecked};

/// The target groups of the service's load balancers (and blue/green alternates), with the
/// container and port each names.
pub(crate) fn load_balancers(service: &Value) -> Vec<(String, Option<String>, Option<i64>)> {
    let mut out = Vec::new();
    for lb in service
        .get("loadBalancers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let container = text(lb, "containerName").map(String::from);
        let port = lb.get("containerPort").and_then(Value::as_i64);
        if let Some(tg) = text(lb, "targetGroupArn") {
            out.push((tg.to_string(), container.clone(), port));
        }
        if let Some(alt) = lb
            .get("advancedConfiguration")
            .and_then(|a| text(a, "alternateTargetGroupArn"))
        {
            out.push((alt.to_string(), container, port));
        }
    }
    out
}

pub(crate) fn check_load_balancers(
    td: &Value,
    service: &Value,
    target_groups: &Seen<Vec<TargetGroup>>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let wiring = load_balancers(service);
    if wiring.is_empty() {
        return out;
    }
    let mode = text(td, "networkMode").unwrap_or("bridge");
    let mut seen_containers = BTreeSet::new();
    for (tg_arn, container, port) in &wiring {
        let (Some(container), Some(port)) = (container, port) else {
            continue;
        };
        if !seen_containers.insert((container.clone(), *port)) {
            continue;
        }
        out.extend(check_container(td, target_groups, tg_arn, container, *port));
    }
    out.extend(check_known(&wiring, target_groups));
    out.extend(check_target_types(mode, &wiring, target_groups));
    out
}

/// Each target group the service names is one ELB knows (a target group deleted since, or a typo in
/// a first deploy's service definition: the new tasks could never register).
fn check_known(
    wiring: &[(String, Option<String>, Option<i64>)],
    target_groups: &Seen<Vec<TargetGroup>>,
) -> Vec<Finding> {
    let known = |arn: &str| match target_groups {
        Seen::Found(groups) => groups.iter().any(|g| g.arn == arn),
        Seen::Missing => false,
        // Not read: `check_target_types` says why.
        Seen::Denied(_) | Seen::Failed(_) => true,
    };
    let mut named = BTreeSet::new();
    wiring
        .iter()
        .map(|w| w.0.as_str())
        .filter(|arn| named.insert(*arn) && !known(arn))
        .map(|arn| {
            Finding::error(
                "target-group-not-found",
                "loadBalancers[].targetGroupArn",
                arn,
            )
            .says(
                format!(
                    "ELB has no target group {}: the service's tasks could not register in it",
                    short_tg(arn)
                ),
                "create the target group, or name one that exists in the service's loadBalancers",
            )
        })
        .collect()
}

/// The container a target group sends traffic to: there, mapping the port, with a protocol the
/// target group speaks.
fn check_container(
    td: &Value,
    target_groups: &Seen<Vec<TargetGroup>>,
    tg_arn: &str,
    container: &str,
    port: i64,
) -> Option<Finding> {
    let Some((_, c)) = containers(td).find(|(n, _)| *n == container) else {
        return Some(Finding::error("lb-container-missing", "loadBalancers[].containerName", container).says(
                format!("the service sends target group {} traffic to this container, but the new task definition has no container of that name", short_tg(tg_arn)),
                "keep the container name the service's loadBalancers use, or recreate the service with the new name",
            ));
    };
    let mapping = c
        .get("portMappings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|p| p.get("containerPort").and_then(Value::as_i64) == Some(port));
    let Some(mapping) = mapping else {
        let has: Vec<String> = c
            .get("portMappings")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("containerPort").map(Value::to_string))
            .collect();
        return Some(
                Finding::error("lb-port-missing", "portMappings[].containerPort", &port.to_string())
                    .of(container)
                    .says(
                        format!(
                            "the service's load balancer sends traffic to port {port}, but the container maps {}",
                            if has.is_empty() { "no port".to_string() } else { has.join(", ") }
                        ),
                        format!("add a portMapping with containerPort {port}, or change the service's loadBalancers"),
                    ),
            );
    };
    let protocol = text(mapping, "protocol").unwrap_or("tcp");
    let Seen::Found(groups) = target_groups else {
        return None;
    };
    let tg = groups.iter().find(|g| g.arn == tg_arn)?;
    (protocol.eq_ignore_ascii_case("udp")
        && !tg
            .protocol
            .as_deref()
            .is_some_and(|p| p.to_ascii_uppercase().contains("UDP")))
    .then(|| {
        Finding::error("lb-protocol-mismatch", "portMappings[].protocol", protocol)
            .of(container)
            .says(
                format!(
                    "target group {} speaks {}, the container's port is udp",
                    short_tg(tg_arn),
                    tg.protocol.as_deref().unwrap_or("?")
                ),
                "use a UDP or TCP_UDP target group, or a tcp port mapping",
            )
    })
}

/// Each target group's target type against the one tasks in this network mode register as.
fn check_target_types(
    mode: &str,
    wiring: &[(String, Option<String>, Option<i64>)],
    target_groups: &Seen<Vec<TargetGroup>>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    match target_groups {
        Seen::Found(groups) => {
            let wanted = if mode == "awsvpc" { "ip" } else { "instance" };
            for g in groups
                .iter()
                .filter(|g| g.target_type != wanted && g.target_type != "alb")
            {
                out.push(Finding::error("target-type-mismatch", "networkMode", mode).says(
                    format!("target group {} has target type {}; tasks in {mode} mode register as {wanted} targets", short_tg(&g.arn), g.target_type),
                    format!("use a target group of type {wanted}, or change the task's networkMode"),
                ));
            }
        }
        seen => {
            let arns: Vec<String> = wiring.iter().map(|w| short_tg(&w.0)).collect();
            out.extend(unchecked(
                seen,
                "loadBalancers[].targetGroupArn",
                &arns.join(", "),
                None,
            ));
        }
    }
    out
}

fn short_tg(arn: &str) -> String {
    arn.split(":targetgroup/")
        .nth(1)
        .and_then(|p| p.split('/').next())
        .unwrap_or(arn)
        .to_string()
}
