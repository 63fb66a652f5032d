//! deployer: build, push and roll an Amazon ECS service; prove the new tasks healthy; roll back with the reason.
//!
//! `main` only parses, runs and turns the outcome into the exit code of the contract
//! (0 deployed/unchanged, 1 rolled back, 2 refused, 3 rollback failed, 130 interrupted).

mod aws;
mod build;
mod cli;
mod codedeploy;
mod commands;
mod config;
mod ecs_state;
mod findings;
mod health;
mod ids;
mod image_ref;
mod inputs;
mod order;
mod outcome;
mod recovery;
mod report;
mod rollout;
mod service_definition;
mod severity;
mod signal;
mod staged;
mod steps;
mod strategy;
mod target;
mod task_definition;

use std::process::ExitCode;

fn main() -> ExitCode {
    let started = std::time::Instant::now();
    let invocation = match cli::parse() {
        Ok(invocation) => invocation,
        Err(exit) => return exit,
    };
    let file = config::File::load(&invocation.cli);
    let format = if invocation.cli.output.is_some() {
        invocation.output
    } else {
        file.as_ref()
            .ok()
            .and_then(config::File::output)
            .unwrap_or(invocation.output)
    };
    let out = report::output::Output::new(format, started);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    let result = runtime.block_on(commands::dispatch(invocation, file, &out));
    out.result(&result);
    // Reports go out last and never change the exit code: a failure to post is a warning.
    // One budget for all of them (report::publish::BUDGET): a hanging API never holds the job.
    runtime.block_on(report::publish::bounded(&out));
    ExitCode::from(result.outcome.exit_code())
}
