//! `verify`'s reads, all at once and read-only: what IAM, ECR, Secrets Manager, SSM, CloudWatch
//! Logs, ELB and EC2 say about the task definition a deploy would register and the service it
//! would run in. `findings::check` decides; this step only gathers and reports.

use crate::aws::{Aws, ecr, ecs, iam, logs, reads, secrets};
use crate::findings::{self, Facts, Finding, SecretRef, Seen, TargetGroup};
use crate::report::output::Output;
use crate::service_definition::ServiceDefinition;
use crate::target::Target;
use crate::task_definition::TaskDefinition;
use anyhow::Result;
use aws_sdk_ecs::types::Service;
use futures_util::future::join_all;
use serde_json::{Value, json};

/// What verify checks: the new task definition, and the service it goes into (None: the live one).
pub(crate) struct Subject<'a> {
    pub(crate) target: &'a Target,
    pub(crate) task_definition: &'a TaskDefinition,
    /// A first deploy (`--create-missing`): the service definition it creates.
    pub(crate) creating: Option<&'a ServiceDefinition>,
    /// `--no-rollback` not given.
    pub(crate) rollback: bool,
}

/// Reads everything the checks need, then checks. Reads run concurrently; none writes.
pub(crate) async fn findings(
    aws: &Aws,
    subject: &Subject<'_>,
    out: &Output,
) -> Result<Vec<Finding>> {
    let facts = read(aws, subject, out).await?;
    Ok(findings::check(&facts))
}

async fn read(aws: &Aws, subject: &Subject<'_>, out: &Output) -> Result<Facts> {
    let td = subject.task_definition.0.clone();
    let service = match subject.creating {
        Some(definition) => definition.0.clone(),
        // The batched DescribeServices: several services deploying at once share one call.
        None => as_json(&ecs::describe_service(aws, subject.target).await?),
    };
    let (ecr_images, other) = findings::images(&td);
    for (container, image) in &other {
        out.info(&format!(
            "container `{container}`: image `{image}` is not in Amazon ECR: not checked"
        ));
    }
    let roles = roles(&td);
    let secret_refs = findings::secrets(&td);
    let home = td
        .get("executionRoleArn")
        .and_then(Value::as_str)
        .and_then(findings::arn_account)
        .map(String::from);
    let groups = findings::log_groups(&td);
    let wiring = findings::load_balancers(&service);
    let mut tg_arns: Vec<String> = wiring.iter().map(|w| w.0.clone()).collect();
    tg_arns.dedup();
    let subnets = findings::subnets(&service);
    let (images, roles, secrets, log_groups, target_groups, zones) = tokio::join!(
        join_all(ecr_images.iter().map(|(c, image, parsed)| async move {
            (
                c.clone(),
                image.clone(),
                ecr::image_exists(aws, parsed).await,
            )
        })),
        join_all(roles.iter().map(|(field, arn)| async move {
            (
                field.clone(),
                arn.clone(),
                iam::trust_policy(aws, arn).await,
            )
        })),
        join_all(secret_refs.iter().map(|(c, field, from)| async {
            let seen = match findings::other_account_parameter(from, home.as_deref()) {
                Some(why) => Seen::Failed(why),
                None => secrets::exists(aws, &SecretRef::parse(from)).await,
            };
            (c.clone(), field.clone(), from.clone(), seen)
        })),
        join_all(groups.iter().map(|(c, group, region)| async move {
            (
                c.clone(),
                group.clone(),
                logs::group_exists(aws, group, region.as_deref()).await,
            )
        })),
        target_groups(aws, &tg_arns),
        zones(aws, &subnets),
    );
    Ok(Facts {
        td,
        service,
        images,
        roles,
        secrets,
        log_groups,
        target_groups,
        zones,
        rollback: subject.rollback,
    })
}

/// What the checks read of a live service, in DescribeServices' JSON names (the names a service
/// definition file uses too).
fn as_json(service: &Service) -> Value {
    let load_balancers: Vec<Value> = service
        .load_balancers()
        .iter()
        .map(|lb| {
            json!({
                "targetGroupArn": lb.target_group_arn(),
                "containerName": lb.container_name(),
                "containerPort": lb.container_port(),
                "advancedConfiguration": {
                    "alternateTargetGroupArn": lb.advanced_configuration().and_then(|a| a.alternate_target_group_arn()),
                },
            })
        })
        .collect();
    let providers: Vec<Value> = service
        .capacity_provider_strategy()
        .iter()
        .map(|p| json!({"capacityProvider": p.capacity_provider()}))
        .collect();
    let config = service.deployment_configuration();
    let breaker = config.and_then(|c| c.deployment_circuit_breaker());
    let alarms = config.and_then(|c| c.alarms());
    let subnets = service
        .network_configuration()
        .and_then(|n| n.awsvpc_configuration())
        .map(|a| a.subnets().to_vec())
        .unwrap_or_default();
    json!({
        "desiredCount": service.desired_count(),
        "launchType": service.launch_type().map(|l| l.as_str()),
        "capacityProviderStrategy": providers,
        "loadBalancers": load_balancers,
        "networkConfiguration": {"awsvpcConfiguration": {"subnets": subnets}},
        "deploymentConfiguration": {
            "deploymentCircuitBreaker": breaker.map(|b| json!({"enable": b.enable(), "rollback": b.rollback()})),
            "alarms": alarms.map(|a| json!({"enable": a.enable(), "rollback": a.rollback()})),
        },
    })
}

/// The task definition's IAM roles, by field: `executionRoleArn` and `taskRoleArn`, when set.
fn roles(td: &Value) -> Vec<(String, String)> {
    ["executionRoleArn", "taskRoleArn"]
        .into_iter()
        .filter_map(|field| {
            let arn = td.get(field)?.as_str().filter(|a| !a.is_empty())?;
            Some((field.to_string(), arn.to_string()))
        })
        .collect()
}

/// The service's target groups (the batched DescribeTargetGroups: several services verifying at
/// once share one call), none read when it has no load balancer; one ELB does not know is left out.
async fn target_groups(aws: &Aws, arns: &[String]) -> Seen<Vec<TargetGroup>> {
    if arns.is_empty() {
        Seen::Found(Vec::new())
    } else {
        reads::target_groups(&aws.elb, arns).await
    }
}

/// The zone of each subnet (DescribeSubnets, shared with the zone-spread warning's cache).
async fn zones(aws: &Aws, subnets: &[String]) -> Seen<Vec<String>> {
    if subnets.is_empty() {
        return Seen::Found(Vec::new());
    }
    match reads::zones(&aws.ec2, subnets).await {
        Ok(zones) => Seen::Found(zones.into_values().collect()),
        Err(err) => {
            let text = format!("{err:#}");
            if text.contains("UnauthorizedOperation") || text.contains("AccessDenied") {
                Seen::Denied("ec2:DescribeSubnets")
            } else {
                Seen::Failed(text)
            }
        }
    }
}

/// Prints and reports the findings; the summary line.
pub(crate) fn report(findings: &[Finding], out: &Output) -> String {
    out.findings(findings);
    let errors = findings::errors(findings);
    let warnings = findings.len() - errors;
    format!(
        "verify: {errors} error{}, {warnings} warning{}",
        if errors == 1 { "" } else { "s" },
        if warnings == 1 { "" } else { "s" }
    )
}
