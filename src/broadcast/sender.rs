//! Sending one announcement to one chat: the [`AnnouncementSender`] trait
//! and the product's [`TelegramSender`]. What a failure means is decided by
//! the one classifier of Telegram errors, [`crate::telegram::errors`].

use crate::telegram::errors::{SendError, classify};
use crate::telegram::pacing::OverallRate;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use teloxide::prelude::*;
use teloxide::types::ParseMode;

/// Telegram's id of a sent message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentId(pub i32);

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<SentId, SendError>> + Send + 'a>>;

/// Sends one announcement text to one chat.
pub trait AnnouncementSender: Send + Sync {
    fn send<'a>(&'a self, chat_id: i64, text_html: &'a str) -> SendFuture<'a>;
}

/// The product's sender: a plain teloxide [`Bot`] (not `Throttle`: pacing
/// is the [`super::budget`]'s job), HTML parse mode, a time limit per request.
#[derive(Debug, Clone)]
pub struct TelegramSender {
    bot: Bot,
    timeout: Duration,
    /// The bot's overall rate, shared with its replies (Telegram counts
    /// every message of a bot against one limit).
    overall: Option<OverallRate>,
}

impl TelegramSender {
    /// With a 10 s limit per request (teloxide itself stalls 10 s after a 5xx).
    pub fn new(bot: Bot) -> TelegramSender {
        TelegramSender {
            bot,
            timeout: Duration::from_secs(10),
            overall: None,
        }
    }

    /// Count every announcement against the rate the replies use too.
    pub fn sharing_rate(self, overall: OverallRate) -> TelegramSender {
        TelegramSender {
            overall: Some(overall),
            ..self
        }
    }

    pub fn with_timeout(self, timeout: Duration) -> TelegramSender {
        TelegramSender { timeout, ..self }
    }
}

impl AnnouncementSender for TelegramSender {
    fn send<'a>(&'a self, chat_id: i64, text_html: &'a str) -> SendFuture<'a> {
        Box::pin(async move {
            // Held over the send: the window counts from when it is done.
            let _slot = match &self.overall {
                Some(rate) => Some(rate.slot().await),
                None => None,
            };
            let request = self
                .bot
                .send_message(ChatId(chat_id), text_html)
                .parse_mode(ParseMode::Html);
            match tokio::time::timeout(self.timeout, request.send()).await {
                Ok(Ok(message)) => Ok(SentId(message.id.0)),
                Ok(Err(e)) => Err(classify(&e)),
                Err(_) => Err(SendError::Transient(format!(
                    "no answer from Telegram within {:?}",
                    self.timeout
                ))),
            }
        })
    }
}
