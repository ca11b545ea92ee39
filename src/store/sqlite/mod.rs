//! [`Store`] on a SQLite file.
//!
//! - **WAL** journal: readers never block the writer, so the bot and
//!   `reportbot announce` can use the same file at once; `busy_timeout`
//!   makes a second writer wait instead of failing.
//! - **`synchronous = NORMAL`**: in WAL mode a commit is in the OS before it
//!   returns, so it survives the *process* dying (kill -9, panic, OOM) — the
//!   failure we design for. Only an OS crash or power loss can lose the last
//!   few commits (never corrupt the file); for the outbox that means a few
//!   messages marked sent may be sent again, none lost. `FULL` would fsync
//!   every `mark_sent`, a needless cost at 25 sends a second.
//! - One connection behind a mutex: every trait method is one short
//!   transaction, and the bot's load (tens of writes a second) is far below
//!   what one connection does.
//! - Before each use the store checks that the file it has open is still
//!   the file at its path ([`file`]): a deleted database is written back
//!   from the open connection instead of silently swallowing every write.

mod file;

use super::migrations;
use super::{
    Announcement, AnnouncementId, AnnouncementState, BeginSend, ChatKind, Confirmed, Created,
    Delivery, DeliveryId, DeliveryInfo, DeliveryState, FileKey, Language, NewAnnouncement,
    NewSubscriber, Origin, Progress, ProgressMessage, Store, StoreError, StoreResult, Subscriber,
    SubscriberCounts, SubscriberStatus, UpdateClaim,
};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, Params, Row, ToSql, TransactionBehavior, params};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a write waits for another process's write to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(Box::new(e))
    }
}

macro_rules! sql_text_enum {
    ($($name:ident),+) => {$(
        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }
        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                value
                    .as_str()?
                    .parse()
                    .map_err(|e: StoreError| FromSqlError::Other(Box::new(e)))
            }
        }
    )+};
}

sql_text_enum!(
    ChatKind,
    Language,
    SubscriberStatus,
    AnnouncementState,
    DeliveryState
);

/// `execute` / `query_row` through the connection's statement cache: the
/// hot statements (subscribe, mark_sent …) are parsed once, not per call.
trait Cached {
    fn exec<P: Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
    fn row<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn exec<P: Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn row<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// The SQLite store. Cheap to share: wrap it in an `Arc`.
pub struct SqliteStore {
    open: Mutex<OpenFile>,
    path: Option<PathBuf>,
}

/// The connection and the identity of the file it opened (`None` in memory).
struct OpenFile {
    conn: Connection,
    file: Option<file::FileId>,
}

impl std::ops::Deref for OpenFile {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Open (or create) the database file and bring its schema up to date.
    pub fn open(path: impl AsRef<Path>) -> StoreResult<SqliteStore> {
        let path = path.as_ref();
        let conn = Self::open_file(path)?;
        Ok(SqliteStore {
            open: Mutex::new(OpenFile {
                conn,
                file: file::file_id(path),
            }),
            path: Some(path.to_path_buf()),
        })
    }

    fn open_file(path: &Path) -> StoreResult<Connection> {
        let open_err = |e: Box<dyn std::error::Error + Send + Sync>| StoreError::Open {
            path: path.display().to_string(),
            source: e,
        };
        let mut conn = Connection::open(path).map_err(|e| open_err(Box::new(e)))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| open_err(Box::new(e)))?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| open_err(Box::new(e)))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(open_err(
                format!("cannot switch to WAL journal mode (got {mode:?})").into(),
            ));
        }
        Self::prepare(&mut conn).map_err(|e| match e {
            StoreError::Database(source) => open_err(source),
            other => other,
        })?;
        Ok(conn)
    }

    /// A private in-memory database (tests, dry runs).
    pub fn open_in_memory() -> StoreResult<SqliteStore> {
        let mut conn = Connection::open_in_memory()?;
        Self::prepare(&mut conn)?;
        Ok(SqliteStore {
            open: Mutex::new(OpenFile { conn, file: None }),
            path: None,
        })
    }

    fn prepare(conn: &mut Connection) -> StoreResult<()> {
        conn.set_prepared_statement_cache_capacity(64);
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrations::migrate(conn)?;
        Ok(())
    }

    /// The file, unless in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// `PRAGMA user_version` of the open database.
    pub fn schema_version(&self) -> StoreResult<i64> {
        self.read(|c| Ok(migrations::schema_version(c)?))
    }

    fn lock(&self) -> MutexGuard<'_, OpenFile> {
        // A panic while holding the lock cannot leave a transaction open
        // (rusqlite rolls back on drop), so the connection is still sound.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The connection, once it is certain to be the file at the path.
    fn checked(&self) -> StoreResult<MutexGuard<'_, OpenFile>> {
        let mut open = self.lock();
        if let Some(change) = self.file_change(&open) {
            self.recover(&mut open, change)?;
            return Err(StoreError::Unavailable(format!(
                "the database file was {} while open; it has been {}, try again",
                match change {
                    file::Change::Deleted => "deleted",
                    file::Change::Replaced => "replaced",
                },
                match change {
                    file::Change::Deleted => "written back from the open connection",
                    file::Change::Replaced => "reopened",
                }
            )));
        }
        Ok(open)
    }

    fn file_change(&self, open: &OpenFile) -> Option<file::Change> {
        file::check(self.path.as_deref()?, open.file)
    }

    /// The file at the path is not ours any more: bring it back (deleted)
    /// or take the new one (replaced), and reopen.
    fn recover(&self, open: &mut OpenFile, change: file::Change) -> StoreResult<()> {
        let Some(path) = self.path.as_deref() else {
            return Ok(());
        };
        tracing::error!(
            path = %path.display(),
            ?change,
            "the database file is no longer the one this process opened; recovering"
        );
        if change == file::Change::Deleted {
            file::restore_to(&open.conn, path)?;
        }
        let conn = Self::open_file(path)
            .map_err(|e| StoreError::Unavailable(format!("cannot reopen the database: {e}")))?;
        *open = OpenFile {
            conn,
            file: file::file_id(path),
        };
        tracing::warn!(path = %path.display(), "database reopened");
        Ok(())
    }

    /// Run `f` on the connection (reads).
    fn read<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        let open = self.checked()?;
        f(&open.conn)
    }

    /// Run `f` in a `BEGIN IMMEDIATE` transaction (takes the write lock at
    /// once, so `busy_timeout` applies instead of a deadlock-style failure).
    ///
    /// If the file went away between the check and the commit, the commit
    /// landed in the old file only: it is written back at once, so what the
    /// caller confirms is on disk; if that fails, the call fails.
    fn write<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        let mut open = self.checked()?;
        let tx = open
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        if let Some(change) = self.file_change(&open) {
            self.recover(&mut open, change)?;
            if change == file::Change::Replaced {
                return Err(StoreError::Unavailable(
                    "the database file was replaced during a write; try again".into(),
                ));
            }
        }
        Ok(out)
    }
}

// ----- helpers on a connection (inside a transaction) -----------------------

fn announcement_state(conn: &Connection, id: AnnouncementId) -> StoreResult<AnnouncementState> {
    conn.row(
        "SELECT state FROM announcements WHERE id = ?1",
        [id.0],
        |r| r.get(0),
    )
    .optional()?
    .ok_or(StoreError::NotFound {
        what: "announcement",
        id: id.0,
    })
}

fn origin_columns(origin: &Origin) -> (&'static str, Option<String>) {
    match origin {
        Origin::Cli => ("cli", None),
        Origin::Admin(user) => ("admin", Some(user.to_string())),
        Origin::Report(report) => ("report", Some(report.clone())),
    }
}

fn origin_from(kind: &str, reference: Option<String>) -> StoreResult<Origin> {
    match (kind, reference) {
        ("cli", _) => Ok(Origin::Cli),
        ("admin", Some(r)) => r
            .parse()
            .map(Origin::Admin)
            .map_err(|_| StoreError::Corrupt(format!("admin origin {r:?} is not a user id"))),
        ("report", Some(r)) => Ok(Origin::Report(r)),
        (k, r) => Err(StoreError::Corrupt(format!("origin {k:?} / {r:?}"))),
    }
}

const ANNOUNCEMENT_COLUMNS: &str = "id, text_html, origin, origin_ref, dedupe_key, state, \
     created_at, queued_at, finished_at, admin_chat, progress_message_id";

fn announcement_from_row(r: &Row<'_>) -> rusqlite::Result<(Announcement, String, Option<String>)> {
    let admin_chat: Option<i64> = r.get(9)?;
    let message_id: Option<i32> = r.get(10)?;
    Ok((
        Announcement {
            id: AnnouncementId(r.get(0)?),
            text_html: r.get(1)?,
            created_by: Origin::Cli, // filled in by the caller
            dedupe_key: r.get(4)?,
            state: r.get(5)?,
            created_at: r.get(6)?,
            queued_at: r.get(7)?,
            finished_at: r.get(8)?,
            progress_message: admin_chat.zip(message_id).map(|(chat_id, message_id)| {
                ProgressMessage {
                    chat_id,
                    message_id,
                }
            }),
        },
        r.get(2)?,
        r.get(3)?,
    ))
}

fn finish_announcement(
    (mut a, kind, reference): (Announcement, String, Option<String>),
) -> StoreResult<Announcement> {
    a.created_by = origin_from(&kind, reference)?;
    Ok(a)
}

fn create_in(conn: &Connection, new: &NewAnnouncement) -> StoreResult<Created> {
    if new.text_html.trim().is_empty() {
        return Err(StoreError::Invalid {
            what: "announcement",
            message: "the text is empty".into(),
        });
    }
    if let Some(key) = &new.dedupe_key {
        let existing: Option<(i64, AnnouncementState)> = conn
            .row(
                "SELECT id, state FROM announcements
                 WHERE dedupe_key = ?1 AND state <> 'cancelled'",
                [key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((id, state)) = existing {
            return Ok(Created {
                id: AnnouncementId(id),
                duplicate: true,
                state,
            });
        }
    }
    let (origin, reference) = origin_columns(&new.created_by);
    conn.exec(
        "INSERT INTO announcements (text_html, origin, origin_ref, dedupe_key, state, created_at)
         VALUES (?1, ?2, ?3, ?4, 'draft', ?5)",
        params![new.text_html, origin, reference, new.dedupe_key, now_secs()],
    )?;
    Ok(Created {
        id: AnnouncementId(conn.last_insert_rowid()),
        duplicate: false,
        state: AnnouncementState::Draft,
    })
}

fn deliveries_of(conn: &Connection, id: AnnouncementId) -> StoreResult<u64> {
    let n: i64 = conn.row(
        "SELECT COUNT(*) FROM outbox WHERE announcement_id = ?1",
        [id.0],
        |r| r.get(0),
    )?;
    Ok(count(n))
}

fn confirm_in(conn: &Connection, id: AnnouncementId) -> StoreResult<Confirmed> {
    match announcement_state(conn, id)? {
        AnnouncementState::Draft => {}
        AnnouncementState::Queued | AnnouncementState::Done => {
            return Ok(Confirmed {
                deliveries: deliveries_of(conn, id)?,
                newly_confirmed: false,
            });
        }
        state @ AnnouncementState::Cancelled => {
            return Err(StoreError::InvalidState {
                id,
                state,
                action: "confirm",
            });
        }
    }
    conn.exec(
        "UPDATE announcements SET state = 'queued', queued_at = ?2 WHERE id = ?1",
        params![id.0, now_secs()],
    )?;
    // The snapshot: one row per subscriber active now, in one statement.
    let n = conn.exec(
        "INSERT INTO outbox (announcement_id, chat_id)
         SELECT ?1, chat_id FROM subscribers WHERE status = 'active' ORDER BY chat_id",
        [id.0],
    )?;
    Ok(Confirmed {
        deliveries: n as u64,
        newly_confirmed: true,
    })
}

fn block_chat_in(conn: &Connection, chat_id: i64, reason: &str) -> StoreResult<bool> {
    let changed = conn.exec(
        "UPDATE subscribers SET status = 'blocked', reason = ?2, updated_at = ?3
         WHERE chat_id = ?1 AND status <> 'blocked'",
        params![chat_id, reason, now_secs()],
    )?;
    conn.exec(
        "UPDATE outbox SET state = 'blocked', last_error = ?2
         WHERE chat_id = ?1 AND state = 'pending'",
        params![chat_id, reason],
    )?;
    Ok(changed > 0)
}

fn subscribe_in(conn: &Connection, chat: &NewSubscriber, now: i64) -> StoreResult<bool> {
    let before: Option<SubscriberStatus> = conn
        .row(
            "SELECT status FROM subscribers WHERE chat_id = ?1",
            [chat.chat_id],
            |r| r.get(0),
        )
        .optional()?;
    upsert_subscriber(conn, chat, now)?;
    Ok(before != Some(SubscriberStatus::Active))
}

fn upsert_subscriber(conn: &Connection, chat: &NewSubscriber, now: i64) -> StoreResult<()> {
    conn.exec(
        "INSERT INTO subscribers (chat_id, kind, language, status, subscribed_at, updated_at)
         VALUES (?1, ?2, ?3, 'active', ?4, ?4)
         ON CONFLICT (chat_id) DO UPDATE SET
             kind = excluded.kind,
             language = excluded.language,
             subscribed_at = CASE WHEN status = 'active' THEN subscribed_at
                                  ELSE excluded.subscribed_at END,
             status = 'active',
             reason = NULL,
             updated_at = excluded.updated_at",
        params![chat.chat_id, chat.kind, chat.language, now],
    )?;
    Ok(())
}

fn not_found_delivery(id: DeliveryId) -> StoreError {
    StoreError::NotFound {
        what: "delivery",
        id: id.0,
    }
}

impl Store for SqliteStore {
    fn subscribe(&self, chat: &NewSubscriber) -> StoreResult<bool> {
        self.write(|c| subscribe_in(c, chat, now_secs()))
    }

    fn subscribe_many(&self, chats: &[NewSubscriber]) -> StoreResult<u64> {
        self.write(|c| {
            let active = |c: &Connection| -> StoreResult<i64> {
                Ok(c.row(
                    "SELECT COUNT(*) FROM subscribers WHERE status = 'active'",
                    [],
                    |r| r.get(0),
                )?)
            };
            let before = active(c)?;
            let now = now_secs();
            for chat in chats {
                upsert_subscriber(c, chat, now)?;
            }
            // Every chat listed is active now and no other changed, so the
            // difference is the number that were not active before.
            Ok(count(active(c)? - before))
        })
    }

    fn unsubscribe(&self, chat_id: i64) -> StoreResult<bool> {
        self.write(|c| {
            let changed = c.exec(
                "UPDATE subscribers SET status = 'unsubscribed', reason = NULL, updated_at = ?2
                 WHERE chat_id = ?1 AND status = 'active'",
                params![chat_id, now_secs()],
            )?;
            c.exec(
                "UPDATE outbox SET state = 'cancelled', last_error = 'unsubscribed'
                 WHERE chat_id = ?1 AND state = 'pending'",
                [chat_id],
            )?;
            Ok(changed > 0)
        })
    }

    fn is_subscribed(&self, chat_id: i64) -> StoreResult<bool> {
        let status: Option<SubscriberStatus> = self
            .checked()?
            .row(
                "SELECT status FROM subscribers WHERE chat_id = ?1",
                [chat_id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(status == Some(SubscriberStatus::Active))
    }

    fn subscriber(&self, chat_id: i64) -> StoreResult<Option<Subscriber>> {
        Ok(self
            .checked()?
            .row(
                "SELECT chat_id, kind, language, status, subscribed_at, updated_at, reason
                 FROM subscribers WHERE chat_id = ?1",
                [chat_id],
                |r| {
                    Ok(Subscriber {
                        chat_id: r.get(0)?,
                        kind: r.get(1)?,
                        language: r.get(2)?,
                        status: r.get(3)?,
                        subscribed_at: r.get(4)?,
                        updated_at: r.get(5)?,
                        reason: r.get(6)?,
                    })
                },
            )
            .optional()?)
    }

    fn counts(&self) -> StoreResult<SubscriberCounts> {
        let conn = self.checked()?;
        let mut stmt =
            conn.prepare_cached("SELECT status, COUNT(*) FROM subscribers GROUP BY status")?;
        let mut rows = stmt.query([])?;
        let mut counts = SubscriberCounts::default();
        while let Some(row) = rows.next()? {
            let n = count(row.get(1)?);
            match row.get::<_, SubscriberStatus>(0)? {
                SubscriberStatus::Active => counts.active = n,
                SubscriberStatus::Unsubscribed => counts.unsubscribed = n,
                SubscriberStatus::Blocked => counts.blocked = n,
            }
        }
        Ok(counts)
    }

    fn mark_chat_blocked(&self, chat_id: i64, reason: &str) -> StoreResult<bool> {
        self.write(|c| block_chat_in(c, chat_id, reason))
    }

    fn migrate_chat(&self, from: i64, to: i64) -> StoreResult<()> {
        if from == to {
            return Ok(());
        }
        self.write(|c| {
            let now = now_secs();
            let old: Option<SubscriberStatus> = c
                .row(
                    "SELECT status FROM subscribers WHERE chat_id = ?1",
                    [from],
                    |r| r.get(0),
                )
                .optional()?;
            let new_exists: bool = c.row(
                "SELECT EXISTS (SELECT 1 FROM subscribers WHERE chat_id = ?1)",
                [to],
                |r| r.get(0),
            )?;
            if let Some(status) = old {
                if new_exists {
                    // Both known: the new id wins; it is active if either was.
                    if status == SubscriberStatus::Active {
                        c.exec(
                            "UPDATE subscribers SET status = 'active', reason = NULL,
                                 kind = 'supergroup', updated_at = ?2
                             WHERE chat_id = ?1",
                            params![to, now],
                        )?;
                    }
                    c.exec("DELETE FROM subscribers WHERE chat_id = ?1", [from])?;
                } else {
                    c.exec(
                        "UPDATE subscribers SET chat_id = ?2, kind = 'supergroup', updated_at = ?3
                         WHERE chat_id = ?1",
                        params![from, to, now],
                    )?;
                }
            }
            // Pending rows follow, unless the new id already has a row for
            // the same announcement (then the old one is not needed).
            c.exec(
                "UPDATE outbox SET state = 'cancelled', last_error = 'chat migrated to ' || ?2
                 WHERE chat_id = ?1 AND state = 'pending' AND announcement_id IN
                       (SELECT announcement_id FROM outbox WHERE chat_id = ?2)",
                params![from, to],
            )?;
            c.exec(
                "UPDATE outbox SET chat_id = ?2 WHERE chat_id = ?1 AND state = 'pending'",
                params![from, to],
            )?;
            Ok(())
        })
    }

    fn create_announcement(&self, new: &NewAnnouncement) -> StoreResult<Created> {
        self.write(|c| create_in(c, new))
    }

    fn confirm(&self, id: AnnouncementId) -> StoreResult<Confirmed> {
        self.write(|c| confirm_in(c, id))
    }

    fn cancel(&self, id: AnnouncementId) -> StoreResult<u64> {
        self.write(|c| match announcement_state(c, id)? {
            AnnouncementState::Cancelled => Ok(0),
            state @ AnnouncementState::Done => Err(StoreError::InvalidState {
                id,
                state,
                action: "cancel",
            }),
            AnnouncementState::Draft | AnnouncementState::Queued => {
                c.exec(
                    "UPDATE announcements SET state = 'cancelled', finished_at = ?2 WHERE id = ?1",
                    params![id.0, now_secs()],
                )?;
                let n = c.exec(
                    "UPDATE outbox SET state = 'cancelled', last_error = 'announcement cancelled'
                     WHERE announcement_id = ?1 AND state = 'pending'",
                    [id.0],
                )?;
                Ok(n as u64)
            }
        })
    }

    fn queue_now(&self, new: &NewAnnouncement) -> StoreResult<Created> {
        self.write(|c| {
            let created = create_in(c, new)?;
            if created.duplicate {
                return Ok(created);
            }
            confirm_in(c, created.id)?;
            Ok(Created {
                state: AnnouncementState::Queued,
                ..created
            })
        })
    }

    fn announcement(&self, id: AnnouncementId) -> StoreResult<Option<Announcement>> {
        let row = self
            .checked()?
            .row(
                &format!("SELECT {ANNOUNCEMENT_COLUMNS} FROM announcements WHERE id = ?1"),
                [id.0],
                announcement_from_row,
            )
            .optional()?;
        row.map(finish_announcement).transpose()
    }

    fn pending_announcements(&self) -> StoreResult<Vec<Announcement>> {
        let conn = self.checked()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {ANNOUNCEMENT_COLUMNS} FROM announcements WHERE state = 'queued' ORDER BY id"
        ))?;
        let rows = stmt.query_map([], announcement_from_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(finish_announcement(row?)?);
        }
        Ok(out)
    }

    fn progress(&self, id: AnnouncementId) -> StoreResult<Progress> {
        let conn = self.checked()?;
        announcement_state(&conn, id)?;
        let mut stmt = conn.prepare_cached(
            "SELECT state, COUNT(*) FROM outbox WHERE announcement_id = ?1 GROUP BY state",
        )?;
        let mut rows = stmt.query([id.0])?;
        let mut p = Progress::default();
        while let Some(row) = rows.next()? {
            let n = count(row.get(1)?);
            p.total += n;
            match row.get::<_, DeliveryState>(0)? {
                DeliveryState::Pending => p.pending = n,
                DeliveryState::Sent => p.sent = n,
                DeliveryState::Failed => p.failed = n,
                DeliveryState::Blocked => p.blocked = n,
                DeliveryState::Cancelled => p.cancelled = n,
            }
        }
        Ok(p)
    }

    fn set_progress_message(
        &self,
        id: AnnouncementId,
        message: ProgressMessage,
    ) -> StoreResult<()> {
        self.write(|c| {
            let n = c.exec(
                "UPDATE announcements SET admin_chat = ?2, progress_message_id = ?3 WHERE id = ?1",
                params![id.0, message.chat_id, message.message_id],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound {
                    what: "announcement",
                    id: id.0,
                });
            }
            Ok(())
        })
    }

    fn complete_if_done(&self, id: AnnouncementId) -> StoreResult<bool> {
        self.write(|c| {
            let n = c.exec(
                "UPDATE announcements SET state = 'done', finished_at = ?2
                 WHERE id = ?1 AND state = 'queued' AND NOT EXISTS
                       (SELECT 1 FROM outbox WHERE announcement_id = ?1 AND state = 'pending')",
                params![id.0, now_secs()],
            )?;
            Ok(n > 0)
        })
    }

    fn next_pending(&self, limit: usize) -> StoreResult<Vec<Delivery>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let conn = self.checked()?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, announcement_id, chat_id, attempts FROM outbox INDEXED BY outbox_pending
             WHERE state = 'pending' AND not_before_ms <= ?1
             ORDER BY id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![now_millis(), limit], |r| {
            Ok(Delivery {
                id: DeliveryId(r.get(0)?),
                announcement_id: AnnouncementId(r.get(1)?),
                chat_id: r.get(2)?,
                attempts: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn delivery(&self, id: DeliveryId) -> StoreResult<Option<DeliveryInfo>> {
        Ok(self
            .checked()?
            .row(
                "SELECT id, announcement_id, chat_id, state, attempts, last_error, not_before_ms,
                        sent_at, message_id, leased_by
                 FROM outbox WHERE id = ?1",
                [id.0],
                |r| {
                    Ok(DeliveryInfo {
                        id: DeliveryId(r.get(0)?),
                        announcement_id: AnnouncementId(r.get(1)?),
                        chat_id: r.get(2)?,
                        state: r.get(3)?,
                        attempts: r.get(4)?,
                        last_error: r.get(5)?,
                        not_before_ms: r.get(6)?,
                        sent_at: r.get(7)?,
                        message_id: r.get(8)?,
                        leased_by: r.get(9)?,
                    })
                },
            )
            .optional()?)
    }

    fn lease_pending(
        &self,
        worker: &str,
        limit: usize,
        lease: Duration,
    ) -> StoreResult<Vec<Delivery>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let now = now_millis();
        let until = now.saturating_add(millis(lease));
        self.write(|c| {
            let mut stmt = c.prepare_cached(
                "UPDATE outbox SET leased_by = ?1, lease_until_ms = ?2
                 WHERE id IN (SELECT id FROM outbox INDEXED BY outbox_pending
                              WHERE state = 'pending' AND not_before_ms <= ?3
                                AND (leased_by IS NULL OR leased_by = ?1 OR lease_until_ms <= ?3)
                              ORDER BY id LIMIT ?4)
                 RETURNING id, announcement_id, chat_id, attempts",
            )?;
            let rows = stmt.query_map(params![worker, until, now, limit], |r| {
                Ok(Delivery {
                    id: DeliveryId(r.get(0)?),
                    announcement_id: AnnouncementId(r.get(1)?),
                    chat_id: r.get(2)?,
                    attempts: r.get(3)?,
                })
            })?;
            let mut out = rows.collect::<Result<Vec<_>, _>>()?;
            // RETURNING does not promise an order.
            out.sort_unstable_by_key(|d| d.id);
            Ok(out)
        })
    }

    fn begin_send(&self, id: DeliveryId, worker: &str, lease: Duration) -> StoreResult<BeginSend> {
        let now = now_millis();
        let n = self.checked()?.exec(
            "UPDATE outbox SET leased_by = ?2, lease_until_ms = ?3
             WHERE id = ?1 AND state = 'pending'
               AND (leased_by IS NULL OR leased_by = ?2 OR lease_until_ms <= ?4)",
            params![id.0, worker, now.saturating_add(millis(lease)), now],
        )?;
        Ok(if n == 1 {
            BeginSend::Send
        } else {
            BeginSend::Skip
        })
    }

    fn claim_update(
        &self,
        update_id: i64,
        owner: &str,
        lease: Duration,
    ) -> StoreResult<UpdateClaim> {
        let now = now_millis();
        self.write(|c| {
            // New, or its owner's lease ran out before it was done.
            let taken = c.exec(
                "INSERT INTO handled_updates (update_id, owner, lease_until_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (update_id) DO UPDATE SET owner = excluded.owner,
                     lease_until_ms = excluded.lease_until_ms
                 WHERE done_at_ms IS NULL AND lease_until_ms < ?4",
                params![update_id, owner, now.saturating_add(millis(lease)), now],
            )?;
            if taken > 0 {
                return Ok(UpdateClaim::New);
            }
            let done: Option<i64> = c.row(
                "SELECT done_at_ms FROM handled_updates WHERE update_id = ?1",
                [update_id],
                |r| r.get(0),
            )?;
            Ok(if done.is_some() {
                UpdateClaim::Done
            } else {
                UpdateClaim::Busy
            })
        })
    }

    fn finish_update(&self, update_id: i64) -> StoreResult<()> {
        self.checked()?.exec(
            "UPDATE handled_updates SET done_at_ms = ?2 WHERE update_id = ?1",
            [update_id, now_millis()],
        )?;
        Ok(())
    }

    fn release_update(&self, update_id: i64, owner: &str) -> StoreResult<()> {
        self.checked()?.exec(
            "DELETE FROM handled_updates
             WHERE update_id = ?1 AND owner = ?2 AND done_at_ms IS NULL",
            params![update_id, owner],
        )?;
        Ok(())
    }

    fn load_context(&self, key: &str) -> StoreResult<Option<String>> {
        Ok(self
            .checked()?
            .row(
                "SELECT context FROM conversations WHERE key = ?1 AND expires_at_ms > ?2",
                params![key, now_millis()],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn save_context(&self, key: &str, context: Option<&str>, ttl: Duration) -> StoreResult<()> {
        let c = self.checked()?;
        match context {
            Some(text) => c.exec(
                "INSERT INTO conversations (key, context, expires_at_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET context = excluded.context,
                     expires_at_ms = excluded.expires_at_ms",
                params![key, text, now_millis().saturating_add(millis(ttl))],
            )?,
            None => c.exec("DELETE FROM conversations WHERE key = ?1", [key])?,
        };
        Ok(())
    }

    fn sweep(&self, max_contexts: usize, keep_updates: Duration) -> StoreResult<u64> {
        let now = now_millis();
        let max = i64::try_from(max_contexts).unwrap_or(i64::MAX);
        self.write(|c| {
            let mut n = c.exec("DELETE FROM conversations WHERE expires_at_ms <= ?1", [now])?;
            // Beyond the bound: the ones that expire first go first.
            n += c.exec(
                "DELETE FROM conversations WHERE key IN (
                     SELECT key FROM conversations ORDER BY expires_at_ms DESC
                     LIMIT -1 OFFSET ?1)",
                [max],
            )?;
            n += c.exec(
                "DELETE FROM handled_updates WHERE done_at_ms < ?1",
                [now.saturating_sub(millis(keep_updates))],
            )?;
            Ok(n as u64)
        })
    }

    fn release_leases(&self, worker: &str) -> StoreResult<u64> {
        let n = self.checked()?.exec(
            "UPDATE outbox SET leased_by = NULL, lease_until_ms = 0
             WHERE state = 'pending' AND leased_by = ?1",
            [worker],
        )?;
        Ok(n as u64)
    }

    fn mark_sent(&self, id: DeliveryId, message_id: i32) -> StoreResult<()> {
        // Recorded whatever the row's state: Telegram did deliver it, even if
        // the announcement was cancelled while the request was in flight.
        let n = self.checked()?.exec(
            "UPDATE outbox SET state = 'sent', sent_at = ?2, message_id = ?3, last_error = NULL
             WHERE id = ?1",
            params![id.0, now_secs(), message_id],
        )?;
        if n == 0 {
            return Err(not_found_delivery(id));
        }
        Ok(())
    }

    fn mark_retry(&self, id: DeliveryId, error: &str, retry_in: Duration) -> StoreResult<u32> {
        let delay = i64::try_from(retry_in.as_millis()).unwrap_or(i64::MAX);
        self.write(|c| {
            let attempts: Option<u32> = c
                .row(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, not_before_ms = ?3,
                         leased_by = NULL, lease_until_ms = 0
                     WHERE id = ?1 AND state = 'pending' RETURNING attempts",
                    params![id.0, error, now_millis().saturating_add(delay)],
                    |r| r.get(0),
                )
                .optional()?;
            match attempts {
                Some(n) => Ok(n),
                // Settled meanwhile (cancelled, blocked): leave it as it is.
                None => c
                    .row("SELECT attempts FROM outbox WHERE id = ?1", [id.0], |r| {
                        r.get(0)
                    })
                    .optional()?
                    .ok_or_else(|| not_found_delivery(id)),
            }
        })
    }

    fn mark_failed(&self, id: DeliveryId, error: &str) -> StoreResult<()> {
        self.write(|c| {
            let n = c.exec(
                "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = ?2
                 WHERE id = ?1 AND state = 'pending'",
                params![id.0, error],
            )?;
            if n == 0 {
                // Settled meanwhile (cancelled, blocked): leave it as it is.
                delivery_chat(c, id)?;
            }
            Ok(())
        })
    }

    fn mark_blocked(&self, id: DeliveryId, reason: &str) -> StoreResult<()> {
        self.write(|c| {
            let chat_id = delivery_chat(c, id)?;
            c.exec(
                "UPDATE outbox SET state = 'blocked', attempts = attempts + 1, last_error = ?2
                 WHERE id = ?1 AND state = 'pending'",
                params![id.0, reason],
            )?;
            block_chat_in(c, chat_id, reason)?;
            Ok(())
        })
    }

    fn uploaded_file(&self, key: &FileKey) -> StoreResult<Option<String>> {
        Ok(self
            .checked()?
            .row(
                "SELECT file_id FROM uploaded_files WHERE bot_id = ?1 AND file_key = ?2",
                params![key.bot_id, key.key],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn remember_upload(&self, key: &FileKey, file_id: &str) -> StoreResult<()> {
        self.write(|c| {
            c.exec(
                "INSERT INTO uploaded_files (bot_id, file_key, file_id, uploaded_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (bot_id, file_key)
                 DO UPDATE SET file_id = excluded.file_id, uploaded_at = excluded.uploaded_at",
                params![key.bot_id, key.key, file_id, now_secs()],
            )?;
            Ok(())
        })
    }

    fn forget_upload(&self, key: &FileKey, file_id: &str) -> StoreResult<bool> {
        self.write(|c| {
            Ok(c.exec(
                "DELETE FROM uploaded_files WHERE bot_id = ?1 AND file_key = ?2 AND file_id = ?3",
                params![key.bot_id, key.key, file_id],
            )? > 0)
        })
    }
}

fn delivery_chat(conn: &Connection, id: DeliveryId) -> StoreResult<i64> {
    conn.row("SELECT chat_id FROM outbox WHERE id = ?1", [id.0], |r| {
        r.get(0)
    })
    .optional()?
    .ok_or_else(|| not_found_delivery(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn sub(chat_id: i64) -> NewSubscriber {
        NewSubscriber::private(chat_id, Language::Zh)
    }

    fn note(text: &str, key: Option<&str>) -> NewAnnouncement {
        NewAnnouncement {
            text_html: text.into(),
            created_by: Origin::Admin(7),
            dedupe_key: key.map(str::to_string),
        }
    }

    #[test]
    fn pending_scan_uses_the_partial_index() -> TestResult {
        let store = SqliteStore::open_in_memory()?;
        let conn = store.lock();
        let plan: Vec<String> = conn
            .prepare(
                "EXPLAIN QUERY PLAN
                 SELECT id, announcement_id, chat_id, attempts FROM outbox INDEXED BY outbox_pending
                 WHERE state = 'pending' AND not_before_ms <= 0 ORDER BY id LIMIT 10",
            )?
            .query_map([], |r| r.get::<_, String>(3))?
            .collect::<Result<_, _>>()?;
        let plan = plan.join(" | ");
        assert!(plan.contains("outbox_pending"), "{plan}");
        assert!(
            !plan.contains("TEMP B-TREE"),
            "sorts instead of streaming: {plan}"
        );
        Ok(())
    }

    #[test]
    fn progress_and_blocking_use_indexes() -> TestResult {
        let store = SqliteStore::open_in_memory()?;
        let conn = store.lock();
        let plan_of = |sql: &str| -> rusqlite::Result<String> {
            let rows: Vec<String> = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?
                .query_map([], |r| r.get::<_, String>(3))?
                .collect::<Result<_, _>>()?;
            Ok(rows.join(" | "))
        };
        let p =
            plan_of("SELECT state, COUNT(*) FROM outbox WHERE announcement_id = 1 GROUP BY state")?;
        assert!(p.contains("outbox_by_announcement_state"), "{p}");
        let p =
            plan_of("UPDATE outbox SET state = 'blocked' WHERE chat_id = 5 AND state = 'pending'")?;
        assert!(p.contains("outbox_pending_by_chat"), "{p}");
        Ok(())
    }

    #[test]
    fn subscribe_updates_language_without_counting_a_change() -> TestResult {
        let store = SqliteStore::open_in_memory()?;
        assert!(store.subscribe(&sub(1))?);
        let first = store.subscriber(1)?.ok_or("missing")?;
        let en = NewSubscriber {
            language: Language::En,
            ..sub(1)
        };
        assert!(!store.subscribe(&en)?);
        let now = store.subscriber(1)?.ok_or("missing")?;
        assert_eq!(now.language, Language::En);
        assert_eq!(now.subscribed_at, first.subscribed_at);
        Ok(())
    }

    #[test]
    fn unsubscribe_cancels_pending_deliveries() -> TestResult {
        let store = SqliteStore::open_in_memory()?;
        store.subscribe_many(&[sub(1), sub(2)])?;
        let a = store.queue_now(&note("hi", None))?;
        assert!(store.unsubscribe(2)?);
        let p = store.progress(a.id)?;
        assert_eq!((p.total, p.pending, p.cancelled), (2, 1, 1));
        Ok(())
    }

    #[test]
    fn cancel_stops_pending_and_frees_the_dedupe_key() -> TestResult {
        let store = SqliteStore::open_in_memory()?;
        store.subscribe_many(&[sub(1), sub(2), sub(3)])?;
        let a = store.queue_now(&note("hi", Some("k")))?;
        let first = store.next_pending(1)?;
        store.mark_sent(first[0].id, 10)?;
        assert_eq!(store.cancel(a.id)?, 2);
        assert_eq!(store.cancel(a.id)?, 0);
        assert!(store.next_pending(10)?.is_empty());
        let p = store.progress(a.id)?;
        assert_eq!((p.sent, p.cancelled, p.pending), (1, 2, 0));
        let again = store.create_announcement(&note("hi again", Some("k")))?;
        assert!(!again.duplicate);
        assert!(matches!(
            store.confirm(a.id),
            Err(StoreError::InvalidState {
                state: AnnouncementState::Cancelled,
                ..
            })
        ));
        Ok(())
    }

    #[test]
    fn confirm_twice_is_harmless() -> TestResult {
        let store = SqliteStore::open_in_memory()?;
        store.subscribe_many(&[sub(1), sub(2)])?;
        let a = store.create_announcement(&note("hi", None))?;
        assert_eq!(store.progress(a.id)?.total, 0);
        let c1 = store.confirm(a.id)?;
        let c2 = store.confirm(a.id)?;
        assert_eq!((c1.deliveries, c1.newly_confirmed), (2, true));
        assert_eq!((c2.deliveries, c2.newly_confirmed), (2, false));
        assert_eq!(store.progress(a.id)?.total, 2);
        Ok(())
    }

    #[test]
    fn retry_delays_the_delivery_and_counts_attempts() -> TestResult {
        let store = SqliteStore::open_in_memory()?;
        store.subscribe(&sub(1))?;
        store.queue_now(&note("hi", None))?;
        let d = store.next_pending(10)?[0];
        assert_eq!(
            store.mark_retry(d.id, "timeout", Duration::from_secs(60))?,
            1
        );
        assert!(
            store.next_pending(10)?.is_empty(),
            "waits for its retry time"
        );
        assert_eq!(store.mark_retry(d.id, "timeout", Duration::ZERO)?, 2);
        let again = store.next_pending(10)?;
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].attempts, 2);
        store.mark_failed(d.id, "gave up")?;
        let info = store.delivery(d.id)?.ok_or("missing")?;
        assert_eq!(info.state, DeliveryState::Failed);
        assert_eq!(info.attempts, 3);
        assert_eq!(info.last_error.as_deref(), Some("gave up"));
        Ok(())
    }

    #[test]
    fn migrate_chat_moves_subscription_and_pending_rows() -> TestResult {
        let store = SqliteStore::open_in_memory()?;
        store.subscribe(&NewSubscriber {
            chat_id: -100,
            kind: ChatKind::Group,
            language: Language::En,
        })?;
        let a = store.queue_now(&note("hi", None))?;
        store.migrate_chat(-100, -1_000_000_100)?;
        assert!(!store.is_subscribed(-100)?);
        let moved = store.subscriber(-1_000_000_100)?.ok_or("missing")?;
        assert_eq!(moved.kind, ChatKind::Supergroup);
        assert_eq!(moved.language, Language::En);
        let next = store.next_pending(10)?;
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].chat_id, -1_000_000_100);
        assert_eq!(next[0].announcement_id, a.id);
        Ok(())
    }

    #[test]
    fn unknown_ids_are_not_found() -> TestResult {
        let store = SqliteStore::open_in_memory()?;
        assert!(matches!(
            store.progress(AnnouncementId(9)),
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            store.mark_sent(DeliveryId(9), 1),
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            store.mark_blocked(DeliveryId(9), "x"),
            Err(StoreError::NotFound { .. })
        ));
        assert!(store.announcement(AnnouncementId(9))?.is_none());
        assert!(matches!(
            store.create_announcement(&note("  ", None)),
            Err(StoreError::Invalid { .. })
        ));
        Ok(())
    }

    #[test]
    fn origins_round_trip() -> TestResult {
        let store = SqliteStore::open_in_memory()?;
        for origin in [
            Origin::Cli,
            Origin::Admin(-42),
            Origin::Report("2099-test".into()),
        ] {
            let c = store.create_announcement(&NewAnnouncement {
                text_html: "x".into(),
                created_by: origin.clone(),
                dedupe_key: None,
            })?;
            let a = store.announcement(c.id)?.ok_or("missing")?;
            assert_eq!(a.created_by, origin);
        }
        Ok(())
    }
}
