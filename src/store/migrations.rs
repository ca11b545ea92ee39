//! Versioned schema of the SQLite database (PostgreSQL's: `postgres/migrations.rs`).
//!
//! The version lives in `PRAGMA user_version`. Opening a file applies every
//! step above its version, in order, in one `BEGIN IMMEDIATE` transaction, so
//! two processes opening the same old file at once (the bot and the CLI)
//! migrate it once: the second waits (busy timeout), then sees the new
//! version. A failed step rolls everything back and leaves the file as it was.
//!
//! Rules for new steps: append, never edit a step that has shipped (files in
//! the field were made with it), and keep each step valid on a database with
//! data in it (`ALTER TABLE … ADD COLUMN … DEFAULT …`, new tables, new indexes).

use super::{StoreError, StoreResult};
use rusqlite::{Connection, TransactionBehavior};

/// One schema step.
pub struct Migration {
    /// `user_version` after this step.
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// v1: subscribers.
const V1_SUBSCRIBERS: &str = "
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
";

/// v2: announcements and their outbox.
const V2_ANNOUNCEMENTS: &str = "
CREATE TABLE announcements (
    id                  INTEGER PRIMARY KEY,
    text_html           TEXT    NOT NULL,
    origin              TEXT    NOT NULL CHECK (origin IN ('cli', 'admin', 'report')),
    origin_ref          TEXT,
    dedupe_key          TEXT,
    state               TEXT    NOT NULL DEFAULT 'draft'
                                CHECK (state IN ('draft', 'queued', 'done', 'cancelled')),
    created_at          INTEGER NOT NULL,
    queued_at           INTEGER,
    finished_at         INTEGER,
    admin_chat          INTEGER,
    progress_message_id INTEGER
) STRICT;
-- One live announcement per key; a cancelled one frees its key.
CREATE UNIQUE INDEX announcements_by_dedupe_key ON announcements (dedupe_key)
    WHERE dedupe_key IS NOT NULL AND state <> 'cancelled';
CREATE INDEX announcements_queued ON announcements (id) WHERE state = 'queued';

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    announcement_id INTEGER NOT NULL REFERENCES announcements (id),
    chat_id         INTEGER NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'pending'
                            CHECK (state IN ('pending', 'sent', 'failed', 'blocked', 'cancelled')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    not_before_ms   INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    sent_at         INTEGER,
    message_id      INTEGER,
    UNIQUE (announcement_id, chat_id)
) STRICT;
-- The worker's scan: pending rows in id order, due ones only.
CREATE INDEX outbox_pending ON outbox (id, not_before_ms) WHERE state = 'pending';
-- A chat's pending rows (blocked, unsubscribed, migrated).
CREATE INDEX outbox_pending_by_chat ON outbox (chat_id) WHERE state = 'pending';
-- Progress counts and 'is anything pending' per announcement.
CREATE INDEX outbox_by_announcement_state ON outbox (announcement_id, state);
";

/// v3: outbox rows are leased by a delivery worker, so that several
/// workers (processes) on one database never send the same row.
const V3_LEASES: &str = "
ALTER TABLE outbox ADD COLUMN leased_by TEXT;
ALTER TABLE outbox ADD COLUMN lease_until_ms INTEGER NOT NULL DEFAULT 0;
";

/// v4: Telegram's `file_id`s of uploaded pictures (the large-print tips
/// cards), so each picture is uploaded once per bot and card version. A
/// `file_id` is valid only for the bot that uploaded it: the bot is part of
/// the key.
const V4_UPLOADED_FILES: &str = "
CREATE TABLE uploaded_files (
    bot_id      INTEGER NOT NULL,
    file_key    TEXT    NOT NULL,
    file_id     TEXT    NOT NULL,
    uploaded_at INTEGER NOT NULL,
    PRIMARY KEY (bot_id, file_key)
) STRICT;
";

/// v5: webhook mode. Update ids handled (or being handled, with the
/// owner's lease), so that each is handled once over every delivery; and
/// conversation contexts, so a follow-up keeps its context on any instance.
const V5_WEBHOOK: &str = "
CREATE TABLE handled_updates (
    update_id      INTEGER PRIMARY KEY,
    owner          TEXT    NOT NULL,
    lease_until_ms INTEGER NOT NULL,
    done_at_ms     INTEGER
) STRICT;
CREATE INDEX handled_updates_done ON handled_updates (done_at_ms) WHERE done_at_ms IS NOT NULL;
CREATE TABLE conversations (
    key           TEXT    PRIMARY KEY,
    context       TEXT    NOT NULL,
    expires_at_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX conversations_by_expiry ON conversations (expires_at_ms);
";

/// Every step, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "subscribers",
        sql: V1_SUBSCRIBERS,
    },
    Migration {
        version: 2,
        name: "announcements and outbox",
        sql: V2_ANNOUNCEMENTS,
    },
    Migration {
        version: 3,
        name: "outbox leases",
        sql: V3_LEASES,
    },
    Migration {
        version: 4,
        name: "uploaded files",
        sql: V4_UPLOADED_FILES,
    },
    Migration {
        version: 5,
        name: "handled updates and shared conversations",
        sql: V5_WEBHOOK,
    },
];

/// The schema version this program writes.
pub const LATEST_VERSION: i64 = 5;

/// Read `PRAGMA user_version`.
pub fn schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Bring the database to [`LATEST_VERSION`]. Returns the version found.
pub fn migrate(conn: &mut Connection) -> StoreResult<i64> {
    let db = |e: rusqlite::Error| StoreError::Database(Box::new(e));
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let found = schema_version(&tx).map_err(db)?;
    if found > LATEST_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: LATEST_VERSION,
        });
    }
    for step in MIGRATIONS.iter().filter(|m| m.version > found) {
        tracing::info!(
            version = step.version,
            name = step.name,
            "migrating database"
        );
        let fail = |e: rusqlite::Error| StoreError::Migration {
            version: step.version,
            source: Box::new(e),
        };
        tx.execute_batch(step.sql).map_err(fail)?;
        tx.pragma_update(None, "user_version", step.version)
            .map_err(fail)?;
    }
    tx.commit().map_err(db)?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_numbered_in_order_up_to_latest() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1, "{}", m.name);
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(LATEST_VERSION));
    }

    #[test]
    fn migrate_twice_is_a_no_op() -> Result<(), Box<dyn std::error::Error>> {
        let mut conn = Connection::open_in_memory()?;
        assert_eq!(migrate(&mut conn)?, 0);
        assert_eq!(schema_version(&conn)?, LATEST_VERSION);
        assert_eq!(migrate(&mut conn)?, LATEST_VERSION);
        Ok(())
    }

    #[test]
    fn newer_file_is_refused() -> Result<(), Box<dyn std::error::Error>> {
        let mut conn = Connection::open_in_memory()?;
        conn.pragma_update(None, "user_version", LATEST_VERSION + 1)?;
        let err = migrate(&mut conn).err();
        assert!(
            matches!(err, Some(StoreError::SchemaTooNew { found, .. }) if found == LATEST_VERSION + 1),
            "{err:?}"
        );
        Ok(())
    }

    #[test]
    fn failed_step_leaves_the_file_unchanged() -> Result<(), Box<dyn std::error::Error>> {
        let mut conn = Connection::open_in_memory()?;
        conn.execute_batch(V1_SUBSCRIBERS)?;
        conn.pragma_update(None, "user_version", 1)?;
        // Something in the way of step 2.
        conn.execute_batch("CREATE TABLE outbox (x INTEGER)")?;
        let err = migrate(&mut conn).err();
        assert!(
            matches!(err, Some(StoreError::Migration { version: 2, .. })),
            "{err:?}"
        );
        assert_eq!(schema_version(&conn)?, 1);
        let announcements: i64 = conn.query_row(
            "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'announcements'",
            [],
            |r| r.get(0),
        )?;
        assert_eq!(announcements, 0);
        Ok(())
    }
}
