//! `deployer plan`: pre-flight only (nothing is written), then the new task definition's changes
//! against the one the service runs.

use crate::aws::Aws;
use crate::config::DeployConfig;
use crate::outcome::{Outcome, RunResult};
use crate::report::output::Output;
use crate::signal::Interrupt;
use crate::steps::preflight;
use serde_json::json;

pub(crate) async fn plan(
    cfg: &DeployConfig,
    aws: &Aws,
    out: &Output,
    interrupt: &Interrupt,
) -> RunResult {
    let mut result = RunResult::for_target(&cfg.target);
    for note in &cfg.not_built {
        out.info(note);
    }
    let prepared = match preflight::prepare(cfg, aws, out, interrupt).await {
        Ok(prepared) => prepared,
        Err(err) => return result.refuse(&err),
    };
    let Some(live) = prepared.live else {
        out.info("the service does not exist: a deploy would create it from --service-definition");
        return result.finish(Outcome::Planned, None);
    };
    result.previous_task_definition_arn = Some(live.task_definition_arn.to_string());
    let diff = prepared.new.diff(&live.task_definition);
    if diff.is_empty() {
        out.info("no change to the task definition");
        return result.finish(Outcome::Unchanged, None);
    }
    out.block(
        "plan",
        &format!(
            "task definition changes against {}:\n  {}",
            live.task_definition_arn,
            diff.join("\n  ")
        ),
        json!({"changes": diff}),
    );
    result.finish(Outcome::Planned, None)
}
