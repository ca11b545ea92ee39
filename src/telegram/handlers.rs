//! Update handlers: parse the update, ask the engine, render, send. No
//! matching logic lives here.

use super::App;
use super::commands::Command;
use super::conversations::ConversationKey;
use super::flood::Verdict;
use super::keyboards::{self, Callback};
use super::send::{SendFailure, send_html, with_retry};
use super::subscriptions;
use crate::engine::{Answer, Intent, Lang, PrizeFilter, Reply};
use crate::render;
use std::sync::Arc;
use std::time::Instant;
use teloxide::prelude::*;
use teloxide::types::{
    InlineKeyboardMarkup, InlineQueryResult, InlineQueryResultArticle, InputMessageContent,
    InputMessageContentText, Me, ParseMode,
};
use teloxide::utils::command::BotCommands;

pub type HandlerResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// A message meant for the bot, with the bot's @name taken out.
#[derive(Debug, Clone)]
pub struct Addressed {
    pub text: String,
    pub user: UserId,
    pub lang: Option<Lang>,
    pub key: ConversationKey,
}

/// In private chats every text; in groups only commands for us, mentions of
/// us and replies to our messages. Everything else: `None` (stay quiet).
pub fn addressed(msg: Message, me: Me) -> Option<Addressed> {
    let text = msg.text()?.trim();
    let user = msg.from.as_ref()?;
    if user.is_bot {
        return None;
    }
    let lang = Lang::from_code(user.language_code.as_deref());
    let private = msg.chat.is_private();
    let key = ConversationKey {
        chat: msg.chat.id.0,
        user: if private { 0 } else { user.id.0 },
    };
    let make = |t: String| Addressed {
        text: t,
        user: user.id,
        lang,
        key,
    };
    if private {
        return Some(make(text.to_string()));
    }
    let mention = format!("@{}", me.username());
    if text.starts_with('/') {
        let head = text.split_whitespace().next().unwrap_or("");
        return match head.split_once('@') {
            Some((_, name)) if !name.eq_ignore_ascii_case(me.username()) => None,
            _ => Some(make(text.to_string())),
        };
    }
    let lower = text.to_lowercase();
    let mention_lower = mention.to_lowercase();
    if let Some(pos) = lower.find(&mention_lower) {
        // Lower-casing ASCII keeps byte offsets; the username is ASCII.
        let stripped = format!("{}{}", &text[..pos], &text[pos + mention.len()..]);
        return Some(make(stripped.trim().to_string()));
    }
    let replied_to_us = msg
        .reply_to_message()
        .and_then(|r| r.from.as_ref())
        .is_some_and(|u| u.id == me.id);
    replied_to_us.then(|| make(text.to_string()))
}

/// Keyboard that goes with an answer, if any.
fn keyboard_for(app: &App, answer: &Answer) -> Option<InlineKeyboardMarkup> {
    let engine = app.engine();
    match &answer.reply {
        Reply::Winners { filter, .. } if filter.is_empty() => Some(keyboards::browse(
            &engine,
            &PrizeFilter::default(),
            answer.lang,
        )),
        Reply::Tips { .. } => Some(keyboards::tip_topics(&engine, answer.lang)),
        Reply::Ambiguous { options, .. } => Some(keyboards::readings(&engine, options)),
        _ => None,
    }
}

pub async fn on_message(bot: Bot, msg: Message, me: Me, app: Arc<App>) -> HandlerResult {
    let Some(a) = addressed(msg.clone(), me.clone()) else {
        return Ok(());
    };
    let started = Instant::now();
    let chat = msg.chat.id;
    match app.flood.check(a.user.0, started) {
        Verdict::Allow => {}
        Verdict::Warn => {
            let text = match a.lang {
                Some(Lang::En) => {
                    "You are sending messages too fast. Please wait a little; I will answer again shortly."
                }
                _ => "您发送得太快了,请稍等片刻再问,我稍后会继续回答。",
            };
            tracing::info!(
                chat = chat.0,
                user = a.user.0,
                "flood limit reached; cooling down"
            );
            reply(&bot, &app, chat, text.to_string(), None).await;
            return Ok(());
        }
        Verdict::Drop => return Ok(()),
    }

    // Commands that act (subscriptions, announcements) rather than answer.
    let command = Command::parse(&a.text, me.username()).ok();
    let intent = match command {
        Some(Command::Subscribe) => subscriptions::subscribe(&bot, &app, &msg, &a).await,
        Some(Command::Unsubscribe) => subscriptions::unsubscribe(&bot, &app, &msg, &a).await,
        Some(Command::Status) => subscriptions::status(&bot, &app, &msg, &a).await,
        Some(Command::Announce(text)) => subscriptions::announce(&bot, &app, &msg, &a, &text).await,
        _ => answer_text(&bot, &app, &msg, &a).await,
    };
    tracing::info!(
        chat = chat.0,
        intent,
        latency_us = started.elapsed().as_micros() as u64,
        "handled message"
    );
    Ok(())
}

/// Free text (and the answering commands): the engine with this chat's context.
async fn answer_text(bot: &Bot, app: &App, msg: &Message, a: &Addressed) -> &'static str {
    let engine = app.engine();
    let now = Instant::now();
    let mut ctx = app.conversations.take(a.key);
    let answer = engine.answer(&mut ctx, &a.text, a.lang, now);
    app.conversations.put(a.key, ctx, now);
    match answer.reply {
        Reply::Subscribe => return subscriptions::subscribe(bot, app, msg, a).await,
        Reply::Unsubscribe => return subscriptions::unsubscribe(bot, app, msg, a).await,
        _ => {}
    }
    let html = render::html(&engine, &answer);
    let keyboard = keyboard_for(app, &answer);
    let reply_to = (!msg.chat.is_private()).then_some(msg.id);
    if let Err(e) = send_html(bot, app.retry, msg.chat.id, &html, keyboard, reply_to).await {
        log_send_failure(msg.chat.id, &e);
    }
    answer.intent.as_str()
}

/// Send a reply; failures are logged, never fatal.
pub async fn reply(
    bot: &Bot,
    app: &App,
    chat: ChatId,
    html: String,
    keyboard: Option<InlineKeyboardMarkup>,
) {
    if let Err(e) = send_html(bot, app.retry, chat, &html, keyboard, None).await {
        log_send_failure(chat, &e);
    }
}

pub fn log_send_failure(chat: ChatId, e: &SendFailure) {
    match e {
        SendFailure::Gone(err) => {
            tracing::info!(chat = chat.0, error = %err, "chat is gone; reply dropped")
        }
        SendFailure::Failed(err) => {
            tracing::error!(chat = chat.0, error = %err, "reply could not be sent")
        }
    }
}

pub async fn on_callback(bot: Bot, q: CallbackQuery, app: Arc<App>) -> HandlerResult {
    let started = Instant::now();
    let lang = Lang::from_code(q.from.language_code.as_deref()).unwrap_or_default();
    let parsed = q.data.as_deref().and_then(Callback::parse);
    let mut notice: Option<String> = None;
    let engine = app.engine();
    let message = q.regular_message().cloned();
    let chat = message
        .as_ref()
        .map(|m| m.chat.id)
        .unwrap_or(ChatId(q.from.id.0 as i64));
    let intent = match parsed.clone() {
        None => {
            notice = Some(stale_notice(lang));
            "stale_button"
        }
        Some(Callback::Browse(filter)) if !keyboards::offered(&engine, &filter) => {
            notice = Some(stale_notice(lang));
            "stale_button"
        }
        Some(Callback::Browse(filter)) => {
            let (html, kb) = if filter.level.is_some() {
                let answer = engine.answer_filter(filter, lang);
                (
                    render::html(&engine, &answer),
                    keyboards::browse(&engine, &filter, lang),
                )
            } else {
                (
                    render::escape_html(&keyboards::browse_title(&filter, lang)),
                    keyboards::browse(&engine, &filter, lang),
                )
            };
            show(&bot, &app, message.as_ref(), chat, html, Some(kb)).await;
            "browse"
        }
        Some(Callback::BrowseAll) => {
            let answer = engine.answer_filter(PrizeFilter::default(), lang);
            reply(&bot, &app, chat, render::html(&engine, &answer), None).await;
            "browse_all"
        }
        Some(Callback::Tips(topic)) => {
            let answer = engine.answer_tips(topic.as_deref(), lang);
            let html = render::html(&engine, &answer);
            show(
                &bot,
                &app,
                message.as_ref(),
                chat,
                html,
                Some(keyboards::tip_topics(&engine, lang)),
            )
            .await;
            "tips"
        }
        Some(Callback::Entity(id)) if id < engine.entities().len() => {
            let private = message.as_ref().is_none_or(|m| m.chat.is_private());
            let key = ConversationKey {
                chat: chat.0,
                user: if private { 0 } else { q.from.id.0 },
            };
            let now = Instant::now();
            let mut ctx = app.conversations.take(key);
            let answer = engine.answer_entity(&mut ctx, id, lang, now);
            app.conversations.put(key, ctx, now);
            reply(&bot, &app, chat, render::html(&engine, &answer), None).await;
            "what_won"
        }
        Some(Callback::Entity(_)) => {
            notice = Some(stale_notice(lang));
            "stale_button"
        }
        Some(Callback::Announce { id, confirm }) => {
            notice = Some(
                subscriptions::on_announce_button(&bot, &app, &q, message.as_ref(), id, confirm)
                    .await,
            );
            "announce"
        }
    };
    // Every callback is answered, or the user's button keeps spinning.
    let id = q.id.clone();
    let answered = with_retry(app.retry, "answerCallbackQuery", || {
        let mut req = bot.answer_callback_query(id.clone());
        if let Some(text) = notice.clone() {
            req = req.text(text);
        }
        req.into_future()
    })
    .await;
    if let Err(e) = answered {
        log_send_failure(chat, &e);
    }
    tracing::info!(
        chat = chat.0,
        intent,
        latency_us = started.elapsed().as_micros() as u64,
        "handled button"
    );
    Ok(())
}

fn stale_notice(lang: Lang) -> String {
    match lang {
        Lang::Zh => "这个按钮已失效,请重新发送命令。".into(),
        Lang::En => "This button has expired; please send the command again.".into(),
    }
}

/// Strip our HTML (bold tags and the four escapes) to the text Telegram shows.
fn visible(html: &str) -> String {
    html.replace("<b>", "")
        .replace("</b>", "")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// Replace the text of the message a button belongs to, or send a new one.
/// A second tap on the same button changes nothing: no edit is sent then
/// (Telegram refuses edits that change nothing).
async fn show(
    bot: &Bot,
    app: &App,
    message: Option<&Message>,
    chat: ChatId,
    html: String,
    kb: Option<InlineKeyboardMarkup>,
) {
    if let Some(m) = message {
        let same_as_before =
            m.text() == Some(visible(&html).trim()) && m.reply_markup() == kb.as_ref();
        let content = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            html.hash(&mut h);
            serde_json::to_string(&kb).unwrap_or_default().hash(&mut h);
            h.finish()
        };
        if same_as_before || !app.note_shown(m.chat.id.0, m.id.0, content) {
            return;
        }
    }
    if let Some(m) = message
        && html.encode_utf16().count() <= super::send::MAX_MESSAGE_UNITS
    {
        let result = with_retry(app.retry, "editMessageText", || {
            let mut req = bot
                .edit_message_text(m.chat.id, m.id, html.clone())
                .parse_mode(ParseMode::Html);
            if let Some(kb) = kb.clone() {
                req = req.reply_markup(kb);
            }
            req.into_future()
        })
        .await;
        match result {
            Ok(_) => return,
            Err(SendFailure::Failed(e)) if e.contains("not modified") => return,
            Err(e) => {
                app.forget_shown(m.chat.id.0, m.id.0);
                log_send_failure(chat, &e)
            }
        }
        return;
    }
    reply(bot, app, chat, html, kb).await;
}

pub async fn on_inline(bot: Bot, q: InlineQuery, app: Arc<App>) -> HandlerResult {
    let started = Instant::now();
    let engine = app.engine();
    let lang = Lang::from_code(q.from.language_code.as_deref());
    let query = q.query.trim();
    let question = if query.is_empty() { "/awards" } else { query };
    let mut ctx = crate::engine::Context::default();
    let answer = engine.answer(&mut ctx, question, lang, started);
    let html = render::html(&engine, &answer);
    // Inline results must fit one message: keep whole lines.
    let html = super::send::split_message(&html, super::send::MAX_MESSAGE_UNITS)
        .into_iter()
        .next()
        .unwrap_or_default();
    let title: String = match (&answer.reply, answer.lang) {
        (Reply::Fallback, Lang::Zh) => "没有找到答案,点此查看提问示例".into(),
        (Reply::Fallback, Lang::En) => "No answer; tap for example questions".into(),
        _ => render::summary(&engine, &answer).chars().take(60).collect(),
    };
    let description = render::summary(&engine, &answer);
    let results: Vec<InlineQueryResult> = if html.is_empty() {
        Vec::new()
    } else {
        let article = InlineQueryResultArticle::new(
            "answer",
            title,
            InputMessageContent::Text(
                InputMessageContentText::new(html).parse_mode(ParseMode::Html),
            ),
        )
        .description(description);
        vec![article.into()]
    };
    let id = q.id.clone();
    let sent = with_retry(app.retry, "answerInlineQuery", || {
        bot.answer_inline_query(id.clone(), results.clone())
            .cache_time(60)
            .into_future()
    })
    .await;
    if let Err(e) = sent {
        tracing::warn!(error = ?e, "inline answer failed");
    }
    let intent = if matches!(answer.intent, Intent::Fallback) {
        "fallback"
    } else {
        answer.intent.as_str()
    };
    tracing::info!(
        user = q.from.id.0,
        intent,
        latency_us = started.elapsed().as_micros() as u64,
        "handled inline query"
    );
    Ok(())
}
