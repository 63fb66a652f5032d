//! Watching a rollout until a verdict: look (`look::Watcher`), ask `rollout::verdict`, print what is
//! new, pause (`pause`, shorter when a verdict is near), repeat; every look and pause raced against
//! the deadline and the signals (`signal::Wait`).

pub(crate) mod codedeploy;
pub(crate) mod look;

use crate::aws::Aws;
use crate::report::output::{Output, Phase};
use crate::rollout::{self, Ended, Failure, Progress, Snapshot, Verdict, Watched};
use crate::signal::{Stop, Wait};
use crate::staged;
use crate::target::Target;
use look::{Watcher, same_state};
use serde_json::json;
use std::time::{Duration, Instant};

/// How a watch ended, with the last snapshot for the failure report.
pub(crate) struct WatchEnd {
    pub(crate) ended: Ended,
    pub(crate) snapshot: Snapshot,
    pub(crate) watcher: Watcher,
}

impl WatchEnd {
    /// A staged deployment's lifecycle stage at the end (for the result), if any.
    pub(crate) fn stage(&self) -> Option<String> {
        let sd = self.snapshot.service_deployment.as_ref();
        sd.and_then(|s| s.stage.clone())
    }
}

/// Looks until `rollout::verdict` is Healthy or Failed, the deadline passes, or a signal arrives.
pub(crate) async fn until_done(
    aws: &Aws,
    target: &Target,
    watched: &Watched,
    mut watcher: Watcher,
    wait: &Wait,
    out: &Output,
) -> WatchEnd {
    let mut last = Snapshot::default();
    let mut pacing = Pacing::new();
    let mut replacement = codedeploy::Replacement::default();
    let phase = out.phase("rollout");
    let stop = loop {
        let ours = replacement
            .tasks_of(watched.deployment_id.as_str())
            .to_string();
        let look = wait.until(async {
            let mut snapshot = watcher
                .snapshot(
                    aws,
                    target,
                    (&ours, watched.service_deployment.as_ref()),
                    out,
                )
                .await?;
            replacement
                .look(aws, target, watched, &mut snapshot)
                .await?;
            anyhow::Ok(snapshot)
        });
        match look.await {
            Err(stop) => break stop,
            Ok(Ok(snapshot)) => {
                pacing.last_error = None;
                let changed = !same_state(&snapshot, &last);
                pacing.stage(&snapshot, out);
                last = snapshot;
                let ended = match verdict_for(&last, watched) {
                    Verdict::InProgress(progress) => {
                        pacing.show(&progress, &phase, out);
                        None
                    }
                    Verdict::Healthy => Some(Ended::Healthy),
                    Verdict::Failed(failure) => Some(Ended::Failed(failure)),
                    Verdict::Paused(hook) => Some(Ended::Paused(hook)),
                };
                if let Some(ended) = ended {
                    return WatchEnd {
                        ended,
                        snapshot: last,
                        watcher,
                    };
                }
                pacing.unchanged = if changed { 0 } else { pacing.unchanged + 1 };
            }
            Ok(Err(err)) => pacing.failed_look(&err, out),
        }
        if let Err(stop) = wait.pause(pacing.pause()).await {
            break stop;
        }
    };
    WatchEnd {
        ended: Ended::Failed(stopped(stop, wait, pacing, &last)),
        snapshot: last,
        watcher,
    }
}

/// The verdict on a look, by the service's deployment controller: CodeDeploy's, a staged ECS
/// deployment's (BLUE_GREEN, LINEAR, CANARY), or a rolling update's.
fn verdict_for(snapshot: &Snapshot, watched: &Watched) -> Verdict {
    if watched.codedeploy.is_some() {
        crate::codedeploy::verdict(snapshot, watched)
    } else if watched.service_deployment.is_some() {
        staged::verdict(snapshot, watched)
    } else {
        rollout::verdict(snapshot, watched)
    }
}

/// The failure of a watch that a signal or the deadline stopped: interrupted, or timed out with the
/// last progress (or the last look's error) and the placement cause, if ECS gave one.
fn stopped(stop: Stop, wait: &Wait, pacing: Pacing, last: &Snapshot) -> Failure {
    match stop {
        Stop::Signal => Failure::Interrupted,
        Stop::Deadline => Failure::Timeout {
            waited: wait.timeout(),
            progress: stalled_because(
                pacing
                    .last_error
                    .map_or(pacing.last_progress, |e| format!("last error: {e}")),
                last.placement.as_deref(),
            ),
        },
    }
}

/// A stalled rollout's progress, with the cause when ECS said it could not place a task (EC2
/// capacity: no container instance with the CPU, memory or ports the task needs).
fn stalled_because(progress: String, placement: Option<&str>) -> String {
    match placement {
        Some(event) => format!("{progress}; the cause: ECS could not place a task: {event}"),
        None => progress,
    }
}

/// What the loop remembers between looks: for the pause and for the lines it prints.
struct Pacing {
    started: Instant,
    unchanged: u32,
    on_the_edge: bool,
    nearly_done_since: Option<Instant>,
    last_progress: String,
    last_line: Instant,
    last_error: Option<String>,
    heartbeat: Duration,
    last_stage: Option<String>,
}

impl Pacing {
    fn new() -> Pacing {
        Pacing {
            started: Instant::now(),
            unchanged: 0,
            on_the_edge: false,
            nearly_done_since: None,
            last_progress: String::new(),
            last_line: Instant::now(),
            last_error: None,
            last_stage: None,
            // In CI logs, a line at least every 30 s while nothing changes, so a wait never looks
            // hung. DEPLOYER_HEARTBEAT_SECS shortens it (the suite's heartbeat test uses it).
            heartbeat: Duration::from_secs(
                std::env::var("DEPLOYER_HEARTBEAT_SECS")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(30),
            ),
        }
    }

    fn pause(&self) -> Duration {
        pause(
            self.on_the_edge,
            self.nearly_done_since.map(|at| at.elapsed()),
            self.unchanged,
        )
    }

    /// Prints the progress when it changed, and a heartbeat line when it did not for a while.
    fn show(&mut self, progress: &Progress, phase: &Phase<'_>, out: &Output) {
        self.on_the_edge = progress.on_the_edge();
        self.nearly_done_since = match progress.nearly_done() {
            true => self.nearly_done_since.or(Some(Instant::now())),
            false => None,
        };
        let summary = progress.summary();
        if summary == self.last_progress && self.last_line.elapsed() >= self.heartbeat {
            out.progress(
                &format!(
                    "{summary} (still waiting, {}s)",
                    self.started.elapsed().as_secs()
                ),
                json!({"heartbeat": true}),
            );
            self.last_line = Instant::now();
        }
        if summary != self.last_progress {
            self.last_line = Instant::now();
            phase.status(&summary);
            out.progress(
                &summary,
                json!({"running": progress.running, "desired": progress.desired,
                    "healthy": progress.healthy, "rollout_state": progress.rollout_state}),
            );
            self.last_progress = summary;
        }
    }

    /// A staged deployment's new lifecycle stage: said once, as a `stage` event and a timeline row.
    fn stage(&mut self, snapshot: &Snapshot, out: &Output) {
        let Some(sd) = &snapshot.service_deployment else {
            return;
        };
        let stage = sd.stage.clone().unwrap_or_else(|| sd.status.clone());
        if self.last_stage.as_ref() != Some(&stage) {
            out.stage(
                &stage,
                json!({"status": sd.status, "service_deployment_arn": sd.arn,
                    "production_weight": sd.production_weight, "test_weight": sd.test_weight}),
            );
            self.last_stage = Some(stage);
        }
    }

    /// A look that failed (after the SDK's retries) is said once and tried again at the next look.
    fn failed_look(&mut self, err: &anyhow::Error, out: &Output) {
        let message = format!("{err:#}");
        if self.last_error.as_deref() != Some(&message) {
            out.warn(&format!("{message} (will retry)"));
        }
        self.last_error = Some(message);
        self.unchanged += 1;
    }
}

/// Pure: the pause before the next look. 250 ms when one more stopped task decides, and for the
/// first 5 s once every new task runs (ECS's COMPLETED may come at any look then). Otherwise 0.5 s
/// (0.25 s once every new task runs), growing ×1.5 per unchanged look to 5 s, so that a quiet
/// 10-minute rollout (health checks, a long connection drain) costs ~120 looks, not 1,200.
pub(crate) fn pause(
    on_the_edge: bool,
    nearly_done_for: Option<Duration>,
    unchanged: u32,
) -> Duration {
    if on_the_edge || nearly_done_for.is_some_and(|d| d < Duration::from_secs(5)) {
        return Duration::from_millis(250);
    }
    let base = if nearly_done_for.is_some() {
        250.0
    } else {
        500.0
    };
    Duration::from_millis((base * 1.5f64.powi(unchanged.min(7) as i32)).min(5000.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_come_often_when_a_verdict_is_near_and_back_off_when_quiet() {
        let ms = |n| Duration::from_millis(n);
        let secs = |n| Some(Duration::from_secs(n));
        for (edge, nearly_done_for, unchanged, want, why) in [
            (false, None, 0, ms(500), "the rollout changes"),
            (false, None, 1, ms(750), "one unchanged look"),
            (false, None, 20, ms(5000), "a quiet rollout: at most 5 s"),
            (true, None, 20, ms(250), "one more stopped task decides"),
            (
                false,
                secs(1),
                3,
                ms(250),
                "every new task runs: COMPLETED may come at any look",
            ),
            (
                false,
                secs(6),
                0,
                ms(250),
                "still nearly done, and it changed",
            ),
            (false, secs(6), 2, ms(562), "a long drain backs off"),
            (false, secs(60), 20, ms(4271), "a long drain, quiet"),
        ] {
            assert_eq!(pause(edge, nearly_done_for, unchanged), want, "{why}");
        }
    }
}
