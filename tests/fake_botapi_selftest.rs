//! Proves the fake Bot API (tests/support/botapi.rs) against the real
//! teloxide 0.17 client: every answer must deserialise, every error must map
//! to the `RequestError` / `ApiError` variant real Telegram would produce.

mod support;

use std::sync::Once;
use std::time::{Duration, Instant};

use serde_json::json;
use support::botapi::*;
use support::html;
use teloxide::prelude::*;
use teloxide::types::{
    BotCommand, BotCommandScope, ChatMemberKind, InlineKeyboardButton, InlineKeyboardMarkup,
    InlineQueryResult, InlineQueryResultArticle, InputFile, InputMessageContent,
    InputMessageContentText, MessageEntityKind, ParseMode, ReplyParameters, UpdateKind,
};
use teloxide::{ApiError, RequestError};

const T: Duration = Duration::from_secs(10);

fn no_proxy() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: done once, before any reqwest client of this process reads it.
        unsafe {
            std::env::set_var("NO_PROXY", "127.0.0.1,localhost");
            std::env::set_var("no_proxy", "127.0.0.1,localhost");
        }
    });
}

fn bot_for(api: &FakeBotApi) -> Bot {
    no_proxy();
    Bot::new("123:TEST").set_api_url(api.url().parse().unwrap())
}

fn alice() -> UserSpec {
    UserSpec::new(1001, "Alice")
        .username("alice_w")
        .lang("zh-hans")
}

fn bob() -> UserSpec {
    UserSpec::new(1002, "Bob").lang("en")
}

#[tokio::test]
async fn get_me_and_housekeeping_methods() {
    let api = FakeBotApi::start().await;
    let bot = bot_for(&api);
    let me = bot.get_me().await.unwrap();
    assert_eq!(me.username(), BOT_USERNAME);
    assert_eq!(me.id.0, BOT_ID);
    assert!(me.supports_inline_queries);
    assert!(me.is_bot);

    bot.delete_webhook().await.unwrap();
    let info = bot.get_webhook_info().await.unwrap();
    assert!(info.url.is_none());
    bot.send_chat_action(ChatId(1001), teloxide::types::ChatAction::Typing)
        .await
        .unwrap();
    assert_eq!(api.chat_actions(), vec![(1001, "typing".to_string())]);

    assert_eq!(api.tokens(), vec!["123:TEST".to_string()]);
    let calls = api.calls();
    assert_eq!(calls[0].method, "getMe");
    assert!(calls.iter().all(|c| c.status == 200));
    assert_eq!(api.call_count("GETME"), 1);
    bot.close().await.unwrap();
    bot.log_out().await.unwrap();
    assert!(api.rejections().is_empty(), "{:?}", api.rejections());
    api.shutdown().await;
}

#[tokio::test]
async fn send_plain_and_html_messages() {
    let api = FakeBotApi::start().await;
    let bot = bot_for(&api);
    api.register_chat(&alice().private_chat(), Some(&alice()));

    let m = bot.send_message(ChatId(1001), "hello 世界").await.unwrap();
    assert_eq!(m.text(), Some("hello 世界"));
    assert_eq!(m.id.0, 1);
    assert!(m.chat.is_private());
    assert_eq!(m.chat.username(), Some("alice_w"));
    assert_eq!(m.from.as_ref().unwrap().id.0, BOT_ID);

    let kb = InlineKeyboardMarkup::new(vec![vec![
        InlineKeyboardButton::callback("一", "r:1"),
        InlineKeyboardButton::url("site", "https://example.com".parse().unwrap()),
    ]]);
    let html_text = "<b>报告</b> &amp; <i>x</i> <a href=\"https://example.com/a?b=1&amp;c=2\">link</a> \
                     <code>c</code> <pre><code class=\"language-rust\">fn f() {}</code></pre> \
                     <tg-spoiler>s</tg-spoiler> <blockquote expandable>q</blockquote> \
                     <tg-emoji emoji-id=\"5368324170671202286\">👍</tg-emoji>";
    let m2 = bot
        .send_message(ChatId(1001), html_text)
        .parse_mode(ParseMode::Html)
        .reply_markup(kb.clone())
        .await
        .unwrap();
    assert_eq!(m2.id.0, 2);
    assert!(m2.text().unwrap().starts_with("报告 & x link c fn f() {}"));
    let kinds: Vec<_> = m2
        .entities()
        .unwrap()
        .iter()
        .map(|e| e.kind.clone())
        .collect();
    assert!(kinds.contains(&MessageEntityKind::Bold));
    assert!(kinds.contains(&MessageEntityKind::Pre {
        language: Some("rust".into())
    }));
    assert!(kinds.contains(&MessageEntityKind::ExpandableBlockquote));
    assert!(kinds.contains(&MessageEntityKind::Spoiler));
    assert!(
        kinds
            .iter()
            .any(|k| matches!(k, MessageEntityKind::TextLink { url } if url.as_str() == "https://example.com/a?b=1&c=2"))
    );
    assert_eq!(m2.reply_markup(), Some(&kb));

    let sent = api.wait_for_messages(1001, 2, T).await;
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].text, html_text);
    assert_eq!(sent[1].parse_mode.as_deref(), Some("HTML"));
    assert_eq!(sent[1].callback_data(), vec!["r:1".to_string()]);
    assert!(sent[1].visible_text().starts_with("报告 & x"));
    assert_eq!(api.total_sent(), 2);

    // Group chat, reply keyboard is not echoed in the Message (only inline ones are).
    api.register_chat(&ChatSpec::group(-5, "Team"), None);
    let m3 = bot
        .send_message(ChatId(-5), "to group")
        .reply_markup(teloxide::types::KeyboardMarkup::new(vec![vec![
            teloxide::types::KeyboardButton::new("k"),
        ]]))
        .await
        .unwrap();
    assert!(m3.chat.is_group());
    assert_eq!(m3.chat.title(), Some("Team"));
    assert_eq!(m3.id.0, 1, "message ids are per chat");
    assert!(m3.reply_markup().is_none());
    assert!(api.sent_messages(-5)[0].reply_markup.is_some());
    assert!(api.rejections().is_empty(), "{:?}", api.rejections());
}

#[tokio::test]
async fn injected_messages_deserialise() {
    let api = FakeBotApi::start().await;
    let bot = bot_for(&api);
    let a = alice();
    let group = ChatSpec::group(-42, "Readers");
    let sgroup = ChatSpec::supergroup(-1001234567890, "Big readers");

    let m1 = api.send_text(
        &a.private_chat(),
        &a,
        "/start@reportbot_test_bot 😀 @someone 查询",
    );
    let m2 = api.send_text(&group, &bob(), "hi @reportbot_test_bot /help");
    let m3 = api.send_text(&sgroup, &bob(), "plain");
    assert_eq!((m1, m2, m3), (1, 1, 1));
    assert_eq!(api.pending_updates(), 3);

    let ups = bot.get_updates().await.unwrap();
    assert_eq!(ups.len(), 3);
    let UpdateKind::Message(msg) = &ups[0].kind else {
        panic!("{:?}", ups[0].kind)
    };
    assert!(msg.chat.is_private());
    assert_eq!(msg.chat.id, ChatId(1001));
    let from = msg.from.as_ref().unwrap();
    assert_eq!(from.language_code.as_deref(), Some("zh-hans"));
    assert_eq!(from.username.as_deref(), Some("alice_w"));
    let ents = msg.entities().unwrap();
    assert_eq!(ents[0].kind, MessageEntityKind::BotCommand);
    assert_eq!((ents[0].offset, ents[0].length), (0, 25));
    assert_eq!(ents[1].kind, MessageEntityKind::Mention);
    // "/start@reportbot_test_bot 😀 " is 26 + 2 (surrogate pair) + 1 UTF-16 units
    assert_eq!((ents[1].offset, ents[1].length), (29, 8));
    let parsed = msg.parse_entities().unwrap();
    assert_eq!(parsed[1].text(), "@someone");

    let UpdateKind::Message(g) = &ups[1].kind else {
        panic!()
    };
    assert!(g.chat.is_group());
    assert_eq!(g.chat.title(), Some("Readers"));
    let ge = g.parse_entities().unwrap();
    assert_eq!(ge[0].text(), "@reportbot_test_bot");
    assert_eq!(ge[1].text(), "/help");
    assert_eq!(*ge[1].kind(), MessageEntityKind::BotCommand);

    let UpdateKind::Message(s) = &ups[2].kind else {
        panic!()
    };
    assert!(s.chat.is_supergroup());
    assert!(s.entities().is_none_or(|e| e.is_empty()));
    assert!(ups[0].id.0 < ups[1].id.0 && ups[1].id.0 < ups[2].id.0);

    // Offset confirmation.
    let next = ups[2].id.0 as i32 + 1;
    let ups2 = bot.get_updates().offset(next).await.unwrap();
    assert!(ups2.is_empty());
    assert_eq!(api.confirmed_offset(), next as i64);
    assert_eq!(api.pending_updates(), 0);

    // Partial confirmation keeps the later updates.
    api.send_text(&group, &bob(), "one");
    let u2 = api.send_text(&group, &bob(), "two");
    assert_eq!(u2, 3);
    let ups3 = bot.get_updates().offset(next).limit(1).await.unwrap();
    assert_eq!(ups3.len(), 1);
    let ups4 = bot
        .get_updates()
        .offset(ups3[0].id.0 as i32 + 1)
        .await
        .unwrap();
    assert_eq!(ups4.len(), 1);
    let UpdateKind::Message(two) = &ups4[0].kind else {
        panic!()
    };
    assert_eq!(two.text(), Some("two"));
    assert_eq!(api.pending_updates(), 1);
    assert!(api.rejections().is_empty());
}

#[tokio::test]
async fn reply_callback_and_edits() {
    let api = FakeBotApi::start().await;
    let bot = bot_for(&api);
    let a = alice();
    let chat = a.private_chat();
    let first = api.send_text(&chat, &a, "/start");

    let kb =
        InlineKeyboardMarkup::new(vec![vec![InlineKeyboardButton::callback("Next", "page:2")]]);
    let sent = bot
        .send_message(ChatId(1001), "page 1")
        .reply_parameters(ReplyParameters::new(teloxide::types::MessageId(first)))
        .reply_markup(kb)
        .await
        .unwrap();
    assert_eq!(sent.id.0, 2);
    assert_eq!(sent.reply_to_message().unwrap().text(), Some("/start"));
    // Replying to a message that does not exist is refused like Telegram does.
    let err = bot
        .send_message(ChatId(1001), "x")
        .reply_parameters(ReplyParameters::new(teloxide::types::MessageId(999)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, RequestError::Api(ApiError::MessageToReplyNotFound)),
        "{err:?}"
    );
    assert_eq!(api.rejections().len(), 1);

    // User replies to the bot's message.
    api.send_reply(&chat, &a, "more please", sent.id.0);
    // User presses the button.
    let qid = api.press_button(&chat, &a, sent.id.0, "page:2");
    let ups = bot.get_updates().await.unwrap();
    assert_eq!(ups.len(), 3);
    let UpdateKind::Message(reply) = &ups[1].kind else {
        panic!()
    };
    let orig = reply.reply_to_message().unwrap();
    assert_eq!(orig.from.as_ref().unwrap().id.0, BOT_ID);
    assert_eq!(orig.text(), Some("page 1"));
    let UpdateKind::CallbackQuery(q) = &ups[2].kind else {
        panic!("{:?}", ups[2].kind)
    };
    assert_eq!(q.id.0, qid);
    assert_eq!(q.data.as_deref(), Some("page:2"));
    assert_eq!(q.from.language_code.as_deref(), Some("zh-hans"));
    assert!(!q.chat_instance.is_empty());
    let qm = q.regular_message().unwrap();
    assert_eq!(qm.id, sent.id);
    assert!(qm.reply_markup().is_some());

    bot.answer_callback_query(q.id.clone())
        .text("ok")
        .await
        .unwrap();
    let answers = api.wait_for_callback_answers(1, T).await;
    assert_eq!(answers[0].callback_query_id, qid);
    assert_eq!(answers[0].text.as_deref(), Some("ok"));
    // A second answer to the same query is refused.
    assert!(bot.answer_callback_query(q.id.clone()).await.is_err());
    assert_eq!(api.rejections().len(), 2);

    // Edit text (keyboard kept only if sent again).
    let kb2 =
        InlineKeyboardMarkup::new(vec![vec![InlineKeyboardButton::callback("Back", "page:1")]]);
    let edited = bot
        .edit_message_text(ChatId(1001), sent.id, "<b>page 2</b>")
        .parse_mode(ParseMode::Html)
        .reply_markup(kb2.clone())
        .await
        .unwrap();
    assert_eq!(edited.text(), Some("page 2"));
    assert!(edited.edit_date().is_some());
    assert_eq!(edited.reply_markup(), Some(&kb2));
    let edits = api.wait_for_edits(1001, 1, T).await;
    assert_eq!(edits[0].text.as_deref(), Some("<b>page 2</b>"));
    assert_eq!(
        edits[0].buttons(),
        vec![("Back".to_string(), Some("page:1".to_string()))]
    );

    // Same content again: "message is not modified".
    let err = bot
        .edit_message_text(ChatId(1001), sent.id, "<b>page 2</b>")
        .parse_mode(ParseMode::Html)
        .reply_markup(kb2.clone())
        .await
        .unwrap_err();
    assert!(
        matches!(err, RequestError::Api(ApiError::MessageNotModified)),
        "{err:?}"
    );
    let m = bot
        .edit_message_reply_markup(ChatId(1001), sent.id)
        .await
        .unwrap();
    assert!(m.reply_markup().is_none());
    let err = bot
        .edit_message_text(ChatId(1001), teloxide::types::MessageId(77), "x")
        .await
        .unwrap_err();
    assert!(
        matches!(err, RequestError::Api(ApiError::MessageToEditNotFound)),
        "{err:?}"
    );
    bot.delete_message(ChatId(1001), sent.id).await.unwrap();
    assert_eq!(api.deleted_messages(), vec![(1001, sent.id.0)]);
}

#[tokio::test]
async fn inline_queries_and_chat_members() {
    let api = FakeBotApi::start().await;
    let bot = bot_for(&api);
    let qid = api.inline_query(&bob(), "gdp 2024");
    let blocked_upd = api.user_blocks_bot(&alice());
    api.edit_user_text(&bob().private_chat(), &bob(), 1, "edited");
    let ups = bot.get_updates().await.unwrap();
    assert_eq!(ups.len(), 3);
    let UpdateKind::InlineQuery(q) = &ups[0].kind else {
        panic!("{:?}", ups[0].kind)
    };
    assert_eq!(q.id.0, qid);
    assert_eq!(q.query, "gdp 2024");
    assert_eq!(q.from.language_code.as_deref(), Some("en"));
    let UpdateKind::MyChatMember(cm) = &ups[1].kind else {
        panic!("{:?}", ups[1].kind)
    };
    assert_eq!(ups[1].id.0 as i64, blocked_upd);
    assert!(cm.new_chat_member.kind.is_banned());
    assert_eq!(cm.new_chat_member.user.id.0, BOT_ID);
    assert!(
        matches!(ups[2].kind, UpdateKind::EditedMessage(_)),
        "{:?}",
        ups[2].kind
    );

    let article = InlineQueryResult::Article(InlineQueryResultArticle::new(
        "r1",
        "GDP report",
        InputMessageContent::Text(
            InputMessageContentText::new("<b>GDP</b> grew").parse_mode(ParseMode::Html),
        ),
    ));
    bot.answer_inline_query(q.id.clone(), vec![article])
        .cache_time(0)
        .await
        .unwrap();
    let answers = api.wait_for_inline_answers(1, T).await;
    assert_eq!(answers[0].inline_query_id, qid);
    assert_eq!(answers[0].results[0]["id"], json!("r1"));
    assert_eq!(answers[0].cache_time, Some(0));

    // Bad HTML inside an inline result is refused too.
    let qid2 = api.inline_query(&bob(), "x");
    let bad = InlineQueryResult::Article(InlineQueryResultArticle::new(
        "r1",
        "t",
        InputMessageContent::Text(
            InputMessageContentText::new("a < b").parse_mode(ParseMode::Html),
        ),
    ));
    let err = bot
        .answer_inline_query(teloxide::types::InlineQueryId(qid2), vec![bad])
        .await
        .unwrap_err();
    assert!(
        matches!(err, RequestError::Api(ApiError::CantParseEntities(_))),
        "{err:?}"
    );

    // Chat members.
    api.set_chat_admin(-42, 1002);
    api.set_chat_creator(-42, 1003);
    api.register_chat(&ChatSpec::group(-42, "Readers"), None);
    let m = bot
        .get_chat_member(ChatId(-42), UserId(1002))
        .await
        .unwrap();
    assert!(matches!(m.kind, ChatMemberKind::Administrator(_)));
    let m = bot
        .get_chat_member(ChatId(-42), UserId(1003))
        .await
        .unwrap();
    assert!(m.kind.is_owner());
    let m = bot
        .get_chat_member(ChatId(-42), UserId(1001))
        .await
        .unwrap();
    assert!(m.kind.is_member());
    let admins = bot.get_chat_administrators(ChatId(-42)).await.unwrap();
    assert_eq!(admins.len(), 2);
    let chat = bot.get_chat(ChatId(-42)).await.unwrap();
    assert_eq!(chat.title(), Some("Readers"));
    let chat = bot.get_chat(ChatId(1002)).await.unwrap();
    assert_eq!(chat.first_name(), Some("Bob"));
    assert_eq!(api.rejections().len(), 1);
}

#[tokio::test]
async fn commands_are_recorded_per_scope_and_language() {
    let api = FakeBotApi::start().await;
    let bot = bot_for(&api);
    bot.set_my_commands(vec![
        BotCommand::new("start", "Start"),
        BotCommand::new("report", "Find a report"),
    ])
    .await
    .unwrap();
    bot.set_my_commands(vec![BotCommand::new("report", "查找报告")])
        .language_code("zh")
        .scope(BotCommandScope::AllPrivateChats)
        .await
        .unwrap();
    let sets = api.my_commands();
    assert_eq!(sets.len(), 2);
    assert_eq!(
        api.commands_for("default", ""),
        Some(vec![
            ("start".to_string(), "Start".to_string()),
            ("report".to_string(), "Find a report".to_string())
        ])
    );
    assert_eq!(
        api.commands_for("all_private_chats", "zh"),
        Some(vec![("report".to_string(), "查找报告".to_string())])
    );
    let got = bot
        .get_my_commands()
        .scope(BotCommandScope::AllPrivateChats)
        .language_code("zh")
        .await
        .unwrap();
    assert_eq!(got, vec![BotCommand::new("report", "查找报告")]);
    // Telegram refuses upper-case commands.
    let err = bot
        .set_my_commands(vec![BotCommand::new("Start", "x")])
        .await
        .unwrap_err();
    assert!(
        matches!(err, RequestError::Api(ApiError::Unknown(ref s)) if s.contains("BOT_COMMAND_INVALID")),
        "{err:?}"
    );
}

#[tokio::test]
async fn telegram_text_checks() {
    let api = FakeBotApi::start().await;
    let bot = bot_for(&api);
    let c = ChatId(1001);

    let err = bot
        .send_message(c, "a < b")
        .parse_mode(ParseMode::Html)
        .await
        .unwrap_err();
    let RequestError::Api(ApiError::CantParseEntities(desc)) = &err else {
        panic!("{err:?}")
    };
    assert!(
        desc.starts_with("Bad Request: can't parse entities: Unsupported start tag"),
        "{desc}"
    );

    let err = bot.send_message(c, "a".repeat(4097)).await.unwrap_err();
    assert!(
        matches!(err, RequestError::Api(ApiError::MessageIsTooLong)),
        "{err:?}"
    );
    // 4096 visible characters are fine, even with tags around them.
    bot.send_message(c, format!("<b>{}</b>", "a".repeat(4096)))
        .parse_mode(ParseMode::Html)
        .await
        .unwrap();
    // ... but 2049 emoji are 4098 UTF-16 units.
    let err = bot.send_message(c, "😀".repeat(2049)).await.unwrap_err();
    assert!(
        matches!(err, RequestError::Api(ApiError::MessageIsTooLong)),
        "{err:?}"
    );

    let err = bot.send_message(c, "  \n").await.unwrap_err();
    assert!(
        matches!(err, RequestError::Api(ApiError::MessageTextIsEmpty)),
        "{err:?}"
    );
    let err = bot
        .send_message(c, "<b></b>")
        .parse_mode(ParseMode::Html)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RequestError::Api(ApiError::MessageTextIsEmpty)),
        "{err:?}"
    );

    let long_data = "x".repeat(65);
    let err = bot
        .send_message(c, "buttons")
        .reply_markup(InlineKeyboardMarkup::new(vec![vec![
            InlineKeyboardButton::callback("b", long_data),
        ]]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, RequestError::Api(ApiError::ButtonDataInvalid)),
        "{err:?}"
    );
    // 64 bytes (here 21 three-byte chars + 1) is the limit.
    bot.send_message(c, "buttons")
        .reply_markup(InlineKeyboardMarkup::new(vec![vec![
            InlineKeyboardButton::callback("b", format!("{}x", "报".repeat(21))),
        ]]))
        .await
        .unwrap();

    let rej = api.rejections();
    assert_eq!(rej.len(), 6);
    assert!(
        rej.iter()
            .all(|r| r.status == 400 && r.method == "sendMessage")
    );
    assert_eq!(api.total_sent(), 2);
    assert!(html::check_telegram_html("<b>ok</b>").is_ok());
}

#[tokio::test]
async fn injected_faults_map_to_teloxide_errors() {
    let api = FakeBotApi::start().await;
    let bot = bot_for(&api);

    api.fail_next("sendMessage", Fault::TooManyRequests { retry_after: 3 });
    let err = bot.send_message(ChatId(1), "x").await.unwrap_err();
    let RequestError::RetryAfter(secs) = err else {
        panic!("{err:?}")
    };
    assert_eq!(secs.seconds(), 3);

    api.block_chat(1001);
    let err = bot.send_message(ChatId(1001), "x").await.unwrap_err();
    assert!(
        matches!(err, RequestError::Api(ApiError::BotBlocked)),
        "{err:?}"
    );
    api.block_chat(-77);
    let err = bot.send_message(ChatId(-77), "x").await.unwrap_err();
    // Real Telegram's wording, which teloxide 0.17 maps to `Unknown`.
    assert!(
        matches!(err, RequestError::Api(ApiError::Unknown(ref s)) if s == "Forbidden: bot was kicked from the group chat"),
        "{err:?}"
    );
    api.block_chat(-1009);
    api.register_chat(&ChatSpec::supergroup(-1009, "SG"), None);
    let err = bot.send_message(ChatId(-1009), "x").await.unwrap_err();
    assert!(
        matches!(err, RequestError::Api(ApiError::BotKickedFromSupergroup)),
        "{err:?}"
    );

    api.forget_chat(1002);
    let err = bot.send_message(ChatId(1002), "x").await.unwrap_err();
    assert!(
        matches!(err, RequestError::Api(ApiError::ChatNotFound)),
        "{err:?}"
    );

    api.fail_next("getMe", Fault::Delay(Duration::from_millis(300)));
    let t0 = Instant::now();
    bot.get_me().await.unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(300));

    api.fail_next(
        "sendMessage",
        Fault::Api {
            status: 400,
            description: "Bad Request: TOPIC_CLOSED".into(),
        },
    );
    let err = bot.send_message(ChatId(1), "x").await.unwrap_err();
    assert!(
        matches!(err, RequestError::Api(ApiError::Unknown(_))),
        "{err:?}"
    );

    // Unknown method: 404, recorded as a rejection.
    let err = bot.send_dice(ChatId(1)).await.unwrap_err();
    assert!(
        matches!(err, RequestError::Api(ApiError::Unknown(ref s)) if s == "Not Found: method not found"),
        "{err:?}"
    );

    let statuses: Vec<u16> = api
        .calls_to("sendMessage")
        .iter()
        .map(|c| c.status)
        .collect();
    assert_eq!(statuses, vec![429, 403, 403, 403, 400, 400]);
    let rej = api.rejections();
    assert_eq!(rej.len(), 1, "injected errors are not rejections: {rej:?}");
    assert_eq!(rej[0].method, "sendDice");
    assert_eq!(rej[0].status, 404);
    assert_eq!(api.total_sent(), 0);
}

/// teloxide sleeps 10 s after any 5xx answer, so this test takes ~10 s.
#[tokio::test]
async fn server_error_fault() {
    let api = FakeBotApi::start().await;
    let bot = bot_for(&api);
    api.fail_next("sendMessage", Fault::ServerError(500));
    let err = bot.send_message(ChatId(1), "x").await.unwrap_err();
    assert!(
        matches!(err, RequestError::Api(ApiError::Unknown(ref s)) if s == "Internal Server Error"),
        "{err:?}"
    );
    let c = api.wait_for_call("sendMessage", T).await.unwrap();
    assert_eq!(c.status, 500);
    // The next call is normal again.
    bot.send_message(ChatId(1), "x").await.unwrap();
}

#[tokio::test]
async fn long_polling_honours_timeout_and_wakes_on_updates() {
    let api = FakeBotApi::start().await;
    let bot = bot_for(&api);

    let t0 = Instant::now();
    let ups = bot.get_updates().timeout(1).await.unwrap();
    let el = t0.elapsed();
    assert!(ups.is_empty());
    assert!(
        el >= Duration::from_millis(950) && el < Duration::from_secs(3),
        "{el:?}"
    );

    let h = api.handle();
    let injector = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        h.send_text(&ChatSpec::private(1002), &bob(), "wake up")
    });
    let t0 = Instant::now();
    let ups = bot.get_updates().timeout(8).await.unwrap();
    assert_eq!(ups.len(), 1);
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    injector.await.unwrap();

    // wait_for_poller sees a poll while it is being held.
    let b2 = bot.clone();
    let next = api.next_update_id() as i32;
    let poll = tokio::spawn(async move { b2.get_updates().offset(next).timeout(5).await });
    assert!(api.wait_for_poller(T).await);
    assert_eq!(api.polls_in_flight(), 1);
    api.send_text(&ChatSpec::private(1002), &bob(), "late");
    let got = poll.await.unwrap().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(api.polls_in_flight(), 0);
    let polls = api.calls_to("getUpdates");
    assert_eq!(polls.len(), 3);
    assert_eq!(polls[0].params["timeout"], json!(1));
    assert!(polls[0].elapsed >= Duration::from_millis(950));
}

#[tokio::test]
async fn rate_limit_option_counts_violations() {
    let api = FakeBotApi::start_with(Options {
        per_chat_per_sec: Some(2),
        global_per_sec: Some(3),
        ..Options::default()
    })
    .await;
    let bot = bot_for(&api);
    bot.send_message(ChatId(1), "1").await.unwrap();
    bot.send_message(ChatId(1), "2").await.unwrap();
    let err = bot.send_message(ChatId(1), "3").await.unwrap_err();
    assert!(
        matches!(err, RequestError::RetryAfter(s) if s.seconds() == 1),
        "{err:?}"
    );
    bot.send_message(ChatId(2), "4").await.unwrap();
    let err = bot.send_message(ChatId(3), "5").await.unwrap_err();
    assert!(matches!(err, RequestError::RetryAfter(_)), "{err:?}");
    assert_eq!(api.violations(), 2);
    tokio::time::sleep(Duration::from_millis(1050)).await;
    bot.send_message(ChatId(1), "6").await.unwrap();
    assert_eq!(api.total_sent(), 4);
    assert!(api.rejections().is_empty());
}

#[tokio::test]
async fn multipart_requests_are_parsed() {
    let api = FakeBotApi::start().await;
    let bot = bot_for(&api);
    // sendDocument is not implemented (404), but teloxide sends it as
    // multipart/form-data and the params must still be recorded as JSON.
    let kb = InlineKeyboardMarkup::new(vec![vec![InlineKeyboardButton::callback("a", "b")]]);
    let _ = bot
        .send_document(ChatId(-100), InputFile::memory("hello").file_name("r.txt"))
        .caption("cap [1]")
        .reply_markup(kb)
        .await;
    let c = api.wait_for_call("sendDocument", T).await.unwrap();
    assert_eq!(c.status, 404);
    assert_eq!(c.params["chat_id"], json!(-100));
    assert_eq!(c.params["caption"], json!("cap [1]"));
    assert_eq!(
        c.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"],
        json!("b")
    );
    assert_eq!(c.params["document"]["filename"], json!("r.txt"));
    assert_eq!(c.params["document"]["size"], json!(5));
    assert!(c.params["document"]["attach"].is_string());
    assert_eq!(c.params.as_object().unwrap().len(), 4, "{}", c.params);
}

/// A real teloxide Dispatcher (long polling, offsets, getWebhookInfo, …)
/// against the fake.
#[tokio::test]
async fn dispatcher_round_trip() {
    let api = FakeBotApi::start().await;
    let bot = bot_for(&api);
    let handler = Update::filter_message().endpoint(|bot: Bot, msg: Message| async move {
        bot.send_message(msg.chat.id, format!("echo: {}", msg.text().unwrap_or("")))
            .await?;
        Ok::<(), RequestError>(())
    });
    let mut dispatcher = Dispatcher::builder(bot, handler).build();
    let token = dispatcher.shutdown_token();
    let task = tokio::spawn(async move { dispatcher.dispatch().await });

    let a = alice();
    api.send_text(&a.private_chat(), &a, "hello");
    api.send_text(&ChatSpec::group(-9, "G"), &bob(), "/report 2024");
    let got = api.wait_for_messages(1001, 1, T).await;
    assert_eq!(got[0].text, "echo: hello");
    let got = api.wait_for_messages(-9, 1, T).await;
    assert_eq!(got[0].text, "echo: /report 2024");
    assert!(
        api.wait_for_no_pending(T).await,
        "updates confirmed by offset"
    );

    // Dispatcher::shutdown_token() needs the dispatcher to be running.
    loop {
        match token.shutdown() {
            Ok(f) => {
                f.await;
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    tokio::time::timeout(T, task).await.unwrap().unwrap();
    assert!(api.rejections().is_empty(), "{:?}", api.rejections());
    assert!(api.call_count("getWebhookInfo") >= 1);
    assert_eq!(api.next_update_id() as i64, api.confirmed_offset());
}
