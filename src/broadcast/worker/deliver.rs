//! One send, and what Telegram's answer means for the row (the error
//! policy in the module documentation of [`crate::broadcast`]).

use super::{Broadcaster, Outcome, RunState, Slot};
use crate::broadcast::progress::BroadcastEvent;
use crate::broadcast::sender::SentId;
use crate::store::Delivery;
use crate::telegram::errors::SendError;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::watch;

impl Broadcaster {
    /// Send one delivery at the slot just granted and record the answer.
    /// Runs as a task of its own; a 429 or a migration retries here, at a
    /// new slot.
    pub(super) async fn deliver(
        &self,
        d: Delivery,
        text: Arc<str>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Outcome {
        let mut chat = d.chat_id;
        let mut migrations = 0;
        let id = d.id;
        loop {
            // In flight: not abandoned on shutdown, so its outcome is recorded.
            let outcome = self.sender.send(chat, &text).await;
            match outcome {
                Ok(SentId(message_id)) => {
                    self.consecutive_transient.store(0, Ordering::Relaxed);
                    self.record("sent", move |s| s.mark_sent(id, message_id))
                        .await;
                    return Outcome::Recorded;
                }
                Err(SendError::RetryAfter(wait)) => {
                    crate::metrics::metrics().too_many_requests.inc();
                    tracing::warn!(
                        chat,
                        wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        "Telegram asked to slow down (429); pausing all sends"
                    );
                    self.budget.pause(wait).await;
                }
                Err(SendError::MigratedTo(to)) if migrations < 3 => {
                    tracing::info!(from = chat, to, "group migrated to a supergroup");
                    let from = chat;
                    self.record("migrated", move |s| s.migrate_chat(from, to))
                        .await;
                    chat = to;
                    migrations += 1;
                }
                Err(SendError::MigratedTo(to)) => {
                    let error = format!("migrated again (to {to}); giving up");
                    self.record("failed", move |s| s.mark_failed(id, &error))
                        .await;
                    return Outcome::Recorded;
                }
                Err(SendError::Blocked(reason)) => {
                    self.consecutive_transient.store(0, Ordering::Relaxed);
                    tracing::info!(chat, %reason, "chat unreachable; unsubscribed");
                    self.record("blocked", move |s| s.mark_blocked(id, &reason))
                        .await;
                    return Outcome::Recorded;
                }
                Err(SendError::Transient(error)) => {
                    let in_a_row = self
                        .consecutive_transient
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                            Some(n.saturating_add(1))
                        })
                        .map_or(u32::MAX, |n| n.saturating_add(1));
                    let attempts = d.attempts + 1;
                    if attempts >= self.settings.max_attempts {
                        tracing::warn!(chat, attempts, %error, "delivery failed; giving up");
                        let error = format!("{error} (after {attempts} attempts)");
                        self.record("failed", move |s| s.mark_failed(id, &error))
                            .await;
                    } else {
                        let retry_in = self.settings.backoff(attempts);
                        tracing::warn!(chat, attempts, %error, "delivery failed; will retry");
                        self.record("retry", move |s| s.mark_retry(id, &error, retry_in))
                            .await;
                    }
                    // Errors in a row usually mean Telegram or the network is
                    // down for everyone: slow everything down, not just this row.
                    let pause = self.settings.backoff(in_a_row);
                    self.budget.pause(pause).await;
                    return Outcome::Recorded;
                }
                // (Announcements carry no files; a refused file is refused
                // for this chat like any other permanent error.)
                Err(SendError::Permanent(error) | SendError::BadFile(error)) => {
                    self.consecutive_transient.store(0, Ordering::Relaxed);
                    tracing::warn!(chat, %error, "delivery refused");
                    self.record("failed", move |s| s.mark_failed(id, &error))
                        .await;
                    return Outcome::Recorded;
                }
                Err(SendError::BadMessage(error)) => {
                    self.consecutive_transient.store(0, Ordering::Relaxed);
                    return Outcome::Refused(error);
                }
            }
            // The same delivery again at a new slot (after the pause, if any).
            match self.slot(id, chat, &mut shutdown).await {
                Slot::Send => {}
                Slot::Skip => return Outcome::Skipped,
                Slot::Stopped => return Outcome::Abandoned,
            }
        }
    }

    /// The text is refused by Telegram: cancel the whole announcement.
    pub(super) async fn abort(&self, st: &mut RunState, d: Delivery, error: String) {
        let (id, announcement) = (d.id, d.announcement_id);
        let first = st.aborted.insert(announcement);
        if first {
            tracing::error!(%announcement, %error, "Telegram refuses the announcement text; cancelling it");
        }
        let message = error.clone();
        self.record("failed", move |s| s.mark_failed(id, &message))
            .await;
        // Again for another send refused while in flight: cancelling twice is fine.
        self.record("cancelled", move |s| s.cancel(announcement))
            .await;
        st.texts.remove(&announcement);
        if !first {
            return;
        }
        st.dirty.remove(&announcement);
        st.last_report.remove(&announcement);
        if let Some(report) = self.report(announcement).await {
            self.emit(BroadcastEvent::Aborted { report, error });
        }
    }
}
