//! The command line as the user typed it: clap definitions, nothing resolved yet.
//!
//! Every flag also reads `DEPLOYER_<FLAG>`; `config::Config` adds deployer.toml under both.

use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "deployer",
    version,
    about = "Roll an Amazon ECS service to a new task definition, prove it healthy, roll back with the reason"
)]
pub(crate) struct Cli {
    /// Read settings from this file instead of the deployer.toml found upward from the working directory
    #[arg(long, global = true, env = "DEPLOYER_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// `text` (human lines on stderr) or `json` (one JSON object per line on stdout, the last one the result)
    #[arg(long, global = true, env = "DEPLOYER_OUTPUT", value_enum)]
    pub(crate) output: Option<OutputFormat>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) enum OutputFormat {
    #[default]
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Register a new task definition revision, roll the service, wait until healthy, roll back on failure
    Deploy(DeployArgs),
    /// Print the task definition diff a deploy would make against what runs now; writes nothing
    Plan(DeployArgs),
    /// Put the service back on an earlier task definition and wait until it is healthy
    Rollback(RollbackArgs),
    /// Show the service's deployments, tasks, target health and last events
    Status(ServiceArgs),
    /// Let a BLUE_GREEN, LINEAR or CANARY deployment waiting at a PAUSE hook go on, and wait until it is done
    Continue(ContinueArgs),
    /// The whole job: build the image, push it to ECR, deploy it by digest (settings from deployer.toml)
    Run(Box<RunArgs>),
    /// Give an image already in ECR another tag, without pulling it
    Promote(PromoteArgs),
    /// Check what a deploy would register against AWS (images, roles, secrets, log groups, load balancer, Fargate sizes) before anything changes; writes nothing
    Verify(DeployArgs),
    /// Write deployer.toml, the task definition and the service definition from a live service
    Init(InitArgs),
}

#[derive(Args, Debug, Clone)]
pub(crate) struct InitArgs {
    #[command(flatten)]
    pub(crate) target: ServiceArgs,
    /// Directory to write deployer.toml, task-definition.json and service-definition.json into
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub(crate) dir: PathBuf,
    /// Overwrite files that already exist
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) deploy: DeployArgs,
    /// Build context directory
    #[arg(long, env = "DEPLOYER_CONTEXT", value_name = "DIR")]
    pub(crate) context: Option<PathBuf>,
    /// Dockerfile, relative to the context
    #[arg(long, env = "DEPLOYER_DOCKERFILE", value_name = "PATH")]
    pub(crate) dockerfile: Option<String>,
    /// ECR repository name to push to
    #[arg(long, env = "DEPLOYER_REPOSITORY", value_name = "NAME")]
    pub(crate) repository: Option<String>,
    /// Container that gets the built image (needed when the task definition has several)
    #[arg(long, env = "DEPLOYER_CONTAINER", value_name = "NAME")]
    pub(crate) container: Option<String>,
    /// Image tag template: {sha} (12 characters, the default), {full_sha}, {branch}, {run_number}; repeatable
    #[arg(
        long = "tag",
        env = "DEPLOYER_TAG",
        value_delimiter = ',',
        value_name = "TEMPLATE"
    )]
    pub(crate) tags: Vec<String>,
    /// Build argument KEY=VALUE (repeatable; the value is taken whole, commas included). DEPLOYER_BUILD_ARG: one per line
    #[arg(
        long = "build-arg",
        env = "DEPLOYER_BUILD_ARG",
        value_name = "KEY=VALUE"
    )]
    pub(crate) build_args: Vec<String>,
    /// Build stage to stop at
    #[arg(long, env = "DEPLOYER_TARGET", value_name = "STAGE")]
    pub(crate) target: Option<String>,
    /// Platform to build for, e.g. linux/amd64
    #[arg(long, env = "DEPLOYER_PLATFORM", value_name = "PLATFORM")]
    pub(crate) platform: Option<String>,
    /// Create the ECR repository (scan on push) when it does not exist
    #[arg(long, env = "DEPLOYER_CREATE_REPOSITORY")]
    pub(crate) create_repository: bool,
    /// Refuse to deploy when the ECR scan finds anything at or above this severity (LOW, MEDIUM, HIGH, CRITICAL)
    #[arg(long, env = "DEPLOYER_MAX_SEVERITY", value_name = "SEVERITY")]
    pub(crate) max_severity: Option<String>,
    /// Put repo:tag into the task definition instead of repo@sha256:digest
    #[arg(long, env = "DEPLOYER_DEPLOY_BY_TAG")]
    pub(crate) deploy_by_tag: bool,
    /// With several services: when one fails, roll back every service this run deployed (`run`) or only the failed one (`service`)
    #[arg(
        long,
        env = "DEPLOYER_ROLLBACK_SCOPE",
        value_enum,
        value_name = "SCOPE"
    )]
    pub(crate) rollback_scope: Option<RollbackScope>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RollbackScope {
    #[default]
    Run,
    Service,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct PromoteArgs {
    /// ECR repository name
    #[arg(long, env = "DEPLOYER_REPOSITORY", value_name = "NAME")]
    pub(crate) repository: String,
    /// Existing tag
    #[arg(long, value_name = "TAG")]
    pub(crate) from: String,
    /// New tag
    #[arg(long, value_name = "TAG")]
    pub(crate) to: String,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct ServiceArgs {
    /// ECS cluster name or ARN
    #[arg(long, env = "DEPLOYER_CLUSTER")]
    pub(crate) cluster: Option<String>,
    /// ECS service name or ARN
    #[arg(long, env = "DEPLOYER_SERVICE")]
    pub(crate) service: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct DeployArgs {
    #[command(flatten)]
    pub(crate) target: ServiceArgs,
    /// New image, as CONTAINER=IMAGE_REF, or a bare IMAGE_REF for a single-container task definition (repeatable)
    #[arg(
        long = "image",
        env = "DEPLOYER_IMAGE",
        value_delimiter = ',',
        value_name = "[CONTAINER=]IMAGE_REF"
    )]
    pub(crate) images: Vec<String>,
    /// Set an environment variable, as CONTAINER:KEY=VALUE (repeatable; the value is taken whole, commas included). DEPLOYER_ENV: one per line, or comma-separated where the next item starts CONTAINER:KEY=
    #[arg(long = "env", env = "DEPLOYER_ENV", value_name = "CONTAINER:KEY=VALUE")]
    pub(crate) envs: Vec<String>,
    /// Start from this task definition file (JSON or YAML) instead of the one the service runs now
    #[arg(long, env = "DEPLOYER_TASK_DEFINITION", value_name = "FILE")]
    pub(crate) task_definition: Option<PathBuf>,
    /// Give up and roll back after this long, e.g. 15m, 90s, 1h30m
    #[arg(long, env = "DEPLOYER_TIMEOUT", value_name = "DURATION")]
    pub(crate) timeout: Option<String>,
    /// Roll back once this many of the new tasks have stopped
    #[arg(long, env = "DEPLOYER_MAX_FAILED_TASKS", value_name = "N")]
    pub(crate) max_failed_tasks: Option<u32>,
    /// On failure leave the service as it is instead of rolling back
    #[arg(long, env = "DEPLOYER_NO_ROLLBACK")]
    pub(crate) no_rollback: bool,
    /// Wait for another deployment in progress to finish instead of refusing
    #[arg(long, env = "DEPLOYER_WAIT_FOR_IDLE")]
    pub(crate) wait_for_idle: bool,
    /// Deploy even when the task definition is unchanged
    #[arg(long, env = "DEPLOYER_FORCE_NEW_DEPLOYMENT")]
    pub(crate) force_new_deployment: bool,
    /// In GitHub Actions, record a GitHub deployment (in_progress, then success or failure)
    #[arg(long, env = "DEPLOYER_GITHUB_DEPLOYMENT")]
    pub(crate) github_deployment: bool,
    /// Before updating the service, run the new task definition once (or only CONTAINER) with the service's network; refuse the deploy if an essential container exits non-zero
    #[arg(long, env = "DEPLOYER_RUN_TASK", num_args = 0..=1, default_missing_value = "", value_name = "CONTAINER")]
    pub(crate) run_task: Option<String>,
    /// Command for the --run-task container, e.g. "./manage migrate" or a JSON array
    #[arg(long, env = "DEPLOYER_RUN_TASK_COMMAND", value_name = "COMMAND")]
    pub(crate) run_task_command: Option<String>,
    /// After a healthy deploy, deregister older revisions of the family, keeping the newest N (never the rollback target or one in use)
    #[arg(long, env = "DEPLOYER_KEEP_REVISIONS", value_name = "N")]
    pub(crate) keep_revisions: Option<u32>,
    /// Create what does not exist: the ECR repository, the cluster, the service (from --service-definition and --task-definition)
    #[arg(long, env = "DEPLOYER_CREATE_MISSING")]
    pub(crate) create_missing: bool,
    /// The service to create under --create-missing, in the shape `aws ecs create-service --cli-input-json` takes
    #[arg(long, env = "DEPLOYER_SERVICE_DEFINITION", value_name = "FILE")]
    pub(crate) service_definition: Option<PathBuf>,
    /// BLUE_GREEN, LINEAR, CANARY: done once the deployment reaches this lifecycle stage with the new tasks healthy (e.g. BAKE_TIME); ECS finishes the rest
    #[arg(long, env = "DEPLOYER_UNTIL", value_name = "STAGE")]
    pub(crate) until: Option<String>,
    /// BLUE_GREEN, LINEAR, CANARY with a PAUSE hook at POST_TEST_TRAFFIC_SHIFT: run this shell command while test traffic reaches the new tasks; exit 0 lets the deployment go on, anything else rolls it back
    #[arg(long, env = "DEPLOYER_SMOKE_TEST", value_name = "COMMAND")]
    pub(crate) smoke_test: Option<String>,
    /// CODE_DEPLOY services: the CodeDeploy application (default AppECS-CLUSTER-SERVICE)
    #[arg(long, env = "DEPLOYER_CODEDEPLOY_APPLICATION", value_name = "NAME")]
    pub(crate) codedeploy_application: Option<String>,
    /// CODE_DEPLOY services: the CodeDeploy deployment group (default DgpECS-CLUSTER-SERVICE)
    #[arg(
        long,
        env = "DEPLOYER_CODEDEPLOY_DEPLOYMENT_GROUP",
        value_name = "NAME"
    )]
    pub(crate) codedeploy_deployment_group: Option<String>,
    /// Skip the checks `deployer verify` makes before the first write
    #[arg(long, env = "DEPLOYER_NO_VERIFY")]
    pub(crate) no_verify: bool,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct ContinueArgs {
    #[command(flatten)]
    pub(crate) target: ServiceArgs,
    /// Give up waiting after this long, e.g. 15m
    #[arg(long, env = "DEPLOYER_TIMEOUT", value_name = "DURATION")]
    pub(crate) timeout: Option<String>,
    /// Count the deployment failed once this many of its tasks have stopped
    #[arg(long, env = "DEPLOYER_MAX_FAILED_TASKS", value_name = "N")]
    pub(crate) max_failed_tasks: Option<u32>,
}

impl ContinueArgs {
    /// The same settings as `rollback` takes, with no `--to`.
    pub(crate) fn as_rollback(&self) -> RollbackArgs {
        RollbackArgs {
            target: self.target.clone(),
            to: None,
            timeout: self.timeout.clone(),
            max_failed_tasks: self.max_failed_tasks,
        }
    }
}

#[derive(Args, Debug, Clone)]
pub(crate) struct RollbackArgs {
    #[command(flatten)]
    pub(crate) target: ServiceArgs,
    /// Task definition ARN to go back to (default: the one of the last COMPLETED deployment before the current one)
    #[arg(long, value_name = "ARN")]
    pub(crate) to: Option<String>,
    /// Give up after this long, e.g. 15m
    #[arg(long, env = "DEPLOYER_TIMEOUT", value_name = "DURATION")]
    pub(crate) timeout: Option<String>,
    /// Count the rollback failed once this many of its tasks have stopped
    #[arg(long, env = "DEPLOYER_MAX_FAILED_TASKS", value_name = "N")]
    pub(crate) max_failed_tasks: Option<u32>,
}

/// What `main` runs: the parsed command plus clap's record of where each value came from.
pub(crate) struct Invocation {
    pub(crate) cli: Cli,
    pub(crate) matches: ArgMatches,
    pub(crate) output: OutputFormat,
}

/// Parses the command line. Usage errors exit 2 (the contract's "refused"), help and version 0.
pub(crate) fn parse() -> Result<Invocation, ExitCode> {
    let mut argv: Vec<String> = std::env::args().collect();
    // In a GitHub Action step the inputs arrive as INPUT_* variables: they are flags.
    if std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true") {
        match crate::inputs::flags(|name| std::env::var(name).ok()) {
            Ok(flags) => argv.extend(flags),
            Err(message) => {
                eprintln!("error: {message}");
                return Err(ExitCode::from(2));
            }
        }
    }
    let matches = match Cli::command().try_get_matches_from(argv) {
        Ok(matches) => matches,
        Err(err) => {
            let code = if err.use_stderr() { 2 } else { 0 };
            let _ = err.print();
            if code == 2 && wants_json() {
                println!(
                    "{}",
                    serde_json::json!({"event": "result", "outcome": "refused", "reason": err.kind().to_string(), "duration_ms": 0})
                );
            }
            return Err(ExitCode::from(code));
        }
    };
    let cli = Cli::from_arg_matches(&matches).map_err(|err| {
        let _ = err.print();
        ExitCode::from(2)
    })?;
    let output = cli.output.unwrap_or_default();
    Ok(Invocation {
        cli,
        matches,
        output,
    })
}

fn wants_json() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2)
        .any(|w| w[0] == "--output" && w[1] == "json")
        || args.iter().any(|a| a == "--output=json")
        || std::env::var("DEPLOYER_OUTPUT").is_ok_and(|v| v == "json")
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// The README's configuration reference names every flag and environment variable there is.
    #[test]
    fn readme_documents_every_flag_and_variable() {
        let readme = include_str!("../README.md");
        let cli = Cli::command();
        let mut commands = vec![&cli];
        commands.extend(cli.get_subcommands());
        for command in commands {
            for arg in command.get_arguments() {
                if let Some(long) = arg.get_long().filter(|l| !["help", "version"].contains(l)) {
                    assert!(
                        readme.contains(&format!("`--{long}")),
                        "README does not document --{long} ({})",
                        command.get_name()
                    );
                }
                if let Some(env) = arg.get_env() {
                    let env = env.to_string_lossy();
                    assert!(
                        readme.contains(&format!("`{env}`")),
                        "README does not document {env} ({})",
                        command.get_name()
                    );
                }
            }
        }
    }
}
