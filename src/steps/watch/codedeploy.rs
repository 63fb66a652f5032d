//! What a look adds for a CODE_DEPLOY service: the CodeDeploy deployment (GetDeployment and its ECS
//! target's lifecycle events), and the replacement task set it created, whose tasks and target
//! group are the ones the gate reads.

use crate::aws::{Aws, codedeploy, ecs, elb};
use crate::rollout::{Snapshot, Watched};
use crate::target::Target;
use anyhow::Result;

/// The replacement task set, once it exists: its id (its tasks' `startedBy`) and target groups.
#[derive(Default)]
pub(crate) struct Replacement {
    found: Option<(String, Vec<String>)>,
}

impl Replacement {
    /// The id whose tasks a look describes: the task set's, or until it exists `fallback`.
    pub(crate) fn tasks_of<'a>(&'a self, fallback: &'a str) -> &'a str {
        self.found.as_ref().map_or(fallback, |(id, _)| id.as_str())
    }

    /// Reads the deployment, finds the replacement task set (the one running the new task
    /// definition), and points the snapshot's target groups and health at it.
    pub(crate) async fn look(
        &mut self,
        aws: &Aws,
        target: &Target,
        watched: &Watched,
        snapshot: &mut Snapshot,
    ) -> Result<()> {
        let Some(id) = &watched.codedeploy else {
            return Ok(());
        };
        let on = format!("{}:{}", target.cluster, target.service);
        snapshot.codedeploy = Some(codedeploy::deployment(aws, id, &on).await?);
        if self.found.is_none() && !watched.rollback {
            let service = ecs::describe_service(aws, target).await?;
            self.found = service
                .task_sets()
                .iter()
                .find(|s| s.task_definition() == Some(watched.task_definition.as_str()))
                .map(|s| {
                    let groups = s
                        .load_balancers()
                        .iter()
                        .filter_map(|lb| lb.target_group_arn().map(String::from))
                        .collect();
                    (s.id().unwrap_or_default().to_string(), groups)
                });
        }
        match &self.found {
            Some((_, groups)) if !groups.is_empty() => {
                snapshot.targets = elb::target_health(aws, groups).await?;
                snapshot.target_groups = groups.clone();
            }
            // Until the replacement exists, no target of ours can be judged.
            _ => {
                snapshot.target_groups.clear();
                snapshot.targets.clear();
            }
        }
        Ok(())
    }
}
