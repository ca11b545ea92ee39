//! Delivering announcements to subscribers: paced, retried, resumable.
//!
//! [`Broadcaster::run`] is one long-lived task. It reads the outbox in
//! batches ([`Store::next_pending`]), waits for a [`Pacer`] slot before each
//! message, sends it with an [`AnnouncementSender`] (in the product,
//! [`TelegramSender`]) and records Telegram's answer.
//!
//! By default (`max_in_flight = 1`) one send at a time awaits Telegram's
//! answer: the next message goes out only once the previous answer is
//! recorded. With `max_in_flight = K > 1` each send (and the recording of
//! its answer) runs as a task of its own, at most K at once; the slots are
//! still the pacer's, so the rate, the per-chat gap and a 429's pause are
//! the same. This is for fast self-hosted Bot API servers, where one round
//! trip at a time, not the rate, would be the limit (about 280 messages/s on
//! loopback); at Telegram's 30/s one at a time is plenty.
//!
//! # Crash safety
//!
//! A delivery is marked `Sent` only after Telegram answered OK, and at most
//! `max_in_flight` sends are unanswered or unrecorded at any time. So if the
//! process dies at any moment (kill -9 included):
//!
//! - nothing is lost: every delivery not recorded as sent is still `Pending`
//!   in the database and goes out when the worker starts again;
//! - at most `max_in_flight` messages (by default one) are sent twice: the
//!   ones in flight when the process died (sent by Telegram, not yet
//!   recorded).
//!
//! The same holds on a clean shutdown, minus the duplicates: the worker
//! finishes every send in flight and records it before it returns. (A
//! timed-out request that Telegram did deliver is retried, so a slow
//! network can also cause a duplicate; this is the price of never losing one.)
//!
//! # Error policy
//!
//! | Telegram says | worker does |
//! |---|---|
//! | OK | `Sent`, with the message id |
//! | 429 `retry_after` | pauses **every** send (the shared pacer) that long, retries the same delivery; not an attempt |
//! | bot blocked / kicked, chat not found, user deactivated … | `Blocked`; the chat is unsubscribed and its other pending deliveries blocked |
//! | group migrated to a supergroup | moves the subscription to the new id, sends there |
//! | 5xx, network error, timeout | counts an attempt, retries after an exponential backoff (also pausing all sends a little); `Failed` after `max_attempts` |
//! | the text itself is refused (bad HTML, too long) | `Failed`, and the whole announcement is cancelled: every chat would refuse it |
//! | any other 400 | `Failed`, no retry |
//!
//! Run one worker per database: two would send the same rows.

use crate::store::{
    AnnouncementId, AnnouncementState, Delivery, DeliveryId, DeliveryState, Progress,
    ProgressMessage, Store, StoreError, StoreResult,
};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use teloxide::prelude::*;
use teloxide::types::ParseMode;
use teloxide::{ApiError, RequestError};
use tokio::sync::{mpsc, watch};
use tokio::task::{self, JoinError, JoinSet};

/// Telegram's documented limit for bulk messages.
/// Upper bound of `rate_per_sec` for any Bot API server. Telegram's own
/// limit (30/s) is enforced in `Settings::validate` when the bot talks to
/// api.telegram.org; a self-hosted or test server may take more.
pub const MAX_RATE_PER_SEC: f64 = 10_000.0;
/// Telegram's documented broadcast limit.
pub const TELEGRAM_RATE_PER_SEC: f64 = 30.0;
/// The longest backoff after transient errors.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Upper bound of `max_in_flight`.
pub const MAX_IN_FLIGHT: usize = 256;

// ----- settings ----------------------------------------------------------------

/// `[broadcast]` settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BroadcastSettings {
    /// Messages per second over all chats, evenly spaced (25 → one every 40 ms).
    pub rate_per_sec: f64,
    /// Minimum gap between two messages to the same chat.
    pub per_chat_interval_ms: u64,
    /// Tries per delivery on 5xx / network errors (429 waits do not count).
    pub max_attempts: u32,
    /// First backoff after a transient error; doubles per attempt, at most 30 s.
    pub backoff_base_ms: u64,
    /// How often to look for newly queued work (e.g. from `reportbot announce`).
    pub poll_interval_ms: u64,
    /// Deliveries read from the database at a time.
    pub batch: usize,
    /// At most one progress event per announcement this often (0: after every
    /// send). Editing the admin's message more often than every few seconds
    /// competes with Telegram's per-chat limit.
    pub progress_interval_ms: u64,
    /// How many sends may be awaiting Telegram's answer at once (1 to 256).
    /// With 1 (the default) a message is sent only after the previous answer
    /// was recorded, so a kill -9 sends at most the one message in flight
    /// twice; with K, at most K. More than 1 only helps where the round trip,
    /// not the rate, is the limit: a self-hosted Bot API server at hundreds
    /// of messages a second.
    pub max_in_flight: usize,
}

impl Default for BroadcastSettings {
    fn default() -> Self {
        BroadcastSettings {
            rate_per_sec: 25.0,
            per_chat_interval_ms: 1000,
            max_attempts: 5,
            backoff_base_ms: 500,
            poll_interval_ms: 1000,
            batch: 500,
            progress_interval_ms: 3000,
            max_in_flight: 1,
        }
    }
}

/// A setting out of range; `field` is its name under `[broadcast]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SettingsError {
    pub field: &'static str,
    pub message: String,
}

fn bad(field: &'static str, message: impl Into<String>) -> SettingsError {
    SettingsError {
        field,
        message: message.into(),
    }
}

impl BroadcastSettings {
    pub fn validate(&self) -> Result<(), SettingsError> {
        let r = self.rate_per_sec;
        if !(r.is_finite() && r > 0.0 && r <= MAX_RATE_PER_SEC) {
            return Err(bad(
                "rate_per_sec",
                format!("must be more than 0 and at most {MAX_RATE_PER_SEC} (got {r})"),
            ));
        }
        if self.per_chat_interval_ms > 60_000 {
            return Err(bad("per_chat_interval_ms", "at most 60000"));
        }
        if !(1..=100).contains(&self.max_attempts) {
            return Err(bad("max_attempts", "must be 1 to 100"));
        }
        if !(1..=60_000).contains(&self.backoff_base_ms) {
            return Err(bad("backoff_base_ms", "must be 1 to 60000"));
        }
        if !(10..=3_600_000).contains(&self.poll_interval_ms) {
            return Err(bad("poll_interval_ms", "must be 10 to 3600000"));
        }
        if !(1..=10_000).contains(&self.batch) {
            return Err(bad("batch", "must be 1 to 10000"));
        }
        if self.progress_interval_ms > 3_600_000 {
            return Err(bad("progress_interval_ms", "at most 3600000"));
        }
        if !(1..=MAX_IN_FLIGHT).contains(&self.max_in_flight) {
            return Err(bad(
                "max_in_flight",
                format!("must be 1 to {MAX_IN_FLIGHT}"),
            ));
        }
        Ok(())
    }

    /// The gap between two sends.
    pub fn send_interval(&self) -> Duration {
        interval_for(self.rate_per_sec)
    }

    pub fn per_chat_interval(&self) -> Duration {
        Duration::from_millis(self.per_chat_interval_ms)
    }

    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }

    pub fn progress_interval(&self) -> Duration {
        Duration::from_millis(self.progress_interval_ms)
    }

    /// Wait after the `n`th consecutive failure (n ≥ 1): base · 2ⁿ⁻¹, at most [`MAX_BACKOFF`].
    pub fn backoff(&self, n: u32) -> Duration {
        let factor = 1u64 << n.saturating_sub(1).min(20);
        Duration::from_millis(self.backoff_base_ms.saturating_mul(factor)).min(MAX_BACKOFF)
    }

    /// Time to send `pending` messages at the configured rate.
    pub fn eta(&self, pending: u64) -> Duration {
        self.send_interval()
            .saturating_mul(u32::try_from(pending).unwrap_or(u32::MAX))
    }
}

fn interval_for(rate_per_sec: f64) -> Duration {
    let rate = if rate_per_sec.is_finite() && rate_per_sec > 0.0 {
        rate_per_sec
    } else {
        1.0
    };
    Duration::try_from_secs_f64(1.0 / rate).unwrap_or(Duration::from_secs(1))
}

// ----- pacing -------------------------------------------------------------------

/// Spaces sends evenly under a global rate, keeps a minimum gap per chat,
/// and pauses everything after a 429.
///
/// Shared (`Arc<Pacer>`) by every sender that counts against the bot's
/// limit, e.g. the broadcaster and the edits of progress messages. Slots do
/// not accumulate while idle: after a quiet minute the next sends are still
/// one interval apart, never a burst.
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    per_chat: Duration,
    state: Mutex<PacerState>,
}

#[derive(Debug, Default)]
struct PacerState {
    next_slot: Option<Instant>,
    paused_until: Option<Instant>,
    last_by_chat: HashMap<i64, Instant>,
}

/// Per-chat entries are pruned past this many.
const PACER_PRUNE_AT: usize = 4096;

impl Pacer {
    /// `rate_per_sec` sends a second overall; `per_chat` between two sends to one chat.
    pub fn new(rate_per_sec: f64, per_chat: Duration) -> Pacer {
        Pacer {
            interval: interval_for(rate_per_sec),
            per_chat,
            state: Mutex::new(PacerState::default()),
        }
    }

    pub fn from_settings(settings: &BroadcastSettings) -> Pacer {
        Pacer::new(settings.rate_per_sec, settings.per_chat_interval())
    }

    /// The gap between two sends.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    fn lock(&self) -> MutexGuard<'_, PacerState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Book the earliest slot at or after `now` for a send (to `chat`, if
    /// the per-chat gap applies) and return when it is. The caller sends at
    /// that instant; the next booking is one interval later.
    pub fn reserve_at(&self, now: Instant, chat: Option<i64>) -> Instant {
        self.reserve_inner(now, chat).0
    }

    fn reserve_inner(&self, now: Instant, chat: Option<i64>) -> (Instant, Option<Instant>) {
        let mut st = self.lock();
        let mut at = now;
        if let Some(next) = st.next_slot {
            at = at.max(next);
        }
        if let Some(until) = st.paused_until {
            at = at.max(until);
        }
        let mut previous = None;
        if let Some(chat) = chat {
            previous = st.last_by_chat.get(&chat).copied();
            if let Some(last) = previous {
                at = at.max(last + self.per_chat);
            }
            st.last_by_chat.insert(chat, at);
            if st.last_by_chat.len() > PACER_PRUNE_AT {
                let per_chat = self.per_chat;
                st.last_by_chat.retain(|_, last| *last + per_chat > now);
            }
        }
        st.next_slot = Some(at + self.interval);
        (at, previous)
    }

    /// Nothing is sent before `until` (a 429's `retry_after`). Extends, never
    /// shortens, a pause in force.
    pub fn pause_until(&self, until: Instant) {
        let mut st = self.lock();
        st.paused_until = Some(st.paused_until.map_or(until, |p| p.max(until)));
        st.next_slot = Some(st.next_slot.map_or(until, |n| n.max(until)));
    }

    /// The pause in force, if any.
    pub fn paused_until(&self) -> Option<Instant> {
        self.lock().paused_until.filter(|p| *p > Instant::now())
    }

    /// Wait for a slot (see [`Pacer::reserve_at`]). A pause that starts
    /// while waiting is respected: the slot is given up and a new one booked
    /// after the pause.
    pub async fn wait(&self, chat: Option<i64>) {
        loop {
            let (at, previous) = self.reserve_inner(Instant::now(), chat);
            tokio::time::sleep_until(at.into()).await;
            let now = Instant::now();
            let mut st = self.lock();
            match st.paused_until {
                Some(until) if until > now => {
                    if let Some(chat) = chat
                        && st.last_by_chat.get(&chat) == Some(&at)
                    {
                        match previous {
                            Some(p) => st.last_by_chat.insert(chat, p),
                            None => st.last_by_chat.remove(&chat),
                        };
                    }
                }
                _ => {
                    // Woken late? Timers fire on whole milliseconds, so a
                    // slot is routinely up to ~1 ms late; keeping the ideal
                    // cadence (the next slot stays `at + interval`) makes the
                    // average rate exact, and no second ever holds more than
                    // rate + 1 sends. Only after a long stall (later than a
                    // whole interval) does the cadence restart from now, so
                    // a stall is never followed by a burst.
                    if now > at + self.interval {
                        let restart = now + self.interval;
                        if st.next_slot.is_none_or(|n| n < restart) {
                            st.next_slot = Some(restart);
                        }
                    }
                    return;
                }
            }
        }
    }
}

// ----- sending ---------------------------------------------------------------------

/// Telegram's id of a sent message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentId(pub i32);

/// Why a message was not sent, sorted by what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// 429: wait this long before sending anything.
    #[error("Telegram asks to wait {0:?}")]
    RetryAfter(Duration),
    /// The chat cannot be reached any more (blocked, kicked, deleted, deactivated).
    #[error("chat unreachable: {0}")]
    Blocked(String),
    /// The group became a supergroup with this id.
    #[error("group migrated to supergroup {0}")]
    MigratedTo(i64),
    /// Worth retrying: 5xx, network, timeout.
    #[error("{0}")]
    Transient(String),
    /// Refused for this chat; retrying will not help.
    #[error("{0}")]
    Permanent(String),
    /// The text itself was refused (bad HTML, too long): every chat would refuse it.
    #[error("message refused: {0}")]
    BadMessage(String),
}

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<SentId, SendError>> + Send + 'a>>;

/// Sends one announcement text to one chat.
pub trait AnnouncementSender: Send + Sync {
    fn send<'a>(&'a self, chat_id: i64, text_html: &'a str) -> SendFuture<'a>;
}

/// The product's sender: a plain teloxide [`Bot`] (not `Throttle`: pacing
/// is the [`Pacer`]'s job), HTML parse mode, a time limit per request.
#[derive(Debug, Clone)]
pub struct TelegramSender {
    bot: Bot,
    timeout: Duration,
}

impl TelegramSender {
    /// With a 10 s limit per request (teloxide itself stalls 10 s after a 5xx).
    pub fn new(bot: Bot) -> TelegramSender {
        TelegramSender {
            bot,
            timeout: Duration::from_secs(10),
        }
    }

    pub fn with_timeout(self, timeout: Duration) -> TelegramSender {
        TelegramSender { timeout, ..self }
    }
}

impl AnnouncementSender for TelegramSender {
    fn send<'a>(&'a self, chat_id: i64, text_html: &'a str) -> SendFuture<'a> {
        Box::pin(async move {
            let request = self
                .bot
                .send_message(ChatId(chat_id), text_html)
                .parse_mode(ParseMode::Html);
            match tokio::time::timeout(self.timeout, request.send()).await {
                Ok(Ok(message)) => Ok(SentId(message.id.0)),
                Ok(Err(e)) => Err(classify(&e)),
                Err(_) => Err(SendError::Transient(format!(
                    "no answer from Telegram within {:?}",
                    self.timeout
                ))),
            }
        })
    }
}

/// Sort a teloxide error by what to do about it.
///
/// teloxide-core 0.13 ignores the HTTP status: an error answer becomes
/// [`ApiError`] by its `description` (unknown ones as `ApiError::Unknown(text)`,
/// e.g. `"Internal Server Error"` for a 500), a body that is not Telegram's
/// JSON (a proxy's 502 page) becomes `InvalidJson`, and `parameters`
/// become `RetryAfter` / `MigrateToChatId`.
pub fn classify(error: &RequestError) -> SendError {
    match error {
        RequestError::RetryAfter(secs) => SendError::RetryAfter(secs.duration()),
        RequestError::MigrateToChatId(chat) => SendError::MigratedTo(chat.0),
        RequestError::Api(api) => classify_api(api),
        RequestError::Network(e) => SendError::Transient(format!("network error: {e}")),
        RequestError::Io(e) => SendError::Transient(format!("I/O error: {e}")),
        RequestError::InvalidJson { raw, .. } => SendError::Transient(format!(
            "unreadable answer from Telegram: {:?}",
            raw.chars().take(120).collect::<String>()
        )),
    }
}

fn classify_api(api: &ApiError) -> SendError {
    use ApiError as E;
    match api {
        E::BotBlocked
        | E::ChatNotFound
        | E::UserNotFound
        | E::UserDeactivated
        | E::BotKicked
        | E::BotKickedFromSupergroup
        | E::BotKickedFromChannel
        | E::CantInitiateConversation
        | E::CantTalkWithBots
        | E::GroupDeactivated
        | E::NotEnoughRightsToPostMessages => SendError::Blocked(api.to_string()),
        E::CantParseEntities(_) | E::MessageIsTooLong | E::MessageTextIsEmpty => {
            SendError::BadMessage(api.to_string())
        }
        // Every send will fail the same way until the token is fixed; as a
        // transient error it slows the worker down instead of failing rows fast.
        E::InvalidToken => SendError::Transient(api.to_string()),
        E::Unknown(text) => classify_description(text),
        _ => SendError::Permanent(api.to_string()),
    }
}

/// Descriptions teloxide has no variant for.
fn classify_description(text: &str) -> SendError {
    let t = text.trim().to_ascii_lowercase();
    let any = |needles: &[&str]| needles.iter().any(|n| t.contains(n));
    if t.starts_with("forbidden")
        || any(&[
            "chat not found",
            "peer_id_invalid",
            "chat_id_invalid",
            "user not found",
            "user is deactivated",
            "group chat was deactivated",
            "chat was deleted",
        ])
    {
        SendError::Blocked(text.to_string())
    } else if any(&[
        "can't parse entities",
        "message is too long",
        "text must be non-empty",
        "message text is empty",
    ]) {
        SendError::BadMessage(text.to_string())
    } else if t.starts_with("bad request") {
        SendError::Permanent(text.to_string())
    } else {
        // 5xx ("Internal Server Error", "Bad Gateway", …) and anything new:
        // retried a few times, then failed with the text kept.
        SendError::Transient(text.to_string())
    }
}

// ----- progress ----------------------------------------------------------------------

/// Where an announcement stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressReport {
    pub announcement: AnnouncementId,
    pub state: AnnouncementState,
    pub progress: Progress,
    /// Time to send what is pending at the configured rate (ignores other
    /// announcements queued ahead and retry waits).
    pub eta: Duration,
    /// The admin's message to edit, if one was registered.
    pub progress_message: Option<ProgressMessage>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BroadcastEvent {
    /// Every `progress_interval_ms` per announcement being sent, and once
    /// more when the worker stops.
    Progress(ProgressReport),
    /// Nothing pending any more: the announcement is `Done`.
    Finished(ProgressReport),
    /// Telegram refused the text itself; the announcement was cancelled.
    Aborted {
        report: ProgressReport,
        error: String,
    },
}

// ----- the worker ------------------------------------------------------------------

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
mod tests {
    use super::*;
    use crate::store::{
        ChatKind, Language, NewAnnouncement, NewSubscriber, Origin, SqliteStore, SubscriberStatus,
    };
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
    use teloxide::types::Seconds;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    const MS: Duration = Duration::from_millis(1);

    // ----- settings ----------------------------------------------------------

    #[test]
    fn defaults_are_valid_and_errors_name_the_field() {
        let s = BroadcastSettings::default();
        assert_eq!(s.validate(), Ok(()));
        assert_eq!(s.send_interval(), 40 * MS);
        for (bad, field) in [
            (
                BroadcastSettings {
                    rate_per_sec: 10_001.0,
                    ..s.clone()
                },
                "rate_per_sec",
            ),
            (
                BroadcastSettings {
                    rate_per_sec: f64::NAN,
                    ..s.clone()
                },
                "rate_per_sec",
            ),
            (
                BroadcastSettings {
                    rate_per_sec: 0.0,
                    ..s.clone()
                },
                "rate_per_sec",
            ),
            (
                BroadcastSettings {
                    max_attempts: 0,
                    ..s.clone()
                },
                "max_attempts",
            ),
            (
                BroadcastSettings {
                    batch: 0,
                    ..s.clone()
                },
                "batch",
            ),
            (
                BroadcastSettings {
                    poll_interval_ms: 0,
                    ..s.clone()
                },
                "poll_interval_ms",
            ),
        ] {
            let err = bad.validate().err();
            assert_eq!(err.as_ref().map(|e| e.field), Some(field), "{err:?}");
            assert!(err.is_some_and(|e| e.to_string().starts_with(field)));
        }
    }

    #[test]
    fn settings_deserialize_with_defaults_and_refuse_unknown_fields() {
        let s: BroadcastSettings =
            serde_json::from_str(r#"{"rate_per_sec": 10}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.rate_per_sec, 10.0);
        assert_eq!(s.batch, 500);
        assert!(serde_json::from_str::<BroadcastSettings>(r#"{"rate": 10}"#).is_err());
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let s = BroadcastSettings::default();
        assert_eq!(s.backoff(1), 500 * MS);
        assert_eq!(s.backoff(2), 1000 * MS);
        assert_eq!(s.backoff(4), 4000 * MS);
        assert_eq!(s.backoff(7), MAX_BACKOFF);
        assert_eq!(s.backoff(500), MAX_BACKOFF);
        assert_eq!(s.eta(250), Duration::from_secs(10));
    }

    // ----- pacer (pure arithmetic on instants) ------------------------------------

    #[test]
    fn pacer_spaces_sends_evenly() {
        let p = Pacer::new(25.0, Duration::from_secs(1));
        let t0 = Instant::now();
        let slots: Vec<Duration> = (0..5)
            .map(|i| p.reserve_at(t0, Some(i)).duration_since(t0))
            .collect();
        assert_eq!(
            slots,
            vec![Duration::ZERO, 40 * MS, 80 * MS, 120 * MS, 160 * MS]
        );
    }

    #[test]
    fn pacer_does_not_burst_after_idling() {
        let p = Pacer::new(25.0, Duration::ZERO);
        let t0 = Instant::now();
        p.reserve_at(t0, None);
        let later = t0 + Duration::from_secs(60);
        assert_eq!(p.reserve_at(later, None), later);
        assert_eq!(p.reserve_at(later, None), later + 40 * MS);
    }

    #[test]
    fn pacer_keeps_the_per_chat_gap() {
        let p = Pacer::new(25.0, Duration::from_secs(1));
        let t0 = Instant::now();
        assert_eq!(p.reserve_at(t0, Some(7)), t0);
        assert_eq!(p.reserve_at(t0, Some(8)), t0 + 40 * MS);
        assert_eq!(p.reserve_at(t0, Some(7)), t0 + 1000 * MS);
        // The global spacing continues after the chat's slot.
        assert_eq!(p.reserve_at(t0, Some(9)), t0 + 1040 * MS);
        // Sends without a chat only follow the global spacing.
        assert_eq!(p.reserve_at(t0, None), t0 + 1080 * MS);
    }

    #[test]
    fn pacer_pause_delays_every_send_and_never_shortens() {
        let p = Pacer::new(25.0, Duration::from_secs(1));
        let t0 = Instant::now();
        p.reserve_at(t0, Some(1));
        p.pause_until(t0 + Duration::from_secs(3));
        p.pause_until(t0 + Duration::from_secs(2));
        assert_eq!(p.reserve_at(t0, Some(2)), t0 + Duration::from_secs(3));
        assert_eq!(p.reserve_at(t0, Some(3)), t0 + 3040 * MS);
    }

    #[test]
    fn pacer_forgets_old_chats() {
        let p = Pacer::new(30.0, Duration::from_secs(1));
        let t0 = Instant::now();
        for chat in 0..(PACER_PRUNE_AT as i64 + 10) {
            p.reserve_at(t0 + Duration::from_secs(10), Some(chat));
        }
        p.reserve_at(t0 + Duration::from_secs(10_000), Some(-1));
        assert!(p.lock().last_by_chat.len() < 10);
    }

    #[tokio::test]
    async fn pacer_wait_really_waits() {
        let p = Pacer::new(30.0, Duration::ZERO);
        let start = Instant::now();
        for _ in 0..4 {
            p.wait(None).await;
        }
        // Slots at 0, 33, 67, 100 ms.
        assert!(start.elapsed() >= 95 * MS, "{:?}", start.elapsed());
    }

    // ----- classification ----------------------------------------------------------

    fn api(description: &str) -> RequestError {
        let json = serde_json::Value::String(description.to_string());
        RequestError::Api(serde_json::from_value(json).unwrap_or_else(|e| panic!("{e}")))
    }

    #[test]
    fn telegram_errors_are_sorted() {
        assert_eq!(
            classify(&RequestError::RetryAfter(Seconds::from_seconds(7))),
            SendError::RetryAfter(Duration::from_secs(7))
        );
        assert_eq!(
            classify(&RequestError::MigrateToChatId(ChatId(-1001))),
            SendError::MigratedTo(-1001)
        );
        for blocked in [
            "Forbidden: bot was blocked by the user",
            "Forbidden: user is deactivated",
            "Bad Request: chat not found",
            "Forbidden: bot was kicked from the supergroup chat",
            "Forbidden: bot was kicked from the group chat",
            "Forbidden: bot is not a member of the channel chat",
            "Bad Request: PEER_ID_INVALID",
            "Bad Request: group is deactivated",
        ] {
            assert!(
                matches!(classify(&api(blocked)), SendError::Blocked(_)),
                "{blocked}"
            );
        }
        // teloxide turns an HTTP 500 {"description":"Internal Server Error"}
        // into ApiError::Unknown with that text.
        let e = api("Internal Server Error");
        assert!(matches!(
            &e,
            RequestError::Api(ApiError::Unknown(t)) if t == "Internal Server Error"
        ));
        for transient in ["Internal Server Error", "Bad Gateway", "Gateway Timeout"] {
            assert!(matches!(classify(&api(transient)), SendError::Transient(_)));
        }
        let proxy_page = RequestError::InvalidJson {
            source: Arc::new(
                serde_json::from_str::<u8>("<html>")
                    .err()
                    .unwrap_or_else(|| panic!("html is not json")),
            ),
            raw: "<html>502</html>".into(),
        };
        assert!(matches!(classify(&proxy_page), SendError::Transient(_)));
        for bad_message in [
            "Bad Request: can't parse entities: Unsupported start tag \"x\" at byte offset 0",
            "Bad Request: message is too long",
            "Bad Request: message text is empty",
        ] {
            assert!(
                matches!(classify(&api(bad_message)), SendError::BadMessage(_)),
                "{bad_message}"
            );
        }
        assert!(matches!(
            classify(&api("Bad Request: have no rights to send a message")),
            SendError::Permanent(_)
        ));
    }

    // ----- the worker, with a scripted sender --------------------------------------

    /// Answers per chat from a script (then OK), records every call.
    #[derive(Default)]
    struct Scripted {
        script: Mutex<HashMap<i64, VecDeque<Result<SentId, SendError>>>>,
        always: Mutex<HashMap<i64, SendError>>,
        calls: Mutex<Vec<(i64, Instant)>>,
        delay: Duration,
        next_id: Mutex<i32>,
        /// When each answer was given.
        answers: Mutex<Vec<(i64, Instant)>>,
        /// Sends awaiting their answer now, and at most so far.
        active: AtomicUsize,
        peak: AtomicUsize,
        /// Chats whose send panics (a bug in a sender).
        panics: Mutex<HashSet<i64>>,
    }

    impl Scripted {
        fn then(&self, chat: i64, answer: Result<SentId, SendError>) {
            lock(&self.script)
                .entry(chat)
                .or_default()
                .push_back(answer);
        }
        fn always(&self, chat: i64, error: SendError) {
            lock(&self.always).insert(chat, error);
        }
        fn calls(&self) -> Vec<(i64, Instant)> {
            lock(&self.calls).clone()
        }
        fn answers(&self) -> Vec<(i64, Instant)> {
            lock(&self.answers).clone()
        }
        fn peak(&self) -> usize {
            self.peak.load(AtomicOrdering::SeqCst)
        }
        fn answer(&self, chat_id: i64) -> Result<SentId, SendError> {
            if let Some(e) = lock(&self.always).get(&chat_id) {
                return Err(e.clone());
            }
            if let Some(answer) = lock(&self.script)
                .get_mut(&chat_id)
                .and_then(VecDeque::pop_front)
            {
                return answer;
            }
            let mut id = lock(&self.next_id);
            *id += 1;
            Ok(SentId(*id))
        }
    }

    fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
        m.lock().unwrap_or_else(PoisonError::into_inner)
    }

    impl AnnouncementSender for Scripted {
        fn send<'a>(&'a self, chat_id: i64, _text: &'a str) -> SendFuture<'a> {
            Box::pin(async move {
                lock(&self.calls).push((chat_id, Instant::now()));
                let now = self.active.fetch_add(1, AtomicOrdering::SeqCst) + 1;
                self.peak.fetch_max(now, AtomicOrdering::SeqCst);
                if !self.delay.is_zero() {
                    tokio::time::sleep(self.delay).await;
                }
                let answer = self.answer(chat_id);
                self.active.fetch_sub(1, AtomicOrdering::SeqCst);
                if lock(&self.panics).contains(&chat_id) {
                    panic!("test: the sender panics for chat {chat_id}");
                }
                lock(&self.answers).push((chat_id, Instant::now()));
                answer
            })
        }
    }

    fn fast() -> BroadcastSettings {
        BroadcastSettings {
            rate_per_sec: 30.0,
            per_chat_interval_ms: 0,
            max_attempts: 3,
            backoff_base_ms: 1,
            poll_interval_ms: 10,
            batch: 4,
            progress_interval_ms: 0,
            max_in_flight: 1,
        }
    }

    fn store_with(chats: &[i64]) -> StoreResult<Arc<SqliteStore>> {
        let store = SqliteStore::open_in_memory()?;
        let subs: Vec<NewSubscriber> = chats
            .iter()
            .map(|&chat_id| NewSubscriber {
                chat_id,
                kind: ChatKind::Private,
                language: Language::Zh,
            })
            .collect();
        store.subscribe_many(&subs)?;
        Ok(Arc::new(store))
    }

    fn announce(store: &SqliteStore, text: &str) -> StoreResult<AnnouncementId> {
        Ok(store
            .queue_now(&NewAnnouncement {
                text_html: text.into(),
                created_by: Origin::Cli,
                dedupe_key: None,
            })?
            .id)
    }

    struct Running {
        stop: watch::Sender<bool>,
        task: tokio::task::JoinHandle<()>,
        events: mpsc::UnboundedReceiver<BroadcastEvent>,
    }

    fn start(
        store: Arc<SqliteStore>,
        sender: Arc<Scripted>,
        settings: BroadcastSettings,
    ) -> Result<Running, SettingsError> {
        let mut worker = Broadcaster::new(store, sender, settings)?;
        let events = worker.events();
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(worker.run(rx));
        Ok(Running { stop, task, events })
    }

    impl Running {
        /// Wait for the `Finished` event of `id`; the events before it.
        async fn until_finished(&mut self, id: AnnouncementId) -> Vec<BroadcastEvent> {
            let mut seen = Vec::new();
            let deadline = tokio::time::sleep(Duration::from_secs(20));
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    _ = &mut deadline => panic!("announcement {id} did not finish: {seen:?}"),
                    ev = self.events.recv() => {
                        let ev = ev.unwrap_or_else(|| panic!("worker ended: {seen:?}"));
                        let done = matches!(&ev, BroadcastEvent::Finished(r) if r.announcement == id);
                        seen.push(ev);
                        if done {
                            return seen;
                        }
                    }
                }
            }
        }

        async fn stop(self) {
            let _ = self.stop.send(true);
            let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
        }
    }

    #[tokio::test]
    async fn delivers_everything_paced_and_reports() -> TestResult {
        let store = store_with(&[1, 2, 3, 4, 5, 6])?;
        let id = announce(&store, "<b>hi</b>")?;
        let sender = Arc::new(Scripted::default());
        let mut run = start(store.clone(), sender.clone(), fast())?;
        let events = run.until_finished(id).await;
        run.stop().await;

        let p = store.progress(id)?;
        assert_eq!((p.total, p.sent, p.pending), (6, 6, 0));
        let calls = sender.calls();
        assert_eq!(calls.len(), 6);
        for w in calls.windows(2) {
            let gap = w[1].1.duration_since(w[0].1);
            assert!(
                // The interval is 33.3 ms; a send that woke ~1 ms late is
                // followed by one on the ideal cadence, so a gap may be
                // short by the timer's lateness, never by more.
                gap >= 31 * MS,
                "sends {gap:?} apart"
            );
        }
        assert!(
            events
                .iter()
                .any(|e| matches!(e, BroadcastEvent::Progress(_)))
        );
        let Some(BroadcastEvent::Finished(last)) = events.last() else {
            panic!("{events:?}")
        };
        assert_eq!(last.state, AnnouncementState::Done);
        assert_eq!(last.progress.sent, 6);
        assert_eq!(last.eta, Duration::ZERO);
        Ok(())
    }

    #[tokio::test]
    async fn retry_after_pauses_all_sends_and_is_not_an_attempt() -> TestResult {
        let store = store_with(&[1, 2, 3])?;
        let id = announce(&store, "hi")?;
        let sender = Arc::new(Scripted::default());
        sender.then(2, Err(SendError::RetryAfter(300 * MS)));
        let mut run = start(store.clone(), sender.clone(), fast())?;
        run.until_finished(id).await;
        run.stop().await;

        let calls = sender.calls();
        let chats: Vec<i64> = calls.iter().map(|c| c.0).collect();
        assert_eq!(chats, vec![1, 2, 2, 3]);
        let pause = calls[2].1.duration_since(calls[1].1);
        assert!(pause >= 300 * MS, "resumed after {pause:?}");
        let p = store.progress(id)?;
        assert_eq!((p.sent, p.failed), (3, 0));
        let d = store.next_pending(10)?;
        assert!(d.is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn transient_errors_retry_then_fail() -> TestResult {
        let store = store_with(&[1, 2, 3])?;
        let id = announce(&store, "hi")?;
        let sender = Arc::new(Scripted::default());
        sender.always(2, SendError::Transient("Internal Server Error".into()));
        sender.then(3, Err(SendError::Transient("Bad Gateway".into())));
        let mut run = start(store.clone(), sender.clone(), fast())?;
        run.until_finished(id).await;
        run.stop().await;

        let p = store.progress(id)?;
        assert_eq!((p.sent, p.failed, p.pending), (2, 1, 0));
        let to_2 = sender.calls().iter().filter(|c| c.0 == 2).count();
        assert_eq!(to_2, 3, "max_attempts tries");
        let to_3 = sender.calls().iter().filter(|c| c.0 == 3).count();
        assert_eq!(to_3, 2, "one retry, then sent");
        // Still subscribed: a server error is not the chat's fault.
        assert!(store.is_subscribed(2)?);
        Ok(())
    }

    #[tokio::test]
    async fn blocked_chats_are_unsubscribed_with_their_other_deliveries() -> TestResult {
        let store = store_with(&[1, 2, 3])?;
        let first = announce(&store, "one")?;
        let second = announce(&store, "two")?;
        let sender = Arc::new(Scripted::default());
        sender.always(
            2,
            SendError::Blocked("Forbidden: bot was blocked by the user".into()),
        );
        let mut run = start(store.clone(), sender.clone(), fast())?;
        run.until_finished(second).await;
        run.stop().await;

        assert_eq!(sender.calls().iter().filter(|c| c.0 == 2).count(), 1);
        for id in [first, second] {
            let p = store.progress(id)?;
            assert_eq!((p.sent, p.blocked, p.pending), (2, 1, 0), "{id}");
        }
        let s = store.subscriber(2)?.ok_or("missing")?;
        assert_eq!(s.status, SubscriberStatus::Blocked);
        assert!(s.reason.is_some_and(|r| r.contains("blocked")));
        assert_eq!(store.counts()?.blocked, 1);
        Ok(())
    }

    #[tokio::test]
    async fn refused_text_cancels_the_announcement() -> TestResult {
        let store = store_with(&[1, 2, 3])?;
        let id = announce(&store, "<x>")?;
        let sender = Arc::new(Scripted::default());
        sender.always(1, SendError::BadMessage("can't parse entities".into()));
        let mut run = start(store.clone(), sender.clone(), fast())?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let report = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, run.events.recv()).await? {
                Some(BroadcastEvent::Aborted { report, .. }) => break report,
                Some(_) => {}
                None => panic!("worker ended"),
            }
        };
        run.stop().await;
        assert_eq!(report.announcement, id);
        assert_eq!(report.state, AnnouncementState::Cancelled);
        assert_eq!((report.progress.failed, report.progress.cancelled), (1, 2));
        assert_eq!(sender.calls().len(), 1);
        Ok(())
    }

    #[tokio::test]
    async fn migrated_group_gets_it_at_the_new_id() -> TestResult {
        let store = store_with(&[-5])?;
        let id = announce(&store, "hi")?;
        let sender = Arc::new(Scripted::default());
        sender.always(-5, SendError::MigratedTo(-1_000_000_005));
        let mut run = start(store.clone(), sender.clone(), fast())?;
        run.until_finished(id).await;
        run.stop().await;
        let chats: Vec<i64> = sender.calls().iter().map(|c| c.0).collect();
        assert_eq!(chats, vec![-5, -1_000_000_005]);
        assert_eq!(store.progress(id)?.sent, 1);
        assert!(store.is_subscribed(-1_000_000_005)?);
        assert!(!store.is_subscribed(-5)?);
        Ok(())
    }

    #[tokio::test]
    async fn shutdown_finishes_the_send_in_flight_and_keeps_the_rest() -> TestResult {
        let chats: Vec<i64> = (1..=20).collect();
        let store = store_with(&chats)?;
        let id = announce(&store, "hi")?;
        let sender = Arc::new(Scripted {
            delay: 100 * MS,
            ..Scripted::default()
        });
        let run = start(store.clone(), sender.clone(), fast())?;
        // Stop while the third send is in flight.
        while sender.calls().len() < 3 {
            tokio::time::sleep(5 * MS).await;
        }
        run.stop().await;

        let calls = sender.calls().len() as u64;
        assert_eq!(calls, 3);
        let p = store.progress(id)?;
        assert_eq!(p.sent, 3, "the send in flight was recorded");
        assert_eq!(p.pending, 17);
        let a = store.announcement(id)?.ok_or("missing")?;
        assert_eq!(a.state, AnnouncementState::Queued);

        // A new worker picks up where the old one stopped.
        let sender2 = Arc::new(Scripted::default());
        let mut run2 = start(store.clone(), sender2.clone(), fast())?;
        run2.until_finished(id).await;
        run2.stop().await;
        let again: Vec<i64> = sender2.calls().iter().map(|c| c.0).collect();
        assert_eq!(again, (4..=20).collect::<Vec<_>>());
        Ok(())
    }

    #[tokio::test]
    async fn a_chat_that_unsubscribes_mid_batch_gets_nothing_more() -> TestResult {
        let store = store_with(&[1, 2, 3, 4])?;
        let id = announce(&store, "hi")?;
        let sender = Arc::new(Scripted {
            delay: 50 * MS,
            ..Scripted::default()
        });
        let settings = BroadcastSettings {
            batch: 100,
            ..fast()
        };
        let mut run = start(store.clone(), sender.clone(), settings)?;
        while sender.calls().is_empty() {
            tokio::time::sleep(MS).await;
        }
        // The whole batch was read before this.
        store.unsubscribe(3)?;
        run.until_finished(id).await;
        run.stop().await;
        let chats: Vec<i64> = sender.calls().iter().map(|c| c.0).collect();
        assert_eq!(chats, vec![1, 2, 4]);
        let p = store.progress(id)?;
        assert_eq!((p.sent, p.cancelled), (3, 1));
        Ok(())
    }

    #[tokio::test]
    async fn picks_up_work_queued_while_idle() -> TestResult {
        let store = store_with(&[1, 2])?;
        let sender = Arc::new(Scripted::default());
        let mut run = start(store.clone(), sender.clone(), fast())?;
        tokio::time::sleep(50 * MS).await;
        assert!(sender.calls().is_empty());
        let id = announce(&store, "later")?;
        run.until_finished(id).await;
        run.stop().await;
        assert_eq!(sender.calls().len(), 2);
        let d = store
            .delivery(crate::store::DeliveryId(1))?
            .ok_or("missing")?;
        assert_eq!(d.state, DeliveryState::Sent);
        assert!(d.message_id.is_some());
        Ok(())
    }

    #[tokio::test]
    async fn announcement_without_subscribers_finishes() -> TestResult {
        let store = store_with(&[])?;
        let id = announce(&store, "nobody")?;
        let sender = Arc::new(Scripted::default());
        let mut run = start(store.clone(), sender, fast())?;
        let events = run.until_finished(id).await;
        run.stop().await;
        assert!(
            matches!(events.last(), Some(BroadcastEvent::Finished(r)) if r.progress.total == 0)
        );
        Ok(())
    }

    // ----- several sends in flight (max_in_flight > 1) ------------------------------

    #[test]
    fn max_in_flight_defaults_to_one_and_is_bounded() {
        let s = BroadcastSettings::default();
        assert_eq!(s.max_in_flight, 1);
        for bad in [0, MAX_IN_FLIGHT + 1] {
            let err = BroadcastSettings {
                max_in_flight: bad,
                ..s.clone()
            }
            .validate()
            .err();
            assert_eq!(err.map(|e| e.field), Some("max_in_flight"), "{bad}");
        }
        let most = BroadcastSettings {
            max_in_flight: MAX_IN_FLIGHT,
            ..s.clone()
        };
        assert_eq!(most.validate(), Ok(()));
        let parsed: BroadcastSettings =
            serde_json::from_str(r#"{"max_in_flight": 8}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.max_in_flight, 8);
        let omitted: BroadcastSettings =
            serde_json::from_str("{}").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(omitted.max_in_flight, 1);
    }

    fn in_flight(k: usize) -> BroadcastSettings {
        BroadcastSettings {
            max_in_flight: k,
            ..fast()
        }
    }

    async fn stop_and_join(
        run: Running,
    ) -> Result<mpsc::UnboundedReceiver<BroadcastEvent>, String> {
        let Running { stop, task, events } = run;
        let _ = stop.send(true);
        match tokio::time::timeout(Duration::from_secs(10), task).await {
            Ok(Ok(())) => Ok(events),
            Ok(Err(e)) => Err(format!("worker panicked: {e}")),
            Err(_) => Err("worker did not stop".into()),
        }
    }

    #[tokio::test]
    async fn in_flight_sends_deliver_everything_exactly_once() -> TestResult {
        let chats: Vec<i64> = (1..=30).collect();
        let store = store_with(&chats)?;
        let first = announce(&store, "one")?;
        let second = announce(&store, "two")?;
        let sender = Arc::new(Scripted {
            delay: 40 * MS,
            ..Scripted::default()
        });
        // Batches smaller than the sends in flight: every batch read meets
        // rows still being sent, which must not be handed out again.
        let settings = BroadcastSettings {
            rate_per_sec: 400.0,
            ..in_flight(8)
        };
        let mut run = start(store.clone(), sender.clone(), settings)?;
        run.until_finished(first).await;
        run.until_finished(second).await;
        stop_and_join(run).await?;

        for id in [first, second] {
            let p = store.progress(id)?;
            assert_eq!(
                (p.total, p.sent, p.pending, p.failed),
                (30, 30, 0, 0),
                "{id}"
            );
        }
        let calls = sender.calls();
        assert_eq!(calls.len(), 60, "one send per delivery");
        let mut per_chat: HashMap<i64, usize> = HashMap::new();
        for (chat, _) in &calls {
            *per_chat.entry(*chat).or_default() += 1;
        }
        assert!(per_chat.values().all(|&n| n == 2), "{per_chat:?}");
        let peak = sender.peak();
        assert!((2..=8).contains(&peak), "{peak} sends at once");
        Ok(())
    }

    #[tokio::test]
    async fn in_flight_sends_keep_the_pacing() -> TestResult {
        let store = store_with(&[1, 2, 3, 4, 5, 6])?;
        let first = announce(&store, "one")?;
        let second = announce(&store, "two")?;
        let sender = Arc::new(Scripted {
            delay: 200 * MS,
            ..Scripted::default()
        });
        let settings = BroadcastSettings {
            per_chat_interval_ms: 400,
            ..in_flight(8)
        };
        let mut run = start(store.clone(), sender.clone(), settings)?;
        run.until_finished(first).await;
        run.until_finished(second).await;
        stop_and_join(run).await?;

        let calls = sender.calls();
        assert_eq!(calls.len(), 12);
        for w in calls.windows(2) {
            let gap = w[1].1.duration_since(w[0].1);
            assert!(gap >= 31 * MS, "sends {gap:?} apart");
        }
        for chat in 1..=6 {
            let to: Vec<Instant> = calls.iter().filter(|c| c.0 == chat).map(|c| c.1).collect();
            assert_eq!(to.len(), 2);
            // The pacer keeps 400 ms between the two slots; the first send
            // may start up to a timer tick (1 ms) after its slot.
            let gap = to[1].duration_since(to[0]);
            assert!(gap >= 395 * MS, "chat {chat}: {gap:?} apart");
        }
        // Not one at a time: a send takes 200 ms, the slots are 33 ms apart.
        assert!(sender.peak() >= 2, "peak {}", sender.peak());
        Ok(())
    }

    #[tokio::test]
    async fn retry_after_pauses_every_send_in_flight_too() -> TestResult {
        let chats: Vec<i64> = (1..=8).collect();
        let store = store_with(&chats)?;
        let id = announce(&store, "hi")?;
        let sender = Arc::new(Scripted {
            delay: 50 * MS,
            ..Scripted::default()
        });
        sender.then(2, Err(SendError::RetryAfter(300 * MS)));
        let mut run = start(store.clone(), sender.clone(), in_flight(4))?;
        run.until_finished(id).await;
        stop_and_join(run).await?;

        // Slots at 0, 33, 67 ms, …; chat 2's 429 comes at about 83 ms,
        // while chat 3 is in flight: nothing starts for the next 300 ms.
        let answered = sender
            .answers()
            .iter()
            .find(|a| a.0 == 2)
            .map(|a| a.1)
            .ok_or("no answer to chat 2")?;
        let calls = sender.calls();
        for (chat, at) in &calls {
            assert!(
                *at < answered || *at >= answered + 300 * MS,
                "chat {chat} sent {:?} after the 429",
                at.duration_since(answered)
            );
        }
        assert!(calls.iter().any(|c| c.1 >= answered + 300 * MS));
        assert_eq!(calls.iter().filter(|c| c.0 == 2).count(), 2);
        assert!(sender.peak() >= 2, "peak {}", sender.peak());
        let p = store.progress(id)?;
        assert_eq!((p.sent, p.failed, p.pending), (8, 0, 0));
        for n in 1..=8 {
            let d = store
                .delivery(crate::store::DeliveryId(n))?
                .ok_or("missing")?;
            assert_eq!(d.attempts, 0, "a 429 is not an attempt ({d:?})");
        }
        Ok(())
    }

    #[tokio::test]
    async fn in_flight_transient_error_waits_for_its_backoff() -> TestResult {
        let chats: Vec<i64> = (1..=12).collect();
        let store = store_with(&chats)?;
        let id = announce(&store, "hi")?;
        let sender = Arc::new(Scripted {
            delay: 30 * MS,
            ..Scripted::default()
        });
        sender.then(2, Err(SendError::Transient("Bad Gateway".into())));
        let settings = BroadcastSettings {
            rate_per_sec: 100.0,
            backoff_base_ms: 150,
            ..in_flight(4)
        };
        let mut run = start(store.clone(), sender.clone(), settings)?;
        run.until_finished(id).await;
        stop_and_join(run).await?;

        let to_2: Vec<Instant> = sender
            .calls()
            .iter()
            .filter(|c| c.0 == 2)
            .map(|c| c.1)
            .collect();
        assert_eq!(to_2.len(), 2, "one retry, then sent");
        let failed_at = sender
            .answers()
            .iter()
            .find(|a| a.0 == 2)
            .map(|a| a.1)
            .ok_or("no answer to chat 2")?;
        let waited = to_2[1].duration_since(failed_at);
        assert!(waited >= 145 * MS, "retried {waited:?} after the error");
        let p = store.progress(id)?;
        assert_eq!((p.sent, p.failed, p.pending), (12, 0, 0));
        assert_eq!(sender.calls().len(), 13);
        Ok(())
    }

    #[tokio::test]
    async fn shutdown_records_every_send_in_flight() -> TestResult {
        let chats: Vec<i64> = (1..=30).collect();
        let store = store_with(&chats)?;
        let id = announce(&store, "hi")?;
        let sender = Arc::new(Scripted {
            delay: 300 * MS,
            ..Scripted::default()
        });
        let settings = BroadcastSettings {
            rate_per_sec: 100.0,
            ..in_flight(4)
        };
        let run = start(store.clone(), sender.clone(), settings)?;
        // Stop while four sends are in flight.
        while sender.calls().len() < 4 {
            tokio::time::sleep(MS).await;
        }
        assert_eq!(sender.peak(), 4);
        let stopped_at = Instant::now();
        stop_and_join(run).await?;
        assert!(
            stopped_at.elapsed() >= 200 * MS,
            "returned before the answers"
        );

        let calls = sender.calls();
        assert_eq!(calls.len(), 4, "no send started after the stop");
        let p = store.progress(id)?;
        assert_eq!(p.sent, 4, "every send in flight was recorded");
        assert_eq!(p.pending, 26);
        assert_eq!(
            store.announcement(id)?.ok_or("missing")?.state,
            AnnouncementState::Queued
        );

        // A new worker sends the rest, and nothing twice.
        let sender2 = Arc::new(Scripted::default());
        let mut run2 = start(store.clone(), sender2.clone(), in_flight(4))?;
        run2.until_finished(id).await;
        stop_and_join(run2).await?;
        let mut all: Vec<i64> = calls
            .iter()
            .chain(sender2.calls().iter())
            .map(|c| c.0)
            .collect();
        all.sort_unstable();
        assert_eq!(all, chats);
        assert_eq!(store.progress(id)?.sent, 30);
        Ok(())
    }

    #[tokio::test]
    async fn refused_text_with_sends_in_flight_aborts_once() -> TestResult {
        let chats: Vec<i64> = (1..=10).collect();
        let store = store_with(&chats)?;
        let id = announce(&store, "<x>")?;
        let sender = Arc::new(Scripted {
            delay: 50 * MS,
            ..Scripted::default()
        });
        for &chat in &chats {
            sender.always(chat, SendError::BadMessage("can't parse entities".into()));
        }
        let settings = BroadcastSettings {
            rate_per_sec: 100.0,
            ..in_flight(4)
        };
        let run = start(store.clone(), sender.clone(), settings)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while store.announcement(id)?.ok_or("missing")?.state != AnnouncementState::Cancelled {
            assert!(Instant::now() < deadline, "not cancelled");
            tokio::time::sleep(5 * MS).await;
        }
        // Let the other refused sends in flight come back.
        tokio::time::sleep(200 * MS).await;
        let mut events = stop_and_join(run).await?;
        let mut aborted = 0;
        while let Ok(event) = events.try_recv() {
            if let BroadcastEvent::Aborted { report, .. } = event {
                assert_eq!(report.announcement, id);
                assert_eq!(report.state, AnnouncementState::Cancelled);
                aborted += 1;
            }
        }
        assert_eq!(aborted, 1, "one Aborted event");
        let calls = sender.calls().len();
        assert!((1..=4).contains(&calls), "{calls} sends");
        let p = store.progress(id)?;
        assert_eq!(p.sent, 0);
        assert!(p.failed >= 1);
        assert_eq!(p.failed + p.cancelled, 10);
        Ok(())
    }

    #[tokio::test]
    async fn a_send_that_panics_is_left_for_the_next_start() -> TestResult {
        let store = store_with(&[1, 2, 3, 4, 5])?;
        let id = announce(&store, "hi")?;
        let sender = Arc::new(Scripted::default());
        lock(&sender.panics).insert(3);
        let run = start(store.clone(), sender.clone(), in_flight(2))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while store.progress(id)?.sent < 4 {
            assert!(Instant::now() < deadline, "the others were not sent");
            tokio::time::sleep(5 * MS).await;
        }
        // Not sent again by this worker, which keeps running.
        tokio::time::sleep(100 * MS).await;
        stop_and_join(run).await?;
        assert_eq!(sender.calls().iter().filter(|c| c.0 == 3).count(), 1);
        assert_eq!(store.progress(id)?.pending, 1);

        let sender2 = Arc::new(Scripted::default());
        let mut run2 = start(store.clone(), sender2.clone(), in_flight(2))?;
        run2.until_finished(id).await;
        stop_and_join(run2).await?;
        let again: Vec<i64> = sender2.calls().iter().map(|c| c.0).collect();
        assert_eq!(again, vec![3]);
        Ok(())
    }
}
