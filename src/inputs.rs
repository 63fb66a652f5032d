//! GitHub Action inputs (`INPUT_<NAME>`, upper-cased with hyphens kept) turned into command-line
//! flags, so an input is exactly a flag: same validation, same precedence (above DEPLOYER_* and
//! deployer.toml). `INPUTS` is the one table action.yml and the README are checked against.

/// How an input becomes flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `--flag VALUE`
    Value,
    /// `--flag VALUE` once per line or comma-separated item
    List,
    /// `--flag` when the input is true
    Switch,
    /// `--flag` when the input is false (e.g. `rollback: false` → `--no-rollback`)
    NegatedSwitch,
    /// minutes → `--flag <N>m`
    Minutes,
    /// read elsewhere (e.g. the GitHub token), never a flag
    Environment,
}

/// (input, flag, kind, description). Names follow aws-actions/amazon-ecs-deploy-task-definition
/// where they mean the same.
pub(crate) const INPUTS: &[(&str, &str, Kind, &str)] = &[
    (
        "cluster",
        "--cluster",
        Kind::Value,
        "ECS cluster name or ARN",
    ),
    (
        "service",
        "--service",
        Kind::Value,
        "ECS service name or ARN",
    ),
    (
        "task-definition",
        "--task-definition",
        Kind::Value,
        "Task definition file (JSON or YAML); default: the service's live one",
    ),
    (
        "image",
        "--image",
        Kind::List,
        "Prebuilt image as [CONTAINER=]REF (skips build and push)",
    ),
    (
        "container",
        "--container",
        Kind::Value,
        "Container that gets the built image",
    ),
    (
        "context",
        "--context",
        Kind::Value,
        "Docker build context directory",
    ),
    (
        "dockerfile",
        "--dockerfile",
        Kind::Value,
        "Dockerfile path in the context",
    ),
    (
        "repository",
        "--repository",
        Kind::Value,
        "ECR repository to push to",
    ),
    (
        "tags",
        "--tag",
        Kind::List,
        "Image tag templates: {sha}, {branch}, {run_number}",
    ),
    (
        "build-args",
        "--build-arg",
        Kind::List,
        "Build arguments, KEY=VALUE per line",
    ),
    (
        "create-repository",
        "--create-repository",
        Kind::Switch,
        "Create the ECR repository when missing",
    ),
    (
        "max-severity",
        "--max-severity",
        Kind::Value,
        "Refuse images with scan findings at or above this severity",
    ),
    (
        "env",
        "--env",
        Kind::List,
        "Environment variables, CONTAINER:KEY=VALUE per line",
    ),
    (
        "wait-for-minutes",
        "--timeout",
        Kind::Minutes,
        "Minutes to wait for a healthy rollout before rolling back",
    ),
    (
        "max-failed-tasks",
        "--max-failed-tasks",
        Kind::Value,
        "Roll back once this many new tasks stopped",
    ),
    (
        "rollback",
        "--no-rollback",
        Kind::NegatedSwitch,
        "Roll back on failure (true/false)",
    ),
    (
        "force-new-deployment",
        "--force-new-deployment",
        Kind::Switch,
        "Deploy even when nothing changed",
    ),
    (
        "wait-for-idle",
        "--wait-for-idle",
        Kind::Switch,
        "Wait for another deployment in progress instead of refusing",
    ),
    (
        "github-deployment",
        "--github-deployment",
        Kind::Switch,
        "Record a GitHub deployment with statuses",
    ),
    (
        "run-task",
        "--run-task",
        Kind::Value,
        "Before the update, run the new task definition once: true, or the name of the container to run",
    ),
    (
        "run-task-command",
        "--run-task-command",
        Kind::Value,
        "Command for the run-task container, e.g. ./manage migrate",
    ),
    (
        "keep-revisions",
        "--keep-revisions",
        Kind::Value,
        "After a healthy deploy, keep this many newest revisions of the family",
    ),
    (
        "until",
        "--until",
        Kind::Value,
        "BLUE_GREEN, LINEAR, CANARY: done once the deployment reaches this stage with the new tasks healthy, e.g. BAKE_TIME",
    ),
    (
        "smoke-test",
        "--smoke-test",
        Kind::Value,
        "BLUE_GREEN, LINEAR, CANARY with a PAUSE hook at POST_TEST_TRAFFIC_SHIFT: a shell command run against DEPLOYER_TEST_URL; non-zero rolls back",
    ),
    (
        "create-missing",
        "--create-missing",
        Kind::Switch,
        "Create the ECR repository, cluster and service when missing",
    ),
    (
        "service-definition",
        "--service-definition",
        Kind::Value,
        "create-service JSON for the service --create-missing creates",
    ),
    (
        "rollback-scope",
        "--rollback-scope",
        Kind::Value,
        "Several services: roll back the whole run (run) or the failed service (service)",
    ),
    (
        "github-token",
        "",
        Kind::Environment,
        "Token for the PR comment, commit status and deployment",
    ),
];

/// The flags the INPUT_* variables of a GitHub Action step stand for.
pub(crate) fn flags(lookup: impl Fn(&str) -> Option<String>) -> Result<Vec<String>, String> {
    let mut args = Vec::new();
    for (input, flag, kind, _) in INPUTS {
        let name = format!("INPUT_{}", input.to_uppercase());
        let Some(value) = lookup(&name)
            .or_else(|| lookup(&name.replace('-', "_")))
            .map(|v| v.trim().to_string())
        else {
            continue;
        };
        if value.is_empty() {
            continue;
        }
        let truth = || match value.as_str() {
            "true" | "True" | "TRUE" => Ok(true),
            "false" | "False" | "FALSE" => Ok(false),
            other => Err(format!(
                "invalid input `{input}`: `{other}` is not true or false"
            )),
        };
        match kind {
            Kind::Value => args.extend([flag.to_string(), value]),
            Kind::List => {
                for item in value
                    .split(['\n', ','])
                    .map(str::trim)
                    .filter(|i| !i.is_empty())
                {
                    args.extend([flag.to_string(), item.to_string()]);
                }
            }
            Kind::Switch => {
                if truth()? {
                    args.push(flag.to_string());
                }
            }
            Kind::NegatedSwitch => {
                if !truth()? {
                    args.push(flag.to_string());
                }
            }
            Kind::Minutes => {
                let minutes: u32 = value.parse().map_err(|_| {
                    format!("invalid input `{input}`: `{value}` is not a whole number of minutes")
                })?;
                args.extend([flag.to_string(), format!("{minutes}m")]);
            }
            Kind::Environment => {}
        }
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn flags_for(pairs: &[(&str, &str)]) -> Result<Vec<String>, String> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        flags(|name| env.get(name).cloned())
    }

    #[test]
    fn inputs_become_flags() {
        let args = flags_for(&[
            ("INPUT_CLUSTER", "prod"),
            ("INPUT_TASK-DEFINITION", "td.json"),
            ("INPUT_TAGS", "{sha}\n{branch}-{sha}\n"),
            ("INPUT_WAIT-FOR-MINUTES", "10"),
            ("INPUT_ROLLBACK", "false"),
            ("INPUT_FORCE-NEW-DEPLOYMENT", "false"),
            ("INPUT_GITHUB-DEPLOYMENT", "true"),
            ("INPUT_GITHUB-TOKEN", "secret"),
            ("INPUT_SERVICE", ""),
        ])
        .unwrap();
        assert_eq!(
            args.join(" "),
            "--cluster prod --task-definition td.json --tag {sha} --tag {branch}-{sha} --timeout 10m --no-rollback --github-deployment"
        );
    }

    /// action.yml declares exactly the inputs this table turns into flags, in the same order.
    #[test]
    fn action_yml_matches_the_table() {
        let action: serde_yaml::Value =
            serde_yaml::from_str(include_str!("../action.yml")).unwrap();
        let declared: Vec<String> = action["inputs"]
            .as_mapping()
            .unwrap()
            .keys()
            .map(|k| k.as_str().unwrap().to_string())
            .collect();
        let table: Vec<String> = INPUTS.iter().map(|(name, ..)| name.to_string()).collect();
        assert_eq!(declared, table);
        for (name, _, _, description) in INPUTS {
            assert_eq!(
                action["inputs"][name]["description"].as_str(),
                Some(*description),
                "input {name}"
            );
        }
        let outputs: Vec<String> = action["outputs"]
            .as_mapping()
            .unwrap()
            .keys()
            .map(|k| k.as_str().unwrap().to_string())
            .collect();
        let report = crate::report::Report::default();
        let produced: Vec<String> = report
            .outputs()
            .iter()
            .map(|(name, _)| name.to_string())
            .collect();
        assert_eq!(
            outputs.iter().collect::<std::collections::BTreeSet<_>>(),
            produced.iter().collect()
        );
    }

    /// The README's input table is this table, row for row.
    #[test]
    fn readme_lists_every_input() {
        let readme = include_str!("../README.md");
        for (name, flag, kind, description) in INPUTS {
            let flag = if *kind == Kind::Environment {
                "(environment)".to_string()
            } else {
                format!("`{flag}`")
            };
            let row = format!("| `{name}` | {flag} | {description} |");
            assert!(readme.contains(&row), "README lacks the row {row}");
        }
    }

    #[test]
    fn bad_inputs_are_named() {
        assert!(
            flags_for(&[("INPUT_ROLLBACK", "maybe")])
                .unwrap_err()
                .contains("input `rollback`")
        );
        assert!(
            flags_for(&[("INPUT_WAIT-FOR-MINUTES", "ten")])
                .unwrap_err()
                .contains("input `wait-for-minutes`")
        );
        assert_eq!(
            flags_for(&[("INPUT_MAX_FAILED_TASKS", "3")]).unwrap(),
            ["--max-failed-tasks", "3"]
        );
    }
}
