//! The runbook's steps, one module each. A step never imports another step: only `commands`
//! sequences them.

pub(crate) mod codedeploy;
pub(crate) mod create;
pub(crate) mod failure_report;
pub(crate) mod init;
pub(crate) mod preflight;
pub(crate) mod recheck;
pub(crate) mod recover;
pub(crate) mod run_task;
pub(crate) mod ship;
pub(crate) mod smoke_test;
pub(crate) mod tidy;
pub(crate) mod verify;
pub(crate) mod watch;
