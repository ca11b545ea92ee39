//! Helpers of the end-to-end tests: ask as a user, wait for replies, and
//! check everything the bot sent the way Telegram would.

use super::app::TestApp;
use super::botapi::{SentMessage, UserSpec};
use super::html::check_telegram_html;
use serde_json::Value;
use std::time::{Duration, Instant};

/// How long to wait for a reply that should come at once.
pub const WAIT: Duration = Duration::from_secs(10);

pub fn zh_user(id: u64) -> UserSpec {
    UserSpec::new(id, "测试用户").lang("zh-hans")
}

pub fn en_user(id: u64) -> UserSpec {
    UserSpec::new(id, "Tester").lang("en")
}

/// Sends `text` in the user's private chat and returns the first reply to it.
pub async fn ask(app: &TestApp, user: &UserSpec, text: &str) -> SentMessage {
    let chat = user.private_chat();
    let before = app.api.sent_messages(chat.id()).len();
    app.api.send_text(&chat, user, text);
    next_reply(app, chat.id(), before, text).await
}

/// The message number `before` of a chat (waiting for it).
pub async fn next_reply(app: &TestApp, chat: i64, before: usize, what: &str) -> SentMessage {
    let msgs = app.api.wait_for_messages(chat, before + 1, WAIT).await;
    assert!(
        msgs.len() > before,
        "no reply to {what:?} in chat {chat} within {WAIT:?}; sent so far: {:#?}\n\
         refused by Telegram: {:#?}\nlog:\n{}",
        msgs.iter().map(|m| m.visible_text()).collect::<Vec<_>>(),
        app.api.rejections(),
        app.log()
    );
    msgs[before].clone()
}

/// Checks a condition that no server event announces (offsets, processes).
pub async fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// True when no further message reaches `chat` within `quiet`.
pub async fn stays_quiet(app: &TestApp, chat: i64, quiet: Duration) -> bool {
    let n = app.api.sent_messages(chat).len();
    !app.api
        .wait_until(quiet, |h| h.sent_messages(chat).len() > n)
        .await
}

/// Every text the bot sent, edited or offered inline is valid Telegram HTML
/// and uses no tag but `<b>` (user text is always escaped); Telegram would
/// have refused nothing.
pub fn assert_clean(app: &TestApp) {
    let api = &app.api;
    let mut texts: Vec<(String, String)> = Vec::new();
    for m in api.all_sent_messages() {
        texts.push((format!("sendMessage to {}", m.chat_id), m.text.clone()));
    }
    for c in api.calls_to("editMessageText") {
        if c.ok()
            && let Some(t) = c.param_str("text")
        {
            texts.push(("editMessageText".into(), t.to_string()));
        }
    }
    for a in api.inline_answers() {
        for r in &a.results {
            if let Some(t) = r
                .pointer("/input_message_content/message_text")
                .and_then(Value::as_str)
            {
                texts.push(("answerInlineQuery".into(), t.to_string()));
            }
        }
    }
    for (what, text) in &texts {
        if let Err(e) = check_telegram_html(text) {
            panic!(
                "{what}: invalid Telegram HTML ({e}):\n{text}\nlog:\n{}",
                app.log()
            );
        }
        let stripped = text.replace("<b>", "").replace("</b>", "");
        assert!(
            !stripped.contains('<') && !stripped.contains('>'),
            "{what}: a tag other than <b> (unescaped user text?):\n{text}"
        );
    }
    let rejections = api.rejections();
    assert!(
        rejections.is_empty(),
        "Telegram would have refused: {rejections:#?}\nlog:\n{}",
        app.log()
    );
}
