//! The Telegram transport: long polling with teloxide, a dptree table of what
//! the bot does, graceful shutdown on SIGINT/SIGTERM. With several instances
//! on one PostgreSQL database, only the elected one polls
//! ([`crate::store::PollerElection`]); every instance delivers announcements.

mod commands;
mod conversations;
pub mod errors;
mod flood;
mod handlers;
pub mod keyboards;
mod reload;
pub mod send;
mod subscriptions;

pub use conversations::{ConversationKey, Conversations};
pub use flood::{FloodGuard, Verdict};
pub use subscriptions::announcement_html;

use crate::config::Settings;
use crate::engine::Engine;
use crate::store::Store;
use send::RetryPolicy;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use teloxide::dispatching::{Dispatcher, UpdateFilterExt};
use teloxide::error_handlers::LoggingErrorHandler;
use teloxide::prelude::*;
use teloxide::update_listeners::Polling;

/// Everything handlers share.
pub struct App {
    engine: RwLock<Arc<Engine>>,
    pub store: Arc<dyn Store>,
    pub settings: Settings,
    pub flood: FloodGuard,
    pub conversations: Conversations,
    pub retry: RetryPolicy,
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
            engine: RwLock::new(engine),
            conversations: Conversations::new(c.max_contexts, Duration::from_secs(c.ttl_secs)),
            flood: FloodGuard::new(&settings.flood),
            retry: RetryPolicy {
                attempts: settings.telegram.reply_attempts,
                attempt_timeout: Duration::from_secs(settings.telegram.send_timeout_secs),
                backoff: Duration::from_millis(300),
                max_retry_after: Duration::from_secs(120),
            },
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

    pub fn replace_engine(&self, engine: Arc<Engine>) {
        *self.engine.write().unwrap_or_else(|e| e.into_inner()) = engine;
        self.conversations.clear();
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

/// Resolves when SIGINT or SIGTERM arrives.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received; shutting down"),
        _ = term => tracing::info!("SIGTERM received; shutting down"),
    }
}

/// Run the bot until a signal stops it.
pub async fn run(app: Arc<App>, bot: Bot) -> anyhow::Result<()> {
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
                    _ = shutdown_signal() => return Ok(()),
                }
            }
        }
    };
    tracing::info!(username = me.username(), "connected to the Bot API");
    register_menu(&bot, &app).await;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut background =
        subscriptions::spawn_background(bot.clone(), Arc::clone(&app), stop_rx.clone());
    if let Some(dir) = app.settings.data.dir.clone() {
        background.push(tokio::spawn(reload::watch(Arc::clone(&app), dir, stop_rx)));
    }

    // A signal stops polling (if this instance polls), then everything else.
    let (signal_tx, mut signalled) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = signal_tx.send(true);
    });
    // Several instances on one database: the elected one polls, the others
    // deliver announcements and wait to take over.
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
        let stopped_by = poll(&app, &bot, &me, &mut signalled, lost).await;
        app.set_poller(false);
        if stopped_by == PollingStop::Signal {
            break;
        }
        tracing::warn!("no longer the elected poller: polling stopped until elected again");
    }
    let _ = stop_tx.send(true);
    for task in background {
        let _ = task.await;
    }
    tracing::info!("stopped");
    Ok(())
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
    let handler = dptree::entry()
        .branch(Update::filter_message().endpoint(handlers::on_message))
        .branch(Update::filter_callback_query().endpoint(handlers::on_callback))
        .branch(Update::filter_inline_query().endpoint(handlers::on_inline))
        .branch(Update::filter_my_chat_member().endpoint(subscriptions::on_member_update));

    let mut dispatcher = Dispatcher::builder(bot.clone(), handler)
        .dependencies(dptree::deps![Arc::clone(app), me.clone()])
        .default_handler(|_| async {})
        .error_handler(LoggingErrorHandler::with_custom_text(
            "an update handler failed",
        ))
        .build();
    let token = dispatcher.shutdown_token();
    let listener = Polling::builder(bot.clone())
        .timeout(Duration::from_secs(
            app.settings.telegram.polling_timeout_secs,
        ))
        .delete_webhook()
        .await
        .build();
    let dispatch = dispatcher.dispatch_with_listener(
        listener,
        LoggingErrorHandler::with_custom_text("polling failed"),
    );
    tokio::pin!(dispatch, lost);
    let stop = tokio::select! {
        _ = &mut dispatch => return PollingStop::Signal,
        _ = signalled.wait_for(|s| *s) => PollingStop::Signal,
        _ = &mut lost => PollingStop::LostElection,
    };
    // Stops polling, lets in-flight handlers finish, confirms the offset.
    loop {
        match token.shutdown() {
            Ok(done) => {
                tokio::join!(done, &mut dispatch);
                break;
            }
            // Not running yet: try again in a moment.
            Err(_) => tokio::select! {
                _ = &mut dispatch => break,
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            },
        }
    }
    stop
}

async fn register_menu(bot: &Bot, app: &App) {
    let zh = commands::menu_zh();
    let en = commands::menu_en();
    let policy = app.retry;
    let a = send::with_retry(policy, "setMyCommands", || {
        bot.set_my_commands(zh.clone()).into_future()
    })
    .await;
    let b = send::with_retry(policy, "setMyCommands(en)", || {
        bot.set_my_commands(en.clone())
            .language_code("en")
            .into_future()
    })
    .await;
    if a.is_err() || b.is_err() {
        tracing::warn!("could not register the command menu; commands still work");
    }
}
