//! GitHub Action inputs (`INPUT_<NAME>`, upper-cased with hyphens kept) turned into command-line
//! flags, so an input is exactly a flag: same validation, same precedence (above DEPLOYER_* and
//! deployer.toml). `INPUTS` is the one table action.yml and the README are checked against.

/// How an input becomes flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `--flag VALUE`
    Value,
    /// `--flag VALUE` once per line or comma-separated item (images, tags: no commas inside)
    List,
    /// `--flag VALUE` once per line (`build-args`: a value may hold commas)
    Lines,
    /// `--flag VALUE` once per `env_items` item (`env`: a value may hold commas)
    EnvList,
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
        Kind::Lines,
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
        Kind::EnvList,
        "Environment variables, CONTAINER:KEY=VALUE per line",
    ),
    (
        "wait-for-minutes",
        "--timeout",
        Kind::Minutes,
        "Minutes to wait for a healthy rollout before rolling back; unset: DEPLOYER_TIMEOUT, deployer.toml, else 15",
    ),
    (
        "max-failed-tasks",
        "--max-failed-tasks",
        Kind::Value,
        "Roll back once this many new tasks stopped; unset: DEPLOYER_MAX_FAILED_TASKS, deployer.toml, else 2",
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
            Kind::Lines => {
                for item in lines(&value) {
                    args.extend([flag.to_string(), item]);
                }
            }
            Kind::EnvList => {
                for item in env_items(&value) {
                    args.extend([flag.to_string(), item]);
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

/// A list given one item per line (`DEPLOYER_BUILD_ARG`, the `build-args` input): only a newline
/// separates, so a value keeps its commas. Blank lines are skipped.
pub(crate) fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(String::from)
        .collect()
}

/// `DEPLOYER_ENV` and the `env` input: items separated by newlines, or by a comma followed by the
/// start of a new `CONTAINER:KEY=` item. Any other comma belongs to the value, so
/// `web:OPTS=a=1,b=2` is one item, `web:A=1,web:B=2` two. A bare `KEY=VALUE` item (single-container
/// task definitions) is separated by newlines only.
pub(crate) fn env_items(text: &str) -> Vec<String> {
    let mut items = Vec::new();
    for line in text.lines() {
        let mut start = 0;
        for (at, _) in line.match_indices(',') {
            if starts_qualified_item(&line[at + 1..]) {
                items.push(line[start..at].to_string());
                start = at + 1;
            }
        }
        items.push(line[start..].to_string());
    }
    items
        .into_iter()
        .map(|item| item.trim().to_string())
        .filter(|item| !item.is_empty())
        .collect()
}

/// True when `text` starts `CONTAINER:KEY=` (a container name, a colon, a variable name, `=`).
fn starts_qualified_item(text: &str) -> bool {
    let text = text.trim_start();
    let Some((container, rest)) = text.split_once(':') else {
        return false;
    };
    let Some((key, _)) = rest.split_once('=') else {
        return false;
    };
    let name = |s: &str, extra: &[char]| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || extra.contains(&c))
    };
    name(container, &['-']) && name(key, &['.', '-'])
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
        for (name, _, kind, description) in INPUTS {
            assert_eq!(
                action["inputs"][name]["description"].as_str(),
                Some(*description),
                "input {name}"
            );
            // R16: a default would become a flag on every run and override DEPLOYER_* and
            // deployer.toml; only switches may default, to the value that sends no flag.
            let default = action["inputs"][name]["default"].as_str();
            match kind {
                Kind::Switch => assert!(matches!(default, None | Some("false")), "input {name}"),
                Kind::NegatedSwitch => {
                    assert!(matches!(default, None | Some("true")), "input {name}")
                }
                Kind::Environment => {}
                _ => assert_eq!(default, None, "input {name} must have no default"),
            }
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

    /// R15: a comma inside a value never splits it; the README's forms still do.
    #[test]
    fn env_and_build_arg_lists_keep_commas_in_values() {
        let cases: &[(&str, &[&str])] = &[
            ("web:OPTS=a=1,b=2", &["web:OPTS=a=1,b=2"]),
            ("web:A=1,web:B=2", &["web:A=1", "web:B=2"]),
            ("web:A=1, worker:B=2", &["web:A=1", "worker:B=2"]),
            (
                "web:URL=postgres://h/db?x=1,y=2\nweb:B=2",
                &["web:URL=postgres://h/db?x=1,y=2", "web:B=2"],
            ),
            ("A=1\nB=x,y", &["A=1", "B=x,y"]),
            ("A=1,B=2", &["A=1,B=2"]),
            ("web:JAVA=-Dfoo=1,-Dbar=2", &["web:JAVA=-Dfoo=1,-Dbar=2"]),
            ("web:A=1,\n\n", &["web:A=1,"]),
            ("", &[]),
        ];
        for (text, expected) in cases {
            assert_eq!(env_items(text), *expected, "{text:?}");
        }
        assert_eq!(lines("X=a,b\n Y=c \n\n"), ["X=a,b", "Y=c"]);
        let args = flags_for(&[
            ("INPUT_ENV", "web:URL=postgres://h/db?x=1,y=2\nweb:B=2"),
            ("INPUT_BUILD-ARGS", "FEATURES=a,b\nMODE=x"),
        ])
        .unwrap();
        assert_eq!(
            args,
            [
                "--build-arg",
                "FEATURES=a,b",
                "--build-arg",
                "MODE=x",
                "--env",
                "web:URL=postgres://h/db?x=1,y=2",
                "--env",
                "web:B=2"
            ]
        );
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
