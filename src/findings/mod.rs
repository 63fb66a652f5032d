//! `deployer verify`'s checks: pure functions from what was read (the new task definition, the
//! service, and what IAM, ECR, Secrets Manager, SSM, CloudWatch Logs, ELB and EC2 said) to findings.
//!
//! Each finding has a stable `code`, names the container, field and value, and says what to do. An
//! error refuses a deploy; a warning is printed and reported. A read IAM denied is a warning naming
//! the permission, never an error. Secret values are never read: a secret is looked up by name.

mod availability;
mod fargate;
mod load_balancers;
mod references;
mod resources;

use serde_json::{Value, json};

pub(crate) use availability::subnets;
pub(crate) use load_balancers::load_balancers;
pub(crate) use references::{
    EcrImage, SecretRef, arn_account, images, log_groups, other_account_parameter, role_name,
    secrets,
};

use availability::check_availability;
use fargate::check_fargate;
use load_balancers::check_load_balancers;
use resources::{check_images, check_logs, check_roles, check_secrets};

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

    /// `service()` with a blue/green alternate target group ELB does not know.
    fn blue_green() -> Value {
        let mut service = service();
        service["loadBalancers"][0]["advancedConfiguration"] = json!({
            "alternateTargetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web-green/def"
        });
        service
    }

    #[test]
    fn an_unknown_target_group_is_named_once() {
        let mut service = blue_green();
        let again = service["loadBalancers"][0].clone();
        service["loadBalancers"].as_array_mut().unwrap().push(again);
        let found = check_load_balancers(&td(), &service, &tg("ip"));
        assert_eq!(codes(&found), vec!["target-group-not-found"]);
        assert_eq!(
            found[0].value,
            "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web-green/def"
        );
        assert!(
            found[0].problem.contains("web-green"),
            "{}",
            found[0].problem
        );
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
            // ELB does not know the service's target group: left out of what it found.
            (
                check_load_balancers(&td(), &service(), &Seen::Found(vec![])),
                vec!["target-group-not-found"],
            ),
            (
                check_load_balancers(&td(), &service(), &Seen::Missing),
                vec!["target-group-not-found"],
            ),
            (
                check_load_balancers(&td(), &service(), &Seen::Failed("timed out".into())),
                vec!["check-failed"],
            ),
            // A blue/green service's alternate is checked too.
            (
                check_load_balancers(&td(), &blue_green(), &tg("ip")),
                vec!["target-group-not-found"],
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
