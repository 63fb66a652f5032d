//! One validated Config per command, resolved from flags, then `DEPLOYER_*` variables, then deployer.toml.
//!
//! This module does no network I/O and builds no SDK clients: a bad value is refused here, before AWS
//! is touched, with a message naming the flag, variable or file field.

mod build;
mod deploy;
mod parse;
mod select;
mod system;

pub(crate) use build::{BuildConfig, RunConfig, run};
pub(crate) use deploy::{DeployConfig, RollbackConfig, deploy, init_target, rollback, target};
pub(crate) use parse::{
    check_container_name, parse_command, parse_duration, parse_env_change, parse_image_change,
};
pub(crate) use system::{SystemConfig, SystemService, system};

use crate::cli::{
    Cli, DeployArgs, OutputFormat, RollbackArgs, RollbackScope, RunArgs, ServiceArgs,
};
use crate::target::{EnvChange, ImageChange, RunTask, Target};
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
    until: Option<String>,
    smoke_test: Option<String>,
    codedeploy_application: Option<String>,
    codedeploy_deployment_group: Option<String>,
    no_verify: Option<bool>,
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
    /// The `[services.NAME]` table `values` were merged from (over the top level), if any.
    table: Option<String>,
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
            table: None,
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

/// True when this argument's value came from its `DEPLOYER_*` variable (one text, split by the caller).
fn from_environment(matches: &ArgMatches, id: &str) -> bool {
    matches!(matches.value_source(id), Some(ValueSource::EnvVariable))
}

/// True when the user set this argument on the command line or through its `DEPLOYER_*` variable.
fn given(matches: &ArgMatches, id: &str) -> bool {
    matches!(
        matches.value_source(id),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    )
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
            until,
            create_missing,
            no_verify
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
