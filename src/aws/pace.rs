//! Keeps one run's reads under AWS's request limits, however many services it watches.
//!
//! ECS throttles each account and Region with a token bucket per group of actions, refilled at 20
//! calls a second for the service reads (DescribeServices) and for the cluster resource reads
//! (ListTasks and DescribeTasks share one bucket). ELB's Describe* calls share one bucket of 40,
//! refilled at 10 a second; EC2's describe calls one refilled at 20. The calls of a whole run take
//! half of each refill rate, with a burst of at most half a bucket (10 ECS calls, 20 ELB calls,
//! 10 EC2 calls), so other tools of the account keep the rest. One service's looks (a few a second) never wait here; many services watched at once
//! wait their turn, and `reads` puts what they ask while waiting into one call.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A group of actions that share one of AWS's token buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Group {
    /// DescribeServices.
    EcsServiceReads,
    /// ListTasks and DescribeTasks.
    EcsTaskReads,
    /// DescribeTargetHealth and verify's DescribeTargetGroups.
    ElbDescribes,
    /// DescribeSubnets.
    Ec2Describes,
}

impl Group {
    /// Calls a second, sustained, and calls that may go at once.
    fn rate(self) -> (f64, f64) {
        match self {
            Group::EcsServiceReads | Group::EcsTaskReads => (10.0, 10.0),
            Group::ElbDescribes => (5.0, 20.0),
            Group::Ec2Describes => (10.0, 10.0),
        }
    }
}

static BUCKETS: Mutex<[Option<Bucket>; 4]> = Mutex::new([None; 4]);

/// Target groups some watch of this run read lately, and when.
static TARGET_GROUPS: Mutex<Vec<(String, Instant)>> = Mutex::new(Vec::new());

/// How often a watch with these target groups reads their health: as often as it looks when it is
/// alone, and less often the more target groups the run's other watches read, so that all of them
/// together keep to `Group::ElbDescribes`'s rate (20 services with an ALB each: every 3.8 s).
pub(crate) fn target_health_every(groups: &[String]) -> Duration {
    let now = Instant::now();
    let mut seen = TARGET_GROUPS
        .lock()
        .expect("no thread panics while holding the pace");
    seen.retain(|(tg, at)| {
        !groups.contains(tg) && now.duration_since(*at) < Duration::from_secs(5)
    });
    let others = seen.len();
    seen.extend(groups.iter().map(|tg| (tg.clone(), now)));
    Duration::from_secs_f64(others as f64 / Group::ElbDescribes.rate().0)
}

/// A token bucket: `tokens` left at `at`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bucket {
    pub(crate) tokens: f64,
    pub(crate) at: Instant,
}

/// Pure: take one token at `now`; Ok(bucket after) or Err(how long until one is there).
pub(crate) fn take(
    bucket: Bucket,
    now: Instant,
    rate: f64,
    burst: f64,
) -> Result<Bucket, Duration> {
    let refilled =
        (bucket.tokens + now.saturating_duration_since(bucket.at).as_secs_f64() * rate).min(burst);
    if refilled >= 1.0 {
        Ok(Bucket {
            tokens: refilled - 1.0,
            at: now,
        })
    } else {
        Err(Duration::from_secs_f64((1.0 - refilled) / rate))
    }
}

/// Waits until this process may make one more call of `group`.
pub(crate) async fn call(group: Group) {
    let (rate, burst) = group.rate();
    loop {
        let wait = {
            let mut buckets = BUCKETS
                .lock()
                .expect("no thread panics while holding the pace");
            let slot = &mut buckets[group as usize];
            let now = Instant::now();
            let bucket = slot.unwrap_or(Bucket {
                tokens: burst,
                at: now,
            });
            match take(bucket, now, rate, burst) {
                Ok(after) => {
                    *slot = Some(after);
                    return;
                }
                Err(wait) => wait,
            }
        };
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut bucket = Bucket {
            tokens: 3.0,
            at: t0,
        };
        for _ in 0..3 {
            bucket = take(bucket, t0, 10.0, 3.0).expect("the burst goes at once");
        }
        let wait = |at| take(bucket, at, 10.0, 3.0).unwrap_err().as_millis();
        assert_eq!(wait(t0), 100);
        assert!((59..=60).contains(&wait(ms(40))), "{}", wait(ms(40)));
        let after = take(bucket, ms(100), 10.0, 3.0).expect("one token after 100 ms");
        assert!(after.tokens.abs() < 1e-9);
        // A long quiet spell refills to the burst, never beyond it.
        let full = take(bucket, ms(60_000), 10.0, 3.0).unwrap();
        assert!((full.tokens - 2.0).abs() < 1e-9);
    }
}
