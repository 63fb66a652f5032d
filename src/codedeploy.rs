//! Services under the CODE_DEPLOY deployment controller: the AppSpec deployer sends CodeDeploy,
//! what one look at a CodeDeploy deployment says, and the verdict on it. Pure.

use crate::ids::TaskDefinitionArn;
use crate::recovery::Recovery;
use crate::rollout::{Busy, Failure, Progress, Snapshot, Verdict, Watched, tasks_failed};
use crate::strategy::CodeDeployView;
use serde_json::{Value, json};

/// The application and deployment group the official action assumes for a service.
pub(crate) fn default_names(cluster: &str, service: &str) -> (String, String) {
    (
        format!("AppECS-{cluster}-{service}"),
        format!("DgpECS-{cluster}-{service}"),
    )
}

/// What a CodeDeploy deployment of the service needs from the service itself.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Placement {
    pub(crate) container: String,
    pub(crate) port: i64,
    pub(crate) platform_version: Option<String>,
    /// `networkConfiguration.awsvpcConfiguration` as DescribeServices gives it (camelCase JSON).
    pub(crate) awsvpc: Option<Value>,
    /// `capacityProviderStrategy` as DescribeServices gives it (camelCase JSON).
    pub(crate) capacity_providers: Option<Value>,
}

/// Pure: the AppSpec (version 0.0) for deploying `task_definition` to the service.
pub(crate) fn appspec(task_definition: &str, placement: &Placement) -> Value {
    let mut properties = json!({
        "TaskDefinition": task_definition,
        "LoadBalancerInfo": {"ContainerName": placement.container, "ContainerPort": placement.port},
    });
    if let Some(version) = &placement.platform_version {
        properties["PlatformVersion"] = json!(version);
    }
    if let Some(vpc) = &placement.awsvpc {
        let mut network =
            json!({"Subnets": vpc["subnets"], "SecurityGroups": vpc["securityGroups"]});
        if let Some(ip) = vpc.get("assignPublicIp") {
            network["AssignPublicIp"] = ip.clone();
        }
        properties["NetworkConfiguration"] = json!({"AwsvpcConfiguration": network});
    }
    if let Some(strategy) = placement
        .capacity_providers
        .as_ref()
        .and_then(Value::as_array)
    {
        let items: Vec<Value> = strategy
            .iter()
            .map(|s| {
                json!({"CapacityProvider": s["capacityProvider"], "Weight": s["weight"],
                    "Base": s.get("base").cloned().unwrap_or(json!(0))})
            })
            .collect();
        properties["CapacityProviderStrategy"] = json!(items);
    }
    json!({
        "version": 0.0,
        "Resources": [{"TargetService": {"Type": "AWS::ECS::Service", "Properties": properties}}]
    })
}

/// Pure: what the AppSpec needs from the service as DescribeServices gives it (JSON).
pub(crate) fn placement(service: &Value) -> Result<Placement, String> {
    let lb = service["loadBalancers"]
        .as_array()
        .and_then(|l| l.first())
        .ok_or(
            "a CODE_DEPLOY service needs a load balancer (`loadBalancers`), and this one has none",
        )?;
    Ok(Placement {
        container: lb["containerName"]
            .as_str()
            .ok_or("`loadBalancers[0].containerName` is missing")?
            .to_string(),
        port: lb["containerPort"]
            .as_i64()
            .ok_or("`loadBalancers[0].containerPort` is missing")?,
        platform_version: service["platformVersion"].as_str().map(String::from),
        awsvpc: service["networkConfiguration"]
            .get("awsvpcConfiguration")
            .cloned(),
        capacity_providers: service
            .get("capacityProviderStrategy")
            .filter(|s| s.as_array().is_some_and(|a| !a.is_empty()))
            .cloned(),
    })
}

/// Pure: after a failure, what to do with the CodeDeploy deployment.
pub(crate) fn recovery(
    cd: &CodeDeployView,
    rollback: bool,
    previous: Option<&TaskDefinitionArn>,
) -> Recovery {
    if let Some(by) = &cd.rollback_deployment {
        return Recovery::FollowCodeDeploy(by.clone());
    }
    match (cd.in_flight(), rollback) {
        (true, true) => Recovery::CodeDeployStop {
            deployment: cd.id.clone(),
            previous: previous.cloned(),
        },
        (true, false) => {
            Recovery::Leave("--no-rollback: the CodeDeploy deployment was left as it is".into())
        }
        (false, _) => Recovery::CodeDeployOver {
            deployment: cd.id.clone(),
            status: cd.status.clone(),
            previous: previous.cloned(),
        },
    }
}

/// A task set of a CODE_DEPLOY service: id, status (PRIMARY, ACTIVE, DRAINING) and task definition.
pub(crate) type TaskSet = (String, String, String);

/// Pure: the rollback target of a CODE_DEPLOY service (its PRIMARY task set's task definition, or
/// the service's own when it lists no task sets), or a deployment in progress (another task set).
pub(crate) fn rollback_target(
    task_sets: &[TaskSet],
    service_task_definition: &str,
) -> Result<TaskDefinitionArn, Busy> {
    if let Some((id, _, td)) = task_sets.iter().find(|(_, status, _)| status != "PRIMARY") {
        return Err(Busy::InProgress {
            deployment: id.as_str().into(),
            task_definition: td.as_str().into(),
        });
    }
    let primary = task_sets.iter().find(|(_, status, _)| status == "PRIMARY");
    match (primary, service_task_definition) {
        (Some((_, _, td)), _) => Ok(td.as_str().into()),
        (None, td) if !td.is_empty() => Ok(td.into()),
        _ => Err(Busy::NoCompleted),
    }
}

/// Pure: where the watched CodeDeploy deployment stands. `watched.until` names a lifecycle event
/// (done once it Succeeded with the replacement tasks healthy); `watched.pause_at` set means stop
/// when the deployment is Ready (waits for ContinueDeployment: `--smoke-test`).
pub(crate) fn verdict(snapshot: &Snapshot, watched: &Watched) -> Verdict {
    let Some(cd) = &snapshot.codedeploy else {
        return Verdict::InProgress(progress(snapshot, watched, None));
    };
    match cd.status.as_str() {
        "Succeeded" => return Verdict::Healthy,
        "Failed" | "Stopped" => {
            return Verdict::Failed(Failure::CodeDeploy {
                status: cd.status.clone(),
                reason: cd.why(),
                rollback: cd.rollback_deployment.clone(),
            });
        }
        _ => {}
    }
    if watched.rollback {
        return Verdict::InProgress(progress(snapshot, watched, Some(cd)));
    }
    if let Some(failure) = tasks_failed(snapshot, watched) {
        return Verdict::Failed(failure);
    }
    if cd.status == "Ready" && watched.pause_at.is_some() {
        return Verdict::Paused(crate::strategy::HookView {
            id: "READY_WAIT".into(),
            pause: true,
            status: "AWAITING_ACTION".into(),
            expires: None,
        });
    }
    let progress = progress(snapshot, watched, Some(cd));
    let healthy = progress.running > 0 && progress.healthy == progress.running;
    if let Some(event) = &watched.until
        && cd.event_succeeded(event)
        && healthy
    {
        return Verdict::Healthy;
    }
    Verdict::InProgress(progress)
}

fn progress(snapshot: &Snapshot, watched: &Watched, cd: Option<&CodeDeployView>) -> Progress {
    let state = cd.map_or_else(|| "Created".into(), |c| c.status.clone());
    Progress {
        stage: Some(cd.map_or_else(|| "CodeDeploy: starting".into(), CodeDeployView::describe)),
        ..Progress::of_tasks(snapshot, watched, state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::{EventView, parse_event};

    #[test]
    fn the_appspec_carries_the_service_network_and_placement() {
        let placement = Placement {
            container: "web".into(),
            port: 8080,
            platform_version: Some("LATEST".into()),
            awsvpc: Some(
                json!({"subnets": ["subnet-a"], "securityGroups": ["sg-1"], "assignPublicIp": "DISABLED"}),
            ),
            capacity_providers: Some(json!([{"capacityProvider": "FARGATE_SPOT", "weight": 1}])),
        };
        let spec = appspec("arn:td/web:9", &placement);
        let props = &spec["Resources"][0]["TargetService"]["Properties"];
        assert_eq!(
            spec["Resources"][0]["TargetService"]["Type"],
            "AWS::ECS::Service"
        );
        assert_eq!(props["TaskDefinition"], "arn:td/web:9");
        assert_eq!(
            props["LoadBalancerInfo"],
            json!({"ContainerName": "web", "ContainerPort": 8080})
        );
        assert_eq!(props["PlatformVersion"], "LATEST");
        assert_eq!(
            props["NetworkConfiguration"]["AwsvpcConfiguration"],
            json!({"Subnets": ["subnet-a"], "SecurityGroups": ["sg-1"], "AssignPublicIp": "DISABLED"})
        );
        assert_eq!(
            props["CapacityProviderStrategy"],
            json!([{"CapacityProvider": "FARGATE_SPOT", "Weight": 1, "Base": 0}])
        );
        let bare = appspec(
            "arn:td/web:9",
            &Placement {
                container: "web".into(),
                port: 80,
                ..Default::default()
            },
        );
        let props = &bare["Resources"][0]["TargetService"]["Properties"];
        assert!(
            props.get("NetworkConfiguration").is_none() && props.get("PlatformVersion").is_none()
        );
        assert_eq!(
            default_names("prod", "web"),
            ("AppECS-prod-web".into(), "DgpECS-prod-web".into())
        );
        assert_eq!(parse_event("allowtraffic"), Some("AllowTraffic"));
        assert_eq!(parse_event("BAKE_TIME"), None);
    }

    #[test]
    fn codedeploy_decides_and_deployer_fails_fast() {
        use crate::ecs_state::{TargetState, TaskStatus};
        use crate::rollout::{TargetView, TaskView};
        let look = |status: &str, events: &[(&str, &str)], healthy: bool| Snapshot {
            desired: 1,
            tasks: vec![TaskView {
                arn: "arn:task/1".into(),
                started_by: "ecs-svc/green".into(),
                last_status: TaskStatus::Running,
                ip: Some("10.0.0.1".into()),
                running_for: Some(std::time::Duration::from_secs(60)),
                ..Default::default()
            }],
            target_groups: vec!["arn:tg/green".into()],
            targets: vec![TargetView {
                target_group: "arn:tg/green".into(),
                id: "10.0.0.1".into(),
                state: if healthy {
                    TargetState::Healthy
                } else {
                    TargetState::Unhealthy
                },
                ..Default::default()
            }],
            codedeploy: Some(CodeDeployView {
                id: "d-1".into(),
                status: status.into(),
                error: Some("boom".into()),
                events: events
                    .iter()
                    .map(|(n, s)| EventView {
                        name: n.to_string(),
                        status: s.to_string(),
                        diagnostics: None,
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let watched = |until: Option<&str>, pause: bool, rollback: bool| Watched {
            max_failed_tasks: 2,
            until: until.map(String::from),
            pause_at: pause.then(|| "READY_WAIT".to_string()),
            rollback,
            codedeploy: Some("d-1".into()),
            ..Default::default()
        };
        let kind = |v: Verdict| match v {
            Verdict::InProgress(_) => "in_progress".to_string(),
            Verdict::Healthy => "healthy".into(),
            Verdict::Paused(h) => format!("paused {}", h.id),
            Verdict::Failed(Failure::CodeDeploy { status, .. }) => format!("failed {status}"),
            Verdict::Failed(f) => format!("{f:?}")
                .split([' ', '{', '('])
                .next()
                .unwrap_or_default()
                .to_string(),
        };
        let allow = [("Install", "Succeeded"), ("AllowTraffic", "Succeeded")];
        let cases: Vec<(Snapshot, Watched, &str, &str)> = vec![
            (
                look("Succeeded", &allow, true),
                watched(None, false, false),
                "healthy",
                "Succeeded",
            ),
            (
                look("InProgress", &allow, true),
                watched(None, false, false),
                "in_progress",
                "termination wait",
            ),
            (
                look("InProgress", &allow, true),
                watched(Some("AllowTraffic"), false, false),
                "healthy",
                "--until AllowTraffic",
            ),
            (
                look("InProgress", &[("Install", "InProgress")], true),
                watched(Some("AllowTraffic"), false, false),
                "in_progress",
                "not there yet",
            ),
            (
                look("Failed", &[("Install", "Failed")], false),
                watched(None, false, false),
                "failed Failed",
                "CodeDeploy failed",
            ),
            (
                look("Stopped", &[], false),
                watched(None, false, false),
                "failed Stopped",
                "stopped",
            ),
            (
                look("InProgress", &[("AllowTestTraffic", "Succeeded")], false),
                watched(None, false, false),
                "UnhealthyTarget",
                "green unhealthy: fail fast",
            ),
            (
                look("Ready", &[("AllowTestTraffic", "Succeeded")], true),
                watched(None, true, false),
                "paused READY_WAIT",
                "--smoke-test at Ready",
            ),
            (
                look("Ready", &[("AllowTestTraffic", "Succeeded")], true),
                watched(None, false, false),
                "in_progress",
                "Ready without a smoke test waits",
            ),
            (
                look("InProgress", &[], false),
                watched(None, false, true),
                "in_progress",
                "the rollback goes on",
            ),
            (
                look("Succeeded", &[], false),
                watched(None, false, true),
                "healthy",
                "the rollback succeeded",
            ),
        ];
        for (snapshot, watched, want, why) in cases {
            assert_eq!(kind(verdict(&snapshot, &watched)), want, "{why}");
        }
    }

    #[test]
    fn the_rollback_target_is_the_primary_task_set() {
        let ts =
            |id: &str, status: &str, td: &str| (id.to_string(), status.to_string(), td.to_string());
        assert_eq!(
            rollback_target(&[ts("ecs-svc/1", "PRIMARY", "web:4")], "web:4"),
            Ok("web:4".into())
        );
        assert_eq!(
            rollback_target(&[], "web:4"),
            Ok("web:4".into()),
            "no task sets listed"
        );
        assert!(matches!(
            rollback_target(&[ts("ecs-svc/1", "PRIMARY", "web:4"), ts("ecs-svc/2", "ACTIVE", "web:5")], "web:4"),
            Err(Busy::InProgress { deployment, .. }) if deployment.as_str() == "ecs-svc/2"
        ));
        assert_eq!(rollback_target(&[], ""), Err(Busy::NoCompleted));
    }

    #[test]
    fn after_a_failure_codedeploy_rolls_back_itself() {
        let cd = |status: &str, rollback: Option<&str>| CodeDeployView {
            id: "d-1".into(),
            status: status.into(),
            rollback_deployment: rollback.map(String::from),
            ..Default::default()
        };
        let cases = [
            (
                cd("InProgress", None),
                true,
                Recovery::CodeDeployStop {
                    deployment: "d-1".into(),
                    previous: None,
                },
                "in flight: StopDeployment with rollback",
            ),
            (
                cd("Ready", None),
                true,
                Recovery::CodeDeployStop {
                    deployment: "d-1".into(),
                    previous: None,
                },
                "waiting: stop it too",
            ),
            (
                cd("Failed", Some("d-2")),
                true,
                Recovery::FollowCodeDeploy("d-2".into()),
                "CodeDeploy rolls back: follow",
            ),
            (
                cd("Failed", Some("d-2")),
                false,
                Recovery::FollowCodeDeploy("d-2".into()),
                "even with --no-rollback",
            ),
        ];
        for (view, rollback, want, why) in cases {
            assert_eq!(recovery(&view, rollback, None), want, "{why}");
        }
        assert!(
            matches!(recovery(&cd("InProgress", None), false, None), Recovery::Leave(why) if why.starts_with("--no-rollback"))
        );
        assert_eq!(
            recovery(&cd("Failed", None), true, Some(&"web:1".into())),
            Recovery::CodeDeployOver {
                deployment: cd("Failed", None).id,
                status: "Failed".into(),
                previous: Some("web:1".into()),
            },
            "over without a rollback: see whether the original still serves"
        );
        let service = json!({"loadBalancers": [{"targetGroupArn": "arn:tg", "containerName": "web", "containerPort": 8080}],
            "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["s-1"]}}, "platformVersion": "1.4.0"});
        let p = placement(&service).expect("placement");
        assert_eq!(
            (p.container.as_str(), p.port, p.platform_version.as_deref()),
            ("web", 8080, Some("1.4.0"))
        );
        assert!(
            placement(&json!({}))
                .unwrap_err()
                .contains("needs a load balancer")
        );
    }
}
