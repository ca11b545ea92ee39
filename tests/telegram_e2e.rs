//! End-to-end tests of the Telegram bot: the real `reportbot` binary against
//! the fake Bot API server of `tests/support/botapi.rs`, driven the way users
//! drive it (messages, commands, buttons, inline queries, groups), plus
//! Telegram's failures (429, 5xx), floods and signals.
//!
//! Every test starts its own bot (`spawn_app()`), so tests run in parallel,
//! and ends with [`assert_clean`]: every text the bot sent, edited or offered
//! inline is valid Telegram HTML, and Telegram would have refused nothing.

mod support;

use serde_json::Value;
use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};
use support::app::{AppOptions, spawn_app, spawn_app_with};
use support::botapi::{BOT_USERNAME, ChatSpec, Fault};
use support::e2e::{
    WAIT, ask, assert_clean, en_user, eventually, next_reply, stays_quiet, zh_user,
};
use support::html::{check_telegram_html, utf16_len};

/// Every winner name (people and teams) of the built-in report.
fn winner_names() -> Vec<String> {
    reportbot::knowledge::Knowledge::builtin()
        .expect("built-in data loads")
        .winner_names()
}

fn names_in(text: &str) -> Vec<String> {
    winner_names()
        .into_iter()
        .filter(|n| text.contains(n.as_str()))
        .collect()
}

fn callback_data_of(buttons: &[(String, Option<String>)]) -> Vec<String> {
    buttons.iter().filter_map(|(_, d)| d.clone()).collect()
}

/// The callback data of the button whose data is `data` (asserting it is shown).
fn expect_button(buttons: &[(String, Option<String>)], data: &str, context: &str) -> String {
    let all = callback_data_of(buttons);
    assert!(
        all.iter().any(|d| d == data),
        "{context}: no button with data {data:?}; buttons: {buttons:?}"
    );
    data.to_string()
}

fn assert_callback_data_fits(buttons: &[(String, Option<String>)], context: &str) {
    for (label, data) in buttons {
        // Not a callback: the share button (inline mode), whose kind the
        // fake Bot API checks like Telegram.
        let Some(data) = data.as_deref() else {
            continue;
        };
        assert!(
            !data.is_empty() && data.len() <= 64,
            "{context}: callback data {data:?} of {label:?} is {} bytes",
            data.len()
        );
    }
}

// ---------------------------------------------------------------------------
// 1. /start

#[tokio::test]
async fn start_welcomes_in_the_users_language_and_deep_links_to_tips() {
    let app = spawn_app().await;
    let zh = zh_user(1101);
    let en = en_user(1102);
    let deep = zh_user(1103);
    app.api.send_text(&zh.private_chat(), &zh, "/start");
    app.api.send_text(&en.private_chat(), &en, "/start");
    app.api
        .send_text(&deep.private_chat(), &deep, "/start tips");

    let welcome = next_reply(&app, 1101, 0, "/start (zh)")
        .await
        .visible_text();
    for must in [
        "您好",
        "谁获得了哪个奖",
        "防范诈骗",
        "您可以这样问",
        "个人一等奖是谁",
        "/help",
    ] {
        assert!(
            welcome.contains(must),
            "zh welcome lacks {must:?}:\n{welcome}"
        );
    }
    assert!(
        !welcome.contains("Hello"),
        "zh welcome in English:\n{welcome}"
    );

    let welcome = next_reply(&app, 1102, 0, "/start (en)")
        .await
        .visible_text();
    for must in [
        "Hello",
        "who won which prize",
        "anti-fraud tips",
        "You can ask, for example",
        "Who won the individual first prize?",
        "Send /help",
    ] {
        assert!(
            welcome.contains(must),
            "en welcome lacks {must:?}:\n{welcome}"
        );
    }
    assert!(
        !welcome.contains("您好"),
        "en welcome in Chinese:\n{welcome}"
    );

    let tips = next_reply(&app, 1103, 0, "/start tips").await;
    let text = tips.visible_text();
    assert!(
        text.contains("帮长辈防范诈骗的提示") && text.contains("1. ") && text.contains("2. "),
        "/start tips did not open the tips:\n{text}"
    );
    assert!(
        !text.contains("您好"),
        "/start tips gave the welcome:\n{text}"
    );
    let data = tips.callback_data();
    assert!(
        data.iter().any(|d| d.starts_with("t:")),
        "/start tips without topic buttons: {:?}",
        tips.buttons()
    );
    assert_callback_data_fits(&tips.buttons(), "/start tips");
    assert_clean(&app);
}

// ---------------------------------------------------------------------------
// 2. The command menu

#[tokio::test]
async fn command_menu_is_registered_in_chinese_and_english() {
    let app = spawn_app().await;
    app.api
        .wait_for_calls("setMyCommands", 2, Duration::from_secs(3))
        .await;
    let zh = app
        .api
        .commands_for("default", "")
        .unwrap_or_else(|| panic!("no default menu: {:?}", app.api.my_commands()));
    let en = app
        .api
        .commands_for("default", "en")
        .unwrap_or_else(|| panic!("no English menu: {:?}", app.api.my_commands()));
    let names =
        |set: &[(String, String)]| -> Vec<String> { set.iter().map(|(c, _)| c.clone()).collect() };
    assert_eq!(names(&zh), names(&en), "menus name different commands");
    for (command, description) in zh.iter().chain(&en) {
        assert!(
            !command.is_empty()
                && command.len() <= 32
                && command
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "command {command:?} is not a bare Telegram command name"
        );
        assert!(
            !description.trim().is_empty() && description.chars().count() <= 256,
            "{command}: bad description {description:?}"
        );
    }
    let zh_names = names(&zh);
    for must in [
        "start",
        "help",
        "awards",
        "winner",
        "tips",
        "subscribe",
        "unsubscribe",
    ] {
        assert!(
            zh_names.iter().any(|c| c == must),
            "menu lacks {must}: {zh_names:?}"
        );
    }
    assert!(
        !zh_names.iter().any(|c| c == "announce"),
        "the admin command is in the public menu: {zh_names:?}"
    );
    let is_cjk = |s: &str| s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
    let help_zh = &zh.iter().find(|(c, _)| c == "help").expect("help").1;
    let help_en = &en.iter().find(|(c, _)| c == "help").expect("help").1;
    assert!(is_cjk(help_zh), "default menu is not Chinese: {zh:?}");
    assert!(
        !is_cjk(help_en) && help_en.chars().any(|c| c.is_ascii_alphabetic()),
        "English menu is not English: {en:?}"
    );
    assert_clean(&app);
}

// ---------------------------------------------------------------------------
// 3. /help

#[tokio::test]
async fn help_lists_every_command() {
    let app = spawn_app().await;
    app.api
        .wait_for_calls("setMyCommands", 2, Duration::from_secs(3))
        .await;
    let menu: Vec<String> = app
        .api
        .commands_for("default", "")
        .expect("default menu")
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    assert!(menu.len() >= 7, "menu too short: {menu:?}");
    let zh = zh_user(1301);
    let en = en_user(1302);
    app.api.send_text(&zh.private_chat(), &zh, "/help");
    app.api.send_text(&en.private_chat(), &en, "/help");
    let help_zh = next_reply(&app, 1301, 0, "/help").await.visible_text();
    let help_en = next_reply(&app, 1302, 0, "/help").await.visible_text();
    for (lang, help) in [("zh", &help_zh), ("en", &help_en)] {
        for command in menu
            .iter()
            .map(String::as_str)
            .chain(["subscribe", "unsubscribe"])
        {
            let listed = help
                .lines()
                .any(|l| l.split_whitespace().next() == Some(&format!("/{command}")));
            assert!(listed, "{lang} /help does not list /{command}:\n{help}");
        }
    }
    assert!(help_zh.contains("命令"), "{help_zh}");
    assert!(help_en.contains("Commands"), "{help_en}");
    assert_clean(&app);
}

// ---------------------------------------------------------------------------
// 4. Free-text questions in private chats

#[tokio::test]
async fn free_text_questions_are_answered_from_the_report() {
    let app = spawn_app().await;
    let questions: [(u64, &str); 6] = [
        (1401, "个人一等奖是谁"),
        (1402, "團體一等獎是誰"),
        (1403, "李斌获得了什么奖"),
        (1404, "Who won the first prize in the banking group?"),
        (1405, "张伟获得了什么奖"),
        (1406, "今天天气怎么样"),
    ];
    // Different chats: asked all at once.
    for (id, q) in questions {
        let u = zh_user(id);
        app.api.send_text(&u.private_chat(), &u, q);
    }
    let mut replies = Vec::new();
    for (id, q) in questions {
        replies.push(next_reply(&app, id as i64, 0, q).await.visible_text());
    }

    let a = &replies[0];
    assert!(
        a.contains("李彬") && a.contains("郭允正"),
        "个人一等奖:\n{a}"
    );
    assert!(a.contains("个人一等奖"), "{a}");

    let a = &replies[1];
    assert!(
        a.contains("工银浙里队") && a.contains("国寿新速度队"),
        "traditional 團體一等獎:\n{a}"
    );

    let a = &replies[2];
    assert!(
        a.contains("李彬") && a.contains("个人一等奖"),
        "homophone 李斌 → 李彬:\n{a}"
    );
    assert!(a.contains("李斌"), "the correction is not shown:\n{a}");

    let a = &replies[3];
    assert!(a.contains("工银浙里队"), "English question:\n{a}");
    assert!(
        a.contains("First Prize") && a.contains("Banking"),
        "English question without English labels:\n{a}"
    );
    assert!(
        !a.contains("一等奖") && !a.contains("银行机构组"),
        "English question answered with Chinese labels:\n{a}"
    );
    assert!(!a.contains("郭允正"), "banking group only:\n{a}");

    let a = &replies[4];
    assert!(
        a.contains("张伟") && a.contains("没有"),
        "unknown name not reported as absent:\n{a}"
    );
    assert!(
        names_in(a).is_empty(),
        "an unknown name got winners {:?}:\n{a}",
        names_in(a)
    );

    let a = &replies[5];
    assert!(
        a.contains("抱歉"),
        "off-topic is not a polite fallback:\n{a}"
    );
    assert!(
        a.contains("您可以这样问") && a.contains("个人一等奖是谁"),
        "fallback without examples:\n{a}"
    );
    assert!(
        names_in(a).is_empty(),
        "off-topic got winners {:?}:\n{a}",
        names_in(a)
    );
    assert_clean(&app);
}

// ---------------------------------------------------------------------------
// 5. /winner and /tips

#[tokio::test]
async fn winner_and_tips_commands() {
    let app = spawn_app().await;
    let u1 = zh_user(1501);
    let u2 = zh_user(1502);
    let u3 = zh_user(1503);
    let u4 = zh_user(1504);
    app.api.send_text(&u1.private_chat(), &u1, "/winner 李彬");
    app.api
        .send_text(&u2.private_chat(), &u2, "/winner 个人一等奖");
    app.api.send_text(&u3.private_chat(), &u3, "/tips");
    app.api.send_text(&u4.private_chat(), &u4, "/tips 验证码");

    let a = next_reply(&app, 1501, 0, "/winner 李彬")
        .await
        .visible_text();
    assert!(
        a.contains("李彬")
            && a.contains("工商银行浙江省分行")
            && a.contains("个人一等奖(银行机构组)"),
        "/winner 李彬:\n{a}"
    );
    let a = next_reply(&app, 1502, 0, "/winner 个人一等奖")
        .await
        .visible_text();
    assert!(
        a.contains("李彬") && a.contains("郭允正"),
        "/winner 个人一等奖:\n{a}"
    );

    let tips = next_reply(&app, 1503, 0, "/tips").await;
    let text = tips.visible_text();
    assert!(
        text.contains("帮长辈防范诈骗的提示") && text.contains("1. "),
        "/tips:\n{text}"
    );
    let buttons = tips.buttons();
    assert!(
        buttons.len() >= 2,
        "/tips without topic buttons: {buttons:?}"
    );
    assert_callback_data_fits(&buttons, "/tips");
    // The picture of these tips first, then the topics.
    let data = callback_data_of(&buttons);
    assert_eq!(data[0], "p:zh:", "{buttons:?}");
    assert!(data[1..].iter().all(|d| d.starts_with("t:")), "{buttons:?}");

    let topic = next_reply(&app, 1504, 0, "/tips 验证码").await;
    let text = topic.visible_text();
    assert!(
        text.contains("防骗提示") && text.contains("验证码") && text.contains("1. "),
        "/tips 验证码:\n{text}"
    );
    assert!(
        !text.contains("帮长辈防范诈骗的提示"),
        "/tips 验证码 gave the general selection:\n{text}"
    );
    assert!(!topic.buttons().is_empty(), "/tips 验证码 without buttons");

    // Press a topic button under the general tips.
    let (label, data) = buttons
        .iter()
        .find(|(_, d)| d.as_deref() == Some("t:screen_sharing"))
        .or_else(|| buttons.first())
        .cloned()
        .expect("a topic button");
    let data = data.expect("callback data");
    let qid = app
        .api
        .press_button(&u3.private_chat(), &u3, tips.message_id, &data);
    let edits = app.api.wait_for_edits(1503, 1, WAIT).await;
    assert_eq!(
        edits.len(),
        1,
        "pressing {data} edited nothing; log:\n{}",
        app.log()
    );
    let edit = &edits[0];
    assert_eq!(
        edit.message_id,
        Some(tips.message_id),
        "another message was edited"
    );
    let edited = edit.visible_text().unwrap_or_default();
    assert!(
        edited.contains(&format!("防骗提示:{label}")) && edited.contains("1. "),
        "pressing {label:?} ({data}) did not show that topic:\n{edited}"
    );
    assert_ne!(
        edited, text,
        "the topic shows the same tips as /tips 验证码"
    );
    assert!(!edit.buttons().is_empty(), "the topic buttons were removed");
    let answers = app.api.wait_for_callback_answers(1, WAIT).await;
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].callback_query_id, qid);
    assert_eq!(
        app.api.sent_messages(1503).len(),
        1,
        "a topic button sent a new message instead of editing"
    );
    assert_clean(&app);
}

// ---------------------------------------------------------------------------
// 6. Browsing the award list with buttons

#[tokio::test]
async fn award_keyboard_walk_edits_the_message_and_answers_every_press() {
    let app = spawn_app().await;
    let u = zh_user(1601);
    let chat = u.private_chat();
    let list = ask(&app, &u, "/awards").await;
    let text = list.visible_text();
    assert!(
        text.contains("荣誉榜") && text.contains("李彬") && text.contains("郭允正"),
        "/awards:\n{text}"
    );
    assert_callback_data_fits(&list.buttons(), "/awards");
    let mid = list.message_id;
    let mut pressed: Vec<String> = Vec::new();
    let mut n_edits = 0;

    // group → kind → level → winners → back → home
    let steps: [(&str, &[&str], &[&str]); 5] = [
        (
            "a:b",
            &["银行机构组", "团体还是个人"],
            &["a:b:t", "a:b:p", "a"],
        ),
        (
            "a:b:p",
            &["银行机构组", "个人", "请选择奖项"],
            &["a:b:p:1", "a:b:p:2", "a:b:p:3", "a:b:p:x", "a:b"],
        ),
        ("a:b:p:1", &["个人一等奖", "李彬"], &["a:b:p", "a"]),
        ("a:b:p", &["请选择奖项"], &["a:b:p:1", "a:b:p:2", "a:b"]),
        ("a:b", &["团体还是个人"], &["a:b:t", "a:b:p", "a"]),
    ];
    let mut buttons = list.buttons();
    for (data, must, next_buttons) in steps {
        let data = expect_button(&buttons, data, &format!("before pressing {data}"));
        pressed.push(app.api.press_button(&chat, &u, mid, &data));
        n_edits += 1;
        let edits = app.api.wait_for_edits(1601, n_edits, WAIT).await;
        assert_eq!(
            edits.len(),
            n_edits,
            "pressing {data} did not edit the message; log:\n{}",
            app.log()
        );
        let edit = edits.last().expect("an edit");
        assert_eq!(
            edit.message_id,
            Some(mid),
            "pressing {data} edited another message"
        );
        let shown = edit.visible_text().unwrap_or_default();
        for m in must {
            assert!(shown.contains(m), "after {data}: {m:?} missing:\n{shown}");
        }
        if data == "a:b:p:1" {
            assert!(
                !shown.contains("郭允正") && !shown.contains("郭胜"),
                "banking individual first prize shows other winners:\n{shown}"
            );
        }
        buttons = edit.buttons();
        assert_callback_data_fits(&buttons, &format!("after {data}"));
        for b in next_buttons {
            expect_button(&buttons, b, &format!("after {data}"));
        }
        let answers = app.api.wait_for_callback_answers(pressed.len(), WAIT).await;
        assert_eq!(answers.len(), pressed.len(), "press of {data} not answered");
    }
    assert_eq!(
        app.api.sent_messages(1601).len(),
        1,
        "browsing sent new messages instead of editing"
    );

    // Buttons the bot never made (foreign or outdated callback data), and
    // buttons for prizes a data reload removed (a declared 特等奖 or
    // 最佳创意奖 the built-in 2022 report does not have).
    let stale = [
        app.api.press_button(&chat, &u, mid, "zzz"),
        app.api.press_button(&chat, &u, mid, "a:q:z:9"),
        app.api.press_button(&chat, &u, mid, "a:b:t:grand"),
        app.api.press_button(&chat, &u, mid, "a:-:best_creativity"),
    ];
    pressed.extend(stale.iter().cloned());
    let answers = app.api.wait_for_callback_answers(pressed.len(), WAIT).await;
    assert_eq!(
        answers.len(),
        pressed.len(),
        "every press is answered (stale ones too); log:\n{}",
        app.log()
    );
    let answered: HashSet<&str> = answers
        .iter()
        .map(|a| a.callback_query_id.as_str())
        .collect();
    let expected: HashSet<&str> = pressed.iter().map(String::as_str).collect();
    assert_eq!(answered, expected);
    for qid in &stale {
        let answer = answers
            .iter()
            .find(|a| &a.callback_query_id == qid)
            .expect("answered");
        assert!(
            answer.text.as_deref().is_some_and(|t| t.contains("失效")),
            "a stale button is answered without telling why: {answer:?}"
        );
    }
    // Still alive, and the stale presses changed nothing.
    assert_eq!(app.api.edits(1601).len(), n_edits);
    let a = ask(&app, &u, "个人一等奖是谁").await.visible_text();
    assert!(a.contains("李彬"), "{a}");
    assert_clean(&app);
}

// ---------------------------------------------------------------------------
// 7. Ambiguous names

#[tokio::test]
async fn ambiguous_name_offers_both_readings_and_a_button_picks_one() {
    let app = spawn_app().await;
    let u = zh_user(1701);
    let chat = u.private_chat();
    let m = ask(&app, &u, "平安获得了什么奖").await;
    let text = m.visible_text();
    assert!(
        text.contains("平安人寿浙江分公司") && text.contains("平安财险浙江分公司"),
        "both readings expected:\n{text}"
    );
    let buttons = m.buttons();
    assert_callback_data_fits(&buttons, "ambiguity");
    let life = buttons
        .iter()
        .find(|(label, _)| label.contains("平安人寿"))
        .unwrap_or_else(|| panic!("no button for 平安人寿: {buttons:?}"));
    assert!(
        buttons.iter().any(|(label, _)| label.contains("平安财险")),
        "no button for 平安财险: {buttons:?}"
    );
    let data = life.1.clone().expect("data");
    let qid = app.api.press_button(&chat, &u, m.message_id, &data);
    let picked = next_reply(&app, 1701, 1, "the 平安人寿 button")
        .await
        .visible_text();
    assert!(
        picked.contains("平安人寿浙江分公司")
            && picked.contains("章倚")
            && picked.contains("平安人寿队"),
        "the answer for 平安人寿:\n{picked}"
    );
    assert!(
        !picked.contains("平安财险浙江分公司") && !picked.contains("陈奕恺"),
        "the answer for 平安人寿 also covers 平安财险:\n{picked}"
    );
    let answers = app.api.wait_for_callback_answers(1, WAIT).await;
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].callback_query_id, qid);
    assert_clean(&app);
}

// ---------------------------------------------------------------------------
// 8. Inline mode

#[tokio::test]
async fn inline_query_offers_an_article_with_the_answer() {
    let app = spawn_app().await;
    let u = zh_user(1801);
    let qid = app.api.inline_query(&u, "李彬");
    let answers = app.api.wait_for_inline_answers(1, WAIT).await;
    assert_eq!(answers.len(), 1, "no inline answer; log:\n{}", app.log());
    assert_eq!(answers[0].inline_query_id, qid);
    let results = &answers[0].results;
    assert!(!results.is_empty(), "no inline results");
    let article = results
        .iter()
        .find(|r| {
            r["type"] == "article"
                && r.pointer("/input_message_content/message_text")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.contains("李彬"))
        })
        .unwrap_or_else(|| panic!("no article about 李彬: {results:#?}"));
    let text = article["input_message_content"]["message_text"]
        .as_str()
        .expect("text");
    check_telegram_html(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert!(utf16_len(text) <= 4096);
    assert_eq!(
        article["input_message_content"]["parse_mode"].as_str(),
        Some("HTML"),
        "{article}"
    );
    assert!(
        article["title"].as_str().is_some_and(|t| !t.is_empty()),
        "article without a title: {article}"
    );
    assert_clean(&app);
}

// ---------------------------------------------------------------------------
// 9. Groups

#[tokio::test]
async fn groups_answer_only_what_is_addressed_to_the_bot_and_keep_users_apart() {
    let app = spawn_app().await;
    let group = ChatSpec::group(-1900, "测试群");
    let gid = group.id();
    let a = zh_user(1901);
    let b = zh_user(1902);
    let at = format!("@{BOT_USERNAME}");

    // Not for us: another bot's command, a plain message.
    let ignored_at = Instant::now();
    app.api.send_text(&group, &a, "/help@other_bot");
    app.api.send_text(&group, &a, "个人一等奖是谁");

    let mut expected_replies: Vec<i32> = Vec::new();
    let mut n = 0;
    // Updates of one chat are handled in order: a reply to the ignored
    // messages would come before this one.
    let w = app.api.send_text(&group, &a, &format!("/winner{at} 李彬"));
    expected_replies.push(w);
    let r = next_reply(&app, gid, n, "/winner@bot 李彬").await;
    n += 1;
    assert_eq!(
        r.reply_to_message_id,
        Some(w),
        "the answer is not a reply to /winner"
    );
    assert!(
        r.visible_text().contains("李彬") && r.visible_text().contains("个人一等奖"),
        "{}",
        r.visible_text()
    );
    let first_bot_message = r.message_id;

    let m = app
        .api
        .send_text(&group, &a, &format!("{at} 团体一等奖是谁"));
    expected_replies.push(m);
    let r = next_reply(&app, gid, n, "a mention").await;
    n += 1;
    assert_eq!(r.reply_to_message_id, Some(m));
    assert!(
        r.visible_text().contains("工银浙里队") && !r.visible_text().contains(BOT_USERNAME),
        "{}",
        r.visible_text()
    );

    let m = app
        .api
        .send_reply(&group, &b, "个人二等奖是谁", first_bot_message);
    expected_replies.push(m);
    let r = next_reply(&app, gid, n, "a reply to the bot").await;
    n += 1;
    assert_eq!(r.reply_to_message_id, Some(m));
    assert!(
        r.visible_text().contains("郭胜") && r.visible_text().contains("汪万紫"),
        "{}",
        r.visible_text()
    );

    // Context is per user inside a group: A's question is not B's context.
    let m = app
        .api
        .send_text(&group, &a, &format!("{at} 个人一等奖是谁"));
    expected_replies.push(m);
    let r = next_reply(&app, gid, n, "A: 个人一等奖是谁").await;
    n += 1;
    assert!(r.visible_text().contains("李彬") && r.visible_text().contains("郭允正"));

    let m = app.api.send_text(&group, &b, &format!("{at} 那保险组呢"));
    expected_replies.push(m);
    let b_reply = next_reply(&app, gid, n, "B: 那保险组呢").await;
    n += 1;
    assert_eq!(b_reply.reply_to_message_id, Some(m));

    let m = app.api.send_text(&group, &a, &format!("{at} 那保险组呢"));
    expected_replies.push(m);
    let a_reply = next_reply(&app, gid, n, "A: 那保险组呢").await;
    n += 1;
    let a_text = a_reply.visible_text();
    // Control: for A it is a follow-up of A's own question.
    assert!(
        a_text.contains("郭允正") && !a_text.contains("李彬"),
        "A's follow-up in the group lost A's context:\n{a_text}"
    );
    // B never asked about 个人一等奖: the answer must not be A's follow-up.
    let b_text = b_reply.visible_text();
    assert_ne!(b_text, a_text, "B got A's context");
    assert!(!b_text.contains("李彬"), "B's answer:\n{b_text}");
    assert!(
        !b_text.contains("郭允正") || b_text.contains("国寿新速度队"),
        "B got the individual first prize of A's question merged in:\n{b_text}"
    );

    // Nothing else was sent, in particular not to the ignored messages.
    let elapsed = ignored_at.elapsed();
    if elapsed < Duration::from_millis(1500) {
        assert!(
            stays_quiet(&app, gid, Duration::from_millis(1500) - elapsed).await,
            "an unexpected message: {:?}",
            app.api.sent_messages(gid).last().map(|m| m.visible_text())
        );
    }
    let all = app.api.sent_messages(gid);
    assert_eq!(
        all.len(),
        n,
        "extra group messages: {:#?}",
        all.iter().map(|m| m.visible_text()).collect::<Vec<_>>()
    );
    let replied: Vec<i32> = all.iter().filter_map(|m| m.reply_to_message_id).collect();
    assert_eq!(replied, expected_replies);
    assert_clean(&app);
}

// ---------------------------------------------------------------------------
// 10. Conversation context

#[tokio::test]
async fn follow_up_question_uses_the_private_chat_context() {
    let app = spawn_app().await;
    let u = zh_user(2001);
    let a = ask(&app, &u, "个人一等奖是谁").await.visible_text();
    assert!(a.contains("李彬") && a.contains("郭允正"), "{a}");
    let a = ask(&app, &u, "那保险组呢").await.visible_text();
    assert!(
        a.contains("郭允正") && !a.contains("李彬"),
        "follow-up 那保险组呢 after 个人一等奖:\n{a}"
    );
    assert!(
        !a.contains("国寿新速度队"),
        "the follow-up lost the prize (team first prize shown):\n{a}"
    );
    assert_clean(&app);
}

#[tokio::test]
async fn context_expires_after_ttl() {
    let app = spawn_app_with(AppOptions {
        config: Some("[conversation]\nttl_secs = 1\n".into()),
        ..AppOptions::default()
    })
    .await;
    let late = zh_user(2011);
    let quick = zh_user(2012);
    let a = ask(&app, &late, "个人一等奖是谁").await.visible_text();
    assert!(a.contains("郭允正"), "{a}");
    let asked = Instant::now();

    // Control: within the 1 s the follow-up still works.
    let a = ask(&app, &quick, "个人一等奖是谁").await.visible_text();
    assert!(a.contains("郭允正"), "{a}");
    let merged = ask(&app, &quick, "那保险组呢").await.visible_text();
    assert!(
        merged.contains("郭允正") && !merged.contains("李彬"),
        "follow-up within the ttl:\n{merged}"
    );

    let wait = Duration::from_millis(1500).saturating_sub(asked.elapsed());
    tokio::time::sleep(wait).await;
    let a = ask(&app, &late, "那保险组呢").await.visible_text();
    assert_ne!(a, merged, "an expired context was used");
    assert!(
        !a.contains("郭允正") || a.contains("国寿新速度队"),
        "an expired context was merged:\n{a}"
    );
    assert!(!a.contains("李彬"), "{a}");
    assert_clean(&app);
}

// ---------------------------------------------------------------------------
// 11. A long answer is split

/// TEST DATA, not a real report: the 2099 contest does not exist.
const BIG_ROWS: usize = 180;
const BIG_SOURCE: &str = "2099-11-e2e-big-report.txt";

fn big_row(n: usize) -> String {
    format!("测试银行第{n}分行数据应用创新部 测试队{n}号数字化改革攻坚团队")
}

fn big_report_text() -> String {
    let mut lines = vec![
        "2099浙江测试大赛荣誉榜(端到端测试数据)".to_string(),
        String::new(),
        "测试数据:这不是真实的报道,仅供 reportbot 端到端测试使用。".to_string(),
        String::new(),
        "荣誉榜".to_string(),
        String::new(),
        "团体优胜奖(银行机构组)".to_string(),
    ];
    lines.extend((1..=BIG_ROWS).map(big_row));
    lines.push(String::new());
    lines.push("11月5日,由测试单位主办的2099浙江测试大赛在宁波举行。".to_string());
    lines.join("\n") + "\n"
}

/// Writes the test report and imports it into `data` with `reportbot import`
/// (or, with a binary that has no such subcommand, with the library).
fn import_big_report(dir: &Path) -> std::path::PathBuf {
    let source = dir.join(BIG_SOURCE);
    std::fs::write(&source, big_report_text()).expect("write the report");
    let data = dir.join("data");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_reportbot"))
        .arg("import")
        .arg(&source)
        .arg("--out")
        .arg(&data)
        .env_remove("REPORTBOT_CONFIG")
        .env_remove("REPORTBOT_DATA")
        .env("REPORTBOT_DB", dir.join("import.db"))
        .output()
        .expect("run reportbot import");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("unrecognized subcommand") {
        let imported = reportbot::import::import_report(&big_report_text(), BIG_SOURCE)
            .expect("the test report imports");
        reportbot::import::write_report(&imported, &data).expect("write the data directory");
    } else {
        assert!(
            out.status.success(),
            "reportbot import failed:\n{stderr}\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    assert!(
        data.join("reports")
            .join("2099-zhejiang")
            .join("awards.json")
            .exists()
    );
    data
}

#[tokio::test]
async fn long_answer_is_split_at_lines_into_valid_messages() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = import_big_report(tmp.path());
    let app = spawn_app_with(AppOptions {
        args: vec!["--data".into(), data.display().to_string()],
        ..AppOptions::default()
    })
    .await;
    let u = zh_user(2101);
    app.api
        .send_text(&u.private_chat(), &u, "团体优胜奖(银行机构组)有哪些");
    let first = next_reply(&app, 2101, 0, "the big prize").await;
    // The rest follows at once; wait for the last row.
    let last_row = big_row(BIG_ROWS);
    app.api
        .wait_until(WAIT, |h| {
            h.sent_messages(2101)
                .iter()
                .any(|m| m.visible_text().contains(&last_row))
        })
        .await;
    assert!(stays_quiet(&app, 2101, Duration::from_millis(300)).await);
    let msgs = app.api.sent_messages(2101);
    assert_eq!(msgs[0].message_id, first.message_id);
    let total: usize = msgs.iter().map(|m| m.visible_text().chars().count()).sum();
    assert!(total >= 5000, "the answer is only {total} characters");
    assert!(msgs.len() >= 2, "a {total}-character answer in one message");
    for m in &msgs {
        assert!(
            utf16_len(&m.text) <= 4096,
            "a part of {} UTF-16 units",
            utf16_len(&m.text)
        );
        check_telegram_html(&m.text).unwrap_or_else(|e| panic!("{e}: {}", m.text));
        assert!(!m.visible_text().trim().is_empty(), "an empty part");
    }
    // Cut at line boundaries: every line of every part is whole, and the
    // rows come once each, in order.
    let lines: Vec<String> = msgs
        .iter()
        .flat_map(|m| {
            m.visible_text()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|l| !l.trim().is_empty())
        .collect();
    let rows: Vec<&String> = lines.iter().filter(|l| l.starts_with("· ")).collect();
    let expected: Vec<String> = (1..=BIG_ROWS)
        .map(|n| format!("· {}", big_row(n)))
        .collect();
    assert_eq!(rows.len(), BIG_ROWS, "rows missing or cut");
    for (got, want) in rows.iter().zip(&expected) {
        assert_eq!(*got, want, "a row was cut or reordered");
    }
    for l in &lines {
        assert!(
            l.starts_with("· ")
                || l.contains("团体优胜奖")
                || (l.starts_with("共 ") && l.ends_with("项获奖。")),
            "a line cut in two: {l:?}"
        );
    }
    assert_clean(&app);
}

// ---------------------------------------------------------------------------
// 12. HTML in questions

#[tokio::test]
async fn html_in_questions_is_escaped_everywhere() {
    let app = spawn_app().await;
    let questions = [
        "<b>李彬</b>获得了什么奖",
        "</i>个人一等奖是谁 & <script>alert(1)</script>",
        "<script>获得了什么奖",
        "张<b>伟</b>获得了什么奖 &amp; &lt; &#x41; &",
        "/winner <i>李彬</i> & <u>",
        "/winner <a href=\"http://x\">张伟</a>",
        "/tips <code>验证码</code>",
        "a < b && c > d ?",
        "<pre>\"quoted\" 'single' &nbsp; &bogus;</pre>",
        // Unknown names are echoed back: the `&` must arrive as typed.
        "/winner 张&伟",
        "AT&T获得了什么奖",
        "/winner <script>&amp;",
    ];
    for (i, q) in questions.iter().enumerate() {
        let u = zh_user(2201 + i as u64);
        app.api.send_text(&u.private_chat(), &u, q);
    }
    let en = en_user(2299);
    app.api.send_text(
        &en.private_chat(),
        &en,
        "Who won </b><b>first prize & \"more\"?",
    );
    let group = ChatSpec::group(-2200, "<b>测试</b> & 群");
    let g = zh_user(2298);
    app.api.send_text(
        &group,
        &g,
        &format!("@{BOT_USERNAME} <b>个人一等奖</b>是谁 &"),
    );
    app.api.inline_query(&g, "<b>李彬</b> & <script>");

    for (i, q) in questions.iter().enumerate() {
        next_reply(&app, 2201 + i as i64, 0, q).await;
    }
    next_reply(&app, 2299, 0, "English with tags").await;
    let r = next_reply(&app, -2200, 0, "group mention with tags").await;
    assert!(r.visible_text().contains("李彬"), "{}", r.visible_text());
    let inline = app.api.wait_for_inline_answers(1, WAIT).await;
    assert_eq!(inline.len(), 1, "no inline answer; log:\n{}", app.log());
    let a = app.api.sent_messages(2201)[0].visible_text();
    assert!(a.contains("李彬") && a.contains("个人一等奖"), "{a}");
    // What the user sees is what they typed: escaped once, not twice.
    let echoed = |i: usize| app.api.sent_messages(2201 + i as i64)[0].visible_text();
    let n = questions.len();
    assert!(echoed(n - 3).contains("张&伟"), "{}", echoed(n - 3));
    assert!(
        echoed(n - 2).to_lowercase().contains("at&t"),
        "{}",
        echoed(n - 2)
    );
    assert!(echoed(n - 1).contains("&amp"), "{}", echoed(n - 1));
    assert_clean(&app);
}

// ---------------------------------------------------------------------------
// 13. Telegram failures

#[tokio::test]
async fn replies_survive_429_and_5xx() {
    let app = spawn_app_with(AppOptions {
        config: Some("[telegram]\nsend_timeout_secs = 1\n".into()),
        ..AppOptions::default()
    })
    .await;
    let u = zh_user(2301);

    app.api
        .fail_next("sendMessage", Fault::TooManyRequests { retry_after: 1 });
    let t = Instant::now();
    let a = ask(&app, &u, "个人一等奖是谁").await;
    let took = t.elapsed();
    assert!(a.visible_text().contains("李彬"), "{}", a.visible_text());
    assert!(
        took >= Duration::from_millis(900),
        "retry_after 1 s was not waited out ({took:?})"
    );
    let sends = app.api.calls_to("sendMessage");
    assert_eq!(
        sends.iter().map(|c| c.status).collect::<Vec<_>>(),
        [429, 200],
        "one 429, then one send"
    );

    app.api.fail_next("sendMessage", Fault::ServerError(500));
    let t = Instant::now();
    let a = ask(&app, &u, "团体一等奖是谁").await;
    let took = t.elapsed();
    assert!(
        a.visible_text().contains("工银浙里队"),
        "{}",
        a.visible_text()
    );
    assert!(
        took < Duration::from_secs(4),
        "the 5xx stalled the reply for {took:?} (send_timeout_secs = 1)"
    );
    let statuses: Vec<u16> = app
        .api
        .calls_to("sendMessage")
        .iter()
        .map(|c| c.status)
        .collect();
    assert_eq!(statuses, [429, 200, 500, 200]);

    // Still running, no duplicates.
    let a = ask(&app, &u, "李彬获得了什么奖").await;
    assert!(a.visible_text().contains("李彬"));
    assert!(stays_quiet(&app, 2301, Duration::from_millis(200)).await);
    assert_eq!(app.api.sent_messages(2301).len(), 3, "duplicates sent");
    assert!(app.child.is_some() && app.pid().is_some());
    let log = app.log();
    assert!(log.contains("429"), "the 429 is not logged:\n{log}");
    assert_clean(&app);
}

// ---------------------------------------------------------------------------
// 14. Flood protection

#[tokio::test]
async fn a_flooding_user_gets_one_notice_and_others_are_still_served() {
    let app = spawn_app_with(AppOptions {
        config: Some("[flood]\nmax_messages = 5\nwindow_secs = 10\ncooldown_secs = 30\n".into()),
        ..AppOptions::default()
    })
    .await;
    let flooder = zh_user(2401);
    let other = zh_user(2402);
    for _ in 0..10 {
        app.api
            .send_text(&flooder.private_chat(), &flooder, "个人一等奖是谁");
    }
    let t = Instant::now();
    let a = ask(&app, &other, "团体一等奖是谁").await;
    let took = t.elapsed();
    assert!(a.visible_text().contains("工银浙里队"));
    assert!(
        took < Duration::from_secs(2),
        "another user waited {took:?} behind the flood"
    );

    // Replies in one chat are paced at one a second.
    app.api
        .wait_for_messages(2401, 6, WAIT + Duration::from_secs(6))
        .await;
    assert!(
        stays_quiet(&app, 2401, Duration::from_millis(1500)).await,
        "the flooder keeps getting messages"
    );
    let msgs: Vec<String> = app
        .api
        .sent_messages(2401)
        .iter()
        .map(|m| m.visible_text())
        .collect();
    let notices = msgs.iter().filter(|m| m.contains("太快")).count();
    let answers = msgs.iter().filter(|m| m.contains("李彬")).count();
    assert_eq!(notices, 1, "notices: {msgs:#?}");
    assert_eq!(answers, 5, "max_messages = 5: {msgs:#?}");
    assert!(
        msgs.last().is_some_and(|m| m.contains("太快")),
        "the notice is not the last message: {msgs:#?}"
    );
    assert_clean(&app);
}

// ---------------------------------------------------------------------------
// 15. Signals

async fn stops_gracefully(sig: &str, slow_send: bool) {
    let mut app = spawn_app().await;
    let u = zh_user(2501);
    if slow_send {
        // The answer is still on its way when the signal arrives.
        app.api
            .fail_next("sendMessage", Fault::Delay(Duration::from_millis(800)));
    }
    let update = app.api.next_update_id();
    app.api.send_text(&u.private_chat(), &u, "个人一等奖是谁");
    // The bot fetched it (and asked for the next ones) …
    assert!(
        eventually(WAIT, || app.api.confirmed_offset() > update).await,
        "the update was never fetched; log:\n{}",
        app.log()
    );
    // … and is told to stop right away.
    let signalled = Instant::now();
    app.signal(sig);
    let code = app.wait_exit(Duration::from_secs(5)).await;
    let took = signalled.elapsed();
    assert_eq!(
        code,
        Some(0),
        "SIG{sig}: no clean exit within 5 s; log:\n{}",
        app.log()
    );
    let msgs = app.api.sent_messages(2501);
    assert_eq!(
        msgs.len(),
        1,
        "SIG{sig}: the in-flight answer was not delivered; log:\n{}",
        app.log()
    );
    assert!(msgs[0].visible_text().contains("李彬"));
    if slow_send {
        assert!(
            took >= Duration::from_millis(500),
            "exited after {took:?} without waiting for the answer"
        );
    }
    assert!(
        app.api.confirmed_offset() > update,
        "offset {} does not confirm update {update}",
        app.api.confirmed_offset()
    );
    assert_eq!(app.api.pending_updates(), 0);
    assert!(app.log().contains("stopped"), "log:\n{}", app.log());
    assert_clean(&app);
}

#[tokio::test]
async fn sigterm_delivers_the_answer_in_flight_and_exits_cleanly() {
    stops_gracefully("TERM", false).await;
}

#[tokio::test]
async fn sigint_waits_for_a_slow_answer_and_exits_cleanly() {
    stops_gracefully("INT", true).await;
}

/// Signalled the moment the question is sent, before the bot could fetch
/// it (the fake server answers polls only when this test yields): a clean
/// exit, the question is not confirmed without an answer, and it is answered
/// once the bot runs again.
#[tokio::test]
async fn sigterm_right_after_a_question_loses_nothing() {
    let mut app = spawn_app().await;
    let u = zh_user(2511);
    let update = app.api.next_update_id();
    app.api.send_text(&u.private_chat(), &u, "个人一等奖是谁");
    app.signal("TERM");
    let code = app.wait_exit(Duration::from_secs(5)).await;
    assert_eq!(code, Some(0), "log:\n{}", app.log());
    let answered = !app.api.sent_messages(2511).is_empty();
    let confirmed = app.api.confirmed_offset() > update;
    assert_eq!(
        answered,
        confirmed,
        "update {update}: answered {answered}, confirmed {confirmed}; log:\n{}",
        app.log()
    );
    if !answered {
        // Telegram keeps it for the next start.
        app.start().await;
        next_reply(&app, 2511, 0, "the question after a restart").await;
        assert!(
            eventually(WAIT, || app.api.confirmed_offset() > update).await,
            "not confirmed after the restart"
        );
    }
    assert!(stays_quiet(&app, 2511, Duration::from_millis(200)).await);
    let msgs = app.api.sent_messages(2511);
    assert_eq!(msgs.len(), 1, "answered twice");
    assert!(msgs[0].visible_text().contains("李彬"));
    assert_clean(&app);
}

// ---------------------------------------------------------------------------
// Bugs these tests found, now fixed.

/// A second tap on the same browsing button must not edit the message to the
/// text and keyboard it already has: Telegram refuses that with 400 "message
/// is not modified".
#[tokio::test]
async fn a_double_tapped_button_sends_no_refused_edit() {
    let app = spawn_app().await;
    let u = zh_user(2601);
    let list = ask(&app, &u, "/awards").await;
    app.api
        .press_button(&u.private_chat(), &u, list.message_id, "a:b");
    app.api
        .press_button(&u.private_chat(), &u, list.message_id, "a:b");
    let answers = app.api.wait_for_callback_answers(2, WAIT).await;
    assert_eq!(answers.len(), 2, "both taps are answered");
    assert_eq!(app.api.edits(2601).len(), 1);
    assert_clean(&app);
}

/// A button of an ambiguity whose reading no longer exists (e.g. after the
/// data was reloaded) gets the same notice as every other stale button,
/// "这个按钮已失效,请重新发送命令。" (it used to get a bare "?").
#[tokio::test]
async fn a_stale_reading_button_gets_the_expired_notice() {
    let app = spawn_app().await;
    let u = zh_user(2611);
    let m = ask(&app, &u, "平安获得了什么奖").await;
    app.api
        .press_button(&u.private_chat(), &u, m.message_id, "e:99999");
    let answers = app.api.wait_for_callback_answers(1, WAIT).await;
    assert_eq!(answers.len(), 1);
    assert!(
        answers[0]
            .text
            .as_deref()
            .is_some_and(|t| t.contains("失效")),
        "stale reading button answered with {:?}",
        answers[0].text
    );
    assert_clean(&app);
}
