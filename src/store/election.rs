//! Electing the one process that polls Telegram.
//!
//! Telegram allows one `getUpdates` consumer per bot; a second gets
//! 409 Conflict, and two that keep polling take turns failing (a "409
//! storm"). When several instances share a database, they elect one
//! poller: whoever holds a lock of the database (a PostgreSQL advisory
//! lock on a connection of its own) polls; the others only deliver
//! announcements and keep trying to take the lock, so one of them takes
//! over within [`PollerElection::CHECK_EVERY`] (plus the time the
//! database needs to notice the dead connection) when the poller dies.
//!
//! The lock is checked on a thread of its own, so a slow store call never
//! delays the check; a failed check (connection lost, server restarted)
//! means the lock is lost: the poller stops polling before anybody else
//! can start.
//!
//! ```ignore
//! let mut election = store.poller_election("bot 42")?;   // None: the only instance
//! if let Some(e) = election.as_mut() {
//!     e.until_leader().await;        // wait to be elected
//! }
//! // poll … until `e.until_lost()` resolves, then stop polling and wait again
//! ```

use super::StoreResult;
use std::sync::mpsc;
use std::time::Duration;
use tokio::sync::watch;

/// A lock in the database that at most one process holds, on a connection
/// of its own.
pub trait PollerLock: Send {
    /// Take the lock if nobody holds it. Returns whether this process holds it.
    fn try_acquire(&mut self) -> StoreResult<bool>;
    /// Is the lock still held (is its connection alive)?
    fn still_held(&mut self) -> StoreResult<bool>;
}

/// Opens a new connection for the lock (after the last one failed).
pub type ConnectLock = Box<dyn FnMut() -> StoreResult<Box<dyn PollerLock>> + Send>;

/// This process's part in the election. Dropping it gives the lock up.
pub struct PollerElection {
    leader: watch::Receiver<bool>,
    /// Dropped with the election: wakes the thread, which ends and closes
    /// the lock's connection (which releases the lock).
    _stop: mpsc::Sender<()>,
}

impl std::fmt::Debug for PollerElection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PollerElection")
            .field("leader", &*self.leader.borrow())
            .finish()
    }
}

impl PollerElection {
    /// How often a follower tries to take the lock and the poller checks it
    /// still holds it.
    pub const CHECK_EVERY: Duration = Duration::from_secs(1);

    /// Start taking part: a thread tries to take the lock (and, once held,
    /// checks it) every `check_every`, reconnecting with `connect` when the
    /// connection fails.
    pub fn start(name: &str, mut connect: ConnectLock, check_every: Duration) -> PollerElection {
        let (leader_tx, leader) = watch::channel(false);
        let (stop, stop_rx) = mpsc::channel::<()>();
        let name = name.to_string();
        let spawned = std::thread::Builder::new()
            .name("poller-election".into())
            .spawn(move || {
                let mut lock: Option<Box<dyn PollerLock>> = None;
                let mut leading = false;
                let mut last_error: Option<String> = None;
                loop {
                    if lock.is_none() {
                        match connect() {
                            Ok(l) => lock = Some(l),
                            Err(e) => note_error(&mut last_error, &name, &e),
                        }
                    }
                    let now_leading = match lock.as_mut() {
                        Some(l) => {
                            let held = if leading {
                                l.still_held()
                            } else {
                                l.try_acquire()
                            };
                            match held {
                                Ok(held) => {
                                    last_error = None;
                                    held
                                }
                                Err(e) => {
                                    note_error(&mut last_error, &name, &e);
                                    // A broken connection holds nothing.
                                    lock = None;
                                    false
                                }
                            }
                        }
                        None => false,
                    };
                    if now_leading != leading {
                        if now_leading {
                            tracing::info!(election = %name, "elected to poll Telegram for updates");
                        } else {
                            tracing::warn!(election = %name, "lost the poller lock; polling stops");
                        }
                        leading = now_leading;
                        leader_tx.send_replace(leading);
                    }
                    match stop_rx.recv_timeout(check_every) {
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        // The election was dropped: closing the connection
                        // (dropping `lock`) releases the lock at once.
                        _ => break,
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the poller election; this instance will not poll");
        }
        PollerElection {
            leader,
            _stop: stop,
        }
    }

    /// Whether this process holds the lock now.
    pub fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }

    /// Resolves once this process holds the lock.
    pub async fn until_leader(&mut self) {
        if self.leader.wait_for(|l| *l).await.is_err() {
            // The election thread is gone: never leader again.
            std::future::pending::<()>().await;
        }
    }

    /// Resolves once this process no longer holds the lock.
    pub async fn until_lost(&mut self) {
        let _ = self.leader.wait_for(|l| !*l).await;
    }
}

/// Log a failure of the election's connection once, not every second.
fn note_error(last: &mut Option<String>, name: &str, e: &super::StoreError) {
    let text = e.to_string();
    if last.as_deref() != Some(text.as_str()) {
        tracing::warn!(election = %name, error = %text, "poller election: database unreachable");
        *last = Some(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    /// One lock shared by "processes"; a connection can be cut.
    #[derive(Default)]
    struct Db {
        holder: Mutex<Option<usize>>,
        next: std::sync::atomic::AtomicUsize,
    }

    struct Conn {
        db: Arc<Db>,
        id: usize,
        cut: Arc<AtomicBool>,
    }

    impl Drop for Conn {
        fn drop(&mut self) {
            let mut h = self.db.holder.lock().unwrap_or_else(|e| e.into_inner());
            if *h == Some(self.id) {
                *h = None;
            }
        }
    }

    impl PollerLock for Conn {
        fn try_acquire(&mut self) -> StoreResult<bool> {
            if self.cut.load(Ordering::SeqCst) {
                return Err(super::super::StoreError::Unavailable("cut".into()));
            }
            let mut h = self.db.holder.lock().unwrap_or_else(|e| e.into_inner());
            if h.is_none() {
                *h = Some(self.id);
            }
            Ok(*h == Some(self.id))
        }
        fn still_held(&mut self) -> StoreResult<bool> {
            if self.cut.load(Ordering::SeqCst) {
                return Err(super::super::StoreError::Unavailable("cut".into()));
            }
            Ok(*self.db.holder.lock().unwrap_or_else(|e| e.into_inner()) == Some(self.id))
        }
    }

    fn member(db: &Arc<Db>, cut: &Arc<AtomicBool>) -> PollerElection {
        let (db, cut) = (Arc::clone(db), Arc::clone(cut));
        PollerElection::start(
            "test",
            Box::new(move || {
                let id = db.next.fetch_add(1, Ordering::SeqCst);
                Ok(Box::new(Conn {
                    db: Arc::clone(&db),
                    id,
                    cut: Arc::clone(&cut),
                }) as Box<dyn PollerLock>)
            }),
            Duration::from_millis(20),
        )
    }

    async fn within<F: std::future::Future>(f: F) -> F::Output {
        tokio::time::timeout(Duration::from_secs(10), f)
            .await
            .unwrap_or_else(|_| panic!("timed out"))
    }

    #[tokio::test]
    async fn one_leader_and_a_takeover_when_it_goes() {
        let db = Arc::new(Db::default());
        let (cut_a, cut_b) = (Arc::default(), Arc::default());
        let mut a = member(&db, &cut_a);
        within(a.until_leader()).await;
        let mut b = member(&db, &cut_b);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(a.is_leader() && !b.is_leader(), "one leader");
        // The leader's connection breaks: it steps down, the other takes over.
        cut_a.store(true, Ordering::SeqCst);
        within(a.until_lost()).await;
        within(b.until_leader()).await;
        assert!(!a.is_leader());
        // Dropping the leader releases the lock for the first one.
        cut_a.store(false, Ordering::SeqCst);
        drop(b);
        within(a.until_leader()).await;
    }
}
