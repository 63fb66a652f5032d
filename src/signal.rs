//! Waiting, the one way every loop does it: until a deadline, a signal (SIGINT/SIGTERM, which CI
//! sends to cancel a job), or the end of a pause. `Interrupt` counts the signals; `Wait` races a
//! pause or any future against the deadline and the signals.

use std::future::Future;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Counts SIGINT/SIGTERM received. CI cancels a job with these; we roll back before exiting.
#[derive(Clone)]
pub(crate) struct Interrupt(watch::Receiver<u32>);

impl Interrupt {
    pub(crate) fn listen() -> Interrupt {
        let (tx, rx) = watch::channel(0u32);
        tokio::spawn(async move {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            loop {
                let term_recv = async {
                    match term.as_mut() {
                        Some(t) => t.recv().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term_recv => {}
                }
                tx.send_modify(|n| *n += 1);
            }
        });
        Interrupt(rx)
    }

    /// Fires whenever the sender's count goes up (several services share one, see `system`).
    pub(crate) fn from_receiver(rx: watch::Receiver<u32>) -> Interrupt {
        Interrupt(rx)
    }

    /// For read-only commands: never fires, and leaves SIGINT's default (exit) in place.
    pub(crate) fn none() -> Interrupt {
        let (tx, rx) = watch::channel(0u32);
        std::mem::forget(tx);
        Interrupt(rx)
    }

    pub(crate) fn count(&self) -> u32 {
        *self.0.borrow()
    }

    /// Resolves once more than `seen` signals have arrived.
    pub(crate) async fn after(&self, seen: u32) {
        let mut rx = self.0.clone();
        let _ = rx.wait_for(|n| *n > seen).await;
    }
}

/// Why a wait ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    Deadline,
    Signal,
}

/// A deadline and the signals that count (those after `seen`): every loop waits through one.
#[derive(Clone)]
pub(crate) struct Wait {
    timeout: Duration,
    deadline: Instant,
    interrupt: Interrupt,
    seen: u32,
}

impl Wait {
    /// Waits up to `timeout` from now; signals count from `seen` (`interrupt.count()` when the
    /// command began, so a signal during an earlier step is not forgotten).
    pub(crate) fn new(timeout: Duration, interrupt: &Interrupt, seen: u32) -> Wait {
        Wait {
            timeout,
            deadline: deadline_after(timeout),
            interrupt: interrupt.clone(),
            seen,
        }
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    pub(crate) fn signalled(&self) -> bool {
        self.interrupt.count() > self.seen
    }

    pub(crate) fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Sleeps `pause` (cut short at the deadline); Err when a signal came or the deadline passed.
    pub(crate) async fn pause(&self, pause: Duration) -> Result<(), Stop> {
        self.until(tokio::time::sleep(pause)).await
    }

    /// Runs `work` until it ends, the deadline passes or a signal comes, whichever is first.
    pub(crate) async fn until<F: Future>(&self, work: F) -> Result<F::Output, Stop> {
        if self.signalled() {
            return Err(Stop::Signal);
        }
        tokio::select! {
            biased;
            () = self.interrupt.after(self.seen) => Err(Stop::Signal),
            () = tokio::time::sleep_until(self.deadline.into()) => Err(Stop::Deadline),
            done = work => Ok(done),
        }
    }
}

/// Now plus `timeout`, saturating: a huge `--timeout` means "no deadline", not a panic.
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}
