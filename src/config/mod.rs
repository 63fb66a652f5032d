//! One validated Config per command, resolved from flags, then `DEPLOYER_*` variables, then deployer.toml.
//!
//! This module does no network I/O and builds no SDK clients: a bad value is refused here, before AWS
//! is touched, with a message naming the flag, variable or file field.

use crate::cli::{
    Cli, DeployArgs, OutputFormat, RollbackArgs, RollbackScope, RunArgs, ServiceArgs,
};
use crate::image_ref::ImageRef;
use anyhow::{Context, Result, bail};
use clap::ArgMatches;
use clap::parser::ValueSource;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15 * 60);
pub(crate) const DEFAULT_MAX_FAILED_TASKS: u32 = 2;

/// deployer.toml: the same names as the flags.
#[derive(Deserialize, Default, Debug, Clone)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct FileConfig {
    cluster: Option<String>,
    service: Option<String>,
    image: Option<OneOrMany>,
    env: Option<OneOrMany>,
    task_definition: Option<PathBuf>,
    timeout: Option<String>,
    max_failed_tasks: Option<u32>,
    no_rollback: Option<bool>,
    wait_for_idle: Option<bool>,
    force_new_deployment: Option<bool>,
    github_deployment: Option<bool>,
    output: Option<OutputFormatName>,
    build: Option<BuildSection>,
    /// Containers of this service and what each gets: a prebuilt image or a build.
    containers: Option<BTreeMap<String, ContainerSection>>,
    run_task: Option<RunTaskSetting>,
    run_task_command: Option<CommandSetting>,
    keep_revisions: Option<u32>,
    create_missing: Option<bool>,
    service_definition: Option<PathBuf>,
    depends_on: Option<Vec<String>>,
    rollback_scope: Option<String>,
    /// The system's name in reports (several services only).
    name: Option<String>,
    /// Several services deployed in one run: `[services.NAME]`, each with the keys above.
    services: Option<BTreeMap<String, FileConfig>>,
}

/// `[services.NAME.containers.CONTAINER]`: `image = "REF"` or a `build` table.
#[derive(Deserialize, Default, Debug, Clone)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ContainerSection {
    image: Option<String>,
    build: Option<BuildSection>,
}

/// `run-task = true` (the whole task definition) or `run-task = "CONTAINER"`.
#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
enum RunTaskSetting {
    Whole(bool),
    Container(String),
}

/// `run-task-command = ["./migrate", "up"]` or `"./migrate up"`.
#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
enum CommandSetting {
    Words(Vec<String>),
    Line(String),
}

/// `[build]` in deployer.toml: what `deployer run` builds and where it pushes.
#[derive(Deserialize, Default, Debug, Clone)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct BuildSection {
    context: Option<PathBuf>,
    dockerfile: Option<String>,
    repository: Option<String>,
    container: Option<String>,
    tags: Option<OneOrMany>,
    build_args: Option<std::collections::BTreeMap<String, String>>,
    labels: Option<std::collections::BTreeMap<String, String>>,
    target: Option<String>,
    platform: Option<String>,
    create_repository: Option<bool>,
    max_severity: Option<String>,
    deploy_by_tag: Option<bool>,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        }
    }
}

#[derive(Deserialize, Debug, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum OutputFormatName {
    Text,
    Json,
}

/// The settings file, once found and parsed, with the directory its relative paths start from.
#[derive(Default, Debug)]
pub(crate) struct File {
    pub(crate) path: Option<PathBuf>,
    values: FileConfig,
}

impl File {
    /// `--config FILE`, else the first deployer.toml from the working directory upward, else none.
    pub(crate) fn load(cli: &Cli) -> Result<File> {
        let path = match &cli.config {
            Some(path) => {
                if !path.is_file() {
                    bail!(
                        "config file `{}` (from --config or DEPLOYER_CONFIG) does not exist",
                        path.display()
                    );
                }
                path.clone()
            }
            None => match find_upward(Path::new("deployer.toml")) {
                Some(path) => path,
                None => return Ok(File::default()),
            },
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("failed to read config file `{}`", path.display()))?;
        let values: FileConfig = toml::from_str(&text).map_err(|err| {
            anyhow::anyhow!(
                "invalid config file `{}`: {}",
                path.display(),
                err.to_string().trim_end()
            )
        })?;
        Ok(File {
            path: Some(path),
            values,
        })
    }

    pub(crate) fn output(&self) -> Option<OutputFormat> {
        self.values.output.map(|o| match o {
            OutputFormatName::Text => OutputFormat::Text,
            OutputFormatName::Json => OutputFormat::Json,
        })
    }

    fn relative(&self, path: &Path) -> PathBuf {
        match self.path.as_ref().and_then(|p| p.parent()) {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path.to_path_buf(),
        }
    }

    fn name(&self) -> String {
        self.path
            .as_ref()
            .map_or_else(|| "deployer.toml".into(), |p| p.display().to_string())
    }
}

fn find_upward(name: &Path) -> Option<PathBuf> {
    let mut dir = std::env::current_dir().ok()?;
    loop {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return Some(candidate);
        }
        if !dir.pop() {
            return None;
        }
    }
}

/// True when the user set this argument on the command line or through its `DEPLOYER_*` variable.
fn given(matches: &ArgMatches, id: &str) -> bool {
    matches!(
        matches.value_source(id),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    )
}

/// The service a command acts on.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) cluster: String,
    pub(crate) service: String,
}

/// An image to put into one container (or into the only one, when `container` is None).
#[derive(Debug, Clone)]
pub(crate) struct ImageChange {
    pub(crate) container: Option<String>,
    pub(crate) image: ImageRef,
}

/// An environment variable to set in one container.
#[derive(Debug, Clone)]
pub(crate) struct EnvChange {
    pub(crate) container: Option<String>,
    pub(crate) key: String,
    pub(crate) value: String,
}

#[derive(Debug, Clone)]
pub(crate) struct DeployConfig {
    pub(crate) target: Target,
    pub(crate) images: Vec<ImageChange>,
    pub(crate) envs: Vec<EnvChange>,
    pub(crate) task_definition_file: Option<PathBuf>,
    pub(crate) timeout: Duration,
    pub(crate) max_failed_tasks: u32,
    pub(crate) rollback: bool,
    pub(crate) wait_for_idle: bool,
    pub(crate) force_new_deployment: bool,
    pub(crate) github_deployment: bool,
    pub(crate) run_task: Option<RunTask>,
    pub(crate) keep_revisions: Option<u32>,
    pub(crate) create_missing: bool,
    pub(crate) service_definition: Option<PathBuf>,
}

/// `--run-task`: run the new task definition once before the service moves to it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RunTask {
    /// Only this container (the others are left out of the run's overrides); None: the whole task.
    pub(crate) container: Option<String>,
    pub(crate) command: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
pub(crate) struct RollbackConfig {
    pub(crate) target: Target,
    pub(crate) to: Option<String>,
    pub(crate) timeout: Duration,
    pub(crate) max_failed_tasks: u32,
}

pub(crate) fn target(args: &ServiceArgs, matches: &ArgMatches, file: &File) -> Result<Target> {
    let pick = |id: &str, flag: &Option<String>, from_file: &Option<String>| -> Result<String> {
        let value = if given(matches, id) {
            flag.clone()
        } else {
            from_file.clone()
        };
        match value {
            Some(v) if !v.trim().is_empty() => Ok(v),
            _ if file.is_system() => bail!(
                "missing {id}: {} describes several services (`[services]`), which `deployer run` deploys together; this command acts on one: pass --{id} NAME",
                file.name()
            ),
            _ => bail!(
                "missing {id}: pass --{id} NAME, set DEPLOYER_{}, or add `{id} = \"NAME\"` to deployer.toml",
                id.to_uppercase()
            ),
        }
    };
    Ok(Target {
        cluster: pick("cluster", &args.cluster, &file.values.cluster)?,
        service: pick("service", &args.service, &file.values.service)?,
    })
}

pub(crate) fn deploy(args: &DeployArgs, matches: &ArgMatches, file: &File) -> Result<DeployConfig> {
    let f = &file.values;
    let images = if given(matches, "images") {
        args.images.clone()
    } else {
        f.image.clone().map(OneOrMany::into_vec).unwrap_or_default()
    };
    let envs = if given(matches, "envs") {
        args.envs.clone()
    } else {
        f.env.clone().map(OneOrMany::into_vec).unwrap_or_default()
    };
    let task_definition_file = if given(matches, "task_definition") {
        args.task_definition.clone()
    } else {
        f.task_definition.as_ref().map(|p| file.relative(p))
    };
    let timeout = timeout(matches, &args.timeout, file)?;
    let max_failed_tasks = if given(matches, "max_failed_tasks") {
        args.max_failed_tasks
    } else {
        f.max_failed_tasks
    }
    .unwrap_or(DEFAULT_MAX_FAILED_TASKS);
    if max_failed_tasks == 0 {
        bail!("invalid max-failed-tasks `0`: expected a whole number of at least 1");
    }
    let flag = |id: &str, value: bool, from_file: Option<bool>| {
        if given(matches, id) {
            value
        } else {
            from_file.unwrap_or(false)
        }
    };
    let run_task_command = if given(matches, "run_task_command") {
        args.run_task_command
            .as_deref()
            .map(|c| parse_command(c).context("invalid --run-task-command"))
            .transpose()?
    } else {
        match &f.run_task_command {
            Some(CommandSetting::Words(words)) if !words.is_empty() => Some(words.clone()),
            Some(CommandSetting::Line(line)) => Some(
                parse_command(line)
                    .with_context(|| format!("invalid `run-task-command` in {}", file.name()))?,
            ),
            Some(CommandSetting::Words(_)) => bail!(
                "invalid `run-task-command` in {}: the command is empty",
                file.name()
            ),
            None => None,
        }
    };
    let run_task_container = if given(matches, "run_task") {
        args.run_task.clone().map(|c| c.trim().to_string())
    } else {
        match &f.run_task {
            Some(RunTaskSetting::Whole(true)) => Some(String::new()),
            Some(RunTaskSetting::Whole(false)) | None => None,
            Some(RunTaskSetting::Container(c)) => Some(c.trim().to_string()),
        }
    };
    let run_task = match (run_task_container, run_task_command) {
        (None, Some(_)) => bail!(
            "--run-task-command (or `run-task-command`) needs --run-task CONTAINER: which container runs the command"
        ),
        (None, None) => None,
        (Some(container), command) => {
            let container = (!container.is_empty() && container != "true").then_some(container);
            if let Some(name) = &container {
                check_container_name(name).context("invalid --run-task")?;
            }
            if command.is_some() && container.is_none() {
                bail!(
                    "--run-task-command needs --run-task CONTAINER: which container runs the command"
                );
            }
            Some(RunTask { container, command })
        }
    };
    let keep_revisions = if given(matches, "keep_revisions") {
        args.keep_revisions
    } else {
        f.keep_revisions
    };
    if keep_revisions == Some(0) {
        bail!(
            "invalid keep-revisions `0`: keep at least 1 (the new revision); the rollback target is always kept too"
        );
    }
    let service_definition = if given(matches, "service_definition") {
        args.service_definition.clone()
    } else {
        f.service_definition.as_ref().map(|p| file.relative(p))
    };
    Ok(DeployConfig {
        run_task,
        keep_revisions,
        create_missing: flag("create_missing", args.create_missing, f.create_missing),
        service_definition,
        target: target(&args.target, matches, file)?,
        images: images
            .iter()
            .map(|i| parse_image_change(i))
            .collect::<Result<_>>()?,
        envs: envs
            .iter()
            .map(|e| parse_env_change(e))
            .collect::<Result<_>>()?,
        task_definition_file,
        timeout,
        max_failed_tasks,
        rollback: !flag("no_rollback", args.no_rollback, f.no_rollback),
        wait_for_idle: flag("wait_for_idle", args.wait_for_idle, f.wait_for_idle),
        force_new_deployment: flag(
            "force_new_deployment",
            args.force_new_deployment,
            f.force_new_deployment,
        ),
        github_deployment: flag(
            "github_deployment",
            args.github_deployment,
            f.github_deployment,
        ),
    })
}

pub(crate) fn rollback(
    args: &RollbackArgs,
    matches: &ArgMatches,
    file: &File,
) -> Result<RollbackConfig> {
    let f = &file.values;
    let timeout = timeout(matches, &args.timeout, file)?;
    if let Some(to) = &args.to
        && !(to.starts_with("arn:") && to.contains(":task-definition/"))
    {
        bail!(
            "invalid --to `{to}`: expected a task definition ARN, e.g. arn:aws:ecs:us-east-1:123456789012:task-definition/web:41"
        );
    }
    Ok(RollbackConfig {
        target: target(&args.target, matches, file)?,
        to: args.to.clone(),
        timeout,
        max_failed_tasks: if given(matches, "max_failed_tasks") {
            args.max_failed_tasks
        } else {
            f.max_failed_tasks
        }
        .unwrap_or(DEFAULT_MAX_FAILED_TASKS),
    })
}

/// What `deployer run` builds and pushes, on top of a DeployConfig.
#[derive(Debug, Clone)]
pub(crate) struct BuildConfig {
    pub(crate) context: PathBuf,
    pub(crate) dockerfile: String,
    pub(crate) repository: String,
    pub(crate) container: Option<String>,
    pub(crate) tags: Vec<String>,
    pub(crate) build_args: HashMap<String, String>,
    pub(crate) labels: HashMap<String, String>,
    pub(crate) target: Option<String>,
    pub(crate) platform: Option<String>,
    pub(crate) create_repository: bool,
    /// Index into ecr's severities (LOW=1 … CRITICAL=4).
    pub(crate) max_severity: Option<usize>,
    pub(crate) deploy_by_tag: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct RunConfig {
    pub(crate) deploy: DeployConfig,
    /// What to build and push, one per container; empty when only prebuilt images are deployed.
    pub(crate) builds: Vec<BuildConfig>,
}

pub(crate) fn run(args: &RunArgs, matches: &ArgMatches, file: &File) -> Result<RunConfig> {
    let mut deploy = deploy(&args.deploy, matches, file)?;
    let mut builds = Vec::new();
    for (container, section) in file.values.containers.clone().unwrap_or_default() {
        check_container_name(&container)
            .with_context(|| format!("invalid `[containers.{container}]` in {}", file.name()))?;
        match (section.image, section.build) {
            (Some(image), None) => deploy.images.push(
                parse_image_change(&format!("{container}={image}")).with_context(|| {
                    format!("invalid `containers.{container}.image` in {}", file.name())
                })?,
            ),
            (None, Some(b)) => {
                if b.container.as_ref().is_some_and(|c| c != &container) {
                    bail!(
                        "`containers.{container}.build.container` in {} names another container; leave it out",
                        file.name()
                    );
                }
                let mut build = build_config(args, matches, file, b, false)?;
                build.container = Some(container);
                builds.push(build);
            }
            _ => bail!(
                "`[containers.{container}]` in {} needs exactly one of `image = \"REF\"` or a `build` table",
                file.name()
            ),
        }
    }
    if file.values.containers.is_some() && file.values.build.is_some() {
        bail!(
            "{} has both `[build]` and `[containers.*]`; put each build under its container",
            file.name()
        );
    }
    if builds.is_empty() && deploy.images.is_empty() {
        let section = file.values.build.clone().unwrap_or_default();
        builds.push(build_config(args, matches, file, section, true)?);
    }
    // --create-missing creates the repositories too.
    for build in &mut builds {
        build.create_repository |= deploy.create_missing;
    }
    Ok(RunConfig { deploy, builds })
}

/// One build: flags (when `use_flags`) over the `[build]` table.
fn build_config(
    args: &RunArgs,
    matches: &ArgMatches,
    file: &File,
    b: BuildSection,
    use_flags: bool,
) -> Result<BuildConfig> {
    let given = |id: &str| use_flags && given(matches, id);
    let pick = |id: &str, flag: &Option<String>, from_file: Option<String>| {
        if given(id) { flag.clone() } else { from_file }
    };
    let context = if given("context") {
        args.context.clone()
    } else {
        b.context.as_ref().map(|c| file.relative(c))
    }
    .unwrap_or_else(|| PathBuf::from("."));
    let repository = pick("repository", &args.repository, b.repository.clone()).with_context(|| {
        "missing repository: pass --repository NAME, set DEPLOYER_REPOSITORY, or add `repository = \"NAME\"` under [build] in deployer.toml (or pass --image to deploy a prebuilt image)"
    })?;
    let tags = if given("tags") {
        args.tags.clone()
    } else {
        b.tags.clone().map(OneOrMany::into_vec).unwrap_or_default()
    };
    let tags = if tags.is_empty() {
        vec!["{sha}".to_string()]
    } else {
        tags
    };
    let build_args = if given("build_args") {
        args.build_args
            .iter()
            .map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .with_context(|| format!("invalid --build-arg `{kv}`: expected KEY=VALUE"))
            })
            .collect::<Result<_>>()?
    } else {
        b.build_args
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect()
    };
    let max_severity = pick("max_severity", &args.max_severity, b.max_severity.clone())
        .map(|s| crate::ecr::parse_severity(&s))
        .transpose()?;
    let flag = |id: &str, value: bool, from_file: Option<bool>| {
        if given(id) {
            value
        } else {
            from_file.unwrap_or(false)
        }
    };
    Ok(BuildConfig {
        context,
        dockerfile: pick("dockerfile", &args.dockerfile, b.dockerfile.clone())
            .unwrap_or_else(|| "Dockerfile".into()),
        repository,
        container: pick("container", &args.container, b.container.clone()),
        tags,
        build_args,
        labels: b.labels.clone().unwrap_or_default().into_iter().collect(),
        target: pick("target", &args.target, b.target.clone()),
        platform: pick("platform", &args.platform, b.platform.clone()),
        create_repository: flag(
            "create_repository",
            args.create_repository,
            b.create_repository,
        ),
        max_severity,
        deploy_by_tag: flag("deploy_by_tag", args.deploy_by_tag, b.deploy_by_tag),
    })
}

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
    if top.service.is_some()
        || top.image.is_some()
        || top.build.is_some()
        || top.containers.is_some()
    {
        bail!(
            "{} has `[services]` and also a top-level `service`, `image`, `[build]` or `[containers]`; move them under `[services.NAME]`",
            file.name()
        );
    }
    let mut services = Vec::new();
    for (name, section) in &sections {
        let field = |f: &str| format!("`services.{name}.{f}` in {}", file.name());
        if section.services.is_some() || section.name.is_some() || section.rollback_scope.is_some()
        {
            bail!(
                "{}: `services`, `name` and `rollback-scope` belong at the top of the file",
                field("*")
            );
        }
        let mut values = section.clone();
        values.inherit(top);
        if values.service.is_none() {
            values.service = Some(name.clone());
        }
        let merged = File {
            path: file.path.clone(),
            values,
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
        services.push(SystemService {
            name: name.clone(),
            depends_on,
            run,
        });
    }
    let mut seen = std::collections::HashSet::new();
    for s in &services {
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
    crate::system::order(&services).map_err(|cycle| {
        anyhow::anyhow!("`depends-on` in {} goes in a circle: {cycle}", file.name())
    })?;
    let rollback_scope = if given(matches, "rollback_scope") {
        args.rollback_scope.unwrap_or_default()
    } else {
        match top.rollback_scope.as_deref() {
            None | Some("run") => RollbackScope::Run,
            Some("service") => RollbackScope::Service,
            Some(other) => bail!(
                "invalid `rollback-scope = \"{other}\"` in {}: expected \"run\" or \"service\"",
                file.name()
            ),
        }
    };
    Ok(SystemConfig {
        name: top.name.clone().unwrap_or_else(|| {
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

impl FileConfig {
    /// A service's table over the file's top level: the service's own value wins.
    fn inherit(&mut self, top: &FileConfig) {
        macro_rules! or {
            ($($field:ident),*) => { $( if self.$field.is_none() { self.$field = top.$field.clone(); } )* };
        }
        or!(
            cluster,
            env,
            timeout,
            max_failed_tasks,
            no_rollback,
            wait_for_idle,
            force_new_deployment,
            keep_revisions,
            create_missing
        );
    }
}

/// `--timeout` (or DEPLOYER_TIMEOUT), else `timeout` in the file, else 15 minutes.
fn timeout(matches: &ArgMatches, flag: &Option<String>, file: &File) -> Result<Duration> {
    match (given(matches, "timeout"), flag, &file.values.timeout) {
        (true, Some(t), _) => parse_duration(t).context("invalid --timeout (or DEPLOYER_TIMEOUT)"),
        (_, _, Some(t)) => {
            parse_duration(t).with_context(|| format!("invalid `timeout` in {}", file.name()))
        }
        _ => Ok(DEFAULT_TIMEOUT),
    }
}

/// `--image web=REF` or `--image REF`.
pub(crate) fn parse_image_change(text: &str) -> Result<ImageChange> {
    let (container, reference) = match text.split_once('=') {
        Some((container, reference)) => {
            check_container_name(container).with_context(|| format!("invalid --image `{text}`"))?;
            (Some(container.to_string()), reference)
        }
        None => (None, text),
    };
    let image = ImageRef::parse(reference).with_context(|| format!("invalid --image `{text}`"))?;
    Ok(ImageChange { container, image })
}

/// `--env web:KEY=VALUE` or `--env KEY=VALUE`.
pub(crate) fn parse_env_change(text: &str) -> Result<EnvChange> {
    let Some((left, value)) = text.split_once('=') else {
        bail!("invalid --env `{text}`: expected CONTAINER:KEY=VALUE");
    };
    let (container, key) = match left.split_once(':') {
        Some((container, key)) => {
            check_container_name(container).with_context(|| format!("invalid --env `{text}`"))?;
            (Some(container.to_string()), key)
        }
        None => (None, left),
    };
    if key.is_empty() || key.chars().any(|c| c.is_whitespace()) {
        bail!("invalid --env `{text}`: the variable name must be non-empty and without spaces");
    }
    Ok(EnvChange {
        container,
        key: key.to_string(),
        value: value.to_string(),
    })
}

/// `./manage migrate --noinput` (split on whitespace) or `["sh", "-c", "x && y"]` (JSON).
pub(crate) fn parse_command(text: &str) -> Result<Vec<String>> {
    let text = text.trim();
    let words: Vec<String> = if text.starts_with('[') {
        serde_json::from_str(text)
            .with_context(|| format!("`{text}` is not a JSON array of strings"))?
    } else {
        text.split_whitespace().map(String::from).collect()
    };
    if words.is_empty() || words[0].is_empty() {
        bail!("the command is empty");
    }
    Ok(words)
}

fn check_container_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 255
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!("container name `{name}` must be 1-255 letters, digits, hyphens or underscores");
    }
    Ok(())
}

/// `15m`, `90s`, `1h30m`, `500ms`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration> {
    let expected = "expected a duration such as 15m, 90s, 1h30m or 500ms";
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        bail!("invalid duration `{text}`: {expected}");
    }
    while !rest.is_empty() {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            bail!("invalid duration `{text}`: {expected}");
        }
        let number: u64 = rest[..digits]
            .parse()
            .with_context(|| format!("invalid duration `{text}`: {expected}"))?;
        rest = &rest[digits..];
        let unit_len = rest.chars().take_while(char::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        total += match unit {
            "h" => Duration::from_secs(number * 3600),
            "m" => Duration::from_secs(number * 60),
            "s" => Duration::from_secs(number),
            "ms" => Duration::from_millis(number),
            _ => bail!("invalid duration `{text}`: {expected}"),
        };
    }
    if total.is_zero() {
        bail!("invalid duration `{text}`: must be longer than zero");
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for (text, secs) in [
            ("15m", 900.0),
            ("90s", 90.0),
            ("1h30m", 5400.0),
            ("500ms", 0.5),
            ("2m5s", 125.0),
        ] {
            assert_eq!(parse_duration(text).unwrap().as_secs_f64(), secs, "{text}");
        }
        for bad in ["", "15", "m", "15x", "1.5m", "0s", "-1m", "15 m"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn image_and_env_flags() {
        let c = parse_image_change("web=registry.lab/app:v2").unwrap();
        assert_eq!(c.container.as_deref(), Some("web"));
        assert_eq!(c.image.0, "registry.lab/app:v2");
        assert!(
            parse_image_change("registry.lab/app:v2")
                .unwrap()
                .container
                .is_none()
        );
        assert!(parse_image_change("we b=app").is_err());
        assert!(parse_image_change("web=App:1").is_err());
        let e = parse_env_change("web:GREETING=hi=there").unwrap();
        assert_eq!(
            (e.container.as_deref(), e.key.as_str(), e.value.as_str()),
            (Some("web"), "GREETING", "hi=there")
        );
        assert!(parse_env_change("web:GREETING").is_err());
        assert!(parse_env_change("web:=x").is_err());
    }
}
