//! The delivery worker: leases outbox rows, waits for a slot, sends, records.
//!
//! - `deliver`: one send and what Telegram's answer means for the row;
//! - `report`: progress events and finishing announcements.

mod deliver;
mod report;

use super::budget::Budget;
use super::pacer::Pacer;
use super::progress::BroadcastEvent;
use super::sender::AnnouncementSender;
use super::settings::{BroadcastSettings, SettingsError};
use crate::store::{
    AnnouncementId, AnnouncementState, BeginSend, Delivery, DeliveryId, Store, StoreError,
    StoreResult,
};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::{self, JoinError, JoinSet};

/// How long an outcome is retried while the database is unreachable (e.g.
/// restarting) before it is given up (the row is then sent again later).
const RECORD_PATIENCE: Duration = Duration::from_secs(60);

/// The delivery worker. See the module documentation.
pub struct Broadcaster {
    store: Arc<dyn Store>,
    sender: Arc<dyn AnnouncementSender>,
    settings: BroadcastSettings,
    budget: Budget,
    /// This worker's name on the rows it leases.
    worker: String,
    events: Option<mpsc::UnboundedSender<BroadcastEvent>>,
    /// Transient errors in a row, over every send (shared by the sends in flight).
    consecutive_transient: AtomicU32,
}

enum Text {
    Send(Arc<str>),
    NotQueued(AnnouncementState),
    Unavailable,
}

/// Whether a delivery may go out at the slot just waited for.
enum Slot {
    Send,
    /// Settled meanwhile, or another worker took it: nothing to do.
    Skip,
    /// Shutdown came during the wait.
    Stopped,
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
    /// Settled by someone else before a retry: nothing was sent.
    Skipped,
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

/// A name for this worker on the rows it leases: unique per process.
fn worker_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{host}:{}:{nanos:08x}", std::process::id())
}

impl Broadcaster {
    pub fn new(
        store: Arc<dyn Store>,
        sender: Arc<dyn AnnouncementSender>,
        settings: BroadcastSettings,
    ) -> Result<Broadcaster, SettingsError> {
        settings.validate()?;
        Ok(Broadcaster {
            budget: Budget::for_store(&store, &settings),
            store,
            sender,
            settings,
            worker: worker_name(),
            events: None,
            consecutive_transient: AtomicU32::new(0),
        })
    }

    /// Use a pacer shared with other senders of this process (instead of
    /// the worker's own). Ignored when the store shares a budget between
    /// processes: that one counts every send.
    pub fn with_pacer(self, pacer: Arc<Pacer>) -> Broadcaster {
        if self.budget.is_shared() {
            return self;
        }
        Broadcaster {
            budget: Budget::Local(pacer),
            ..self
        }
    }

    /// This worker's name on the rows it leases.
    pub fn worker(&self) -> &str {
        &self.worker
    }

    /// Progress events from now on (replaces an earlier receiver).
    pub fn events(&mut self) -> mpsc::UnboundedReceiver<BroadcastEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.events = Some(tx);
        rx
    }

    /// Deliver until `shutdown` turns `true` (or its sender is dropped).
    /// Every send in flight (up to `max_in_flight`) is finished and recorded
    /// before this returns; a wait for a slot or a retry is abandoned at
    /// once, and the rows this worker leased are given back.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        tracing::info!(
            rate_per_sec = self.settings.rate_per_sec,
            max_in_flight = self.settings.max_in_flight,
            shared_budget = self.budget.is_shared(),
            worker = %self.worker,
            "announcement delivery started"
        );
        let this = Arc::new(self);
        Arc::clone(&this).work(shutdown).await;
        let worker = this.worker.clone();
        if let Err(e) = this.blocking(move |s| s.release_leases(&worker)).await {
            tracing::warn!(error = %e, "cannot give back leased deliveries; they are free after the lease");
        }
        tracing::info!("announcement delivery stopped");
    }

    async fn work(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let max_in_flight = self.settings.max_in_flight.max(1);
        let lease = self.settings.lease();
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
            // Rows being sent are still pending (and leased to us): read
            // past them and leave them out, so that none is sent twice.
            let held = flight.held();
            let limit = self.settings.lease_batch() + held;
            let worker = self.worker.clone();
            let leased = self
                .blocking(move |s| s.lease_pending(&worker, limit, lease))
                .await;
            let batch = match leased {
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
                if flight.holds(d.id) {
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
                // Leased a while ago: sent only if it is still pending and
                // ours (not cancelled, unsubscribed, blocked or taken since).
                match self.slot(d.id, d.chat_id, &mut shutdown).await {
                    Slot::Send => {}
                    Slot::Skip => continue,
                    Slot::Stopped => break 'outer,
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

    /// Wait for a slot for delivery `id` to `chat`, then claim the row for
    /// the send (renewing its lease). A pause that began meanwhile in
    /// another instance means a new slot after it.
    async fn slot(&self, id: DeliveryId, chat: i64, shutdown: &mut watch::Receiver<bool>) -> Slot {
        let lease = self.settings.lease();
        loop {
            tokio::select! {
                biased;
                _ = stopped(shutdown) => return Slot::Stopped,
                _ = self.budget.wait(Some(chat)) => {}
            }
            let worker = self.worker.clone();
            match self
                .blocking(move |s| s.begin_send(id, &worker, lease))
                .await
            {
                Ok(BeginSend::Send) => return Slot::Send,
                Ok(BeginSend::Skip) => return Slot::Skip,
                Ok(BeginSend::Paused(_)) => continue,
                Err(e) => {
                    tracing::error!(delivery = %id, error = %e, "cannot claim a delivery; trying again");
                    if tokio::time::timeout(Duration::from_millis(500), stopped(shutdown))
                        .await
                        .is_ok()
                    {
                        return Slot::Stopped;
                    }
                }
            }
        }
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
            Outcome::Abandoned | Outcome::Skipped => return,
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

    /// Record an outcome. While the database is unreachable (a restart, a
    /// lost connection) it is tried again for up to a minute: an outcome not
    /// recorded means a message sent twice. Given up, it is logged (the row
    /// stays pending and is sent again later).
    async fn record<T, F>(&self, what: &'static str, f: F) -> Option<T>
    where
        T: Send + 'static,
        F: Fn(&dyn Store) -> StoreResult<T> + Send + Sync + 'static,
    {
        let m = crate::metrics::metrics();
        match what {
            "sent" => m.broadcast_sent.inc(),
            "failed" => m.broadcast_failed.inc(),
            _ => 0,
        };
        let f = Arc::new(f);
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let f = Arc::clone(&f);
            match self.blocking(move |s| f(s)).await {
                Ok(v) => {
                    if attempt > 1 {
                        tracing::info!(what, attempt, "recorded a delivery after retrying");
                    }
                    return Some(v);
                }
                Err(e) if started.elapsed() < RECORD_PATIENCE => {
                    if attempt == 1 {
                        tracing::warn!(what, error = %e, "cannot record a delivery; retrying");
                    }
                    let wait = (Duration::from_millis(200) * attempt).min(Duration::from_secs(2));
                    tokio::time::sleep(wait).await;
                }
                Err(e) => {
                    tracing::error!(what, error = %e, "giving up recording a delivery");
                    return None;
                }
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
}

#[cfg(test)]
mod tests;
