//! Ids that must not be mixed up: a task definition's ARN and a deployment's id are both text, so
//! each has its own type.

use std::fmt;

/// `arn:aws:ecs:REGION:ACCOUNT:task-definition/FAMILY:REVISION` (or `FAMILY:REVISION` as given).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub(crate) struct TaskDefinitionArn(pub(crate) String);

/// A deployment's id in `deployments[]` (`ecs-svc/…`), as UpdateService and CreateService return it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub(crate) struct DeploymentId(pub(crate) String);

/// A service deployment's ARN (`…:service-deployment/CLUSTER/SERVICE/ID`), what DescribeServiceDeployments,
/// StopServiceDeployment and ContinueServiceDeployment take.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub(crate) struct ServiceDeploymentArn(pub(crate) String);

macro_rules! text_id {
    ($name:ident) => {
        impl $name {
            pub(crate) fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                $name(text.to_string())
            }
        }

        impl From<String> for $name {
            fn from(text: String) -> Self {
                $name(text)
            }
        }

        impl From<&$name> for String {
            fn from(id: &$name) -> String {
                id.0.clone()
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

text_id!(TaskDefinitionArn);
text_id!(DeploymentId);
text_id!(ServiceDeploymentArn);
