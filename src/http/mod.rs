//! The HTTP server (axum), on `REPORTBOT_LISTEN`:
//!
//! - `GET /healthz`: 200 while the process runs (a liveness probe);
//! - `GET /readyz`: 200 when the store and the Bot API answer, else 503 (a
//!   load balancer sends updates only to a ready instance);
//! - `GET /metrics`: Prometheus text ([`crate::metrics`]);
//! - in webhook mode, `POST PATH` of `REPORTBOT_WEBHOOK_URL`: Telegram's
//!   deliveries. The secret token is compared in constant time (401 when
//!   wrong), the body is read up to `http.max_body_bytes` (400 beyond), then
//!   [`crate::telegram::webhook::Receiver`] handles the update and the
//!   answer tells Telegram whether to deliver it again.
//!
//! TLS is the reverse proxy's job: the server speaks plain HTTP.

use crate::config::Secret;
use crate::metrics::{StoreGauges, metrics};
use crate::telegram::App;
use crate::telegram::webhook::{Received, Receiver};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use teloxide::prelude::*;
use teloxide::types::Me;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The header Telegram puts the webhook's secret token in.
pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// How long a readiness result is reused: probes every second must not
/// become a getMe every second.
const READY_CACHE: Duration = Duration::from_secs(3);

/// Time limit of each readiness check.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("setting `http.listen / REPORTBOT_LISTEN`: cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

/// What the handlers share.
struct Shared {
    app: Arc<App>,
    bot: Bot,
    /// Set once the Bot API has answered getMe; until then the webhook
    /// answers 503 (Telegram delivers again later).
    receiver: OnceLock<Arc<Receiver>>,
    secret: Option<Secret>,
    max_body: usize,
    ready: Mutex<Option<(Instant, bool)>>,
}

/// The running server.
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Server {
    /// Bind and serve. With a webhook configured, its path is served too.
    pub async fn start(listen: &str, app: Arc<App>, bot: Bot) -> Result<Server, HttpError> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| HttpError::Bind {
                addr: listen.to_string(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| HttpError::Bind {
            addr: listen.to_string(),
            source,
        })?;
        let webhook = app
            .settings
            .http
            .webhook()
            .map(|(path, secret)| (path, secret.clone()));
        let shared = Arc::new(Shared {
            max_body: app.settings.http.max_body_bytes,
            secret: webhook.as_ref().map(|(_, s)| s.clone()),
            app,
            bot,
            receiver: OnceLock::new(),
            ready: Mutex::new(None),
        });
        let mut router = Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics_text));
        if let Some((path, _)) = &webhook {
            router = router.route(path, post(receive));
        }
        let router = router.with_state(Arc::clone(&shared));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "the HTTP server stopped");
            }
        });
        tracing::info!(
            %addr,
            webhook = webhook.as_ref().map(|(p, _)| p.as_str()),
            "HTTP server listening"
        );
        Ok(Server {
            addr,
            shared,
            stop: Some(stop),
            task,
        })
    }

    /// The address it listens on (the port, when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The Bot API answered: webhook deliveries can be handled from now on.
    pub fn connected(&self, me: Me) {
        let s = &self.shared;
        let _ = s.receiver.set(Arc::new(Receiver::new(
            Arc::clone(&s.app),
            s.bot.clone(),
            me,
        )));
    }

    /// Stop accepting connections and let requests in progress finish,
    /// within `within`.
    pub async fn stop(mut self, within: Duration) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(within, &mut self.task).await.is_err() {
            tracing::warn!("HTTP requests still running at the stop; leaving them");
            self.task.abort();
        }
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(s): State<Arc<Shared>>) -> Response {
    let cached = *s.ready.lock().unwrap_or_else(|e| e.into_inner());
    let ready = match cached {
        Some((at, ready)) if at.elapsed() < READY_CACHE => ready,
        _ => {
            let ready = check_ready(&s).await;
            *s.ready.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), ready));
            ready
        }
    };
    if ready {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

/// The store answers a query and the Bot API answers getMe, each in time.
async fn check_ready(s: &Shared) -> bool {
    let store = Arc::clone(&s.app.store);
    let store_ok = matches!(
        tokio::time::timeout(
            READY_TIMEOUT,
            tokio::task::spawn_blocking(move || store.counts())
        )
        .await,
        Ok(Ok(Ok(_)))
    );
    if !store_ok {
        tracing::warn!("not ready: the store does not answer");
        return false;
    }
    let api_ok = matches!(
        tokio::time::timeout(READY_TIMEOUT, s.bot.get_me().into_future()).await,
        Ok(Ok(_))
    );
    if !api_ok {
        tracing::warn!("not ready: the Bot API does not answer");
    }
    api_ok
}

async fn metrics_text(State(s): State<Arc<Shared>>) -> Response {
    let store = Arc::clone(&s.app.store);
    let read = tokio::task::spawn_blocking(move || -> crate::store::StoreResult<StoreGauges> {
        let subscribers = store.counts()?.active;
        let mut pending = 0;
        for a in store.pending_announcements()? {
            pending += store.progress(a.id)?.pending;
        }
        Ok(StoreGauges {
            subscribers,
            broadcast_pending: pending,
        })
    });
    // Without the store, the counters are still worth serving.
    let gauges = match tokio::time::timeout(READY_TIMEOUT, read).await {
        Ok(Ok(Ok(g))) => Some(g),
        _ => None,
    };
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        crate::metrics::encode(gauges),
    )
        .into_response()
}

/// The secret token matches, compared in constant time.
fn authorised(expected: &Secret, headers: &HeaderMap) -> bool {
    let given = headers
        .get(SECRET_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    bool::from(given.ct_eq(expected.expose().as_bytes()))
}

async fn receive(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Response {
    let m = metrics();
    let Some(secret) = &s.secret else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if !authorised(secret, &headers) {
        m.webhook_rejected("unauthorized");
        tracing::warn!("webhook request with a wrong secret token refused");
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let Ok(bytes) = axum::body::to_bytes(body, s.max_body).await else {
        m.webhook_rejected("too_large");
        tracing::warn!(
            max_bytes = s.max_body,
            "webhook body too large (or cut off); refused"
        );
        return (StatusCode::BAD_REQUEST, "body too large\n").into_response();
    };
    let Some(receiver) = s.receiver.get() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response();
    };
    match Arc::clone(receiver).receive(bytes).await {
        Received::Handled | Received::Duplicate | Received::Skipped => {
            StatusCode::OK.into_response()
        }
        Received::Rejected(reason) => {
            m.webhook_rejected(reason);
            (StatusCode::BAD_REQUEST, format!("{reason}\n")).into_response()
        }
        // Telegram delivers it again later (to this or another instance).
        Received::Busy | Received::Unavailable => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_must_match_exactly() {
        let secret: Secret = serde_json::from_str("\"abc-123_X\"").unwrap();
        let mut h = HeaderMap::new();
        assert!(!authorised(&secret, &h), "no header");
        for wrong in ["abc-123_x", "abc-123_X ", "abc-123", ""] {
            h.insert(SECRET_HEADER, wrong.parse().unwrap());
            assert!(!authorised(&secret, &h), "{wrong:?}");
        }
        h.insert(SECRET_HEADER, "abc-123_X".parse().unwrap());
        assert!(authorised(&secret, &h));
    }
}
