//! Webhook mode: one update per request, handled before the answer.
//!
//! Telegram delivers an update again until it gets a 2xx, and delivers one
//! chat's updates one after another. So an update is answered 200 only
//! once it is handled (its reply sent) or known to be handled already; an
//! instance that dies mid-update answers nothing and Telegram delivers it
//! again, to whichever instance the load balancer picks.
//!
//! Each `update_id` is handled once over all instances: the store records
//! who took it ([`crate::store::Store::claim_update`]). A duplicate gets 200
//! and nothing else; a delivery of an update another instance is still
//! handling waits a little for it, then gets 503 (delivered again later).
//!
//! Bodies that are not a Telegram update (not JSON, no integer `update_id`)
//! are refused (400). An update with an id that this version cannot read
//! is skipped with 200, as in polling: refusing it would make Telegram hold
//! back every later update of its chat.

use super::App;
use super::intake::queue_key;
use super::updates::{self, Incoming};
use crate::store::UpdateClaim;
use axum::body::Bytes;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use teloxide::dispatching::UpdateHandler;
use teloxide::prelude::*;
use teloxide::types::{Me, UpdateKind};

/// What became of a delivery (the HTTP layer turns it into a status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Handled now: 200.
    Handled,
    /// Handled before: 200, nothing else done.
    Duplicate,
    /// An update nobody can act on (unknown kind, unreadable, flooding): 200.
    Skipped,
    /// Not an update at all: 400, with the metric's reason.
    Rejected(&'static str),
    /// Another delivery of it is being handled: 503, deliver again later.
    Busy,
    /// The store cannot be used now, or the bot is stopping: 503.
    Unavailable,
}

/// How long a delivery waits for another instance handling the same update.
const BUSY_WAIT: Duration = Duration::from_secs(3);

#[derive(Deserialize)]
struct Shape {
    update_id: i64,
}

/// Handles webhook deliveries.
pub struct Receiver {
    app: Arc<App>,
    bot: Bot,
    me: Me,
    handler: UpdateHandler<Box<dyn std::error::Error + Send + Sync>>,
    /// One update at a time per chat in this instance (Telegram sends one
    /// chat's updates in order; a redelivery racing its original must not
    /// overtake it).
    chats: Mutex<HashMap<Option<i64>, Arc<tokio::sync::Mutex<()>>>>,
    /// Names this instance in the store's claims.
    owner: String,
}

impl Receiver {
    pub fn new(app: Arc<App>, bot: Bot, me: Me) -> Receiver {
        let owner = format!(
            "{}:{}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into()),
            std::process::id()
        );
        Receiver {
            app,
            bot,
            me,
            handler: super::handler_tree(),
            chats: Mutex::new(HashMap::new()),
            owner,
        }
    }

    /// Handle one webhook body.
    pub async fn receive(self: Arc<Self>, body: Bytes) -> Received {
        let Ok(text) = std::str::from_utf8(&body) else {
            return Received::Rejected("not_json");
        };
        let id = match serde_json::from_str::<Shape>(text) {
            Ok(s) => s.update_id,
            Err(e) if e.is_data() => return Received::Rejected("not_an_update"),
            Err(_) => return Received::Rejected("not_json"),
        };
        let incoming = updates::parse(text);
        crate::metrics::metrics().update(incoming.kind_name());
        match self.claim(id).await {
            Ok(UpdateClaim::New) => {}
            Ok(UpdateClaim::Done) => {
                crate::metrics::metrics().webhook_duplicates.inc();
                tracing::info!(update_id = id, "duplicate delivery; already handled");
                return Received::Duplicate;
            }
            Ok(UpdateClaim::Busy) => return Received::Busy,
            Err(e) => {
                tracing::error!(update_id = id, error = %e, "cannot record the update; Telegram will deliver it again");
                return Received::Unavailable;
            }
        }
        let outcome = match incoming {
            Incoming::Update { update, dropped } => {
                if !dropped.is_empty() {
                    tracing::info!(update_id = id, left_out = ?dropped, "update read without the parts this version does not know");
                }
                self.handle(*update).await
            }
            Incoming::Unknown { kind, .. } => {
                tracing::info!(update_id = id, kind, "unknown kind of update skipped");
                Received::Skipped
            }
            Incoming::Bad { error, .. } => {
                tracing::warn!(update_id = id, error, "unreadable update skipped");
                Received::Skipped
            }
        };
        self.settle(id, outcome).await
    }

    /// Claim the update; while another delivery of it is being handled,
    /// wait a little for that one to finish.
    async fn claim(&self, id: i64) -> crate::store::StoreResult<UpdateClaim> {
        let lease = Duration::from_secs(self.app.settings.http.update_lease_secs);
        let deadline = tokio::time::Instant::now() + BUSY_WAIT;
        loop {
            let store = Arc::clone(&self.app.store);
            let owner = self.owner.clone();
            let claim = tokio::task::spawn_blocking(move || store.claim_update(id, &owner, lease))
                .await
                .map_err(|e| crate::store::StoreError::Unavailable(e.to_string()))??;
            if claim != UpdateClaim::Busy || tokio::time::Instant::now() >= deadline {
                return Ok(claim);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Record the outcome: done (later deliveries are duplicates), or given
    /// back for Telegram to deliver again.
    async fn settle(&self, id: i64, outcome: Received) -> Received {
        let store = Arc::clone(&self.app.store);
        let owner = self.owner.clone();
        let give_back = outcome == Received::Unavailable;
        let recorded = tokio::task::spawn_blocking(move || {
            let mut last = None;
            // A short store hiccup must not make the reply go out twice.
            for attempt in 0..3u64 {
                let r = if give_back {
                    store.release_update(id, &owner)
                } else {
                    store.finish_update(id)
                };
                match r {
                    Ok(()) => return Ok(()),
                    Err(e) => last = Some(e),
                }
                std::thread::sleep(Duration::from_millis(100 * (attempt + 1)));
            }
            Err(last)
        })
        .await;
        match recorded {
            Ok(Ok(())) => outcome,
            _ if give_back => outcome,
            _ => {
                tracing::error!(
                    update_id = id,
                    "handled, but the store did not record it; a redelivery after the lease may answer again"
                );
                Received::Unavailable
            }
        }
    }

    /// Admission (flood, order per chat), then the handlers.
    async fn handle(&self, update: Update) -> Received {
        if matches!(update.kind, UpdateKind::Error(_)) {
            return Received::Skipped;
        }
        let app = &self.app;
        if !super::intake::admit_flood(app, &self.me, &update) {
            return Received::Skipped;
        }
        let key = queue_key(&update);
        let lane = {
            let mut chats = self.chats.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(chats.entry(key).or_default())
        };
        let turn = lane.lock().await;
        let dropped_before = app.out.shutdown.dropped();
        let deps = dptree::deps![self.bot.clone(), self.me.clone(), Arc::clone(app), update];
        if let std::ops::ControlFlow::Break(Err(e)) = self.handler.dispatch(deps).await {
            tracing::error!(error = %e, "an update handler failed");
        }
        drop(turn);
        {
            // Forget idle chats' lanes (nobody else holds them).
            let mut chats = self.chats.lock().unwrap_or_else(|e| e.into_inner());
            if chats.get(&key).is_some_and(|l| Arc::strong_count(l) == 2) {
                chats.remove(&key);
            }
        }
        drop(lane);
        // A reply dropped because the bot is stopping: let Telegram deliver
        // the update again (another instance answers it).
        if app.out.shutdown.is_stopping() && app.out.shutdown.dropped() > dropped_before {
            return Received::Unavailable;
        }
        Received::Handled
    }
}

/// Forget expired conversations and old update ids now and then (every
/// instance does; the statements are cheap when there is nothing to do).
pub async fn sweep(app: Arc<App>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let max = app.settings.conversation.max_contexts;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let store = Arc::clone(&app.store);
        // Telegram keeps an undelivered update for 24 hours.
        let swept =
            tokio::task::spawn_blocking(move || store.sweep(max, Duration::from_secs(25 * 3600)))
                .await;
        match swept {
            Ok(Ok(n)) if n > 0 => {
                tracing::debug!(removed = n, "swept old conversations and updates")
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot sweep old conversations and updates"),
            _ => {}
        }
    }
}
