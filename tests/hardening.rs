//! Issue 10, end to end: one bad update, one flooder or one odd update shape
//! must never take the bot down. Each test drives the real `reportbot`
//! binary against the fake Bot API server (`tests/support/botapi.rs`), the
//! way Telegram would, and fails on the code before the fix.

mod support;

use reportbot::engine::Engine;
use reportbot::knowledge::Knowledge;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::app::{AppOptions, reportbot_command, spawn_app, spawn_app_with};
use support::botapi::{
    BOT_USERNAME, BotApiHandle, ChatSpec, Fault, Options, TextOptions, UserSpec,
};
use support::e2e::{WAIT, ask, assert_clean, eventually, next_reply, stays_quiet, zh_user};

// ---------------------------------------------------------------------------
// 10. Settings

/// Runs `reportbot` with `env` (and an optional config file) and returns its
/// exit status and stderr. Start-up fails before any network traffic.
async fn start_up_error(env: &[(&str, &str)], config: Option<&str>) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = reportbot_command("http://127.0.0.1:9", &dir.path().join("bot.db"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(text) = config {
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).expect("write config");
        cmd.arg("--config").arg(path);
    }
    let out = tokio::time::timeout(WAIT, cmd.output())
        .await
        .expect("reportbot did not stop on a bad setting")
        .expect("run reportbot");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_negative_admin_id_is_refused_naming_the_setting() {
    let (ok, err) = start_up_error(&[("REPORTBOT_ADMINS", "-5")], None).await;
    assert!(!ok, "REPORTBOT_ADMINS=-5 was accepted; stderr:\n{err}");
    assert!(
        err.contains("REPORTBOT_ADMINS") && err.contains("-5"),
        "the error does not name the setting and the value:\n{err}"
    );
    let (ok, err) = start_up_error(&[], Some("[telegram]\nadmins = [12, -5]\n")).await;
    assert!(!ok, "admins = [-5] was accepted; stderr:\n{err}");
    assert!(
        err.contains("telegram.admins") && err.contains("-5"),
        "the error does not name the setting and the value:\n{err}"
    );
}

#[tokio::test]
async fn a_type_error_in_the_config_file_names_the_line_and_the_setting() {
    let (ok, err) = start_up_error(
        &[],
        Some("[flood]\nmax_messages = 5\n\n[telegram]\npolling_timeout_secs = \"ten\"\n"),
    )
    .await;
    assert!(!ok);
    assert!(
        err.contains("line 5") && err.contains("telegram.polling_timeout_secs"),
        "the error names neither the line nor the setting:\n{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "not one line:\n{err}");
}

#[tokio::test]
async fn a_start_up_error_names_its_cause_once() {
    let (ok, err) = start_up_error(&[("REPORTBOT_DB", "/nonexistent/dir/bot.db")], None).await;
    assert!(!ok);
    let lower = err.to_lowercase();
    assert_eq!(
        lower.matches("unable to open").count(),
        1,
        "the cause is repeated:\n{err}"
    );
    assert!(err.contains("/nonexistent/dir/bot.db"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "not one line:\n{err}");

    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing.toml");
    let (ok, err) = start_up_error(
        &[("REPORTBOT_CONFIG", missing.to_str().expect("utf-8 path"))],
        None,
    )
    .await;
    assert!(!ok);
    assert_eq!(
        err.matches("No such file or directory").count(),
        1,
        "the cause is repeated:\n{err}"
    );
}

/// The log goes to a file here (the test harness redirects stderr): no
/// terminal, so no colour codes.
#[tokio::test]
async fn logs_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    let app = spawn_app_with(AppOptions::default()).await;
    let u = zh_user(10_001);
    let a = ask(&app, &u, "个人一等奖是谁").await;
    assert!(a.visible_text().contains("李彬"));
    assert!(
        eventually(WAIT, || app.log().contains("handled message")).await,
        "log:\n{}",
        app.log()
    );
    let log = app.log();
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escape codes in a log file:\n{log:?}"
    );
    assert_clean(&app);
}

// ---------------------------------------------------------------------------
// 1. A poisoned update

/// Queues `text` from `user` in their private chat as a message whose JSON
/// is changed by `poison` before it is queued; returns its update id.
fn inject_poisoned(
    api: &BotApiHandle,
    user: &UserSpec,
    text: &str,
    poison: impl FnOnce(String) -> String,
) -> i64 {
    let chat = user.private_chat();
    let mid = api.store_text(&chat, user, text, TextOptions::default());
    let json = api
        .message_json(chat.id(), mid)
        .expect("stored message")
        .to_string();
    api.inject_raw_text("message", &poison(json))
}

#[tokio::test]
async fn a_poisoned_update_is_skipped_and_the_rest_of_its_batch_answered() {
    let app = spawn_app().await;
    let api = &app.api;
    let (a, b, c, d) = (
        zh_user(11_001),
        zh_user(11_002),
        zh_user(11_003),
        zh_user(11_004),
    );

    // One batch: good, a lone surrogate, a field of the wrong type, good.
    api.hold_updates(true);
    api.send_text(&a.private_chat(), &a, "个人一等奖是谁");
    let surrogate = inject_poisoned(api, &b, "机密内容甲POISON", |j| {
        j.replace("POISON", "\\ud800")
    });
    let wrong_type = inject_poisoned(api, &c, "私密问题乙", |j| {
        let mut v: Value = serde_json::from_str(&j).expect("json");
        v["date"] = json!("昨天丙");
        v.to_string()
    });
    api.send_text(&d.private_chat(), &d, "团体一等奖是谁");
    let last = api.next_update_id() - 1;
    api.hold_updates(false);

    let ra = next_reply(&app, 11_001, 0, "the question before the poisoned ones").await;
    assert!(ra.visible_text().contains("李彬"), "{}", ra.visible_text());
    let rd = next_reply(&app, 11_004, 0, "the question after the poisoned ones").await;
    assert!(
        rd.visible_text().contains("工银浙里队"),
        "{}",
        rd.visible_text()
    );
    assert!(
        eventually(WAIT, || api.confirmed_offset() > last).await,
        "the offset did not move past the batch: confirmed {}, last update {last}",
        api.confirmed_offset()
    );
    assert!(api.sent_messages(11_002).is_empty() && api.sent_messages(11_003).is_empty());

    // Still running: the next question is answered.
    let r = ask(&app, &a, "李彬获得了什么奖").await;
    assert!(r.visible_text().contains("李彬"));

    // The log names the skipped updates and what was wrong, never what they said.
    let skipped = |id: i64| {
        app.log()
            .lines()
            .any(|l| l.contains("unreadable update skipped") && l.contains(&id.to_string()))
    };
    assert!(
        eventually(WAIT, || skipped(surrogate) && skipped(wrong_type)).await,
        "updates {surrogate} and {wrong_type} not logged as skipped; log:\n{}",
        app.log()
    );
    let log = app.log();
    for secret in ["机密内容甲", "私密问题乙", "昨天丙"] {
        assert!(
            !log.contains(secret),
            "the log shows a user's words {secret:?}:\n{log}"
        );
    }
    let line = log
        .lines()
        .find(|l| l.contains("unreadable update skipped") && l.contains(&surrogate.to_string()))
        .unwrap_or_default();
    assert!(line.contains("malformed JSON"), "no error kind: {line}");
    let line = log
        .lines()
        .find(|l| l.contains("unreadable update skipped") && l.contains(&wrong_type.to_string()))
        .unwrap_or_default();
    assert!(
        line.contains("date") && line.contains("invalid type"),
        "no error kind: {line}"
    );
    assert_clean(&app);
}

// ---------------------------------------------------------------------------
// 2. Unknown entity types, fields and update kinds

#[tokio::test]
async fn a_message_with_an_unknown_entity_type_is_answered() {
    let app = spawn_app().await;
    let api = &app.api;
    let u = zh_user(12_001);
    let chat = u.private_chat();
    let entities = vec![
        json!({"type": "bot_command", "offset": 0, "length": 7}),
        json!({"type": "date_time_2031", "offset": 8, "length": 2, "unix_time": 1_700_000_000}),
    ];
    let mid = api.store_text(
        &chat,
        &u,
        "/winner 李彬",
        TextOptions {
            entities: Some(entities.clone()),
            ..TextOptions::default()
        },
    );
    let mut message = api.message_json(chat.id(), mid).expect("stored");
    message["a_field_from_2031"] = json!({"nested": [1, 2, 3]});
    api.inject_raw("an_update_kind_from_2031", json!({"anything": true}));
    api.inject_raw("message", message);
    let r = next_reply(&app, chat.id(), 0, "/winner 李彬 with an unknown entity").await;
    let text = r.visible_text();
    assert!(
        text.contains("李彬") && text.contains("一等奖"),
        "not the answer for 李彬:\n{text}"
    );

    // The same in a group, addressed to the bot by name.
    let group = ChatSpec::supergroup(-100_120_001, "测试群");
    let cmd = format!("/winner@{BOT_USERNAME} 李彬");
    let mut entities = entities;
    entities[0] = json!({"type": "bot_command", "offset": 0, "length": 8 + BOT_USERNAME.len()});
    entities[1]["offset"] = json!(cmd.encode_utf16().count() - 2);
    let mid = api.store_text(
        &group,
        &u,
        &cmd,
        TextOptions {
            entities: Some(entities),
            ..TextOptions::default()
        },
    );
    let message = api.message_json(group.id(), mid).expect("stored");
    api.inject_raw("message", message);
    let r = next_reply(&app, group.id(), 0, "/winner@bot 李彬 in a group").await;
    assert!(r.visible_text().contains("李彬"), "{}", r.visible_text());
    assert!(
        app.log().contains("date_time_2031"),
        "the left-out entity type is not logged:\n{}",
        app.log()
    );
    assert_clean(&app);
}

// ---------------------------------------------------------------------------
// 3. A flooder, with Telegram's rate limits in force

/// The fake server answers 429 to a second message in a chat within a
/// second, and to the 31st in any second overall (counted as violations).
fn telegram_limits() -> Options {
    Options {
        per_chat_per_sec: Some(1),
        global_per_sec: Some(30),
        ..Options::default()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::test]
async fn a_flooder_slows_nobody_else_and_the_bot_causes_no_429() {
    let app = spawn_app_with(AppOptions {
        api: telegram_limits(),
        config: Some("[flood]\nmax_messages = 5\nwindow_secs = 10\ncooldown_secs = 30\n".into()),
        ..AppOptions::default()
    })
    .await;
    let api = app.api.handle();
    let flooder = zh_user(13_000);
    // 200 messages in 2 s from one user; meanwhile 20 others ask once each.
    let mut asked: Vec<(i64, Instant)> = Vec::new();
    for round in 0..20u64 {
        for _ in 0..10 {
            api.send_text(&flooder.private_chat(), &flooder, "个人一等奖是谁");
        }
        let other = zh_user(13_001 + round);
        api.send_text(&other.private_chat(), &other, "团体一等奖是谁");
        asked.push((other.id as i64, Instant::now()));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut waits = Vec::new();
    for (chat, at) in &asked {
        let r = next_reply(&app, *chat, 0, "a question during the flood").await;
        assert!(
            r.visible_text().contains("工银浙里队"),
            "{}",
            r.visible_text()
        );
        waits.push(r.at.duration_since(*at));
    }
    waits.sort();
    let p99 = percentile(&waits, 0.99);
    assert!(
        p99 < Duration::from_secs(2),
        "other users' p99 reply time {p99:?} during the flood: {waits:?}"
    );

    // The flooder: the first 5 answered (one a second), one notice, then quiet.
    api.wait_for_messages(13_000, 6, WAIT + Duration::from_secs(6))
        .await;
    assert!(
        stays_quiet(&app, 13_000, Duration::from_millis(2500)).await,
        "the flooder keeps getting answers"
    );
    let msgs: Vec<String> = api
        .sent_messages(13_000)
        .iter()
        .map(|m| m.visible_text())
        .collect();
    assert_eq!(
        msgs.iter().filter(|m| m.contains("太快")).count(),
        1,
        "{msgs:#?}"
    );
    assert_eq!(
        msgs.iter().filter(|m| m.contains("李彬")).count(),
        5,
        "{msgs:#?}"
    );
    assert_eq!(
        api.violations(),
        0,
        "the bot exceeded Telegram's limits (429s)"
    );
    assert_clean(&app);
}

#[tokio::test]
async fn a_burst_of_users_is_answered_within_the_global_rate() {
    let app = spawn_app_with(AppOptions {
        api: telegram_limits(),
        ..AppOptions::default()
    })
    .await;
    let api = &app.api;
    for i in 0..45 {
        let u = zh_user(13_100 + i);
        api.send_text(&u.private_chat(), &u, "个人一等奖是谁");
    }
    let sent = api.wait_for_total_sent(45, WAIT).await;
    assert_eq!(sent, 45, "not everybody was answered; log:\n{}", app.log());
    assert_eq!(
        api.violations(),
        0,
        "more than 30 messages in a second (429s from Telegram)"
    );
    let mut at: Vec<Instant> = api.all_sent_messages().iter().map(|m| m.at).collect();
    at.sort();
    for w in at.windows(31) {
        assert!(w[30].duration_since(w[0]) >= Duration::from_secs(1));
    }
    assert_clean(&app);
}

// ---------------------------------------------------------------------------
// 7. SIGTERM during a long 429 wait

#[tokio::test]
async fn sigterm_during_a_long_429_wait_stops_within_5_s_and_logs_the_dropped_reply() {
    let mut app = spawn_app().await;
    let u = zh_user(17_001);
    app.api
        .fail_next("sendMessage", Fault::TooManyRequests { retry_after: 60 });
    app.api.send_text(&u.private_chat(), &u, "个人一等奖是谁");
    assert!(
        app.api
            .wait_until(WAIT, |h| h
                .calls_to("sendMessage")
                .iter()
                .any(|c| c.status == 429))
            .await,
        "the 429 was never met; log:\n{}",
        app.log()
    );
    // The bot is now waiting out retry_after = 60 s.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let signalled = Instant::now();
    app.signal("TERM");
    let code = app.wait_exit(Duration::from_secs(5)).await;
    assert_eq!(
        code,
        Some(0),
        "no clean exit within 5 s of SIGTERM ({:?}); log:\n{}",
        signalled.elapsed(),
        app.log()
    );
    let log = app.log();
    let stopped = log
        .lines()
        .find(|l| l.contains("stopped") && l.contains("dropped="))
        .unwrap_or_else(|| panic!("no 'stopped' line with the dropped replies; log:\n{log}"));
    assert!(
        stopped.contains("dropped=1"),
        "the dropped reply is not counted: {stopped}"
    );
    assert!(app.api.sent_messages(17_001).is_empty());
}

// ---------------------------------------------------------------------------
// 6. Forum topics

#[tokio::test]
async fn a_question_in_a_forum_topic_is_answered_in_that_topic_even_if_deleted() {
    let app = spawn_app().await;
    let api = &app.api;
    let forum = ChatSpec::forum(-100_160_001, "论坛");
    let u = zh_user(16_001);
    let cmd = format!("/winner@{BOT_USERNAME} 李彬");
    let topic = |thread: i64| TextOptions {
        thread_id: Some(thread),
        ..TextOptions::default()
    };
    api.send_text_with(&forum, &u, &cmd, topic(77));
    let r = next_reply(&app, forum.id(), 0, "a question in topic 77").await;
    assert!(r.visible_text().contains("李彬"));
    assert_eq!(r.thread_id, Some(77), "answered outside the topic");

    // Deleted before the bot could quote it: still answered in its topic.
    api.hold_updates(true);
    let mid = api.send_text_with(&forum, &u, &cmd, topic(78));
    api.delete_user_message(forum.id(), mid);
    api.hold_updates(false);
    let r = next_reply(&app, forum.id(), 1, "a deleted question in topic 78").await;
    assert!(r.visible_text().contains("李彬"));
    assert_eq!(
        r.thread_id,
        Some(78),
        "the answer to a deleted question left its topic"
    );

    // Outside topics (General, an ordinary group) no thread is named.
    api.send_text(&forum, &u, &cmd);
    let r = next_reply(&app, forum.id(), 2, "a question in General").await;
    assert_eq!(r.thread_id, None);
    let group = ChatSpec::supergroup(-100_160_002, "普通群");
    api.send_text_with(&group, &u, &cmd, topic(5));
    let r = next_reply(&app, group.id(), 0, "a reply thread in an ordinary group").await;
    assert!(r.visible_text().contains("李彬"));
    assert_clean(&app);
}

// ---------------------------------------------------------------------------
// 9. Stale buttons after a data reload

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("entry");
        let target = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

#[tokio::test]
async fn a_button_made_before_a_reload_that_reorders_the_data_still_names_the_right_one() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("data"), &data);
    let app = spawn_app_with(AppOptions {
        args: vec!["--data".into(), data.display().to_string()],
        config: Some("[data]\nwatch = false\n".into()),
        ..AppOptions::default()
    })
    .await;
    let u = zh_user(19_001);
    let chat = u.private_chat();
    let m = ask(&app, &u, "平安获得了什么奖").await;
    let life = m
        .buttons()
        .into_iter()
        .find(|(label, _)| label.contains("平安人寿"))
        .and_then(|(_, d)| d)
        .unwrap_or_else(|| panic!("no 平安人寿 button: {:?}", m.buttons()));

    // Reverse the list of institutions: every institution moves.
    let before = Engine::new(Arc::new(Knowledge::load_dir(&data).expect("data")));
    let path = data.join("institutions.json");
    let mut list: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
    list.reverse();
    std::fs::write(&path, serde_json::to_string_pretty(&list).expect("json")).expect("write");
    let after = Engine::new(Arc::new(Knowledge::load_dir(&data).expect("data")));
    let position = |e: &Engine| {
        e.entities()
            .iter()
            .position(|x| x.name.contains("平安人寿"))
    };
    assert_ne!(
        position(&before),
        position(&after),
        "the reorder moved nothing"
    );

    app.signal("HUP");
    assert!(
        eventually(WAIT, || app.log().contains("reports reloaded")).await,
        "no reload; log:\n{}",
        app.log()
    );
    app.api.press_button(&chat, &u, m.message_id, &life);
    let picked = next_reply(&app, chat.id(), 1, "the old 平安人寿 button").await;
    let text = picked.visible_text();
    assert!(
        text.contains("平安人寿浙江分公司") && text.contains("章倚"),
        "an old button named somebody else after the reload:\n{text}"
    );
    assert!(!text.contains("平安财险浙江分公司"), "{text}");

    // A button whose name is gone, or from before stable keys: out of date.
    app.api
        .press_button(&chat, &u, m.message_id, "k:000000000000");
    app.api.press_button(&chat, &u, m.message_id, "e:3");
    let answers = app.api.wait_for_callback_answers(3, WAIT).await;
    assert_eq!(answers.len(), 3);
    for a in &answers[1..] {
        assert!(
            a.text.as_deref().is_some_and(|t| t.contains("失效")),
            "an unknown button is not called out of date: {a:?}"
        );
    }
    assert_clean(&app);
}

// ---------------------------------------------------------------------------
// 11. A button on an inline-mode message

#[tokio::test]
async fn a_button_on_an_inline_message_edits_it_and_writes_to_nobody() {
    let app = spawn_app().await;
    let api = &app.api;
    let u = zh_user(21_001);
    let engine = Engine::builtin().expect("built-in data");
    let li_bin = engine
        .entities()
        .iter()
        .find(|e| e.name == "李彬")
        .expect("李彬 is in the data")
        .key();
    let q1 = api.press_inline_button(&u, "inline-1", "a:b");
    let q2 = api.press_inline_button(&u, "inline-1", &format!("k:{li_bin}"));
    let answers = api.wait_for_callback_answers(2, WAIT).await;
    let ids: Vec<&str> = answers
        .iter()
        .map(|a| a.callback_query_id.as_str())
        .collect();
    assert!(
        ids.contains(&q1.as_str()) && ids.contains(&q2.as_str()),
        "{answers:?}"
    );
    assert!(
        api.wait_until(WAIT, |h| h.inline_message_edits().len() >= 2)
            .await,
        "the inline message was not edited; log:\n{}",
        app.log()
    );
    let edits = api.inline_message_edits();
    assert!(
        edits
            .iter()
            .all(|e| e.inline_message_id.as_deref() == Some("inline-1"))
    );
    assert!(
        edits
            .iter()
            .any(|e| e.visible_text().is_some_and(|t| t.contains("李彬"))),
        "{edits:?}"
    );
    assert!(
        stays_quiet(&app, 21_001, Duration::from_millis(500)).await
            && api.sent_messages(21_001).is_empty(),
        "the presser's private chat got a message"
    );
    assert_eq!(api.total_sent(), 0);
    assert_clean(&app);
}

// ---------------------------------------------------------------------------
// 5. Anonymous group admins

#[tokio::test]
async fn an_anonymous_group_admin_is_answered_with_the_groups_admin_rights() {
    let app = spawn_app().await;
    let api = &app.api;
    let group = ChatSpec::supergroup(-100_150_001, "测试群");
    let gid = group.id();
    api.send_as_anonymous_admin(&group, &format!("/winner@{BOT_USERNAME} 李彬"));
    let r = next_reply(&app, gid, 0, "/winner from an anonymous admin").await;
    assert!(r.visible_text().contains("李彬"), "{}", r.visible_text());

    api.send_as_anonymous_admin(&group, "/subscribe");
    let r = next_reply(&app, gid, 1, "/subscribe from an anonymous admin").await;
    assert!(
        r.visible_text().contains("已订阅"),
        "an anonymous admin may not subscribe the group: {}",
        r.visible_text()
    );
    // A plain member may not undo it; the anonymous admin may.
    let member = zh_user(15_001);
    api.send_text(&group, &member, "/unsubscribe");
    let r = next_reply(&app, gid, 2, "/unsubscribe from a member").await;
    assert!(
        r.visible_text().contains("只有群管理员"),
        "{}",
        r.visible_text()
    );
    api.send_as_anonymous_admin(&group, "/unsubscribe");
    let r = next_reply(&app, gid, 3, "/unsubscribe from an anonymous admin").await;
    assert!(
        r.visible_text().contains("已取消订阅"),
        "{}",
        r.visible_text()
    );
    assert_clean(&app);
}

// ---------------------------------------------------------------------------
// 8. /announce inside a group

#[tokio::test]
async fn announce_in_a_group_sends_the_preview_privately_never_to_the_group() {
    let app = spawn_app_with(AppOptions {
        admins: vec![18_001, 18_002],
        ..AppOptions::default()
    })
    .await;
    let api = &app.api;
    let group = ChatSpec::supergroup(-100_180_001, "测试群");
    let gid = group.id();
    let words = "新一届大赛报名开始(尚未发送)";
    let admin = zh_user(18_001);
    api.send_text(&group, &admin, &format!("/announce {words}"));
    let pointer = next_reply(&app, gid, 0, "/announce in a group").await;
    assert!(
        pointer.visible_text().contains("私"),
        "the group is not told where the preview is: {}",
        pointer.visible_text()
    );
    let private = api.wait_for_messages(18_001, 2, WAIT).await;
    let preview = private
        .iter()
        .find(|m| m.visible_text().contains(words))
        .unwrap_or_else(|| panic!("no private preview: {private:?}"));
    assert!(
        preview
            .callback_data()
            .iter()
            .any(|d| d.starts_with("n:ok:")),
        "the preview has no Confirm button: {:?}",
        preview.buttons()
    );

    // An admin the bot cannot write to privately: a pointer, no preview.
    let admin2 = zh_user(18_002);
    api.block_chat(18_002);
    api.send_text(&group, &admin2, &format!("/announce {words}"));
    let refusal = next_reply(
        &app,
        gid,
        1,
        "/announce from an admin without a private chat",
    )
    .await;
    assert!(
        refusal.visible_text().contains(BOT_USERNAME),
        "no pointer to the private chat: {}",
        refusal.visible_text()
    );
    assert!(stays_quiet(&app, gid, Duration::from_millis(1500)).await);
    for m in api.sent_messages(gid) {
        assert!(
            !m.visible_text().contains(words),
            "the unsent announcement was posted to the group: {}",
            m.visible_text()
        );
    }
    assert_clean(&app);
}
