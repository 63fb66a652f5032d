//! Elastic Load Balancing reads: the health of the targets in a service's target groups, and the
//! URL a listener answers on (for `--smoke-test`). verify's DescribeTargetGroups is batched in
//! `reads`.

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

/// The URL a listener rule (ALB) or listener (NLB) answers on: `scheme://load-balancer-dns:port`.
pub(crate) async fn listener_url(aws: &Aws, rule_or_listener: &str) -> Result<String> {
    let listener = listener_of(rule_or_listener);
    let listeners = aws
        .elb
        .describe_listeners()
        .listener_arns(&listener)
        .send()
        .await
        .with_context(|| format!("failed to describe listener `{listener}`"))?;
    let l = listeners
        .listeners()
        .first()
        .with_context(|| format!("ELB does not know listener `{listener}`"))?;
    let lb = l.load_balancer_arn().unwrap_or_default();
    let balancers = aws
        .elb
        .describe_load_balancers()
        .load_balancer_arns(lb)
        .send()
        .await
        .with_context(|| format!("failed to describe load balancer `{lb}`"))?;
    let dns = balancers
        .load_balancers()
        .first()
        .and_then(|b| b.dns_name())
        .with_context(|| format!("load balancer `{lb}` has no DNS name"))?;
    let scheme = l
        .protocol()
        .map_or("http".to_string(), |p| p.as_str().to_ascii_lowercase());
    Ok(format!("{scheme}://{dns}:{}", l.port().unwrap_or(80)))
}

/// Pure: the listener a rule belongs to (`…:listener-rule/app/LB/ID/LISTENER/RULE` →
/// `…:listener/app/LB/ID/LISTENER`); a listener ARN as it is.
fn listener_of(arn: &str) -> String {
    match arn.split_once(":listener-rule/") {
        Some((head, path)) => {
            let parts: Vec<&str> = path.split('/').collect();
            let listener = &parts[..parts.len().saturating_sub(1)];
            format!("{head}:listener/{}", listener.join("/"))
        }
        None => arn.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_rule_belongs_to_its_listener() {
        let rule = "arn:aws:elasticloadbalancing:us-east-1:1:listener-rule/app/web/50dc/f2f7/9683";
        assert_eq!(
            super::listener_of(rule),
            "arn:aws:elasticloadbalancing:us-east-1:1:listener/app/web/50dc/f2f7"
        );
        let listener = "arn:aws:elasticloadbalancing:us-east-1:1:listener/net/web/50dc/f2f7";
        assert_eq!(super::listener_of(listener), listener);
    }
}
