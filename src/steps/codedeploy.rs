//! A CODE_DEPLOY service's deploy: the AppSpec built from the service (its container, port,
//! network, platform and capacity providers), CreateDeployment in the application and deployment
//! group (the official action's defaults, or the flags), and the listeners a smoke test reaches.

use crate::aws::{Aws, codedeploy, ecs};
use crate::codedeploy::{appspec, placement};
use crate::ids::TaskDefinitionArn;
use crate::report::output::Output;
use crate::strategy::Shape;
use crate::target::Target;
use anyhow::{Result, anyhow};

/// Starts the CodeDeploy deployment of `task_definition`; returns its id.
pub(crate) async fn deploy(
    aws: &Aws,
    target: &Target,
    task_definition: &TaskDefinitionArn,
    (application, group): (&str, &str),
    out: &Output,
) -> Result<String> {
    let described = ecs::describe_service_raw(aws, target).await?;
    let placement = placement(&described["services"][0])
        .map_err(|why| anyhow!("service `{}`: {why}", target.service))?;
    out.step(&format!(
        "creating a CodeDeploy deployment in application `{application}`, deployment group `{group}`"
    ));
    let spec = appspec(task_definition.as_str(), &placement);
    let id = codedeploy::create_deployment(aws, (application, group), &spec).await?;
    out.info(&format!("CodeDeploy deployment {id}"));
    Ok(id)
}

/// The test and production listeners of the deployment group, as a shape the smoke test reads.
pub(crate) async fn listeners(aws: &Aws, names: (&str, &str), out: &Output) -> Shape {
    match codedeploy::listeners(aws, names).await {
        Ok((test, production)) => Shape {
            test_listener_rule: test,
            production_listener_rule: production,
            codedeploy: true,
            ..Default::default()
        },
        Err(err) => {
            out.warn(&format!("{err:#}; the smoke test gets no URLs"));
            Shape::default()
        }
    }
}
