//! The checks of what the task definition names: its images in ECR, its roles (and whether they
//! trust ecs-tasks.amazonaws.com), its secrets and its log groups.

use serde_json::Value;

use super::fargate::on_fargate;
use super::references::{images, secrets, text, uses_awslogs};
use super::{Finding, Seen, unchecked};

pub(crate) fn check_images(images: &[(String, String, Seen<()>)]) -> Vec<Finding> {
    images
        .iter()
        .filter_map(|(container, image, seen)| match seen {
            Seen::Missing => Some(
                Finding::error("image-not-found", "image", image)
                    .of(container)
                    .says(
                        "ECR has no such image (tag or digest) in that repository, account and region",
                        "push the image first, or fix the tag, account or region in the reference",
                    ),
            ),
            _ => unchecked(seen, "image", image, Some(container)),
        })
        .collect()
}

/// True when the trust policy lets `ecs-tasks.amazonaws.com` assume the role.
pub(crate) fn trusts_ecs_tasks(policy: &str) -> bool {
    let doc: Value = serde_json::from_str(policy)
        .or_else(|_| serde_json::from_str(&percent_decode(policy)))
        .unwrap_or(Value::Null);
    let statements = match doc.get("Statement") {
        Some(Value::Array(list)) => list.clone(),
        Some(one) => vec![one.clone()],
        None => Vec::new(),
    };
    let has = |v: Option<&Value>, wanted: &str| match v {
        Some(Value::String(s)) => s == wanted || s == "*",
        Some(Value::Array(list)) => list.iter().any(|s| s == wanted || s == "*"),
        _ => false,
    };
    statements.iter().any(|s| {
        s.get("Effect").and_then(Value::as_str) == Some("Allow")
            && has(
                s.get("Principal").and_then(|p| p.get("Service")),
                "ecs-tasks.amazonaws.com",
            )
            && (has(s.get("Action"), "sts:AssumeRole") || has(s.get("Action"), "sts:*"))
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The execution role is needed for secrets, and on Fargate for ECR images and awslogs (on EC2
/// the container instance's role pulls and writes logs).
pub(crate) fn check_roles(
    td: &Value,
    service: &Value,
    roles: &[(String, String, Seen<String>)],
) -> Vec<Finding> {
    let mut out = Vec::new();
    let execution = text(td, "executionRoleArn").filter(|r| !r.is_empty());
    let (ecr, _) = images(td);
    let fargate = on_fargate(td, service);
    let needs: Vec<&str> = [
        (!secrets(td).is_empty(), "secrets"),
        (fargate && !ecr.is_empty(), "ECR images on Fargate"),
        (
            fargate && uses_awslogs(td),
            "the awslogs log driver on Fargate",
        ),
    ]
    .into_iter()
    .filter_map(|(yes, why)| yes.then_some(why))
    .collect();
    if execution.is_none() && !needs.is_empty() {
        out.push(Finding::error("execution-role-missing", "executionRoleArn", "").says(
            format!("the task definition uses {} but has no execution role: ECS could not start its tasks", needs.join(", ")),
            "set executionRoleArn to a role that trusts ecs-tasks.amazonaws.com and has AmazonECSTaskExecutionRolePolicy",
        ));
    }
    for (field, arn, seen) in roles {
        match seen {
            Seen::Missing => out.push(Finding::error("role-not-found", field, arn).says(
                "IAM has no such role",
                "create the role (trusting ecs-tasks.amazonaws.com) or fix the ARN",
            )),
            Seen::Found(policy) if !trusts_ecs_tasks(policy) => out.push(
                Finding::error("role-not-trusted", field, arn).says(
                    "the role's trust policy does not let ecs-tasks.amazonaws.com assume it",
                    "add a statement allowing sts:AssumeRole to the service principal ecs-tasks.amazonaws.com",
                ),
            ),
            _ => out.extend(unchecked(seen, field, arn, None)),
        }
    }
    out
}

pub(crate) fn check_secrets(secrets: &[(String, String, String, Seen<()>)]) -> Vec<Finding> {
    secrets
        .iter()
        .filter_map(|(container, field, from, seen)| match seen {
            Seen::Missing => Some(
                Finding::error("secret-not-found", field, from)
                    .of(container)
                    .says(
                        "no such Secrets Manager secret or SSM parameter (looked up by name; its value is never read)",
                        "create it in the task's region, or fix the ARN or name",
                    ),
            ),
            _ => unchecked(seen, field, from, Some(container)),
        })
        .collect()
}

pub(crate) fn check_logs(groups: &[(String, String, Seen<()>)]) -> Vec<Finding> {
    groups
        .iter()
        .filter_map(|(container, group, seen)| {
            let field = "logConfiguration.options.awslogs-group";
            match seen {
                Seen::Missing => Some(
                    Finding::error("log-group-not-found", field, group)
                        .of(container)
                        .says(
                            "CloudWatch Logs has no such log group, and awslogs-create-group is not true",
                            "create the log group, or set awslogs-create-group to \"true\" (the execution role then needs logs:CreateLogGroup)",
                        ),
                ),
                _ => unchecked(seen, field, group, Some(container)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_policies() {
        let allow = r#"{"Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}"#;
        for (policy, trusted) in [
            (allow.to_string(), true),
            (allow.replace("ecs-tasks", "ec2"), false),
            (allow.replace("Allow", "Deny"), false),
            (r#"{"Statement": {"Effect": "Allow", "Principal": {"Service": ["ec2.amazonaws.com", "ecs-tasks.amazonaws.com"]}, "Action": ["sts:AssumeRole", "sts:TagSession"]}}"#.into(), true),
            ("%7B%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22Service%22%3A%22ecs-tasks.amazonaws.com%22%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D".into(), true),
            ("not json".into(), false),
        ] {
            assert_eq!(trusts_ecs_tasks(&policy), trusted, "{policy}");
        }
    }
}
