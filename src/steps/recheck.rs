//! Around the one write that moves the service: the service read again just before UpdateService,
//! so that a change since pre-flight (someone else's deploy during `--run-task` or
//! `--wait-for-idle`) is refused, not rolled over; and after a write error, so that a write ECS
//! applied although its answer was lost is watched (and rolled back) like any other.

use crate::aws::{Aws, ecs};
use crate::ecs_state::DeploymentStatus;
use crate::ids::{DeploymentId, ServiceDeploymentArn, TaskDefinitionArn};
use crate::rollout::DeploymentView;
use crate::signal::Wait;
use crate::target::Target;
use anyhow::{Result, bail};
use std::time::Duration;

/// Pure: how the service's PRIMARY deployment differs from the one pre-flight recorded, or None
/// when it is the same one.
pub(crate) fn primary_changed(
    recorded: &DeploymentId,
    recorded_task_definition: &TaskDefinitionArn,
    now: &[DeploymentView],
) -> Option<String> {
    let primary = now.iter().find(|d| d.status == DeploymentStatus::Primary);
    match primary {
        Some(p) if p.id == *recorded => None,
        Some(p) => Some(format!(
            "its PRIMARY deployment is now {} ({}), not {recorded} ({recorded_task_definition}) as pre-flight read it",
            p.id, p.task_definition
        )),
        None => Some(format!(
            "it has no PRIMARY deployment now (pre-flight read {recorded} ({recorded_task_definition}))"
        )),
    }
}

/// Pure: the deployment a write that answered with an error started after all: a PRIMARY one of
/// `ours` that is not the PRIMARY recorded before the write (None on a first deploy).
pub(crate) fn took_effect(
    before: Option<&DeploymentId>,
    ours: &TaskDefinitionArn,
    now: &[DeploymentView],
) -> Option<DeploymentId> {
    now.iter()
        .find(|d| d.status == DeploymentStatus::Primary)
        .filter(|d| d.task_definition == *ours && Some(&d.id) != before)
        .map(|d| d.id.clone())
}

/// Just before UpdateService: refuses (Err) when the service's PRIMARY deployment is no longer the
/// one pre-flight recorded: a deploy over it would supersede someone else's deploy, and a rollback
/// would go to a revision that no longer runs.
pub(crate) async fn unchanged_since_preflight(
    aws: &Aws,
    target: &Target,
    (recorded, recorded_task_definition): (&DeploymentId, &TaskDefinitionArn),
) -> Result<()> {
    let service = ecs::describe_service(aws, target).await?;
    if let Some(change) = primary_changed(
        recorded,
        recorded_task_definition,
        &ecs::deployments(&service),
    ) {
        bail!(
            "service `{}` changed since pre-flight: {change}; another deploy went ahead meanwhile, so this one did not update the service (nothing was changed; the registered revision is left unused). Re-run to deploy over it",
            target.service
        );
    }
    Ok(())
}

/// After UpdateService or CreateService answered with an error: reads the service (three times,
/// a second apart, as reads are eventually consistent) for a new PRIMARY deployment of `ours`.
/// Some(its id and service deployment) when the write took effect; None when it did not, or the
/// service cannot be read.
pub(crate) async fn write_took_effect(
    aws: &Aws,
    target: &Target,
    (before, ours): (Option<&DeploymentId>, &TaskDefinitionArn),
    wait: &Wait,
) -> Option<(DeploymentId, Option<ServiceDeploymentArn>)> {
    for read in 0..3 {
        if read > 0 && wait.pause(Duration::from_secs(1)).await.is_err() {
            return None;
        }
        let Ok(Ok(service)) = ecs::find_service(aws, target).await else {
            continue;
        };
        if let Some(id) = took_effect(before, ours, &ecs::deployments(&service)) {
            let staged = service
                .current_service_deployment()
                .map(ServiceDeploymentArn::from);
            return Some((id, staged));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(id: &str, status: &str, td: &str) -> DeploymentView {
        DeploymentView {
            id: id.into(),
            status: status.into(),
            task_definition: td.into(),
            ..Default::default()
        }
    }

    #[test]
    fn an_update_is_refused_when_the_primary_changed_since_preflight() {
        let (rec, rec_td) = (DeploymentId::from("d1"), TaskDefinitionArn::from("td:1"));
        for (now, changed, why) in [
            (vec![d("d1", "PRIMARY", "td:1")], false, "nothing changed"),
            (
                vec![d("d2", "PRIMARY", "td:2"), d("d1", "ACTIVE", "td:1")],
                true,
                "someone deployed td:2 meanwhile (a --run-task migration ran)",
            ),
            (
                vec![d("d2", "PRIMARY", "td:2")],
                true,
                "another --wait-for-idle run's deploy already completed",
            ),
            (
                vec![d("d3", "PRIMARY", "td:1")],
                true,
                "a forced redeploy of the same revision is a change too",
            ),
            (vec![], true, "no PRIMARY at all"),
        ] {
            assert_eq!(
                primary_changed(&rec, &rec_td, &now).is_some(),
                changed,
                "{why}"
            );
        }
    }

    #[test]
    fn a_write_error_took_effect_only_when_our_revision_became_primary() {
        let ours = TaskDefinitionArn::from("td:2");
        let d1 = DeploymentId::from("d1");
        for (before, now, want, why) in [
            (
                Some(&d1),
                vec![d("d2", "PRIMARY", "td:2"), d("d1", "ACTIVE", "td:1")],
                Some("d2"),
                "UpdateService applied, its answer lost",
            ),
            (
                Some(&d1),
                vec![d("d1", "PRIMARY", "td:1")],
                None,
                "the write never reached ECS",
            ),
            (
                Some(&d1),
                vec![d("d3", "PRIMARY", "td:3"), d("d1", "ACTIVE", "td:1")],
                None,
                "someone else's deploy, not ours",
            ),
            (
                Some(&d1),
                vec![d("d1", "PRIMARY", "td:2")],
                None,
                "our revision, but the deployment that ran before (a forced redeploy that did not land)",
            ),
            (
                None,
                vec![d("d9", "PRIMARY", "td:2")],
                Some("d9"),
                "CreateService applied, its answer lost",
            ),
        ] {
            assert_eq!(
                took_effect(before, &ours, &now),
                want.map(DeploymentId::from),
                "{why}"
            );
        }
    }
}
