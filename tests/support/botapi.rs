//! A fake Telegram Bot API server for end-to-end tests and benchmarks.
//!
//! It speaks enough of Telegram's JSON for teloxide 0.17 (teloxide-core 0.13)
//! to deserialise every answer, records every call, lets tests inject updates
//! (messages, button presses, inline queries, chat-member changes), inject
//! faults (429 / 5xx / slow answers / blocked users / unknown chats) and
//! enforces the checks Telegram itself makes on `sendMessage` /
//! `editMessageText` (empty text, 4096 UTF-16 units, HTML parse errors,
//! callback data longer than 64 bytes).
//!
//! ```ignore
//! let api = FakeBotApi::start().await;
//! // give api.url() to the bot as TELOXIDE_API_URL
//! let alice = UserSpec::new(1001, "Alice").username("alice").lang("en");
//! api.send_text(&ChatSpec::private(1001), &alice, "/start");
//! let msgs = api.wait_for_messages(1001, 1, Duration::from_secs(10)).await;
//! assert!(api.rejections().is_empty());
//! ```
//!
//! Wire-format notes (teloxide-core 0.13):
//! * method names arrive as `/bot{TOKEN}/{Method}` in PascalCase
//!   (`GetUpdates`, `SendMessage`), `…Inline` suffix stripped; they are matched
//!   case-insensitively and recorded in Telegram's camelCase (`sendMessage`);
//! * every method this fake implements is sent as a JSON body; multipart is
//!   only used for file uploads (it is parsed anyway, nested objects sent as
//!   JSON strings are normalised back to JSON values; an uploaded file
//!   becomes `{"filename", "size"}`, plus `"png": {"width", "height"}` for
//!   a PNG);
//! * `sendPhoto` takes an upload (a PNG) or a `file_id` this server gave out
//!   (anything else: "wrong file identifier"), answers a photo message with
//!   a new `file_id`, and is recorded as a [`SentPhoto`];
//! * teloxide sleeps 10 s after any HTTP 5xx answer before returning the error;
//! * teloxide's polling starts with `getWebhookInfo` (not `deleteWebhook`),
//!   and `getMe` is called by the dispatcher;
//! * `getMe` must carry `has_main_web_app`, `can_join_groups`,
//!   `can_read_all_group_messages`, `supports_inline_queries`; `getChat`
//!   must carry `accepted_gift_types` and `max_reaction_count`.
//!
//! Semantics worth knowing:
//! * a [`Call`] is recorded when it is *answered* (a long poll only when it
//!   returns); use [`BotApiHandle::wait_for_poller`] to know the bot listens;
//! * [`SentMessage::text`] is the raw text the bot sent (HTML tags included),
//!   [`SentMessage::visible_text`] what the user sees;
//! * like Telegram, an over-long `editMessageText` answers
//!   "Bad Request: MESSAGE_TOO_LONG" (teloxide `EditedMessageIsTooLong`), an
//!   over-long `sendMessage` "Bad Request: message is too long";
//! * the HTML checker ([`super::html`]) is stricter than Telegram about bare
//!   `&` and unquoted attribute values.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::html;

/// Default bot user id answered by `getMe`.
pub const BOT_ID: u64 = 4242;
/// Default bot username answered by `getMe`.
pub const BOT_USERNAME: &str = "reportbot_test_bot";
/// Telegram's limit for a message text, in UTF-16 code units after entity parsing.
pub const MAX_MESSAGE_UTF16: usize = 4096;
/// Telegram's limit for `callback_data`, in bytes.
pub const MAX_CALLBACK_DATA_BYTES: usize = 64;
/// The user Telegram puts in `from` of a message an anonymous group admin
/// sends (the group itself is in `sender_chat`).
pub const GROUP_ANONYMOUS_BOT_ID: u64 = 1_087_968_824;

const NOT_MODIFIED: &str = "message is not modified: specified new message content and reply \
                            markup are exactly the same as a current content and reply markup of \
                            the message";
const QUERY_INVALID: &str = "query is too old and response timeout expired or query ID is invalid";

// ---------------------------------------------------------------------------
// Public configuration / spec types
// ---------------------------------------------------------------------------

/// Server options.
#[derive(Clone, Debug)]
pub struct Options {
    /// Strict global rate limit: successful `sendMessage` calls (any chat) in
    /// a sliding 1-second window. Exceeding it answers 429 `retry_after: 1`
    /// and counts a violation. Default: off.
    pub global_per_sec: Option<u32>,
    /// Same, per chat. Default: off.
    pub per_chat_per_sec: Option<u32>,
    /// Like Telegram, one getUpdates consumer: a new long poll ends the one
    /// in flight with 409 Conflict ("terminated by other getUpdates
    /// request"), counted in [`BotApiHandle::conflicts`]. Default: off.
    pub single_consumer: bool,
    /// Keep every [`Call`] (method, params, …). Turn off in huge benchmarks
    /// to save memory; sent messages and counters are always kept.
    pub record_calls: bool,
    pub bot_id: u64,
    pub bot_username: String,
    pub bot_first_name: String,
    /// With a webhook set, post every update twice (the second after the
    /// first was answered 2xx), as Telegram may after a timeout.
    pub webhook_twice: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            global_per_sec: None,
            per_chat_per_sec: None,
            single_consumer: false,
            record_calls: true,
            bot_id: BOT_ID,
            bot_username: BOT_USERNAME.to_string(),
            bot_first_name: "Report Bot".to_string(),
            webhook_twice: false,
        }
    }
}

/// A chat an injected update comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChatSpec {
    /// Private chat; its id is the user's id, its names are taken from the
    /// `UserSpec` the update is sent from.
    Private {
        id: i64,
    },
    Group {
        id: i64,
        title: String,
    },
    Supergroup {
        id: i64,
        title: String,
    },
    /// A supergroup with topics (`is_forum`); messages carry `message_thread_id`.
    Forum {
        id: i64,
        title: String,
    },
}

impl ChatSpec {
    pub fn private(user_id: i64) -> Self {
        ChatSpec::Private { id: user_id }
    }
    pub fn group(id: i64, title: impl Into<String>) -> Self {
        ChatSpec::Group {
            id,
            title: title.into(),
        }
    }
    /// Supergroup ids look like `-100xxxxxxxxxx` in real Telegram.
    pub fn supergroup(id: i64, title: impl Into<String>) -> Self {
        ChatSpec::Supergroup {
            id,
            title: title.into(),
        }
    }
    /// A forum supergroup (topics).
    pub fn forum(id: i64, title: impl Into<String>) -> Self {
        ChatSpec::Forum {
            id,
            title: title.into(),
        }
    }
    pub fn id(&self) -> i64 {
        match self {
            ChatSpec::Private { id }
            | ChatSpec::Group { id, .. }
            | ChatSpec::Supergroup { id, .. }
            | ChatSpec::Forum { id, .. } => *id,
        }
    }
    pub fn type_name(&self) -> &'static str {
        match self {
            ChatSpec::Private { .. } => "private",
            ChatSpec::Group { .. } => "group",
            ChatSpec::Supergroup { .. } | ChatSpec::Forum { .. } => "supergroup",
        }
    }
}

/// A Telegram user who sends injected updates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserSpec {
    pub id: u64,
    pub first_name: String,
    pub last_name: Option<String>,
    pub username: Option<String>,
    /// IETF tag as Telegram sends it, e.g. `"en"`, `"zh-hans"`.
    pub language_code: Option<String>,
    pub is_bot: bool,
}

impl UserSpec {
    pub fn new(id: u64, first_name: impl Into<String>) -> Self {
        UserSpec {
            id,
            first_name: first_name.into(),
            last_name: None,
            username: None,
            language_code: None,
            is_bot: false,
        }
    }
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }
    pub fn lang(mut self, code: impl Into<String>) -> Self {
        self.language_code = Some(code.into());
        self
    }
    pub fn last_name(mut self, last: impl Into<String>) -> Self {
        self.last_name = Some(last.into());
        self
    }
    /// The private chat between this user and the bot.
    pub fn private_chat(&self) -> ChatSpec {
        ChatSpec::private(self.id as i64)
    }
    /// Telegram `User` JSON.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), self.id.into());
        m.insert("is_bot".into(), self.is_bot.into());
        m.insert("first_name".into(), self.first_name.clone().into());
        if let Some(v) = &self.last_name {
            m.insert("last_name".into(), v.clone().into());
        }
        if let Some(v) = &self.username {
            m.insert("username".into(), v.clone().into());
        }
        if let Some(v) = &self.language_code {
            m.insert("language_code".into(), v.clone().into());
        }
        Value::Object(m)
    }
}

/// Extra options for [`BotApiHandle::send_text_with`].
#[derive(Clone, Debug, Default)]
pub struct TextOptions {
    /// `reply_to_message` = this message of the same chat (usually one the
    /// bot sent), so the bot sees the user replied to it.
    pub reply_to: Option<i32>,
    /// Use these entities instead of the auto-detected bot_command/mention.
    pub entities: Option<Vec<Value>>,
    /// `message_thread_id` (forum topics).
    pub thread_id: Option<i64>,
    /// `sender_chat`: sent on behalf of this chat (an anonymous admin sends
    /// as the group itself; `from` is then the GroupAnonymousBot).
    pub sender_chat: Option<i64>,
}

/// An injected failure for the next call of a method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 429 with `parameters.retry_after`.
    TooManyRequests { retry_after: u32 },
    /// HTTP 5xx, e.g. `ServerError(502)`. Note teloxide sleeps 10 s after a 5xx.
    ServerError(u16),
    /// Answer normally, but only after this delay.
    Delay(Duration),
    /// Any other error answer.
    Api { status: u16, description: String },
}

/// Chat member status configured with [`BotApiHandle::set_member_status`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberStatus {
    Creator,
    Administrator,
    Member,
    Left,
    Kicked,
}

impl MemberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Creator => "creator",
            MemberStatus::Administrator => "administrator",
            MemberStatus::Member => "member",
            MemberStatus::Left => "left",
            MemberStatus::Kicked => "kicked",
        }
    }
}

// ---------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------

/// One HTTP call the bot made.
#[derive(Clone, Debug)]
pub struct Call {
    /// Global sequence number (0-based, in completion order).
    pub seq: u64,
    /// Telegram camelCase method name, e.g. `sendMessage`.
    pub method: String,
    /// Request parameters as JSON (multipart/form values normalised).
    pub params: Value,
    /// When the request arrived.
    pub at: Instant,
    /// How long the answer took (long polls, `Fault::Delay`).
    pub elapsed: Duration,
    /// HTTP status answered.
    pub status: u16,
    /// Error description for non-200 answers.
    pub description: Option<String>,
}

impl Call {
    pub fn is(&self, method: &str) -> bool {
        self.method.eq_ignore_ascii_case(method)
    }
    pub fn ok(&self) -> bool {
        self.status == 200
    }
    pub fn param(&self, key: &str) -> Option<&Value> {
        self.params.get(key)
    }
    pub fn param_str(&self, key: &str) -> Option<&str> {
        self.params.get(key).and_then(Value::as_str)
    }
    pub fn chat_id(&self) -> Option<i64> {
        self.params.get("chat_id").and_then(value_i64)
    }
}

/// A message the bot successfully sent with `sendMessage`.
#[derive(Clone, Debug)]
pub struct SentMessage {
    pub chat_id: i64,
    pub message_id: i32,
    /// Text exactly as the bot sent it (with HTML tags if any).
    pub text: String,
    pub parse_mode: Option<String>,
    pub reply_markup: Option<Value>,
    pub reply_to_message_id: Option<i32>,
    /// The forum topic the message landed in (`None`: General / no forum).
    pub thread_id: Option<i64>,
    /// Global send order (0-based) across all chats.
    pub seq: u64,
    pub at: Instant,
}

impl SentMessage {
    /// Text as the user sees it (HTML tags removed, entities decoded).
    pub fn visible_text(&self) -> String {
        visible(&self.text, self.parse_mode.as_deref())
    }
    /// Inline keyboard buttons as `(text, callback_data)`, row by row.
    pub fn buttons(&self) -> Vec<(String, Option<String>)> {
        buttons_of(self.reply_markup.as_ref())
    }
    /// All `callback_data` of the inline keyboard.
    pub fn callback_data(&self) -> Vec<String> {
        self.buttons().into_iter().filter_map(|(_, d)| d).collect()
    }
}

/// A photo the bot successfully sent with `sendPhoto`.
#[derive(Clone, Debug)]
pub struct SentPhoto {
    pub chat_id: i64,
    pub message_id: i32,
    /// The upload, if the photo was uploaded (multipart): `{"filename",
    /// "size", "png": {"width", "height"}}`.
    pub upload: Option<Value>,
    /// The `file_id` the bot sent instead of uploading.
    pub sent_file_id: Option<String>,
    /// The `file_id` of the photo (new for an upload).
    pub file_id: String,
    pub caption: Option<String>,
    pub reply_markup: Option<Value>,
    pub at: Instant,
}

/// A successful `editMessageText` / `editMessageReplyMarkup`.
#[derive(Clone, Debug)]
pub struct Edit {
    pub method: String,
    pub chat_id: Option<i64>,
    pub message_id: Option<i32>,
    pub inline_message_id: Option<String>,
    /// New text as sent (`None` for editMessageReplyMarkup).
    pub text: Option<String>,
    pub parse_mode: Option<String>,
    pub reply_markup: Option<Value>,
    pub at: Instant,
}

impl Edit {
    pub fn visible_text(&self) -> Option<String> {
        self.text
            .as_deref()
            .map(|t| visible(t, self.parse_mode.as_deref()))
    }
    pub fn buttons(&self) -> Vec<(String, Option<String>)> {
        buttons_of(self.reply_markup.as_ref())
    }
}

#[derive(Clone, Debug)]
pub struct CallbackAnswer {
    pub callback_query_id: String,
    pub text: Option<String>,
    pub show_alert: bool,
    pub url: Option<String>,
    pub cache_time: Option<i64>,
    pub at: Instant,
}

#[derive(Clone, Debug)]
pub struct InlineAnswer {
    pub inline_query_id: String,
    pub results: Vec<Value>,
    pub cache_time: Option<i64>,
    pub is_personal: bool,
    pub next_offset: Option<String>,
    pub button: Option<Value>,
    pub at: Instant,
}

/// A request Telegram itself would have refused (bad text, bad HTML, too
/// long, bad callback data, unknown method, message not modified, …).
/// Injected faults, blocked and forgotten chats are *not* rejections.
#[derive(Clone, Debug)]
pub struct Rejection {
    pub method: String,
    pub params: Value,
    pub status: u16,
    pub description: String,
    pub at: Instant,
}

/// Commands registered with `setMyCommands` for one (scope, language) pair.
#[derive(Clone, Debug, PartialEq)]
pub struct CommandSet {
    /// E.g. `{"type":"default"}` or `{"type":"chat","chat_id":-1}`.
    pub scope: Value,
    /// `""` when no language_code was given.
    pub language_code: String,
    /// `(command, description)`.
    pub commands: Vec<(String, String)>,
}

// ---------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------

/// The running fake server. Derefs to [`BotApiHandle`] (cloneable, `Send`),
/// which has all the injection / inspection methods.
pub struct FakeBotApi {
    handle: BotApiHandle,
    addr: SocketAddr,
    shutdown_tx: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    deliverer: Option<JoinHandle<()>>,
}

impl FakeBotApi {
    /// Starts on `127.0.0.1:0` with default options.
    pub async fn start() -> FakeBotApi {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(opts: Options) -> FakeBotApi {
        let handle = BotApiHandle::new(opts);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        let app = Router::new()
            .fallback(http_entry)
            .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
            .with_state(handle.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        let deliverer = tokio::spawn(deliver_webhooks(handle.clone()));
        FakeBotApi {
            handle,
            addr,
            shutdown_tx: Some(tx),
            task: Some(task),
            deliverer: Some(deliverer),
        }
    }

    /// `http://127.0.0.1:PORT` — give it to the bot as `TELOXIDE_API_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A cloneable handle to move into other tasks.
    pub fn handle(&self) -> BotApiHandle {
        self.handle.clone()
    }

    /// Stops the server: pending long polls answer `[]` at once, then the
    /// listener closes.
    pub async fn shutdown(mut self) {
        self.handle.begin_shutdown();
        if let Some(d) = self.deliverer.take() {
            d.abort();
        }
        if let Some(tx) = self.shutdown_tx.take() {
            let _ = tx.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Deref for FakeBotApi {
    type Target = BotApiHandle;
    fn deref(&self) -> &BotApiHandle {
        &self.handle
    }
}

impl Drop for FakeBotApi {
    fn drop(&mut self) {
        if let Some(d) = self.deliverer.take() {
            d.abort();
        }
        if let Some(task) = self.task.take() {
            self.handle.begin_shutdown();
            if let Some(tx) = self.shutdown_tx.take() {
                let _ = tx.send(());
            }
            task.abort();
        }
    }
}

/// Cloneable handle to the fake server's state.
#[derive(Clone)]
pub struct BotApiHandle {
    inner: Arc<Inner>,
}

struct Inner {
    opts: Options,
    st: Mutex<St>,
    /// Bumped when the update queue changes or on shutdown (wakes long polls).
    updates_tx: watch::Sender<u64>,
    /// Bumped after every recorded call / injected update (wakes waiters).
    events_tx: watch::Sender<u64>,
    shutting_down: AtomicBool,
}

struct StoredMsg {
    from: u64,
    /// A photo message: its sizes (`text` is then the caption).
    photo: Option<Value>,
    date: i64,
    text: String,
    entities: Option<Value>,
    reply_markup: Option<Value>,
    reply_to: Option<i32>,
    edit_date: Option<i64>,
    thread_id: Option<i64>,
    /// `sender_chat`: the chat a message was sent on behalf of.
    sender_chat: Option<i64>,
}

#[derive(Default)]
struct St {
    tokens: Vec<String>,
    call_seq: u64,
    calls: Vec<Call>,
    calls_by_method: HashMap<String, Vec<usize>>,
    method_counts: HashMap<String, u64>,
    rejections: Vec<Rejection>,
    violations: u64,
    total_sent: u64,
    sent: HashMap<i64, Vec<SentMessage>>,
    photos: HashMap<i64, Vec<SentPhoto>>,
    /// `file_id` → (width, height, size) of every photo uploaded.
    files: HashMap<String, (u64, u64, u64)>,
    uploads: u64,
    edits: HashMap<i64, Vec<Edit>>,
    inline_edits: Vec<Edit>,
    deleted: Vec<(i64, i32)>,
    chat_actions: Vec<(i64, String)>,
    callback_answers: Vec<CallbackAnswer>,
    inline_answers: Vec<InlineAnswer>,
    commands: BTreeMap<(String, String), CommandSet>,
    chats: HashMap<i64, Value>,
    users: HashMap<u64, Value>,
    next_msg_id: HashMap<i64, i32>,
    messages: HashMap<(i64, i32), StoredMsg>,
    /// Queued updates as JSON text (a test may queue text no `Value` can
    /// hold, like a lone UTF-16 surrogate escape).
    updates: VecDeque<(i64, String)>,
    /// While true, getUpdates hands out nothing new (updates pile up into
    /// one batch).
    hold_updates: bool,
    next_update_id: i64,
    confirmed_offset: i64,
    faults: HashMap<String, VecDeque<Fault>>,
    blocked: HashSet<i64>,
    forgotten: HashSet<i64>,
    members: HashMap<i64, BTreeMap<u64, MemberStatus>>,
    open_callback_ids: HashSet<String>,
    open_inline_ids: HashSet<String>,
    next_query_id: u64,
    rl_global: VecDeque<Instant>,
    rl_chat: HashMap<i64, VecDeque<Instant>>,
    polls_in_flight: usize,
    polls_started: u64,
    /// The newest long poll (with `single_consumer`); older ones end in 409.
    poll_generation: u64,
    conflicts: u64,
    /// The webhook set by setWebhook: while set, updates are posted to it
    /// (one chat's in order, each until answered 2xx) and getUpdates is a 409.
    webhook: Option<WebhookConfig>,
    /// Each update's delivery lane (its chat, else its sender; 0: none).
    lanes: HashMap<i64, i64>,
    /// Lanes with a delivery in flight.
    lanes_busy: HashSet<i64>,
    /// Every webhook POST: update id, HTTP status (0: no answer), when.
    webhook_posts: Vec<WebhookPost>,
    webhook_last_error: Option<(i64, String)>,
    /// When each update was queued (for update-to-reply times).
    queued_at: HashMap<i64, Instant>,
}

/// What setWebhook registered.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    pub url: String,
    pub secret: Option<String>,
    pub max_connections: usize,
    pub allowed_updates: Option<Value>,
}

/// One webhook POST.
#[derive(Clone, Debug)]
pub struct WebhookPost {
    pub update_id: i64,
    /// 0 when the connection failed.
    pub status: u16,
    pub at: Instant,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ErrKind {
    /// Telegram would refuse this request: a bug in the bot.
    Rejection,
    /// Rate limit of `Options` exceeded.
    Violation,
    /// Test-injected (faults, blocked / forgotten chats).
    Injected,
}

#[derive(Debug)]
struct ApiErr {
    status: u16,
    description: String,
    retry_after: Option<u32>,
    kind: ErrKind,
}

fn bad(desc: impl AsRef<str>) -> ApiErr {
    ApiErr {
        status: 400,
        description: format!("Bad Request: {}", desc.as_ref()),
        retry_after: None,
        kind: ErrKind::Rejection,
    }
}

fn injected(status: u16, description: impl Into<String>) -> ApiErr {
    ApiErr {
        status,
        description: description.into(),
        retry_after: None,
        kind: ErrKind::Injected,
    }
}

type ApiResult = Result<Value, ApiErr>;

impl BotApiHandle {
    fn new(opts: Options) -> Self {
        let mut st = St {
            next_update_id: 10_001,
            next_query_id: 1,
            ..St::default()
        };
        st.users.insert(
            opts.bot_id,
            json!({
                "id": opts.bot_id,
                "is_bot": true,
                "first_name": opts.bot_first_name,
                "username": opts.bot_username,
            }),
        );
        BotApiHandle {
            inner: Arc::new(Inner {
                opts,
                st: Mutex::new(st),
                updates_tx: watch::channel(0).0,
                events_tx: watch::channel(0).0,
                shutting_down: AtomicBool::new(false),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, St> {
        self.inner.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bump_updates(&self) {
        self.inner.updates_tx.send_modify(|v| *v += 1);
    }

    fn bump_events(&self) {
        self.inner.events_tx.send_modify(|v| *v += 1);
    }

    fn begin_shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        self.bump_updates();
    }

    pub fn options(&self) -> &Options {
        &self.inner.opts
    }

    // ----- configuration ---------------------------------------------------

    /// Queue a fault for the next call of `method` (case-insensitive; e.g.
    /// `"sendMessage"`). Several faults queue up, one is used per call.
    pub fn fail_next(&self, method: &str, fault: Fault) {
        self.lock()
            .faults
            .entry(method.to_ascii_lowercase())
            .or_default()
            .push_back(fault);
    }

    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Sends/edits/chat actions to this chat answer 403 "Forbidden: bot was
    /// blocked by the user" (or "…kicked from the group chat" for groups).
    pub fn block_chat(&self, chat_id: i64) {
        self.lock().blocked.insert(chat_id);
    }

    pub fn unblock_chat(&self, chat_id: i64) {
        self.lock().blocked.remove(&chat_id);
    }

    /// Every call naming this chat answers 400 "Bad Request: chat not found".
    pub fn forget_chat(&self, chat_id: i64) {
        self.lock().forgotten.insert(chat_id);
    }

    pub fn set_chat_admin(&self, chat_id: i64, user_id: u64) {
        self.set_member_status(chat_id, user_id, MemberStatus::Administrator);
    }

    pub fn set_chat_creator(&self, chat_id: i64, user_id: u64) {
        self.set_member_status(chat_id, user_id, MemberStatus::Creator);
    }

    /// Status answered by getChatMember (default "member").
    pub fn set_member_status(&self, chat_id: i64, user_id: u64, status: MemberStatus) {
        self.lock()
            .members
            .entry(chat_id)
            .or_default()
            .insert(user_id, status);
    }

    /// Make a chat known without sending an update (for its type/title in
    /// answers). Private chats take their names from `user`, if given.
    pub fn register_chat(&self, chat: &ChatSpec, user: Option<&UserSpec>) {
        let mut st = self.lock();
        st.register(chat, user);
    }

    pub fn register_user(&self, user: &UserSpec) {
        self.lock().users.insert(user.id, user.to_json());
    }

    // ----- update injection ------------------------------------------------

    /// A user sends `text` in `chat`. Leading `/cmd[@bot]` (and any later
    /// command) gets a `bot_command` entity, `@username` a `mention` entity,
    /// with UTF-16 offsets like Telegram. Returns the new message_id.
    pub fn send_text(&self, chat: &ChatSpec, from: &UserSpec, text: &str) -> i32 {
        self.send_text_with(chat, from, text, TextOptions::default())
    }

    /// Like [`send_text`](Self::send_text), replying to `reply_to` (e.g. a
    /// message the bot sent).
    pub fn send_reply(&self, chat: &ChatSpec, from: &UserSpec, text: &str, reply_to: i32) -> i32 {
        self.send_text_with(
            chat,
            from,
            text,
            TextOptions {
                reply_to: Some(reply_to),
                ..TextOptions::default()
            },
        )
    }

    pub fn send_text_with(
        &self,
        chat: &ChatSpec,
        from: &UserSpec,
        text: &str,
        opts: TextOptions,
    ) -> i32 {
        let mid;
        {
            let mut st = self.lock();
            st.register(chat, Some(from));
            let chat_id = chat.id();
            mid = st.alloc_message_id(chat_id);
            let entities = opts.entities.unwrap_or_else(|| detect_entities(text));
            let reply_to = opts
                .reply_to
                .filter(|r| st.messages.contains_key(&(chat_id, *r)));
            st.messages.insert(
                (chat_id, mid),
                StoredMsg {
                    photo: None,
                    from: from.id,
                    date: unix_now(),
                    text: text.to_string(),
                    entities: (!entities.is_empty()).then_some(Value::Array(entities)),
                    reply_markup: None,
                    reply_to,
                    edit_date: None,
                    thread_id: opts.thread_id,
                    sender_chat: opts.sender_chat,
                },
            );
            let msg = st.render_message(chat_id, mid, true).expect("just stored");
            st.push_update("message", msg);
        }
        self.bump_updates();
        self.bump_events();
        mid
    }

    /// The user edits one of their earlier messages (`edited_message` update).
    pub fn edit_user_text(
        &self,
        chat: &ChatSpec,
        from: &UserSpec,
        message_id: i32,
        text: &str,
    ) -> i64 {
        let id;
        {
            let mut st = self.lock();
            st.register(chat, Some(from));
            let key = (chat.id(), message_id);
            let entities = detect_entities(text);
            let now = unix_now();
            match st.messages.get_mut(&key) {
                Some(m) => {
                    m.text = text.to_string();
                    m.entities = (!entities.is_empty()).then_some(Value::Array(entities));
                    m.edit_date = Some(now);
                }
                None => {
                    st.messages.insert(
                        key,
                        StoredMsg {
                            photo: None,
                            from: from.id,
                            date: now,
                            text: text.to_string(),
                            entities: (!entities.is_empty()).then_some(Value::Array(entities)),
                            reply_markup: None,
                            reply_to: None,
                            edit_date: Some(now),
                            thread_id: None,
                            sender_chat: None,
                        },
                    );
                }
            }
            let msg = st.render_message(key.0, key.1, true).expect("stored");
            id = st.push_update("edited_message", msg);
        }
        self.bump_updates();
        self.bump_events();
        id
    }

    /// The user presses an inline button with `data` under message
    /// `message_id` (normally one the bot sent). Returns the callback query id.
    pub fn press_button(
        &self,
        chat: &ChatSpec,
        from: &UserSpec,
        message_id: i32,
        data: &str,
    ) -> String {
        let qid;
        {
            let mut st = self.lock();
            st.register(chat, Some(from));
            let chat_id = chat.id();
            qid = st.new_query_id();
            let message = st
                .render_message(chat_id, message_id, true)
                .unwrap_or_else(|| {
                    // InaccessibleMessage
                    json!({"chat": st.chat_json(chat_id), "message_id": message_id, "date": 0})
                });
            let payload = json!({
                "id": qid,
                "from": from.to_json(),
                "message": message,
                "chat_instance": chat_instance(chat_id),
                "data": data,
            });
            st.open_callback_ids.insert(qid.clone());
            st.push_update("callback_query", payload);
        }
        self.bump_updates();
        self.bump_events();
        qid
    }

    /// The user types `@bot query` in some chat. Returns the inline query id.
    pub fn inline_query(&self, from: &UserSpec, query: &str) -> String {
        self.inline_query_with(from, query, "", Some("sender"))
    }

    /// `chat_type`: `"sender"`, `"private"`, `"group"`, `"supergroup"`,
    /// `"channel"` or `None`.
    pub fn inline_query_with(
        &self,
        from: &UserSpec,
        query: &str,
        offset: &str,
        chat_type: Option<&str>,
    ) -> String {
        let qid;
        {
            let mut st = self.lock();
            st.users.insert(from.id, from.to_json());
            qid = st.new_query_id();
            let mut payload = json!({
                "id": qid,
                "from": from.to_json(),
                "query": query,
                "offset": offset,
            });
            if let Some(ct) = chat_type {
                payload["chat_type"] = ct.into();
            }
            st.open_inline_ids.insert(qid.clone());
            st.push_update("inline_query", payload);
        }
        self.bump_updates();
        self.bump_events();
        qid
    }

    /// A `my_chat_member` update about the bot itself. Returns the update id.
    pub fn my_chat_member(
        &self,
        chat: &ChatSpec,
        from: &UserSpec,
        old: MemberStatus,
        new: MemberStatus,
    ) -> i64 {
        let id;
        {
            let mut st = self.lock();
            st.register(chat, Some(from));
            let bot = st.user_json(self.inner.opts.bot_id);
            let payload = json!({
                "chat": st.chat_json(chat.id()),
                "from": from.to_json(),
                "date": unix_now(),
                "old_chat_member": member_json(bot.clone(), old),
                "new_chat_member": member_json(bot, new),
            });
            id = st.push_update("my_chat_member", payload);
        }
        self.bump_updates();
        self.bump_events();
        id
    }

    /// The user blocks the bot: a `my_chat_member` update (member → kicked)
    /// and from now on sends to their private chat answer 403.
    pub fn user_blocks_bot(&self, from: &UserSpec) -> i64 {
        self.block_chat(from.id as i64);
        self.my_chat_member(
            &from.private_chat(),
            from,
            MemberStatus::Member,
            MemberStatus::Kicked,
        )
    }

    /// Queue an arbitrary update: `{"update_id": N, kind: payload}`.
    /// A `callback_query` / `inline_query` id in `payload` becomes answerable.
    pub fn inject_raw(&self, kind: &str, payload: Value) -> i64 {
        let id = {
            let mut st = self.lock();
            if let Some(qid) = payload.get("id").and_then(Value::as_str) {
                match kind {
                    "callback_query" => {
                        st.open_callback_ids.insert(qid.to_string());
                    }
                    "inline_query" => {
                        st.open_inline_ids.insert(qid.to_string());
                    }
                    _ => {}
                }
            }
            st.push_update(kind, payload)
        };
        self.bump_updates();
        self.bump_events();
        id
    }

    /// Queue an update whose payload is given as JSON text, as is (e.g. with
    /// a lone UTF-16 surrogate escape, which no `Value` can hold). Returns
    /// the update id.
    pub fn inject_raw_text(&self, kind: &str, payload_json: &str) -> i64 {
        let id = self.lock().push_update_text(kind, payload_json);
        self.bump_updates();
        self.bump_events();
        id
    }

    /// While held, getUpdates hands out no new updates, so the ones queued
    /// meanwhile arrive in one batch when released.
    pub fn hold_updates(&self, hold: bool) {
        self.lock().hold_updates = hold;
        self.bump_updates();
    }

    /// Store a user's message as [`send_text_with`](Self::send_text_with)
    /// does, without queueing an update; see it with
    /// [`message_json`](Self::message_json) and queue a changed copy with
    /// [`inject_raw`](Self::inject_raw). Returns the message id.
    pub fn store_text(
        &self,
        chat: &ChatSpec,
        from: &UserSpec,
        text: &str,
        opts: TextOptions,
    ) -> i32 {
        let mut st = self.lock();
        st.register(chat, Some(from));
        let chat_id = chat.id();
        let mid = st.alloc_message_id(chat_id);
        let entities = opts.entities.unwrap_or_else(|| detect_entities(text));
        st.messages.insert(
            (chat_id, mid),
            StoredMsg {
                photo: None,
                from: from.id,
                date: unix_now(),
                text: text.to_string(),
                entities: (!entities.is_empty()).then_some(Value::Array(entities)),
                reply_markup: None,
                reply_to: opts.reply_to,
                edit_date: None,
                thread_id: opts.thread_id,
                sender_chat: opts.sender_chat,
            },
        );
        mid
    }

    /// An anonymous admin of `group` sends `text`: `from` is the
    /// GroupAnonymousBot, `sender_chat` the group. Returns the message id.
    pub fn send_as_anonymous_admin(&self, group: &ChatSpec, text: &str) -> i32 {
        let bot = UserSpec {
            id: GROUP_ANONYMOUS_BOT_ID,
            first_name: "Group".into(),
            last_name: None,
            username: Some("GroupAnonymousBot".into()),
            language_code: None,
            is_bot: true,
        };
        self.send_text_with(
            group,
            &bot,
            text,
            TextOptions {
                sender_chat: Some(group.id()),
                ..TextOptions::default()
            },
        )
    }

    /// The user deletes one of their messages (Telegram sends no update).
    pub fn delete_user_message(&self, chat_id: i64, message_id: i32) {
        self.lock().messages.remove(&(chat_id, message_id));
    }

    /// The user presses a button under a message sent in inline mode: the
    /// callback has `inline_message_id` and no `message`. Returns the query id.
    pub fn press_inline_button(
        &self,
        from: &UserSpec,
        inline_message_id: &str,
        data: &str,
    ) -> String {
        let qid;
        {
            let mut st = self.lock();
            st.users.insert(from.id, from.to_json());
            qid = st.new_query_id();
            let payload = json!({
                "id": qid,
                "from": from.to_json(),
                "inline_message_id": inline_message_id,
                "chat_instance": "inline-chat-instance",
                "data": data,
            });
            st.open_callback_ids.insert(qid.clone());
            st.push_update("callback_query", payload);
        }
        self.bump_updates();
        self.bump_events();
        qid
    }

    // ----- inspection ------------------------------------------------------

    /// Every recorded call, in completion order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Recorded calls of one method (case-insensitive).
    pub fn calls_to(&self, method: &str) -> Vec<Call> {
        let st = self.lock();
        st.calls_by_method
            .get(&method.to_ascii_lowercase())
            .map(|ix| ix.iter().map(|&i| st.calls[i].clone()).collect())
            .unwrap_or_default()
    }

    /// How many calls of `method` were answered (counted even when
    /// `record_calls` is off).
    pub fn call_count(&self, method: &str) -> u64 {
        self.lock()
            .method_counts
            .get(&method.to_ascii_lowercase())
            .copied()
            .unwrap_or(0)
    }

    /// Distinct bot tokens seen in request paths.
    pub fn tokens(&self) -> Vec<String> {
        self.lock().tokens.clone()
    }

    /// Messages the bot successfully sent to `chat_id`, in order.
    pub fn sent_messages(&self, chat_id: i64) -> Vec<SentMessage> {
        self.lock().sent.get(&chat_id).cloned().unwrap_or_default()
    }

    /// Every message successfully sent to any chat, in send order.
    pub fn all_sent_messages(&self) -> Vec<SentMessage> {
        let st = self.lock();
        let mut v: Vec<SentMessage> = st.sent.values().flatten().cloned().collect();
        v.sort_by_key(|m| m.seq);
        v
    }

    /// Telegram no longer knows the photos uploaded so far: sending one by
    /// its `file_id` answers "wrong file identifier".
    pub fn forget_uploaded_files(&self) {
        self.lock().files.clear();
    }

    /// Photos the bot successfully sent to `chat_id`, in order.
    pub fn sent_photos(&self, chat_id: i64) -> Vec<SentPhoto> {
        self.lock()
            .photos
            .get(&chat_id)
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until at least `n` photos were sent to `chat_id`; returns all
    /// of them (or whatever there is at timeout).
    pub async fn wait_for_photos(
        &self,
        chat_id: i64,
        n: usize,
        timeout: Duration,
    ) -> Vec<SentPhoto> {
        self.wait_st(timeout, |st| {
            st.photos.get(&chat_id).filter(|v| v.len() >= n).cloned()
        })
        .await
        .unwrap_or_else(|| self.sent_photos(chat_id))
    }

    /// Number of successful sendMessage calls.
    pub fn total_sent(&self) -> u64 {
        self.lock().total_sent
    }

    pub fn edits(&self, chat_id: i64) -> Vec<Edit> {
        self.lock().edits.get(&chat_id).cloned().unwrap_or_default()
    }

    pub fn inline_message_edits(&self) -> Vec<Edit> {
        self.lock().inline_edits.clone()
    }

    /// `(chat_id, message_id)` of successful deleteMessage calls.
    pub fn deleted_messages(&self) -> Vec<(i64, i32)> {
        self.lock().deleted.clone()
    }

    /// `(chat_id, action)` of successful sendChatAction calls.
    pub fn chat_actions(&self) -> Vec<(i64, String)> {
        self.lock().chat_actions.clone()
    }

    pub fn callback_answers(&self) -> Vec<CallbackAnswer> {
        self.lock().callback_answers.clone()
    }

    pub fn inline_answers(&self) -> Vec<InlineAnswer> {
        self.lock().inline_answers.clone()
    }

    /// Everything registered with setMyCommands, sorted by (scope, language).
    pub fn my_commands(&self) -> Vec<CommandSet> {
        self.lock().commands.values().cloned().collect()
    }

    /// Commands for a scope *type* (`"default"`, `"all_private_chats"`, …;
    /// for `chat` scopes use [`my_commands`](Self::my_commands)) and language
    /// (`""` = none).
    pub fn commands_for(
        &self,
        scope_type: &str,
        language_code: &str,
    ) -> Option<Vec<(String, String)>> {
        let key = (
            scope_key(&json!({ "type": scope_type })),
            language_code.to_string(),
        );
        self.lock().commands.get(&key).map(|c| c.commands.clone())
    }

    /// Requests Telegram would have refused (see [`Rejection`]).
    pub fn rejections(&self) -> Vec<Rejection> {
        self.lock().rejections.clone()
    }

    /// How many times the `Options` rate limits were exceeded.
    pub fn violations(&self) -> u64 {
        self.lock().violations
    }

    /// Highest `offset` a getUpdates call confirmed (0 if none).
    pub fn confirmed_offset(&self) -> i64 {
        self.lock().confirmed_offset
    }

    /// Updates queued and not yet confirmed by an offset.
    pub fn pending_updates(&self) -> usize {
        self.lock().updates.len()
    }

    /// The id the next injected update will get.
    pub fn next_update_id(&self) -> i64 {
        self.lock().next_update_id
    }

    /// JSON of a stored message (as the bot would see it in an update).
    pub fn message_json(&self, chat_id: i64, message_id: i32) -> Option<Value> {
        self.lock().render_message(chat_id, message_id, true)
    }

    // ----- waiting ---------------------------------------------------------

    async fn wait_st<T>(
        &self,
        timeout: Duration,
        mut f: impl FnMut(&St) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut rx = self.inner.events_tx.subscribe();
        loop {
            if let Some(v) = f(&self.lock()) {
                return Some(v);
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { return f(&self.lock()); },
                _ = tokio::time::sleep_until(deadline) => return f(&self.lock()),
            }
        }
    }

    /// Waits until `pred` holds (re-checked after every call / injection).
    pub async fn wait_until(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&BotApiHandle) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut rx = self.inner.events_tx.subscribe();
        loop {
            if pred(self) {
                return true;
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { return pred(self); },
                _ = tokio::time::sleep_until(deadline) => return pred(self),
            }
        }
    }

    /// Waits until at least `n` messages were sent to `chat_id`; returns all
    /// of them (or whatever there is at timeout).
    pub async fn wait_for_messages(
        &self,
        chat_id: i64,
        n: usize,
        timeout: Duration,
    ) -> Vec<SentMessage> {
        self.wait_st(timeout, |st| {
            st.sent.get(&chat_id).filter(|v| v.len() >= n).cloned()
        })
        .await
        .unwrap_or_else(|| self.sent_messages(chat_id))
    }

    /// Waits until `total_sent() >= n`; returns the final count.
    pub async fn wait_for_total_sent(&self, n: u64, timeout: Duration) -> u64 {
        self.wait_st(timeout, |st| (st.total_sent >= n).then_some(()))
            .await;
        self.total_sent()
    }

    /// The first recorded call of `method`, waiting for it if needed. Calls
    /// are recorded when answered (a long poll only after it returns).
    pub async fn wait_for_call(&self, method: &str, timeout: Duration) -> Option<Call> {
        let key = method.to_ascii_lowercase();
        self.wait_st(timeout, |st| {
            st.calls_by_method
                .get(&key)
                .and_then(|ix| ix.first())
                .map(|&i| st.calls[i].clone())
        })
        .await
    }

    /// Waits until at least `n` calls of `method` were recorded; returns them.
    pub async fn wait_for_calls(&self, method: &str, n: usize, timeout: Duration) -> Vec<Call> {
        let key = method.to_ascii_lowercase();
        self.wait_st(timeout, |st| {
            st.calls_by_method
                .get(&key)
                .filter(|ix| ix.len() >= n)
                .map(|_| ())
        })
        .await;
        self.calls_to(method)
    }

    pub async fn wait_for_edits(&self, chat_id: i64, n: usize, timeout: Duration) -> Vec<Edit> {
        self.wait_st(timeout, |st| {
            st.edits.get(&chat_id).filter(|v| v.len() >= n).cloned()
        })
        .await
        .unwrap_or_else(|| self.edits(chat_id))
    }

    pub async fn wait_for_callback_answers(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Vec<CallbackAnswer> {
        self.wait_st(timeout, |st| {
            (st.callback_answers.len() >= n).then(|| st.callback_answers.clone())
        })
        .await
        .unwrap_or_else(|| self.callback_answers())
    }

    pub async fn wait_for_inline_answers(&self, n: usize, timeout: Duration) -> Vec<InlineAnswer> {
        self.wait_st(timeout, |st| {
            (st.inline_answers.len() >= n).then(|| st.inline_answers.clone())
        })
        .await
        .unwrap_or_else(|| self.inline_answers())
    }

    /// Long polls ended with 409 Conflict because another one began
    /// (`Options::single_consumer`): two bot instances polling at once.
    /// The webhook set now, if any.
    pub fn webhook(&self) -> Option<WebhookConfig> {
        self.lock().webhook.clone()
    }

    /// Every webhook POST so far.
    pub fn webhook_posts(&self) -> Vec<WebhookPost> {
        self.lock().webhook_posts.clone()
    }

    /// When update `id` was queued.
    pub fn queued_at(&self, id: i64) -> Option<Instant> {
        self.lock().queued_at.get(&id).copied()
    }

    pub fn conflicts(&self) -> u64 {
        self.lock().conflicts
    }

    /// getUpdates requests started so far.
    pub fn polls_started(&self) -> u64 {
        self.lock().polls_started
    }

    /// getUpdates requests currently being held (long polling).
    pub fn polls_in_flight(&self) -> usize {
        self.lock().polls_in_flight
    }

    /// Waits until the bot is long polling (a getUpdates request is being
    /// held right now). Note that [`Call`]s are recorded when answered, so
    /// `wait_for_call("getUpdates")` only returns after a first poll ended.
    pub async fn wait_for_poller(&self, timeout: Duration) -> bool {
        self.wait_st(timeout, |st| (st.polls_in_flight > 0).then_some(()))
            .await
            .is_some()
    }

    /// Waits until the bot confirmed (via getUpdates offset) every injected
    /// update, i.e. it has fetched them and asked for the next ones.
    pub async fn wait_for_no_pending(&self, timeout: Duration) -> bool {
        self.wait_st(timeout, |st| st.updates.is_empty().then_some(()))
            .await
            .is_some()
    }

    // ----- request handling ------------------------------------------------

    async fn handle_call(
        &self,
        token: &str,
        method_raw: &str,
        params: Value,
        arrived: Instant,
    ) -> Response {
        let method = canonical_method(method_raw);
        let key = method.to_ascii_lowercase();
        let fault = {
            let mut st = self.lock();
            if !st.tokens.iter().any(|t| t == token) {
                st.tokens.push(token.to_string());
            }
            st.faults.get_mut(&key).and_then(|q| q.pop_front())
        };
        let mut early: Option<ApiErr> = None;
        match fault {
            None => {}
            Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
            Some(Fault::TooManyRequests { retry_after }) => {
                early = Some(ApiErr {
                    status: 429,
                    description: format!("Too Many Requests: retry after {retry_after}"),
                    retry_after: Some(retry_after),
                    kind: ErrKind::Injected,
                })
            }
            Some(Fault::ServerError(status)) => {
                let desc = match status {
                    500 => "Internal Server Error",
                    502 => "Bad Gateway",
                    503 => "Service Unavailable",
                    504 => "Gateway Timeout",
                    _ => "Server Error",
                };
                early = Some(injected(status, desc));
            }
            Some(Fault::Api {
                status,
                description,
            }) => early = Some(injected(status, description)),
        }

        let result = match early {
            Some(e) => Err(e),
            None if key == "getupdates" && self.lock().webhook.is_some() => Err(ApiErr {
                status: 409,
                description: "Conflict: can't use getUpdates method while webhook is active; \
                              use deleteWebhook to delete the webhook first"
                    .into(),
                retry_after: None,
                kind: ErrKind::Injected,
            }),
            None if key == "getupdates" => {
                let raw = self.get_updates(&params).await;
                let mut st = self.lock();
                let resp = match raw {
                    Ok(raw) => self.finish_raw(&mut st, method, key, params, arrived, &raw),
                    Err(e) => self.finish(&mut st, method, key, params, arrived, Err(e)),
                };
                drop(st);
                self.bump_events();
                return resp;
            }
            None => {
                let mut st = self.lock();
                let r = st.dispatch(&self.inner.opts, &key, &method, &params);
                let resp = self.finish(&mut st, method, key, params, arrived, r);
                drop(st);
                self.bump_events();
                return resp;
            }
        };
        let mut st = self.lock();
        let resp = self.finish(&mut st, method, key, params, arrived, result);
        drop(st);
        self.bump_events();
        resp
    }

    /// A successful answer whose `result` is JSON text as is.
    fn finish_raw(
        &self,
        st: &mut St,
        method: String,
        key: String,
        params: Value,
        arrived: Instant,
        raw_result: &str,
    ) -> Response {
        // Recorded like any other call (the body below replaces `null`).
        let _ = self.finish(st, method, key, params, arrived, Ok(Value::Null));
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            format!(r#"{{"ok":true,"result":{raw_result}}}"#),
        )
            .into_response()
    }

    fn finish(
        &self,
        st: &mut St,
        method: String,
        key: String,
        params: Value,
        arrived: Instant,
        result: ApiResult,
    ) -> Response {
        let (status, body, description) = match result {
            Ok(v) => (200u16, json!({"ok": true, "result": v}), None),
            Err(e) => {
                let mut body = json!({
                    "ok": false,
                    "error_code": e.status,
                    "description": e.description,
                });
                if let Some(r) = e.retry_after {
                    body["parameters"] = json!({ "retry_after": r });
                }
                match e.kind {
                    ErrKind::Rejection => st.rejections.push(Rejection {
                        method: method.clone(),
                        params: params.clone(),
                        status: e.status,
                        description: e.description.clone(),
                        at: arrived,
                    }),
                    ErrKind::Violation => st.violations += 1,
                    ErrKind::Injected => {}
                }
                (e.status, body, Some(e.description))
            }
        };
        *st.method_counts.entry(key.clone()).or_insert(0) += 1;
        let seq = st.call_seq;
        st.call_seq += 1;
        if self.inner.opts.record_calls {
            let idx = st.calls.len();
            st.calls.push(Call {
                seq,
                method,
                params,
                at: arrived,
                elapsed: arrived.elapsed(),
                status,
                description,
            });
            st.calls_by_method.entry(key).or_default().push(idx);
        }
        json_response(status, &body)
    }

    /// The `result` of getUpdates as JSON text.
    async fn get_updates(&self, p: &Value) -> Result<String, ApiErr> {
        let offset = p.get("offset").and_then(value_i64).unwrap_or(0);
        let limit = p
            .get("limit")
            .and_then(value_i64)
            .unwrap_or(100)
            .clamp(1, 100) as usize;
        let timeout = p.get("timeout").and_then(value_i64).unwrap_or(0).max(0) as u64;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
        let mut rx = self.inner.updates_tx.subscribe();
        let _in_flight = PollGuard::new(self);
        let generation = {
            let mut st = self.lock();
            st.poll_generation += 1;
            st.poll_generation
        };
        if self.inner.opts.single_consumer {
            // Wake the poll in flight, if any: it is now the older one.
            self.bump_updates();
        }
        {
            let mut st = self.lock();
            if offset > 0 {
                while st.updates.front().is_some_and(|(id, _)| *id < offset) {
                    st.updates.pop_front();
                }
                st.confirmed_offset = st.confirmed_offset.max(offset);
            } else if offset < 0 {
                let keep = offset.unsigned_abs() as usize;
                while st.updates.len() > keep {
                    st.updates.pop_front();
                }
                if let Some((first, _)) = st.updates.front() {
                    let first = *first;
                    st.confirmed_offset = st.confirmed_offset.max(first);
                }
            }
        }
        loop {
            {
                let mut st = self.lock();
                if self.inner.opts.single_consumer && st.poll_generation != generation {
                    st.conflicts += 1;
                    return Err(ApiErr {
                        status: 409,
                        description: "Conflict: terminated by other getUpdates request; make \
                                      sure that only one bot instance is running"
                            .into(),
                        retry_after: None,
                        kind: ErrKind::Injected,
                    });
                }
                let start = st.updates.partition_point(|(id, _)| *id < offset);
                let out: Vec<&str> = if st.hold_updates {
                    Vec::new()
                } else {
                    st.updates
                        .range(start..)
                        .take(limit)
                        .map(|(_, u)| u.as_str())
                        .collect()
                };
                if !out.is_empty()
                    || tokio::time::Instant::now() >= deadline
                    || self.inner.shutting_down.load(Ordering::SeqCst)
                {
                    return Ok(format!("[{}]", out.join(",")));
                }
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { return Ok("[]".into()); },
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }
}

/// Counts a getUpdates request as in flight until it answers (or the client
/// goes away and the handler future is dropped).
struct PollGuard<'a>(&'a BotApiHandle);

impl<'a> PollGuard<'a> {
    fn new(h: &'a BotApiHandle) -> Self {
        {
            let mut st = h.lock();
            st.polls_in_flight += 1;
            st.polls_started += 1;
        }
        h.bump_events();
        PollGuard(h)
    }
}

impl Drop for PollGuard<'_> {
    fn drop(&mut self) {
        self.0.lock().polls_in_flight -= 1;
        self.0.bump_events();
    }
}

// ---------------------------------------------------------------------------
// State internals
// ---------------------------------------------------------------------------

impl St {
    fn register(&mut self, chat: &ChatSpec, user: Option<&UserSpec>) {
        if let Some(u) = user {
            self.users.insert(u.id, u.to_json());
        }
        let json = match chat {
            ChatSpec::Private { id } => {
                let mut m = Map::new();
                m.insert("id".into(), (*id).into());
                m.insert("type".into(), "private".into());
                match user.filter(|u| u.id as i64 == *id) {
                    Some(u) => {
                        m.insert("first_name".into(), u.first_name.clone().into());
                        if let Some(v) = &u.last_name {
                            m.insert("last_name".into(), v.clone().into());
                        }
                        if let Some(v) = &u.username {
                            m.insert("username".into(), v.clone().into());
                        }
                    }
                    None => {
                        if self.chats.contains_key(id) {
                            return;
                        }
                        m.insert("first_name".into(), format!("User{id}").into());
                    }
                }
                Value::Object(m)
            }
            ChatSpec::Group { id, title } => json!({"id": id, "type": "group", "title": title}),
            ChatSpec::Supergroup { id, title } => {
                json!({"id": id, "type": "supergroup", "title": title})
            }
            ChatSpec::Forum { id, title } => {
                json!({"id": id, "type": "supergroup", "title": title, "is_forum": true})
            }
        };
        self.chats.insert(chat.id(), json);
    }

    fn is_forum(&self, id: i64) -> bool {
        self.chats
            .get(&id)
            .and_then(|c| c.get("is_forum"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    fn chat_json(&self, id: i64) -> Value {
        if let Some(c) = self.chats.get(&id) {
            return c.clone();
        }
        if id > 0 {
            let name = self
                .users
                .get(&(id as u64))
                .and_then(|u| u.get("first_name").cloned())
                .unwrap_or_else(|| format!("User{id}").into());
            json!({"id": id, "type": "private", "first_name": name})
        } else if id <= -1_000_000_000_000 {
            json!({"id": id, "type": "supergroup", "title": format!("Supergroup {id}")})
        } else {
            json!({"id": id, "type": "group", "title": format!("Group {id}")})
        }
    }

    fn user_json(&self, id: u64) -> Value {
        self.users.get(&id).cloned().unwrap_or_else(
            || json!({"id": id, "is_bot": false, "first_name": format!("User{id}")}),
        )
    }

    fn alloc_message_id(&mut self, chat_id: i64) -> i32 {
        let c = self.next_msg_id.entry(chat_id).or_insert(0);
        *c += 1;
        *c
    }

    fn new_query_id(&mut self) -> String {
        let n = self.next_query_id;
        self.next_query_id += 1;
        format!("{}", 4_242_000_000_000_000u64 + n)
    }

    fn push_update(&mut self, kind: &str, payload: Value) -> i64 {
        self.push_update_text(kind, &payload.to_string())
    }

    fn push_update_text(&mut self, kind: &str, payload: &str) -> i64 {
        let id = self.next_update_id;
        self.next_update_id += 1;
        let lane = serde_json::from_str::<Value>(payload)
            .ok()
            .and_then(|p| {
                p.pointer("/chat/id")
                    .or_else(|| p.pointer("/message/chat/id"))
                    .or_else(|| p.pointer("/from/id"))
                    .and_then(Value::as_i64)
            })
            .unwrap_or(0);
        self.lanes.insert(id, lane);
        self.queued_at.insert(id, Instant::now());
        let kind = Value::from(kind).to_string();
        self.updates
            .push_back((id, format!(r#"{{"update_id":{id},{kind}:{payload}}}"#)));
        id
    }

    fn render_message(&self, chat_id: i64, mid: i32, with_reply: bool) -> Option<Value> {
        let m = self.messages.get(&(chat_id, mid))?;
        let mut o = Map::new();
        o.insert("message_id".into(), mid.into());
        if let Some(t) = m.thread_id {
            o.insert("message_thread_id".into(), t.into());
            if self.is_forum(chat_id) {
                o.insert("is_topic_message".into(), true.into());
            }
        }
        o.insert("from".into(), self.user_json(m.from));
        if let Some(c) = m.sender_chat {
            o.insert("sender_chat".into(), self.chat_json(c));
        }
        o.insert("chat".into(), self.chat_json(chat_id));
        o.insert("date".into(), m.date.into());
        if let Some(e) = m.edit_date {
            o.insert("edit_date".into(), e.into());
        }
        if with_reply
            && let Some(r) = m.reply_to
            && let Some(rv) = self.render_message(chat_id, r, false)
        {
            o.insert("reply_to_message".into(), rv);
        }
        match &m.photo {
            Some(sizes) => {
                o.insert("photo".into(), sizes.clone());
                if !m.text.is_empty() {
                    o.insert("caption".into(), m.text.clone().into());
                }
            }
            None => {
                o.insert("text".into(), m.text.clone().into());
                if let Some(e) = &m.entities {
                    o.insert("entities".into(), e.clone());
                }
            }
        }
        if let Some(k) = &m.reply_markup {
            o.insert("reply_markup".into(), k.clone());
        }
        Some(Value::Object(o))
    }

    fn resolve_chat(&self, p: &Value) -> Result<i64, ApiErr> {
        let id = match p.get("chat_id") {
            None | Some(Value::Null) => return Err(bad("chat_id is empty")),
            Some(Value::Number(n)) => n.as_i64().ok_or_else(|| bad("chat not found"))?,
            Some(Value::String(s)) => match s.parse::<i64>() {
                Ok(n) => n,
                Err(_) => {
                    let uname = s.trim_start_matches('@');
                    self.chats
                        .iter()
                        .find(|(_, c)| c.get("username").and_then(Value::as_str) == Some(uname))
                        .map(|(id, _)| *id)
                        .ok_or_else(|| bad("chat not found"))?
                }
            },
            Some(_) => return Err(bad("chat_id is empty")),
        };
        if self.forgotten.contains(&id) {
            return Err(injected(400, "Bad Request: chat not found"));
        }
        Ok(id)
    }

    fn check_not_blocked(&self, chat_id: i64) -> Result<(), ApiErr> {
        if self.blocked.contains(&chat_id) {
            let desc = if chat_id > 0 {
                "Forbidden: bot was blocked by the user"
            } else if self.chat_json(chat_id).get("type").and_then(Value::as_str)
                == Some("supergroup")
            {
                "Forbidden: bot was kicked from the supergroup chat"
            } else {
                "Forbidden: bot was kicked from the group chat"
            };
            return Err(injected(403, desc));
        }
        Ok(())
    }

    fn check_rate(&mut self, opts: &Options, chat_id: i64, now: Instant) -> Result<(), ApiErr> {
        let window = Duration::from_secs(1);
        let prune = |q: &mut VecDeque<Instant>| {
            while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
                q.pop_front();
            }
        };
        let violation = || ApiErr {
            status: 429,
            description: "Too Many Requests: retry after 1".into(),
            retry_after: Some(1),
            kind: ErrKind::Violation,
        };
        if let Some(g) = opts.global_per_sec {
            prune(&mut self.rl_global);
            if self.rl_global.len() >= g as usize {
                return Err(violation());
            }
        }
        if let Some(c) = opts.per_chat_per_sec {
            let q = self.rl_chat.entry(chat_id).or_default();
            prune(q);
            if q.len() >= c as usize {
                return Err(violation());
            }
        }
        if opts.global_per_sec.is_some() {
            self.rl_global.push_back(now);
        }
        if opts.per_chat_per_sec.is_some() {
            self.rl_chat.entry(chat_id).or_default().push_back(now);
        }
        Ok(())
    }

    fn me_json(&self, opts: &Options) -> Value {
        json!({
            "id": opts.bot_id,
            "is_bot": true,
            "first_name": opts.bot_first_name,
            "username": opts.bot_username,
            "can_join_groups": true,
            "can_read_all_group_messages": false,
            "supports_inline_queries": true,
            "can_connect_to_business": false,
            "has_main_web_app": false,
        })
    }

    fn member_status(&self, chat_id: i64, user_id: u64) -> MemberStatus {
        self.members
            .get(&chat_id)
            .and_then(|m| m.get(&user_id))
            .copied()
            .unwrap_or(MemberStatus::Member)
    }

    fn dispatch(&mut self, opts: &Options, key: &str, method: &str, p: &Value) -> ApiResult {
        match key {
            "getme" => Ok(self.me_json(opts)),
            "close" | "logout" => Ok(json!(true)),
            "setwebhook" => {
                let url = p.get("url").and_then(Value::as_str).unwrap_or("");
                if url.is_empty() {
                    self.webhook = None;
                    return Ok(json!(true));
                }
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(bad(
                        "bad webhook: An HTTPS URL must be provided for webhook",
                    ));
                }
                if p.get("drop_pending_updates").and_then(Value::as_bool) == Some(true) {
                    self.updates.clear();
                }
                self.webhook = Some(WebhookConfig {
                    url: url.to_string(),
                    secret: p
                        .get("secret_token")
                        .and_then(Value::as_str)
                        .map(String::from),
                    max_connections: p
                        .get("max_connections")
                        .and_then(value_i64)
                        .unwrap_or(40)
                        .clamp(1, 100) as usize,
                    allowed_updates: p.get("allowed_updates").cloned(),
                });
                Ok(json!(true))
            }
            "deletewebhook" => {
                self.webhook = None;
                if p.get("drop_pending_updates").and_then(Value::as_bool) == Some(true) {
                    self.updates.clear();
                }
                Ok(json!(true))
            }
            "getwebhookinfo" => {
                let mut info = json!({
                    "url": self.webhook.as_ref().map_or("", |w| w.url.as_str()),
                    "has_custom_certificate": false,
                    "pending_update_count": self.updates.len(),
                });
                if let Some(w) = &self.webhook {
                    info["max_connections"] = json!(w.max_connections);
                    if let Some(a) = &w.allowed_updates {
                        info["allowed_updates"] = a.clone();
                    }
                }
                if let Some((date, message)) = &self.webhook_last_error {
                    info["last_error_date"] = json!(date);
                    info["last_error_message"] = json!(message);
                }
                Ok(info)
            }
            "setmycommands" => self.set_my_commands(p),
            "deletemycommands" => {
                let k = commands_key(p);
                self.commands.remove(&k);
                Ok(json!(true))
            }
            "getmycommands" => {
                let k = commands_key(p);
                let list: Vec<Value> = self
                    .commands
                    .get(&k)
                    .map(|c| {
                        c.commands
                            .iter()
                            .map(|(c, d)| json!({"command": c, "description": d}))
                            .collect()
                    })
                    .unwrap_or_default();
                Ok(Value::Array(list))
            }
            "setmydescription"
            | "setmyshortdescription"
            | "setmyname"
            | "setchatmenubutton"
            | "setmydefaultadministratorrights" => Ok(json!(true)),
            "getmyname" => Ok(json!({"name": opts.bot_first_name})),
            "getmydescription" => Ok(json!({"description": ""})),
            "getmyshortdescription" => Ok(json!({"short_description": ""})),
            "sendmessage" => self.send_message(opts, p),
            "sendphoto" => self.send_photo(opts, p),
            "editmessagetext" => self.edit_message(opts, method, p, true),
            "editmessagereplymarkup" => self.edit_message(opts, method, p, false),
            "deletemessage" => {
                let chat = self.resolve_chat(p)?;
                let mid = p.get("message_id").and_then(value_i64).unwrap_or(0) as i32;
                if self.messages.remove(&(chat, mid)).is_some() {
                    self.deleted.push((chat, mid));
                    Ok(json!(true))
                } else {
                    Err(bad("message to delete not found"))
                }
            }
            "sendchataction" => {
                let chat = self.resolve_chat(p)?;
                self.check_not_blocked(chat)?;
                let action = p.get("action").and_then(Value::as_str).unwrap_or("");
                if action.is_empty() {
                    return Err(bad("wrong parameter action in request"));
                }
                self.chat_actions.push((chat, action.to_string()));
                Ok(json!(true))
            }
            "answercallbackquery" => self.answer_callback(p),
            "answerinlinequery" => self.answer_inline(p),
            "getchatmember" => {
                let chat = self.resolve_chat(p)?;
                let uid = p
                    .get("user_id")
                    .and_then(value_i64)
                    .ok_or_else(|| bad("user not found"))? as u64;
                let status = self.member_status(chat, uid);
                Ok(member_json(self.user_json(uid), status))
            }
            "getchatadministrators" => {
                let chat = self.resolve_chat(p)?;
                let list: Vec<Value> = self
                    .members
                    .get(&chat)
                    .map(|m| {
                        m.iter()
                            .filter(|(_, s)| {
                                matches!(s, MemberStatus::Creator | MemberStatus::Administrator)
                            })
                            .map(|(u, s)| member_json(self.user_json(*u), *s))
                            .collect()
                    })
                    .unwrap_or_default();
                Ok(Value::Array(list))
            }
            "getchat" => {
                let chat = self.resolve_chat(p)?;
                let mut c = self.chat_json(chat);
                c["accepted_gift_types"] = json!({
                    "unlimited_gifts": false,
                    "limited_gifts": false,
                    "unique_gifts": false,
                    "premium_subscription": false,
                });
                c["max_reaction_count"] = json!(11);
                Ok(c)
            }
            "leavechat" => {
                self.resolve_chat(p)?;
                Ok(json!(true))
            }
            _ => Err(ApiErr {
                status: 404,
                description: "Not Found: method not found".into(),
                retry_after: None,
                kind: ErrKind::Rejection,
            }),
        }
    }

    fn set_my_commands(&mut self, p: &Value) -> ApiResult {
        let list = p
            .get("commands")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("parameter \"commands\" is required"))?;
        if list.len() > 100 {
            return Err(bad("BOT_COMMANDS_TOO_MUCH"));
        }
        let mut cmds = Vec::with_capacity(list.len());
        for c in list {
            let command = c.get("command").and_then(Value::as_str).unwrap_or("");
            let description = c.get("description").and_then(Value::as_str).unwrap_or("");
            let valid = !command.is_empty()
                && command.len() <= 32
                && command
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !valid {
                return Err(bad("BOT_COMMAND_INVALID"));
            }
            let dlen = description.chars().count();
            if dlen == 0 || dlen > 256 {
                return Err(bad("BOT_COMMAND_DESCRIPTION_INVALID"));
            }
            cmds.push((command.to_string(), description.to_string()));
        }
        let key = commands_key(p);
        let scope = p
            .get("scope")
            .cloned()
            .unwrap_or_else(|| json!({"type": "default"}));
        self.commands.insert(
            key.clone(),
            CommandSet {
                scope,
                language_code: key.1,
                commands: cmds,
            },
        );
        Ok(json!(true))
    }

    fn send_message(&mut self, opts: &Options, p: &Value) -> ApiResult {
        let chat = self.resolve_chat(p)?;
        self.check_not_blocked(chat)?;
        let raw = p.get("text").and_then(Value::as_str).unwrap_or("");
        let parse_mode = p.get("parse_mode").and_then(Value::as_str);
        let (text, entities) = prepare_text(raw, parse_mode, false)?;
        let markup = param_object(p, "reply_markup");
        check_markup(markup.as_ref())?;
        // reply_parameters (Bot API 7+) or legacy reply_to_message_id
        let (reply_mid, allow_missing) = match param_object(p, "reply_parameters") {
            Some(rp) => (
                rp.get("message_id").and_then(value_i64),
                rp.get("allow_sending_without_reply")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            ),
            None => (
                p.get("reply_to_message_id").and_then(value_i64),
                p.get("allow_sending_without_reply")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            ),
        };
        let reply_to = match reply_mid {
            Some(r) if self.messages.contains_key(&(chat, r as i32)) => Some(r as i32),
            Some(_) if !allow_missing => return Err(bad("message to be replied not found")),
            _ => None,
        };
        // Like Telegram: the topic named, else the topic of the message
        // replied to, else General (no thread).
        let asked_thread = p.get("message_thread_id").and_then(value_i64);
        if asked_thread.is_some() && !self.is_forum(chat) {
            return Err(bad("message thread not found"));
        }
        let thread_id = asked_thread.or_else(|| {
            reply_to
                .and_then(|r| self.messages.get(&(chat, r)))
                .and_then(|m| m.thread_id)
        });
        let now = Instant::now();
        self.check_rate(opts, chat, now)?;

        let mid = self.alloc_message_id(chat);
        self.messages.insert(
            (chat, mid),
            StoredMsg {
                photo: None,
                from: opts.bot_id,
                date: unix_now(),
                text,
                entities,
                reply_markup: echo_markup(markup.as_ref()),
                reply_to,
                edit_date: None,
                thread_id,
                sender_chat: None,
            },
        );
        let seq = self.total_sent;
        self.total_sent += 1;
        self.sent.entry(chat).or_default().push(SentMessage {
            chat_id: chat,
            message_id: mid,
            text: raw.to_string(),
            parse_mode: parse_mode.map(str::to_string),
            reply_markup: markup,
            reply_to_message_id: reply_to,
            thread_id,
            seq,
            at: now,
        });
        Ok(self.render_message(chat, mid, true).expect("stored"))
    }

    fn send_photo(&mut self, opts: &Options, p: &Value) -> ApiResult {
        let chat = self.resolve_chat(p)?;
        self.check_not_blocked(chat)?;
        let caption = p.get("caption").and_then(Value::as_str);
        if caption.is_some_and(|c| c.chars().count() > 1024) {
            return Err(bad("message caption is too long"));
        }
        let markup = param_object(p, "reply_markup");
        check_markup(markup.as_ref())?;
        let (upload, sent_file_id, (width, height, size)) = match p.get("photo") {
            Some(Value::String(id)) => match self.files.get(id) {
                Some(f) => (None, Some(id.clone()), *f),
                None => return Err(bad("wrong file identifier/HTTP URL specified")),
            },
            Some(f @ Value::Object(o)) if o.contains_key("filename") => {
                let Some(png) = o.get("png") else {
                    return Err(bad("IMAGE_PROCESS_FAILED"));
                };
                let dim = |k: &str| png.get(k).and_then(Value::as_u64).unwrap_or(0);
                let size = o.get("size").and_then(Value::as_u64).unwrap_or(0);
                if size == 0 || size > 10 * 1024 * 1024 {
                    return Err(bad("PHOTO_INVALID_DIMENSIONS"));
                }
                (Some(f.clone()), None, (dim("width"), dim("height"), size))
            }
            _ => return Err(bad("there is no photo in the request")),
        };
        let now = Instant::now();
        self.check_rate(opts, chat, now)?;
        let file_id = match &sent_file_id {
            Some(id) => id.clone(),
            None => {
                self.uploads += 1;
                let id = format!("AgACAgIAAxkBAAI{:06}", self.uploads);
                self.files.insert(id.clone(), (width, height, size));
                id
            }
        };
        // Like Telegram: a thumbnail and the full size, smallest first.
        let sizes = json!([
            {"file_id": format!("{file_id}-s"), "file_unique_id": format!("{file_id}-us"),
             "width": 90, "height": height * 90 / width.max(1), "file_size": 1000},
            {"file_id": file_id, "file_unique_id": format!("{file_id}-u"),
             "width": width, "height": height, "file_size": size},
        ]);
        let mid = self.alloc_message_id(chat);
        self.messages.insert(
            (chat, mid),
            StoredMsg {
                photo: Some(sizes),
                from: opts.bot_id,
                date: unix_now(),
                text: caption.unwrap_or("").to_string(),
                entities: None,
                reply_markup: echo_markup(markup.as_ref()),
                reply_to: None,
                edit_date: None,
                thread_id: p.get("message_thread_id").and_then(value_i64),
                sender_chat: None,
            },
        );
        self.photos.entry(chat).or_default().push(SentPhoto {
            chat_id: chat,
            message_id: mid,
            upload,
            sent_file_id,
            file_id,
            caption: caption.map(str::to_string),
            reply_markup: markup,
            at: now,
        });
        Ok(self.render_message(chat, mid, true).expect("stored"))
    }

    fn edit_message(
        &mut self,
        opts: &Options,
        method: &str,
        p: &Value,
        is_text: bool,
    ) -> ApiResult {
        let raw = p.get("text").and_then(Value::as_str);
        let parse_mode = p.get("parse_mode").and_then(Value::as_str);
        let markup = param_object(p, "reply_markup");
        check_markup(markup.as_ref())?;
        let prepared = if is_text {
            Some(prepare_text(raw.unwrap_or(""), parse_mode, true)?)
        } else {
            None
        };
        let mut edit = Edit {
            method: method.to_string(),
            chat_id: None,
            message_id: None,
            inline_message_id: None,
            text: if is_text {
                raw.map(str::to_string)
            } else {
                None
            },
            parse_mode: parse_mode.map(str::to_string),
            reply_markup: markup.clone(),
            at: Instant::now(),
        };
        if let Some(imid) = p.get("inline_message_id").and_then(Value::as_str) {
            edit.inline_message_id = Some(imid.to_string());
            self.inline_edits.push(edit);
            return Ok(json!(true));
        }
        let chat = self.resolve_chat(p)?;
        self.check_not_blocked(chat)?;
        let mid = p
            .get("message_id")
            .and_then(value_i64)
            .ok_or_else(|| bad("message identifier is not specified"))? as i32;
        let new_markup = echo_markup(markup.as_ref());
        let Some(m) = self.messages.get_mut(&(chat, mid)) else {
            return Err(bad("message to edit not found"));
        };
        if m.from != opts.bot_id {
            return Err(bad("message can't be edited"));
        }
        match prepared {
            Some((text, entities)) => {
                if m.text == text && m.entities == entities && m.reply_markup == new_markup {
                    return Err(bad(NOT_MODIFIED));
                }
                m.text = text;
                m.entities = entities;
            }
            None => {
                if m.reply_markup == new_markup {
                    return Err(bad(NOT_MODIFIED));
                }
            }
        }
        m.reply_markup = new_markup;
        m.edit_date = Some(unix_now());
        edit.chat_id = Some(chat);
        edit.message_id = Some(mid);
        self.edits.entry(chat).or_default().push(edit);
        Ok(self.render_message(chat, mid, true).expect("stored"))
    }

    fn answer_callback(&mut self, p: &Value) -> ApiResult {
        let id = p
            .get("callback_query_id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if !self.open_callback_ids.remove(&id) {
            return Err(bad(QUERY_INVALID));
        }
        let text = p.get("text").and_then(Value::as_str).map(str::to_string);
        if text.as_ref().is_some_and(|t| t.chars().count() > 200) {
            return Err(bad("MESSAGE_TOO_LONG"));
        }
        self.callback_answers.push(CallbackAnswer {
            callback_query_id: id,
            text,
            show_alert: p
                .get("show_alert")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            url: p.get("url").and_then(Value::as_str).map(str::to_string),
            cache_time: p.get("cache_time").and_then(value_i64),
            at: Instant::now(),
        });
        Ok(json!(true))
    }

    fn answer_inline(&mut self, p: &Value) -> ApiResult {
        let id = p
            .get("inline_query_id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let results = match p.get("results") {
            Some(Value::Array(a)) => a.clone(),
            Some(Value::String(s)) => serde_json::from_str::<Vec<Value>>(s)
                .map_err(|_| bad("can't parse inline query results JSON object"))?,
            _ => return Err(bad("parameter \"results\" is required")),
        };
        if results.len() > 50 {
            return Err(bad("RESULTS_TOO_MUCH"));
        }
        let mut ids = HashSet::new();
        for r in &results {
            let rid = r.get("id").and_then(Value::as_str).unwrap_or("");
            if rid.is_empty() || rid.len() > 64 {
                return Err(bad("RESULT_ID_INVALID"));
            }
            if !ids.insert(rid.to_string()) {
                return Err(bad("RESULT_ID_DUPLICATE"));
            }
            if let Some(imc) = r.get("input_message_content")
                && let Some(t) = imc.get("message_text")
            {
                let t = t.as_str().unwrap_or("");
                let pm = imc.get("parse_mode").and_then(Value::as_str);
                prepare_text(t, pm, false).map_err(|e| {
                    if e.description.ends_with("message text is empty") {
                        bad("MESSAGE_EMPTY")
                    } else if e.description.ends_with("message is too long") {
                        bad("MESSAGE_TOO_LONG")
                    } else {
                        e
                    }
                })?;
            }
            check_markup(r.get("reply_markup"))?;
        }
        if !self.open_inline_ids.remove(&id) {
            return Err(bad(QUERY_INVALID));
        }
        self.inline_answers.push(InlineAnswer {
            inline_query_id: id,
            results,
            cache_time: p.get("cache_time").and_then(value_i64),
            is_personal: p
                .get("is_personal")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            next_offset: p
                .get("next_offset")
                .and_then(Value::as_str)
                .map(str::to_string),
            button: param_object(p, "button"),
            at: Instant::now(),
        });
        Ok(json!(true))
    }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn chat_instance(chat_id: i64) -> String {
    (chat_id.wrapping_mul(6_364_136_223_846_793_005) ^ 0x5bd1_e995).to_string()
}

/// `SendMessage` → `sendMessage`.
fn canonical_method(raw: &str) -> String {
    let mut c = raw.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

fn value_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// An object parameter, tolerating a JSON string (multipart style).
fn param_object(p: &Value, key: &str) -> Option<Value> {
    match p.get(key)? {
        Value::Null => None,
        Value::String(s) => serde_json::from_str(s).ok(),
        v => Some(v.clone()),
    }
}

fn scope_key(scope: &Value) -> String {
    let t = scope
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let mut k = t.to_string();
    if let Some(c) = scope.get("chat_id") {
        k.push_str(&format!(
            ":{}",
            value_i64(c)
                .map(|i| i.to_string())
                .unwrap_or_else(|| c.to_string())
        ));
    }
    if let Some(u) = scope.get("user_id") {
        k.push_str(&format!(":{}", value_i64(u).unwrap_or(0)));
    }
    k
}

fn commands_key(p: &Value) -> (String, String) {
    let scope = param_object(p, "scope").unwrap_or_else(|| json!({"type": "default"}));
    let lang = p
        .get("language_code")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    (scope_key(&scope), lang)
}

fn member_json(user: Value, status: MemberStatus) -> Value {
    match status {
        MemberStatus::Creator => json!({"user": user, "status": "creator", "is_anonymous": false}),
        MemberStatus::Administrator => json!({
            "user": user,
            "status": "administrator",
            "can_be_edited": false,
            "is_anonymous": false,
            "can_manage_chat": true,
            "can_delete_messages": true,
            "can_manage_video_chats": true,
            "can_restrict_members": true,
            "can_promote_members": false,
            "can_change_info": true,
            "can_invite_users": true,
            "can_post_stories": false,
            "can_edit_stories": false,
            "can_delete_stories": false,
            "can_pin_messages": true,
        }),
        MemberStatus::Member => json!({"user": user, "status": "member"}),
        MemberStatus::Left => json!({"user": user, "status": "left"}),
        MemberStatus::Kicked => json!({"user": user, "status": "kicked", "until_date": 0}),
    }
}

fn visible(text: &str, parse_mode: Option<&str>) -> String {
    match parse_mode {
        Some(pm) if pm.eq_ignore_ascii_case("html") => html::parse_telegram_html(text)
            .map(|p| p.text)
            .unwrap_or_else(|_| text.to_string()),
        _ => text.to_string(),
    }
}

fn buttons_of(markup: Option<&Value>) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    if let Some(rows) = markup
        .and_then(|m| m.get("inline_keyboard"))
        .and_then(Value::as_array)
    {
        for row in rows {
            for b in row.as_array().into_iter().flatten() {
                out.push((
                    b.get("text")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    b.get("callback_data")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                ));
            }
        }
    }
    out
}

/// Telegram's text checks. Returns the stored (visible, trimmed) text and
/// its entities JSON.
fn prepare_text(
    raw: &str,
    parse_mode: Option<&str>,
    edit: bool,
) -> Result<(String, Option<Value>), ApiErr> {
    let (visible, entities) = match parse_mode {
        None | Some("") => (raw.to_string(), Vec::new()),
        Some(pm) if pm.eq_ignore_ascii_case("html") => {
            let parsed = html::parse_telegram_html(raw)
                .map_err(|e| bad(format!("can't parse entities: {e}")))?;
            (parsed.text, parsed.entities)
        }
        Some(pm)
            if pm.eq_ignore_ascii_case("markdownv2") || pm.eq_ignore_ascii_case("markdown") =>
        {
            (raw.to_string(), Vec::new())
        }
        Some(_) => return Err(bad("unsupported parse_mode")),
    };
    let trimmed_start = visible.trim_start();
    let lead = html::utf16_len(&visible[..visible.len() - trimmed_start.len()]);
    let trimmed = trimmed_start.trim_end();
    if trimmed.is_empty() {
        return Err(bad("message text is empty"));
    }
    let len = html::utf16_len(trimmed);
    if len > MAX_MESSAGE_UTF16 {
        return Err(bad(if edit {
            "MESSAGE_TOO_LONG"
        } else {
            "message is too long"
        }));
    }
    let mut ents = Vec::with_capacity(entities.len());
    for mut e in entities {
        let start = e.offset.max(lead) - lead;
        let end = (e.offset + e.length).min(lead + len).saturating_sub(lead);
        if end > start {
            e.offset = start;
            e.length = end - start;
            ents.push(e.to_json());
        }
    }
    let ents = (!ents.is_empty()).then_some(Value::Array(ents));
    Ok((trimmed.to_string(), ents))
}

fn check_markup(markup: Option<&Value>) -> Result<(), ApiErr> {
    let Some(m) = markup else { return Ok(()) };
    let Some(kb) = m.get("inline_keyboard") else {
        return Ok(());
    };
    let rows = kb.as_array().ok_or_else(|| {
        bad("can't parse inline keyboard button: field \"inline_keyboard\" must be of type Array")
    })?;
    for row in rows {
        let buttons = row.as_array().ok_or_else(|| {
            bad("can't parse inline keyboard button: InlineKeyboardButton must be an Array")
        })?;
        for b in buttons {
            // Like Telegram: exactly one action per button.
            let actions = BUTTON_ACTIONS
                .iter()
                .filter(|k| b.get(**k).is_some())
                .count();
            if actions != 1 {
                return Err(bad("BUTTON_TYPE_INVALID"));
            }
            if let Some(c) = b.get("switch_inline_query_chosen_chat") {
                let query = c.get("query").and_then(Value::as_str).unwrap_or("");
                let allowed = [
                    "allow_user_chats",
                    "allow_bot_chats",
                    "allow_group_chats",
                    "allow_channel_chats",
                ]
                .iter()
                .any(|k| c.get(*k).and_then(Value::as_bool).unwrap_or(false));
                if !allowed || query.chars().count() > 256 {
                    return Err(bad("BUTTON_TYPE_INVALID"));
                }
            }
            if let Some(d) = b.get("callback_data") {
                let d = d.as_str().unwrap_or("");
                if d.is_empty() || d.len() > MAX_CALLBACK_DATA_BYTES {
                    return Err(bad("BUTTON_DATA_INVALID"));
                }
            }
            if b.get("text")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Err(bad("BUTTON_TEXT_INVALID"));
            }
            if let Some(u) = b.get("url") {
                let u = u.as_str().unwrap_or("");
                if u.is_empty() || u.chars().any(char::is_whitespace) {
                    return Err(bad("BUTTON_URL_INVALID"));
                }
            }
        }
    }
    Ok(())
}

/// The fields that say what an inline keyboard button does.
const BUTTON_ACTIONS: &[&str] = &[
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
];

/// Only inline keyboards are echoed in `Message.reply_markup`.
fn echo_markup(markup: Option<&Value>) -> Option<Value> {
    let m = markup?;
    let rows = m.get("inline_keyboard")?.as_array()?;
    if rows
        .iter()
        .all(|r| r.as_array().is_none_or(|r| r.is_empty()))
    {
        return None;
    }
    Some(json!({ "inline_keyboard": rows }))
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `bot_command` and `mention` entities the way Telegram detects them in
/// incoming messages (offsets/lengths in UTF-16 units).
pub fn detect_entities(text: &str) -> Vec<Value> {
    let chars: Vec<char> = text.chars().collect();
    let mut u16_at = Vec::with_capacity(chars.len() + 1);
    let mut acc = 0usize;
    for c in &chars {
        u16_at.push(acc);
        acc += c.len_utf16();
    }
    u16_at.push(acc);
    let mut out = Vec::new();
    let mut i = 0;
    let ascii_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    while i < chars.len() {
        let c = chars[i];
        let prev = if i == 0 { None } else { Some(chars[i - 1]) };
        if c == '/' && prev.is_none_or(|p| !is_word(p) && p != '/' && p != '<' && p != '>') {
            let mut j = i + 1;
            while j < chars.len() && ascii_word(chars[j]) && j - i <= 64 {
                j += 1;
            }
            if j > i + 1 && j - i - 1 <= 64 {
                // optional @botname
                if j < chars.len() && chars[j] == '@' {
                    let mut k = j + 1;
                    while k < chars.len() && ascii_word(chars[k]) {
                        k += 1;
                    }
                    if (3..=32).contains(&(k - j - 1)) {
                        j = k;
                    }
                }
                let next_ok = j >= chars.len() || !(is_word(chars[j]) || chars[j] == '/');
                if next_ok {
                    out.push(json!({"type": "bot_command", "offset": u16_at[i], "length": u16_at[j] - u16_at[i]}));
                    i = j;
                    continue;
                }
            }
        } else if c == '@' && prev.is_none_or(|p| !is_word(p) && p != '@') {
            let mut j = i + 1;
            while j < chars.len() && ascii_word(chars[j]) {
                j += 1;
            }
            let n = j - i - 1;
            let next_ok = j >= chars.len() || !is_word(chars[j]);
            if (5..=32).contains(&n) && next_ok {
                out.push(json!({"type": "mention", "offset": u16_at[i], "length": u16_at[j] - u16_at[i]}));
                i = j;
                continue;
            }
        }
        i += 1;
    }
    out
}

// ----- HTTP plumbing -------------------------------------------------------

async fn http_entry(
    State(h): State<BotApiHandle>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let arrived = Instant::now();
    let path = percent_decode(uri.path());
    let mut segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let method = segs.pop();
    let token_seg = segs.pop();
    let (Some(method), Some(token)) = (method, token_seg.and_then(|t| t.strip_prefix("bot")))
    else {
        return json_response(
            404,
            &json!({"ok": false, "error_code": 404, "description": "Not Found"}),
        );
    };
    let params = parse_params(&headers, uri.query(), &body);
    h.handle_call(token, method, params, arrived).await
}

fn json_response(status: u16, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).expect("serialize");
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, "application/json")],
        bytes,
    )
        .into_response()
}

/// Keys whose form/multipart string values are converted to numbers/bools.
const SCALAR_KEYS: &[&str] = &[
    "chat_id",
    "message_id",
    "user_id",
    "from_chat_id",
    "offset",
    "limit",
    "timeout",
    "cache_time",
    "message_thread_id",
    "reply_to_message_id",
    "until_date",
    "disable_notification",
    "protect_content",
    "allow_sending_without_reply",
    "show_alert",
    "is_personal",
    "disable_web_page_preview",
    "drop_pending_updates",
    "revoke_messages",
    "only_if_banned",
    "max_connections",
    "allow_paid_broadcast",
    "for_channels",
];

/// Keys that are always free text (never JSON-decoded).
const TEXT_KEYS: &[&str] = &[
    "text",
    "caption",
    "query",
    "data",
    "description",
    "short_description",
    "name",
    "title",
    "message_text",
    "next_offset",
    "url",
    "callback_query_id",
    "inline_query_id",
    "inline_message_id",
    "language_code",
    "parse_mode",
    "action",
];

fn normalize(key: &str, s: String) -> Value {
    if !TEXT_KEYS.contains(&key) {
        let t = s.trim_start();
        if (t.starts_with('{') || t.starts_with('['))
            && let Ok(v) = serde_json::from_str::<Value>(&s)
        {
            return v;
        }
        if SCALAR_KEYS.contains(&key) {
            if let Ok(i) = s.trim().parse::<i64>() {
                return i.into();
            }
            match s.trim() {
                "true" => return Value::Bool(true),
                "false" => return Value::Bool(false),
                _ => {}
            }
        }
    }
    Value::String(s)
}

fn parse_params(headers: &HeaderMap, query: Option<&str>, body: &[u8]) -> Value {
    let mut map = Map::new();
    if let Some(q) = query {
        for (k, v) in parse_urlencoded(q) {
            let v = normalize(&k, v);
            map.insert(k, v);
        }
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime == "multipart/form-data" {
        let boundary = ct
            .split(';')
            .filter_map(|p| {
                let p = p.trim();
                let (k, v) = p.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("boundary")
                    .then(|| v.trim().trim_matches('"').to_string())
            })
            .next();
        if let Some(b) = boundary {
            let parts = parse_multipart(body, &b);
            // teloxide uploads files as `field = "attach://<id>"` plus a part
            // named `<id>`: put the file description in place of the reference.
            let mut files: HashMap<String, Value> = parts
                .iter()
                .filter(|(_, v)| v.get("filename").is_some() && v.get("size").is_some())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let mut used = HashSet::new();
            for (k, mut v) in parts {
                if files.contains_key(&k) {
                    continue;
                }
                resolve_attachments(&mut v, &files, &mut used);
                map.insert(k, v);
            }
            files.retain(|k, _| !used.contains(k));
            for (k, v) in files {
                map.insert(k, v);
            }
        }
    } else if mime == "application/x-www-form-urlencoded" {
        for (k, v) in parse_urlencoded(&String::from_utf8_lossy(body)) {
            let v = normalize(&k, v);
            map.insert(k, v);
        }
    } else if !body.iter().all(u8::is_ascii_whitespace) {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(o)) => map.extend(o),
            Ok(other) => {
                map.insert("_body".into(), other);
            }
            Err(_) => {
                map.insert(
                    "_body".into(),
                    String::from_utf8_lossy(body).into_owned().into(),
                );
            }
        }
    }
    Value::Object(map)
}

fn resolve_attachments(v: &mut Value, files: &HashMap<String, Value>, used: &mut HashSet<String>) {
    match v {
        Value::String(s) => {
            if let Some(id) = s.strip_prefix("attach://")
                && let Some(f) = files.get(id)
            {
                let mut f = f.clone();
                f["attach"] = id.into();
                used.insert(id.to_string());
                *v = f;
            }
        }
        Value::Array(a) => a
            .iter_mut()
            .for_each(|x| resolve_attachments(x, files, used)),
        Value::Object(o) => o
            .values_mut()
            .for_each(|x| resolve_attachments(x, files, used)),
        _ => {}
    }
}

fn find_sub(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() || from > hay.len() - needle.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn header_param(line: &str, name: &str) -> Option<String> {
    let lower = line.to_ascii_lowercase();
    let pat = format!("{name}=\"");
    let mut search = 0;
    while let Some(pos) = lower[search..].find(&pat) {
        let at = search + pos;
        // make sure it is a whole parameter name (not e.g. "filename" for "name")
        let before = lower[..at].chars().last();
        if before.is_none_or(|c| c == ';' || c.is_whitespace()) {
            let start = at + pat.len();
            let end = line[start..].find('"')? + start;
            return Some(line[start..end].to_string());
        }
        search = at + pat.len();
    }
    None
}

fn parse_multipart(body: &[u8], boundary: &str) -> Vec<(String, Value)> {
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    let mut out = Vec::new();
    let Some(mut pos) = find_sub(body, delim, 0) else {
        return out;
    };
    loop {
        let part_start = pos + delim.len();
        if body[part_start..].starts_with(b"--") {
            break;
        }
        let Some(next) = find_sub(body, delim, part_start) else {
            break;
        };
        let mut part = &body[part_start..next];
        if part.starts_with(b"\r\n") {
            part = &part[2..];
        }
        if part.ends_with(b"\r\n") {
            part = &part[..part.len() - 2];
        }
        if let Some(hend) = find_sub(part, b"\r\n\r\n", 0) {
            let head = String::from_utf8_lossy(&part[..hend]).into_owned();
            let content = &part[hend + 4..];
            let disp = head
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("content-disposition"))
                .unwrap_or("");
            if let Some(name) = header_param(disp, "name") {
                let value = match header_param(disp, "filename") {
                    Some(f) => {
                        let mut file = json!({"filename": f, "size": content.len()});
                        if let Some((width, height)) = png_size(content) {
                            file["png"] = json!({"width": width, "height": height});
                        }
                        file
                    }
                    None => normalize(&name, String::from_utf8_lossy(content).into_owned()),
                };
                out.push((name, value));
            }
        }
        pos = next;
    }
    out
}

/// Width and height of a PNG (from its IHDR chunk), if it is one.
fn png_size(b: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if b.len() < 24 || !b.starts_with(SIGNATURE) || &b[12..16] != b"IHDR" {
        return None;
    }
    let be = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    Some((be(16), be(20)))
}

fn parse_urlencoded(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            )
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Webhook delivery
// ---------------------------------------------------------------------------

/// While a webhook is set, post queued updates to it like Telegram: one
/// chat's updates one after another (the next only after the previous was
/// answered 2xx), up to `max_connections` at once, each again after a
/// non-2xx answer or a failed connection (with a growing pause).
async fn deliver_webhooks(h: BotApiHandle) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("webhook client");
    let mut rx = h.inner.updates_tx.subscribe();
    loop {
        let starts: Vec<(i64, i64, String, WebhookConfig)> = {
            let mut st = h.lock();
            match st.webhook.clone() {
                None => Vec::new(),
                Some(w) => {
                    let mut seen: HashSet<i64> = HashSet::new();
                    let mut out = Vec::new();
                    let mut busy = st.lanes_busy.len();
                    for (id, text) in &st.updates {
                        let lane = st.lanes.get(id).copied().unwrap_or(0);
                        // Only the first update of a lane may go.
                        if !seen.insert(lane) || st.lanes_busy.contains(&lane) {
                            continue;
                        }
                        if busy >= w.max_connections {
                            break;
                        }
                        busy += 1;
                        out.push((*id, lane, text.clone(), w.clone()));
                    }
                    for (_, lane, _, _) in &out {
                        st.lanes_busy.insert(*lane);
                    }
                    out
                }
            }
        };
        for (id, lane, text, w) in starts {
            let h = h.clone();
            let client = client.clone();
            tokio::spawn(async move {
                let times = if h.inner.opts.webhook_twice { 2 } else { 1 };
                let mut delivered = 0;
                let mut failures = 0u32;
                while delivered < times {
                    let mut req = client
                        .post(&w.url)
                        .header(header::CONTENT_TYPE, "application/json")
                        .body(text.clone());
                    if let Some(secret) = &w.secret {
                        req = req.header("X-Telegram-Bot-Api-Secret-Token", secret);
                    }
                    let status = match req.send().await {
                        Ok(r) => r.status().as_u16(),
                        Err(_) => 0,
                    };
                    {
                        let mut st = h.lock();
                        st.webhook_posts.push(WebhookPost {
                            update_id: id,
                            status,
                            at: Instant::now(),
                        });
                        if !(200..300).contains(&status) {
                            let now = SystemTime::now()
                                .duration_since(UNIX_EPOCH)
                                .map(|d| d.as_secs() as i64)
                                .unwrap_or(0);
                            let message = if status == 0 {
                                "Connection refused".to_string()
                            } else {
                                format!("Wrong response from the webhook: {status}")
                            };
                            st.webhook_last_error = Some((now, message));
                        }
                    }
                    h.bump_events();
                    if (200..300).contains(&status) {
                        delivered += 1;
                        continue;
                    }
                    failures += 1;
                    if h.inner.shutting_down.load(Ordering::SeqCst) || h.lock().webhook.is_none() {
                        break;
                    }
                    let pause = Duration::from_millis(100 << failures.min(4));
                    tokio::time::sleep(pause).await;
                }
                let mut st = h.lock();
                if delivered == times {
                    st.updates.retain(|(u, _)| *u != id);
                }
                st.lanes_busy.remove(&lane);
                drop(st);
                h.bump_updates();
                h.bump_events();
            });
        }
        tokio::select! {
            r = rx.changed() => if r.is_err() { return; },
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
        if h.inner.shutting_down.load(Ordering::SeqCst) {
            return;
        }
    }
}

/// A load balancer in front of several webhook instances: each request to
/// the next backend in turn; a backend that refuses the connection is
/// skipped (the request never reached it), any other failure is a 502 (as
/// nginx does for a POST).
pub struct LoadBalancer {
    addr: SocketAddr,
    state: Arc<LbState>,
    task: JoinHandle<()>,
}

struct LbState {
    backends: Mutex<Vec<SocketAddr>>,
    next: std::sync::atomic::AtomicUsize,
    client: reqwest::Client,
    /// Which backend answered each request (by index), with its status.
    routed: Mutex<Vec<(usize, u16)>>,
}

impl LoadBalancer {
    pub async fn start(backends: Vec<SocketAddr>) -> LoadBalancer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        let state = Arc::new(LbState {
            backends: Mutex::new(backends),
            next: std::sync::atomic::AtomicUsize::new(0),
            client: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("lb client"),
            routed: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .fallback(lb_entry)
            .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
            .with_state(Arc::clone(&state));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        LoadBalancer { addr, state, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The backends, in turn order.
    pub fn set_backends(&self, backends: Vec<SocketAddr>) {
        *self
            .state
            .backends
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = backends;
    }

    /// (backend index, status) of every request, in order; status 0: the
    /// backend took the request and never answered.
    pub fn routed(&self) -> Vec<(usize, u16)> {
        self.state
            .routed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for LoadBalancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn lb_entry(
    State(lb): State<Arc<LbState>>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let backends = lb
        .backends
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let n = backends.len().max(1);
    let first = lb.next.fetch_add(1, Ordering::SeqCst);
    for i in 0..backends.len() {
        let index = (first + i) % n;
        let url = format!("http://{}{}", backends[index], uri);
        let mut req = lb.client.post(url).body(body.clone());
        for (k, v) in &headers {
            if k != header::HOST && k != header::CONTENT_LENGTH {
                req = req.header(k, v);
            }
        }
        match req.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                let bytes = r.bytes().await.unwrap_or_default();
                lb.routed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((index, status));
                return (
                    StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
                    bytes,
                )
                    .into_response();
            }
            Err(e) if e.is_connect() => continue,
            Err(_) => {
                // Sent, and no answer: the backend died with it.
                lb.routed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((index, 0));
                break;
            }
        }
    }
    StatusCode::BAD_GATEWAY.into_response()
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn entities_detection() {
        let e = detect_entities("/start");
        assert_eq!(e, vec![json!({"type":"bot_command","offset":0,"length":6})]);
        let e = detect_entities("/report@reportbot_test_bot 报告 @alice_x hi");
        assert_eq!(e[0], json!({"type":"bot_command","offset":0,"length":26}));
        assert_eq!(e[1], json!({"type":"mention","offset":30,"length":8}));
        // UTF-16: the emoji takes two units.
        let e = detect_entities("😀 @someone");
        assert_eq!(e, vec![json!({"type":"mention","offset":3,"length":8})]);
        assert!(detect_entities("a/b mail@example.com").is_empty());
        assert!(detect_entities("@abc").is_empty());
    }

    #[test]
    fn multipart_parsing() {
        let body = b"--XX\r\nContent-Disposition: form-data; name=\"chat_id\"\r\n\r\n-100\r\n--XX\r\nContent-Disposition: form-data; name=\"reply_markup\"\r\n\r\n{\"inline_keyboard\":[]}\r\n--XX\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\n[1,2]\r\n--XX\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XX--\r\n";
        let parts: HashMap<_, _> = parse_multipart(body, "XX").into_iter().collect();
        assert_eq!(parts["chat_id"], json!(-100));
        assert_eq!(parts["reply_markup"], json!({"inline_keyboard": []}));
        assert_eq!(parts["text"], json!("[1,2]"));
        assert_eq!(parts["doc"], json!({"filename": "a.txt", "size": 5}));
    }

    #[test]
    fn text_preparation() {
        assert!(prepare_text("  \n ", None, false).is_err());
        let (t, e) = prepare_text("  <b>x</b> ", Some("HTML"), false).unwrap();
        assert_eq!(t, "x");
        assert_eq!(e, Some(json!([{"type":"bold","offset":0,"length":1}])));
        assert!(prepare_text(&"a".repeat(4096), None, false).is_ok());
        let err = prepare_text(&"a".repeat(4097), None, false).unwrap_err();
        assert_eq!(err.description, "Bad Request: message is too long");
        // 2048 emoji = 4096 UTF-16 units: fine; one more is too long.
        assert!(prepare_text(&"😀".repeat(2048), None, false).is_ok());
        assert!(prepare_text(&"😀".repeat(2049), None, false).is_err());
    }

    #[test]
    fn method_names() {
        assert_eq!(canonical_method("SendMessage"), "sendMessage");
        assert_eq!(canonical_method("getUpdates"), "getUpdates");
    }
}
