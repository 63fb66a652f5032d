//! `deployer init --cluster C --service S [--dir DIR] [--force]`: deployer.toml, the task
//! definition and the service definition, written from the live service. Existing files are kept
//! unless `--force`: a refusal writes nothing.

use crate::aws::Aws;
use crate::cli::InitArgs;
use crate::outcome::{Outcome, RunResult};
use crate::report::output::Output;
use crate::steps::init;
use crate::target::Target;
use anyhow::Context;

pub(crate) async fn command(
    target: &Target,
    args: &InitArgs,
    aws: &Aws,
    out: &Output,
) -> RunResult {
    let result = RunResult::for_target(target);
    let dir = &args.dir;
    let names = [
        init::CONFIG_FILE,
        init::TASK_DEFINITION_FILE,
        init::SERVICE_DEFINITION_FILE,
    ];
    let existing: Vec<String> = names
        .iter()
        .map(|n| dir.join(n))
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if !existing.is_empty() && !args.force {
        let why = format!(
            "{} already exist{}; pass --force to overwrite",
            existing.join(", "),
            if existing.len() == 1 { "s" } else { "" }
        );
        return result.finish(Outcome::Refused, Some(why));
    }
    out.step(&format!(
        "reading service `{}` in cluster `{}`",
        target.service, target.cluster
    ));
    let files = match init::read(aws, target, dir).await {
        Ok(files) => files,
        Err(err) => return result.refuse(&err),
    };
    if let Err(err) = write(dir, &files, out) {
        return result.finish(Outcome::Refused, Some(format!("{err:#}")));
    }
    out.info("`deployer plan` there should report no change, and `deployer verify` pass");
    result.finish(Outcome::Reported, None)
}

fn write(dir: &std::path::Path, files: &init::Files, out: &Output) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("failed to create directory `{}`", dir.display()))?;
    for (name, text) in &files.0 {
        let path = dir.join(name);
        std::fs::write(&path, text)
            .with_context(|| format!("failed to write `{}`", path.display()))?;
        out.info(&format!("wrote {}", path.display()));
    }
    Ok(())
}
