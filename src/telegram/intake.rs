//! Admission: what happens to an update between being read (getUpdates now,
//! a webhook body later — both call [`Intake::offer`]) and the dispatcher's
//! per-chat queues.
//!
//! - An update that cannot be read is skipped and counted; the log names its
//!   `update_id` and what is wrong, never its content.
//! - Flooding is counted here, on arrival, per sender — not when the message
//!   is finally handled, which behind a slow chat can be much later. Over the
//!   limit: one polite notice (sent in order by the chat's handler), then the
//!   sender's messages are dropped here until the cool-down ends.
//! - Each chat's queue is bounded ([`Admission`]): the dispatcher waits when
//!   a chat's queue is full, which would stall every chat, so an update for
//!   a full chat is dropped (and logged) instead.
//! - So is the number of updates in progress overall: beyond it the reader
//!   waits, and updates wait at Telegram, unread (memory stays flat under a
//!   burst of thousands of users).

use super::App;
use super::flood::Verdict;
use super::handlers::addressed;
use super::updates::Incoming;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use teloxide::stop::StopToken;
use teloxide::types::{Me, Update, UpdateKind};
use teloxide::update_listeners::{AsUpdateStream, UpdateListener};
use tokio::sync::mpsc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_stream::wrappers::ReceiverStream;

/// The dispatcher's queue key of an update: its chat, else its sender (an
/// inline query has no chat), else none (one shared queue).
pub fn queue_key(update: &Update) -> Option<i64> {
    update
        .chat()
        .map(|c| c.id.0)
        .or_else(|| update.from().map(|u| u.id.0 as i64))
}

/// Places a dispatcher queue has beyond `max_queued_per_chat`.
pub const HEADROOM: usize = 8;

/// How many updates are admitted and not yet handled: at most
/// `max_per_queue` per queue (one chat cannot fill the dispatcher) and
/// `max_total` in all (the bot's memory stays flat; beyond that, updates
/// wait at Telegram, unread and unconfirmed).
#[derive(Debug)]
pub struct Admission {
    max_per_queue: usize,
    queued: Mutex<HashMap<Option<i64>, usize>>,
    places: Arc<Semaphore>,
    /// Updates on their way to a handler, by update id.
    tickets: Mutex<HashMap<u32, Ticket>>,
}

#[derive(Debug)]
struct Ticket {
    key: Option<i64>,
    _place: OwnedSemaphorePermit,
}

/// Held while an update is handled: dropping it (when the handler is done)
/// frees the update's place.
#[derive(Debug)]
pub struct Handling {
    admission: Arc<Admission>,
    ticket: Option<Ticket>,
}

impl Drop for Handling {
    fn drop(&mut self) {
        if let Some(t) = self.ticket.take() {
            self.admission.release(t.key);
        }
    }
}

impl Admission {
    pub fn new(max_per_queue: usize, max_total: usize) -> Self {
        Admission {
            max_per_queue: max_per_queue.max(1),
            queued: Mutex::new(HashMap::new()),
            places: Arc::new(Semaphore::new(max_total.max(1))),
            tickets: Mutex::new(HashMap::new()),
        }
    }

    /// Room for one more in this queue? Counts it if so. A message owed
    /// the flood notice may use a few places beyond the limit (the
    /// dispatcher's queues have that much headroom, see `HEADROOM`).
    fn admit(&self, key: Option<i64>, owed_notice: bool) -> bool {
        let mut q = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        let n = q.entry(key).or_insert(0);
        let max = if owed_notice {
            self.max_per_queue + HEADROOM / 2
        } else {
            self.max_per_queue
        };
        if *n >= max {
            return false;
        }
        *n += 1;
        true
    }

    fn release(&self, key: Option<i64>) {
        let mut q = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = q.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                q.remove(&key);
            }
        }
    }

    /// Wait for a place among all updates in progress.
    async fn place(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.places).acquire_owned().await.ok()
    }

    fn hand_over(&self, update: &Update, key: Option<i64>, place: OwnedSemaphorePermit) {
        self.tickets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(update.id.0, Ticket { key, _place: place });
    }

    /// A handler takes up `update`: hold the result until it is done.
    pub fn handling(self: &Arc<Self>, update: &Update) -> Handling {
        let ticket = self
            .tickets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&update.id.0);
        Handling {
            admission: Arc::clone(self),
            ticket,
        }
    }

    /// Updates admitted and not yet handled, in all queues.
    pub fn total(&self) -> usize {
        self.queued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .sum()
    }
}

/// What admission did, since start-up.
#[derive(Debug, Default)]
pub struct IntakeStats {
    pub bad: AtomicU64,
    pub unknown: AtomicU64,
    pub repaired: AtomicU64,
    pub flood_dropped: AtomicU64,
    pub backlog_dropped: AtomicU64,
}

impl IntakeStats {
    fn bump(counter: &AtomicU64) -> u64 {
        counter.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn log_summary(&self) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        tracing::info!(
            unreadable = get(&self.bad),
            unknown_kinds = get(&self.unknown),
            read_in_part = get(&self.repaired),
            flood_dropped = get(&self.flood_dropped),
            queue_full_dropped = get(&self.backlog_dropped),
            "updates skipped since start-up"
        );
    }
}

/// Count a message against its sender's flood limit, on arrival. `None`:
/// drop it (the sender is cooling down); `Some(true)`: this is the message
/// that crossed the limit (its handler sends the notice).
fn flood_check(app: &App, me: &Me, update: &Update) -> Option<bool> {
    let UpdateKind::Message(msg) = &update.kind else {
        return Some(false);
    };
    let Some(a) = addressed(msg, me) else {
        return Some(false);
    };
    match app.flood.check(a.flood_key(), Instant::now()) {
        Verdict::Allow => Some(false),
        Verdict::Warn => {
            tracing::info!(
                chat = msg.chat.id.0,
                sender = a.flood_key(),
                "flood limit reached; one notice, then cooling down"
            );
            app.flood.owe_notice(msg.chat.id.0, msg.id.0);
            Some(true)
        }
        Verdict::Drop => {
            IntakeStats::bump(&app.intake_stats.flood_dropped);
            None
        }
    }
}

/// Flood admission for a webhook delivery: false when it is dropped.
pub(crate) fn admit_flood(app: &App, me: &Me, update: &Update) -> bool {
    flood_check(app, me, update).is_some()
}

/// Hands updates to the dispatcher.
#[derive(Clone)]
pub struct Intake {
    app: Arc<App>,
    me: Me,
    tx: mpsc::Sender<Result<Update, Infallible>>,
}

impl Intake {
    /// An intake and the listener the dispatcher reads from. `stop` is what
    /// the dispatcher's shutdown triggers; whoever reads updates watches it.
    pub fn new(app: Arc<App>, me: Me, stop: StopToken) -> (Intake, ChannelListener) {
        // A batch of getUpdates is at most 100; the dispatcher only moves
        // updates to per-chat queues, which never wait (see `Backlog`).
        let (tx, rx) = mpsc::channel(128);
        (
            Intake { app, me, tx },
            ChannelListener {
                updates: ReceiverStream::new(rx),
                stop,
            },
        )
    }

    /// Take one update as read. False once the dispatcher is gone.
    pub async fn offer(&self, incoming: Incoming) -> bool {
        let stats = &self.app.intake_stats;
        crate::metrics::metrics().update(incoming.kind_name());
        let update = match incoming {
            Incoming::Update { update, dropped } => {
                if !dropped.is_empty() {
                    let n = IntakeStats::bump(&stats.repaired);
                    tracing::info!(
                        update_id = update.id.0,
                        left_out = ?dropped,
                        read_in_part = n,
                        "update read without the parts this version does not know"
                    );
                }
                update
            }
            Incoming::Unknown { id, kind } => {
                let n = IntakeStats::bump(&stats.unknown);
                tracing::info!(
                    update_id = id,
                    kind,
                    unknown_kinds = n,
                    "unknown kind of update skipped"
                );
                return true;
            }
            Incoming::Bad { id, error } => {
                let n = IntakeStats::bump(&stats.bad);
                tracing::warn!(update_id = ?id, error, unreadable = n, "unreadable update skipped");
                return true;
            }
        };
        if matches!(update.kind, UpdateKind::Error(_)) {
            return true;
        }
        let key = queue_key(&update);
        let Some(owed_notice) = flood_check(&self.app, &self.me, &update) else {
            return true;
        };
        let admission = &self.app.admission;
        if !admission.admit(key, owed_notice) {
            let n = IntakeStats::bump(&stats.backlog_dropped);
            tracing::warn!(
                update_id = update.id.0,
                queue = ?key,
                queue_full_dropped = n,
                "this chat's queue is full; update dropped"
            );
            return true;
        }
        // Waits while the bot is busy with as many updates as it takes.
        let Some(place) = admission.place().await else {
            admission.release(key);
            return false;
        };
        admission.hand_over(&update, key, place);
        if let Err(e) = self.tx.send(Ok(*update)).await {
            let Ok(u) = e.0;
            drop(admission.handling(&u));
            return false;
        }
        true
    }
}

/// The dispatcher's update listener: whatever the intake admitted, until
/// the reader stops and drops its [`Intake`].
pub struct ChannelListener {
    updates: ReceiverStream<Result<Update, Infallible>>,
    stop: StopToken,
}

impl UpdateListener for ChannelListener {
    type Err = Infallible;

    fn stop_token(&mut self) -> StopToken {
        self.stop.clone()
    }
}

impl<'a> AsUpdateStream<'a> for ChannelListener {
    type StreamErr = Infallible;
    type Stream = &'a mut ReceiverStream<Result<Update, Infallible>>;

    fn as_stream(&'a mut self) -> Self::Stream {
        &mut self.updates
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_is_bounded_per_queue() {
        let a = Admission::new(2, 100);
        assert!(a.admit(Some(1), false) && a.admit(Some(1), false));
        assert!(!a.admit(Some(1), false), "a third one in the same chat");
        assert!(a.admit(Some(1), true), "but the flood notice gets through");
        assert!(a.admit(Some(2), false), "other chats are not affected");
        a.release(Some(1));
        a.release(Some(1));
        assert!(a.admit(Some(1), false));
        assert_eq!(a.total(), 3);
        a.release(Some(1));
        a.release(Some(1));
        a.release(Some(2));
        assert_eq!(a.total(), 0);
        a.release(Some(2));
        assert_eq!(a.total(), 0, "never below zero");
    }

    #[tokio::test]
    async fn a_place_comes_back_when_the_handling_ends() {
        let a = Arc::new(Admission::new(10, 1));
        let update: Update = serde_json::from_str(
            r#"{"update_id": 5, "message": {"message_id": 1, "date": 1,
                "chat": {"id": 9, "type": "private", "first_name": "A"},
                "from": {"id": 9, "is_bot": false, "first_name": "A"}, "text": "hi"}}"#,
        )
        .unwrap();
        assert!(a.admit(Some(9), false));
        let place = a.place().await.unwrap();
        a.hand_over(&update, Some(9), place);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), a.place())
                .await
                .is_err(),
            "one place only"
        );
        let handling = a.handling(&update);
        assert_eq!(a.total(), 1);
        drop(handling);
        assert_eq!(a.total(), 0);
        assert!(a.place().await.is_some());
    }
}
