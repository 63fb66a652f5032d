//! Elastic Load Balancing reads: the health of the targets in a service's target groups.

use crate::aws::Aws;
use crate::aws::pace;
use crate::rollout::TargetView;
use anyhow::{Context, Result};

/// Every target of `target_groups` with its state and ELB's reason (one paced call per group).
pub(crate) async fn target_health(aws: &Aws, target_groups: &[String]) -> Result<Vec<TargetView>> {
    let mut targets = Vec::new();
    for tg in target_groups {
        pace::call(pace::Group::ElbDescribes).await;
        let health = aws
            .elb
            .describe_target_health()
            .target_group_arn(tg)
            .send()
            .await
            .with_context(|| format!("failed to describe target health of `{tg}`"))?;
        for d in health.target_health_descriptions() {
            let h = d.target_health();
            targets.push(TargetView {
                target_group: tg.clone(),
                id: d
                    .target()
                    .and_then(|t| t.id())
                    .unwrap_or_default()
                    .to_string(),
                port: d.target().and_then(|t| t.port()),
                state: h
                    .and_then(|h| h.state())
                    .map(|s| s.as_str().into())
                    .unwrap_or_default(),
                reason: h.and_then(|h| h.reason()).map(|r| r.as_str().to_string()),
                description: h.and_then(|h| h.description()).map(String::from),
            });
        }
    }
    Ok(targets)
}
