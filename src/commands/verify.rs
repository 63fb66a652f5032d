//! `deployer verify`, and the same checks before the first write of every deploy: the task
//! definition a deploy would register (built by pre-flight, as the deploy builds it) checked
//! against AWS. Errors refuse (exit 2); warnings are printed and reported. Writes nothing.

use crate::aws::Aws;
use crate::config::DeployConfig;
use crate::findings;
use crate::outcome::{Outcome, RunResult};
use crate::report::output::Output;
use crate::signal::Interrupt;
use crate::steps::preflight::{self, Prepared};
use crate::steps::verify::{self, Subject};
use anyhow::bail;

/// `deployer verify`: pre-flight as `deploy` runs it, then the checks.
pub(crate) async fn command(cfg: &DeployConfig, aws: &Aws, out: &Output) -> RunResult {
    let result = RunResult::for_target(&cfg.target);
    let start = match preflight::prepare(cfg, aws, out, &Interrupt::none()).await {
        Ok(start) => start,
        Err(err) => return result.refuse(&err),
    };
    match check(cfg, aws, &start, out).await {
        Ok(_) => result.finish(Outcome::Reported, None),
        Err(err) => result.refuse(&err),
    }
}

/// Before the first write of `deploy` (and `run`, and each service of a system): the checks,
/// unless `--no-verify`. An Err refuses the deploy.
pub(crate) async fn before_deploy(
    cfg: &DeployConfig,
    aws: &Aws,
    start: &Prepared,
    out: &Output,
) -> anyhow::Result<()> {
    if !cfg.verify {
        return Ok(());
    }
    check(cfg, aws, start, out).await.map(|_| ())
}

/// The checks on what pre-flight built; Err when any finding is an error.
async fn check(
    cfg: &DeployConfig,
    aws: &Aws,
    start: &Prepared,
    out: &Output,
) -> anyhow::Result<String> {
    out.step(&format!(
        "verifying the task definition `{}` against AWS",
        start.new.family()
    ));
    let subject = Subject {
        target: &cfg.target,
        task_definition: &start.new,
        creating: start.create.as_ref().map(|c| &c.definition),
        rollback: cfg.rollback,
    };
    let found = verify::findings(aws, &subject, out).await?;
    let summary = verify::report(&found, out);
    let errors = findings::errors(&found);
    if errors > 0 {
        let first = found
            .iter()
            .find(|f| f.level == findings::Level::Error)
            .map(|f| f.line())
            .unwrap_or_default();
        bail!(
            "{summary}: {first}{}; fix the task definition or the service (or pass --no-verify to skip the checks)",
            if errors > 1 { " (and more above)" } else { "" }
        );
    }
    out.info(&summary);
    Ok(summary)
}
