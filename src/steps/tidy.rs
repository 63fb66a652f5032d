//! After a healthy deploy: deregister old revisions (`--keep-revisions`), and warn when the healthy
//! tasks all sit in one availability zone although the service's subnets span several.
//! Neither changes the outcome: the deploy already succeeded, so trouble here is a warning.

use crate::aws::{Aws, reads};
use crate::config::DeployConfig;
use crate::ecs_state::TaskStatus;
use crate::report::output::Output;
use crate::rollout::Snapshot;
use crate::task_definition::TaskDefinition;
use anyhow::{Context, Result};
use std::collections::{BTreeMap, BTreeSet, HashSet};

pub(crate) async fn after_healthy(
    cfg: &DeployConfig,
    aws: &Aws,
    new: &TaskDefinition,
    task_definition: &str,
    previous: Option<&str>,
    snapshot: &Snapshot,
    out: &Output,
) {
    if let Some(keep) = cfg.keep_revisions {
        let mut protect: HashSet<String> = HashSet::from([task_definition.to_string()]);
        protect.extend(previous.map(String::from));
        if let Err(err) = revisions(aws, cfg, new.family(), keep, protect, out).await {
            out.warn(&format!("{err:#}"));
        }
    }
    match spread(aws, snapshot).await {
        Ok(Some(warning)) => out.warn(&warning),
        Ok(None) => {}
        Err(err) => out.warn(&format!(
            "could not check how the tasks spread over availability zones: {err:#}"
        )),
    }
}

/// Pure: the revisions to deregister. `revisions` are ACTIVE ARNs of one family, any order; the
/// newest `keep` stay, and so does every protected one (the rollback target, anything in use).
pub(crate) fn to_deregister(
    revisions: &[String],
    keep: u32,
    protect: &HashSet<String>,
) -> Vec<String> {
    let mut numbered: Vec<(u64, &String)> = revisions
        .iter()
        .filter_map(|arn| Some((arn.rsplit(':').next()?.parse().ok()?, arn)))
        .collect();
    numbered.sort_by_key(|&(revision, _)| std::cmp::Reverse(revision));
    numbered
        .into_iter()
        .skip(keep as usize)
        .filter(|(_, arn)| !protect.contains(*arn))
        .map(|(_, arn)| arn.clone())
        .collect()
}

async fn revisions(
    aws: &Aws,
    cfg: &DeployConfig,
    family: &str,
    keep: u32,
    mut protect: HashSet<String>,
    out: &Output,
) -> Result<()> {
    let what = format!("tidying revisions of `{family}` (--keep-revisions {keep})");
    let all: Vec<String> = aws
        .ecs
        .list_task_definitions()
        .family_prefix(family)
        .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .with_context(|| format!("{what}: failed to list the family's revisions"))?
        .into_iter()
        // familyPrefix is a prefix: `web` also lists `web-worker`.
        .filter(|arn| {
            arn.rsplit_once(':')
                .is_some_and(|(head, _)| head.ends_with(&format!("/{family}")))
        })
        .collect();
    if all.len() <= keep as usize {
        return Ok(());
    }
    protect.extend(
        in_use(aws, cfg)
            .await
            .with_context(|| format!("{what}: failed to find the revisions in use"))?,
    );
    let gone = to_deregister(&all, keep, &protect);
    for arn in &gone {
        aws.ecs
            .deregister_task_definition()
            .task_definition(arn)
            .send()
            .await
            .with_context(|| format!("{what}: failed to deregister {arn}"))?;
    }
    if !gone.is_empty() {
        out.info(&format!(
            "deregistered {} old revision(s) of `{family}`: {}",
            gone.len(),
            gone.iter()
                .map(|a| a.rsplit('/').next().unwrap_or(a))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(())
}

/// Task definitions in use: every deployment of every service in the cluster, and every task of
/// the family running in any cluster of the account and region.
async fn in_use(aws: &Aws, cfg: &DeployConfig) -> Result<HashSet<String>> {
    let mut used = HashSet::new();
    let services: Vec<String> = aws
        .ecs
        .list_services()
        .cluster(&cfg.target.cluster)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await?;
    for chunk in services.chunks(10) {
        let described = aws
            .ecs
            .describe_services()
            .cluster(&cfg.target.cluster)
            .set_services(Some(chunk.to_vec()))
            .send()
            .await?;
        for service in described.services() {
            used.extend(service.task_definition().map(String::from));
            used.extend(
                service
                    .deployments()
                    .iter()
                    .filter_map(|d| d.task_definition().map(String::from)),
            );
        }
    }
    let clusters: Vec<String> = aws
        .ecs
        .list_clusters()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await?;
    for cluster in clusters {
        let tasks: Vec<String> = aws
            .ecs
            .list_tasks()
            .cluster(&cluster)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await?;
        for chunk in tasks.chunks(100) {
            let described = aws
                .ecs
                .describe_tasks()
                .cluster(&cluster)
                .set_tasks(Some(chunk.to_vec()))
                .send()
                .await?;
            used.extend(
                described
                    .tasks()
                    .iter()
                    .filter_map(|t| t.task_definition_arn().map(String::from)),
            );
        }
    }
    Ok(used)
}

/// Pure: a warning when two or more tasks all run in one zone while the subnets span several.
pub(crate) fn spread_warning(
    task_zones: &[String],
    subnet_zones: &BTreeSet<String>,
) -> Option<String> {
    let zones: BTreeSet<&String> = task_zones.iter().collect();
    if task_zones.len() < 2 || subnet_zones.len() < 2 || zones.len() != 1 {
        return None;
    }
    Some(format!(
        "all {} healthy tasks run in {}, although the service's subnets span {}: losing that one availability zone takes the whole service down",
        task_zones.len(),
        zones.iter().next().expect("one zone"),
        subnet_zones.iter().cloned().collect::<Vec<_>>().join(", ")
    ))
}

/// From the last look (the healthy tasks and the service's subnets) and the subnets' zones.
async fn spread(aws: &Aws, snapshot: &Snapshot) -> Result<Option<String>> {
    if snapshot.subnets.len() < 2 {
        return Ok(None);
    }
    let subnet_zones: BTreeMap<String, String> = reads::zones(&aws.ec2, &snapshot.subnets)
        .await
        .context("failed to describe the service's subnets")?
        .into_iter()
        .collect();
    let zones: BTreeSet<String> = subnet_zones.values().cloned().collect();
    let task_zones: Vec<String> = snapshot
        .tasks
        .iter()
        .filter(|t| t.last_status == TaskStatus::Running)
        .filter_map(|t| {
            t.zone
                .clone()
                .or_else(|| subnet_zones.get(t.subnet.as_deref()?).cloned())
        })
        .collect();
    Ok(spread_warning(&task_zones, &zones))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_and_everything_protected() {
        let arn = |n: u32| format!("arn:aws:ecs:us-east-1:1:task-definition/web:{n}");
        let all: Vec<String> = (1..=8).map(arn).collect();
        let protect = |ns: &[u32]| ns.iter().map(|&n| arn(n)).collect::<HashSet<_>>();
        for (keep, protected, want) in [
            (3, vec![8, 7], vec![5, 4, 3, 2, 1]),
            (3, vec![8, 2], vec![5, 4, 3, 1]),
            (1, vec![8, 7, 3], vec![6, 5, 4, 2, 1]),
            (10, vec![8], vec![]),
            (8, vec![], vec![]),
        ] {
            let got = to_deregister(&all, keep, &protect(&protected));
            assert_eq!(
                got,
                want.iter().map(|&n| arn(n)).collect::<Vec<_>>(),
                "keep {keep}, protect {protected:?}"
            );
        }
    }

    #[test]
    fn warns_only_when_several_tasks_share_one_zone_of_several() {
        let zones = |z: &[&str]| z.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let two: BTreeSet<String> = ["us-east-1a", "us-east-1b"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let one: BTreeSet<String> = ["us-east-1a"].iter().map(|s| s.to_string()).collect();
        assert!(
            spread_warning(&zones(&["us-east-1a", "us-east-1a"]), &two)
                .unwrap()
                .contains("all 2 healthy tasks run in us-east-1a")
        );
        assert!(spread_warning(&zones(&["us-east-1a", "us-east-1b"]), &two).is_none());
        assert!(spread_warning(&zones(&["us-east-1a"]), &two).is_none());
        assert!(spread_warning(&zones(&["us-east-1a", "us-east-1a"]), &one).is_none());
    }
}
