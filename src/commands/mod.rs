//! The commands: the only code that sequences steps.

pub(crate) mod deploy;
pub(crate) mod init;
pub(crate) mod plan;
pub(crate) mod proceed;
pub(crate) mod rollback;
pub(crate) mod run;
pub(crate) mod status;
pub(crate) mod system;
pub(crate) mod verify;

use crate::aws::Aws;
use crate::cli::{Command, Invocation};
use crate::config::{self, File};
use crate::outcome::RunResult;
use crate::report::output::Output;
use crate::signal::Interrupt;

/// Resolves the invocation into one validated config and runs its command.
pub(crate) async fn dispatch(
    invocation: Invocation,
    file: anyhow::Result<File>,
    out: &Output,
) -> RunResult {
    let file = match file {
        Ok(file) => file,
        Err(err) => return RunResult::refused(format!("{err:#}")),
    };
    let sub = invocation
        .matches
        .subcommand()
        .map(|(_, m)| m.clone())
        .unwrap_or_default();
    match &invocation.cli.command {
        Command::Deploy(args) | Command::Plan(args) => {
            let cfg = match config::deploy(args, &sub, &file) {
                Ok(cfg) => cfg,
                Err(err) => return RunResult::refused(format!("{err:#}")),
            };
            let aws = Aws::load().await;
            // Only commands that change the service catch SIGINT/SIGTERM; the others just stop.
            if matches!(invocation.cli.command, Command::Plan(_)) {
                plan::plan(&cfg, &aws, out, &Interrupt::none()).await
            } else {
                deploy::deploy(&cfg, &aws, out, &Interrupt::listen()).await
            }
        }
        Command::Rollback(args) => match config::rollback(args, &sub, &file) {
            Ok(cfg) => rollback::command(&cfg, &Aws::load().await, out, &Interrupt::listen()).await,
            Err(err) => RunResult::refused(format!("{err:#}")),
        },
        Command::Run(args) if file.is_system() => match config::system(args, &sub, &file) {
            Ok(cfg) => system::run(&cfg, &Aws::load().await, out, &Interrupt::listen()).await,
            Err(err) => RunResult::refused(format!("{err:#}")),
        },
        Command::Run(args) => match config::run(args, &sub, &file) {
            Ok(cfg) => run::command(&cfg, &Aws::load().await, out, &Interrupt::listen()).await,
            Err(err) => RunResult::refused(format!("{err:#}")),
        },
        Command::Promote(args) => {
            run::promote(
                &args.repository,
                &args.from,
                &args.to,
                &Aws::load().await,
                out,
            )
            .await
        }
        Command::Continue(args) => match config::rollback(&args.as_rollback(), &sub, &file) {
            Ok(cfg) => proceed::command(&cfg, &Aws::load().await, out, &Interrupt::listen()).await,
            Err(err) => RunResult::refused(format!("{err:#}")),
        },
        Command::Verify(args) => match config::deploy(args, &sub, &file) {
            Ok(cfg) => verify::command(&cfg, &Aws::load().await, out).await,
            Err(err) => RunResult::refused(format!("{err:#}")),
        },
        Command::Init(args) => match config::init_target(&args.target, &sub, &file) {
            Ok(target) => init::command(&target, args, &Aws::load().await, out).await,
            Err(err) => RunResult::refused(format!("{err:#}")),
        },
        Command::Status(args) => match config::target(args, &sub, &file) {
            Ok(target) => status::command(&target, &Aws::load().await, out).await,
            Err(err) => RunResult::refused(format!("{err:#}")),
        },
    }
}
