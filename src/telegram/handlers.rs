//! Update handlers: parse the update, ask the engine, render, send. No
//! matching logic lives here.

use super::App;
use super::commands::Command;
use super::conversations::ConversationKey;
use super::keyboards::{self, Callback};
use super::send::{Destination, SendFailure, send_html, with_retry};
use super::{sharing, subscriptions};
use crate::card;
use crate::engine::{Answer, Intent, Lang, PrizeFilter, Reply};
use crate::render;
use std::sync::Arc;
use std::time::Instant;
use teloxide::prelude::*;
use teloxide::types::{
    InlineKeyboardMarkup, InlineQueryResult, InlineQueryResultArticle, InputMessageContent,
    InputMessageContentText, MaybeInaccessibleMessage, Me, ParseMode,
};
use teloxide::utils::command::BotCommands;

pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;
pub type HandlerResult = Result<(), HandlerError>;

/// Who sent a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    User(UserId),
    /// An anonymous admin of the group the message is in: Telegram shows
    /// the group as the sender (`sender_chat`, with `from` = the
    /// GroupAnonymousBot). Only admins can post as the group, so this
    /// sender has the group's admin rights; which admin it is, nobody knows.
    AnonymousAdmin(ChatId),
    /// Somebody posting as one of their channels: no rights in the group.
    Channel(ChatId),
}

impl Sender {
    /// Who is counted for flood protection: a user id, or a chat id.
    pub fn flood_key(self) -> i64 {
        match self {
            Sender::User(u) => u.0 as i64,
            Sender::AnonymousAdmin(c) | Sender::Channel(c) => c.0,
        }
    }
}

/// A message meant for the bot, with the bot's @name taken out.
#[derive(Debug, Clone)]
pub struct Addressed {
    pub text: String,
    pub sender: Sender,
    pub lang: Option<Lang>,
    pub key: ConversationKey,
}

impl Addressed {
    /// Who is counted for flood protection.
    pub fn flood_key(&self) -> i64 {
        self.sender.flood_key()
    }
}

/// Who sent `msg`, if it is somebody the bot talks to (not another bot, not
/// a channel post forwarded into its discussion group).
fn sender_of(msg: &Message) -> Option<Sender> {
    match (msg.sender_chat.as_ref(), msg.from.as_ref()) {
        (Some(c), _) if c.id == msg.chat.id => Some(Sender::AnonymousAdmin(c.id)),
        (Some(_), _) if msg.is_automatic_forward() => None,
        (Some(c), _) => Some(Sender::Channel(c.id)),
        (None, Some(u)) if !u.is_bot => Some(Sender::User(u.id)),
        _ => None,
    }
}

/// In private chats every text; in groups only commands for us, mentions of
/// us and replies to our messages. Everything else: `None` (stay quiet).
pub fn addressed(msg: &Message, me: &Me) -> Option<Addressed> {
    let text = msg.text()?.trim();
    let sender = sender_of(msg)?;
    let lang = match sender {
        Sender::User(_) => msg
            .from
            .as_ref()
            .and_then(|u| Lang::from_code(u.language_code.as_deref())),
        _ => None,
    };
    let private = msg.chat.is_private();
    let key = ConversationKey {
        chat: msg.chat.id.0,
        // In groups, one conversation per sender (a chat sender's id is
        // negative: as u64 it cannot meet a user id).
        user: if private {
            0
        } else {
            sender.flood_key() as u64
        },
    };
    let make = |t: String| Addressed {
        text: t,
        sender,
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
    // ASCII lower-casing keeps byte offsets (full lower-casing does not:
    // 'Ⱥ' is 2 bytes, 'ⱥ' 3); the username is ASCII.
    let lower = text.to_ascii_lowercase();
    let mention_lower = mention.to_ascii_lowercase();
    if let Some(pos) = lower.find(&mention_lower) {
        let stripped = format!("{}{}", &text[..pos], &text[pos + mention.len()..]);
        return Some(make(stripped.trim().to_string()));
    }
    let replied_to_us = msg
        .reply_to_message()
        .and_then(|r| r.from.as_ref())
        .is_some_and(|u| u.id == me.id);
    replied_to_us.then(|| make(text.to_string()))
}

/// Keyboard that goes with an answer, if any. `share`: the bot has inline
/// mode (the share button needs it).
fn keyboard_for(app: &App, answer: &Answer, share: bool) -> Option<InlineKeyboardMarkup> {
    let engine = app.engine();
    match &answer.reply {
        Reply::Winners { filter, .. } if filter.is_empty() => Some(keyboards::browse(
            &engine,
            &PrizeFilter::default(),
            answer.lang,
        )),
        Reply::Tips { topic, .. } => Some(keyboards::tips(
            &engine,
            topic.as_deref(),
            answer.lang,
            share,
        )),
        Reply::Ambiguous { options, .. } => Some(keyboards::readings(&engine, options)),
        _ => None,
    }
}

pub async fn on_message(bot: Bot, msg: Message, me: Me, app: Arc<App>) -> HandlerResult {
    let Some(a) = addressed(&msg, &me) else {
        return Ok(());
    };
    let started = Instant::now();
    let chat = msg.chat.id;
    // Flooding was counted on arrival; this message is the one that crossed
    // the limit.
    if app.flood.take_notice(chat.0, msg.id.0) {
        let text = match a.lang {
            Some(Lang::En) => {
                "You are sending messages too fast. Please wait a little; I will answer again shortly."
            }
            _ => "您发送得太快了,请稍等片刻再问,我稍后会继续回答。",
        };
        reply(
            &bot,
            &app,
            Destination::answer_to(&msg),
            text.to_string(),
            None,
        )
        .await;
        return Ok(());
    }

    // Commands that act (subscriptions, announcements) rather than answer.
    let command = Command::parse(&a.text, me.username()).ok();
    let intent = match command {
        Some(Command::Subscribe) => subscriptions::subscribe(&bot, &app, &msg, &a).await,
        Some(Command::Unsubscribe) => subscriptions::unsubscribe(&bot, &app, &msg, &a).await,
        Some(Command::Status) => subscriptions::status(&bot, &app, &msg, &a).await,
        Some(Command::Announce(_)) => subscriptions::announce(&bot, &app, &msg, &a, &me).await,
        _ => answer_text(&bot, &app, &msg, &a, &me).await,
    };
    tracing::info!(
        chat = chat.0,
        intent,
        latency_us = started.elapsed().as_micros() as u64,
        "handled message"
    );
    crate::metrics::metrics().answered(intent, started.elapsed());
    Ok(())
}

/// Free text (and the answering commands): the engine with this chat's context.
async fn answer_text(bot: &Bot, app: &App, msg: &Message, a: &Addressed, me: &Me) -> &'static str {
    let engine = app.engine();
    let now = Instant::now();
    let mut ctx = app.take_context(&engine, a.key).await;
    let answer = engine.answer(&mut ctx, &a.text, a.lang, now);
    app.keep_context(&engine, a.key, ctx, now).await;
    match answer.reply {
        Reply::Subscribe => return subscriptions::subscribe(bot, app, msg, a).await,
        Reply::Unsubscribe => return subscriptions::unsubscribe(bot, app, msg, a).await,
        _ => {}
    }
    let html = render::html(&engine, &answer);
    let keyboard = keyboard_for(app, &answer, me.supports_inline_queries);
    let mut to = Destination::answer_to(msg);
    if !msg.chat.is_private() {
        to = to.quoting(msg.id);
    }
    if let Err(e) = send_html(bot, &app.out, to, &html, keyboard).await {
        log_send_failure(app, msg.chat.id, &e);
    }
    answer.intent.as_str()
}

/// Send a reply; failures are logged, never fatal.
pub async fn reply(
    bot: &Bot,
    app: &App,
    to: Destination,
    html: String,
    keyboard: Option<InlineKeyboardMarkup>,
) {
    if let Err(e) = send_html(bot, &app.out, to, &html, keyboard).await {
        log_send_failure(app, to.chat, &e);
    }
}

pub fn log_send_failure(app: &App, chat: ChatId, e: &SendFailure) {
    match e {
        SendFailure::Stopping => {
            app.out.shutdown.count_dropped();
            tracing::warn!(chat = chat.0, "stopping: reply dropped")
        }
        SendFailure::Gone(err) => {
            tracing::info!(chat = chat.0, error = %err, "chat is gone; reply dropped")
        }
        SendFailure::Failed(err) | SendFailure::BadFile(err) => {
            tracing::error!(chat = chat.0, error = %err, "reply could not be sent")
        }
    }
}

/// Where a pressed button is.
enum Place {
    /// Under one of our messages (its text can be replaced).
    Message(Box<Message>),
    /// Under a message too old to be shown to us: its chat is known.
    Chat(ChatId),
    /// Under a message sent in inline mode, in a chat we may not be in:
    /// only that message can be edited (by `inline_message_id`). Nothing
    /// goes to the presser's private chat, which may not exist.
    Inline(String),
    /// Nowhere we can answer except the button's own notice.
    Nowhere,
}

impl Place {
    fn of(q: &CallbackQuery) -> Place {
        match (&q.message, &q.inline_message_id) {
            (Some(MaybeInaccessibleMessage::Regular(m)), _) => Place::Message(m.clone()),
            (Some(m), _) => Place::Chat(m.chat().id),
            (None, Some(id)) => Place::Inline(id.clone()),
            (None, None) => Place::Nowhere,
        }
    }

    fn chat(&self) -> Option<ChatId> {
        match self {
            Place::Message(m) => Some(m.chat.id),
            Place::Chat(c) => Some(*c),
            Place::Inline(_) | Place::Nowhere => None,
        }
    }

    fn message(&self) -> Option<&Message> {
        match self {
            Place::Message(m) => Some(m),
            _ => None,
        }
    }

    /// Where a new message about this button goes (its chat and topic).
    fn destination(&self) -> Option<Destination> {
        match self {
            Place::Message(m) => Some(Destination::answer_to(m)),
            Place::Chat(c) => Some(Destination::chat(*c)),
            Place::Inline(_) | Place::Nowhere => None,
        }
    }
}

pub async fn on_callback(bot: Bot, q: CallbackQuery, me: Me, app: Arc<App>) -> HandlerResult {
    let started = Instant::now();
    let lang = Lang::from_code(q.from.language_code.as_deref()).unwrap_or_default();
    let parsed = q.data.as_deref().and_then(Callback::parse);
    let mut notice: Option<String> = None;
    let engine = app.engine();
    let place = Place::of(&q);
    let intent = match parsed {
        None => {
            notice = Some(stale_notice(lang));
            "stale_button"
        }
        Some(_) if matches!(place, Place::Nowhere) => {
            notice = Some(stale_notice(lang));
            "stale_button"
        }
        // A prize the data no longer has.
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
            show(&bot, &app, &place, html, Some(kb)).await;
            "browse"
        }
        Some(Callback::BrowseAll) => {
            let answer = engine.answer_filter(PrizeFilter::default(), lang);
            answer_at(&bot, &app, &place, render::html(&engine, &answer)).await;
            "browse_all"
        }
        Some(Callback::Tips(topic)) => {
            let answer = engine.answer_tips(topic.as_deref(), lang);
            let html = render::html(&engine, &answer);
            let kb = keyboards::tips(&engine, topic.as_deref(), lang, me.supports_inline_queries);
            show(&bot, &app, &place, html, Some(kb)).await;
            "tips"
        }
        // A topic the data no longer has, or a button under an inline-mode
        // message (no chat to send a picture to).
        Some(Callback::Picture { topic, .. })
            if place.destination().is_none()
                || topic.as_deref().is_some_and(|t| {
                    !card::topic_ids(engine.knowledge()).iter().any(|x| x == t)
                }) =>
        {
            notice = Some(stale_notice(lang));
            "stale_button"
        }
        Some(Callback::Picture { topic, lang }) => match place.destination() {
            Some(to) => sharing::send_picture(&bot, &app, me.id, to, topic.as_deref(), lang).await,
            None => "stale_button",
        },
        Some(Callback::Entity(key)) => match engine.entity_by_key(&key) {
            Some(id) => {
                let now = Instant::now();
                let answer = match place.chat() {
                    Some(chat) => {
                        let key = ConversationKey {
                            chat: chat.0,
                            user: if chat.is_user() { 0 } else { q.from.id.0 },
                        };
                        let mut ctx = app.take_context(&engine, key).await;
                        let answer = engine.answer_entity(&mut ctx, id, lang, now);
                        app.keep_context(&engine, key, ctx, now).await;
                        answer
                    }
                    // Inline mode: no conversation to continue.
                    None => {
                        let mut ctx = crate::engine::Context::default();
                        engine.answer_entity(&mut ctx, id, lang, now)
                    }
                };
                answer_at(&bot, &app, &place, render::html(&engine, &answer)).await;
                "what_won"
            }
            // That name is not in the data any more (reloaded meanwhile).
            None => {
                notice = Some(stale_notice(lang));
                "stale_button"
            }
        },
        Some(Callback::Announce { id, confirm }) => {
            notice = Some(
                subscriptions::on_announce_button(&bot, &app, &q, place.message(), id, confirm)
                    .await,
            );
            "announce"
        }
    };
    // Every callback is answered, or the user's button keeps spinning.
    let chat = place.chat().map_or(0, |c| c.0);
    let id = q.id.clone();
    let answered = with_retry(&app.out, "answerCallbackQuery", || {
        let mut req = bot.answer_callback_query(id.clone());
        if let Some(text) = notice.clone() {
            req = req.text(text);
        }
        req.into_future()
    })
    .await;
    if let Err(e) = answered {
        log_send_failure(&app, ChatId(chat), &e);
    }
    tracing::info!(
        chat,
        intent,
        latency_us = started.elapsed().as_micros() as u64,
        "handled button"
    );
    crate::metrics::metrics().answered(intent, started.elapsed());
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

/// An answer to a button: a new message in the button's chat (and topic);
/// under an inline-mode message, that message becomes the answer.
async fn answer_at(bot: &Bot, app: &App, place: &Place, html: String) {
    match place.destination() {
        Some(to) => reply(bot, app, to, html, None).await,
        None => show(bot, app, place, html, None).await,
    }
}

/// Replace the text of the message a button belongs to, or send a new one.
/// A second tap on the same button changes nothing: no edit is sent then
/// (Telegram refuses edits that change nothing).
async fn show(bot: &Bot, app: &App, place: &Place, html: String, kb: Option<InlineKeyboardMarkup>) {
    match place {
        Place::Message(m) => {
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
            if html.encode_utf16().count() > super::send::MAX_MESSAGE_UNITS {
                // Too long to replace the text: a new message (split).
                reply(bot, app, Destination::answer_to(m), html, kb).await;
                return;
            }
            let result = with_retry(&app.out, "editMessageText", || {
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
                Ok(_) => {}
                Err(SendFailure::Failed(e)) if e.contains("not modified") => {}
                Err(e) => {
                    app.forget_shown(m.chat.id.0, m.id.0);
                    log_send_failure(app, m.chat.id, &e)
                }
            }
        }
        Place::Chat(chat) => reply(bot, app, Destination::chat(*chat), html, kb).await,
        Place::Inline(id) => {
            // One message only: whole lines up to Telegram's limit.
            let html = super::send::split_message(&html, super::send::MAX_MESSAGE_UNITS)
                .into_iter()
                .next()
                .unwrap_or_default();
            let result = with_retry(&app.out, "editMessageText", || {
                let mut req = bot
                    .edit_message_text_inline(id.clone(), html.clone())
                    .parse_mode(ParseMode::Html);
                if let Some(kb) = kb.clone() {
                    req = req.reply_markup(kb);
                }
                req.into_future()
            })
            .await;
            match result {
                Ok(_) => {}
                Err(SendFailure::Failed(e)) if e.contains("not modified") => {}
                Err(e) => log_send_failure(app, ChatId(0), &e),
            }
        }
        Place::Nowhere => {}
    }
}

pub async fn on_inline(bot: Bot, q: InlineQuery, me: Me, app: Arc<App>) -> HandlerResult {
    let started = Instant::now();
    let engine = app.engine();
    let lang = Lang::from_code(q.from.language_code.as_deref());
    let query = q.query.trim();
    // `tips 验证码`, as the share button writes it: the tips to pass on.
    if let Some(topic) = keyboards::parse_share_query(engine.knowledge(), query) {
        let lang = lang.unwrap_or_default();
        let results = sharing::inline_tips(&app, me.id, topic.as_deref(), lang).await;
        let count = results.len();
        answer_inline(&bot, &app, &q, results).await;
        tracing::info!(
            user = q.from.id.0,
            intent = "share_tips",
            results = count,
            latency_us = started.elapsed().as_micros() as u64,
            "handled inline query"
        );
        return Ok(());
    }
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
    answer_inline(&bot, &app, &q, results).await;
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
    crate::metrics::metrics().answered(intent, started.elapsed());
    Ok(())
}

/// Answer an inline query; a failure is logged (the user just sees no results).
async fn answer_inline(bot: &Bot, app: &App, q: &InlineQuery, results: Vec<InlineQueryResult>) {
    let id = q.id.clone();
    let sent = with_retry(&app.out, "answerInlineQuery", || {
        bot.answer_inline_query(id.clone(), results.clone())
            // Short: a picture uploaded meanwhile shows up soon.
            .cache_time(60)
            .into_future()
    })
    .await;
    if let Err(e) = sent {
        tracing::warn!(error = ?e, "inline answer failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn me() -> Me {
        serde_json::from_value(json!({
            "id": 4242, "is_bot": true, "first_name": "Bot", "username": "reportbot_test_bot",
            "can_join_groups": true, "can_read_all_group_messages": false,
            "supports_inline_queries": true, "can_connect_to_business": false,
            "has_main_web_app": false
        }))
        .unwrap()
    }

    fn group_message(text: &str, extra: serde_json::Value) -> Message {
        let mut m = json!({
            "message_id": 1, "date": 1,
            "chat": {"id": -1001, "type": "supergroup", "title": "G"},
            "from": {"id": 7, "is_bot": false, "first_name": "A"},
            "text": text,
        });
        for (k, v) in extra.as_object().unwrap() {
            m[k] = v.clone();
        }
        serde_json::from_str(&m.to_string()).unwrap()
    }

    #[test]
    fn senders() {
        let anon = json!({
            "from": {"id": 1087968824, "is_bot": true, "first_name": "Group", "username": "GroupAnonymousBot"},
            "sender_chat": {"id": -1001, "type": "supergroup", "title": "G"},
        });
        let a = addressed(&group_message("/winner 李彬", anon), &me()).unwrap();
        assert_eq!(a.sender, Sender::AnonymousAdmin(ChatId(-1001)));
        let channel = json!({
            "from": {"id": 136817688, "is_bot": true, "first_name": "Channel", "username": "Channel_Bot"},
            "sender_chat": {"id": -1002, "type": "channel", "title": "C"},
        });
        let a = addressed(&group_message("/winner 李彬", channel), &me()).unwrap();
        assert_eq!(a.sender, Sender::Channel(ChatId(-1002)));
        let bot = json!({"from": {"id": 99, "is_bot": true, "first_name": "Other"}});
        assert!(addressed(&group_message("/winner 李彬", bot), &me()).is_none());
        let a = addressed(&group_message("/winner 李彬", json!({})), &me()).unwrap();
        assert_eq!(a.sender, Sender::User(UserId(7)));
    }

    #[test]
    fn a_mention_after_letters_that_grow_when_lower_cased() {
        let m = group_message("ȺȺȺ @ReportBot_Test_Bot 李彬", json!({}));
        let a = addressed(&m, &me()).expect("addressed");
        assert_eq!(a.text, "ȺȺȺ  李彬");
    }
}
