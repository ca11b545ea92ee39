//! The database file deleted while the bot runs (issue 10, point 4): the
//! bot notices that the file it has open is no longer the file at its path,
//! says "temporarily unavailable" instead of confirming a subscription that
//! would never reach the disk, logs an ERROR, and writes the database back
//! from the open connection, so nothing is lost and later changes are
//! durable.

mod support;

use std::path::Path;
use std::time::Duration;
use support::app::{AppOptions, TestApp, spawn_app_with};
use support::botapi::UserSpec;

/// Keep the background tasks (delivery worker, progress reporter) away from
/// the database, so the deletion is noticed by the command under test.
const QUIET_BACKGROUND: &str = "[broadcast]\npoll_interval_ms = 3600000\n\
                                progress_interval_ms = 3600000\n";

async fn say(app: &TestApp, user: &UserSpec, text: &str) -> String {
    let chat = user.private_chat();
    let seen = app.api.sent_messages(chat.id()).len();
    app.api.send_text(&chat, user, text);
    let msgs = app
        .api
        .wait_for_messages(chat.id(), seen + 1, Duration::from_secs(10))
        .await;
    msgs.get(seen)
        .map(|m| m.visible_text())
        .unwrap_or_else(|| panic!("no answer to {text:?}; log:\n{}", app.log()))
}

/// Active subscribers in the file at `path`, read as a new process would
/// (read-only: the test must not create the file itself).
fn active_on_disk(path: &Path) -> Vec<i64> {
    if !path.exists() {
        return Vec::new();
    }
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the database file read-only");
    let mut stmt = conn
        .prepare("SELECT chat_id FROM subscribers WHERE status = 'active' ORDER BY chat_id")
        .expect("query subscribers");
    stmt.query_map([], |r| r.get(0))
        .expect("read subscribers")
        .collect::<Result<_, _>>()
        .expect("read subscribers")
}

fn remove_database_files(db: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(Path::new(&name));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_database_file_never_confirms_what_is_not_on_disk() {
    let app = spawn_app_with(AppOptions {
        config: Some(QUIET_BACKGROUND.to_string()),
        ..AppOptions::default()
    })
    .await;
    let alice = UserSpec::new(1001, "Alice").lang("en");
    let bob = UserSpec::new(1002, "Bob").lang("en");
    let carol = UserSpec::new(1003, "Carol").lang("zh-hans");

    let t = say(&app, &alice, "/subscribe").await;
    assert!(t.contains("Subscribed"), "{t}");
    assert_eq!(active_on_disk(&app.db), vec![1001]);

    // `rm reportbot.db*` while the bot runs.
    remove_database_files(&app.db);
    assert!(!app.db.exists());

    let t = say(&app, &bob, "/subscribe").await;
    assert!(
        t.contains("temporarily unavailable") && !t.contains("✅"),
        "must not confirm a subscription that is not on disk: {t}"
    );
    let log = app.log();
    assert!(
        log.lines()
            .any(|l| l.contains("ERROR") && l.contains("database file")),
        "an ERROR names the problem; log:\n{log}"
    );

    // The file is back, with what the bot had before the deletion.
    assert_eq!(
        active_on_disk(&app.db),
        vec![1001],
        "written back from the open connection"
    );

    // From now on changes reach the file at the path.
    let t = say(&app, &bob, "/subscribe").await;
    assert!(t.contains("Subscribed") && t.contains('✅'), "{t}");
    let t = say(&app, &carol, "/subscribe").await;
    assert!(t.contains("已订阅"), "{t}");
    assert_eq!(active_on_disk(&app.db), vec![1001, 1002, 1003]);
    let t = say(&app, &alice, "/status").await;
    assert!(
        t.contains("subscribed") && !t.contains("not subscribed"),
        "{t}"
    );

    // Deleted again: noticed again, recovered again.
    remove_database_files(&app.db);
    let t = say(&app, &alice, "/unsubscribe").await;
    assert!(t.contains("temporarily unavailable"), "{t}");
    assert_eq!(active_on_disk(&app.db), vec![1001, 1002, 1003]);
    let t = say(&app, &alice, "/unsubscribe").await;
    assert!(t.contains("Unsubscribed"), "{t}");
    assert_eq!(active_on_disk(&app.db), vec![1002, 1003]);
    assert!(
        app.api.rejections().is_empty(),
        "{:?}",
        app.api.rejections()
    );
}
