//! Where send slots come from: this process's [`Pacer`], or the budget the
//! store shares between every process on the database ([`SharedBudget`]).
//!
//! Both give the same guarantees: evenly spaced slots at the configured
//! rate, at least `per_chat_interval` between two sends to one chat, and a
//! pause of everything after a 429. The shared one books each slot in the
//! database (one statement) and measures time by the database's clock, so
//! three instances together send at the configured rate, not three times it.
//!
//! [`SharedBudget`]: crate::store::SharedBudget

use super::pacer::Pacer;
use super::settings::BroadcastSettings;
use crate::store::{Store, StoreError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long to wait before asking an unreachable database again.
const RETRY_BOOKING: Duration = Duration::from_millis(500);

pub enum Budget {
    /// This process alone (SQLite).
    Local(Arc<Pacer>),
    /// Every process on the database (PostgreSQL).
    Shared {
        store: Arc<dyn Store>,
        interval: Duration,
        per_chat: Duration,
    },
}

impl Budget {
    /// The store's shared budget if it has one, else a pacer of our own.
    pub fn for_store(store: &Arc<dyn Store>, settings: &BroadcastSettings) -> Budget {
        if store.shared_budget().is_some() {
            Budget::Shared {
                store: Arc::clone(store),
                interval: settings.send_interval(),
                per_chat: settings.per_chat_interval(),
            }
        } else {
            Budget::Local(Arc::new(Pacer::from_settings(settings)))
        }
    }

    pub fn is_shared(&self) -> bool {
        matches!(self, Budget::Shared { .. })
    }

    /// Wait for a slot for a send (to `chat`, if the per-chat gap applies).
    pub async fn wait(&self, chat: Option<i64>) {
        match self {
            Budget::Local(pacer) => pacer.wait(chat).await,
            Budget::Shared {
                store,
                interval,
                per_chat,
            } => {
                let (interval, per_chat) = (*interval, *per_chat);
                let mut failing_since: Option<Instant> = None;
                loop {
                    let store = Arc::clone(store);
                    let booked = tokio::task::spawn_blocking(move || match store.shared_budget() {
                        Some(b) => b.book_slot(chat, interval, per_chat),
                        None => Ok(Duration::ZERO),
                    })
                    .await
                    .map_err(|e| StoreError::Database(Box::new(e)))
                    .and_then(|r| r);
                    match booked {
                        Ok(wait) => {
                            if failing_since.is_some() {
                                tracing::info!("send budget reachable again");
                            }
                            tokio::time::sleep(wait).await;
                            return;
                        }
                        Err(e) => {
                            // Nothing may be sent without a slot: the limit
                            // is shared, and guessing could break it.
                            if failing_since.is_none() {
                                tracing::error!(error = %e, "cannot book a send slot; waiting for the database");
                                failing_since = Some(Instant::now());
                            }
                            tokio::time::sleep(RETRY_BOOKING).await;
                        }
                    }
                }
            }
        }
    }

    /// Nothing is sent for `wait` from now, by this process or (shared) any.
    pub async fn pause(&self, wait: Duration) {
        match self {
            Budget::Local(pacer) => pacer.pause_until(Instant::now() + wait),
            Budget::Shared { store, .. } => {
                let store = Arc::clone(store);
                let paused = tokio::task::spawn_blocking(move || match store.shared_budget() {
                    Some(b) => b.pause_all(wait),
                    None => Ok(()),
                })
                .await;
                match paused {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "cannot record the pause; pausing here only");
                        tokio::time::sleep(wait).await;
                    }
                    Err(e) => tracing::error!(error = %e, "cannot record the pause"),
                }
            }
        }
    }
}
