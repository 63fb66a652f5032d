//! ECS and ELB states as types, not strings: a misspelt state is a compile error, and a state a
//! later API version adds is `Other`, never mistaken for a known one.

/// An enum of the states an API names as text, with `as_str`, `From<&str>` and `Display`.
macro_rules! api_state {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub(crate) enum $name {
            $($variant,)*
            /// A state this version of deployer does not know.
            Other(String),
        }

        impl $name {
            pub(crate) fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)*
                    Self::Other(text) => text,
                }
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                match text {
                    $($text => Self::$variant,)*
                    other => Self::Other(other.to_string()),
                }
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::Other(String::new())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

api_state!(
    /// A service's or a cluster's status.
    Status { Active = "ACTIVE", Draining = "DRAINING", Inactive = "INACTIVE", Provisioning = "PROVISIONING" }
);
api_state!(
    /// A deployment's place in `deployments[]`: the PRIMARY is the newest.
    DeploymentStatus { Primary = "PRIMARY", Active = "ACTIVE", Inactive = "INACTIVE" }
);
api_state!(
    /// A deployment's rolloutState.
    RolloutState { InProgress = "IN_PROGRESS", Completed = "COMPLETED", Failed = "FAILED" }
);
api_state!(
    /// A task's lastStatus, in the order a task goes through them.
    TaskStatus {
        Provisioning = "PROVISIONING",
        Pending = "PENDING",
        Activating = "ACTIVATING",
        Running = "RUNNING",
        Deactivating = "DEACTIVATING",
        Stopping = "STOPPING",
        Deprovisioning = "DEPROVISIONING",
        Stopped = "STOPPED",
    }
);
api_state!(
    /// A task's healthStatus, from its containers' health checks.
    HealthStatus { Healthy = "HEALTHY", Unhealthy = "UNHEALTHY", Unknown = "UNKNOWN" }
);
api_state!(
    /// A target's state in its target group.
    TargetState {
        Initial = "initial",
        Healthy = "healthy",
        Unhealthy = "unhealthy",
        UnhealthyDraining = "unhealthy.draining",
        Unused = "unused",
        Draining = "draining",
        Unavailable = "unavailable",
    }
);

impl TaskStatus {
    /// Started but not yet running.
    pub(crate) fn starting(&self) -> bool {
        matches!(
            self,
            TaskStatus::Provisioning | TaskStatus::Pending | TaskStatus::Activating
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_unknown_ones_stay_unknown() {
        for text in ["PRIMARY", "ACTIVE", "INACTIVE"] {
            assert_eq!(DeploymentStatus::from(text).as_str(), text);
        }
        assert_eq!(RolloutState::from("COMPLETED"), RolloutState::Completed);
        assert_eq!(TaskStatus::from("STOPPED"), TaskStatus::Stopped);
        assert_eq!(
            TargetState::from("unhealthy.draining"),
            TargetState::UnhealthyDraining
        );
        assert_eq!(
            TaskStatus::from("HIBERNATING"),
            TaskStatus::Other("HIBERNATING".into())
        );
        assert!(TaskStatus::from("PENDING").starting());
        assert!(!TaskStatus::from("RUNNING").starting());
        assert_eq!(TargetState::Healthy.to_string(), "healthy");
    }
}
