//! The store test suite: one set of tests, run against both stores
//! (`sqlite::…` on a file in a temporary directory, `postgres::…` on a fresh
//! database of a real PostgreSQL, see `tests/support/pg.rs`), then what is
//! particular to each (migrations, the shared send budget, the poller
//! election).

mod support;

use reportbot::broadcast::{BroadcastEvent, BroadcastSettings, Broadcaster, TelegramSender};
use reportbot::store::{
    AnnouncementId, AnnouncementState, BeginSend, ChatKind, Database, DeliveryState, FileKey,
    Language, NewAnnouncement, NewSubscriber, Origin, PgStore, ProgressMessage, SqliteStore, Store,
    StoreError, SubscriberCounts, SubscriberStatus, UpdateClaim,
};
use std::collections::HashSet;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};
use support::botapi::{FakeBotApi, Fault, Options};
use support::pg::TestDatabase;
use teloxide::Bot;
use tokio::sync::watch;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// One test's database, on either store.
enum Db {
    Sqlite(tempfile::TempDir),
    Postgres(TestDatabase),
}

impl Db {
    fn sqlite() -> Db {
        Db::Sqlite(tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}")))
    }

    fn postgres() -> Db {
        Db::Postgres(support::pg::fresh_database())
    }

    fn database(&self) -> Database {
        match self {
            Db::Sqlite(dir) => Database::Sqlite(dir.path().join("reportbot.db")),
            Db::Postgres(db) => Database::Postgres(db.url.clone()),
        }
    }

    /// A new handle on the database (as another process would open it).
    fn open(&self) -> Result<Arc<dyn Store>, StoreError> {
        reportbot::store::open(&self.database())
    }

    fn schema_version(&self) -> Result<i64, StoreError> {
        match self {
            Db::Sqlite(dir) => SqliteStore::open(dir.path().join("reportbot.db"))?.schema_version(),
            Db::Postgres(db) => PgStore::open(&db.url)?.schema_version(),
        }
    }

    fn latest_version(&self) -> i64 {
        match self {
            Db::Sqlite(_) => reportbot::store::migrations::LATEST_VERSION,
            Db::Postgres(_) => reportbot::store::postgres::LATEST_VERSION.into(),
        }
    }

    /// Mark many deliveries sent in one transaction, behind the store's
    /// back: recording 100,000 sends one commit each would only make a
    /// test slow.
    fn mark_sent_raw(&self, ids: &[i64]) -> TestResult {
        match self {
            Db::Sqlite(dir) => {
                let mut raw = rusqlite::Connection::open(dir.path().join("reportbot.db"))?;
                raw.busy_timeout(Duration::from_secs(5))?;
                let tx = raw.transaction()?;
                for id in ids {
                    tx.prepare_cached(
                        "UPDATE outbox SET state = 'sent', message_id = 1 WHERE id = ?1",
                    )?
                    .execute([id])?;
                }
                tx.commit()?;
            }
            Db::Postgres(db) => {
                let mut c = support::pg::connect(&db.url);
                c.execute(
                    "UPDATE outbox SET state = 'sent', message_id = 1 WHERE id = ANY($1)",
                    &[&ids],
                )?;
                support::pg::close(c);
            }
        }
        Ok(())
    }
}

/// Define each test once, as a function of a [`Db`], and run it on both stores.
macro_rules! on_both_stores {
    ($( $(#[doc = $doc:literal])* fn $name:ident($db:ident: &Db) -> TestResult $body:block )*) => {
        $( $(#[doc = $doc])* fn $name($db: &Db) -> TestResult $body )*
        mod sqlite {
            $( #[test] fn $name() -> super::TestResult { super::$name(&super::Db::sqlite()) } )*
        }
        mod postgres {
            $( #[test] fn $name() -> super::TestResult { super::$name(&super::Db::postgres()) } )*
        }
    };
}

/// The same for tests that run the delivery worker (async).
macro_rules! on_both_stores_async {
    ($( $(#[doc = $doc:literal])* async fn $name:ident($db:ident: &Db) -> TestResult $body:block )*) => {
        $( $(#[doc = $doc])* async fn $name($db: &Db) -> TestResult $body )*
        mod sqlite_worker {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> super::TestResult {
                    super::$name(&super::Db::sqlite()).await
                }
            )*
        }
        mod postgres_worker {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> super::TestResult {
                    let db = super::sync(super::Db::postgres);
                    super::$name(&db).await
                }
            )*
        }
    };
}

/// Run blocking store calls from async test code (the PostgreSQL client
/// blocks, and must not run on a thread that drives async tasks).
fn sync<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

fn private(chat_id: i64) -> NewSubscriber {
    NewSubscriber::private(chat_id, Language::Zh)
}

fn note(text: &str, key: Option<&str>) -> NewAnnouncement {
    NewAnnouncement {
        text_html: text.into(),
        created_by: Origin::Cli,
        dedupe_key: key.map(str::to_string),
    }
}

const MINUTE: Duration = Duration::from_secs(60);
const SQLITE_LATEST: i64 = reportbot::store::migrations::LATEST_VERSION;

on_both_stores! {
    fn subscribe_and_unsubscribe_are_idempotent(db: &Db) -> TestResult {
        let store = db.open()?;
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

    fn counts_by_status(db: &Db) -> TestResult {
        let store = db.open()?;
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

    fn confirm_fans_out_a_snapshot(db: &Db) -> TestResult {
        let store = db.open()?;
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

    fn dedupe_key_announces_once(db: &Db) -> TestResult {
        let store = db.open()?;
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

    fn progress_counts_each_outcome(db: &Db) -> TestResult {
        let store = db.open()?;
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

    fn mark_blocked_unsubscribes_and_blocks_the_chats_other_deliveries(db: &Db) -> TestResult {
        let store = db.open()?;
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

    fn state_survives_reopening(db: &Db) -> TestResult {
        let (id, sent) = {
            let store = db.open()?;
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
        let store = db.open()?;
        assert_eq!(db.schema_version()?, db.latest_version());
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

        Ok(())
    }

    fn two_handles_on_one_database_see_each_other(db: &Db) -> TestResult {
        let bot = db.open()?;
        let cli = db.open()?;
        bot.subscribe(&private(1))?;
        let id = cli.queue_now(&note("from the CLI", None))?.id;
        let pending = bot.next_pending(10)?;
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].announcement_id, id);
        bot.mark_sent(pending[0].id, 1)?;
        assert_eq!(cli.progress(id)?.sent, 1);
        Ok(())
    }

    /// 100,000 subscribers: one INSERT…SELECT, then the outbox is leased in
    /// batches, in order, each row once. (Speed is measured by benchmarks.)
    fn fan_out_to_100_000_subscribers_streams_in_batches(db: &Db) -> TestResult {
        const N: i64 = 100_000;
        const BATCH: usize = 500;
        let store = db.open()?;
        let subscribers: Vec<NewSubscriber> = (1..=N).map(private).collect();
        assert_eq!(store.subscribe_many(&subscribers)?, N as u64);
        drop(subscribers);
        let created = store.queue_now(&note("big news", None))?;
        let p = store.progress(created.id)?;
        assert_eq!((p.total, p.pending), (N as u64, N as u64));

        let mut seen = HashSet::with_capacity(N as usize);
        let mut last_id = 0;
        let mut batches = 0;
        loop {
            let batch = store.lease_pending("worker", BATCH, MINUTE)?;
            if batch.is_empty() {
                break;
            }
            assert!(batch.len() <= BATCH);
            batches += 1;
            for d in &batch {
                assert!(d.id.0 > last_id, "in outbox order");
                last_id = d.id.0;
                assert!(seen.insert(d.chat_id), "chat {} twice", d.chat_id);
            }
            let ids: Vec<i64> = batch.iter().map(|d| d.id.0).collect();
            db.mark_sent_raw(&ids)?;
        }
        assert_eq!(seen.len(), N as usize);
        assert_eq!(batches, (N as usize).div_ceil(BATCH));
        assert!(store.complete_if_done(created.id)?);
        assert_eq!(store.progress(created.id)?.sent, N as u64);
        Ok(())
    }

    /// A leased row is the worker's until its lease ends; then another worker
    /// may take it, and the first one's claim fails: never two senders.
    fn leases_keep_workers_apart_until_they_expire(db: &Db) -> TestResult {
        let store = db.open()?;
        let other = db.open()?;
        store.subscribe_many(&(1..=5).map(private).collect::<Vec<_>>())?;
        let a = store.queue_now(&note("hi", None))?.id;
        let mine = store.lease_pending("a", 3, MINUTE)?;
        assert_eq!(mine.iter().map(|d| d.chat_id).collect::<Vec<_>>(), vec![1, 2, 3]);
        let theirs = other.lease_pending("b", 10, MINUTE)?;
        assert_eq!(theirs.iter().map(|d| d.chat_id).collect::<Vec<_>>(), vec![4, 5]);
        // Asking again returns one's own rows (lease renewed), nobody else's.
        assert_eq!(store.lease_pending("a", 10, MINUTE)?.len(), 3);
        assert_eq!(store.begin_send(mine[0].id, "a", MINUTE)?, BeginSend::Send);
        assert_eq!(other.begin_send(mine[1].id, "b", MINUTE)?, BeginSend::Skip);
        assert_eq!(
            store.delivery(mine[1].id)?.ok_or("missing")?.leased_by.as_deref(),
            Some("a")
        );

        // Worker "a" dies: its lease runs out, "b" takes the rows over.
        let short = Duration::from_millis(200);
        assert_eq!(store.lease_pending("a", 10, short)?.len(), 3);
        std::thread::sleep(Duration::from_millis(400));
        let taken = other.lease_pending("b", 10, MINUTE)?;
        assert_eq!(taken.len(), 5, "b holds all five now");
        assert_eq!(store.begin_send(mine[2].id, "a", MINUTE)?, BeginSend::Skip);
        assert_eq!(other.begin_send(mine[2].id, "b", MINUTE)?, BeginSend::Send);

        // Settled rows are never claimed.
        other.mark_sent(mine[2].id, 7)?;
        assert_eq!(other.begin_send(mine[2].id, "b", MINUTE)?, BeginSend::Skip);
        store.cancel(a)?;
        assert_eq!(other.begin_send(theirs[0].id, "b", MINUTE)?, BeginSend::Skip);
        assert!(other.lease_pending("b", 10, MINUTE)?.is_empty());
        Ok(())
    }

    /// A clean stop gives the leases back; a retry frees its row until it is due.
    fn released_and_retried_rows_are_free_for_others(db: &Db) -> TestResult {
        let store = db.open()?;
        store.subscribe_many(&(1..=4).map(private).collect::<Vec<_>>())?;
        store.queue_now(&note("hi", None))?;
        let held = store.lease_pending("a", 10, MINUTE)?;
        assert_eq!(held.len(), 4);
        assert!(store.lease_pending("b", 10, MINUTE)?.is_empty());
        store.mark_retry(held[0].id, "Bad Gateway", Duration::from_millis(300))?;
        assert_eq!(store.release_leases("a")?, 3);
        let taken = store.lease_pending("b", 10, MINUTE)?;
        assert_eq!(taken.len(), 3, "the retried row waits for its time");
        std::thread::sleep(Duration::from_millis(500));
        let due = store.lease_pending("c", 10, MINUTE)?;
        assert_eq!(due.iter().map(|d| d.id).collect::<Vec<_>>(), vec![held[0].id]);
        assert_eq!(due[0].attempts, 1);
        Ok(())
    }

    /// A picture's `file_id` is kept per bot and key, survives reopening,
    /// is replaced by a newer upload, and forgetting a refused one keeps a
    /// newer one another instance stored meanwhile.
    fn uploaded_file_ids_are_kept_per_bot_and_key(db: &Db) -> TestResult {
        let card = |bot_id: i64, key: &str| FileKey {
            bot_id,
            key: key.to_string(),
        };
        let zh = card(4242, "tips-card/v1/courier/zh/00000000000000aa");
        let store = db.open()?;
        assert_eq!(store.uploaded_file(&zh)?, None);
        store.remember_upload(&zh, "AgAD-first")?;
        assert_eq!(store.uploaded_file(&zh)?.as_deref(), Some("AgAD-first"));
        // Another bot, another language, another data version: not the same file.
        let other_bot = card(4343, &zh.key);
        let en = card(4242, "tips-card/v1/courier/en/00000000000000aa");
        let new_data = card(4242, "tips-card/v1/courier/zh/00000000000000bb");
        for k in [&other_bot, &en, &new_data] {
            assert_eq!(store.uploaded_file(k)?, None, "{k:?}");
        }
        // Reopened (a restart, another instance): still there.
        let again = db.open()?;
        assert_eq!(again.uploaded_file(&zh)?.as_deref(), Some("AgAD-first"));
        // A second upload of the same card replaces the first.
        again.remember_upload(&zh, "AgAD-second")?;
        assert_eq!(store.uploaded_file(&zh)?.as_deref(), Some("AgAD-second"));
        // Telegram refused the first id: forgetting it keeps the second.
        assert!(!store.forget_upload(&zh, "AgAD-first")?);
        assert_eq!(store.uploaded_file(&zh)?.as_deref(), Some("AgAD-second"));
        assert!(store.forget_upload(&zh, "AgAD-second")?);
        assert_eq!(store.uploaded_file(&zh)?, None);
        // Odd text is data, not SQL.
        let odd = card(-1, "it's; DROP TABLE uploaded_files; --");
        store.remember_upload(&odd, "x'y")?;
        assert_eq!(again.uploaded_file(&odd)?.as_deref(), Some("x'y"));
        Ok(())
    }

    /// Webhook mode: an update id is taken by one instance at a time, and
    /// once handled every later delivery is a duplicate; an owner that died
    /// loses it when its lease ends.
    fn each_update_is_handled_once(db: &Db) -> TestResult {
        let a = db.open()?;
        let b = db.open()?;
        assert_eq!(a.claim_update(7, "a", MINUTE)?, UpdateClaim::New);
        assert_eq!(b.claim_update(7, "b", MINUTE)?, UpdateClaim::Busy);
        assert_eq!(a.claim_update(7, "a", MINUTE)?, UpdateClaim::Busy, "a redelivery to a");
        a.finish_update(7)?;
        assert_eq!(b.claim_update(7, "b", MINUTE)?, UpdateClaim::Done);
        assert_eq!(a.claim_update(7, "a", MINUTE)?, UpdateClaim::Done);
        // Died while handling: taken over after the lease.
        assert_eq!(a.claim_update(8, "a", Duration::from_millis(200))?, UpdateClaim::New);
        assert_eq!(b.claim_update(8, "b", MINUTE)?, UpdateClaim::Busy);
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(b.claim_update(8, "b", MINUTE)?, UpdateClaim::New);
        // Given back: handled at once by the next delivery.
        assert_eq!(a.claim_update(9, "a", MINUTE)?, UpdateClaim::New);
        b.release_update(9, "b")?;
        assert_eq!(b.claim_update(9, "b", MINUTE)?, UpdateClaim::Busy, "only its owner gives it back");
        a.release_update(9, "a")?;
        assert_eq!(b.claim_update(9, "b", MINUTE)?, UpdateClaim::New);
        // Swept long after: handled ids older than the window are forgotten.
        std::thread::sleep(Duration::from_millis(20));
        a.sweep(10, Duration::from_millis(1))?;
        assert_eq!(a.claim_update(7, "a", MINUTE)?, UpdateClaim::New);
        Ok(())
    }

    /// Contexts are shared, expire, and stay within their bound.
    fn conversation_contexts_are_shared_bounded_and_expire(db: &Db) -> TestResult {
        let a = db.open()?;
        let b = db.open()?;
        assert_eq!(a.load_context("1:0")?, None);
        a.save_context("1:0", Some("{\"x\":1}"), MINUTE)?;
        assert_eq!(b.load_context("1:0")?.as_deref(), Some("{\"x\":1}"));
        b.save_context("1:0", Some("{\"x\":2}"), MINUTE)?;
        assert_eq!(a.load_context("1:0")?.as_deref(), Some("{\"x\":2}"));
        a.save_context("1:0", None, MINUTE)?;
        assert_eq!(b.load_context("1:0")?, None);
        a.save_context("2:0", Some("old"), Duration::from_millis(100))?;
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(b.load_context("2:0")?, None, "expired");
        for i in 0..5 {
            a.save_context(&format!("{i}:9"), Some("c"), MINUTE + Duration::from_secs(i))?;
        }
        let removed = a.sweep(3, MINUTE)?;
        assert!(removed >= 3, "the expired one and the two oldest: {removed}");
        assert_eq!(a.load_context("0:9")?, None);
        assert_eq!(a.load_context("1:9")?, None);
        assert!(a.load_context("4:9")?.is_some());
        Ok(())
    }
}

// ----- SQLite only ---------------------------------------------------------------

#[test]
fn sqlite_uses_wal_so_the_bot_and_the_cli_share_the_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("reportbot.db");
    SqliteStore::open(&path)?.subscribe(&private(1))?;
    let raw = rusqlite::Connection::open(&path)?;
    let mode: String = raw.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    assert_eq!(mode, "wal");
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
    assert_eq!(store.schema_version()?, SQLITE_LATEST);
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
    assert_eq!(SqliteStore::open(&path)?.schema_version()?, SQLITE_LATEST);
    Ok(())
}

#[test]
fn a_file_from_a_newer_program_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("reportbot.db");
    rusqlite::Connection::open(&path)?.pragma_update(None, "user_version", SQLITE_LATEST + 5)?;
    match SqliteStore::open(&path) {
        Err(StoreError::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (SQLITE_LATEST + 5, SQLITE_LATEST));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    Ok(())
}

// ----- PostgreSQL only -------------------------------------------------------------

const PG_LATEST: i64 = reportbot::store::postgres::LATEST_VERSION as i64;

#[test]
fn postgres_database_from_a_newer_program_is_refused() -> TestResult {
    let db = support::pg::empty_database();
    drop(PgStore::open(&db.url)?);
    support::pg::execute(
        &db,
        &format!("UPDATE reportbot_schema SET version = {}", PG_LATEST + 5),
    );
    match PgStore::open(&db.url) {
        Err(StoreError::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (PG_LATEST + 5, PG_LATEST));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    Ok(())
}

#[test]
fn postgres_instances_starting_together_migrate_once() -> TestResult {
    let db = support::pg::empty_database();
    let opened: Vec<_> = (0..4)
        .map(|_| {
            let url = db.url.clone();
            std::thread::spawn(move || PgStore::open(&url).map(|s| s.schema_version()))
        })
        .collect();
    for handle in opened {
        let version = handle.join().map_err(|_| "open panicked")???;
        assert_eq!(version, PG_LATEST);
    }
    let mut c = support::pg::connect(&db.url);
    let rows: i64 = c
        .query_one("SELECT COUNT(*) FROM reportbot_schema", &[])?
        .get(0);
    support::pg::close(c);
    assert_eq!(rows, 1);
    Ok(())
}

#[test]
fn postgres_unreachable_server_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(1);
    let err = PgStore::open(&format!("postgres://bot:secret@127.0.0.1:{port}/rb"))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains(&format!("bot@127.0.0.1:{port}/rb")), "{err}");
    assert!(!err.contains("secret"), "never the password: {err}");
}

/// The shared send budget: slots evenly spaced for every handle (instance),
/// the per-chat gap, and a pause that holds everyone back.
#[test]
fn postgres_send_budget_is_shared_by_every_instance() -> TestResult {
    let db = support::pg::fresh_database();
    let (a, b) = (PgStore::open(&db.url)?, PgStore::open(&db.url)?);
    let budget = |s: &PgStore| s.shared_budget().ok_or("no shared budget").map(|_| ());
    budget(&a)?;
    let step = Duration::from_millis(40);
    let per_chat = Duration::from_secs(1);
    let book = |s: &PgStore, chat: i64| -> Result<Duration, StoreError> {
        s.shared_budget()
            .map(|b| b.book_slot(Some(chat), step, per_chat))
            .unwrap_or(Ok(Duration::ZERO))
    };
    // Ten slots booked alternately by two instances: one cadence.
    let t0 = Instant::now();
    let mut slots = Vec::new();
    for i in 0..10 {
        let store = if i % 2 == 0 { &a } else { &b };
        let wait = book(store, 100 + i)?;
        slots.push(t0.elapsed() + wait);
    }
    for (i, pair) in slots.windows(2).enumerate() {
        let gap = pair[1].saturating_sub(pair[0]);
        assert!(
            gap >= Duration::from_millis(35) && gap <= Duration::from_millis(45),
            "slot {i} to {}: {gap:?} apart",
            i + 1
        );
    }
    // The same chat again: a second after its last slot.
    let first = t0.elapsed() + book(&a, 500)?;
    let again = t0.elapsed() + book(&b, 500)?;
    assert!(
        again.saturating_sub(first) >= Duration::from_millis(990),
        "{first:?} → {again:?}"
    );
    // A 429 in one instance holds every instance back.
    std::thread::sleep(again.saturating_sub(t0.elapsed()));
    a.shared_budget()
        .ok_or("no shared budget")?
        .pause_all(Duration::from_millis(800))?;
    let paused = t0.elapsed();
    let resumed = t0.elapsed() + book(&b, 600)?;
    assert!(
        resumed.saturating_sub(paused) >= Duration::from_millis(750),
        "booked {:?} after the pause began",
        resumed.saturating_sub(paused)
    );
    // … and a send about to go out learns of it when it claims its row.
    b.subscribe(&private(1))?;
    b.queue_now(&note("hi", None))?;
    let d = b.lease_pending("b", 1, MINUTE)?;
    a.shared_budget()
        .ok_or("no shared budget")?
        .pause_all(Duration::from_secs(5))?;
    assert!(
        matches!(b.begin_send(d[0].id, "b", MINUTE)?, BeginSend::Paused(p) if p > Duration::from_secs(3))
    );
    Ok(())
}

/// One poller: the lock is held by one instance at a time; when it goes
/// (its connection cut, as when its process dies), another takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_poller_election_has_one_leader_and_a_quick_takeover() -> TestResult {
    let db = sync(support::pg::fresh_database);
    let url = db.url.clone();
    let (a, b) =
        sync(|| -> Result<_, StoreError> { Ok((PgStore::open(&url)?, PgStore::open(&url)?)) })?;
    let mut ea = sync(|| a.poller_election("bot 1"))?.ok_or("no election")?;
    let within = |d: u64| Duration::from_secs(d);
    tokio::time::timeout(within(10), ea.until_leader()).await?;
    let mut eb = sync(|| b.poller_election("bot 1"))?.ok_or("no election")?;
    // Another bot on the same database has an election of its own.
    let mut other_bot = sync(|| b.poller_election("bot 2"))?.ok_or("no election")?;
    tokio::time::timeout(within(10), other_bot.until_leader()).await?;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(ea.is_leader() && !eb.is_leader(), "one leader per bot");

    // The leader's session is cut (its process died, the network broke).
    let url2 = db.url.clone();
    sync(move || {
        let mut c = support::pg::connect(&url2);
        let cut = c.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks
             WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()
               AND objid = (SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND granted
                            ORDER BY pid LIMIT 1)",
            &[],
        );
        support::pg::close(c);
        cut
    })?;
    let cut_at = Instant::now();
    tokio::time::timeout(within(10), ea.until_lost()).await?;
    tokio::time::timeout(within(10), eb.until_leader()).await?;
    assert!(
        cut_at.elapsed() < Duration::from_secs(5),
        "took over after {:?}",
        cut_at.elapsed()
    );
    // Dropping the new leader hands the lock back.
    drop(eb);
    tokio::time::timeout(within(10), ea.until_leader()).await?;
    drop((ea, other_bot));
    sync(move || drop((a, b)));
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

on_both_stores_async! {
    /// The worker with the real teloxide client against the fake Bot API:
        /// paced under a strict limiter, a 429 waited out, blocked chats.
    async fn telegram_sender_delivers_paced_and_handles_429_and_blocked_chats(db: &Db) -> TestResult {
        no_proxy();
        let api = FakeBotApi::start_with(Options {
            global_per_sec: Some(30),
            per_chat_per_sec: Some(1),
            ..Options::default()
        })
        .await;
        let handle = api.handle();
        let chats: Vec<i64> = (1001..=1012).collect();
        let store = sync(|| -> Result<_, StoreError> {
            let store = db.open()?;
            store.subscribe_many(&chats.iter().map(|&c| private(c)).collect::<Vec<_>>())?;
            Ok(store)
        })?;
        handle.block_chat(1003);
        handle.forget_chat(1004);
        handle.fail_next("sendMessage", Fault::TooManyRequests { retry_after: 1 });

        // Queued "by the CLI" through another handle on the same database.
        let id = sync(|| -> Result<_, StoreError> {
            let cli = db.open()?;
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
            Ok(id)
        })?;

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

        let p = sync(|| store.progress(id))?;
        assert_eq!((p.sent, p.blocked, p.failed, p.pending), (10, 2, 0, 0));
        assert!(sync(|| Ok::<_, StoreError>(
            !store.is_subscribed(1003)? && !store.is_subscribed(1004)?
        ))?);
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

    /// A text Telegram cannot parse cancels the announcement.
    async fn telegram_sender_cancels_an_announcement_telegram_cannot_parse(db: &Db) -> TestResult {
        no_proxy();
        let api = FakeBotApi::start().await;
        let handle = api.handle();
        let (store, id) = sync(|| -> Result<_, StoreError> {
            let store = db.open()?;
            store.subscribe_many(&[private(1), private(2), private(3)])?;
            let id = store.queue_now(&note("<b>unclosed", None))?.id;
            Ok((store, id))
        })?;
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
        let p = sync(|| store.progress(id))?;
        assert_eq!((p.failed, p.cancelled, p.sent), (1, 2, 0));
        assert_eq!(handle.total_sent(), 0);
        api.shutdown().await;
        Ok(())
    }
}
