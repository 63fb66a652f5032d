//! ECS-native deployment strategies (BLUE_GREEN, LINEAR, CANARY): the service's shape as pre-flight
//! reads it, the stages a service deployment goes through, and what one look at a service
//! deployment says. Pure: the decisions built on these are in `rollout`.

use std::time::Duration;

/// The lifecycle stages in the order ECS runs them (linear and canary repeat the production shift).
/// Kept here, not taken from the SDK enum, whose order is not a contract; PRE_PRODUCTION_TRAFFIC_SHIFT
/// is a hook stage that the deployment's `lifecycleStage` never reports.
pub(crate) const STAGES: [&str; 11] = [
    "RECONCILE_SERVICE",
    "PRE_SCALE_UP",
    "SCALE_UP",
    "POST_SCALE_UP",
    "TEST_TRAFFIC_SHIFT",
    "POST_TEST_TRAFFIC_SHIFT",
    "PRE_PRODUCTION_TRAFFIC_SHIFT",
    "PRODUCTION_TRAFFIC_SHIFT",
    "POST_PRODUCTION_TRAFFIC_SHIFT",
    "BAKE_TIME",
    "CLEAN_UP",
];

/// Stages that take no lifecycle hook.
const NO_HOOKS: [&str; 3] = ["SCALE_UP", "BAKE_TIME", "CLEAN_UP"];
/// Stages a PAUSE hook may not sit on (ECS rejects them).
const NO_PAUSE: [&str; 2] = ["TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT"];

/// Where a stage is in the order; None for a stage this version does not know.
pub(crate) fn stage_index(stage: &str) -> Option<usize> {
    STAGES.iter().position(|s| *s == stage)
}

/// `--until STAGE`, checked: one of the stages a deployment reports.
pub(crate) fn parse_stage(text: &str) -> Result<String, String> {
    if let Some(event) = parse_event(text) {
        return Ok(event.to_string());
    }
    let upper = text.trim().to_ascii_uppercase();
    match stage_index(&upper) {
        Some(_) if upper != "PRE_PRODUCTION_TRAFFIC_SHIFT" => Ok(upper),
        _ => Err(format!(
            "invalid --until `{text}`: expected one of {}",
            STAGES
                .iter()
                .filter(|s| **s != "PRE_PRODUCTION_TRAFFIC_SHIFT")
                .copied()
                .collect::<Vec<_>>()
                .join(", ")
        ) + &format!(
            " (or, for a CODE_DEPLOY service, one of {})",
            EVENTS.join(", ")
        )),
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) enum Strategy {
    #[default]
    Rolling,
    BlueGreen,
    Linear {
        step_percent: f64,
        step_bake: Duration,
    },
    Canary {
        canary_percent: f64,
        canary_bake: Duration,
    },
    /// A strategy this version does not know.
    Other(String),
}

/// A lifecycle hook as the service declares it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Hook {
    pub(crate) pause: bool,
    pub(crate) stages: Vec<String>,
}

/// How the service rolls out, as pre-flight reads it from DescribeServices.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Shape {
    pub(crate) strategy: Strategy,
    pub(crate) bake: Option<Duration>,
    /// The alternate target group (`advancedConfiguration`), by name.
    pub(crate) alternate: Option<String>,
    pub(crate) test_listener_rule: Option<String>,
    pub(crate) production_listener_rule: Option<String>,
    pub(crate) hooks: Vec<Hook>,
    /// Under the CODE_DEPLOY controller: CodeDeploy rolls it out, deployer watches CodeDeploy.
    pub(crate) codedeploy: bool,
}

fn minutes(d: Duration) -> String {
    format!("{} min", d.as_secs() / 60)
}

impl Shape {
    /// Everything but ROLLING (under the ECS controller) is watched through its service deployment.
    pub(crate) fn staged(&self) -> bool {
        !self.codedeploy && !matches!(self.strategy, Strategy::Rolling)
    }

    /// "blue/green, bake 10 min, alternate target group web-tg-2, PAUSE at POST_TEST_TRAFFIC_SHIFT"
    pub(crate) fn describe(&self) -> String {
        if self.codedeploy {
            return "CodeDeploy blue/green (the CODE_DEPLOY controller)".into();
        }
        let mut parts = vec![match &self.strategy {
            Strategy::Rolling => "rolling update".to_string(),
            Strategy::BlueGreen => "blue/green".to_string(),
            Strategy::Linear {
                step_percent,
                step_bake,
            } => format!(
                "linear, {step_percent}% a step, {} between steps",
                minutes(*step_bake)
            ),
            Strategy::Canary {
                canary_percent,
                canary_bake,
            } => format!(
                "canary, {canary_percent}% first, then the rest after {}",
                minutes(*canary_bake)
            ),
            Strategy::Other(name) => name.clone(),
        }];
        if let Some(bake) = self.bake.filter(|_| self.staged()) {
            parts.push(format!("bake {}", minutes(bake)));
        }
        if let Some(alternate) = &self.alternate {
            parts.push(format!("alternate target group {alternate}"));
        }
        for hook in &self.hooks {
            let kind = if hook.pause { "PAUSE" } else { "Lambda hook" };
            parts.push(format!("{kind} at {}", hook.stages.join(", ")));
        }
        parts.join(", ")
    }

    /// Whether a PAUSE hook waits at `stage`.
    pub(crate) fn pauses_at(&self, stage: &str) -> bool {
        self.hooks
            .iter()
            .any(|h| h.pause && h.stages.iter().any(|s| s == stage))
    }

    /// Pure: what ECS would reject, and what a flag needs, said before any write.
    pub(crate) fn check(&self, until: Option<&str>, smoke_test: bool) -> Result<(), String> {
        if let Strategy::Other(name) = &self.strategy {
            return Err(format!(
                "the service's deployment strategy `{name}` is not one deployer knows (ROLLING, BLUE_GREEN, LINEAR, CANARY)"
            ));
        }
        if self.strategy == Strategy::BlueGreen && self.bake.is_none() {
            return Err(
                "the service's BLUE_GREEN strategy has no bakeTimeInMinutes, which ECS requires"
                    .into(),
            );
        }
        for hook in &self.hooks {
            for stage in &hook.stages {
                if NO_HOOKS.contains(&stage.as_str()) {
                    return Err(format!(
                        "a lifecycle hook on {stage}, a stage that takes none"
                    ));
                }
                if hook.pause && NO_PAUSE.contains(&stage.as_str()) {
                    return Err(format!(
                        "a PAUSE hook on {stage}: ECS takes PAUSE hooks on every hook stage but TEST_TRAFFIC_SHIFT and PRODUCTION_TRAFFIC_SHIFT"
                    ));
                }
            }
        }
        let event = until.and_then(parse_event);
        if self.codedeploy {
            return match until {
                Some(stage) if event.is_none() => Err(format!(
                    "--until {stage}: a CODE_DEPLOY service reports CodeDeploy lifecycle events ({})",
                    EVENTS.join(", ")
                )),
                _ => Ok(()),
            };
        }
        if event.is_some() {
            return Err(format!(
                "--until {}: CodeDeploy lifecycle events are for CODE_DEPLOY services; this one reports ECS lifecycle stages",
                until.unwrap_or_default()
            ));
        }
        if until.is_some() && !self.staged() {
            return Err("--until needs a BLUE_GREEN, LINEAR or CANARY service; this one rolls (ROLLING reports no stages)".into());
        }
        if smoke_test && !self.pauses_at("POST_TEST_TRAFFIC_SHIFT") {
            return Err("--smoke-test needs a PAUSE lifecycle hook at POST_TEST_TRAFFIC_SHIFT (test traffic on green, production still on blue); add one to the service's deploymentConfiguration.lifecycleHooks".into());
        }
        Ok(())
    }
}

impl Shape {
    /// Pure: the shape a create-service file declares (`deploymentConfiguration`, `loadBalancers`).
    pub(crate) fn from_definition(
        config: &serde_json::Value,
        load_balancers: Option<&serde_json::Value>,
    ) -> Result<Shape, String> {
        let minutes = |v: &serde_json::Value| v.as_u64().map(|m| Duration::from_secs(m * 60));
        let name = config["strategy"].as_str().unwrap_or("ROLLING");
        let linear = &config["linearConfiguration"];
        let canary = &config["canaryConfiguration"];
        if !linear.is_null() && name != "LINEAR" {
            return Err(format!(
                "`linearConfiguration` is for the LINEAR strategy, not {name}"
            ));
        }
        if !canary.is_null() && name != "CANARY" {
            return Err(format!(
                "`canaryConfiguration` is for the CANARY strategy, not {name}"
            ));
        }
        let strategy = match name {
            "ROLLING" => Strategy::Rolling,
            "BLUE_GREEN" => Strategy::BlueGreen,
            "LINEAR" => Strategy::Linear {
                step_percent: linear["stepPercent"].as_f64().unwrap_or(10.0),
                step_bake: minutes(&linear["stepBakeTimeInMinutes"])
                    .unwrap_or(Duration::from_secs(360)),
            },
            "CANARY" => Strategy::Canary {
                canary_percent: canary["canaryPercent"].as_f64().unwrap_or(5.0),
                canary_bake: minutes(&canary["canaryBakeTimeInMinutes"])
                    .unwrap_or(Duration::from_secs(600)),
            },
            other => Strategy::Other(other.to_string()),
        };
        let hooks = config["lifecycleHooks"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|h| Hook {
                pause: h["targetType"] == "PAUSE",
                stages: h["lifecycleStages"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect(),
            })
            .collect();
        let advanced = load_balancers
            .and_then(|lbs| lbs.as_array())
            .and_then(|lbs| lbs.first())
            .map(|lb| &lb["advancedConfiguration"]);
        let text = |field: &str| advanced.and_then(|a| a[field].as_str()).map(String::from);
        Ok(Shape {
            strategy,
            bake: minutes(&config["bakeTimeInMinutes"]),
            alternate: text("alternateTargetGroupArn"),
            test_listener_rule: text("testListenerRule"),
            production_listener_rule: text("productionListenerRule"),
            hooks,
            codedeploy: false,
        })
    }
}

/// A lifecycle hook of the deployment, as DescribeServiceDeployments tells it.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct HookView {
    pub(crate) id: String,
    pub(crate) pause: bool,
    pub(crate) status: String,
    /// `expiresAt` as text.
    pub(crate) expires: Option<String>,
}

/// One look at a service deployment (DescribeServiceDeployments).
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ServiceDeploymentView {
    pub(crate) arn: String,
    pub(crate) status: String,
    pub(crate) reason: Option<String>,
    pub(crate) stage: Option<String>,
    pub(crate) target_revision: Option<String>,
    /// Traffic on the new revision, in percent (None on rolling deployments).
    pub(crate) production_weight: Option<f64>,
    pub(crate) test_weight: Option<f64>,
    pub(crate) hooks: Vec<HookView>,
}

impl ServiceDeploymentView {
    /// Still going: PENDING or IN_PROGRESS.
    pub(crate) fn in_flight(&self) -> bool {
        matches!(self.status.as_str(), "PENDING" | "IN_PROGRESS")
    }

    /// The PAUSE hook waiting for ContinueServiceDeployment, if any.
    pub(crate) fn waiting_hook(&self) -> Option<&HookView> {
        self.hooks
            .iter()
            .find(|h| h.pause && h.status == "AWAITING_ACTION")
    }

    /// Whether the deployment has reached `stage` (stages can be skipped between looks).
    pub(crate) fn reached(&self, stage: &str) -> bool {
        match (
            self.stage.as_deref().and_then(stage_index),
            stage_index(stage),
        ) {
            (Some(now), Some(wanted)) => now >= wanted,
            _ => false,
        }
    }

    /// `PRODUCTION_TRAFFIC_SHIFT 50% → green`
    pub(crate) fn describe(&self) -> String {
        let stage = self.stage.as_deref().unwrap_or("starting");
        let mut text = stage.to_string();
        match (self.production_weight, self.test_weight) {
            (Some(p), _) if p > 0.0 => text.push_str(&format!(" {p}% → green")),
            (_, Some(t)) if t > 0.0 => text.push_str(&format!(" test traffic {t}% → green")),
            _ => {}
        }
        if let Some(hook) = self.waiting_hook() {
            text.push_str(&format!(
                ", PAUSE hook {} waits{}",
                hook.id,
                hook.expires
                    .as_deref()
                    .map(|e| format!(" until {e}"))
                    .unwrap_or_default()
            ));
        }
        text
    }
}

/// CodeDeploy (the CODE_DEPLOY controller): its lifecycle events and one look at a deployment.
/// The ECS lifecycle events of a CodeDeploy blue/green deployment, in order.
pub(crate) const EVENTS: [&str; 10] = [
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "AllowTestTraffic",
    "AfterAllowTestTraffic",
    "BeforeAllowTraffic",
    "AllowTraffic",
    "AfterAllowTraffic",
    "BeforeBlockTraffic",
    "AfterBlockTraffic",
];

/// `--until EVENT` for CodeDeploy, checked: one of the lifecycle events.
pub(crate) fn parse_event(text: &str) -> Option<&'static str> {
    EVENTS
        .iter()
        .find(|e| e.eq_ignore_ascii_case(text.trim()))
        .copied()
}

/// One lifecycle event of the deployment's ECS target.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct EventView {
    pub(crate) name: String,
    pub(crate) status: String,
    /// Diagnostics when it failed: code, message, log tail.
    pub(crate) diagnostics: Option<String>,
}

/// One look at a CodeDeploy deployment (GetDeployment and GetDeploymentTarget).
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct CodeDeployView {
    pub(crate) id: String,
    pub(crate) status: String,
    pub(crate) error: Option<String>,
    /// The deployment CodeDeploy started to roll this one back.
    pub(crate) rollback_deployment: Option<String>,
    pub(crate) events: Vec<EventView>,
    /// Traffic on the replacement (green) task set, in percent.
    pub(crate) green_weight: Option<f64>,
}

impl CodeDeployView {
    /// Created, Queued, InProgress, Baking or Ready.
    pub(crate) fn in_flight(&self) -> bool {
        matches!(
            self.status.as_str(),
            "Created" | "Queued" | "InProgress" | "Baking" | "Ready"
        )
    }

    pub(crate) fn event_succeeded(&self, name: &str) -> bool {
        self.events
            .iter()
            .any(|e| e.name == name && e.status == "Succeeded")
    }

    /// `AllowTestTraffic 0% → green`, or `Ready: waiting for ContinueDeployment`.
    pub(crate) fn describe(&self) -> String {
        if self.status == "Ready" {
            return "Ready: test traffic on green, waiting for ContinueDeployment".into();
        }
        let now = self
            .events
            .iter()
            .find(|e| e.status == "InProgress")
            .or_else(|| self.events.iter().rev().find(|e| e.status == "Succeeded"))
            .map_or_else(|| self.status.clone(), |e| e.name.clone());
        match self.green_weight {
            Some(w) if w > 0.0 => format!("{now} {w}% → green"),
            _ => now,
        }
    }

    /// Why it failed: the error, and each failed event's diagnostics.
    pub(crate) fn why(&self) -> String {
        let mut why = self
            .error
            .clone()
            .unwrap_or_else(|| "no reason given".into());
        for e in self.events.iter().filter(|e| e.status == "Failed") {
            why.push_str(&format!(
                "; {} failed{}",
                e.name,
                e.diagnostics
                    .as_deref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            ));
        }
        why
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(pause: bool, stages: &[&str]) -> Hook {
        Hook {
            pause,
            stages: stages.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn what_ecs_would_reject_is_refused_before_any_write() {
        let blue_green = Shape {
            strategy: Strategy::BlueGreen,
            bake: Some(Duration::from_secs(600)),
            ..Default::default()
        };
        let paused = Shape {
            hooks: vec![hook(true, &["POST_TEST_TRAFFIC_SHIFT"])],
            ..blue_green.clone()
        };
        // (shape, --until, --smoke-test) → refused with (None: accepted)
        let cases: Vec<(Shape, Option<&str>, bool, Option<&str>)> = vec![
            (blue_green.clone(), None, false, None),
            (
                Shape {
                    bake: None,
                    ..blue_green.clone()
                },
                None,
                false,
                Some("no bakeTimeInMinutes"),
            ),
            (
                Shape {
                    hooks: vec![hook(true, &["PRODUCTION_TRAFFIC_SHIFT"])],
                    ..blue_green.clone()
                },
                None,
                false,
                Some("a PAUSE hook on PRODUCTION_TRAFFIC_SHIFT"),
            ),
            (
                Shape {
                    hooks: vec![hook(false, &["PRODUCTION_TRAFFIC_SHIFT"])],
                    ..blue_green.clone()
                },
                None,
                false,
                None,
            ),
            (
                Shape {
                    hooks: vec![hook(false, &["BAKE_TIME"])],
                    ..blue_green.clone()
                },
                None,
                false,
                Some("a stage that takes none"),
            ),
            (blue_green.clone(), Some("BAKE_TIME"), false, None),
            (
                Shape::default(),
                Some("BAKE_TIME"),
                false,
                Some("--until needs"),
            ),
            (
                blue_green.clone(),
                None,
                true,
                Some("--smoke-test needs a PAUSE"),
            ),
            (paused.clone(), None, true, None),
            (
                Shape {
                    strategy: Strategy::Other("SHADOW".into()),
                    ..Default::default()
                },
                None,
                false,
                Some("`SHADOW`"),
            ),
        ];
        for (shape, until, smoke, want) in cases {
            let got = shape.check(until, smoke);
            match want {
                None => assert_eq!(got, Ok(()), "{shape:?}"),
                Some(text) => assert!(
                    got.as_ref().is_err_and(|e| e.contains(text)),
                    "{shape:?}: {got:?} should say {text}"
                ),
            }
        }
    }

    #[test]
    fn stages_are_compared_by_position_and_unknown_ones_never_count() {
        let at = |stage: &str| ServiceDeploymentView {
            stage: Some(stage.into()),
            status: "IN_PROGRESS".into(),
            ..Default::default()
        };
        assert!(at("BAKE_TIME").reached("BAKE_TIME"));
        assert!(
            at("CLEAN_UP").reached("BAKE_TIME"),
            "a stage skipped between looks"
        );
        assert!(!at("PRODUCTION_TRAFFIC_SHIFT").reached("BAKE_TIME"));
        assert!(!at("SOMETHING_NEW").reached("BAKE_TIME"));
        assert_eq!(parse_stage("bake_time"), Ok("BAKE_TIME".into()));
        assert!(parse_stage("PRE_PRODUCTION_TRAFFIC_SHIFT").is_err());
        assert!(
            parse_stage("SOON")
                .unwrap_err()
                .contains("expected one of RECONCILE_SERVICE")
        );
    }

    #[test]
    fn a_service_is_named_by_its_shape() {
        let shape = Shape {
            strategy: Strategy::BlueGreen,
            bake: Some(Duration::from_secs(600)),
            alternate: Some("web-tg-2".into()),
            hooks: vec![hook(true, &["POST_TEST_TRAFFIC_SHIFT"])],
            ..Default::default()
        };
        assert_eq!(
            shape.describe(),
            "blue/green, bake 10 min, alternate target group web-tg-2, PAUSE at POST_TEST_TRAFFIC_SHIFT"
        );
        let canary = Shape {
            strategy: Strategy::Canary {
                canary_percent: 20.0,
                canary_bake: Duration::from_secs(300),
            },
            bake: Some(Duration::from_secs(60)),
            ..Default::default()
        };
        assert_eq!(
            canary.describe(),
            "canary, 20% first, then the rest after 5 min, bake 1 min"
        );
        assert_eq!(Shape::default().describe(), "rolling update");
    }
}
