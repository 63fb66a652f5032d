//! Several services in one run (`[services.NAME]` in deployer.toml): each service's settings, the
//! top-level keys as defaults, `depends-on` checked for unknown names and cycles.

use super::*;

/// Several services in one `deployer run` (`[services.NAME]` in deployer.toml).
#[derive(Debug, Clone)]
pub(crate) struct SystemConfig {
    pub(crate) name: String,
    /// In the file's order (sorted by name); `order` says when each may start.
    pub(crate) services: Vec<SystemService>,
    pub(crate) rollback_scope: RollbackScope,
}

#[derive(Debug, Clone)]
pub(crate) struct SystemService {
    pub(crate) name: String,
    pub(crate) depends_on: Vec<String>,
    pub(crate) run: RunConfig,
}

/// Flags that name one service's parts; with `[services]` each service says its own in the file.
const PER_SERVICE_FLAGS: [(&str, &str); 11] = [
    ("cluster", "cluster"),
    ("service", "service"),
    ("images", "image"),
    ("envs", "env"),
    ("task_definition", "task-definition"),
    ("service_definition", "service-definition"),
    ("context", "context"),
    ("dockerfile", "dockerfile"),
    ("repository", "repository"),
    ("container", "container"),
    ("run_task_command", "run-task-command"),
];

impl File {
    /// True when the file describes several services: `deployer run` then runs them all.
    pub(crate) fn is_system(&self) -> bool {
        self.values.services.is_some()
    }
}

pub(crate) fn system(args: &RunArgs, matches: &ArgMatches, file: &File) -> Result<SystemConfig> {
    let sections = file.values.services.clone().unwrap_or_default();
    check_top_level(matches, file, &sections)?;
    let mut services = Vec::new();
    for (name, section) in &sections {
        services.push(service(args, matches, file, &sections, name, section)?);
    }
    check_distinct(file, &services)?;
    let deps: Vec<(&str, &[String])> = services
        .iter()
        .map(|s| (s.name.as_str(), s.depends_on.as_slice()))
        .collect();
    crate::order::order(&deps).map_err(|cycle| {
        anyhow::anyhow!("`depends-on` in {} goes in a circle: {cycle}", file.name())
    })?;
    let rollback_scope = rollback_scope(args, matches, file)?;
    Ok(SystemConfig {
        name: file.values.name.clone().unwrap_or_else(|| {
            services
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join("+")
        }),
        services,
        rollback_scope,
    })
}

/// What may not be given for the whole run: no service, a per-service flag, `--github-deployment`,
/// or a top-level service, image, build or containers.
fn check_top_level(
    matches: &ArgMatches,
    file: &File,
    sections: &BTreeMap<String, FileConfig>,
) -> Result<()> {
    if sections.is_empty() {
        bail!("`[services]` in {} names no service", file.name());
    }
    if let Some((_, flag)) = PER_SERVICE_FLAGS.iter().find(|(id, _)| given(matches, id)) {
        bail!(
            "--{flag} (or DEPLOYER_{}) cannot be used with `[services]` in {}: set `{flag}` under the service's own `[services.NAME]` table",
            flag.to_uppercase().replace('-', "_"),
            file.name()
        );
    }
    let top = &file.values;
    if given(matches, "github_deployment")
        || top.github_deployment == Some(true)
        || sections.values().any(|s| s.github_deployment == Some(true))
    {
        bail!(
            "--github-deployment records one service's GitHub deployment; it cannot be used with `[services]` in {} (the PR comment and the commit status cover the whole run)",
            file.name()
        );
    }
    super::select::check_top_keys(file)
}

/// One `[services.NAME]` table, the top-level keys as its defaults, resolved as `deployer run` would.
fn service(
    args: &RunArgs,
    matches: &ArgMatches,
    file: &File,
    sections: &BTreeMap<String, FileConfig>,
    name: &str,
    section: &FileConfig,
) -> Result<SystemService> {
    let field = |f: &str| format!("`services.{name}.{f}` in {}", file.name());
    if section.services.is_some() || section.name.is_some() || section.rollback_scope.is_some() {
        bail!(
            "{}: `services`, `name` and `rollback-scope` belong at the top of the file",
            field("*")
        );
    }
    let merged = File {
        path: file.path.clone(),
        values: super::select::merge(&file.values, name, section),
        table: Some(name.to_string()),
    };
    let run = run(args, matches, &merged)
        .with_context(|| format!("in `[services.{name}]` of {}", file.name()))?;
    let depends_on = section.depends_on.clone().unwrap_or_default();
    for dep in &depends_on {
        if !sections.contains_key(dep) {
            bail!(
                "{} names `{dep}`, which is not a service in this file (services: {})",
                field("depends-on"),
                sections.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        }
    }
    Ok(SystemService {
        name: name.to_string(),
        depends_on,
        run,
    })
}

/// No two entries deploy the same ECS service.
fn check_distinct(file: &File, services: &[SystemService]) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for s in services {
        let key = (
            s.run.deploy.target.cluster.clone(),
            s.run.deploy.target.service.clone(),
        );
        if !seen.insert(key) {
            bail!(
                "two entries of `[services]` in {} deploy the same ECS service `{}` in cluster `{}`",
                file.name(),
                s.run.deploy.target.service,
                s.run.deploy.target.cluster
            );
        }
    }
    Ok(())
}

/// `--rollback-scope`, else the file's `rollback-scope` (default: the whole run).
fn rollback_scope(args: &RunArgs, matches: &ArgMatches, file: &File) -> Result<RollbackScope> {
    if given(matches, "rollback_scope") {
        return Ok(args.rollback_scope.unwrap_or_default());
    }
    match file.values.rollback_scope.as_deref() {
        None | Some("run") => Ok(RollbackScope::Run),
        Some("service") => Ok(RollbackScope::Service),
        Some(other) => bail!(
            "invalid `rollback-scope = \"{other}\"` in {}: expected \"run\" or \"service\"",
            file.name()
        ),
    }
}
