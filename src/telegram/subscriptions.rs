//! Subscriptions, announcements and the background work that delivers them:
//! the Telegram side of `crate::store` and `crate::broadcast`.

use super::App;
use super::formatting::{self, FormatError};
use super::handlers::{Addressed, Sender, log_send_failure, reply};
use super::keyboards;
use super::send::{
    Destination, MAX_MESSAGE_UNITS, SendFailure, send_html, send_one_html, with_retry,
};
use crate::engine::Lang;
use crate::render::escape_html;
use crate::store::{
    AnnouncementId, AnnouncementState, ChatKind, Language, NewAnnouncement, NewSubscriber, Origin,
    Progress, ProgressMessage, Store, StoreError,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use teloxide::prelude::*;
use teloxide::types::{ChatKind as TgChatKind, Me, ParseMode, PublicChatKind};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Run a store call off the async threads.
pub(super) async fn blocking<T: Send + 'static>(
    store: &Arc<dyn Store>,
    f: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let store = Arc::clone(store);
    match tokio::task::spawn_blocking(move || f(store.as_ref())).await {
        Ok(r) => r,
        Err(e) => Err(StoreError::Database(Box::new(e))),
    }
}

fn t(lang: Lang, zh: &str, en: &str) -> String {
    match lang {
        Lang::Zh => zh.to_string(),
        Lang::En => en.to_string(),
    }
}

fn chat_kind(msg: &Message) -> ChatKind {
    match &msg.chat.kind {
        TgChatKind::Private(_) => ChatKind::Private,
        TgChatKind::Public(p) => match p.kind {
            PublicChatKind::Group => ChatKind::Group,
            PublicChatKind::Supergroup(_) => ChatKind::Supergroup,
            PublicChatKind::Channel(_) => ChatKind::Channel,
        },
    }
}

/// In groups only admins may change the subscription; in private chats the
/// user. An anonymous admin is an admin (only admins can post as the group).
async fn may_change(bot: &Bot, app: &App, msg: &Message, a: &Addressed) -> bool {
    if msg.chat.is_private() {
        return true;
    }
    let chat = msg.chat.id;
    let user = match a.sender {
        Sender::User(u) => u,
        Sender::AnonymousAdmin(group) => return group == chat,
        Sender::Channel(_) => return false,
    };
    match with_retry(&app.out, "getChatMember", || {
        bot.get_chat_member(chat, user).into_future()
    })
    .await
    {
        Ok(member) => member.is_privileged(),
        Err(e) => {
            log_send_failure(app, chat, &e);
            false
        }
    }
}

fn store_trouble(lang: Lang) -> String {
    t(
        lang,
        "抱歉,订阅服务暂时不可用,请稍后再试。",
        "Sorry, subscriptions are temporarily unavailable; please try again later.",
    )
}

/// Apply a subscription change (or read the status) and answer with the
/// text for "it changed / it was so" or "it did not / it was not" — only
/// after the store has committed.
async fn answer_with(
    bot: &Bot,
    app: &App,
    msg: &Message,
    lang: Lang,
    what: &'static str,
    change: impl FnOnce(&dyn Store) -> Result<bool, StoreError> + Send + 'static,
    [yes, no]: [(&str, &str); 2],
) -> &'static str {
    let text = match blocking(&app.store, change).await {
        Ok(true) => t(lang, yes.0, yes.1),
        Ok(false) => t(lang, no.0, no.1),
        Err(e) => {
            tracing::error!(error = %e, what, "subscription store failed");
            store_trouble(lang)
        }
    };
    reply(
        bot,
        app,
        Destination::answer_to(msg),
        escape_html(&text),
        None,
    )
    .await;
    what
}

/// In groups only admins may change the subscription: refuse politely.
async fn refused(bot: &Bot, app: &App, msg: &Message, a: &Addressed) -> bool {
    if may_change(bot, app, msg, a).await {
        return false;
    }
    let lang = a.lang.unwrap_or_default();
    let text = t(
        lang,
        "只有群管理员可以为本群订阅或取消订阅。",
        "Only group admins can change this group's subscription.",
    );
    reply(
        bot,
        app,
        Destination::answer_to(msg),
        escape_html(&text),
        None,
    )
    .await;
    true
}

pub async fn subscribe(bot: &Bot, app: &App, msg: &Message, a: &Addressed) -> &'static str {
    if refused(bot, app, msg, a).await {
        return "subscribe_refused";
    }
    let lang = a.lang.unwrap_or_default();
    let sub = NewSubscriber {
        chat_id: msg.chat.id.0,
        kind: chat_kind(msg),
        language: if lang == Lang::En {
            Language::En
        } else {
            Language::Zh
        },
    };
    answer_with(
        bot,
        app,
        msg,
        lang,
        "subscribe",
        move |s| s.subscribe(&sub),
        [
        (
            "✅ 已订阅。有新的大赛获奖公告时,我会发到这里。\n随时发送 /unsubscribe 取消,发送 /status 查看状态。",
            "✅ Subscribed. I will post new contest announcements here.\nSend /unsubscribe at any time to stop, /status to check.",
        ),
        (
            "您已经订阅了,无需重复订阅。有新的大赛公告时我会发给您;发送 /unsubscribe 可取消。",
            "You are already subscribed. Send /unsubscribe to stop.",
        ),
        ],
    )
    .await
}

pub async fn unsubscribe(bot: &Bot, app: &App, msg: &Message, a: &Addressed) -> &'static str {
    if refused(bot, app, msg, a).await {
        return "unsubscribe_refused";
    }
    let chat = msg.chat.id.0;
    answer_with(
        bot,
        app,
        msg,
        a.lang.unwrap_or_default(),
        "unsubscribe",
        move |s| s.unsubscribe(chat),
        [
            (
                "已取消订阅,不会再收到公告。想再订阅时发送 /subscribe。",
                "Unsubscribed: no more announcements. Send /subscribe to come back.",
            ),
            (
                "您目前没有订阅。发送 /subscribe 可订阅新大赛公告。",
                "You are not subscribed. Send /subscribe to get announcements.",
            ),
        ],
    )
    .await
}

pub async fn status(bot: &Bot, app: &App, msg: &Message, a: &Addressed) -> &'static str {
    let chat = msg.chat.id.0;
    answer_with(
        bot,
        app,
        msg,
        a.lang.unwrap_or_default(),
        "status",
        move |s| s.is_subscribed(chat),
        [
            (
                "状态:已订阅新大赛公告。发送 /unsubscribe 可取消。",
                "Status: subscribed to announcements. Send /unsubscribe to stop.",
            ),
            (
                "状态:未订阅。发送 /subscribe 订阅新大赛公告。",
                "Status: not subscribed. Send /subscribe to get announcements.",
            ),
        ],
    )
    .await
}

/// The text a plain announcement (the command line's) is sent as: the
/// words, escaped. Telegram counts the limit after parsing the HTML, so the
/// visible text is measured. (An admin's `/announce` keeps its formatting:
/// [`formatting`].)
pub fn announcement_html(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty".into());
    }
    let units = text.encode_utf16().count();
    if units > MAX_MESSAGE_UNITS {
        return Err(format!("{units} > {MAX_MESSAGE_UNITS}"));
    }
    Ok(escape_html(text))
}

/// `/announce text`: a draft and its preview with Confirm / Cancel. The
/// preview always goes to the admin's private chat — sent in a group, the
/// group only hears where to look (an unsent announcement is not for it).
pub async fn announce(bot: &Bot, app: &App, msg: &Message, a: &Addressed, me: &Me) -> &'static str {
    let lang = a.lang.unwrap_or_default();
    let here = Destination::answer_to(msg);
    let say = |zh: &str, en: &str| escape_html(&t(lang, zh, en));
    let admin = match a.sender {
        Sender::User(u) if app.is_admin(u) => u,
        Sender::AnonymousAdmin(_) => {
            let text = match lang {
                Lang::Zh => format!(
                    "匿名管理员无法发布公告:请用您自己的账号私聊我(https://t.me/{}),在私聊中发送 /announce。",
                    me.username()
                ),
                Lang::En => format!(
                    "Anonymous admins cannot send announcements: please open a private chat with me (https://t.me/{}) from your own account and send /announce there.",
                    me.username()
                ),
            };
            reply(bot, app, here, escape_html(&text), None).await;
            return "announce_refused";
        }
        _ => {
            let text = say(
                "抱歉,只有管理员可以发布公告。",
                "Sorry, only admins can send announcements.",
            );
            reply(bot, app, here, text, None).await;
            return "announce_refused";
        }
    };
    // The admin's bold, italic and links (message entities) kept, as HTML.
    let formatted = formatting::command_argument_html(
        msg.text().unwrap_or_default(),
        msg.entities().unwrap_or_default(),
    );
    let html = match formatted {
        Ok(h) => h,
        Err(FormatError::Empty) => {
            reply(
                bot,
                app,
                Destination::answer_to(msg),
                escape_html(&t(
                    lang,
                    "用法:/announce 公告内容",
                    "Usage: /announce text of the announcement",
                )),
                None,
            )
            .await;
            return "announce_usage";
        }
        Err(FormatError::TooLong { units }) => {
            let why = format!("{units} > {MAX_MESSAGE_UNITS}");
            let too_long = match lang {
                Lang::Zh => format!(
                    "公告太长,未发送:Telegram 每条消息最多 4096 个字符单位(现在 {why})。请缩短后再发。"
                ),
                Lang::En => format!(
                    "The announcement is too long and was not sent: Telegram allows 4096 units per message ({why}). Please shorten it."
                ),
            };
            reply(
                bot,
                app,
                Destination::answer_to(msg),
                escape_html(&too_long),
                None,
            )
            .await;
            return "announce_too_long";
        }
        Err(FormatError::Markup(e)) => {
            tracing::warn!(error = %e, "an announcement's formatting failed the check");
            let text = match lang {
                Lang::Zh => format!("公告的格式无法发送,未保存:{e}。请去掉这部分格式后再发。"),
                Lang::En => format!(
                    "The announcement's formatting cannot be sent, nothing was saved: {e}. Please remove that formatting and send it again."
                ),
            };
            reply(bot, app, here, escape_html(&text), None).await;
            return "announce_bad_format";
        }
    };
    let new = NewAnnouncement {
        text_html: html.clone(),
        created_by: Origin::Admin(admin.0 as i64),
        dedupe_key: None,
    };
    let created = blocking(&app.store, move |s| {
        Ok((s.create_announcement(&new)?, s.counts()?))
    })
    .await;
    let (created, counts) = match created {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "announcement draft failed");
            reply(
                bot,
                app,
                Destination::answer_to(msg),
                escape_html(&store_trouble(lang)),
                None,
            )
            .await;
            return "announce_failed";
        }
    };
    // Preview: exactly what subscribers will get, then the buttons.
    let head = match lang {
        Lang::Zh => format!(
            "<b>公告预览</b>(将发送给 {} 个订阅者,确认后开始):",
            counts.active
        ),
        Lang::En => format!(
            "<b>Preview</b> (goes to {} subscribers once confirmed):",
            counts.active
        ),
    };
    let keyboard = keyboards::announce(created.id.0, lang);
    let private = Destination::chat(ChatId(admin.0 as i64));
    let mut sent = send_html(bot, &app.out, private, &head, None).await;
    if sent.is_ok() {
        sent = send_one_html(bot, &app.out, private, &html, Some(keyboard))
            .await
            .map(|id| vec![id]);
    }
    let in_group = !msg.chat.is_private();
    match sent {
        Ok(_) if in_group => {
            let text = say(
                "公告预览已私信发给您,请在私聊中确认或取消。",
                "The preview is in our private chat: confirm or cancel it there.",
            );
            reply(bot, app, here, text, None).await;
        }
        Ok(_) => {}
        Err(e) => {
            log_send_failure(app, private.chat, &e);
            // Nobody can confirm a preview nobody saw.
            let id = created.id;
            if let Err(e) = blocking(&app.store, move |s| s.cancel(id)).await {
                tracing::error!(error = %e, "could not cancel an unseen announcement draft");
            }
            if in_group {
                let text = match lang {
                    Lang::Zh => format!(
                        "无法私信您公告预览:请先私聊我(https://t.me/{}),再在私聊中发送 /announce。",
                        me.username()
                    ),
                    Lang::En => format!(
                        "I cannot send you the preview privately: please open a private chat with me (https://t.me/{}) and send /announce there.",
                        me.username()
                    ),
                };
                reply(bot, app, here, escape_html(&text), None).await;
            }
            return "announce_failed";
        }
    }
    "announce_preview"
}

/// Confirm / Cancel pressed under a preview. Returns the button notice.
pub async fn on_announce_button(
    bot: &Bot,
    app: &App,
    q: &CallbackQuery,
    message: Option<&Message>,
    id: i64,
    confirm: bool,
) -> String {
    let lang = Lang::from_code(q.from.language_code.as_deref()).unwrap_or_default();
    if !app.is_admin(q.from.id) {
        return t(lang, "只有管理员可以操作。", "Only admins can do this.");
    }
    let id = AnnouncementId(id);
    if !confirm {
        return match blocking(&app.store, move |s| s.cancel(id)).await {
            Ok(_) => {
                if let Some(m) = message {
                    let _ = bot.edit_message_reply_markup(m.chat.id, m.id).await;
                }
                t(
                    lang,
                    "已取消,公告不会发送。",
                    "Cancelled; nothing will be sent.",
                )
            }
            Err(e) => format!("{e}"),
        };
    }
    let progress_at = message.map(|m| ProgressMessage {
        chat_id: m.chat.id.0,
        message_id: m.id.0,
    });
    let result = blocking(&app.store, move |s| {
        let c = s.confirm(id)?;
        if let Some(pm) = progress_at
            && c.newly_confirmed
        {
            s.set_progress_message(id, pm)?;
        }
        Ok(c)
    })
    .await;
    match result {
        Ok(c) if c.newly_confirmed => {
            if let Some(m) = message {
                let _ = bot.edit_message_reply_markup(m.chat.id, m.id).await;
                // The progress report is a reply under the preview.
                let text = progress_text(
                    lang,
                    &Progress {
                        total: c.deliveries,
                        pending: c.deliveries,
                        ..Progress::default()
                    },
                    None,
                    false,
                );
                if let Ok(ids) =
                    send_html(bot, &app.out, Destination::answer_to(m), &text, None).await
                    && let Some(first) = ids.first().copied()
                {
                    let pm = ProgressMessage {
                        chat_id: m.chat.id.0,
                        message_id: first.0,
                    };
                    let _ = blocking(&app.store, move |s| s.set_progress_message(id, pm)).await;
                }
            }
            match lang {
                Lang::Zh => format!("已确认,开始发送给 {} 个订阅者。", c.deliveries),
                Lang::En => format!("Confirmed: sending to {} subscribers.", c.deliveries),
            }
        }
        Ok(_) => t(lang, "这条公告已经确认过了。", "Already confirmed."),
        Err(StoreError::InvalidState { state, .. }) => {
            let (zh, en) = match state {
                AnnouncementState::Cancelled => ("已取消", "cancelled"),
                AnnouncementState::Done => ("已发送完毕", "already delivered"),
                AnnouncementState::Queued => ("正在发送", "being sent"),
                AnnouncementState::Draft => ("还是草稿", "a draft"),
            };
            match lang {
                Lang::Zh => format!("这条公告{zh},不能再确认。"),
                Lang::En => format!("This announcement is {en}; it cannot be confirmed."),
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "confirm failed");
            store_trouble(lang)
        }
    }
}

fn progress_text(lang: Lang, p: &Progress, eta: Option<Duration>, done: bool) -> String {
    let eta = eta.map(|d| d.as_secs()).unwrap_or(0);
    match (lang, done) {
        (Lang::Zh, false) => format!(
            "📤 <b>公告发送中</b>\n已发送 {} · 已屏蔽/退订 {} · 失败 {} · 剩余 {} / 共 {}\n预计还需 {} 秒",
            p.sent, p.blocked, p.failed, p.pending, p.total, eta
        ),
        (Lang::Zh, true) => format!(
            "✅ <b>公告发送完毕</b>\n共 {}:已发送 {} · 已屏蔽/退订 {} · 失败 {} · 取消 {}",
            p.total, p.sent, p.blocked, p.failed, p.cancelled
        ),
        (Lang::En, false) => format!(
            "📤 <b>Sending announcement</b>\nsent {} · blocked {} · failed {} · remaining {} of {}\nETA {} s",
            p.sent, p.blocked, p.failed, p.pending, p.total, eta
        ),
        (Lang::En, true) => format!(
            "✅ <b>Announcement delivered</b>\n{} in all: sent {} · blocked {} · failed {} · cancelled {}",
            p.total, p.sent, p.blocked, p.failed, p.cancelled
        ),
    }
}

/// Edits the admins' progress messages every couple of seconds, and posts
/// the final summary when an announcement is done.
async fn progress_reporter(bot: Bot, app: Arc<App>, mut stop: watch::Receiver<bool>) {
    // Announcement id → what its progress message shows now.
    let mut shown: HashMap<i64, String> = HashMap::new();
    // Announcements being watched (queued, with a progress message).
    let mut watched: HashMap<i64, ProgressMessage> = HashMap::new();
    let rate = app.settings.broadcast.rate_per_sec.max(0.1);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(app.settings.broadcast.progress_interval()) => {}
            _ = stop.changed() => return,
        }
        // With several instances, the poller edits; the others would only
        // repeat its edits against the admin chat's rate limit.
        if !app.is_poller() {
            continue;
        }
        let known: Vec<i64> = watched.keys().copied().collect();
        // The worker may finish an announcement between two looks: those
        // that left the queue get their final summary too.
        let rows = blocking(&app.store, move |s| {
            let mut out = Vec::new();
            let mut seen = Vec::new();
            for a in s.pending_announcements()? {
                if let Some(pm) = a.progress_message {
                    let done = s.complete_if_done(a.id)?;
                    seen.push(a.id.0);
                    out.push((a.id, pm, s.progress(a.id)?, done));
                }
            }
            for id in known.into_iter().filter(|id| !seen.contains(id)) {
                let id = AnnouncementId(id);
                if let Some(a) = s.announcement(id)?
                    && let Some(pm) = a.progress_message
                {
                    out.push((id, pm, s.progress(id)?, true));
                }
            }
            Ok(out)
        })
        .await;
        let Ok(rows) = rows else { continue };
        for (id, pm, progress, done) in rows {
            if done {
                watched.remove(&id.0);
            } else {
                watched.insert(id.0, pm);
            }
            let eta = Duration::from_secs_f64((progress.pending as f64 / rate).ceil());
            let text = progress_text(Lang::Zh, &progress, Some(eta), done);
            if shown.get(&id.0) == Some(&text) {
                continue;
            }
            let chat = ChatId(pm.chat_id);
            let msg_id = teloxide::types::MessageId(pm.message_id);
            let edit = with_retry(&app.out, "editMessageText", || {
                bot.edit_message_text(chat, msg_id, text.clone())
                    .parse_mode(ParseMode::Html)
                    .into_future()
            })
            .await;
            match edit {
                Ok(_) => {}
                Err(SendFailure::Failed(e)) if e.contains("not modified") => {}
                Err(e) => log_send_failure(&app, chat, &e),
            }
            if done {
                shown.remove(&id.0);
            } else {
                shown.insert(id.0, text);
            }
        }
    }
}

/// Start the delivery worker and the progress reporter.
pub fn spawn_background(
    bot: Bot,
    app: Arc<App>,
    stop: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    let sender = Arc::new(
        crate::broadcast::TelegramSender::new(bot.clone())
            .with_timeout(app.out.retry.attempt_timeout)
            .sharing_rate(app.out.pacer.overall()),
    );
    // Settings were validated at start-up, so this cannot fail; log if it does.
    match crate::broadcast::Broadcaster::new(
        Arc::clone(&app.store),
        sender,
        app.settings.broadcast.clone(),
    ) {
        Ok(worker) => {
            let worker_stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                worker.run(worker_stop).await;
            }));
        }
        Err(e) => tracing::error!(error = %e, "announcement delivery is not running"),
    }
    tasks.push(tokio::spawn(progress_reporter(bot, Arc::clone(&app), stop)));
    tasks
}

/// The bot was removed from a chat or blocked by a user: stop announcing there.
pub async fn on_member_update(
    app: Arc<App>,
    update: teloxide::types::ChatMemberUpdated,
) -> super::handlers::HandlerResult {
    let gone = matches!(
        update.new_chat_member.kind,
        teloxide::types::ChatMemberKind::Banned(_) | teloxide::types::ChatMemberKind::Left
    );
    if gone {
        let chat = update.chat.id.0;
        match blocking(&app.store, move |s| {
            s.mark_chat_blocked(chat, "bot removed or blocked")
        })
        .await
        {
            Ok(true) => tracing::info!(chat, "bot removed from chat; unsubscribed"),
            Ok(false) => {}
            Err(e) => tracing::error!(chat, error = %e, "could not record a removed chat"),
        }
    }
    Ok(())
}
