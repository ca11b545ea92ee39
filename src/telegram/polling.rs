//! Long polling with our own getUpdates loop: the answer is read as raw
//! JSON and every update in it on its own ([`super::updates::parse`]), so one
//! update nobody can read is skipped instead of failing its whole batch
//! forever. The offset always moves past every update that has an id.
//!
//! At start a webhook, if one is set, is deleted (a webhook disables
//! getUpdates). At stop the in-flight poll is abandoned and the offset is
//! confirmed with one last short getUpdates, so a restart does not see the
//! same updates again.

use super::intake::Intake;
use super::updates::{self, Incoming};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::future::Future;
use std::time::Duration;
use teloxide::prelude::*;
use teloxide::stop::StopFlag;

/// The kinds of update the bot handles (getUpdates `allowed_updates`).
const ALLOWED_UPDATES: &[&str] = &[
    "message",
    "callback_query",
    "inline_query",
    "my_chat_member",
];

/// Backoff after a failed poll: 1 s, 2 s, 4 s … at most 30 s.
fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.min(5).saturating_sub(1)).min(Duration::from_secs(30))
}

#[derive(Deserialize)]
struct Envelope<'a> {
    ok: bool,
    #[serde(borrow, default)]
    result: Option<Vec<&'a RawValue>>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    error_code: Option<i64>,
    #[serde(default)]
    parameters: Option<Parameters>,
}

#[derive(Deserialize)]
struct Parameters {
    #[serde(default)]
    retry_after: Option<u64>,
}

/// Why a poll returned no updates.
#[derive(Debug)]
enum PollError {
    /// Telegram asked to wait (429).
    RetryAfter(Duration),
    /// Anything else; the text is safe to log (no token, no user content).
    Failed(String),
}

/// Reads an answer of getUpdates: each update on its own.
fn read_answer(status: u16, body: &str) -> Result<Vec<Incoming>, PollError> {
    let envelope: Envelope = serde_json::from_str(body).map_err(|e| {
        // Never log the body: it may hold users' messages.
        PollError::Failed(format!(
            "HTTP {status}: an answer that is not Telegram's JSON ({:?} at column {})",
            e.classify(),
            e.column()
        ))
    })?;
    if !envelope.ok {
        if let Some(secs) = envelope.parameters.and_then(|p| p.retry_after) {
            return Err(PollError::RetryAfter(Duration::from_secs(secs)));
        }
        return Err(PollError::Failed(format!(
            "error {}: {}",
            envelope.error_code.unwrap_or(i64::from(status)),
            envelope.description.as_deref().unwrap_or("no description")
        )));
    }
    Ok(envelope
        .result
        .unwrap_or_default()
        .into_iter()
        .map(|raw| updates::parse(raw.get()))
        .collect())
}

/// The getUpdates loop.
pub struct Poller {
    client: reqwest::Client,
    url: reqwest::Url,
    timeout_secs: u64,
}

impl Poller {
    pub fn new(bot: &Bot, timeout_secs: u64) -> Self {
        let mut url = bot.api_url();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments
                .pop_if_empty()
                .push(&format!("bot{}", bot.token()))
                .push("getUpdates");
        }
        Poller {
            client: bot.client().clone(),
            url,
            timeout_secs,
        }
    }

    async fn get_updates(
        &self,
        offset: i64,
        timeout_secs: u64,
        limit: u8,
    ) -> Result<Vec<Incoming>, PollError> {
        let body = serde_json::json!({
            "offset": offset,
            "timeout": timeout_secs,
            "limit": limit,
            "allowed_updates": ALLOWED_UPDATES,
        });
        let response = self
            .client
            .post(self.url.clone())
            .json(&body)
            .send()
            .await
            // The URL holds the token: never in a message.
            .map_err(|e| PollError::Failed(e.without_url().to_string()))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| PollError::Failed(e.without_url().to_string()))?;
        read_answer(status, &text)
    }

    /// Poll until `stop`, offering every update to `intake`; then confirm
    /// the offset.
    pub async fn run(self, intake: Intake, mut stop: StopFlag) {
        let mut offset: i64 = 0;
        let mut failures = 0u32;
        loop {
            let polled = tokio::select! {
                r = self.get_updates(offset, self.timeout_secs, 100) => r,
                _ = &mut stop => break,
            };
            let wait = match polled {
                Ok(batch) => {
                    failures = 0;
                    let mut unnumbered = 0;
                    for incoming in batch {
                        match incoming.id() {
                            Some(id) => offset = offset.max(id + 1),
                            None => unnumbered += 1,
                        }
                        if !intake.offer(incoming).await {
                            return;
                        }
                    }
                    if unnumbered == 0 {
                        continue;
                    }
                    // Without an id the offset cannot move past it: do not
                    // ask again at once.
                    tracing::error!(
                        unnumbered,
                        "updates without an update_id; polling again in 2 s"
                    );
                    Duration::from_secs(2)
                }
                Err(PollError::RetryAfter(d)) => {
                    tracing::warn!(
                        wait_s = d.as_secs(),
                        "getUpdates: Telegram asked to wait (429)"
                    );
                    d
                }
                Err(PollError::Failed(e)) => {
                    failures += 1;
                    let d = backoff(failures);
                    tracing::warn!(error = %e, retry_in_s = d.as_secs(), "getUpdates failed");
                    d
                }
            };
            if sleep_or_stop(wait, &mut stop).await {
                break;
            }
        }
        self.confirm(offset).await;
    }

    /// One last getUpdates that only confirms what was fetched (Telegram
    /// forgets updates below the offset).
    async fn confirm(&self, offset: i64) {
        if offset == 0 {
            return;
        }
        match tokio::time::timeout(Duration::from_secs(3), self.get_updates(offset, 0, 1)).await {
            Ok(Ok(_)) => tracing::info!(offset, "update offset confirmed"),
            Ok(Err(e)) => tracing::warn!(offset, error = ?e, "could not confirm the update offset"),
            Err(_) => tracing::warn!(offset, "could not confirm the update offset in time"),
        }
    }
}

/// Sleep, unless stopped first (true).
async fn sleep_or_stop(d: Duration, stop: &mut (impl Future<Output = ()> + Unpin)) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stop => true,
    }
}

/// Delete a webhook if one is set: it would disable getUpdates.
pub async fn delete_webhook(bot: &Bot) {
    match bot.get_webhook_info().await {
        Ok(info) if info.url.is_some() => match bot.delete_webhook().await {
            Ok(_) => tracing::info!("webhook deleted; long polling"),
            Err(e) => tracing::error!(error = %e, "could not delete the webhook"),
        },
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not read the webhook info"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bad_update_does_not_spoil_its_batch() {
        let body = concat!(
            r#"{"ok":true,"result":["#,
            r#"{"update_id":1,"future_kind":{}},"#,
            r#"{"update_id":2,"message":{"message_id":1,"date":1,"chat":{"id":5,"type":"private","first_name":"A"},"text":"x\ud800"}},"#,
            r#"{"update_id":3,"message":{"message_id":2,"date":1,"chat":{"id":5,"type":"private","first_name":"A"},"from":{"id":5,"is_bot":false,"first_name":"A"},"text":"hi"}}"#,
            "]}"
        );
        let batch = read_answer(200, body).unwrap();
        assert_eq!(
            batch.iter().map(Incoming::id).collect::<Vec<_>>(),
            [Some(1), Some(2), Some(3)]
        );
        assert!(matches!(batch[0], Incoming::Unknown { .. }));
        assert!(matches!(batch[1], Incoming::Bad { .. }));
        assert!(matches!(batch[2], Incoming::Update { .. }));
    }

    #[test]
    fn errors_and_429() {
        let e = read_answer(
            429,
            r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#,
        );
        assert!(matches!(e, Err(PollError::RetryAfter(d)) if d == Duration::from_secs(7)));
        let e = read_answer(
            409,
            r#"{"ok":false,"error_code":409,"description":"Conflict"}"#,
        );
        assert!(matches!(e, Err(PollError::Failed(m)) if m.contains("409")));
        let e = read_answer(502, "<html>bad gateway</html>");
        assert!(matches!(e, Err(PollError::Failed(m)) if !m.contains("bad gateway")));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert!(backoff(100) <= Duration::from_secs(30));
    }
}
