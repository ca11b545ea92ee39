//! Persistent state for subscriptions and announcements.
//!
//! Everything that must survive a restart lives behind the [`Store`] trait:
//!
//! - **subscribers**: which chats want announcements, in which language, and
//!   which ones left or blocked the bot;
//! - **announcements**: a text an operator (or the CLI, or a report import)
//!   wrote, going `Draft → Queued → Done` (or `Cancelled`);
//! - **the outbox**: one row per (announcement, chat), `Pending` until the
//!   delivery worker ([`crate::broadcast`]) records what Telegram answered;
//! - **uploaded files**: the `file_id` Telegram gave a picture the bot
//!   uploaded ([`FileKey`]), so it is sent by reference afterwards.
//!
//! The trait is synchronous and object-safe; the bot holds an
//! `Arc<dyn Store>` and calls it from async code through
//! [`tokio::task::spawn_blocking`]. Two implementations:
//!
//! - [`SqliteStore`], the embedded default: one file, one bot process (and
//!   the command line beside it);
//! - [`PgStore`], PostgreSQL, for several bot processes on several
//!   machines: they lease outbox rows to each other, share one send budget
//!   ([`SharedBudget`]) and elect one poller ([`PollerElection`]).
//!
//! [`open`] picks one from the `REPORTBOT_DB` setting ([`Database`]).
//!
//! Times are Unix seconds (`i64`) unless a name says otherwise.

pub mod election;
pub mod migrations;
pub mod postgres;
mod sqlite;

pub use election::PollerElection;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// The database `REPORTBOT_DB` (or `storage.database`) names.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// A file (created if missing): the embedded default.
    Sqlite(PathBuf),
    /// `postgres://USER@HOST:PORT/DB` (or `postgresql://…`): a server
    /// several instances share.
    Postgres(String),
}

impl Database {
    /// A `postgres://` or `postgresql://` URL is PostgreSQL (checked here,
    /// so a typo stops start-up with the reason); anything else is a
    /// SQLite file path.
    pub fn parse(value: &str) -> Result<Database, String> {
        let v = value.trim();
        let lower = v.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            v.parse::<::postgres::Config>()
                .map_err(|e| format!("not a PostgreSQL URL ({e})"))?;
            Ok(Database::Postgres(v.to_string()))
        } else if v.is_empty() {
            Err("empty".into())
        } else {
            Ok(Database::Sqlite(PathBuf::from(value)))
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Database::Postgres(_))
    }
}

/// Never shows a password.
impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "{}", path.display()),
            Database::Postgres(url) => match url.parse::<::postgres::Config>() {
                Ok(config) => write!(f, "postgres://{}", postgres::display_name(&config)),
                Err(_) => f.write_str("postgres://(invalid)"),
            },
        }
    }
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Database({self})")
    }
}

/// Open the store `database` names (creating or migrating its schema).
pub fn open(database: &Database) -> StoreResult<Arc<dyn Store>> {
    Ok(match database {
        Database::Sqlite(path) => Arc::new(SqliteStore::open(path)?),
        Database::Postgres(url) => Arc::new(PgStore::open(url)?),
    })
}

/// Identifies an announcement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AnnouncementId(pub i64);

impl fmt::Display for AnnouncementId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Identifies one outbox row: one announcement for one chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeliveryId(pub i64);

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "delivery {}", self.0)
    }
}

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or prepared.
    #[error("cannot open database {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The file was written by a newer program (downgrade): refuse rather
    /// than misread it.
    #[error(
        "database schema version {found} is newer than this program understands \
         (at most {supported}); upgrade reportbot"
    )]
    SchemaTooNew { found: i64, supported: i64 },
    /// A migration step failed; the file is left at its old version.
    #[error("database migration to version {version} failed: {source}")]
    Migration {
        version: i64,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// No such announcement / delivery.
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: i64 },
    /// The announcement is not in a state that allows this.
    #[error("announcement {id} is {state}; cannot {action}")]
    InvalidState {
        id: AnnouncementId,
        state: AnnouncementState,
        action: &'static str,
    },
    /// A value handed in was refused (e.g. an empty announcement text).
    #[error("invalid {what}: {message}")]
    Invalid { what: &'static str, message: String },
    /// A stored value could not be understood (hand-edited file?).
    #[error("unexpected value in the database: {0}")]
    Corrupt(String),
    /// The database cannot be used right now (its file was deleted under
    /// the running program, the server is unreachable …); nothing was
    /// changed, and trying again later may work.
    #[error("database temporarily unavailable: {0}")]
    Unavailable(String),
    /// Any other error of the database.
    #[error("database error: {0}")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type StoreResult<T> = Result<T, StoreError>;

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// The name stored in the database.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl FromStr for $name {
            type Err = StoreError;
            fn from_str(s: &str) -> Result<Self, StoreError> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(StoreError::Corrupt(format!(
                        concat!("unknown ", stringify!($name), " {:?}"),
                        other
                    ))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum! {
    /// What kind of Telegram chat subscribed.
    ChatKind {
        Private = "private",
        Group = "group",
        Supergroup = "supergroup",
        Channel = "channel",
    }
}

string_enum! {
    /// The language announcements are sent in.
    Language {
        Zh = "zh",
        En = "en",
    }
}

impl Language {
    /// From a Telegram `language_code` (IETF tag): English for `en*`,
    /// Chinese otherwise (the reports are Chinese).
    pub fn from_language_code(code: Option<&str>) -> Language {
        match code {
            Some(c) if c.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("en")) => Language::En,
            _ => Language::Zh,
        }
    }
}

string_enum! {
    /// Where a subscriber stands.
    SubscriberStatus {
        Active = "active",
        /// Left on their own (`/unsubscribe`).
        Unsubscribed = "unsubscribed",
        /// Telegram refused to deliver (blocked the bot, chat gone, kicked …).
        Blocked = "blocked",
    }
}

string_enum! {
    /// Life of an announcement.
    AnnouncementState {
        /// Written, waiting for the operator's confirmation. No deliveries yet.
        Draft = "draft",
        /// Confirmed: its outbox rows exist and are being delivered.
        Queued = "queued",
        /// No pending delivery left.
        Done = "done",
        /// Withdrawn; pending deliveries were cancelled.
        Cancelled = "cancelled",
    }
}

string_enum! {
    /// State of one outbox row.
    DeliveryState {
        Pending = "pending",
        /// Telegram answered OK; `message_id` is set.
        Sent = "sent",
        /// Given up: a permanent error, or transient errors `max_attempts` times.
        Failed = "failed",
        /// The chat blocked the bot or is gone; the chat was unsubscribed.
        Blocked = "blocked",
        /// The announcement was cancelled or the chat unsubscribed before sending.
        Cancelled = "cancelled",
    }
}

/// Names an uploaded file: the bot that uploaded it (a `file_id` works for
/// that bot only) and what the file is, e.g. a tips card's key
/// (`tips-card/v1/courier/zh/3f2a…`: topic, language and a hash of the
/// drawn content, so a data or layout change means a new upload).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileKey {
    pub bot_id: i64,
    pub key: String,
}

/// A chat asking to subscribe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubscriber {
    pub chat_id: i64,
    pub kind: ChatKind,
    pub language: Language,
}

impl NewSubscriber {
    /// A private chat (one person) in `language`.
    pub fn private(chat_id: i64, language: Language) -> Self {
        NewSubscriber {
            chat_id,
            kind: ChatKind::Private,
            language,
        }
    }
}

/// A subscriber as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    pub chat_id: i64,
    pub kind: ChatKind,
    pub language: Language,
    pub status: SubscriberStatus,
    /// When the current (or last) subscription started.
    pub subscribed_at: i64,
    /// Last change of status, kind or language.
    pub updated_at: i64,
    /// Why the chat is blocked (Telegram's error), if it is.
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubscriberCounts {
    pub active: u64,
    pub unsubscribed: u64,
    pub blocked: u64,
}

/// Who wrote an announcement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `reportbot announce` on the command line.
    Cli,
    /// An admin in Telegram, by user id.
    Admin(i64),
    /// Generated when a report was published, by report id.
    Report(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAnnouncement {
    /// Telegram HTML, sent as is with `parse_mode = HTML`.
    pub text_html: String,
    pub created_by: Origin,
    /// Announcements with the same key are one announcement: creating a
    /// second returns the first (`duplicate = true`). E.g. `"report:2099-test"`,
    /// so publishing the same report twice does not announce it twice. A
    /// cancelled announcement frees its key.
    pub dedupe_key: Option<String>,
}

/// The answer of [`Store::create_announcement`] and [`Store::queue_now`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Created {
    pub id: AnnouncementId,
    /// An announcement with the same dedupe key existed; nothing was created
    /// (and, for `queue_now`, nothing was queued).
    pub duplicate: bool,
    /// State of the announcement `id` now.
    pub state: AnnouncementState,
}

/// The answer of [`Store::confirm`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Confirmed {
    /// Outbox rows of the announcement (one per subscriber at confirmation).
    pub deliveries: u64,
    /// False when it had been confirmed before (a double click): nothing changed.
    pub newly_confirmed: bool,
}

/// The admin's message that shows an announcement's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressMessage {
    pub chat_id: i64,
    pub message_id: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    pub id: AnnouncementId,
    pub text_html: String,
    pub created_by: Origin,
    pub dedupe_key: Option<String>,
    pub state: AnnouncementState,
    pub created_at: i64,
    pub queued_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// Where the progress is shown, if an admin started it from Telegram.
    pub progress_message: Option<ProgressMessage>,
}

/// Delivery counts of one announcement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub total: u64,
    pub sent: u64,
    pub blocked: u64,
    pub failed: u64,
    pub cancelled: u64,
    /// Not yet answered (includes deliveries waiting for a retry).
    pub pending: u64,
}

impl Progress {
    /// Deliveries that reached a final state.
    pub fn finished(&self) -> u64 {
        self.total - self.pending
    }
}

/// One pending outbox row, as handed to the delivery worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub id: DeliveryId,
    pub announcement_id: AnnouncementId,
    pub chat_id: i64,
    /// Failed attempts so far (429 waits are not attempts).
    pub attempts: u32,
}

/// Everything stored about one outbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryInfo {
    pub id: DeliveryId,
    pub announcement_id: AnnouncementId,
    pub chat_id: i64,
    pub state: DeliveryState,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// Not retried before this time (Unix milliseconds).
    pub not_before_ms: i64,
    pub sent_at: Option<i64>,
    /// Telegram's message id once sent.
    pub message_id: Option<i32>,
    /// The delivery worker holding the row (see [`Store::lease_pending`]);
    /// once sent, the one that sent it.
    pub leased_by: Option<String>,
}

/// The answer of [`Store::begin_send`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BeginSend {
    /// Send it now: the row is pending and leased to this worker.
    Send,
    /// Do not: it was settled meanwhile (cancelled, blocked …) or another
    /// worker took it after this worker's lease expired.
    Skip,
    /// A pause shared by every instance (a 429) is in force for this long:
    /// wait for a new slot. (Only stores with a [`SharedBudget`].)
    Paused(Duration),
}

/// The answer of [`Store::claim_update`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateClaim {
    /// Nobody handled it: this instance handles it now (until its lease ends).
    New,
    /// Handled already: a duplicate delivery.
    Done,
    /// Another instance (or another request of this one) is handling it
    /// and its lease has not run out.
    Busy,
}

/// A send budget shared by every process that uses the same database: one
/// "next slot" and one pause for all of them, by the database's clock.
///
/// Slots are evenly spaced at the configured interval (GCRA style: a slot is
/// booked by moving the shared "next slot" on by one interval), a chat's
/// slots are at least `per_chat` apart, and nothing is booked inside a pause.
pub trait SharedBudget: Send + Sync {
    /// Book the next slot for a send (to `chat`, if the per-chat gap
    /// applies). Returns how long from now the slot is (zero if it is now).
    fn book_slot(
        &self,
        chat: Option<i64>,
        interval: Duration,
        per_chat: Duration,
    ) -> StoreResult<Duration>;

    /// No instance sends anything for `wait` from now (Telegram's 429
    /// `retry_after`). Extends, never shortens, a pause in force.
    fn pause_all(&self, wait: Duration) -> StoreResult<()>;
}

/// Storage of subscribers, announcements and the outbox.
///
/// Synchronous and blocking: from async code call it inside
/// [`tokio::task::spawn_blocking`]. Every method is one transaction.
pub trait Store: Send + Sync {
    // ----- subscribers ---------------------------------------------------

    /// Subscribe a chat (again). Returns whether it was not active before.
    /// Kind and language are updated either way. A blocked chat that
    /// subscribes again is active again.
    fn subscribe(&self, chat: &NewSubscriber) -> StoreResult<bool>;

    /// Subscribe many chats in one transaction (imports, tests, benchmarks).
    /// Returns how many were not active before.
    fn subscribe_many(&self, chats: &[NewSubscriber]) -> StoreResult<u64>;

    /// Unsubscribe. Returns whether it was active. Its pending deliveries are
    /// cancelled: an unsubscribed chat gets nothing more.
    fn unsubscribe(&self, chat_id: i64) -> StoreResult<bool>;

    fn is_subscribed(&self, chat_id: i64) -> StoreResult<bool>;

    fn subscriber(&self, chat_id: i64) -> StoreResult<Option<Subscriber>>;

    fn counts(&self) -> StoreResult<SubscriberCounts>;

    /// Telegram will not deliver to this chat (bot blocked, chat not found,
    /// user deactivated, bot kicked …): unsubscribe it as `Blocked`, keep the
    /// reason, and mark its pending deliveries `Blocked`. Returns whether
    /// the chat was subscribed and not yet blocked.
    fn mark_chat_blocked(&self, chat_id: i64, reason: &str) -> StoreResult<bool>;

    /// A group became a supergroup with a new id: move the subscription and
    /// the pending deliveries to the new id.
    fn migrate_chat(&self, from: i64, to: i64) -> StoreResult<()>;

    // ----- announcements -------------------------------------------------

    /// Create a `Draft`, or return the existing announcement with the same
    /// dedupe key (`duplicate = true`).
    fn create_announcement(&self, new: &NewAnnouncement) -> StoreResult<Created>;

    /// `Draft → Queued`, and in the same transaction one `Pending` outbox row
    /// per subscriber active right now.
    ///
    /// The audience is a **snapshot** taken at confirmation: a chat that
    /// subscribes afterwards does not get this announcement (one that
    /// unsubscribes or blocks the bot before its turn does not either). This
    /// keeps the job finite and countable (progress has a fixed total, the
    /// worker knows when it is done) and rules out surprise duplicates, e.g.
    /// a chat that unsubscribes and subscribes again while the announcement
    /// is going out.
    ///
    /// Confirming a `Queued` or `Done` announcement again changes nothing
    /// (`newly_confirmed = false`); a `Cancelled` one is an error.
    fn confirm(&self, id: AnnouncementId) -> StoreResult<Confirmed>;

    /// Withdraw a `Draft` or `Queued` announcement: its pending deliveries
    /// become `Cancelled` (what was sent stays sent). Returns how many were
    /// cancelled. Cancelling twice is fine; a `Done` announcement is an error.
    fn cancel(&self, id: AnnouncementId) -> StoreResult<u64>;

    /// Create and confirm in one transaction (the CLI's `announce`). A
    /// duplicate dedupe key queues nothing and returns the existing one.
    fn queue_now(&self, new: &NewAnnouncement) -> StoreResult<Created>;

    fn announcement(&self, id: AnnouncementId) -> StoreResult<Option<Announcement>>;

    /// `Queued` announcements, oldest first.
    fn pending_announcements(&self) -> StoreResult<Vec<Announcement>>;

    fn progress(&self, id: AnnouncementId) -> StoreResult<Progress>;

    /// Remember the admin's message that shows this announcement's progress.
    fn set_progress_message(&self, id: AnnouncementId, message: ProgressMessage)
    -> StoreResult<()>;

    /// `Queued → Done` if no delivery is pending. Returns whether it changed.
    fn complete_if_done(&self, id: AnnouncementId) -> StoreResult<bool>;

    // ----- outbox ----------------------------------------------------------

    /// The next at most `limit` pending deliveries that are due (not waiting
    /// for a retry), in outbox order (announcements oldest first, then by
    /// chat). Call again for the next batch: memory stays flat however many
    /// subscribers there are.
    fn next_pending(&self, limit: usize) -> StoreResult<Vec<Delivery>>;

    /// Lease up to `limit` due pending deliveries to `worker` for `lease`,
    /// in outbox order: rows no worker holds, rows whose lease expired (their
    /// worker died), and rows `worker` holds already (their lease renewed).
    /// Several workers (processes) on one database each get their own rows.
    fn lease_pending(
        &self,
        worker: &str,
        limit: usize,
        lease: Duration,
    ) -> StoreResult<Vec<Delivery>>;

    /// Right before a send: is the delivery still pending and this worker's
    /// (or free, its lease expired)? If so its lease is renewed for `lease`.
    fn begin_send(&self, id: DeliveryId, worker: &str, lease: Duration) -> StoreResult<BeginSend>;

    /// Give up every lease of `worker` (a clean shutdown): other workers may
    /// take those rows at once instead of after the lease.
    fn release_leases(&self, worker: &str) -> StoreResult<u64>;

    fn delivery(&self, id: DeliveryId) -> StoreResult<Option<DeliveryInfo>>;

    /// Telegram answered OK. One UPDATE, whatever the row's state (the
    /// message did arrive, even if the announcement was cancelled meanwhile).
    fn mark_sent(&self, id: DeliveryId, message_id: i32) -> StoreResult<()>;

    /// A transient error: count the attempt, keep the error, and do not hand
    /// the delivery out again before `retry_in` has passed. Returns the
    /// attempts so far. (This and the two below change only a `Pending`
    /// row: one cancelled or blocked meanwhile stays as it is.)
    fn mark_retry(&self, id: DeliveryId, error: &str, retry_in: Duration) -> StoreResult<u32>;

    /// Give up on this delivery (counts the attempt).
    fn mark_failed(&self, id: DeliveryId, error: &str) -> StoreResult<()>;

    /// Telegram will not deliver to this chat: the delivery becomes
    /// `Blocked`, and [`Store::mark_chat_blocked`] is applied to its chat.
    fn mark_blocked(&self, id: DeliveryId, reason: &str) -> StoreResult<()>;

    // ----- uploaded files -------------------------------------------------

    /// The `file_id` Telegram gave `bot` for the file named `key`, if any.
    fn uploaded_file(&self, key: &FileKey) -> StoreResult<Option<String>>;

    /// Remember the `file_id` of an upload (replacing an older one: the
    /// last upload wins, any of them works).
    fn remember_upload(&self, key: &FileKey, file_id: &str) -> StoreResult<()>;

    /// Forget a `file_id` Telegram refused, so the next send uploads again.
    /// Only that `file_id`: a newer one another instance stored stays.
    fn forget_upload(&self, key: &FileKey, file_id: &str) -> StoreResult<bool>;
    // ----- webhook mode: updates and conversations ------------------------

    /// Take update `update_id` for handling by `owner` for `lease` (see
    /// [`UpdateClaim`]). An update whose owner died (lease over) is taken
    /// again. Each update id is handled once by all instances together.
    fn claim_update(
        &self,
        update_id: i64,
        owner: &str,
        lease: Duration,
    ) -> StoreResult<UpdateClaim>;

    /// The update is handled: later deliveries of it are duplicates.
    fn finish_update(&self, update_id: i64) -> StoreResult<()>;

    /// Handling failed before anything was done: give the update back, so
    /// Telegram's redelivery is handled at once (by any instance).
    fn release_update(&self, update_id: i64, owner: &str) -> StoreResult<()>;

    /// A conversation's context as saved (by any instance), unless expired.
    fn load_context(&self, key: &str) -> StoreResult<Option<String>>;

    /// Save a conversation's context for `ttl`; `None` forgets it.
    fn save_context(&self, key: &str, context: Option<&str>, ttl: Duration) -> StoreResult<()>;

    /// Forget expired contexts (and beyond `max_contexts`, the oldest) and
    /// updates handled more than `keep_updates` ago. Returns rows removed.
    fn sweep(&self, max_contexts: usize, keep_updates: Duration) -> StoreResult<u64>;

    // ----- several instances on one database -----------------------------

    /// The send budget shared by every process on this database, if the
    /// store has one (PostgreSQL). Without one, each process paces itself.
    fn shared_budget(&self) -> Option<&dyn SharedBudget> {
        None
    }

    /// Take part in the election of the one process that polls Telegram
    /// for updates (`name` tells bots on one database apart), if several
    /// processes can share this database (PostgreSQL). `None`: this process
    /// is the only one, and polls.
    fn poller_election(&self, name: &str) -> StoreResult<Option<PollerElection>> {
        let _ = name;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_through_their_names() {
        for k in [
            ChatKind::Private,
            ChatKind::Group,
            ChatKind::Supergroup,
            ChatKind::Channel,
        ] {
            assert_eq!(k.as_str().parse::<ChatKind>().ok(), Some(k));
        }
        assert!("robot".parse::<ChatKind>().is_err());
        assert_eq!(
            "done".parse::<AnnouncementState>().ok(),
            Some(AnnouncementState::Done)
        );
        assert_eq!(DeliveryState::Blocked.to_string(), "blocked");
    }

    #[test]
    fn language_from_telegram_code() {
        assert_eq!(Language::from_language_code(Some("en-US")), Language::En);
        assert_eq!(Language::from_language_code(Some("EN")), Language::En);
        assert_eq!(Language::from_language_code(Some("zh-hans")), Language::Zh);
        assert_eq!(Language::from_language_code(Some("e")), Language::Zh);
        assert_eq!(Language::from_language_code(None), Language::Zh);
    }

    #[test]
    fn database_urls_select_postgres_and_anything_else_is_a_file() {
        assert_eq!(
            Database::parse("reportbot.db"),
            Ok(Database::Sqlite("reportbot.db".into()))
        );
        assert_eq!(
            Database::parse("/var/lib/bot/postgres.db"),
            Ok(Database::Sqlite("/var/lib/bot/postgres.db".into()))
        );
        let pg = Database::parse("postgres://bot:secret@db.local:5433/reportbot");
        assert!(matches!(&pg, Ok(Database::Postgres(_))), "{pg:?}");
        let shown = pg.map(|d| d.to_string()).unwrap_or_default();
        assert_eq!(shown, "postgres://bot@db.local:5433/reportbot");
        assert!(Database::parse("postgresql://u@h/d").is_ok_and(|d| d.is_postgres()));
        assert!(Database::parse("postgres://u@h:notaport/d").is_err());
        assert!(Database::parse("  ").is_err());
    }

    #[test]
    fn store_is_object_safe() {
        fn takes(_: Option<std::sync::Arc<dyn Store>>) {}
        takes(None);
    }
}
