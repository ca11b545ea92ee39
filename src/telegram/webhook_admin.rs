//! `reportbot webhook set | delete | info`: the operator registers the
//! webhook once for all instances. Instances never call setWebhook or
//! deleteWebhook themselves, so starting or stopping one cannot take
//! updates away from the others.

use crate::config::Settings;
use teloxide::prelude::*;
use teloxide::types::AllowedUpdate;

/// Why a webhook command failed (never shows the token or the secret).
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error(
        "setting `http.webhook_url / REPORTBOT_WEBHOOK_URL` and `http.webhook_secret / REPORTBOT_WEBHOOK_SECRET`: both are needed to set the webhook"
    )]
    NotConfigured,
    #[error("setting `http.webhook_url / REPORTBOT_WEBHOOK_URL`: {0}")]
    BadUrl(String),
    #[error("setting `http.allowed_updates`: {0}")]
    BadKind(String),
    #[error("{method}: {message}")]
    Telegram {
        method: &'static str,
        message: String,
    },
}

fn telegram(method: &'static str) -> impl Fn(teloxide::RequestError) -> WebhookError {
    move |e| WebhookError::Telegram {
        method,
        message: e.to_string(),
    }
}

/// setWebhook with the URL, the secret, `allowed_updates` and
/// `max_connections` of the settings. Returns what to print.
pub async fn set(
    bot: &Bot,
    settings: &Settings,
    drop_pending: bool,
) -> Result<String, WebhookError> {
    let h = &settings.http;
    let (Some(url), Some(secret)) = (&h.webhook_url, &h.webhook_secret) else {
        return Err(WebhookError::NotConfigured);
    };
    let parsed: reqwest::Url = url
        .parse()
        .map_err(|e| WebhookError::BadUrl(format!("{e}")))?;
    let kinds = h
        .allowed_updates
        .iter()
        .map(|k| {
            serde_json::from_value::<AllowedUpdate>(serde_json::Value::from(k.as_str()))
                .map_err(|_| WebhookError::BadKind(format!("{k:?} is not a kind of update")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    bot.set_webhook(parsed)
        .secret_token(secret.expose())
        .allowed_updates(kinds)
        .max_connections(h.max_connections)
        .drop_pending_updates(drop_pending)
        .await
        .map_err(telegram("setWebhook"))?;
    if !url.starts_with("https://") {
        tracing::warn!("the webhook URL is not https: Telegram itself only posts to https");
    }
    Ok(format!(
        "webhook set: {url} (updates: {}; at most {} connections)",
        h.allowed_updates.join(", "),
        h.max_connections
    ))
}

/// deleteWebhook: Telegram keeps updates until someone polls or a webhook
/// is set again (unless `drop_pending`).
pub async fn delete(bot: &Bot, drop_pending: bool) -> Result<String, WebhookError> {
    bot.delete_webhook()
        .drop_pending_updates(drop_pending)
        .await
        .map_err(telegram("deleteWebhook"))?;
    Ok("webhook deleted".into())
}

/// getWebhookInfo, one line per field.
pub async fn info(bot: &Bot) -> Result<String, WebhookError> {
    let i = bot
        .get_webhook_info()
        .await
        .map_err(telegram("getWebhookInfo"))?;
    let mut out = String::new();
    let url = i
        .url
        .as_ref()
        .map_or("(none: long polling)", |u| u.as_str());
    out.push_str(&format!("url: {url}\n"));
    out.push_str(&format!("pending updates: {}\n", i.pending_update_count));
    if let Some(n) = i.max_connections {
        out.push_str(&format!("max connections: {n}\n"));
    }
    if let Some(kinds) = &i.allowed_updates {
        let names: Vec<String> = kinds
            .iter()
            .filter_map(|k| serde_json::to_value(k).ok())
            .filter_map(|v| v.as_str().map(String::from))
            .collect();
        out.push_str(&format!("allowed updates: {}\n", names.join(", ")));
    }
    match (&i.last_error_date, &i.last_error_message) {
        (Some(at), Some(m)) => out.push_str(&format!("last error: {at}: {m}\n")),
        (None, Some(m)) => out.push_str(&format!("last error: {m}\n")),
        _ => out.push_str("last error: none\n"),
    }
    Ok(out)
}
