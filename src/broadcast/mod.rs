//! Delivering announcements to subscribers: paced, retried, resumable.
//!
//! [`Broadcaster::run`] is one long-lived task. It leases outbox rows in
//! small batches ([`Store::lease_pending`]), waits for a slot of the send
//! budget before each message ([`budget`]), claims the row
//! ([`Store::begin_send`]: still pending, still this worker's), sends it
//! with an [`AnnouncementSender`] (in the product, [`TelegramSender`]) and
//! records Telegram's answer.
//!
//! [`Store::lease_pending`]: crate::store::Store::lease_pending
//! [`Store::begin_send`]: crate::store::Store::begin_send
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
//! | 429 `retry_after` | pauses **every** send (the budget: of this process, or of every instance on PostgreSQL) that long, retries the same delivery; not an attempt |
//! | bot blocked / kicked, chat not found, user deactivated … | `Blocked`; the chat is unsubscribed and its other pending deliveries blocked |
//! | group migrated to a supergroup | moves the subscription to the new id, sends there |
//! | 5xx, network error, timeout | counts an attempt, retries after an exponential backoff (also pausing all sends a little); `Failed` after `max_attempts` |
//! | the text itself is refused (bad HTML, too long) | `Failed`, and the whole announcement is cancelled: every chat would refuse it |
//! | any other 400 | `Failed`, no retry |
//!
//! # Several workers on one database
//!
//! Every instance on a PostgreSQL database runs a worker. Leases keep them
//! apart (a row is sent by the worker that holds it; a dead worker's rows
//! come free when their lease ends), and the budget is shared, so together
//! they keep the configured rate and per-chat gap, and a 429 pauses them
//! all. A `kill -9` of one still costs at most `max_in_flight` duplicates.
//!
//! # Layout
//!
//! - [`settings`]: `[broadcast]` settings and their limits;
//! - [`budget`]: where slots come from: [`pacer`], the local budget of one
//!   process, or the budget shared by every process on a PostgreSQL database;
//! - [`sender`]: sending one message ([`TelegramSender`]);
//! - [`progress`]: the events the worker reports;
//! - [`worker`]: the [`Broadcaster`] itself.
//!
//! Telegram's errors are sorted by [`crate::telegram::errors::classify`],
//! the same classifier the replies use.

pub mod budget;
pub mod pacer;
pub mod progress;
pub mod sender;
pub mod settings;
pub mod worker;

pub use crate::telegram::errors::{SendError, classify};
pub use pacer::Pacer;
pub use progress::{BroadcastEvent, ProgressReport};
pub use sender::{AnnouncementSender, SendFuture, SentId, TelegramSender};
pub use settings::{
    BroadcastSettings, MAX_BACKOFF, MAX_IN_FLIGHT, MAX_RATE_PER_SEC, SettingsError,
    TELEGRAM_RATE_PER_SEC,
};
pub use worker::Broadcaster;
