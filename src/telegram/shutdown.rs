//! Stopping: SIGINT/SIGTERM, and a deadline every wait respects.
//!
//! A stop lets work in flight finish (a reply being sent is delivered), but
//! no wait may hold the process past the deadline: a 429 `retry_after` of a
//! minute, or a chat's send slot far ahead, is abandoned at once and the
//! reply counted as dropped. systemd sends SIGKILL 90 s after SIGTERM; we
//! aim to be gone within 5 s.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// How long waits may still run after a stop signal.
pub const GRACE: Duration = Duration::from_secs(3);

/// Signal handlers, installed when created (a signal that arrives before
/// is not lost to the default action, which would kill the process).
pub struct Signals {
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    /// Must run inside the runtime.
    pub fn install() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Signals {
                int: signal(SignalKind::interrupt()).ok(),
                term: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// Resolves when SIGINT or SIGTERM arrives.
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        {
            async fn next(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                _ = next(&mut self.int) => tracing::info!("SIGINT received; shutting down"),
                _ = next(&mut self.term) => tracing::info!("SIGTERM received; shutting down"),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("Ctrl-C received; shutting down");
        }
    }
}

/// Whether the bot is stopping, and by when waits must end.
#[derive(Debug)]
pub struct Shutdown {
    tx: watch::Sender<Option<Instant>>,
    dropped: AtomicU64,
}

/// A wait was abandoned because the bot is stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopping;

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            tx: watch::channel(None).0,
            dropped: AtomicU64::new(0),
        }
    }
}

impl Shutdown {
    /// Start stopping: waits must end within `grace`.
    pub fn begin(&self, grace: Duration) {
        let deadline = Instant::now() + grace;
        self.tx.send_if_modified(|d| {
            if d.is_none() {
                *d = Some(deadline);
                true
            } else {
                false
            }
        });
    }

    pub fn is_stopping(&self) -> bool {
        self.tx.borrow().is_some()
    }

    /// Resolves when stopping begins.
    pub async fn begun(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(Option::is_some).await;
    }

    /// Resolves when the stop deadline has passed (never while running).
    pub async fn deadline_passed(&self) {
        let mut rx = self.tx.subscribe();
        let deadline = match rx.wait_for(Option::is_some).await {
            Ok(d) => *d,
            Err(_) => None,
        };
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending::<()>().await,
        }
    }

    /// Sleep for `d`, unless the bot stops and the sleep would outlast the
    /// deadline: then `Err(Stopping)` at once.
    pub async fn sleep(&self, d: Duration) -> Result<(), Stopping> {
        let until = Instant::now() + d;
        let mut rx = self.tx.subscribe();
        loop {
            if let Some(deadline) = *rx.borrow_and_update()
                && until > deadline
            {
                return Err(Stopping);
            }
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return Ok(()),
                changed = rx.changed() => {
                    if changed.is_err() {
                        tokio::time::sleep_until(until).await;
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Count a reply given up because of the stop.
    pub fn count_dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_long_wait_ends_at_the_stop_a_short_one_is_kept() {
        let s = Arc::new(Shutdown::default());
        assert_eq!(s.sleep(Duration::from_millis(10)).await, Ok(()));
        let long = {
            let s = Arc::clone(&s);
            tokio::spawn(async move { s.sleep(Duration::from_secs(60)).await })
        };
        let short = {
            let s = Arc::clone(&s);
            tokio::spawn(async move { s.sleep(Duration::from_millis(200)).await })
        };
        tokio::task::yield_now().await;
        let t = Instant::now();
        s.begin(Duration::from_secs(40));
        assert_eq!(long.await.unwrap(), Err(Stopping));
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the long wait did not end at once"
        );
        assert_eq!(short.await.unwrap(), Ok(()));
        assert_eq!(
            s.sleep(Duration::from_secs(50)).await,
            Err(Stopping),
            "after the stop, a wait past the deadline is refused at once"
        );
    }
}
