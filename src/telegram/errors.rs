//! The one classifier of Telegram errors, used for replies
//! ([`super::send::with_retry`]) and for announcements
//! ([`crate::broadcast::TelegramSender`]): what an error means and so what to
//! do about it (wait, retry, give up on the chat, give up on the text).

use std::time::Duration;
use teloxide::{ApiError, RequestError};

/// Why a message was not sent, sorted by what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// 429: wait this long before sending anything.
    #[error("Telegram asks to wait {0:?}")]
    RetryAfter(Duration),
    /// The chat cannot be reached any more (blocked, kicked, deleted, deactivated).
    #[error("chat unreachable: {0}")]
    Blocked(String),
    /// The group became a supergroup with this id.
    #[error("group migrated to supergroup {0}")]
    MigratedTo(i64),
    /// Worth retrying: 5xx, network, timeout.
    #[error("{0}")]
    Transient(String),
    /// Refused for this chat; retrying will not help.
    #[error("{0}")]
    Permanent(String),
    /// The text itself was refused (bad HTML, too long): every chat would refuse it.
    #[error("message refused: {0}")]
    BadMessage(String),
    /// The file sent was refused: a `file_id` Telegram no longer knows (or
    /// that belongs to another bot), or a picture it cannot process. Sending
    /// the same reference again will not help; uploading the file may.
    #[error("file refused: {0}")]
    BadFile(String),
}

/// Sort a teloxide error by what to do about it.
///
/// teloxide-core 0.13 ignores the HTTP status: an error answer becomes
/// [`ApiError`] by its `description` (unknown ones as `ApiError::Unknown(text)`,
/// e.g. `"Internal Server Error"` for a 500), a body that is not Telegram's
/// JSON (a proxy's 502 page) becomes `InvalidJson`, and `parameters`
/// become `RetryAfter` / `MigrateToChatId`.
pub fn classify(error: &RequestError) -> SendError {
    match error {
        RequestError::RetryAfter(secs) => SendError::RetryAfter(secs.duration()),
        RequestError::MigrateToChatId(chat) => SendError::MigratedTo(chat.0),
        RequestError::Api(api) => classify_api(api),
        RequestError::Network(e) => SendError::Transient(format!("network error: {e}")),
        RequestError::Io(e) => SendError::Transient(format!("I/O error: {e}")),
        RequestError::InvalidJson { raw, .. } => SendError::Transient(format!(
            "unreadable answer from Telegram: {:?}",
            raw.chars().take(120).collect::<String>()
        )),
    }
}

fn classify_api(api: &ApiError) -> SendError {
    use ApiError as E;
    match api {
        E::BotBlocked
        | E::ChatNotFound
        | E::UserNotFound
        | E::UserDeactivated
        | E::BotKicked
        | E::BotKickedFromSupergroup
        | E::BotKickedFromChannel
        | E::CantInitiateConversation
        | E::CantTalkWithBots
        | E::GroupDeactivated
        | E::NotEnoughRightsToPostMessages => SendError::Blocked(api.to_string()),
        E::CantParseEntities(_) | E::MessageIsTooLong | E::MessageTextIsEmpty => {
            SendError::BadMessage(api.to_string())
        }
        E::WrongFileId | E::WrongFileIdOrUrl | E::FileIdInvalid | E::ImageProcessFailed => {
            SendError::BadFile(api.to_string())
        }
        // Every send will fail the same way until the token is fixed; as a
        // transient error it slows the worker down instead of failing rows fast.
        E::InvalidToken => SendError::Transient(api.to_string()),
        E::Unknown(text) => classify_description(text),
        _ => SendError::Permanent(api.to_string()),
    }
}

/// Descriptions teloxide has no variant for.
fn classify_description(text: &str) -> SendError {
    let t = text.trim().to_ascii_lowercase();
    let any = |needles: &[&str]| needles.iter().any(|n| t.contains(n));
    if t.starts_with("forbidden")
        || any(&[
            "chat not found",
            "peer_id_invalid",
            "chat_id_invalid",
            "user not found",
            "user is deactivated",
            "group chat was deactivated",
            "chat was deleted",
        ])
    {
        SendError::Blocked(text.to_string())
    } else if any(&[
        "can't parse entities",
        "message is too long",
        "text must be non-empty",
        "message text is empty",
    ]) {
        SendError::BadMessage(text.to_string())
    } else if any(&[
        "file identifier",
        "file id",
        "file_id",
        "file_reference",
        "photo_invalid",
    ]) {
        SendError::BadFile(text.to_string())
    } else if t.starts_with("bad request") {
        SendError::Permanent(text.to_string())
    } else {
        // 5xx ("Internal Server Error", "Bad Gateway", …) and anything new:
        // retried a few times, then failed with the text kept.
        SendError::Transient(text.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use teloxide::types::{ChatId, Seconds};

    fn api(description: &str) -> RequestError {
        let json = serde_json::Value::String(description.to_string());
        RequestError::Api(serde_json::from_value(json).unwrap_or_else(|e| panic!("{e}")))
    }

    #[test]
    fn telegram_errors_are_sorted() {
        assert_eq!(
            classify(&RequestError::RetryAfter(Seconds::from_seconds(7))),
            SendError::RetryAfter(Duration::from_secs(7))
        );
        assert_eq!(
            classify(&RequestError::MigrateToChatId(ChatId(-1001))),
            SendError::MigratedTo(-1001)
        );
        for blocked in [
            "Forbidden: bot was blocked by the user",
            "Forbidden: user is deactivated",
            "Bad Request: chat not found",
            "Forbidden: bot was kicked from the supergroup chat",
            "Forbidden: bot was kicked from the group chat",
            "Forbidden: bot is not a member of the channel chat",
            "Bad Request: PEER_ID_INVALID",
            "Bad Request: group is deactivated",
        ] {
            assert!(
                matches!(classify(&api(blocked)), SendError::Blocked(_)),
                "{blocked}"
            );
        }
        // teloxide turns an HTTP 500 {"description":"Internal Server Error"}
        // into ApiError::Unknown with that text.
        let e = api("Internal Server Error");
        assert!(matches!(
            &e,
            RequestError::Api(ApiError::Unknown(t)) if t == "Internal Server Error"
        ));
        for transient in ["Internal Server Error", "Bad Gateway", "Gateway Timeout"] {
            assert!(matches!(classify(&api(transient)), SendError::Transient(_)));
        }
        let proxy_page = RequestError::InvalidJson {
            source: Arc::new(
                serde_json::from_str::<u8>("<html>")
                    .err()
                    .unwrap_or_else(|| panic!("html is not json")),
            ),
            raw: "<html>502</html>".into(),
        };
        assert!(matches!(classify(&proxy_page), SendError::Transient(_)));
        for bad_message in [
            "Bad Request: can't parse entities: Unsupported start tag \"x\" at byte offset 0",
            "Bad Request: message is too long",
            "Bad Request: message text is empty",
        ] {
            assert!(
                matches!(classify(&api(bad_message)), SendError::BadMessage(_)),
                "{bad_message}"
            );
        }
        assert!(matches!(
            classify(&api("Bad Request: have no rights to send a message")),
            SendError::Permanent(_)
        ));
        for bad_file in [
            "Bad Request: wrong file identifier/HTTP URL specified",
            "Bad Request: wrong file id",
            "Bad Request: invalid file id",
            "Bad Request: IMAGE_PROCESS_FAILED",
            "Bad Request: FILE_REFERENCE_EXPIRED",
            "Bad Request: wrong remote file identifier specified: can't unserialize it",
        ] {
            assert!(
                matches!(classify(&api(bad_file)), SendError::BadFile(_)),
                "{bad_file}"
            );
        }
    }
}
