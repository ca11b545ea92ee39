//! The Telegram transport: how updates come in, what the bot does with
//! them, how replies go out.
//!
//! - `polling`: our own getUpdates loop; [`updates`] reads each update on
//!   its own, so one unreadable update cannot block the rest. With several
//!   instances on one PostgreSQL database, only the elected one polls
//!   ([`crate::store::PollerElection`]); every instance delivers
//!   announcements.
//! - [`intake`]: admission on arrival — flood counting per sender, bounded
//!   queues per chat and in all — then teloxide's dispatcher, one queue per
//!   chat, and the dptree table below.
//! - `handlers`, `subscriptions`: what the bot does; `sharing`: passing
//!   tips on (the large-print picture, inline mode's `tips <topic>`);
//!   [`keyboards`]: buttons and their data.
//! - [`send`], [`pacing`]: replies split, paced to Telegram's limits and
//!   retried ([`errors`] sorts Telegram's errors); [`shutdown`]:
//!   SIGINT/SIGTERM stop the bot within seconds.

mod commands;
mod conversations;
pub mod errors;
mod flood;
mod formatting;
mod handlers;
pub mod intake;
pub mod keyboards;
pub mod pacing;
mod polling;
mod reload;
pub mod send;
mod sharing;
pub mod shutdown;
mod subscriptions;
pub mod updates;
pub mod webhook;
pub mod webhook_admin;

pub use conversations::{ConversationKey, Conversations};
pub use flood::{FloodGuard, Verdict};
pub use subscriptions::announcement_html;

use crate::card::Catalog;
use crate::config::Settings;
use crate::engine::Engine;
use crate::store::Store;
use intake::{Admission, Intake, IntakeStats, queue_key};
use pacing::Pacer;
use send::{Outbox, RetryPolicy};
use shutdown::{GRACE, Shutdown, Signals};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use teloxide::dispatching::{Dispatcher, UpdateFilterExt};
use teloxide::error_handlers::LoggingErrorHandler;
use teloxide::prelude::*;

/// Everything handlers share.
pub struct App {
    /// Conversation contexts live in the store (webhook mode: a follow-up
    /// may reach another instance), not in `conversations`.
    shared_contexts: bool,
    engine: RwLock<Arc<Engine>>,
    /// The engine's tips pictures, checked against the font (with it).
    cards: RwLock<Arc<Catalog>>,
    pub store: Arc<dyn Store>,
    pub settings: Settings,
    pub flood: FloodGuard,
    pub conversations: Conversations,
    /// Retries, pacing and the stop, for everything the bot sends.
    pub out: Outbox,
    /// Updates admitted and not yet handled, per chat and in all.
    pub admission: Arc<Admission>,
    pub intake_stats: IntakeStats,
    /// Whether this instance polls Telegram now (the only one, or elected
    /// among several): only the poller edits admins' progress messages.
    poller: std::sync::atomic::AtomicBool,
    /// What each message a button edits shows now, so a double tap does not
    /// send an edit that changes nothing (Telegram refuses those).
    shown: std::sync::Mutex<std::collections::HashMap<(i64, i32), u64>>,
}

impl App {
    pub fn new(engine: Arc<Engine>, store: Arc<dyn Store>, settings: Settings) -> Self {
        let c = &settings.conversation;
        App {
            cards: RwLock::new(Arc::new(Catalog::check(engine.knowledge()))),
            shared_contexts: settings.http.webhook().is_some(),
            engine: RwLock::new(engine),
            conversations: Conversations::new(c.max_contexts, Duration::from_secs(c.ttl_secs)),
            flood: FloodGuard::new(&settings.flood),
            out: Outbox {
                retry: RetryPolicy {
                    attempts: settings.telegram.reply_attempts,
                    attempt_timeout: Duration::from_secs(settings.telegram.send_timeout_secs),
                    backoff: Duration::from_millis(300),
                    max_retry_after: Duration::from_secs(120),
                },
                pacer: Pacer::new(
                    Duration::from_millis(settings.telegram.chat_interval_ms),
                    settings.telegram.sends_per_sec,
                ),
                shutdown: Shutdown::default(),
            },
            admission: Arc::new(Admission::new(
                settings.telegram.max_queued_per_chat,
                settings.telegram.max_in_progress,
            )),
            intake_stats: IntakeStats::default(),
            store,
            settings,
            poller: std::sync::atomic::AtomicBool::new(true),
            shown: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// Whether this instance polls Telegram now.
    pub fn is_poller(&self) -> bool {
        self.poller.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn set_poller(&self, poller: bool) {
        self.poller
            .store(poller, std::sync::atomic::Ordering::Relaxed);
    }

    /// Record that a message now shows `content`; false if it already did.
    pub fn note_shown(&self, chat: i64, message: i32, content: u64) -> bool {
        let mut shown = self.shown.lock().unwrap_or_else(|e| e.into_inner());
        if shown.len() > 10_000 {
            shown.clear();
        }
        shown.insert((chat, message), content) != Some(content)
    }

    /// Forget what a message shows (its edit failed).
    pub fn forget_shown(&self, chat: i64, message: i32) {
        self.shown
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(chat, message));
    }

    /// The current engine (replaced as a whole when reports are reloaded).
    pub fn engine(&self) -> Arc<Engine> {
        Arc::clone(&self.engine.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The tips pictures of the current data: which can be drawn, their keys.
    pub fn cards(&self) -> Arc<Catalog> {
        Arc::clone(&self.cards.read().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn replace_engine(&self, engine: Arc<Engine>) {
        // Checked before either is replaced: a reader never sees new data
        // with the old pictures for long.
        let cards = Arc::new(Catalog::check(engine.knowledge()));
        *self.engine.write().unwrap_or_else(|e| e.into_inner()) = engine;
        *self.cards.write().unwrap_or_else(|e| e.into_inner()) = cards;
        self.conversations.clear();
    }

    /// The context to answer `key` with: from memory, or in webhook mode
    /// from the store (whichever instance saved it). A store that cannot be
    /// read gives a fresh context: the question is still answered.
    pub async fn take_context(&self, engine: &Engine, key: ConversationKey) -> crate::Context {
        if !self.shared_contexts {
            return self.conversations.take(key);
        }
        let store = Arc::clone(&self.store);
        let name = key.store_key();
        let loaded = tokio::task::spawn_blocking(move || store.load_context(&name)).await;
        match loaded {
            Ok(Ok(Some(text))) => crate::Context::decode(
                &text,
                engine.data_fingerprint(),
                std::time::Instant::now(),
                std::time::SystemTime::now(),
            ),
            Ok(Ok(None)) => crate::Context::default(),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot read the conversation context; answering without");
                crate::Context::default()
            }
            Err(_) => crate::Context::default(),
        }
    }

    /// Keep the context after answering (see [`App::take_context`]).
    pub async fn keep_context(
        &self,
        engine: &Engine,
        key: ConversationKey,
        ctx: crate::Context,
        now: std::time::Instant,
    ) {
        if !self.shared_contexts {
            self.conversations.put(key, ctx, now);
            return;
        }
        let Some(text) = ctx.encode(engine.data_fingerprint(), now, std::time::SystemTime::now())
        else {
            return;
        };
        let store = Arc::clone(&self.store);
        let name = key.store_key();
        let ttl = Duration::from_secs(self.settings.conversation.ttl_secs);
        let saved =
            tokio::task::spawn_blocking(move || store.save_context(&name, Some(&text), ttl)).await;
        if let Ok(Err(e)) = saved {
            tracing::warn!(error = %e, "cannot save the conversation context");
        }
    }

    pub fn is_admin(&self, user: UserId) -> bool {
        self.settings.telegram.admins.contains(&(user.0 as i64))
    }
}

/// The bot's API client: our Bot API server, time limits above the poll timeout.
pub fn make_bot(settings: &Settings) -> anyhow::Result<Bot> {
    let token = settings.require_token()?;
    let poll = settings.telegram.polling_timeout_secs;
    let client = teloxide::net::default_reqwest_settings()
        .timeout(Duration::from_secs(poll + 10))
        .build()
        .map_err(|e| anyhow::anyhow!("cannot build the HTTP client: {e}"))?;
    let url = settings
        .telegram
        .api_url
        .trim()
        .parse()
        .map_err(|e| anyhow::anyhow!("setting `telegram.api_url / TELOXIDE_API_URL`: {e}"))?;
    Ok(Bot::with_client(token.expose(), client).set_api_url(url))
}

/// Run the bot until a signal stops it.
pub async fn run(app: Arc<App>, bot: Bot) -> anyhow::Result<()> {
    // Before anything else: a signal from now on stops the bot gracefully.
    let mut signals = Signals::install();
    // Then the HTTP server: /healthz answers (and /readyz says why not)
    // while the Bot API is still being reached.
    let http = match app.settings.http.listen.clone() {
        Some(listen) => {
            Some(crate::http::Server::start(&listen, Arc::clone(&app), bot.clone()).await?)
        }
        None => None,
    };
    let me = loop {
        match bot.get_me().await {
            Ok(me) => break me,
            Err(teloxide::RequestError::Api(teloxide::ApiError::InvalidToken)) => {
                anyhow::bail!("setting `TELOXIDE_TOKEN`: Telegram rejected the token");
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot reach the Bot API yet; retrying in 2 s");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    _ = signals.recv() => return Ok(()),
                }
            }
        }
    };
    tracing::info!(username = me.username(), "connected to the Bot API");
    if let Some(server) = &http {
        server.connected(me.clone());
    }
    register_menu(&bot, &app).await;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut background =
        subscriptions::spawn_background(bot.clone(), Arc::clone(&app), stop_rx.clone());
    if let Some(dir) = app.settings.data.dir.clone() {
        background.push(tokio::spawn(reload::watch(Arc::clone(&app), dir, stop_rx)));
    }

    // A signal stops polling (if this instance polls), then everything else.
    let (signal_tx, mut signalled) = tokio::sync::watch::channel(false);
    let stopping = Arc::clone(&app);
    tokio::spawn(async move {
        signals.recv().await;
        // Waits that would outlast the grace period end now.
        stopping.out.shutdown.begin(GRACE);
        let _ = signal_tx.send(true);
    });
    if app.settings.http.webhook().is_some() {
        // Webhook mode: Telegram posts updates to the HTTP server. Never
        // getUpdates, never setWebhook / deleteWebhook (`reportbot webhook
        // set` registers the URL once, for every instance), no election.
        tracing::info!("webhook mode: updates arrive over HTTP; not polling");
        background.push(tokio::spawn(webhook::sweep(
            Arc::clone(&app),
            stop_tx.subscribe(),
        )));
        let editor = tokio::spawn(progress_editor(Arc::clone(&app), format!("bot {}", me.id)));
        let _ = signalled.wait_for(|s| *s).await;
        editor.abort();
    } else {
        poll_while_elected(&app, &bot, &me, &mut signalled).await?;
    }
    if let Some(server) = http {
        // Requests in progress finish (their replies within the grace period).
        server.stop(GRACE + Duration::from_millis(1500)).await;
    }
    app.intake_stats.log_summary();
    let _ = stop_tx.send(true);
    for task in background {
        let _ = task.await;
    }
    let dropped = app.out.shutdown.dropped();
    if dropped > 0 {
        tracing::warn!(
            dropped,
            "stopped; {dropped} replies were dropped by the stop"
        );
    } else {
        tracing::info!(dropped, "stopped; no reply was dropped");
    }
    Ok(())
}

/// Webhook mode: no instance polls, but one (the only one, or the one
/// elected among several) edits admins' progress messages.
async fn progress_editor(app: Arc<App>, name: String) {
    let store = Arc::clone(&app.store);
    let election = tokio::task::spawn_blocking(move || store.poller_election(&name)).await;
    let mut election = match election {
        Ok(Ok(Some(e))) => e,
        Ok(Ok(None)) => {
            app.set_poller(true);
            return;
        }
        _ => {
            tracing::warn!("cannot join the election; progress messages are left to others");
            app.set_poller(false);
            return;
        }
    };
    app.set_poller(false);
    loop {
        election.until_leader().await;
        app.set_poller(true);
        election.until_lost().await;
        app.set_poller(false);
    }
}

/// Polling: the only instance, or the elected one among several (the others
/// deliver announcements and wait to take over), until a signal.
async fn poll_while_elected(
    app: &Arc<App>,
    bot: &Bot,
    me: &teloxide::types::Me,
    signalled: &mut tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut election = {
        let store = Arc::clone(&app.store);
        let name = format!("bot {}", me.id);
        tokio::task::spawn_blocking(move || store.poller_election(&name)).await??
    };
    app.set_poller(election.is_none());
    loop {
        if let Some(e) = election.as_mut() {
            tracing::info!("waiting to be elected to poll; delivering announcements meanwhile");
            tokio::select! {
                _ = e.until_leader() => {}
                _ = signalled.wait_for(|s| *s) => break,
            }
        }
        app.set_poller(true);
        let lost = async {
            match election.as_mut() {
                Some(e) => e.until_lost().await,
                None => std::future::pending().await,
            }
        };
        let stopped_by = poll(app, bot, me, signalled, lost).await;
        app.set_poller(false);
        if stopped_by == PollingStop::Signal {
            break;
        }
        tracing::warn!("no longer the elected poller: polling stopped until elected again");
    }
    Ok(())
}

/// What the bot does with each kind of update: the same table for polling
/// and webhook deliveries. Every update passes the first step when a handler
/// takes it up; its admission place is freed when the handler is done.
pub(crate) fn handler_tree() -> teloxide::dispatching::UpdateHandler<handlers::HandlerError> {
    dptree::entry()
        .map(|update: Update, app: Arc<App>| Arc::new(app.admission.handling(&update)))
        .branch(Update::filter_message().endpoint(handlers::on_message))
        .branch(Update::filter_callback_query().endpoint(handlers::on_callback))
        .branch(Update::filter_inline_query().endpoint(handlers::on_inline))
        .branch(Update::filter_my_chat_member().endpoint(subscriptions::on_member_update))
}

#[derive(Debug, PartialEq, Eq)]
enum PollingStop {
    Signal,
    LostElection,
}

/// Poll and dispatch updates until a signal, or until `lost` (the poller
/// lock) resolves. Either way polling stops, handlers in flight finish and
/// the offset is confirmed.
async fn poll(
    app: &Arc<App>,
    bot: &Bot,
    me: &teloxide::types::Me,
    signalled: &mut tokio::sync::watch::Receiver<bool>,
    lost: impl std::future::Future<Output = ()>,
) -> PollingStop {
    let handler = handler_tree();

    let mut dispatcher = Dispatcher::builder(bot.clone(), handler)
        .dependencies(dptree::deps![Arc::clone(app), me.clone()])
        .distribution_function(queue_key)
        // Admission keeps each queue below this (see `intake::Admission`),
        // so the dispatcher never waits for a full queue.
        .worker_queue_size(app.settings.telegram.max_queued_per_chat + intake::HEADROOM)
        .default_handler(|_| async {})
        .error_handler(LoggingErrorHandler::with_custom_text(
            "an update handler failed",
        ))
        .build();
    polling::delete_webhook(bot).await;
    // Stopping the reader ends the dispatcher's stream; the dispatcher then
    // finishes the updates it has and returns. (Not teloxide's shutdown
    // token: a shutdown while the dispatcher hands an update to a chat's
    // queue is lost, and the dispatcher waits for the next update.)
    let (stop_token, stop_flag) = teloxide::stop::mk_stop_token();
    let stop_reading = stop_token.clone();
    let (intake, listener) = Intake::new(Arc::clone(app), me.clone(), stop_token);
    let poller = polling::Poller::new(bot, app.settings.telegram.polling_timeout_secs);
    let polling = tokio::spawn(poller.run(intake, stop_flag));
    let dispatch = dispatcher.dispatch_with_listener(
        listener,
        LoggingErrorHandler::with_custom_text("update listener failed"),
    );
    tokio::pin!(dispatch, lost);
    let stop = tokio::select! {
        // The reader stopped by itself: nothing more will come.
        _ = &mut dispatch => {
            let _ = tokio::time::timeout(Duration::from_secs(1), polling).await;
            return PollingStop::Signal;
        }
        _ = signalled.wait_for(|s| *s) => PollingStop::Signal,
        _ = &mut lost => PollingStop::LostElection,
    };
    // Stops polling and confirms the offset; the dispatcher lets the
    // handlers in flight finish.
    stop_reading.stop();
    // Every wait ends by the grace deadline; this is the backstop.
    let backstop = async {
        app.out.shutdown.begun().await;
        tokio::time::sleep(GRACE + Duration::from_millis(1500)).await;
    };
    tokio::select! {
        _ = &mut dispatch => {}
        _ = backstop => tracing::warn!(
            not_handled = app.admission.total(),
            "stopping took too long; leaving the rest"
        ),
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), polling).await;
    stop
}

async fn register_menu(bot: &Bot, app: &App) {
    let zh = commands::menu_zh();
    let en = commands::menu_en();
    let a = send::with_retry(&app.out, "setMyCommands", || {
        bot.set_my_commands(zh.clone()).into_future()
    })
    .await;
    let b = send::with_retry(&app.out, "setMyCommands(en)", || {
        bot.set_my_commands(en.clone())
            .language_code("en")
            .into_future()
    })
    .await;
    if a.is_err() || b.is_err() {
        tracing::warn!("could not register the command menu; commands still work");
    }
}
