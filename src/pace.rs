//! Keeps one run's looks at ECS under ECS's request limits, however many services it watches.
//!
//! ECS throttles each account and Region with token buckets per group of actions; its
//! documentation's example is the cluster read actions: a bucket of 50, refilled at 20 a second.
//! One look is about one DescribeServices, two ListTasks, one DescribeTargetHealth per target group
//! and a DescribeTasks. 8 looks a second and a burst of 2 make at most 10 looks in any one second,
//! so no read action goes over 20 calls in any second from the looks, with room left for the other
//! tools of the account. One service looks at most 4 times a second and never waits here; 20
//! services side by side share the 8 (measured in the lab: unpaced, 20 services made 81 ListTasks
//! calls in one second).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Looks a second, sustained, across the whole process.
pub(crate) const LOOKS_PER_SECOND: f64 = 8.0;
/// Looks that may go at once before the rate applies.
pub(crate) const BURST: f64 = 2.0;

static LOOKS: Mutex<Option<Bucket>> = Mutex::new(None);

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

/// Waits until this process may take another look.
pub(crate) async fn look() {
    loop {
        let wait = {
            let mut slot = LOOKS
                .lock()
                .expect("no thread panics while holding the pace");
            let now = Instant::now();
            let bucket = slot.unwrap_or(Bucket {
                tokens: BURST,
                at: now,
            });
            match take(bucket, now, LOOKS_PER_SECOND, BURST) {
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
