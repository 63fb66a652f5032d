//! Pure: what a look reads (which listings, whether target health, whether everything afresh),
//! from what the last look saw, and whether two looks saw the same thing.

use crate::rollout::Snapshot;
use std::time::Duration;

/// A deployment's counts as DescribeServices gives them: what tells a look whether to list tasks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Counts {
    /// Running and pending tasks.
    pub(crate) live: i32,
    pub(crate) failed: i32,
    pub(crate) rollout_failed: bool,
}

/// Which ListTasks calls a look makes.
#[derive(Debug, PartialEq)]
pub(crate) struct Lists {
    pub(crate) running: bool,
    pub(crate) stopped: bool,
}

/// Pure: whether a look reads target health. Not before a task of ours runs (nothing to match);
/// always once ECS says COMPLETED (the verdict's proof); else when the last read, or the first
/// running task, is `every` old.
pub(crate) fn health_due(
    any_running: bool,
    completed: bool,
    since_read: Option<Duration>,
    since_running: Option<Duration>,
    every: Duration,
) -> bool {
    any_running && (completed || since_read.or(since_running).is_none_or(|d| d >= every))
}

/// A COMPLETED rollout with no verdict yet is read in full at least once in this many looks.
const FULL_EVERY: u32 = 3;

/// Pure: whether this look reads everything afresh: ListTasks RUNNING and STOPPED, DescribeTasks of
/// every task listed (those known too), then target health. The first look that sees COMPLETED
/// decides on the usual reads (most end there, healthy: 20 services must not each list twice more);
/// if it gave no verdict, the next look does read in full, then every `FULL_EVERY`th look, so a
/// skipped listing, a task ECS replaced between looks or an answer that came late can never hold
/// the verdict on a stale read. `looks_since_full` is None before the first COMPLETED look.
pub(crate) fn full_read_due(completed: bool, looks_since_full: Option<u32>) -> bool {
    completed && looks_since_full.is_some_and(|n| n + 1 >= FULL_EVERY)
}

/// What `looks_since_full` becomes after a look (the counterpart of `full_read_due`).
pub(crate) fn looks_since_full_after(
    completed: bool,
    full: bool,
    before: Option<u32>,
) -> Option<u32> {
    match (completed, full, before) {
        (false, _, _) => None,
        (true, true, _) => Some(0),
        // The first COMPLETED look without a verdict: the next one reads in full.
        (true, false, None) => Some(FULL_EVERY - 1),
        (true, false, Some(n)) => Some(n + 1),
    }
}

/// Pure: whether two looks saw the same thing; how long tasks have been running does not count,
/// or no look would ever be unchanged and the pause would never grow.
pub(crate) fn same_state(a: &Snapshot, b: &Snapshot) -> bool {
    let still = |s: &Snapshot| {
        let mut s = s.clone();
        s.tasks.iter_mut().for_each(|t| t.running_for = None);
        s
    };
    still(a) == still(b)
}

/// Every task is listed again this often, whatever the counts say.
const RELIST: Duration = Duration::from_secs(10);

/// Pure: the listings a look needs, given the deployment's counts at the last look and now, how
/// many of its tasks are known alive (described this look), and how long since the last listing.
/// Tasks already known are described each look, so a listing is needed only for tasks never seen:
/// RUNNING when ECS counts more than are known, STOPPED when one failed or left between two looks.
pub(crate) fn lists_needed(
    before: Option<Counts>,
    now: Option<Counts>,
    live_known: usize,
    since_listed: Option<Duration>,
) -> Lists {
    let Some(now) = now else {
        // The deployment is gone (rolled back, superseded): the report wants every task it had.
        return Lists {
            running: true,
            stopped: true,
        };
    };
    let stale = since_listed.is_some_and(|d| d >= RELIST);
    if now.rollout_failed || stale {
        return Lists {
            running: true,
            stopped: true,
        };
    }
    Lists {
        running: now.live.max(0) as usize > live_known,
        stopped: match before {
            None => now.failed > 0,
            Some(b) => now.failed != b.failed || now.live < b.live,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::TaskView;

    #[test]
    fn a_look_is_unchanged_however_long_its_tasks_have_run() {
        let task = |status: &str, secs| TaskView {
            arn: "t1".into(),
            last_status: status.into(),
            running_for: Some(Duration::from_secs(secs)),
            ..Default::default()
        };
        let look = |t| Snapshot {
            tasks: vec![t],
            ..Default::default()
        };
        assert!(same_state(
            &look(task("RUNNING", 1)),
            &look(task("RUNNING", 9))
        ));
        assert!(!same_state(
            &look(task("RUNNING", 1)),
            &look(task("STOPPED", 1))
        ));
    }

    #[test]
    fn target_health_is_read_when_a_decision_needs_it() {
        let s = |n| Some(Duration::from_millis(n));
        let every = Duration::from_millis(3800);
        for (running, completed, since_read, since_running, every, due, why) in [
            (
                false,
                true,
                None,
                None,
                every,
                false,
                "no task of ours runs: nothing to match",
            ),
            (
                true,
                false,
                None,
                s(10),
                Duration::ZERO,
                true,
                "alone, every look reads",
            ),
            (
                true,
                false,
                s(250),
                s(900),
                Duration::ZERO,
                true,
                "alone, every look reads",
            ),
            (
                true,
                false,
                None,
                s(10),
                every,
                false,
                "sharing the rate: not at once",
            ),
            (
                true,
                false,
                None,
                s(3800),
                every,
                true,
                "sharing the rate: once the share is due",
            ),
            (
                true,
                false,
                s(1000),
                s(9000),
                every,
                false,
                "read a second ago",
            ),
            (
                true,
                true,
                s(10),
                s(9000),
                every,
                true,
                "ECS says COMPLETED: the proof is read now",
            ),
        ] {
            assert_eq!(
                health_due(running, completed, since_read, since_running, every),
                due,
                "{why}"
            );
        }
    }

    #[test]
    fn a_completed_rollout_is_read_in_full_every_few_looks() {
        for (completed, since_full, due, why) in [
            (
                false,
                None,
                false,
                "in progress: the counts decide what is read",
            ),
            (
                true,
                None,
                false,
                "the first look that sees COMPLETED: the usual reads",
            ),
            (
                true,
                Some(FULL_EVERY - 1),
                true,
                "the next, when that gave no verdict",
            ),
            (true, Some(0), false, "read in full at the last look"),
            (
                true,
                Some(2),
                true,
                "the third look since: read in full again",
            ),
            (true, Some(1), false, "two looks since"),
            (true, Some(7), true, "however the counts and pacing went"),
            (false, Some(1), false, "no longer COMPLETED"),
        ] {
            assert_eq!(full_read_due(completed, since_full), due, "{why}");
        }
        // Whatever the pacing, no more than FULL_EVERY looks at COMPLETED go without a full read.
        let mut since = None;
        let mut gap = 0;
        for _ in 0..20 {
            let full = full_read_due(true, since);
            since = looks_since_full_after(true, full, since);
            gap = if full { 0 } else { gap + 1 };
            assert!(gap < FULL_EVERY);
        }
    }

    #[test]
    fn a_look_lists_tasks_only_for_tasks_never_seen() {
        let c = |live, failed| {
            Some(Counts {
                live,
                failed,
                rollout_failed: false,
            })
        };
        let secs = |s| Some(Duration::from_secs(s));
        let both = Lists {
            running: true,
            stopped: true,
        };
        let none = Lists {
            running: false,
            stopped: false,
        };
        let running = Lists {
            running: true,
            stopped: false,
        };
        let stopped = Lists {
            running: false,
            stopped: true,
        };
        for (before, now, known, since, want, why) in [
            (
                None,
                c(0, 0),
                0,
                None,
                &none,
                "a new deployment with no task yet",
            ),
            (
                None,
                c(2, 0),
                0,
                None,
                &running,
                "ECS counts two tasks never seen",
            ),
            (
                c(2, 0),
                c(2, 0),
                2,
                secs(1),
                &none,
                "every task is known: describing them is enough",
            ),
            (c(2, 0), c(3, 0), 2, secs(1), &running, "one more task"),
            (
                c(2, 0),
                c(2, 1),
                2,
                secs(1),
                &stopped,
                "a task failed between two looks",
            ),
            (
                c(2, 1),
                c(2, 0),
                2,
                secs(1),
                &stopped,
                "failedTasks went back (ECS counts consecutive failures)",
            ),
            (
                c(2, 0),
                c(1, 0),
                1,
                secs(1),
                &stopped,
                "a task left between two looks",
            ),
            (
                c(2, 0),
                c(2, 0),
                1,
                secs(1),
                &running,
                "a known task stopped and ECS already counts its replacement",
            ),
            (
                None,
                c(0, 2),
                0,
                None,
                &stopped,
                "tasks failed before the first look",
            ),
            (
                c(2, 0),
                c(2, 0),
                2,
                secs(10),
                &both,
                "ten seconds since the last listing",
            ),
            (
                c(2, 0),
                None,
                2,
                secs(1),
                &both,
                "the deployment is gone: the report wants all its tasks",
            ),
            (
                c(2, 0),
                Some(Counts {
                    live: 2,
                    failed: 0,
                    rollout_failed: true,
                }),
                2,
                secs(1),
                &both,
                "the rollout failed",
            ),
        ] {
            assert_eq!(&lists_needed(before, now, known, since), want, "{why}");
        }
    }
}
