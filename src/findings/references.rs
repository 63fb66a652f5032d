//! What the checks read from the task definition: its containers, the ECR images, secret
//! references, awslogs log groups and roles it names. Pure parsing; nothing is looked up here.

use serde_json::Value;

/// A container of the task definition, as JSON.
pub(super) fn containers(td: &Value) -> impl Iterator<Item = (&str, &Value)> {
    td.get("containerDefinitions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| (c.get("name").and_then(Value::as_str).unwrap_or_default(), c))
}

pub(super) fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
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

pub(super) fn uses_awslogs(td: &Value) -> bool {
    containers(td).any(|(_, c)| {
        c.get("logConfiguration").and_then(|l| text(l, "logDriver")) == Some("awslogs")
    })
}

/// The role name of an IAM role ARN (`arn:aws:iam::1:role/path/name` → `name`).
pub(crate) fn role_name(arn: &str) -> String {
    arn.rsplit('/').next().unwrap_or(arn).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
