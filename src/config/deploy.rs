//! `deploy`, `plan`, `rollback` and `status`: the service, and the deploy's settings, resolved from
//! flag > `DEPLOYER_*` > deployer.toml (with `[services]`: the table `--service` names, over the top
//! level; `select`).

use super::*;

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
    /// `--until STAGE` (checked against the stage list).
    pub(crate) until: Option<String>,
    /// `--smoke-test COMMAND`.
    pub(crate) smoke_test: Option<String>,
    /// CODE_DEPLOY services: the CodeDeploy application and deployment group to deploy through.
    pub(crate) codedeploy: (String, String),
    /// Run `verify`'s checks before the first write (not `--no-verify`).
    pub(crate) verify: bool,
    /// The builds in the file this command does not do (`deployer run` builds), each said as what
    /// it means for the plan: that container keeps the image its task definition names.
    pub(crate) not_built: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct RollbackConfig {
    pub(crate) target: Target,
    pub(crate) to: Option<String>,
    pub(crate) timeout: Duration,
    pub(crate) max_failed_tasks: u32,
}

/// `status`: the service to act on. With `[services]`, the table `--service` names (as `deploy`
/// does).
pub(crate) fn target(args: &ServiceArgs, matches: &ArgMatches, file: &File) -> Result<Target> {
    let selected = file.one_service(args, matches)?;
    let file = selected.as_ref().unwrap_or(file);
    within(file, resolve_target(args, matches, file))
}

/// `init`: the service whose files it writes. A new service is usually in no `[services]` table
/// of the file found upward, so the tables do not bound it.
pub(crate) fn init_target(args: &ServiceArgs, matches: &ArgMatches, file: &File) -> Result<Target> {
    resolve_target(args, matches, file)
}

/// An error while resolving a `[services.NAME]` table's settings names the table and the file.
fn within<T>(file: &File, result: Result<T>) -> Result<T> {
    match &file.table {
        Some(table) => {
            result.with_context(|| format!("in `[services.{table}]` of {}", file.name()))
        }
        None => result,
    }
}

/// Flag > `DEPLOYER_*` > file for the cluster; the service of a `[services.NAME]` table is the
/// table's own (`--service` chose the table, by its name or its `service`).
fn resolve_target(args: &ServiceArgs, matches: &ArgMatches, file: &File) -> Result<Target> {
    let pick = |id: &str, flag: &Option<String>, from_file: &Option<String>| -> Result<String> {
        let value = if given(matches, id) && !(id == "service" && file.table.is_some()) {
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

/// `deploy`, `plan` and `verify`: the deploy's settings, from the `[services.NAME]` table
/// `--service` names when the file has `[services]`, with the prebuilt images of
/// `[containers.NAME]` put in (unless `--image` names the images) and the builds left to `run` said.
pub(crate) fn deploy(args: &DeployArgs, matches: &ArgMatches, file: &File) -> Result<DeployConfig> {
    let selected = file.one_service(&args.target, matches)?;
    let file = selected.as_ref().unwrap_or(file);
    within(
        file,
        settings(args, matches, file).and_then(|cfg| containers(cfg, matches, file)),
    )
}

/// `[containers.NAME] image = "REF"` added to the deploy's images (when no `--image` was given),
/// and each build (`[build]`, `[containers.NAME.build]`) that leaves a container on its old image.
fn containers(mut cfg: DeployConfig, matches: &ArgMatches, file: &File) -> Result<DeployConfig> {
    let prefix = file
        .table
        .as_ref()
        .map(|t| format!("services.{t}."))
        .unwrap_or_default();
    let flagged = given(matches, "images");
    let named =
        |c: &str, images: &[ImageChange]| images.iter().any(|i| i.container.as_deref() == Some(c));
    for (container, section) in file.values.containers.clone().unwrap_or_default() {
        if let (Some(image), false) = (&section.image, flagged) {
            let change =
                parse_image_change(&format!("{container}={image}")).with_context(|| {
                    format!(
                        "invalid `{prefix}containers.{container}.image` in {}",
                        file.name()
                    )
                })?;
            cfg.images.push(change);
        }
        if section.build.is_some() && !named(&container, &cfg.images) {
            cfg.not_built.push(format!(
                "not built: `[{prefix}containers.{container}.build]` is built by `deployer run` only; container `{container}` keeps the image its task definition names (pass --image {container}=REF for another)"
            ));
        }
    }
    if file.values.build.is_some() && cfg.images.is_empty() {
        cfg.not_built.push(format!(
            "not built: `[{prefix}build]` is built by `deployer run` only; the containers keep the images their task definition names (pass --image [CONTAINER=]REF for another)"
        ));
    }
    Ok(cfg)
}

/// The deploy's settings from flags over one service's file values (`run` adds its builds to them).
pub(super) fn settings(
    args: &DeployArgs,
    matches: &ArgMatches,
    file: &File,
) -> Result<DeployConfig> {
    let f = &file.values;
    let task_definition_file = pick(matches, "task_definition", &args.task_definition, || {
        f.task_definition.as_ref().map(|p| file.relative(p))
    });
    let timeout = timeout(matches, &args.timeout, file)?;
    let max_failed_tasks = max_failed_tasks(args, matches, f)?;
    let run_task = run_task(args, matches, file)?;
    let keep_revisions = keep_revisions(args, matches, f)?;
    let service_definition = pick(
        matches,
        "service_definition",
        &args.service_definition,
        || f.service_definition.as_ref().map(|p| file.relative(p)),
    );
    let target = resolve_target(&args.target, matches, file)?;
    let (images, envs) = changes(args, matches, f)?;
    let until = pick(matches, "until", &args.until, || f.until.clone())
        .map(|stage| crate::strategy::parse_stage(&stage))
        .transpose()
        .map_err(|why| anyhow::anyhow!(why))?;
    let smoke_test = pick(matches, "smoke_test", &args.smoke_test, || {
        f.smoke_test.clone()
    })
    .filter(|c| !c.trim().is_empty());
    let flag = |id: &str, value: bool, from_file: Option<bool>| {
        pick(matches, id, &value, || from_file.unwrap_or(false))
    };
    let codedeploy = codedeploy_names(args, matches, f, &target);
    Ok(DeployConfig {
        until,
        smoke_test,
        codedeploy,
        run_task,
        keep_revisions,
        create_missing: flag("create_missing", args.create_missing, f.create_missing),
        service_definition,
        target,
        images,
        envs,
        task_definition_file,
        timeout,
        max_failed_tasks,
        rollback: !flag("no_rollback", args.no_rollback, f.no_rollback),
        verify: !flag("no_verify", args.no_verify, f.no_verify),
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
        not_built: Vec::new(),
    })
}

/// `--max-failed-tasks`, from the flag or the file, else the default; 0 is refused.
fn max_failed_tasks(args: &DeployArgs, matches: &ArgMatches, f: &FileConfig) -> Result<u32> {
    let max_failed_tasks = pick(matches, "max_failed_tasks", &args.max_failed_tasks, || {
        f.max_failed_tasks
    })
    .unwrap_or(DEFAULT_MAX_FAILED_TASKS);
    if max_failed_tasks == 0 {
        bail!("invalid max-failed-tasks `0`: expected a whole number of at least 1");
    }
    Ok(max_failed_tasks)
}

/// `--keep-revisions`, from the flag or the file (none: keep every revision); 0 is refused.
fn keep_revisions(args: &DeployArgs, matches: &ArgMatches, f: &FileConfig) -> Result<Option<u32>> {
    let keep_revisions = pick(matches, "keep_revisions", &args.keep_revisions, || {
        f.keep_revisions
    });
    if keep_revisions == Some(0) {
        bail!(
            "invalid keep-revisions `0`: keep at least 1 (the new revision); the rollback target is always kept too"
        );
    }
    Ok(keep_revisions)
}

/// The CodeDeploy application and deployment group, from the flags or the file, else the names
/// derived from the cluster and service (`codedeploy::default_names`).
fn codedeploy_names(
    args: &DeployArgs,
    matches: &ArgMatches,
    f: &FileConfig,
    target: &Target,
) -> (String, String) {
    let (app, group) = crate::codedeploy::default_names(&target.cluster, &target.service);
    (
        pick(
            matches,
            "codedeploy_application",
            &args.codedeploy_application,
            || f.codedeploy_application.clone(),
        )
        .unwrap_or(app),
        pick(
            matches,
            "codedeploy_deployment_group",
            &args.codedeploy_deployment_group,
            || f.codedeploy_deployment_group.clone(),
        )
        .unwrap_or(group),
    )
}

/// `rollback` and `continue`: the service (a `[services.NAME]` table's, as for `deploy`), the
/// revision to go to and the watch's limits.
pub(crate) fn rollback(
    args: &RollbackArgs,
    matches: &ArgMatches,
    file: &File,
) -> Result<RollbackConfig> {
    let selected = file.one_service(&args.target, matches)?;
    let file = selected.as_ref().unwrap_or(file);
    within(file, rollback_settings(args, matches, file))
}

fn rollback_settings(
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
    let max_failed_tasks = if given(matches, "max_failed_tasks") {
        args.max_failed_tasks
    } else {
        f.max_failed_tasks
    }
    .unwrap_or(DEFAULT_MAX_FAILED_TASKS);
    // 0 would fail the rollback at its first look, right after its UpdateService (R21).
    if max_failed_tasks == 0 {
        bail!("invalid max-failed-tasks `0`: expected a whole number of at least 1");
    }
    Ok(RollbackConfig {
        target: resolve_target(&args.target, matches, file)?,
        to: args.to.clone(),
        timeout,
        max_failed_tasks,
    })
}

/// The flag's value when it was given (on the command line or as `DEPLOYER_*`), else the file's.
fn pick<T: Clone>(matches: &ArgMatches, id: &str, flag: &T, from_file: impl FnOnce() -> T) -> T {
    if given(matches, id) {
        flag.clone()
    } else {
        from_file()
    }
}

/// `--image` and `--env`, from the flags or the file, parsed.
fn changes(
    args: &DeployArgs,
    matches: &ArgMatches,
    f: &FileConfig,
) -> Result<(Vec<ImageChange>, Vec<EnvChange>)> {
    let images = pick(matches, "images", &args.images, || {
        f.image.clone().map(OneOrMany::into_vec).unwrap_or_default()
    });
    let envs = if from_environment(matches, "envs") {
        // DEPLOYER_ENV: a comma splits only before a new CONTAINER:KEY= item (R15).
        args.envs
            .iter()
            .flat_map(|text| crate::inputs::env_items(text))
            .collect()
    } else {
        pick(matches, "envs", &args.envs, || {
            f.env.clone().map(OneOrMany::into_vec).unwrap_or_default()
        })
    };
    Ok((
        images
            .iter()
            .map(|i| parse_image_change(i))
            .collect::<Result<_>>()?,
        envs.iter()
            .map(|e| parse_env_change(e))
            .collect::<Result<_>>()?,
    ))
}

/// `--run-task [CONTAINER]` and `--run-task-command`, from the flags or the file, checked together.
fn run_task(args: &DeployArgs, matches: &ArgMatches, file: &File) -> Result<Option<RunTask>> {
    let command = run_task_command(args, matches, file)?;
    let container = if given(matches, "run_task") {
        // `--run-task false` (the Action's `run-task: false`, DEPLOYER_RUN_TASK=false) is off, not
        // a container named `false` (R21).
        args.run_task
            .clone()
            .map(|c| c.trim().to_string())
            .filter(|c| c != "false")
    } else {
        match &file.values.run_task {
            Some(RunTaskSetting::Whole(true)) => Some(String::new()),
            Some(RunTaskSetting::Whole(false)) | None => None,
            Some(RunTaskSetting::Container(c)) => Some(c.trim().to_string()),
        }
    };
    match (container, command) {
        (None, Some(_)) => bail!(
            "--run-task-command (or `run-task-command`) needs --run-task CONTAINER: which container runs the command"
        ),
        (None, None) => Ok(None),
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
            Ok(Some(RunTask { container, command }))
        }
    }
}

/// The one-off task's command: the flag's, or the file's (a list of words, or one line as `parse_command` reads it).
fn run_task_command(
    args: &DeployArgs,
    matches: &ArgMatches,
    file: &File,
) -> Result<Option<Vec<String>>> {
    if given(matches, "run_task_command") {
        return args
            .run_task_command
            .as_deref()
            .map(|c| parse_command(c).context("invalid --run-task-command"))
            .transpose();
    }
    Ok(match &file.values.run_task_command {
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
    })
}
