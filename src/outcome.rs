//! How a run ended: the `Outcome` (the one place that maps it to the contract's exit code) and the
//! `RunResult` every command returns.

use crate::target::Target;
use serde_json::{Value, json};

/// How a run ended. The one place that maps an outcome to the contract's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Deployed,
    Unchanged,
    Planned,
    Reported,
    RolledBack,
    RollbackFailed,
    Refused,
    Interrupted,
    /// One service of several, not started because a service before it failed.
    Skipped,
}

impl Outcome {
    pub(crate) fn exit_code(self) -> u8 {
        match self {
            Outcome::Deployed | Outcome::Unchanged | Outcome::Planned | Outcome::Reported => 0,
            Outcome::RolledBack => 1,
            Outcome::Refused | Outcome::Skipped => 2,
            Outcome::RollbackFailed => 3,
            Outcome::Interrupted => 130,
        }
    }

    /// Deployed, unchanged, or not started: nothing for the run to roll back for.
    pub(crate) fn went_well(self) -> bool {
        matches!(
            self,
            Outcome::Deployed | Outcome::Unchanged | Outcome::Skipped
        )
    }

    /// A step that failed before any write: interrupted when a signal came during it, else refused.
    pub(crate) fn stopped_or_refused(signalled: bool) -> Outcome {
        if signalled {
            Outcome::Interrupted
        } else {
            Outcome::Refused
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Deployed => "deployed",
            Outcome::Unchanged => "unchanged",
            Outcome::Planned => "planned",
            Outcome::Reported => "reported",
            Outcome::RolledBack => "rolled_back",
            Outcome::RollbackFailed => "rollback_failed",
            Outcome::Refused => "refused",
            Outcome::Interrupted => "interrupted",
            Outcome::Skipped => "skipped",
        }
    }
}

/// The last line of every run.
#[derive(Debug, Clone)]
pub(crate) struct RunResult {
    pub(crate) outcome: Outcome,
    pub(crate) cluster: Option<String>,
    pub(crate) service: Option<String>,
    pub(crate) task_definition_arn: Option<String>,
    pub(crate) previous_task_definition_arn: Option<String>,
    pub(crate) deployment_id: Option<String>,
    /// A staged (BLUE_GREEN, LINEAR, CANARY) deploy: its service deployment, and the stage it ended at.
    pub(crate) service_deployment_arn: Option<String>,
    pub(crate) stage: Option<String>,
    pub(crate) reason: Option<String>,
    /// With several services: each one's own result, in the order of the file.
    pub(crate) services: Vec<RunResult>,
    /// Whether the rollback this run started ended healthy (not part of the contract's JSON; an
    /// interrupted deploy exits 130 either way, but a system run needs to know).
    pub(crate) restored: Option<bool>,
    /// After a failed deploy: how the service was put back (`recovery::Via`), when anything was done.
    pub(crate) rollback: Option<&'static str>,
}

impl RunResult {
    /// The contract's result fields (plus `services` when there are several).
    pub(crate) fn to_json(&self) -> Value {
        let mut value = json!({
            "event": "result",
            "outcome": self.outcome.as_str(),
            "cluster": self.cluster,
            "service": self.service,
            "task_definition_arn": self.task_definition_arn,
            "previous_task_definition_arn": self.previous_task_definition_arn,
            "deployment_id": self.deployment_id,
            "reason": self.reason,
        });
        // Staged deploys only: the contract's fields above stay as they were for every run.
        if let Some(arn) = &self.service_deployment_arn {
            value["service_deployment_arn"] = json!(arn);
            value["stage"] = json!(self.stage);
        }
        if let Some(via) = self.rollback {
            value["rollback"] = json!(via);
        }
        if !self.services.is_empty() {
            value["services"] = self
                .services
                .iter()
                .map(|s| {
                    let mut one = s.to_json();
                    one.as_object_mut().map(|o| o.remove("event"));
                    one
                })
                .collect();
        }
        value
    }

    pub(crate) fn refused(reason: impl Into<String>) -> RunResult {
        RunResult {
            outcome: Outcome::Refused,
            cluster: None,
            service: None,
            task_definition_arn: None,
            previous_task_definition_arn: None,
            deployment_id: None,
            service_deployment_arn: None,
            stage: None,
            reason: Some(reason.into()),
            services: Vec::new(),
            restored: None,
            rollback: None,
        }
    }
}

impl RunResult {
    pub(crate) fn for_target(target: &Target) -> RunResult {
        RunResult {
            cluster: Some(target.cluster.clone()),
            service: Some(target.service.clone()),
            ..RunResult::refused("")
        }
    }

    /// Refused before any write: the error says what was being attempted.
    pub(crate) fn refuse(self, err: &anyhow::Error) -> RunResult {
        self.finish(Outcome::Refused, Some(format!("{err:#}")))
    }

    pub(crate) fn finish(mut self, outcome: Outcome, reason: Option<String>) -> RunResult {
        self.outcome = outcome;
        self.reason = reason;
        self
    }
}
