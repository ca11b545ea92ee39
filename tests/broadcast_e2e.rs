//! End-to-end tests of subscriptions and announcements: the real `reportbot`
//! binary against the fake Bot API (`tests/support`), with its own SQLite
//! database per test.
//!
//! Run with `cargo test --test broadcast_e2e -- --nocapture` to see the
//! measured numbers (rate, resume time after kill -9, SIGTERM exit time).

mod support;

use reportbot::store::{AnnouncementId, AnnouncementState, ChatKind, Language};
use reportbot::store::{SqliteStore, Store};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use support::app::{AppOptions, TestApp, reportbot_command, spawn_app_with};
use support::botapi::{BotApiHandle, ChatSpec, Fault, Options, SentMessage, UserSpec};
use support::html::check_telegram_html;

/// Fast delivery for tests: the default 25/s, new work seen within 200 ms,
/// the admin's progress message updated every second, sends give up on a
/// silent server after 1 s.
const FAST_CONFIG: &str = "[telegram]\nsend_timeout_secs = 1\n\n\
                           [broadcast]\nrate_per_sec = 25.0\npoll_interval_ms = 200\n\
                           progress_interval_ms = 1000\n";

const ADMIN: u64 = 7001;
/// A question the built-in data answers (the answer names 李彬).
const QUESTION: &str = "李斌获得了什么奖";

async fn start_bot(admins: Vec<u64>, api: Options) -> TestApp {
    spawn_app_with(AppOptions {
        api,
        admins,
        config: Some(FAST_CONFIG.to_string()),
        ..AppOptions::default()
    })
    .await
}

fn store(app: &TestApp) -> SqliteStore {
    SqliteStore::open(&app.db).expect("open the bot's database")
}

/// Subscribe private chats straight into the database (the bot reads the
/// audience when an announcement is confirmed, so it may be running).
fn prefill(app: &TestApp, chats: &[i64]) {
    assert_eq!(app.subscribe_private(chats), chats.len() as u64);
}

/// Telegram's limits, strictly: a second message in a chat within a
/// second, or a 31st in any second, gets 429 (counted as a violation).
fn telegram_limits() -> Options {
    Options {
        global_per_sec: Some(30),
        per_chat_per_sec: Some(1),
        ..Options::default()
    }
}

fn chat_range(first: i64, n: usize) -> Vec<i64> {
    (first..first + n as i64).collect()
}

struct CliOutput {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn cli(app: &TestApp, args: &[&str]) -> CliOutput {
    let out = reportbot_command(&app.api.url(), &app.db)
        .args(args)
        .output()
        .await
        .expect("run reportbot");
    CliOutput {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `reportbot announce TEXT`; the id of the queued announcement.
async fn cli_announce(app: &TestApp, text: &str) -> AnnouncementId {
    let out = cli(app, &["announce", text]).await;
    assert_eq!(out.code, Some(0), "announce failed: {}", out.stderr);
    // "queued announcement 3 for 30 subscribers; …"
    let id = out
        .stdout
        .split_whitespace()
        .nth(2)
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no id in {:?}", out.stdout));
    AnnouncementId(id)
}

/// `reportbot subscribers` → (active, unsubscribed, blocked).
async fn cli_counts(app: &TestApp) -> (u64, u64, u64) {
    let out = cli(app, &["subscribers"]).await;
    assert_eq!(out.code, Some(0), "subscribers failed: {}", out.stderr);
    let field = |name: &str| -> u64 {
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name:?} in {:?}", out.stdout))
    };
    (field("active:"), field("unsubscribed:"), field("blocked:"))
}

/// How many messages with exactly `html` each chat got.
fn copies(api: &BotApiHandle, chats: &[i64], html: &str) -> HashMap<i64, usize> {
    chats
        .iter()
        .map(|&c| {
            let n = api
                .sent_messages(c)
                .iter()
                .filter(|m| m.text == html)
                .count();
            (c, n)
        })
        .collect()
}

/// Wait until every chat has at least one message with exactly `html`.
async fn wait_all_have(api: &BotApiHandle, chats: &[i64], html: &str, within: Duration) -> bool {
    api.wait_until(within, |h| {
        chats
            .iter()
            .all(|&c| h.sent_messages(c).iter().any(|m| m.text == html))
    })
    .await
}

async fn wait_state(app: &TestApp, id: AnnouncementId, state: AnnouncementState) -> bool {
    let s = store(app);
    for _ in 0..100 {
        if s.announcement(id).ok().flatten().map(|a| a.state) == Some(state) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// The next message to `chat` after the first `seen` ones.
async fn reply_after(app: &TestApp, chat: i64, seen: usize) -> SentMessage {
    let msgs = app
        .api
        .wait_for_messages(chat, seen + 1, Duration::from_secs(5))
        .await;
    msgs.get(seen).cloned().unwrap_or_else(|| {
        panic!(
            "no reply in chat {chat} after {seen} messages; log:\n{}",
            app.log()
        )
    })
}

/// Send `text` and return the bot's (first) answer.
async fn say(app: &TestApp, chat: &ChatSpec, user: &UserSpec, text: &str) -> String {
    let seen = app.api.sent_messages(chat.id()).len();
    app.api.send_text(chat, user, text);
    let m = reply_after(app, chat.id(), seen).await;
    check_telegram_html(&m.text).unwrap_or_else(|e| panic!("{e:?}: {}", m.text));
    m.visible_text()
}

fn assert_no_rejections(app: &TestApp) {
    let r = app.api.rejections();
    assert!(r.is_empty(), "Telegram would refuse: {r:?}");
}

/// Per chat, how many copies beyond the first; and the chats with none.
fn duplicates_and_missing(counts: &HashMap<i64, usize>) -> (usize, Vec<i64>) {
    let dup = counts.values().map(|&n| n.saturating_sub(1)).sum();
    let mut missing: Vec<i64> = counts
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(c, _)| *c)
        .collect();
    missing.sort_unstable();
    (dup, missing)
}

// ----- 1. subscribing in a private chat ----------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_status_unsubscribe_in_a_private_chat() {
    let app = start_bot(vec![], Options::default()).await;
    let alice = UserSpec::new(1001, "Alice").lang("zh-hans");
    let chat = alice.private_chat();

    let t = say(&app, &chat, &alice, "/subscribe").await;
    assert!(t.contains("已订阅"), "{t}");
    assert!(t.contains("公告"), "says what comes: {t}");
    assert!(t.contains("/unsubscribe"), "says how to stop: {t}");
    assert!(store(&app).is_subscribed(1001).unwrap());

    let t = say(&app, &chat, &alice, "/subscribe").await;
    assert!(t.contains("已经订阅"), "idempotent: {t}");
    assert!(!t.contains("✅"), "not a second confirmation: {t}");

    let t = say(&app, &chat, &alice, "/status").await;
    assert!(t.contains("已订阅") && !t.contains("未订阅"), "{t}");

    // A second user, in English, stays subscribed.
    let bob = UserSpec::new(1002, "Bob").lang("en");
    let t = say(&app, &bob.private_chat(), &bob, "/subscribe").await;
    assert!(
        t.contains("Subscribed") && t.contains("/unsubscribe"),
        "{t}"
    );
    assert_eq!(
        store(&app).subscriber(1002).unwrap().map(|s| s.language),
        Some(Language::En)
    );
    assert_eq!(cli_counts(&app).await, (2, 0, 0));

    let t = say(&app, &chat, &alice, "/unsubscribe").await;
    assert!(t.contains("已取消订阅"), "{t}");
    assert!(!store(&app).is_subscribed(1001).unwrap());

    let t = say(&app, &chat, &alice, "/unsubscribe").await;
    assert!(t.contains("没有订阅"), "{t}");

    let t = say(&app, &chat, &alice, "/status").await;
    assert!(t.contains("未订阅"), "{t}");

    assert_eq!(cli_counts(&app).await, (1, 1, 0));
    // Every command got exactly one answer.
    assert_eq!(app.api.sent_messages(1001).len(), 6);
    assert_no_rejections(&app);
}

// ----- 2. groups: only admins ----------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_groups_only_admins_subscribe() {
    let app = start_bot(vec![], Options::default()).await;
    let group = ChatSpec::group(-2001, "大赛家长群");
    let member = UserSpec::new(3001, "Member").lang("zh-hans");
    let admin = UserSpec::new(3002, "Admin").lang("zh-hans");
    app.api.set_chat_admin(-2001, 3002);

    let t = say(&app, &group, &member, "/subscribe@reportbot_test_bot").await;
    assert!(t.contains("管理员"), "polite refusal: {t}");
    assert!(!t.contains("已订阅"), "{t}");
    assert_eq!(
        store(&app).subscriber(-2001).unwrap(),
        None,
        "nothing stored"
    );

    let t = say(&app, &group, &admin, "/subscribe@reportbot_test_bot").await;
    assert!(t.contains("已订阅"), "{t}");
    let s = store(&app).subscriber(-2001).unwrap().expect("stored");
    assert_eq!(s.kind, ChatKind::Group);
    assert!(store(&app).is_subscribed(-2001).unwrap());

    // A member cannot unsubscribe the group either.
    let t = say(&app, &group, &member, "/unsubscribe@reportbot_test_bot").await;
    assert!(t.contains("管理员"), "{t}");
    assert!(store(&app).is_subscribed(-2001).unwrap());
    assert_eq!(cli_counts(&app).await, (1, 0, 0));
    assert_no_rejections(&app);
}

// ----- 3. /announce: admins only, preview, cancel, confirm, progress --------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announce_preview_cancel_confirm_and_progress() {
    let app = start_bot(vec![ADMIN], Options::default()).await;
    let api = &app.api;
    // Long enough (≈3 s at 25/s) for the progress message to be edited.
    let subs = chat_range(500_001, 80);
    prefill(&app, &subs);
    let blocked = subs[7];
    api.block_chat(blocked);
    let live: Vec<i64> = subs.iter().copied().filter(|&c| c != blocked).collect();

    let text = "<b>测试</b> & 公告";
    // A non-admin is refused.
    let eve = UserSpec::new(1003, "Eve").lang("zh-hans");
    let t = say(
        &app,
        &eve.private_chat(),
        &eve,
        &format!("/announce {text}"),
    )
    .await;
    assert!(t.contains("只有管理员"), "{t}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(api.sent_messages(1003).len(), 1, "no preview for Eve");
    assert_eq!(store(&app).announcement(AnnouncementId(1)).unwrap(), None);

    let admin = UserSpec::new(ADMIN, "Admin").lang("zh-hans");
    let admin_chat = admin.private_chat();
    let admin_id = ADMIN as i64;

    // Preview: a heading with the audience, then the text with the buttons.
    let preview = |seen: usize| async move {
        let msgs = api
            .wait_for_messages(admin_id, seen + 2, Duration::from_secs(5))
            .await;
        assert!(msgs.len() >= seen + 2, "no preview: {msgs:?}");
        (msgs[seen].clone(), msgs[seen + 1].clone())
    };
    api.send_text(&admin_chat, &admin, &format!("/announce {text}"));
    let (head, body) = preview(0).await;
    assert!(
        head.visible_text().contains("80"),
        "{}",
        head.visible_text()
    );
    assert_eq!(
        body.visible_text(),
        text,
        "the preview shows the literal text"
    );
    let mut data = body.callback_data();
    data.sort();
    assert_eq!(data, vec!["n:no:1".to_string(), "n:ok:1".to_string()]);

    // Cancel: nothing goes out.
    api.press_button(&admin_chat, &admin, body.message_id, "n:no:1");
    let answers = api
        .wait_for_callback_answers(1, Duration::from_secs(5))
        .await;
    let notice = answers[0].text.clone().unwrap_or_default();
    assert!(notice.contains("取消"), "{notice}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let any_sent = subs.iter().any(|&c| !api.sent_messages(c).is_empty());
    assert!(!any_sent, "a cancelled announcement was sent");
    // The buttons were taken away.
    assert!(
        api.edits(admin_id)
            .iter()
            .any(|e| e.message_id == Some(body.message_id) && e.buttons().is_empty()),
        "{:?}",
        api.edits(admin_id)
    );
    // A late Confirm on the cancelled one sends nothing either.
    api.press_button(&admin_chat, &admin, body.message_id, "n:ok:1");
    let answers = api
        .wait_for_callback_answers(2, Duration::from_secs(5))
        .await;
    let notice = answers[1].text.clone().unwrap_or_default();
    println!("Confirm after Cancel answers: {notice:?}");
    assert!(!notice.contains("开始发送"), "{notice}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(subs.iter().all(|&c| api.sent_messages(c).is_empty()));

    // Again, and Confirm.
    let seen = api.sent_messages(admin_id).len();
    api.send_text(&admin_chat, &admin, &format!("/announce {text}"));
    let (_, body) = preview(seen).await;
    let mut data = body.callback_data();
    data.sort();
    assert_eq!(data, vec!["n:no:2".to_string(), "n:ok:2".to_string()]);
    let confirmed_at = Instant::now();
    api.press_button(&admin_chat, &admin, body.message_id, "n:ok:2");
    let answers = api
        .wait_for_callback_answers(3, Duration::from_secs(5))
        .await;
    let notice = answers[2].text.clone().unwrap_or_default();
    assert!(notice.contains("80"), "{notice}");
    // A double click changes nothing.
    api.press_button(&admin_chat, &admin, body.message_id, "n:ok:2");

    let html = "&lt;b&gt;测试&lt;/b&gt; &amp; 公告";
    assert!(
        wait_all_have(api, &live, html, Duration::from_secs(10)).await,
        "not delivered to all; log:\n{}",
        app.log()
    );
    println!(
        "announcement to {} subscribers delivered {:?} after Confirm",
        live.len(),
        confirmed_at.elapsed()
    );
    assert!(wait_state(&app, AnnouncementId(2), AnnouncementState::Done).await);
    let counts = copies(api, &live, html);
    assert!(counts.values().all(|&n| n == 1), "not exactly once");
    for &c in &live {
        let m = &api.sent_messages(c)[0];
        assert_eq!(
            m.visible_text(),
            text,
            "subscriber {c} sees the literal text"
        );
    }
    assert!(api.sent_messages(blocked).is_empty());
    let answers = api
        .wait_for_callback_answers(4, Duration::from_secs(5))
        .await;
    assert!(
        answers[3]
            .text
            .as_deref()
            .is_some_and(|t| t.contains("已经确认")),
        "{:?}",
        answers[3]
    );

    // The progress message: sent after Confirm, edited, ends with a summary.
    let progress = api
        .sent_messages(admin_id)
        .into_iter()
        .find(|m| m.visible_text().contains("公告发送中"))
        .unwrap_or_else(|| panic!("no progress message: {:?}", api.sent_messages(admin_id)));
    let edits_of = || -> Vec<String> {
        api.edits(admin_id)
            .iter()
            .filter(|e| e.message_id == Some(progress.message_id))
            .filter_map(|e| e.visible_text())
            .collect()
    };
    // The summary: the progress message's last text, or (also fine) a new
    // message to the admin after it.
    let summary = || -> Option<String> {
        let edited = edits_of()
            .last()
            .filter(|t| t.contains("发送完毕"))
            .cloned();
        edited.or_else(|| {
            api.sent_messages(admin_id)
                .iter()
                .filter(|m| m.message_id > progress.message_id)
                .map(SentMessage::visible_text)
                .find(|t| t.contains("发送完毕"))
        })
    };
    api.wait_until(Duration::from_secs(6), |_| summary().is_some())
        .await;
    let edits = edits_of();
    println!("progress message edits: {edits:#?}");
    assert!(
        edits.iter().any(|t| t.contains("发送中")),
        "the progress message was never updated while sending: {edits:?}"
    );
    let Some(last) = summary() else {
        panic!(
            "no final summary 6 s after the last delivery; the admin still sees {:?}\nlog:\n{}",
            edits.last(),
            app.log()
        )
    };
    assert!(last.contains("已发送 79"), "{last}");
    assert!(last.contains("已屏蔽/退订 1"), "{last}");
    assert!(last.contains("失败 0"), "{last}");
    assert_no_rejections(&app);
}

/// Confirm pressed on an announcement that was cancelled: the admin is told
/// so (not that the service has trouble), and nothing is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirm_after_cancel_says_it_was_cancelled() {
    let app = start_bot(vec![ADMIN], Options::default()).await;
    let api = &app.api;
    let subs = chat_range(510_001, 3);
    prefill(&app, &subs);
    let admin = UserSpec::new(ADMIN, "Admin").lang("zh-hans");
    let chat = admin.private_chat();
    api.send_text(&chat, &admin, "/announce 取消后再确认");
    let msgs = api
        .wait_for_messages(ADMIN as i64, 2, Duration::from_secs(5))
        .await;
    let body = msgs.get(1).cloned().expect("preview with buttons");
    assert!(body.callback_data().contains(&"n:no:1".to_string()));
    api.press_button(&chat, &admin, body.message_id, "n:no:1");
    api.wait_for_callback_answers(1, Duration::from_secs(5))
        .await;
    api.press_button(&chat, &admin, body.message_id, "n:ok:1");
    let answers = api
        .wait_for_callback_answers(2, Duration::from_secs(5))
        .await;
    let notice = answers
        .get(1)
        .and_then(|a| a.text.clone())
        .unwrap_or_default();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(subs.iter().all(|&c| api.sent_messages(c).is_empty()));
    assert!(
        notice.contains("取消"),
        "the admin is not told the announcement was cancelled: {notice:?}"
    );
}

// ----- 4. too long for one message ---------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_long_announcements_are_refused() {
    let app = start_bot(vec![ADMIN], Options::default()).await;
    let api = &app.api;
    let subs = chat_range(600_001, 3);
    prefill(&app, &subs);
    // 2049 characters, 4098 UTF-16 units: counting chars would let it through.
    let big = "🏆".repeat(2049);

    let admin = UserSpec::new(ADMIN, "Admin").lang("zh-hans");
    let t = say(
        &app,
        &admin.private_chat(),
        &admin,
        &format!("/announce {big}"),
    )
    .await;
    assert!(t.contains("太长") && t.contains("4096"), "{t}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let to_admin = api.sent_messages(ADMIN as i64);
    assert_eq!(to_admin.len(), 1, "no preview: {to_admin:?}");
    assert!(to_admin[0].buttons().is_empty());
    assert_eq!(store(&app).announcement(AnnouncementId(1)).unwrap(), None);

    let path = app.dir.path().join("big.txt");
    std::fs::write(&path, &big).unwrap();
    let out = cli(&app, &["announce", "--file", path.to_str().unwrap()]).await;
    assert_ne!(out.code, Some(0), "accepted: {}", out.stdout);
    assert!(
        out.stderr.contains("too long") && out.stderr.contains("nothing was queued"),
        "{}",
        out.stderr
    );
    assert_eq!(store(&app).announcement(AnnouncementId(1)).unwrap(), None);

    // Exactly 4096 units is fine, and Telegram takes it.
    let fits = "🏆".repeat(2048);
    let path = app.dir.path().join("fits.txt");
    std::fs::write(&path, &fits).unwrap();
    let out = cli(&app, &["announce", "--file", path.to_str().unwrap()]).await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(wait_all_have(api, &subs, &fits, Duration::from_secs(5)).await);
    // Nothing else reached the subscribers.
    for &c in &subs {
        assert_eq!(api.sent_messages(c).len(), 1);
    }
    assert_no_rejections(&app);
}

/// Telegram counts the 4096 units *after* entity parsing: `&amp;` is one
/// unit. A text that fits as the subscriber sees it must not be refused
/// because of its escaping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_length_limit_counts_what_the_subscriber_sees() {
    let app = start_bot(vec![], Options::default()).await;
    let subs = chat_range(610_001, 2);
    prefill(&app, &subs);
    // 2999 units as typed and as shown; 5999 once `&` is escaped.
    let text = "Q&A ".repeat(750);
    let path = app.dir.path().join("qa.txt");
    std::fs::write(&path, &text).unwrap();
    let out = cli(&app, &["announce", "--file", path.to_str().unwrap()]).await;
    assert_eq!(
        out.code,
        Some(0),
        "a text of {} visible units was refused: {}",
        text.trim().encode_utf16().count(),
        out.stderr
    );
    assert!(
        wait_all_have(
            &app.api,
            &subs,
            &text.trim().replace('&', "&amp;"),
            Duration::from_secs(5)
        )
        .await
    );
    assert_no_rejections(&app);
}

// ----- 5. the CLI queues, the running bot delivers -----------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_announcement_is_delivered_by_the_running_bot() {
    let app = start_bot(vec![], Options::default()).await;
    let n = 50;
    let subs = chat_range(700_001, n);
    prefill(&app, &subs);
    let id = cli_announce(&app, "新大赛公告").await;
    let queued = Instant::now();
    let budget = Duration::from_secs(2) + Duration::from_secs_f64(n as f64 / 25.0);
    let all = wait_all_have(&app.api, &subs, "新大赛公告", budget).await;
    let took = queued.elapsed();
    println!("CLI announcement to {n} subscribers delivered in {took:?} (budget {budget:?})");
    assert!(
        all,
        "not all delivered within {budget:?}; log:\n{}",
        app.log()
    );
    assert!(wait_state(&app, id, AnnouncementState::Done).await);
    let (dup, missing) = duplicates_and_missing(&copies(&app.api, &subs, "新大赛公告"));
    assert_eq!((dup, missing.len()), (0, 0));
    assert_no_rejections(&app);
}

// ----- 6. blocked and vanished chats --------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_and_unknown_chats_are_unsubscribed_and_skipped() {
    let app = start_bot(vec![], Options::default()).await;
    let api = &app.api;
    let subs = chat_range(800_001, 30);
    prefill(&app, &subs);
    let blocked: Vec<i64> = subs[..5].to_vec();
    let gone: Vec<i64> = subs[10..12].to_vec();
    for &c in &blocked {
        api.block_chat(c);
    }
    for &c in &gone {
        api.forget_chat(c);
    }
    let dead: Vec<i64> = blocked.iter().chain(&gone).copied().collect();
    let live: Vec<i64> = subs.iter().copied().filter(|c| !dead.contains(c)).collect();
    assert_eq!(live.len(), 23);

    let first = cli_announce(&app, "第一条公告").await;
    assert!(wait_all_have(api, &live, "第一条公告", Duration::from_secs(5)).await);
    assert!(wait_state(&app, first, AnnouncementState::Done).await);
    let p = store(&app).progress(first).unwrap();
    assert_eq!((p.sent, p.blocked, p.failed, p.pending), (23, 7, 0, 0));
    assert_eq!(cli_counts(&app).await, (23, 0, 7));

    let second = cli_announce(&app, "第二条公告").await;
    assert!(wait_all_have(api, &live, "第二条公告", Duration::from_secs(5)).await);
    assert!(wait_state(&app, second, AnnouncementState::Done).await);
    assert_eq!(store(&app).progress(second).unwrap().total, 23);

    for text in ["第一条公告", "第二条公告"] {
        let (dup, missing) = duplicates_and_missing(&copies(api, &live, text));
        assert_eq!((dup, missing.len()), (0, 0), "{text}");
    }
    // One attempt per dead chat, ever: the first 403/400, nothing after.
    let calls = api.calls_to("sendMessage");
    for &c in &dead {
        let to_c: Vec<_> = calls.iter().filter(|k| k.chat_id() == Some(c)).collect();
        assert_eq!(to_c.len(), 1, "chat {c}: {to_c:?}");
        assert!(matches!(to_c[0].status, 400 | 403), "{:?}", to_c[0]);
    }
    let s = store(&app).subscriber(blocked[0]).unwrap().expect("kept");
    assert!(s.reason.is_some_and(|r| r.contains("blocked")));
    assert_no_rejections(&app);
}

// ----- 7. faults during a broadcast, and replies keep flowing ----------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_during_a_broadcast_and_replies_keep_flowing() {
    let app = start_bot(vec![], Options::default()).await;
    let api = &app.api;
    let subs = chat_range(900_001, 40);
    prefill(&app, &subs);
    let text = "故障演练公告";
    let id = cli_announce(&app, text).await;
    let user = UserSpec::new(1005, "Asker").lang("zh-hans");
    let chat = user.private_chat();

    let delivered = |h: &BotApiHandle| {
        subs.iter()
            .filter(|&&c| h.sent_messages(c).iter().any(|m| m.text == text))
            .count()
    };
    assert!(
        api.wait_until(Duration::from_secs(5), |h| delivered(h) >= 8)
            .await
    );

    // A question while the broadcast runs normally.
    let asked = Instant::now();
    let t = say(&app, &chat, &user, QUESTION).await;
    println!("answer during the broadcast after {:?}", asked.elapsed());
    assert!(t.contains("李彬"), "{t}");
    assert!(asked.elapsed() < Duration::from_secs(3));

    let failed_with = |status: u16| {
        move |h: &BotApiHandle| {
            h.calls_to("sendMessage")
                .iter()
                .filter(|c| c.status == status)
                .count()
        }
    };
    // One at a time, so each lands on a broadcast send, not on a reply.
    api.fail_next("sendMessage", Fault::TooManyRequests { retry_after: 1 });
    assert!(
        api.wait_until(Duration::from_secs(5), |h| failed_with(429)(h) == 1)
            .await
    );
    api.fail_next("sendMessage", Fault::ServerError(500));
    assert!(
        api.wait_until(Duration::from_secs(5), |h| failed_with(500)(h) == 1)
            .await
    );
    // The worker is now stuck on the 500 (teloxide waits 10 s after a 5xx):
    // answers must not wait for it.
    let stalled_at = delivered(api);
    let asked = Instant::now();
    let t = say(&app, &chat, &user, QUESTION).await;
    let answer_took = asked.elapsed();
    println!(
        "answer while the broadcast stalls on a 500 after {answer_took:?} ({stalled_at} of 40 delivered)"
    );
    assert!(t.contains("李彬"), "{t}");
    assert!(answer_took < Duration::from_secs(3), "{answer_took:?}");

    api.fail_next("sendMessage", Fault::ServerError(500));
    assert!(
        api.wait_until(Duration::from_secs(15), |h| failed_with(500)(h) == 2)
            .await,
        "log:\n{}",
        app.log()
    );
    let all = wait_all_have(api, &subs, text, Duration::from_secs(20)).await;
    assert!(all, "log:\n{}", app.log());
    assert!(wait_state(&app, id, AnnouncementState::Done).await);
    let (dup, missing) = duplicates_and_missing(&copies(api, &subs, text));
    assert_eq!((dup, missing.len()), (0, 0));
    let p = store(&app).progress(id).unwrap();
    assert_eq!((p.sent, p.failed, p.blocked), (40, 0, 0));

    // How long each fault held the broadcast up (next send to a subscriber).
    let mut calls: Vec<_> = api
        .calls_to("sendMessage")
        .into_iter()
        .filter(|c| c.chat_id().is_some_and(|c| subs.contains(&c)))
        .collect();
    calls.sort_by_key(|c| c.at);
    let held: Vec<(u16, Duration)> = calls
        .windows(2)
        .filter(|w| w[0].status != 200)
        .map(|w| (w[0].status, w[1].at.duration_since(w[0].at)))
        .collect();
    println!("broadcast held up after each fault: {held:?}");
    assert_eq!(held.len(), 3, "{held:?}");
    assert_eq!(held[0].0, 429);
    // Telegram's retry_after is honoured.
    assert!(held[0].1 >= Duration::from_millis(990), "{held:?}");
    // Still subscribed: a server error is not the chat's fault.
    assert_eq!(cli_counts(&app).await, (40, 0, 0));
    assert_no_rejections(&app);
}

// ----- 8. pacing under Telegram's limits -----------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pacing_stays_within_telegram_limits() {
    let app = start_bot(vec![], telegram_limits()).await;
    let api = &app.api;
    let subs = chat_range(1_000_001, 100);
    prefill(&app, &subs);
    let text = "限速公告";
    let id = cli_announce(&app, text).await;
    assert!(wait_all_have(api, &subs, text, Duration::from_secs(10)).await);
    assert!(wait_state(&app, id, AnnouncementState::Done).await);
    assert_eq!(api.violations(), 0, "429s from the strict limiter");

    let mut at: Vec<Instant> = api
        .all_sent_messages()
        .into_iter()
        .filter(|m| m.text == text)
        .map(|m| m.at)
        .collect();
    at.sort();
    assert_eq!(at.len(), 100);
    let span = at[99].duration_since(at[0]).as_secs_f64();
    let rate = 99.0 / span;
    let mut gaps: Vec<f64> = at
        .windows(2)
        .map(|w| w[1].duration_since(w[0]).as_secs_f64() * 1000.0)
        .collect();
    gaps.sort_by(f64::total_cmp);
    let max_in_a_second = (0..at.len())
        .map(|i| {
            at[i..]
                .iter()
                .take_while(|t| t.duration_since(at[i]) < Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0);
    println!(
        "pacing: {rate:.2} msg/s over {span:.2} s; gaps ms min {:.1} p50 {:.1} p95 {:.1} max {:.1}; at most {max_in_a_second} in any 1 s window",
        gaps[0],
        gaps[gaps.len() / 2],
        gaps[gaps.len() * 95 / 100],
        gaps[gaps.len() - 1]
    );
    assert!((22.5..=27.5).contains(&rate), "rate {rate:.2}/s");
    assert!(max_in_a_second <= 30, "{max_in_a_second} in one second");
    assert!(
        gaps[0] >= 20.0,
        "a burst: two sends {:.1} ms apart",
        gaps[0]
    );
    assert!(
        gaps[gaps.len() * 95 / 100] <= 80.0,
        "uneven: p95 gap {:.1} ms",
        gaps[gaps.len() * 95 / 100]
    );
    assert_no_rejections(&app);
}

/// Replies and announcements count against one limit: Telegram allows about
/// 30 messages a second per bot, whatever they are. A broadcast at 25/s
/// while 45 people ask at once must not push the bot past it.
#[tokio::test]
async fn replies_during_a_broadcast_stay_within_the_global_rate() {
    let app = start_bot(vec![], telegram_limits()).await;
    let api = &app.api;
    let subs = chat_range(1_100_001, 100);
    prefill(&app, &subs);
    let text = "限速公告二";
    let id = cli_announce(&app, text).await;
    // Wait until the broadcast runs at full rate, then the crowd asks.
    let started = Instant::now();
    while api
        .all_sent_messages()
        .iter()
        .filter(|m| m.text == text)
        .count()
        < 10
    {
        assert!(started.elapsed() < Duration::from_secs(10), "no broadcast");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let askers: Vec<UserSpec> = (0..45)
        .map(|i| UserSpec::new(1_200_001 + i, "测试用户").lang("zh-hans"))
        .collect();
    for u in &askers {
        api.send_text(&u.private_chat(), u, QUESTION);
    }
    assert!(wait_all_have(api, &subs, text, Duration::from_secs(20)).await);
    assert!(wait_state(&app, id, AnnouncementState::Done).await);
    for u in &askers {
        let r = reply_after(&app, u.id as i64, 0).await;
        assert!(r.visible_text().contains("李彬"), "{}", r.visible_text());
    }
    assert_eq!(
        api.violations(),
        0,
        "replies and the broadcast together exceeded 30 messages a second"
    );
    assert_no_rejections(&app);
}

// ----- 9. kill -9 in the middle -------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_broadcast_loses_nothing() {
    let mut app = start_bot(vec![], Options::default()).await;
    let subs = chat_range(1_100_001, 200);
    prefill(&app, &subs);
    let text = "崩溃恢复公告";
    let id = cli_announce(&app, text).await;

    let n = app
        .api
        .wait_for_total_sent(60, Duration::from_secs(10))
        .await;
    assert!(n >= 60, "only {n} sent; log:\n{}", app.log());
    app.kill_hard().await;
    let at_kill = app.api.total_sent();
    assert!(at_kill < 200, "finished before the kill");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.api.total_sent(), at_kill, "a killed bot still sends");

    let start_called = Instant::now();
    app.start().await;
    let started = Instant::now();
    let resumed = app
        .api
        .wait_for_total_sent(at_kill + 1, Duration::from_secs(10))
        .await;
    assert!(
        resumed > at_kill,
        "no delivery after restart; log:\n{}",
        app.log()
    );
    let first_after = app
        .api
        .all_sent_messages()
        .into_iter()
        .filter(|m| m.seq >= at_kill)
        .map(|m| m.at)
        .min()
        .expect("a message after restart");
    let since_call = first_after.duration_since(start_called);
    let since_ready = first_after.checked_duration_since(started);
    println!(
        "kill -9 after {at_kill} of 200; restart: start() took {:?}, first delivery {since_call:?} after start() was called, {} after it returned",
        started.duration_since(start_called),
        since_ready.map_or("before".to_string(), |d| format!("{d:?}"))
    );
    assert!(since_call < Duration::from_secs(5), "{since_call:?}");

    assert!(
        wait_all_have(&app.api, &subs, text, Duration::from_secs(15)).await,
        "log:\n{}",
        app.log()
    );
    assert!(wait_state(&app, id, AnnouncementState::Done).await);
    let (dup, missing) = duplicates_and_missing(&copies(&app.api, &subs, text));
    println!("after kill -9: {dup} duplicate(s), {} lost", missing.len());
    assert!(missing.is_empty(), "lost: {missing:?}");
    assert!(dup <= 1, "{dup} duplicates for one crash");
    assert_eq!(store(&app).progress(id).unwrap().sent, 200);
    assert_no_rejections(&app);
}

// ----- 10. SIGTERM in the middle ---------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_broadcast_exits_cleanly_and_resumes() {
    let mut app = start_bot(vec![], Options::default()).await;
    let subs = chat_range(1_200_001, 150);
    prefill(&app, &subs);
    let text = "平滑退出公告";
    let id = cli_announce(&app, text).await;

    let n = app
        .api
        .wait_for_total_sent(50, Duration::from_secs(10))
        .await;
    assert!(n >= 50, "only {n} sent");
    let signalled = Instant::now();
    app.signal("TERM");
    let code = app.wait_exit(Duration::from_secs(5)).await;
    let took = signalled.elapsed();
    let at_exit = app.api.total_sent();
    let recorded = store(&app).progress(id).unwrap();
    println!(
        "SIGTERM: exit code {code:?} after {took:?}; {at_exit} delivered, {} recorded as sent",
        recorded.sent
    );
    assert_eq!(code, Some(0), "log:\n{}", app.log());
    assert!(at_exit < 150, "finished before the signal");
    assert!(
        recorded.sent + 1 >= at_exit,
        "{} delivered but only {} recorded",
        at_exit,
        recorded.sent
    );
    assert!(app.log().contains("announcement delivery stopped"));

    app.start().await;
    assert!(
        wait_all_have(&app.api, &subs, text, Duration::from_secs(15)).await,
        "log:\n{}",
        app.log()
    );
    assert!(wait_state(&app, id, AnnouncementState::Done).await);
    let (dup, missing) = duplicates_and_missing(&copies(&app.api, &subs, text));
    println!(
        "after SIGTERM and restart: {dup} duplicate(s), {} lost",
        missing.len()
    );
    assert!(missing.is_empty(), "lost: {missing:?}");
    assert!(dup <= 1, "{dup} duplicates");
    assert_no_rejections(&app);
}
