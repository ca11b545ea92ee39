//! Sending replies reliably: split to Telegram's length limit at line
//! boundaries, paced to Telegram's limits ([`Pacer`]), retry what is
//! transient, never give up on the first error — but never hold up a stop.
//!
//! teloxide's own behaviour shapes this: a 5xx makes it sleep 10 s before it
//! reports the error, so every attempt runs under a short time limit; a 429
//! comes back as `RetryAfter`, which is waited out without counting as an
//! attempt, unless the bot is stopping (then the reply is dropped and counted).

use super::errors::{SendError, classify};
use super::pacing::Pacer;
use super::shutdown::Shutdown;
use std::future::Future;
use std::time::Duration;
use teloxide::RequestError;
use teloxide::prelude::*;
use teloxide::types::{InlineKeyboardMarkup, InputFile, MessageId, ParseMode, ThreadId};

/// Everything sending needs: how to retry, the pacing, the stop.
#[derive(Debug)]
pub struct Outbox {
    pub retry: RetryPolicy,
    pub pacer: Pacer,
    pub shutdown: Shutdown,
}

/// Where a message goes: a chat, its forum topic, the message it answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Destination {
    pub chat: ChatId,
    /// The forum topic (`message_thread_id`).
    pub thread: Option<ThreadId>,
    /// Quote this message (if it still exists).
    pub reply_to: Option<MessageId>,
}

impl Destination {
    pub fn chat(chat: ChatId) -> Self {
        Destination {
            chat,
            thread: None,
            reply_to: None,
        }
    }

    /// Where an answer to `msg` goes: its chat, and its topic in a forum —
    /// also when `msg` is deleted meanwhile and the quote cannot be made.
    pub fn answer_to(msg: &Message) -> Self {
        Destination {
            chat: msg.chat.id,
            thread: msg.thread_id.filter(|_| msg.is_topic_message),
            reply_to: None,
        }
    }

    /// Also quote the message.
    pub fn quoting(self, msg: MessageId) -> Self {
        Destination {
            reply_to: Some(msg),
            ..self
        }
    }
}

/// Telegram's limit for one message, in UTF-16 code units.
pub const MAX_MESSAGE_UNITS: usize = 4096;

fn units(s: &str) -> usize {
    s.encode_utf16().count()
}

/// Split an HTML text into chunks of at most `limit` UTF-16 units, at line
/// boundaries. Our HTML keeps every tag within one line, so chunks stay valid;
/// a single overlong line is cut between characters, never inside `<…>` or `&…;`.
pub fn split_message(text: &str, limit: usize) -> Vec<String> {
    let mut chunks = Vec::new();
    let mut current = String::new();
    for line in text.split('\n') {
        let needed = units(line) + usize::from(!current.is_empty());
        if units(&current) + needed <= limit {
            if !current.is_empty() {
                current.push('\n');
            }
            current.push_str(line);
            continue;
        }
        if !current.is_empty() {
            chunks.push(std::mem::take(&mut current));
        }
        if units(line) <= limit {
            current.push_str(line);
            continue;
        }
        // An overlong line: cut between atoms (a tag, an entity, or one
        // character), never inside `<…>` or `&…;`.
        let mut piece = String::new();
        let mut piece_units = 0;
        for atom in atoms(line) {
            let u = units(atom);
            if piece_units + u > limit && !piece.is_empty() {
                chunks.push(std::mem::take(&mut piece));
                piece_units = 0;
            }
            piece.push_str(atom);
            piece_units += u;
        }
        current = piece;
    }
    if !current.trim().is_empty() {
        chunks.push(current);
    }
    chunks.retain(|c| !c.trim().is_empty());
    chunks
}

/// Split a line into tags (`<…>`), entities (`&…;`) and single characters.
fn atoms(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        let end = match c {
            '<' => rest.find('>').map_or(c.len_utf8(), |i| i + 1),
            '&' => rest
                .find(';')
                .filter(|i| *i <= 10)
                .map_or(c.len_utf8(), |i| i + 1),
            _ => c.len_utf8(),
        };
        out.push(&rest[..end]);
        rest = &rest[end..];
    }
    out
}

/// How to retry sends.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub attempt_timeout: Duration,
    pub backoff: Duration,
    /// Never wait longer than this for one 429.
    pub max_retry_after: Duration,
}

/// What became of a send.
#[derive(Debug)]
pub enum SendFailure {
    /// The chat is gone or blocked us: not worth retrying.
    Gone(RequestError),
    /// Retries exhausted or a permanent error.
    Failed(String),
    /// The file sent was refused ([`SendError::BadFile`]): a stale
    /// `file_id`; uploading the file again may work.
    BadFile(String),
    /// Given up because the bot is stopping.
    Stopping,
}

/// Run one request with retries: 429 waits `retry_after`; 5xx, timeouts and
/// network errors back off and retry up to `attempts` times.
pub async fn with_retry<T, F, Fut>(
    out: &Outbox,
    what: &str,
    mut request: F,
) -> Result<T, SendFailure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RequestError>>,
{
    let m = crate::metrics::metrics();
    let result = retrying(out, what, &mut request).await;
    match &result {
        Ok(_) => m.replies_sent.inc(),
        Err(_) => m.replies_failed.inc(),
    };
    result
}

async fn retrying<T, F, Fut>(out: &Outbox, what: &str, request: &mut F) -> Result<T, SendFailure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RequestError>>,
{
    let m = crate::metrics::metrics();
    let policy = out.retry;
    let mut attempt = 0u32;
    let mut backoff = policy.backoff;
    loop {
        let outcome = tokio::time::timeout(policy.attempt_timeout, request()).await;
        let err = match outcome {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(RequestError::RetryAfter(secs))) => {
                m.too_many_requests.inc();
                m.replies_retried.inc();
                let wait = secs.duration().min(policy.max_retry_after);
                tracing::warn!(
                    what,
                    wait_ms = wait.as_millis() as u64,
                    "Telegram asked to slow down (429); waiting"
                );
                if out.shutdown.sleep(wait).await.is_err() {
                    return Err(SendFailure::Stopping);
                }
                continue;
            }
            // The same classifier as announcements (`super::errors`).
            Ok(Err(e)) => match classify(&e) {
                SendError::Blocked(_) => return Err(SendFailure::Gone(e)),
                SendError::Transient(_) => e.to_string(),
                SendError::BadFile(_) => return Err(SendFailure::BadFile(e.to_string())),
                _ => return Err(SendFailure::Failed(e.to_string())),
            },
            Err(_) => format!("no answer within {:?}", policy.attempt_timeout),
        };
        attempt += 1;
        if attempt >= policy.attempts {
            return Err(SendFailure::Failed(format!(
                "{what}: gave up after {attempt} attempts: {err}"
            )));
        }
        tracing::warn!(what, attempt, error = %err, "transient Telegram error; retrying");
        m.replies_retried.inc();
        if out.shutdown.sleep(backoff).await.is_err() {
            return Err(SendFailure::Stopping);
        }
        backoff = (backoff * 2).min(Duration::from_secs(8));
    }
}

/// Send an HTML reply, split as needed; the keyboard goes with the last
/// part, the quote with the first. Each part waits for its turn ([`Pacer`]).
pub async fn send_html(
    bot: &Bot,
    out: &Outbox,
    to: Destination,
    html: &str,
    keyboard: Option<InlineKeyboardMarkup>,
) -> Result<Vec<MessageId>, SendFailure> {
    let chunks = split_message(html, MAX_MESSAGE_UNITS);
    let last = chunks.len().saturating_sub(1);
    let mut ids = Vec::with_capacity(chunks.len());
    for (i, chunk) in chunks.iter().enumerate() {
        let kb = if i == last { keyboard.clone() } else { None };
        let to = if i == 0 {
            to
        } else {
            Destination {
                reply_to: None,
                ..to
            }
        };
        ids.push(send_one_html(bot, out, to, chunk, kb).await?);
    }
    Ok(ids)
}

/// Send HTML as one message, not split: for a text checked to fit
/// (an announcement's preview must be exactly what subscribers get, and
/// splitting counts tags, which Telegram does not).
pub async fn send_one_html(
    bot: &Bot,
    out: &Outbox,
    to: Destination,
    html: &str,
    keyboard: Option<InlineKeyboardMarkup>,
) -> Result<MessageId, SendFailure> {
    let _turn = out
        .pacer
        .acquire(to.chat.0, &out.shutdown)
        .await
        .map_err(|_| SendFailure::Stopping)?;
    let msg = with_retry(out, "sendMessage", || {
        let mut req = bot.send_message(to.chat, html).parse_mode(ParseMode::Html);
        if let Some(kb) = keyboard.clone() {
            req = req.reply_markup(kb);
        }
        if let Some(thread) = to.thread {
            req = req.message_thread_id(thread);
        }
        if let Some(id) = to.reply_to {
            // A deleted question still gets its answer (in its topic).
            req = req.reply_parameters(
                teloxide::types::ReplyParameters::new(id).allow_sending_without_reply(),
            );
        }
        req.into_future()
    })
    .await?;
    Ok(msg.id)
}

/// A photo to send: by reference, or uploaded.
#[derive(Debug, Clone)]
pub enum Photo {
    /// A `file_id` Telegram gave this bot for an earlier upload.
    FileId(String),
    /// A PNG to upload (multipart), with its file name.
    Png { bytes: Vec<u8>, name: String },
}

/// A sent photo: its message and the `file_id` of its largest size (what
/// to send next time instead of uploading).
#[derive(Debug, Clone)]
pub struct SentPhoto {
    pub message: MessageId,
    pub file_id: Option<String>,
}

/// Send a photo with a caption, waiting for its turn like a text
/// ([`Pacer`]) and retried like one ([`with_retry`]). An upload is built
/// once; each attempt shares its bytes.
pub async fn send_photo(
    bot: &Bot,
    out: &Outbox,
    to: Destination,
    photo: Photo,
    caption: &str,
    keyboard: Option<InlineKeyboardMarkup>,
) -> Result<SentPhoto, SendFailure> {
    let file = match photo {
        Photo::FileId(id) => InputFile::file_id(teloxide::types::FileId(id)),
        Photo::Png { bytes, name } => InputFile::memory(bytes).file_name(name),
    };
    let _turn = out
        .pacer
        .acquire(to.chat.0, &out.shutdown)
        .await
        .map_err(|_| SendFailure::Stopping)?;
    let msg = with_retry(out, "sendPhoto", || {
        let mut req = bot.send_photo(to.chat, file.clone());
        if !caption.is_empty() {
            req = req.caption(caption);
        }
        if let Some(kb) = keyboard.clone() {
            req = req.reply_markup(kb);
        }
        if let Some(thread) = to.thread {
            req = req.message_thread_id(thread);
        }
        if let Some(id) = to.reply_to {
            req = req.reply_parameters(
                teloxide::types::ReplyParameters::new(id).allow_sending_without_reply(),
            );
        }
        req.into_future()
    })
    .await?;
    // Telegram lists the sizes it made, smallest first.
    let file_id = msg
        .photo()
        .and_then(|sizes| sizes.iter().max_by_key(|s| s.width * s.height))
        .map(|s| s.file.id.0.clone());
    Ok(SentPhoto {
        message: msg.id,
        file_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_lines_and_respects_limit() {
        let line = "测试".repeat(30);
        let text = vec![line.as_str(); 100].join("\n");
        let parts = split_message(&text, 4096);
        assert!(parts.len() >= 2);
        assert!(parts.iter().all(|p| units(p) <= 4096));
        assert_eq!(parts.join("\n"), text);
    }

    #[test]
    fn overlong_line_is_cut_outside_entities() {
        let text = "&amp;".repeat(2000);
        let parts = split_message(&text, 4096);
        assert!(
            parts
                .iter()
                .all(|p| units(p) <= 4096 && p.starts_with('&') && p.ends_with(';'))
        );
        assert_eq!(parts.concat(), text);
    }

    #[test]
    fn emoji_count_as_two_units() {
        let text = "😀".repeat(3000);
        let parts = split_message(&text, 4096);
        assert!(parts.iter().all(|p| units(p) <= 4096));
        assert_eq!(parts.concat(), text);
    }
}
