//! Subscriptions, announcements and their delivery, on a real database file.

mod support;

use reportbot::broadcast::{BroadcastEvent, BroadcastSettings, Broadcaster, TelegramSender};
use reportbot::store::migrations::LATEST_VERSION;
use reportbot::store::{
    AnnouncementId, AnnouncementState, ChatKind, DeliveryState, Language, NewAnnouncement,
    NewSubscriber, Origin, ProgressMessage, SqliteStore, Store, StoreError, SubscriberCounts,
    SubscriberStatus,
};
use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};
use support::botapi::{FakeBotApi, Fault, Options};
use teloxide::Bot;
use tokio::sync::watch;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn private(chat_id: i64) -> NewSubscriber {
    NewSubscriber {
        chat_id,
        kind: ChatKind::Private,
        language: Language::Zh,
    }
}

fn note(text: &str, key: Option<&str>) -> NewAnnouncement {
    NewAnnouncement {
        text_html: text.into(),
        created_by: Origin::Cli,
        dedupe_key: key.map(str::to_string),
    }
}

fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
    SqliteStore::open(dir.join("reportbot.db"))
}

#[test]
fn subscribe_and_unsubscribe_are_idempotent() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path())?;
    assert!(!store.is_subscribed(1)?);
    assert!(store.subscribe(&private(1))?);
    assert!(
        !store.subscribe(&private(1))?,
        "second subscribe changes nothing"
    );
    assert!(store.is_subscribed(1)?);
    assert!(store.unsubscribe(1)?);
    assert!(!store.unsubscribe(1)?, "second unsubscribe changes nothing");
    assert!(!store.unsubscribe(99)?, "unknown chat");
    assert!(!store.is_subscribed(1)?);
    assert!(store.subscribe(&private(1))?, "back again");
    let s = store.subscriber(1)?.ok_or("missing")?;
    assert_eq!(s.status, SubscriberStatus::Active);
    assert_eq!(s.kind, ChatKind::Private);
    Ok(())
}

#[test]
fn counts_by_status() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path())?;
    assert_eq!(store.counts()?, SubscriberCounts::default());
    let group = NewSubscriber {
        chat_id: -10,
        kind: ChatKind::Group,
        language: Language::En,
    };
    assert_eq!(
        store.subscribe_many(&[private(1), private(2), private(3), group])?,
        4
    );
    store.unsubscribe(2)?;
    assert!(store.mark_chat_blocked(3, "Forbidden: user is deactivated")?);
    assert!(!store.mark_chat_blocked(3, "again")?);
    assert_eq!(
        store.counts()?,
        SubscriberCounts {
            active: 2,
            unsubscribed: 1,
            blocked: 1
        }
    );
    let blocked = store.subscriber(3)?.ok_or("missing")?;
    assert_eq!(
        blocked.reason.as_deref(),
        Some("Forbidden: user is deactivated")
    );
    // Blocked chats that subscribe again are active again.
    assert!(store.subscribe(&private(3))?);
    assert_eq!(store.counts()?.blocked, 0);
    assert_eq!(store.subscriber(3)?.ok_or("missing")?.reason, None);
    Ok(())
}

#[test]
fn confirm_fans_out_a_snapshot() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path())?;
    store.subscribe_many(&[private(1), private(2), private(3)])?;
    store.unsubscribe(3)?;
    let draft = store.create_announcement(&NewAnnouncement {
        text_html: "<b>新公告</b>".into(),
        created_by: Origin::Admin(42),
        dedupe_key: None,
    })?;
    assert_eq!(draft.state, AnnouncementState::Draft);
    assert!(store.next_pending(10)?.is_empty(), "a draft sends nothing");
    assert!(store.pending_announcements()?.is_empty());

    let confirmed = store.confirm(draft.id)?;
    assert_eq!(confirmed.deliveries, 2);
    // Subscribes after the confirmation: not part of this announcement.
    store.subscribe(&private(4))?;
    let chats: Vec<i64> = store.next_pending(10)?.iter().map(|d| d.chat_id).collect();
    assert_eq!(chats, vec![1, 2]);
    let queued = store.pending_announcements()?;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].id, draft.id);
    assert_eq!(queued[0].state, AnnouncementState::Queued);
    assert_eq!(queued[0].created_by, Origin::Admin(42));
    assert!(queued[0].queued_at.is_some());
    // The next announcement does reach chat 4.
    let next = store.queue_now(&note("second", None))?;
    assert_eq!(store.progress(next.id)?.total, 3);
    Ok(())
}

#[test]
fn dedupe_key_announces_once() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path())?;
    store.subscribe_many(&[private(1), private(2)])?;
    let first = store.queue_now(&note("2099 results", Some("report:2099-test")))?;
    assert!(!first.duplicate);
    assert_eq!(first.state, AnnouncementState::Queued);
    let again = store.queue_now(&note("2099 results!", Some("report:2099-test")))?;
    assert!(again.duplicate);
    assert_eq!(again.id, first.id);
    let created = store.create_announcement(&note("x", Some("report:2099-test")))?;
    assert!(created.duplicate);
    assert_eq!(created.id, first.id);
    assert_eq!(store.progress(first.id)?.total, 2, "nothing queued twice");
    assert_eq!(store.next_pending(10)?.len(), 2);
    // Another key is another announcement.
    assert!(
        !store
            .queue_now(&note("y", Some("report:2100-test")))?
            .duplicate
    );
    Ok(())
}

#[test]
fn progress_counts_each_outcome() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path())?;
    store.subscribe_many(&(1..=5).map(private).collect::<Vec<_>>())?;
    let a = store.queue_now(&note("hi", None))?.id;
    let d = store.next_pending(10)?;
    assert_eq!(d.len(), 5);
    store.mark_sent(d[0].id, 100)?;
    store.mark_sent(d[1].id, 101)?;
    store.mark_failed(d[2].id, "Bad Request: have no rights to send a message")?;
    store.mark_retry(d[3].id, "Internal Server Error", Duration::ZERO)?;
    let p = store.progress(a)?;
    assert_eq!(
        (p.total, p.sent, p.failed, p.blocked, p.pending),
        (5, 2, 1, 0, 2)
    );
    assert_eq!(p.finished(), 3);
    assert!(!store.complete_if_done(a)?, "two pending");
    store.mark_blocked(d[3].id, "Forbidden: bot was blocked by the user")?;
    store.mark_sent(d[4].id, 104)?;
    assert!(store.complete_if_done(a)?);
    let done = store.announcement(a)?.ok_or("missing")?;
    assert_eq!(done.state, AnnouncementState::Done);
    assert!(done.finished_at.is_some());
    assert!(store.pending_announcements()?.is_empty());
    let info = store.delivery(d[0].id)?.ok_or("missing")?;
    assert_eq!(info.state, DeliveryState::Sent);
    assert_eq!(info.message_id, Some(100));
    assert!(info.sent_at.is_some());
    assert!(matches!(
        store.cancel(a),
        Err(StoreError::InvalidState {
            state: AnnouncementState::Done,
            ..
        })
    ));
    Ok(())
}

#[test]
fn mark_blocked_unsubscribes_and_blocks_the_chats_other_deliveries() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = open(dir.path())?;
    store.subscribe_many(&[private(1), private(2)])?;
    let a = store.queue_now(&note("one", None))?.id;
    let b = store.queue_now(&note("two", None))?.id;
    let to_2 = store
        .next_pending(10)?
        .into_iter()
        .find(|d| d.chat_id == 2 && d.announcement_id == a)
        .ok_or("no delivery to chat 2")?;
    store.mark_blocked(to_2.id, "Forbidden: bot was blocked by the user")?;
    assert!(!store.is_subscribed(2)?);
    assert_eq!(store.counts()?.blocked, 1);
    let pa = store.progress(a)?;
    let pb = store.progress(b)?;
    assert_eq!((pa.blocked, pa.pending), (1, 1));
    assert_eq!((pb.blocked, pb.pending), (1, 1), "b's row for chat 2 too");
    assert!(store.next_pending(10)?.iter().all(|d| d.chat_id == 1));
    let info = store.delivery(to_2.id)?.ok_or("missing")?;
    assert_eq!(info.state, DeliveryState::Blocked);
    assert_eq!(info.attempts, 1);
    Ok(())
}

#[test]
fn state_survives_reopening_the_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (id, sent) = {
        let store = open(dir.path())?;
        store.subscribe_many(&[private(1), private(2), private(3)])?;
        store.unsubscribe(3)?;
        let id = store.queue_now(&note("kept", Some("k")))?.id;
        store.set_progress_message(
            id,
            ProgressMessage {
                chat_id: 42,
                message_id: 7,
            },
        )?;
        let first = store.next_pending(1)?[0];
        store.mark_sent(first.id, 555)?;
        (id, first.id)
    };
    let store = open(dir.path())?;
    assert_eq!(store.schema_version()?, LATEST_VERSION);
    assert_eq!(
        store.counts()?,
        SubscriberCounts {
            active: 2,
            unsubscribed: 1,
            blocked: 0
        }
    );
    let a = store.announcement(id)?.ok_or("missing")?;
    assert_eq!(a.text_html, "kept");
    assert_eq!(a.dedupe_key.as_deref(), Some("k"));
    assert_eq!(
        a.progress_message,
        Some(ProgressMessage {
            chat_id: 42,
            message_id: 7
        })
    );
    let p = store.progress(id)?;
    assert_eq!((p.sent, p.pending), (1, 1));
    assert_eq!(
        store.delivery(sent)?.ok_or("missing")?.message_id,
        Some(555)
    );
    assert!(store.queue_now(&note("again", Some("k")))?.duplicate);

    // WAL, so the bot and the CLI can share the file.
    let raw = rusqlite::Connection::open(dir.path().join("reportbot.db"))?;
    let mode: String = raw.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    assert_eq!(mode, "wal");
    Ok(())
}

#[test]
fn two_handles_on_one_file_see_each_other() -> TestResult {
    let dir = tempfile::tempdir()?;
    let bot = open(dir.path())?;
    let cli = open(dir.path())?;
    bot.subscribe(&private(1))?;
    let id = cli.queue_now(&note("from the CLI", None))?.id;
    let pending = bot.next_pending(10)?;
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].announcement_id, id);
    bot.mark_sent(pending[0].id, 1)?;
    assert_eq!(cli.progress(id)?.sent, 1);
    Ok(())
}

/// The version-1 schema exactly as it shipped; never edit.
const V1_SQL: &str = "
CREATE TABLE subscribers (
    chat_id       INTEGER PRIMARY KEY,
    kind          TEXT    NOT NULL CHECK (kind IN ('private', 'group', 'supergroup', 'channel')),
    language      TEXT    NOT NULL DEFAULT 'zh' CHECK (language IN ('zh', 'en')),
    status        TEXT    NOT NULL DEFAULT 'active'
                          CHECK (status IN ('active', 'unsubscribed', 'blocked')),
    subscribed_at INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    reason        TEXT
) STRICT;
CREATE INDEX subscribers_by_status ON subscribers (status);
PRAGMA user_version = 1;
";

#[test]
fn a_version_1_file_is_migrated_with_its_data() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("reportbot.db");
    {
        let conn = rusqlite::Connection::open(&path)?;
        conn.execute_batch(V1_SQL)?;
        conn.execute_batch(
            "INSERT INTO subscribers (chat_id, kind, language, status, subscribed_at, updated_at)
                 VALUES (1, 'private', 'en', 'active', 1700000000, 1700000000),
                        (-20, 'supergroup', 'zh', 'active', 1700000001, 1700000001),
                        (3, 'private', 'zh', 'unsubscribed', 1700000002, 1700000003);
             INSERT INTO subscribers (chat_id, kind, status, subscribed_at, updated_at, reason)
                 VALUES (4, 'private', 'blocked', 1700000004, 1700000005, 'Forbidden: bot was blocked by the user');",
        )?;
    }
    let store = SqliteStore::open(&path)?;
    assert_eq!(store.schema_version()?, LATEST_VERSION);
    assert_eq!(
        store.counts()?,
        SubscriberCounts {
            active: 2,
            unsubscribed: 1,
            blocked: 1
        }
    );
    let en = store.subscriber(1)?.ok_or("missing")?;
    assert_eq!(en.language, Language::En);
    assert_eq!(en.subscribed_at, 1_700_000_000);
    assert_eq!(
        store.subscriber(-20)?.ok_or("missing")?.kind,
        ChatKind::Supergroup
    );
    // The new tables work on the old data.
    let id = store.queue_now(&note("after the upgrade", None))?.id;
    assert_eq!(store.progress(id)?.total, 2);
    drop(store);
    // And opening it again does not migrate again.
    assert_eq!(SqliteStore::open(&path)?.schema_version()?, LATEST_VERSION);
    Ok(())
}

#[test]
fn a_file_from_a_newer_program_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("reportbot.db");
    rusqlite::Connection::open(&path)?.pragma_update(None, "user_version", LATEST_VERSION + 5)?;
    match SqliteStore::open(&path) {
        Err(StoreError::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (LATEST_VERSION + 5, LATEST_VERSION));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    Ok(())
}

/// 100,000 subscribers: one INSERT…SELECT, then the outbox is read in
/// batches, in order, each row once. (Speed is measured by benchmarks.)
#[test]
fn fan_out_to_100_000_subscribers_streams_in_batches() -> TestResult {
    const N: i64 = 100_000;
    const BATCH: usize = 500;
    let dir = tempfile::tempdir()?;
    let store = open(dir.path())?;
    let subscribers: Vec<NewSubscriber> = (1..=N).map(private).collect();
    assert_eq!(store.subscribe_many(&subscribers)?, N as u64);
    drop(subscribers);
    let created = store.queue_now(&note("big news", None))?;
    let p = store.progress(created.id)?;
    assert_eq!((p.total, p.pending), (N as u64, N as u64));

    // The worker records each send in its own commit (at most 30 a second);
    // 100,000 commits would only make this test slow, so each batch is
    // recorded in one transaction on a second connection to the file.
    let mut raw = rusqlite::Connection::open(dir.path().join("reportbot.db"))?;
    raw.busy_timeout(Duration::from_secs(5))?;
    let mut seen = HashSet::with_capacity(N as usize);
    let mut last_id = 0;
    let mut batches = 0;
    loop {
        let batch = store.next_pending(BATCH)?;
        if batch.is_empty() {
            break;
        }
        assert!(batch.len() <= BATCH);
        batches += 1;
        let tx = raw.transaction()?;
        for d in &batch {
            assert!(d.id.0 > last_id, "in outbox order");
            last_id = d.id.0;
            assert!(seen.insert(d.chat_id), "chat {} twice", d.chat_id);
            tx.prepare_cached("UPDATE outbox SET state = 'sent', message_id = 1 WHERE id = ?1")?
                .execute([d.id.0])?;
        }
        tx.commit()?;
    }
    assert_eq!(seen.len(), N as usize);
    assert_eq!(batches, (N as usize).div_ceil(BATCH));
    assert!(store.complete_if_done(created.id)?);
    assert_eq!(store.progress(created.id)?.sent, N as u64);
    Ok(())
}

// ----- the worker against a fake Telegram Bot API ----------------------------------

fn no_proxy() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: done once, before any HTTP client of this process reads it.
        unsafe {
            std::env::set_var("NO_PROXY", "127.0.0.1,localhost");
            std::env::set_var("no_proxy", "127.0.0.1,localhost");
        }
    });
}

fn quick_settings() -> BroadcastSettings {
    BroadcastSettings {
        rate_per_sec: 30.0,
        poll_interval_ms: 20,
        backoff_base_ms: 10,
        progress_interval_ms: 200,
        ..BroadcastSettings::default()
    }
}

async fn wait_finished(
    events: &mut tokio::sync::mpsc::UnboundedReceiver<BroadcastEvent>,
    id: AnnouncementId,
) -> Vec<BroadcastEvent> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Some(ev)) => {
                let done = matches!(&ev, BroadcastEvent::Finished(r) if r.announcement == id);
                seen.push(ev);
                if done {
                    return seen;
                }
            }
            other => panic!("no Finished event ({other:?}); got {seen:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_sender_delivers_paced_and_handles_429_and_blocked_chats() -> TestResult {
    no_proxy();
    let api = FakeBotApi::start_with(Options {
        global_per_sec: Some(30),
        per_chat_per_sec: Some(1),
        ..Options::default()
    })
    .await;
    let handle = api.handle();
    let dir = tempfile::tempdir()?;
    let store = Arc::new(open(dir.path())?);
    let chats: Vec<i64> = (1001..=1012).collect();
    store.subscribe_many(&chats.iter().map(|&c| private(c)).collect::<Vec<_>>())?;
    handle.block_chat(1003);
    handle.forget_chat(1004);
    handle.fail_next("sendMessage", Fault::TooManyRequests { retry_after: 1 });

    // Queued "by the CLI" through another handle on the same file.
    let cli = open(dir.path())?;
    let id = cli
        .queue_now(&note(
            "<b>2099</b> 获奖名单已发布",
            Some("report:2099-test"),
        ))?
        .id;
    cli.set_progress_message(
        id,
        ProgressMessage {
            chat_id: 1,
            message_id: 9,
        },
    )?;

    let bot = Bot::new("123:TEST").set_api_url(api.url().parse()?);
    let sender = Arc::new(TelegramSender::new(bot).with_timeout(Duration::from_secs(5)));
    let mut worker = Broadcaster::new(store.clone(), sender, quick_settings())?;
    let mut events = worker.events();
    let (stop, stop_rx) = watch::channel(false);
    let started = Instant::now();
    let task = tokio::spawn(worker.run(stop_rx));
    let seen = wait_finished(&mut events, id).await;
    let elapsed = started.elapsed();
    let _ = stop.send(true);
    tokio::time::timeout(Duration::from_secs(10), task).await??;

    let p = store.progress(id)?;
    assert_eq!((p.sent, p.blocked, p.failed, p.pending), (10, 2, 0, 0));
    assert!(!store.is_subscribed(1003)? && !store.is_subscribed(1004)?);
    assert_eq!(handle.violations(), 0, "never over Telegram's limits");
    assert!(elapsed >= Duration::from_secs(1), "the 429 was waited out");
    for chat in chats.iter().filter(|c| ![1003, 1004].contains(*c)) {
        let sent = handle.sent_messages(*chat);
        assert_eq!(sent.len(), 1, "chat {chat}");
        assert_eq!(sent[0].parse_mode.as_deref(), Some("HTML"));
        assert_eq!(sent[0].text, "<b>2099</b> 获奖名单已发布");
    }
    let Some(BroadcastEvent::Finished(report)) = seen.last() else {
        panic!("{seen:?}");
    };
    assert_eq!(
        report.progress_message,
        Some(ProgressMessage {
            chat_id: 1,
            message_id: 9
        })
    );
    assert_eq!(report.progress.sent, 10);
    assert!(handle.rejections().is_empty(), "{:?}", handle.rejections());
    api.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_sender_cancels_an_announcement_telegram_cannot_parse() -> TestResult {
    no_proxy();
    let api = FakeBotApi::start().await;
    let handle = api.handle();
    let dir = tempfile::tempdir()?;
    let store = Arc::new(open(dir.path())?);
    store.subscribe_many(&[private(1), private(2), private(3)])?;
    let id = store.queue_now(&note("<b>unclosed", None))?.id;
    let bot = Bot::new("123:TEST").set_api_url(api.url().parse()?);
    let mut worker = Broadcaster::new(
        store.clone(),
        Arc::new(TelegramSender::new(bot)),
        quick_settings(),
    )?;
    let mut events = worker.events();
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(worker.run(stop_rx));
    let error = loop {
        match tokio::time::timeout(Duration::from_secs(20), events.recv()).await? {
            Some(BroadcastEvent::Aborted { error, .. }) => break error,
            Some(_) => {}
            None => panic!("worker ended"),
        }
    };
    let _ = stop.send(true);
    tokio::time::timeout(Duration::from_secs(10), task).await??;
    assert!(error.contains("parse entities"), "{error}");
    let p = store.progress(id)?;
    assert_eq!((p.failed, p.cancelled, p.sent), (1, 2, 0));
    assert_eq!(handle.total_sent(), 0);
    api.shutdown().await;
    Ok(())
}
