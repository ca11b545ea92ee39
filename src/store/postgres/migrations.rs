//! Versioned schema of the PostgreSQL database.
//!
//! The version lives in the one row of `reportbot_schema`. Every instance
//! runs [`migrate`] when it starts: under a transaction-scoped advisory lock,
//! so instances starting together migrate once (the others wait, then see
//! the new version), in one transaction (PostgreSQL's DDL is
//! transactional: a failed step leaves the database as it was). A database
//! written by a newer program is refused.
//!
//! Rules for new steps: append, never edit a step that has shipped, keep
//! each valid on a database with data in it.

use super::pool::Conn;
use crate::store::{StoreError, StoreResult};

/// One schema step.
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// v1: everything the SQLite store has at its v3, plus what several
/// instances share: the send budget and the per-chat slots.
const V1_SCHEMA: &str = r#"
CREATE TABLE subscribers (
    chat_id       BIGINT PRIMARY KEY,
    kind          TEXT   NOT NULL CHECK (kind IN ('private', 'group', 'supergroup', 'channel')),
    language      TEXT   NOT NULL DEFAULT 'zh' CHECK (language IN ('zh', 'en')),
    status        TEXT   NOT NULL DEFAULT 'active'
                         CHECK (status IN ('active', 'unsubscribed', 'blocked')),
    subscribed_at BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    reason        TEXT
);
CREATE INDEX subscribers_by_status ON subscribers (status);

CREATE TABLE announcements (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    text_html           TEXT   NOT NULL,
    origin              TEXT   NOT NULL CHECK (origin IN ('cli', 'admin', 'report')),
    origin_ref          TEXT,
    dedupe_key          TEXT,
    state               TEXT   NOT NULL DEFAULT 'draft'
                               CHECK (state IN ('draft', 'queued', 'done', 'cancelled')),
    created_at          BIGINT NOT NULL,
    queued_at           BIGINT,
    finished_at         BIGINT,
    admin_chat          BIGINT,
    progress_message_id INTEGER
);
-- One live announcement per key; a cancelled one frees its key.
CREATE UNIQUE INDEX announcements_by_dedupe_key ON announcements (dedupe_key)
    WHERE dedupe_key IS NOT NULL AND state <> 'cancelled';
CREATE INDEX announcements_queued ON announcements (id) WHERE state = 'queued';

CREATE TABLE outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    announcement_id BIGINT  NOT NULL REFERENCES announcements (id),
    chat_id         BIGINT  NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'pending'
                            CHECK (state IN ('pending', 'sent', 'failed', 'blocked', 'cancelled')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    not_before_ms   BIGINT  NOT NULL DEFAULT 0,
    last_error      TEXT,
    sent_at         BIGINT,
    message_id      INTEGER,
    -- The delivery worker holding the row, until lease_until_ms.
    leased_by       TEXT,
    lease_until_ms  BIGINT  NOT NULL DEFAULT 0,
    UNIQUE (announcement_id, chat_id)
);
CREATE INDEX outbox_pending ON outbox (id) WHERE state = 'pending';
CREATE INDEX outbox_pending_by_chat ON outbox (chat_id) WHERE state = 'pending';
CREATE INDEX outbox_by_announcement_state ON outbox (announcement_id, state);

-- The send budget shared by every instance: the next free slot and the
-- pause after a 429, by this server's clock.
CREATE TABLE send_budget (
    id           SMALLINT    PRIMARY KEY CHECK (id = 1),
    next_slot    TIMESTAMPTZ NOT NULL,
    paused_until TIMESTAMPTZ NOT NULL
);
INSERT INTO send_budget VALUES (1, 'epoch', 'epoch');

-- Each chat's last slot (the per-chat gap). Only recent rows matter, so
-- the table is pruned as it goes and need not survive a crash.
CREATE UNLOGGED TABLE chat_slots (
    chat_id   BIGINT      PRIMARY KEY,
    last_slot TIMESTAMPTZ NOT NULL
);

-- Milliseconds since the Unix epoch by this server's clock.
CREATE FUNCTION reportbot_now_ms() RETURNS BIGINT
LANGUAGE sql VOLATILE AS $$ SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint $$;

-- Book the next send slot: one interval after the previous one (or now, if
-- that is past by more than one interval: no burst after a quiet time),
-- never inside a pause, and per_chat after the chat's last slot. Returns
-- microseconds from now until the slot (0: now).
CREATE FUNCTION reportbot_book_slot(p_chat BIGINT, p_interval_us BIGINT, p_per_chat_us BIGINT)
RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    v_step INTERVAL := make_interval(secs => p_interval_us / 1e6);
    v_now  TIMESTAMPTZ;
    v_at   TIMESTAMPTZ;
    v_last TIMESTAMPTZ;
BEGIN
    -- One booking at a time, over every instance.
    PERFORM 1 FROM send_budget WHERE id = 1 FOR UPDATE;
    v_now := clock_timestamp();
    SELECT GREATEST(next_slot, paused_until) INTO v_at FROM send_budget WHERE id = 1;
    -- A little late (less than one interval): keep the cadence. Idle
    -- longer: start from now.
    IF v_at < v_now - v_step THEN
        v_at := v_now;
    END IF;
    IF p_chat IS NOT NULL AND p_per_chat_us > 0 THEN
        SELECT last_slot INTO v_last FROM chat_slots WHERE chat_id = p_chat;
        IF v_last IS NOT NULL THEN
            v_at := GREATEST(v_at, v_last + make_interval(secs => p_per_chat_us / 1e6));
        END IF;
        INSERT INTO chat_slots (chat_id, last_slot) VALUES (p_chat, v_at)
            ON CONFLICT (chat_id) DO UPDATE SET last_slot = EXCLUDED.last_slot;
        -- Now and then, forget chats whose gap is long over (at most 60 s).
        IF random() < 0.001 THEN
            DELETE FROM chat_slots WHERE last_slot < v_now - interval '2 minutes';
        END IF;
    END IF;
    UPDATE send_budget SET next_slot = v_at + v_step WHERE id = 1;
    RETURN GREATEST(0, floor(extract(epoch FROM v_at - v_now) * 1e6))::bigint;
END $$;
"#;

/// v2: Telegram's `file_id`s of uploaded pictures (SQLite's v4). Shared by
/// every instance, so a picture is uploaded once however many instances
/// answer; a `file_id` is valid only for the bot that uploaded it.
const V2_UPLOADED_FILES: &str = r#"
CREATE TABLE uploaded_files (
    bot_id      BIGINT NOT NULL,
    file_key    TEXT   NOT NULL,
    file_id     TEXT   NOT NULL,
    uploaded_at BIGINT NOT NULL,
    PRIMARY KEY (bot_id, file_key)
);
"#;

/// v3: webhook mode (as the SQLite store's v5). Update ids handled or
/// being handled (with the owner's lease), so each is handled once by all
/// instances; conversation contexts shared by every instance.
const V3_WEBHOOK: &str = r#"
CREATE TABLE handled_updates (
    update_id      BIGINT PRIMARY KEY,
    owner          TEXT   NOT NULL,
    lease_until_ms BIGINT NOT NULL,
    done_at_ms     BIGINT
);
CREATE INDEX handled_updates_done ON handled_updates (done_at_ms) WHERE done_at_ms IS NOT NULL;
CREATE TABLE conversations (
    key           TEXT   PRIMARY KEY,
    context       TEXT   NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
CREATE INDEX conversations_by_expiry ON conversations (expires_at_ms);
"#;

/// Every step, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "subscribers, announcements, outbox, shared send budget",
        sql: V1_SCHEMA,
    },
    Migration {
        version: 2,
        name: "uploaded files",
        sql: V2_UPLOADED_FILES,
    },
    Migration {
        version: 3,
        name: "handled updates and shared conversations",
        sql: V3_WEBHOOK,
    },
];

/// The schema version this program writes.
pub const LATEST_VERSION: i32 = 3;

/// Advisory lock key of migrations ("reportbot migrate").
const MIGRATION_LOCK: i64 = 0x7265_706f_7274_6d67;

/// The version of the database (0: empty).
pub fn schema_version(conn: &mut Conn) -> StoreResult<i32> {
    if !version_table_exists(conn)? {
        return Ok(0);
    }
    Ok(conn
        .query_opt("SELECT version FROM reportbot_schema", &[])?
        .map_or(0, |r| r.get(0)))
}

fn version_table_exists(conn: &mut Conn) -> StoreResult<bool> {
    Ok(conn
        .query_one("SELECT to_regclass('reportbot_schema') IS NOT NULL", &[])?
        .try_get(0)?)
}

/// Bring the database to [`LATEST_VERSION`]. Returns the version found.
pub fn migrate(conn: &mut Conn) -> StoreResult<i32> {
    conn.transaction(|c| {
        c.query_one("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        if !version_table_exists(c)? {
            // (Not IF NOT EXISTS: that logs a notice on every start.)
            c.client()
                .batch_execute("CREATE TABLE reportbot_schema (version INTEGER NOT NULL)")?;
        }
        let found = schema_version(c)?;
        if found > LATEST_VERSION {
            return Err(StoreError::SchemaTooNew {
                found: found.into(),
                supported: LATEST_VERSION.into(),
            });
        }
        for step in MIGRATIONS.iter().filter(|m| m.version > found) {
            tracing::info!(
                version = step.version,
                name = step.name,
                "migrating database"
            );
            let fail = |e: postgres::Error| StoreError::Migration {
                version: step.version.into(),
                source: Box::new(e),
            };
            c.client().batch_execute(step.sql).map_err(fail)?;
            c.client()
                .execute("DELETE FROM reportbot_schema", &[])
                .map_err(fail)?;
            c.client()
                .execute(
                    "INSERT INTO reportbot_schema (version) VALUES ($1)",
                    &[&step.version],
                )
                .map_err(fail)?;
        }
        Ok(found)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_numbered_in_order_up_to_latest() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i32 + 1, "{}", m.name);
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(LATEST_VERSION));
    }
}
