//! `deployer run`'s builds: flags over the `[build]` table, on top of the deploy's settings.

use super::*;

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
    let mut deploy = super::deploy::settings(&args.deploy, matches, file)?;
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
    let build_args = build_args(args, matches, &b, given("build_args"))?;
    let max_severity = pick("max_severity", &args.max_severity, b.max_severity.clone())
        .map(|s| crate::severity::parse_severity(&s))
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

/// `--build-arg KEY=VALUE`s from the flags (`DEPLOYER_BUILD_ARG`: one per line) when
/// `from_flags`, else the `[build]` table's `build_args`.
fn build_args(
    args: &RunArgs,
    matches: &ArgMatches,
    b: &BuildSection,
    from_flags: bool,
) -> Result<HashMap<String, String>> {
    let build_args = if from_flags {
        let items: Vec<String> = if from_environment(matches, "build_args") {
            // DEPLOYER_BUILD_ARG: one per line, so a value keeps its commas (R15).
            args.build_args
                .iter()
                .flat_map(|text| crate::inputs::lines(text))
                .collect()
        } else {
            args.build_args.clone()
        };
        items
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
    Ok(build_args)
}
