//! deployer: build, push and roll an Amazon ECS service; prove the new tasks healthy; roll back with the reason.
//!
//! `main` only parses, runs and turns the outcome into the exit code of the contract
//! (0 deployed/unchanged, 1 rolled back, 2 refused, 3 rollback failed, 130 interrupted).

mod aws;
mod cli;
mod config;
mod context;
mod create;
mod deploy;
mod ecr;
mod engine;
mod failure;
mod github;
mod gitlab;
mod image_ref;
mod inputs;
mod output;
mod pace;
mod publish;
mod reads;
mod report;
mod rollback;
mod rollout;
mod run;
mod run_task;
mod service;
mod source;
mod status;
mod system;
mod task_definition;
mod tidy;
mod watch;
mod wire;

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
    let out = output::Output::new(format, started);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    let result = runtime.block_on(deploy::dispatch(invocation, file, &out));
    out.result(&result);
    // Reports go out last and never change the exit code: a failure to post is a warning.
    runtime.block_on(publish::all(&out));
    ExitCode::from(result.outcome.exit_code())
}
