//! `deployer verify`'s checks: pure functions from what was read (the new task definition, the
//! service, and what IAM, ECR, Secrets Manager, SSM, CloudWatch Logs, ELB and EC2 said) to findings.
//!
//! Each finding has a stable `code`, names the container, field and value, and says what to do. An
//! error refuses a deploy; a warning is printed and reported. A read IAM denied is a warning naming
//! the permission, never an error. Secret values are never read: a secret is looked up by name.

use serde_json::{Value, json};
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Error,
    Warning,
}

/// One thing `verify` found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Finding {
    pub(crate) code: &'static str,
    pub(crate) level: Level,
    pub(crate) container: Option<String>,
    pub(crate) field: String,
    pub(crate) value: String,
    pub(crate) problem: String,
    pub(crate) what_to_do: String,
}

impl Finding {
    fn new(code: &'static str, level: Level, field: &str, value: &str) -> Finding {
        Finding {
            code,
            level,
            container: None,
            field: field.to_string(),
            value: value.to_string(),
            problem: String::new(),
            what_to_do: String::new(),
        }
    }

    fn error(code: &'static str, field: &str, value: &str) -> Finding {
        Finding::new(code, Level::Error, field, value)
    }

    fn warning(code: &'static str, field: &str, value: &str) -> Finding {
        Finding::new(code, Level::Warning, field, value)
    }

    fn of(mut self, container: &str) -> Finding {
        self.container = Some(container.to_string());
        self
    }

    fn says(mut self, problem: impl Into<String>, what_to_do: impl Into<String>) -> Finding {
        self.problem = problem.into();
        self.what_to_do = what_to_do.into();
        self
    }

    /// One line: `[code] container `web`, secrets[0].valueFrom = `…`: problem; what to do`.
    pub(crate) fn line(&self) -> String {
        let container = self
            .container
            .as_ref()
            .map(|c| format!("container `{c}`, "))
            .unwrap_or_default();
        format!(
            "[{}] {container}{} = `{}`: {}; {}",
            self.code, self.field, self.value, self.problem, self.what_to_do
        )
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({
            "code": self.code,
            "severity": match self.level { Level::Error => "error", Level::Warning => "warning" },
            "container": self.container,
            "field": self.field,
            "value": self.value,
            "problem": self.problem,
            "what_to_do": self.what_to_do,
        })
    }
}

/// What one read said: found (with what was read), missing, denied by IAM (the permission that
/// would allow it), or failed for another reason.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Seen<T> {
    Found(T),
    Missing,
    Denied(&'static str),
    Failed(String),
}

/// A read that could not say: a warning naming the permission (denied) or the error.
fn unchecked<T>(
    seen: &Seen<T>,
    field: &str,
    value: &str,
    container: Option<&str>,
) -> Option<Finding> {
    let finding = match seen {
        Seen::Denied(permission) => Finding::warning("check-denied", field, value).says(
            format!("not checked: IAM denied {permission}"),
            format!("allow {permission} to the deployer's role to check it"),
        ),
        Seen::Failed(why) => Finding::warning("check-failed", field, value).says(
            format!("not checked: {why}"),
            "run `deployer verify` again; the read may succeed",
        ),
        _ => return None,
    };
    Some(match container {
        Some(c) => finding.of(c),
        None => finding,
    })
}

// --------------------------------------------------------------------------- reading the task definition

/// A container of the task definition, as JSON.
fn containers(td: &Value) -> impl Iterator<Item = (&str, &Value)> {
    td.get("containerDefinitions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| (c.get("name").and_then(Value::as_str).unwrap_or_default(), c))
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// An image in Amazon ECR: `ACCOUNT.dkr.ecr.REGION.amazonaws.com[.cn]/REPO(:TAG|@DIGEST)`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct EcrImage {
    pub(crate) account: String,
    pub(crate) region: String,
    pub(crate) repository: String,
    /// The tag, or the digest (`sha256:…`).
    pub(crate) reference: String,
    pub(crate) by_digest: bool,
}

impl EcrImage {
    pub(crate) fn parse(image: &str) -> Option<EcrImage> {
        let (host, path) = image.split_once('/')?;
        let mut parts = host.split('.');
        let account = parts.next()?;
        let (dkr, ecr, region) = (parts.next()?, parts.next()?, parts.next()?);
        if dkr != "dkr" || !ecr.starts_with("ecr") || !host.contains(".amazonaws.com") {
            return None;
        }
        let (repository, reference, by_digest) = match path.split_once('@') {
            Some((repo, digest)) => (repo.split(':').next()?, digest, true),
            None => match path.rsplit_once(':') {
                Some((repo, tag)) => (repo, tag, false),
                None => (path, "latest", false),
            },
        };
        Some(EcrImage {
            account: account.to_string(),
            region: region.to_string(),
            repository: repository.to_string(),
            reference: reference.to_string(),
            by_digest,
        })
    }
}

/// (container, image, the image in ECR) for each container whose image is in ECR.
pub(crate) type EcrImages = Vec<(String, String, EcrImage)>;

/// The ECR images of the task definition, and (container, image) for every image not in ECR.
pub(crate) fn images(td: &Value) -> (EcrImages, Vec<(String, String)>) {
    let (mut ecr, mut other) = (Vec::new(), Vec::new());
    for (name, c) in containers(td) {
        let image = text(c, "image").unwrap_or_default();
        match EcrImage::parse(image) {
            Some(found) => ecr.push((name.to_string(), image.to_string(), found)),
            None => other.push((name.to_string(), image.to_string())),
        }
    }
    (ecr, other)
}

/// Where a secret's value comes from, by name only.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum SecretRef {
    /// A Secrets Manager secret: its ARN without `:json-key:version-stage:version-id`.
    Secret { region: Option<String>, id: String },
    /// An SSM parameter: its name (`/path/name` or `name`).
    Parameter {
        region: Option<String>,
        name: String,
    },
}

impl SecretRef {
    pub(crate) fn parse(value_from: &str) -> SecretRef {
        let parts: Vec<&str> = value_from.split(':').collect();
        if parts.len() >= 7 && parts[0] == "arn" && parts[2] == "secretsmanager" {
            return SecretRef::Secret {
                region: Some(parts[3].to_string()).filter(|r| !r.is_empty()),
                id: parts[..7].join(":"),
            };
        }
        if parts.len() >= 6 && parts[0] == "arn" && parts[2] == "ssm" {
            let resource = parts[5..].join(":");
            let name = resource.strip_prefix("parameter").unwrap_or(&resource);
            let name = if name.matches('/').count() > 1 {
                name.to_string()
            } else {
                name.trim_start_matches('/').to_string()
            };
            return SecretRef::Parameter {
                region: Some(parts[3].to_string()).filter(|r| !r.is_empty()),
                name,
            };
        }
        SecretRef::Parameter {
            region: None,
            name: value_from.to_string(),
        }
    }
}

/// The account of an ARN (`arn:aws:ssm:REGION:ACCOUNT:…`), or None for a bare name.
pub(crate) fn arn_account(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.split(':').collect();
    (parts.len() >= 6 && parts[0] == "arn" && !parts[4].is_empty()).then(|| parts[4])
}

/// An SSM parameter shared from another account cannot be looked up by name here (DescribeParameters
/// lists the caller's own), and reading it would read its value: it is not checked.
pub(crate) fn other_account_parameter(value_from: &str, home: Option<&str>) -> Option<String> {
    let account = arn_account(value_from)?;
    let ssm = value_from.split(':').nth(2) == Some("ssm");
    (ssm && home.is_some_and(|home| home != account)).then(|| {
        format!("an SSM parameter of account {account}, not the task's: a parameter is looked up by name in the task's own account only")
    })
}

/// Each `secrets[].valueFrom` of each container: (container, field, valueFrom).
pub(crate) fn secrets(td: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (name, c) in containers(td) {
        for (i, s) in c
            .get("secrets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(from) = text(s, "valueFrom") {
                let field = format!("secrets[{i}].valueFrom");
                out.push((name.to_string(), field, from.to_string()));
            }
        }
    }
    out
}

/// Each awslogs log group deployer must find (those without `awslogs-create-group` true):
/// (container, group, region).
pub(crate) fn log_groups(td: &Value) -> Vec<(String, String, Option<String>)> {
    let mut out = Vec::new();
    for (name, c) in containers(td) {
        let Some(log) = c.get("logConfiguration") else {
            continue;
        };
        if text(log, "logDriver") != Some("awslogs") {
            continue;
        }
        let options = log.get("options").cloned().unwrap_or(Value::Null);
        let create =
            text(&options, "awslogs-create-group").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if let (Some(group), false) = (text(&options, "awslogs-group"), create) {
            let region = text(&options, "awslogs-region").map(String::from);
            out.push((name.to_string(), group.to_string(), region));
        }
    }
    out
}

fn uses_awslogs(td: &Value) -> bool {
    containers(td).any(|(_, c)| {
        c.get("logConfiguration").and_then(|l| text(l, "logDriver")) == Some("awslogs")
    })
}

/// The role name of an IAM role ARN (`arn:aws:iam::1:role/path/name` → `name`).
pub(crate) fn role_name(arn: &str) -> String {
    arn.rsplit('/').next().unwrap_or(arn).to_string()
}

// --------------------------------------------------------------------------- what was read

/// One target group of the service, as ELB describes it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TargetGroup {
    pub(crate) arn: String,
    pub(crate) target_type: String,
    pub(crate) protocol: Option<String>,
}

/// Everything the checks look at, read before any write.
#[derive(Debug, Clone)]
pub(crate) struct Facts {
    /// The task definition the deploy would register.
    pub(crate) td: Value,
    /// The service as DescribeServices says (or the service definition a first deploy creates).
    pub(crate) service: Value,
    /// (container, image, what ECR said).
    pub(crate) images: Vec<(String, String, Seen<()>)>,
    /// (field, role ARN, the role's trust policy document).
    pub(crate) roles: Vec<(String, String, Seen<String>)>,
    /// (container, field, valueFrom, whether the secret or parameter exists).
    pub(crate) secrets: Vec<(String, String, String, Seen<()>)>,
    /// (container, log group, whether it exists).
    pub(crate) log_groups: Vec<(String, String, Seen<()>)>,
    pub(crate) target_groups: Seen<Vec<TargetGroup>>,
    /// The service's subnets' zones (zone of each subnet found).
    pub(crate) zones: Seen<Vec<String>>,
    /// `--no-rollback` not given.
    pub(crate) rollback: bool,
}

/// Every check, in the order a reader fixes things.
pub(crate) fn check(facts: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    out.extend(check_images(&facts.images));
    out.extend(check_roles(&facts.td, &facts.service, &facts.roles));
    out.extend(check_secrets(&facts.secrets));
    out.extend(check_logs(&facts.log_groups));
    out.extend(check_load_balancers(
        &facts.td,
        &facts.service,
        &facts.target_groups,
    ));
    out.extend(check_fargate(&facts.td, &facts.service));
    out.extend(check_availability(
        &facts.service,
        &facts.zones,
        facts.rollback,
    ));
    out
}

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
        let Some((_, c)) = containers(td).find(|(n, _)| n == container) else {
            out.push(Finding::error("lb-container-missing", "loadBalancers[].containerName", container).says(
                format!("the service sends target group {} traffic to this container, but the new task definition has no container of that name", short_tg(tg_arn)),
                "keep the container name the service's loadBalancers use, or recreate the service with the new name",
            ));
            continue;
        };
        let mapping = c
            .get("portMappings")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|p| p.get("containerPort").and_then(Value::as_i64) == Some(*port));
        let Some(mapping) = mapping else {
            let has: Vec<String> = c
                .get("portMappings")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|p| p.get("containerPort").map(Value::to_string))
                .collect();
            out.push(
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
            continue;
        };
        let protocol = text(mapping, "protocol").unwrap_or("tcp");
        if let Seen::Found(groups) = target_groups
            && let Some(tg) = groups.iter().find(|g| &g.arn == tg_arn)
            && protocol.eq_ignore_ascii_case("udp")
            && !tg
                .protocol
                .as_deref()
                .is_some_and(|p| p.to_ascii_uppercase().contains("UDP"))
        {
            out.push(
                Finding::error("lb-protocol-mismatch", "portMappings[].protocol", protocol)
                    .of(container)
                    .says(
                        format!(
                            "target group {} speaks {}, the container's port is udp",
                            short_tg(tg_arn),
                            tg.protocol.as_deref().unwrap_or("?")
                        ),
                        "use a UDP or TCP_UDP target group, or a tcp port mapping",
                    ),
            );
        }
    }
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

/// `1024`, `1 vCPU`, `0.25 vcpu` → CPU units.
fn cpu_units(text: &str) -> Option<u64> {
    let t = text.trim().to_ascii_lowercase();
    match t.strip_suffix("vcpu") {
        Some(n) => n
            .trim()
            .parse::<f64>()
            .ok()
            .map(|v| (v * 1024.0).round() as u64),
        None => t.parse().ok(),
    }
}

/// `2048`, `2 GB`, `0.5gb` → MiB.
fn memory_mib(text: &str) -> Option<u64> {
    let t = text.trim().to_ascii_lowercase();
    match t.strip_suffix("gb") {
        Some(n) => n
            .trim()
            .parse::<f64>()
            .ok()
            .map(|v| (v * 1024.0).round() as u64),
        None => t.parse().ok(),
    }
}

/// The memory values (MiB) Fargate accepts with this CPU, or None for a CPU it does not offer.
fn fargate_memories(cpu: u64) -> Option<Vec<u64>> {
    let gb = |from: u64, to: u64, step: u64| {
        (from..=to)
            .step_by(step as usize)
            .map(|g| g * 1024)
            .collect()
    };
    Some(match cpu {
        256 => vec![512, 1024, 2048],
        512 => gb(1, 4, 1),
        1024 => gb(2, 8, 1),
        2048 => gb(4, 16, 1),
        4096 => gb(8, 30, 1),
        8192 => gb(16, 60, 4),
        16384 => gb(32, 120, 8),
        _ => return None,
    })
}

fn json_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn on_fargate(td: &Value, service: &Value) -> bool {
    let compat = td
        .get("requiresCompatibilities")
        .and_then(Value::as_array)
        .is_some_and(|l| l.iter().any(|c| c == "FARGATE"));
    let launch = text(service, "launchType") == Some("FARGATE");
    let providers = capacity_providers(service)
        .iter()
        .any(|p| p.starts_with("FARGATE"));
    compat || launch || providers
}

fn capacity_providers(service: &Value) -> Vec<String> {
    service
        .get("capacityProviderStrategy")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| text(p, "capacityProvider").map(String::from))
        .collect()
}

pub(crate) fn check_fargate(td: &Value, service: &Value) -> Vec<Finding> {
    let mut out = Vec::new();
    if text(service, "launchType") == Some("EC2")
        && td
            .get("requiresCompatibilities")
            .and_then(Value::as_array)
            .is_some_and(|l| !l.is_empty() && !l.iter().any(|c| c == "EC2"))
    {
        out.push(
            Finding::error(
                "launch-type-incompatible",
                "requiresCompatibilities",
                "FARGATE",
            )
            .says(
                "the service launches on EC2, the task definition requires FARGATE only",
                "add EC2 to requiresCompatibilities, or run the service on Fargate",
            ),
        );
    }
    if !on_fargate(td, service) {
        return out;
    }
    let cpu = json_text(td.get("cpu"));
    let memory = json_text(td.get("memory"));
    let (Some(cpu_text), Some(memory_text)) = (&cpu, &memory) else {
        out.push(
            Finding::error(
                "fargate-size-missing",
                "cpu/memory",
                &format!(
                    "{}/{}",
                    cpu.clone().unwrap_or_default(),
                    memory.clone().unwrap_or_default()
                ),
            )
            .says(
                "a Fargate task definition needs task-level cpu and memory",
                "set cpu and memory to one of the pairs Fargate accepts, e.g. 256/512 or 1024/2048",
            ),
        );
        return out;
    };
    let pair = format!("{cpu_text}/{memory_text}");
    let (task_cpu, task_memory) = (cpu_units(cpu_text), memory_mib(memory_text));
    let valid = match (task_cpu, task_memory) {
        (Some(c), Some(m)) => fargate_memories(c).is_some_and(|ms| ms.contains(&m)),
        _ => false,
    };
    if !valid {
        let hint = task_cpu
            .and_then(fargate_memories)
            .map(|ms| {
                let (lo, hi) = (ms[0], ms[ms.len() - 1]);
                format!("with cpu {cpu_text} Fargate takes memory {lo} to {hi} MiB")
            })
            .unwrap_or_else(|| {
                "Fargate takes cpu 256, 512, 1024, 2048, 4096, 8192 or 16384".into()
            });
        out.push(
            Finding::error("fargate-size-invalid", "cpu/memory", &pair).says(
                "Fargate does not offer this CPU and memory pair",
                format!("pick a supported pair: {hint}"),
            ),
        );
    }
    let sum = |key: &str| -> u64 {
        containers(td)
            .map(|(_, c)| {
                c.get(key)
                    .or_else(|| {
                        (key == "memory")
                            .then(|| c.get("memoryReservation"))
                            .flatten()
                    })
                    .and_then(Value::as_u64)
                    .unwrap_or(0)
            })
            .sum()
    };
    if let Some(limit) = task_cpu
        && sum("cpu") > limit
    {
        out.push(
            Finding::error(
                "container-sizes-exceed-task",
                "containerDefinitions[].cpu",
                &sum("cpu").to_string(),
            )
            .says(
                format!("the containers' cpu adds up to more than the task's {cpu_text}"),
                "lower the containers' cpu or raise the task's",
            ),
        );
    }
    if let Some(limit) = task_memory
        && sum("memory") > limit
    {
        out.push(
            Finding::error(
                "container-sizes-exceed-task",
                "containerDefinitions[].memory",
                &sum("memory").to_string(),
            )
            .says(
                format!("the containers' memory adds up to more than the task's {memory_text} MiB"),
                "lower the containers' memory (or memoryReservation) or raise the task's",
            ),
        );
    }
    let platform = td.get("runtimePlatform");
    let arch = platform
        .and_then(|p| text(p, "cpuArchitecture"))
        .unwrap_or("X86_64");
    let os = platform
        .and_then(|p| text(p, "operatingSystemFamily"))
        .unwrap_or("LINUX");
    if capacity_providers(service)
        .iter()
        .any(|p| p == "FARGATE_SPOT")
        && (arch == "ARM64" || os.starts_with("WINDOWS"))
    {
        out.push(
            Finding::error(
                "platform-capacity-mismatch",
                "runtimePlatform",
                &format!("{os}/{arch}"),
            )
            .says(
                "FARGATE_SPOT runs only Linux on X86_64",
                "use the FARGATE capacity provider for this platform, or an X86_64 Linux image",
            ),
        );
    }
    out
}

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

pub(crate) fn errors(findings: &[Finding]) -> usize {
    findings.iter().filter(|f| f.level == Level::Error).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn td() -> Value {
        json!({"family": "web", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
            "cpu": "256", "memory": "512",
            "executionRoleArn": "arn:aws:iam::1:role/exec",
            "containerDefinitions": [{"name": "web", "image": "app:v1", "memory": 256,
                "portMappings": [{"containerPort": 8080}],
                "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/web"}}}]})
    }

    fn service() -> Value {
        json!({"desiredCount": 2, "launchType": "FARGATE",
            "loadBalancers": [{"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web-tg/abc", "containerName": "web", "containerPort": 8080}],
            "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": true, "rollback": true}}})
    }

    fn codes(findings: &[Finding]) -> Vec<&'static str> {
        findings.iter().map(|f| f.code).collect()
    }

    fn tg(target_type: &str) -> Seen<Vec<TargetGroup>> {
        Seen::Found(vec![TargetGroup {
            arn: "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web-tg/abc".into(),
            target_type: target_type.into(),
            protocol: Some("HTTP".into()),
        }])
    }

    #[test]
    fn ecr_images_and_secret_references_are_parsed() {
        let cases = [
            (
                "1.dkr.ecr.eu-west-1.amazonaws.com/web:v2",
                Some(("1", "eu-west-1", "web", "v2", false)),
            ),
            (
                "1.dkr.ecr.eu-west-1.amazonaws.com/team/web",
                Some(("1", "eu-west-1", "team/web", "latest", false)),
            ),
            (
                "1.dkr.ecr.us-east-1.amazonaws.com/web@sha256:ab",
                Some(("1", "us-east-1", "web", "sha256:ab", true)),
            ),
            (
                "1.dkr.ecr.cn-north-1.amazonaws.com.cn/web:v1",
                Some(("1", "cn-north-1", "web", "v1", false)),
            ),
            ("registry.lab/app:v1", None),
            ("nginx", None),
            ("127.0.0.1:5077/web:v1", None),
        ];
        for (image, want) in cases {
            let got = EcrImage::parse(image);
            let got = got.as_ref().map(|e| {
                (
                    e.account.as_str(),
                    e.region.as_str(),
                    e.repository.as_str(),
                    e.reference.as_str(),
                    e.by_digest,
                )
            });
            assert_eq!(got, want, "{image}");
        }
        let secret = |region: &str, id: &str| SecretRef::Secret {
            region: Some(region.into()),
            id: id.into(),
        };
        let parameter = |region: Option<&str>, name: &str| SecretRef::Parameter {
            region: region.map(String::from),
            name: name.into(),
        };
        let arn = "arn:aws:secretsmanager:eu-west-1:1:secret:db-AbCdEf";
        for (from, want) in [
            (arn.to_string(), secret("eu-west-1", arn)),
            (format!("{arn}:password::"), secret("eu-west-1", arn)),
            (
                format!("{arn}:password:AWSCURRENT:"),
                secret("eu-west-1", arn),
            ),
            (
                "arn:aws:ssm:us-east-1:1:parameter/app/db".into(),
                parameter(Some("us-east-1"), "/app/db"),
            ),
            (
                "arn:aws:ssm:us-east-1:1:parameter/token".into(),
                parameter(Some("us-east-1"), "token"),
            ),
            ("/app/db".into(), parameter(None, "/app/db")),
            ("token".into(), parameter(None, "token")),
        ] {
            assert_eq!(SecretRef::parse(&from), want, "{from}");
        }
    }

    #[test]
    fn a_parameter_of_another_account_is_not_looked_up() {
        let other = "arn:aws:ssm:us-east-1:222222222222:parameter/shared/db";
        let own = "arn:aws:ssm:us-east-1:111111111111:parameter/db";
        let home = Some("111111111111");
        assert!(other_account_parameter(other, home).is_some_and(|w| w.contains("222222222222")));
        assert_eq!(other_account_parameter(own, home), None);
        assert_eq!(other_account_parameter("/db", home), None);
        assert_eq!(other_account_parameter(other, None), None);
        let secret = "arn:aws:secretsmanager:us-east-1:222222222222:secret:db-AbCdEf";
        assert_eq!(other_account_parameter(secret, home), None);
    }

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

    #[test]
    fn each_check_names_its_finding() {
        let found = |seen: Seen<()>| vec![("web".to_string(), "x".to_string(), seen)];
        let cases: Vec<(Vec<Finding>, Vec<&str>)> = vec![
            (check_images(&found(Seen::Found(()))), vec![]),
            (check_images(&found(Seen::Missing)), vec!["image-not-found"]),
            (
                check_images(&found(Seen::Denied("ecr:DescribeImages"))),
                vec!["check-denied"],
            ),
            (
                check_images(&found(Seen::Failed("timeout".into()))),
                vec!["check-failed"],
            ),
            (
                check_logs(&found(Seen::Missing)),
                vec!["log-group-not-found"],
            ),
            (check_logs(&found(Seen::Found(()))), vec![]),
            (
                check_secrets(&[(
                    "web".into(),
                    "secrets[0].valueFrom".into(),
                    "db".into(),
                    Seen::Missing,
                )]),
                vec!["secret-not-found"],
            ),
            (check_roles(&td(), &service(), &[]), vec![]),
            (
                check_roles(
                    &td(),
                    &service(),
                    &[("executionRoleArn".into(), "arn".into(), Seen::Missing)],
                ),
                vec!["role-not-found"],
            ),
            (
                check_roles(
                    &td(),
                    &service(),
                    &[("taskRoleArn".into(), "arn".into(), Seen::Found("{}".into()))],
                ),
                vec!["role-not-trusted"],
            ),
            (
                check_roles(
                    &td(),
                    &service(),
                    &[(
                        "taskRoleArn".into(),
                        "arn".into(),
                        Seen::Denied("iam:GetRole"),
                    )],
                ),
                vec!["check-denied"],
            ),
            (check_load_balancers(&td(), &service(), &tg("ip")), vec![]),
            (
                check_load_balancers(&td(), &service(), &tg("instance")),
                vec!["target-type-mismatch"],
            ),
            (
                check_load_balancers(
                    &td(),
                    &service(),
                    &Seen::Denied("elasticloadbalancing:DescribeTargetGroups"),
                ),
                vec!["check-denied"],
            ),
            (
                check_load_balancers(&td(), &json!({}), &tg("instance")),
                vec![],
            ),
            (check_fargate(&td(), &service()), vec![]),
            (
                check_availability(
                    &service(),
                    &Seen::Found(vec!["a".into(), "b".into()]),
                    false,
                ),
                vec![],
            ),
            (
                check_availability(
                    &json!({"desiredCount": 1}),
                    &Seen::Found(vec!["a".into(), "a".into()]),
                    false,
                ),
                vec!["desired-count-low", "single-zone", "no-rollback"],
            ),
            (
                check_availability(&json!({"desiredCount": 3}), &Seen::Found(vec![]), true),
                vec![],
            ),
        ];
        for (i, (got, want)) in cases.iter().enumerate() {
            assert_eq!(codes(got), *want, "case {i}: {got:?}");
        }
        let denied = check_images(&found(Seen::Denied("ecr:DescribeImages")));
        assert_eq!(denied[0].level, Level::Warning);
        assert!(
            denied[0].line().contains("ecr:DescribeImages"),
            "{}",
            denied[0].line()
        );
    }

    #[test]
    fn task_definition_changes_each_check_catches() {
        type Change = Box<dyn Fn(&mut Value)>;
        let mut cases: Vec<(&str, Change, &str)> = vec![
            (
                "no execution role with awslogs on Fargate",
                Box::new(|td| {
                    td.as_object_mut().unwrap().remove("executionRoleArn");
                }),
                "execution-role-missing",
            ),
            (
                "container renamed",
                Box::new(|td| td["containerDefinitions"][0]["name"] = json!("app")),
                "lb-container-missing",
            ),
            (
                "port moved",
                Box::new(|td| {
                    td["containerDefinitions"][0]["portMappings"] = json!([{"containerPort": 9090}])
                }),
                "lb-port-missing",
            ),
            (
                "udp port",
                Box::new(|td| {
                    td["containerDefinitions"][0]["portMappings"] =
                        json!([{"containerPort": 8080, "protocol": "udp"}])
                }),
                "lb-protocol-mismatch",
            ),
            (
                "pair Fargate does not offer",
                Box::new(|td| td["memory"] = json!("4096")),
                "fargate-size-invalid",
            ),
            (
                "no task size",
                Box::new(|td| {
                    td.as_object_mut().unwrap().remove("cpu");
                }),
                "fargate-size-missing",
            ),
            (
                "containers larger than the task",
                Box::new(|td| td["containerDefinitions"][0]["memory"] = json!(1024)),
                "container-sizes-exceed-task",
            ),
        ];
        cases.push((
            "vCPU and GB forms are fine",
            Box::new(|td| {
                td["cpu"] = json!("1 vCPU");
                td["memory"] = json!("2 GB");
            }),
            "",
        ));
        cases.push((
            "a valid larger pair",
            Box::new(|td| {
                td["cpu"] = json!("4096");
                td["memory"] = json!("30720");
            }),
            "",
        ));
        for (name, change, code) in cases {
            let mut doc = td();
            change(&mut doc);
            let facts = Facts {
                td: doc,
                service: service(),
                images: vec![],
                roles: vec![],
                secrets: vec![],
                log_groups: vec![],
                target_groups: tg("ip"),
                zones: Seen::Found(vec!["a".into(), "b".into()]),
                rollback: true,
            };
            let got = codes(&check(&facts));
            let want: Vec<&str> = if code.is_empty() { vec![] } else { vec![code] };
            assert_eq!(got, want, "{name}");
        }
        let spot = json!({"capacityProviderStrategy": [{"capacityProvider": "FARGATE_SPOT"}], "desiredCount": 2});
        let mut arm = td();
        arm["runtimePlatform"] = json!({"cpuArchitecture": "ARM64"});
        assert_eq!(
            codes(&check_fargate(&arm, &spot)),
            vec!["platform-capacity-mismatch"]
        );
        let ec2 = json!({"launchType": "EC2"});
        assert_eq!(
            codes(&check_fargate(&td(), &ec2)),
            vec!["launch-type-incompatible"]
        );
    }
}
