//! A first deploy (`--create-missing`): what does not exist yet is created from files in the repo.
//! The cluster (Fargate and Fargate Spot, Container Insights on) and the service (from a service
//! definition file). The ECR repository is `aws::ecr::repository`'s.

use crate::aws::{Aws, ecs};
use crate::ids::DeploymentId;
use crate::report::output::Output;
use crate::service_definition::ServiceDefinition;
use crate::target::Target;
use anyhow::Result;

/// Creates the cluster: Fargate and Fargate Spot capacity providers, Container Insights on.
pub(crate) async fn cluster(aws: &Aws, name: &str, out: &Output) -> Result<()> {
    out.step(&format!(
        "creating cluster `{name}` (FARGATE and FARGATE_SPOT, Container Insights on)"
    ));
    ecs::create_cluster(aws, name).await
}

/// Creates the service on `task_definition`; returns the id of its first deployment.
pub(crate) async fn service(
    aws: &Aws,
    target: &Target,
    definition: &ServiceDefinition,
    task_definition: &str,
    out: &Output,
) -> Result<DeploymentId> {
    out.step(&format!(
        "creating service `{}` in cluster `{}`",
        target.service, target.cluster
    ));
    ecs::create_service(aws, target, &definition.0, task_definition).await
}
