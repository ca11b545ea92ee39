//! The delivery worker: reads the outbox, waits for a slot, sends, records.

use super::pacer::Pacer;
use super::progress::{BroadcastEvent, ProgressReport};
use super::sender::{AnnouncementSender, SentId};
use super::settings::{BroadcastSettings, SettingsError};
use crate::store::{
    AnnouncementId, AnnouncementState, Delivery, DeliveryId, DeliveryState, Store, StoreError,
    StoreResult,
};
use crate::telegram::errors::SendError;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::{self, JoinError, JoinSet};

/// The delivery worker. See the module documentation.
pub struct Broadcaster {
    store: Arc<dyn Store>,
    sender: Arc<dyn AnnouncementSender>,
    settings: BroadcastSettings,
    pacer: Arc<Pacer>,
    events: Option<mpsc::UnboundedSender<BroadcastEvent>>,
    /// Transient errors in a row, over every send (shared by the sends in flight).
    consecutive_transient: AtomicU32,
}

enum Text {
    Send(Arc<str>),
    NotQueued(AnnouncementState),
    Unavailable,
}

/// How one send (with its 429 and migration retries) ended.
enum Outcome {
    /// Telegram's answer is recorded (or recording it was given up, logged).
    Recorded,
    /// Telegram refused the text itself. Nothing is recorded yet: the
    /// worker's loop fails the delivery and cancels the announcement.
    Refused(String),
    /// Shutdown came during a wait to retry; the delivery stays pending.
    Abandoned,
}

/// What a send task hands back.
struct Ended {
    delivery: Delivery,
    outcome: Outcome,
}

/// The sends awaiting Telegram's answer or the recording of it.
struct InFlight {
    tasks: JoinSet<Ended>,
    by_task: HashMap<task::Id, DeliveryId>,
    /// Still `Pending` in the database: never handed out a second time.
    deliveries: HashSet<DeliveryId>,
    /// Sends whose task panicked, perhaps after Telegram took the message:
    /// not handed out again until the worker restarts (as after a crash).
    stuck: HashSet<DeliveryId>,
}

impl InFlight {
    fn new() -> InFlight {
        InFlight {
            tasks: JoinSet::new(),
            by_task: HashMap::new(),
            deliveries: HashSet::new(),
            stuck: HashSet::new(),
        }
    }

    /// Rows in the outbox that must not be handed out now.
    fn held(&self) -> usize {
        self.deliveries.len() + self.stuck.len()
    }

    fn holds(&self, id: DeliveryId) -> bool {
        self.deliveries.contains(&id) || self.stuck.contains(&id)
    }
}

type Joined = Result<(task::Id, Ended), JoinError>;

#[derive(Default)]
struct RunState {
    /// Texts of announcements being sent.
    texts: HashMap<AnnouncementId, Arc<str>>,
    last_report: HashMap<AnnouncementId, Instant>,
    /// Announcements with sends since their last report.
    dirty: HashSet<AnnouncementId>,
    /// Announcements cancelled because Telegram refused their text (several
    /// sends in flight may be refused; the announcement is aborted once).
    aborted: HashSet<AnnouncementId>,
}

fn stop_requested(shutdown: &watch::Receiver<bool>) -> bool {
    *shutdown.borrow() || shutdown.has_changed().is_err()
}

/// Resolves once `true` is sent, or the sender is dropped.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

impl Broadcaster {
    pub fn new(
        store: Arc<dyn Store>,
        sender: Arc<dyn AnnouncementSender>,
        settings: BroadcastSettings,
    ) -> Result<Broadcaster, SettingsError> {
        settings.validate()?;
        Ok(Broadcaster {
            pacer: Arc::new(Pacer::from_settings(&settings)),
            store,
            sender,
            settings,
            events: None,
            consecutive_transient: AtomicU32::new(0),
        })
    }

    /// Use a pacer shared with other senders (instead of the worker's own).
    pub fn with_pacer(self, pacer: Arc<Pacer>) -> Broadcaster {
        Broadcaster { pacer, ..self }
    }

    /// The pacer the worker uses; give it to other senders of the bot.
    pub fn pacer(&self) -> Arc<Pacer> {
        Arc::clone(&self.pacer)
    }

    /// Progress events from now on (replaces an earlier receiver).
    pub fn events(&mut self) -> mpsc::UnboundedReceiver<BroadcastEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.events = Some(tx);
        rx
    }

    /// Deliver until `shutdown` turns `true` (or its sender is dropped).
    /// Every send in flight (up to `max_in_flight`) is finished and recorded
    /// before this returns; a wait for a slot or a retry is abandoned at once.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        tracing::info!(
            rate_per_sec = self.settings.rate_per_sec,
            max_in_flight = self.settings.max_in_flight,
            "announcement delivery started"
        );
        Arc::new(self).work(shutdown).await;
        tracing::info!("announcement delivery stopped");
    }

    async fn work(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let max_in_flight = self.settings.max_in_flight.max(1);
        let mut st = RunState::default();
        let mut flight = InFlight::new();
        'outer: loop {
            if stop_requested(&shutdown) {
                break;
            }
            while let Some(joined) = flight.tasks.try_join_next_with_id() {
                self.settle(&mut st, &mut flight, joined).await;
            }
            self.finish_completed(&mut st).await;
            // Rows being sent are still pending: read past them and leave
            // them out, so that none is handed out twice.
            let held = flight.held();
            let limit = self.settings.batch + held;
            let batch = match self.blocking(move |s| s.next_pending(limit)).await {
                Ok(mut batch) => {
                    if held > 0 {
                        batch.retain(|d| !flight.holds(d.id));
                    }
                    batch
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the outbox; trying again");
                    if self.idle(&mut shutdown).await {
                        break;
                    }
                    continue;
                }
            };
            if batch.is_empty() {
                // Sends still in flight: their answers may finish an
                // announcement (or schedule a retry); look again after one.
                if let Some(joined) = flight.tasks.join_next_with_id().await {
                    self.settle(&mut st, &mut flight, joined).await;
                    continue;
                }
                st.texts.clear();
                if self.idle(&mut shutdown).await {
                    break;
                }
                continue;
            }
            let mut attempted = false;
            for d in batch {
                if stop_requested(&shutdown) {
                    break 'outer;
                }
                // Room for one more send: with one at a time, the previous
                // answer is recorded before the next row is even re-read.
                while flight.tasks.len() >= max_in_flight {
                    match flight.tasks.join_next_with_id().await {
                        Some(joined) => self.settle(&mut st, &mut flight, joined).await,
                        None => break,
                    }
                }
                while let Some(joined) = flight.tasks.try_join_next_with_id() {
                    self.settle(&mut st, &mut flight, joined).await;
                }
                if stop_requested(&shutdown) {
                    break 'outer;
                }
                // Read a while ago: skip it if it was cancelled, or its chat
                // unsubscribed or got blocked, since.
                if flight.holds(d.id) || !self.still_pending(d).await {
                    continue;
                }
                let text = match self.text_for(&mut st, d.announcement_id).await {
                    Text::Send(text) => text,
                    Text::NotQueued(state) => {
                        // Cannot happen through the Store API; do not let such
                        // a row block the queue.
                        let error = format!("announcement {} is {state}", d.announcement_id);
                        let id = d.id;
                        self.record("failed", move |s| s.mark_failed(id, &error))
                            .await;
                        continue;
                    }
                    Text::Unavailable => continue,
                };
                attempted = true;
                tokio::select! {
                    biased;
                    _ = stopped(&mut shutdown) => break 'outer,
                    _ = self.pacer.wait(Some(d.chat_id)) => {}
                }
                // The slot is now: send without waiting for earlier answers.
                let this = Arc::clone(&self);
                let rx = shutdown.clone();
                let handle = flight.tasks.spawn(async move {
                    let outcome = this.deliver(d, text, rx).await;
                    Ended {
                        delivery: d,
                        outcome,
                    }
                });
                flight.by_task.insert(handle.id(), d.id);
                flight.deliveries.insert(d.id);
            }
            // Nothing could be sent (database trouble?): do not spin.
            if !attempted && self.idle(&mut shutdown).await {
                break;
            }
        }
        // Every send in flight is answered and recorded before returning.
        while let Some(joined) = flight.tasks.join_next_with_id().await {
            self.settle(&mut st, &mut flight, joined).await;
        }
        self.report_due(&mut st, true).await;
    }

    /// A send ended: forget it as in flight, abort its announcement if the
    /// text was refused, and report progress when due.
    async fn settle(&self, st: &mut RunState, flight: &mut InFlight, joined: Joined) {
        let ended = match joined {
            Ok((task, ended)) => {
                flight.by_task.remove(&task);
                flight.deliveries.remove(&ended.delivery.id);
                ended
            }
            Err(e) => {
                // A send that panicked: its row stays pending, for the next
                // start of the worker (sending it again now could repeat a
                // message over and over).
                match flight.by_task.remove(&e.id()) {
                    Some(id) => {
                        flight.deliveries.remove(&id);
                        flight.stuck.insert(id);
                        tracing::error!(delivery = %id, error = %e, "a send ended abnormally; left for the next start");
                    }
                    None => tracing::error!(error = %e, "a send ended abnormally"),
                }
                return;
            }
        };
        let d = ended.delivery;
        match ended.outcome {
            Outcome::Recorded => {}
            Outcome::Abandoned => return,
            Outcome::Refused(error) => self.abort(st, d, error).await,
        }
        st.dirty.insert(d.announcement_id);
        self.report_due(st, false).await;
    }

    async fn idle(&self, shutdown: &mut watch::Receiver<bool>) -> bool {
        tokio::select! {
            biased;
            _ = stopped(shutdown) => true,
            _ = tokio::time::sleep(self.settings.poll_interval()) => false,
        }
    }

    async fn blocking<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> StoreResult<T> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|e| StoreError::Database(Box::new(e)))?
    }

    /// Record an outcome; a failing database is retried a few times, then
    /// logged (the row stays pending and is sent again later).
    async fn record<T, F>(&self, what: &'static str, f: F) -> Option<T>
    where
        T: Send + 'static,
        F: Fn(&dyn Store) -> StoreResult<T> + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        let mut last = None;
        for attempt in 1..=3u32 {
            let f = Arc::clone(&f);
            match self.blocking(move |s| f(s)).await {
                Ok(v) => return Some(v),
                Err(e) => {
                    tracing::warn!(what, attempt, error = %e, "cannot record a delivery");
                    last = Some(e);
                    tokio::time::sleep(Duration::from_millis(200) * attempt).await;
                }
            }
        }
        if let Some(e) = last {
            tracing::error!(what, error = %e, "giving up recording a delivery");
        }
        None
    }

    fn emit(&self, event: BroadcastEvent) {
        if let Some(tx) = &self.events {
            // Nobody listening is fine.
            let _ = tx.send(event);
        }
    }

    async fn still_pending(&self, d: Delivery) -> bool {
        match self.blocking(move |s| s.delivery(d.id)).await {
            Ok(Some(info)) => info.state == DeliveryState::Pending,
            Ok(None) => false,
            Err(e) => {
                tracing::error!(delivery = %d.id, error = %e, "cannot read a delivery");
                false
            }
        }
    }

    async fn text_for(&self, st: &mut RunState, id: AnnouncementId) -> Text {
        if let Some(text) = st.texts.get(&id) {
            return Text::Send(Arc::clone(text));
        }
        match self.blocking(move |s| s.announcement(id)).await {
            Ok(Some(a)) if a.state == AnnouncementState::Queued => {
                let text: Arc<str> = Arc::from(a.text_html);
                st.texts.insert(id, Arc::clone(&text));
                Text::Send(text)
            }
            Ok(Some(a)) => Text::NotQueued(a.state),
            Ok(None) => {
                tracing::error!(announcement = %id, "deliveries of a missing announcement");
                Text::Unavailable
            }
            Err(e) => {
                tracing::error!(announcement = %id, error = %e, "cannot read an announcement");
                Text::Unavailable
            }
        }
    }

    /// Send one delivery at the slot just granted and record the answer.
    /// Runs as a task of its own; a 429 or a migration retries here, at a
    /// new slot.
    async fn deliver(
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
                    tracing::warn!(
                        chat,
                        wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        "Telegram asked to slow down (429); pausing all sends"
                    );
                    self.pacer.pause_until(Instant::now() + wait);
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
                    self.pacer.pause_until(Instant::now() + pause);
                    return Outcome::Recorded;
                }
                Err(SendError::Permanent(error)) => {
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
            tokio::select! {
                biased;
                _ = stopped(&mut shutdown) => return Outcome::Abandoned,
                _ = self.pacer.wait(Some(chat)) => {}
            }
        }
    }

    /// The text is refused by Telegram: cancel the whole announcement.
    async fn abort(&self, st: &mut RunState, d: Delivery, error: String) {
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

    async fn report(&self, id: AnnouncementId) -> Option<ProgressReport> {
        let fetched = self
            .blocking(move |s| Ok((s.progress(id)?, s.announcement(id)?)))
            .await;
        match fetched {
            Ok((progress, Some(a))) => Some(ProgressReport {
                announcement: id,
                state: a.state,
                progress,
                eta: self.settings.eta(progress.pending),
                progress_message: a.progress_message,
            }),
            Ok((_, None)) => None,
            Err(e) => {
                tracing::warn!(announcement = %id, error = %e, "cannot read progress");
                None
            }
        }
    }

    /// Progress events for announcements with news, at most one per
    /// `progress_interval` each (`all`: every one with news, now).
    async fn report_due(&self, st: &mut RunState, all: bool) {
        let now = Instant::now();
        let interval = self.settings.progress_interval();
        let due: Vec<AnnouncementId> = st
            .dirty
            .iter()
            .copied()
            .filter(|id| {
                all || st
                    .last_report
                    .get(id)
                    .is_none_or(|t| now.duration_since(*t) >= interval)
            })
            .collect();
        for id in due {
            st.dirty.remove(&id);
            st.last_report.insert(id, now);
            if let Some(report) = self.report(id).await {
                if report.state != AnnouncementState::Queued {
                    st.texts.remove(&id);
                }
                self.emit(BroadcastEvent::Progress(report));
            }
        }
    }

    /// Queued announcements with nothing pending become `Done`.
    async fn finish_completed(&self, st: &mut RunState) {
        let queued = match self.blocking(|s| s.pending_announcements()).await {
            Ok(queued) => queued,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list queued announcements");
                return;
            }
        };
        for a in queued {
            let id = a.id;
            match self.blocking(move |s| s.complete_if_done(id)).await {
                Ok(true) => {
                    st.texts.remove(&id);
                    st.dirty.remove(&id);
                    st.last_report.remove(&id);
                    if let Some(report) = self.report(id).await {
                        tracing::info!(
                            announcement = %id,
                            sent = report.progress.sent,
                            blocked = report.progress.blocked,
                            failed = report.progress.failed,
                            "announcement delivered"
                        );
                        self.emit(BroadcastEvent::Finished(report));
                    }
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(announcement = %id, error = %e, "cannot finish"),
            }
        }
    }
}

#[cfg(test)]
mod tests;
