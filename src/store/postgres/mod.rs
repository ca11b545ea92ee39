//! [`Store`] on PostgreSQL, for several bot instances on one database.
//!
//! - Same trait and same behaviour as the SQLite store (one test suite runs
//!   against both: `tests/store.rs`).
//! - Outbox rows are leased with `FOR UPDATE SKIP LOCKED`: instances never
//!   wait for each other's rows, and a dead instance's rows come free when
//!   their lease ends ([`Store::lease_pending`], [`Store::begin_send`]).
//! - One send budget for every instance (`shared.rs`): a "next slot" row
//!   moved on by one interval per send (GCRA style), each chat's last slot,
//!   and the pause after a 429, all by the database server's clock.
//! - One poller among the instances: an advisory lock held on a connection
//!   of its own ([`crate::store::PollerElection`]).
//! - The synchronous `postgres` client with a small pool (`pool.rs`); times
//!   stored are the server's (`now()`), never a host's.

mod migrations;
mod pool;
mod shared;

pub use migrations::LATEST_VERSION;

use super::{
    Announcement, AnnouncementId, AnnouncementState, BeginSend, Confirmed, Created, Delivery,
    DeliveryId, DeliveryInfo, DeliveryState, FileKey, NewAnnouncement, NewSubscriber, Origin,
    Progress, ProgressMessage, SharedBudget, Store, StoreError, StoreResult, Subscriber,
    SubscriberCounts, SubscriberStatus, UpdateClaim,
};
use pool::{Conn, Pool};
use postgres::Row;
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

/// Seconds since the epoch by the server's clock (the transaction's start).
/// The database's clock in Unix milliseconds (one clock for every instance).
macro_rules! now_ms {
    () => {
        "floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
    };
}

macro_rules! now_s {
    () => {
        "floor(extract(epoch FROM now()))::bigint"
    };
}

/// Rows per statement when subscribing many chats at once.
const SUBSCRIBE_CHUNK: usize = 10_000;

/// The PostgreSQL store. Cheap to share: wrap it in an `Arc`.
pub struct PgStore {
    pool: Pool,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("database", &self.pool.name())
            .finish_non_exhaustive()
    }
}

/// `user@host:port/db` of a connection string: what logs and errors show
/// (never a password).
pub fn display_name(config: &postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            postgres::config::Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}@{host}:{port}/{}",
        config.get_user().unwrap_or(""),
        config.get_dbname().unwrap_or("")
    )
}

impl PgStore {
    /// Connect (`postgres://USER@HOST:PORT/DB`) and bring the schema up to
    /// date. Fails if the server cannot be reached or the schema is newer
    /// than this program.
    pub fn open(url: &str) -> StoreResult<PgStore> {
        let mut config: postgres::Config = url.parse().map_err(|e| StoreError::Open {
            path: "REPORTBOT_DB".into(),
            source: Box::new(e),
        })?;
        config
            .connect_timeout(Duration::from_secs(5))
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .application_name("reportbot");
        let name = display_name(&config);
        let store = PgStore {
            pool: Pool::new(config, name.clone()),
        };
        store
            .pool
            .with(|c| migrations::migrate(c).map(drop))
            .map_err(|e| match e {
                StoreError::Unavailable(message) => StoreError::Open {
                    path: name,
                    source: message.into(),
                },
                other => other,
            })?;
        Ok(store)
    }

    /// The schema version of the database.
    pub fn schema_version(&self) -> StoreResult<i64> {
        self.pool
            .with(|c| migrations::schema_version(c).map(i64::from))
    }

    /// `user@host:port/db`.
    pub fn name(&self) -> &str {
        self.pool.name()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Conn) -> StoreResult<T>) -> StoreResult<T> {
        self.pool.with(f)
    }

    fn tx<T>(&self, f: impl FnOnce(&mut Conn) -> StoreResult<T>) -> StoreResult<T> {
        self.pool.with(|c| c.transaction(f))
    }
}

// ----- values ------------------------------------------------------------------

fn parse<T: FromStr<Err = StoreError>>(row: &Row, column: usize) -> StoreResult<T> {
    row.try_get::<_, &str>(column)?.parse()
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn attempts(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn not_found(what: &'static str, id: i64) -> StoreError {
    StoreError::NotFound { what, id }
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

macro_rules! select_announcement {
    () => {
        "SELECT id, text_html, origin, origin_ref, dedupe_key, state, created_at, queued_at, \
         finished_at, admin_chat, progress_message_id FROM announcements"
    };
}

fn announcement_from(r: &Row) -> StoreResult<Announcement> {
    let admin_chat: Option<i64> = r.try_get(9)?;
    let message_id: Option<i32> = r.try_get(10)?;
    Ok(Announcement {
        id: AnnouncementId(r.try_get(0)?),
        text_html: r.try_get(1)?,
        created_by: origin_from(r.try_get(2)?, r.try_get(3)?)?,
        dedupe_key: r.try_get(4)?,
        state: parse(r, 5)?,
        created_at: r.try_get(6)?,
        queued_at: r.try_get(7)?,
        finished_at: r.try_get(8)?,
        progress_message: admin_chat
            .zip(message_id)
            .map(|(chat_id, message_id)| ProgressMessage {
                chat_id,
                message_id,
            }),
    })
}

fn delivery_from(r: &Row) -> StoreResult<Delivery> {
    Ok(Delivery {
        id: DeliveryId(r.try_get(0)?),
        announcement_id: AnnouncementId(r.try_get(1)?),
        chat_id: r.try_get(2)?,
        attempts: attempts(r.try_get(3)?),
    })
}

// ----- steps inside a transaction ------------------------------------------------

fn announcement_state(c: &mut Conn, id: AnnouncementId) -> StoreResult<AnnouncementState> {
    // Locked: confirming or cancelling one announcement twice at once (two
    // instances, a double click) applies once.
    let row = c
        .query_opt(
            "SELECT state FROM announcements WHERE id = $1 FOR UPDATE",
            &[&id.0],
        )?
        .ok_or_else(|| not_found("announcement", id.0))?;
    parse(&row, 0)
}

fn create_in(c: &mut Conn, new: &NewAnnouncement) -> StoreResult<Created> {
    if new.text_html.trim().is_empty() {
        return Err(StoreError::Invalid {
            what: "announcement",
            message: "the text is empty".into(),
        });
    }
    let (origin, reference) = origin_columns(&new.created_by);
    let inserted = c.query_opt(
        concat!(
            "INSERT INTO announcements (text_html, origin, origin_ref, dedupe_key, state, created_at)
             VALUES ($1, $2, $3, $4, 'draft', ",
            now_s!(),
            ")
             ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL AND state <> 'cancelled'
             DO NOTHING RETURNING id"
        ),
        &[&new.text_html, &origin, &reference, &new.dedupe_key],
    )?;
    if let Some(row) = inserted {
        return Ok(Created {
            id: AnnouncementId(row.try_get(0)?),
            duplicate: false,
            state: AnnouncementState::Draft,
        });
    }
    // The key is taken by a live announcement: that one is the answer.
    let row = c
        .query_opt(
            "SELECT id, state FROM announcements WHERE dedupe_key = $1 AND state <> 'cancelled'",
            &[&new.dedupe_key],
        )?
        .ok_or_else(|| StoreError::Corrupt("dedupe key conflict without a row".into()))?;
    Ok(Created {
        id: AnnouncementId(row.try_get(0)?),
        duplicate: true,
        state: parse(&row, 1)?,
    })
}

fn deliveries_of(c: &mut Conn, id: AnnouncementId) -> StoreResult<u64> {
    let n: i64 = c
        .query_one(
            "SELECT COUNT(*) FROM outbox WHERE announcement_id = $1",
            &[&id.0],
        )?
        .try_get(0)?;
    Ok(count(n))
}

fn confirm_in(c: &mut Conn, id: AnnouncementId) -> StoreResult<Confirmed> {
    match announcement_state(c, id)? {
        AnnouncementState::Draft => {}
        AnnouncementState::Queued | AnnouncementState::Done => {
            return Ok(Confirmed {
                deliveries: deliveries_of(c, id)?,
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
    c.execute(
        concat!(
            "UPDATE announcements SET state = 'queued', queued_at = ",
            now_s!(),
            " WHERE id = $1"
        ),
        &[&id.0],
    )?;
    // The snapshot: one row per subscriber active now, in one statement.
    let n = c.execute(
        "INSERT INTO outbox (announcement_id, chat_id)
         SELECT $1, chat_id FROM subscribers WHERE status = 'active' ORDER BY chat_id",
        &[&id.0],
    )?;
    Ok(Confirmed {
        deliveries: n,
        newly_confirmed: true,
    })
}

const BLOCK_CHAT: &str = concat!(
    "WITH s AS (UPDATE subscribers SET status = 'blocked', reason = $2, updated_at = ",
    now_s!(),
    " WHERE chat_id = $1 AND status <> 'blocked' RETURNING 1),
          o AS (UPDATE outbox SET state = 'blocked', last_error = $2
                WHERE chat_id = $1 AND state = 'pending' RETURNING 1)
     SELECT COUNT(*) FROM s"
);

const UPSERT_SUBSCRIBERS: &str = concat!(
    "INSERT INTO subscribers (chat_id, kind, language, status, subscribed_at, updated_at)
     SELECT c, k, l, 'active', ",
    now_s!(),
    ", ",
    now_s!(),
    " FROM unnest($1::bigint[], $2::text[], $3::text[]) AS t (c, k, l)
     ON CONFLICT (chat_id) DO UPDATE SET
         kind = excluded.kind,
         language = excluded.language,
         subscribed_at = CASE WHEN subscribers.status = 'active' THEN subscribers.subscribed_at
                              ELSE excluded.subscribed_at END,
         status = 'active',
         reason = NULL,
         updated_at = excluded.updated_at"
);

impl Store for PgStore {
    fn subscribe(&self, chat: &NewSubscriber) -> StoreResult<bool> {
        self.with(|c| {
            let row = c.query_one(
                concat!(
                    "WITH before AS (SELECT status FROM subscribers WHERE chat_id = $1)
                     INSERT INTO subscribers (chat_id, kind, language, status, subscribed_at, updated_at)
                     VALUES ($1, $2, $3, 'active', ",
                    now_s!(),
                    ", ",
                    now_s!(),
                    ")
                     ON CONFLICT (chat_id) DO UPDATE SET
                         kind = excluded.kind,
                         language = excluded.language,
                         subscribed_at = CASE WHEN subscribers.status = 'active'
                                              THEN subscribers.subscribed_at
                                              ELSE excluded.subscribed_at END,
                         status = 'active',
                         reason = NULL,
                         updated_at = excluded.updated_at
                     RETURNING (SELECT status FROM before) IS DISTINCT FROM 'active'"
                ),
                &[&chat.chat_id, &chat.kind.as_str(), &chat.language.as_str()],
            )?;
            Ok(row.try_get(0)?)
        })
    }

    fn subscribe_many(&self, chats: &[NewSubscriber]) -> StoreResult<u64> {
        // One row per chat (the last one given wins), as one statement per
        // chunk cannot touch a row twice.
        let mut by_chat: HashMap<i64, &NewSubscriber> = HashMap::with_capacity(chats.len());
        for chat in chats {
            by_chat.insert(chat.chat_id, chat);
        }
        let mut unique: Vec<&NewSubscriber> = by_chat.into_values().collect();
        unique.sort_unstable_by_key(|c| c.chat_id);
        self.tx(|c| {
            let active = |c: &mut Conn| -> StoreResult<i64> {
                Ok(c.query_one(
                    "SELECT COUNT(*) FROM subscribers WHERE status = 'active'",
                    &[],
                )?
                .try_get(0)?)
            };
            let before = active(c)?;
            for chunk in unique.chunks(SUBSCRIBE_CHUNK) {
                let ids: Vec<i64> = chunk.iter().map(|s| s.chat_id).collect();
                let kinds: Vec<&str> = chunk.iter().map(|s| s.kind.as_str()).collect();
                let langs: Vec<&str> = chunk.iter().map(|s| s.language.as_str()).collect();
                c.execute(UPSERT_SUBSCRIBERS, &[&ids, &kinds, &langs])?;
            }
            Ok(count(active(c)? - before))
        })
    }

    fn unsubscribe(&self, chat_id: i64) -> StoreResult<bool> {
        self.with(|c| {
            let n: i64 = c
                .query_one(
                    concat!(
                        "WITH s AS (UPDATE subscribers SET status = 'unsubscribed', reason = NULL,
                                        updated_at = ",
                        now_s!(),
                        " WHERE chat_id = $1 AND status = 'active' RETURNING 1),
                              o AS (UPDATE outbox SET state = 'cancelled', last_error = 'unsubscribed'
                                    WHERE chat_id = $1 AND state = 'pending' RETURNING 1)
                         SELECT COUNT(*) FROM s"
                    ),
                    &[&chat_id],
                )?
                .try_get(0)?;
            Ok(n > 0)
        })
    }

    fn is_subscribed(&self, chat_id: i64) -> StoreResult<bool> {
        self.with(|c| {
            Ok(c.query_opt(
                "SELECT 1 FROM subscribers WHERE chat_id = $1 AND status = 'active'",
                &[&chat_id],
            )?
            .is_some())
        })
    }

    fn subscriber(&self, chat_id: i64) -> StoreResult<Option<Subscriber>> {
        self.with(|c| {
            let Some(r) = c.query_opt(
                "SELECT chat_id, kind, language, status, subscribed_at, updated_at, reason
                 FROM subscribers WHERE chat_id = $1",
                &[&chat_id],
            )?
            else {
                return Ok(None);
            };
            Ok(Some(Subscriber {
                chat_id: r.try_get(0)?,
                kind: parse(&r, 1)?,
                language: parse(&r, 2)?,
                status: parse(&r, 3)?,
                subscribed_at: r.try_get(4)?,
                updated_at: r.try_get(5)?,
                reason: r.try_get(6)?,
            }))
        })
    }

    fn counts(&self) -> StoreResult<SubscriberCounts> {
        self.with(|c| {
            let mut counts = SubscriberCounts::default();
            for r in c.query(
                "SELECT status, COUNT(*) FROM subscribers GROUP BY status",
                &[],
            )? {
                let n = count(r.try_get(1)?);
                match parse::<SubscriberStatus>(&r, 0)? {
                    SubscriberStatus::Active => counts.active = n,
                    SubscriberStatus::Unsubscribed => counts.unsubscribed = n,
                    SubscriberStatus::Blocked => counts.blocked = n,
                }
            }
            Ok(counts)
        })
    }

    fn mark_chat_blocked(&self, chat_id: i64, reason: &str) -> StoreResult<bool> {
        self.with(|c| {
            let n: i64 = c.query_one(BLOCK_CHAT, &[&chat_id, &reason])?.try_get(0)?;
            Ok(n > 0)
        })
    }

    fn migrate_chat(&self, from: i64, to: i64) -> StoreResult<()> {
        if from == to {
            return Ok(());
        }
        self.tx(|c| {
            let old: Option<SubscriberStatus> = c
                .query_opt(
                    "SELECT status FROM subscribers WHERE chat_id = $1 FOR UPDATE",
                    &[&from],
                )?
                .map(|r| parse(&r, 0))
                .transpose()?;
            let new_exists = c
                .query_opt(
                    "SELECT 1 FROM subscribers WHERE chat_id = $1 FOR UPDATE",
                    &[&to],
                )?
                .is_some();
            if let Some(status) = old {
                if new_exists {
                    // Both known: the new id wins; it is active if either was.
                    if status == SubscriberStatus::Active {
                        c.execute(
                            concat!(
                                "UPDATE subscribers SET status = 'active', reason = NULL,
                                     kind = 'supergroup', updated_at = ",
                                now_s!(),
                                " WHERE chat_id = $1"
                            ),
                            &[&to],
                        )?;
                    }
                    c.execute("DELETE FROM subscribers WHERE chat_id = $1", &[&from])?;
                } else {
                    c.execute(
                        concat!(
                            "UPDATE subscribers SET chat_id = $2, kind = 'supergroup', updated_at = ",
                            now_s!(),
                            " WHERE chat_id = $1"
                        ),
                        &[&from, &to],
                    )?;
                }
            }
            // Pending rows follow, unless the new id already has a row for
            // the same announcement (then the old one is not needed).
            c.execute(
                "UPDATE outbox SET state = 'cancelled', last_error = 'chat migrated to ' || $2::text
                 WHERE chat_id = $1 AND state = 'pending' AND announcement_id IN
                       (SELECT announcement_id FROM outbox WHERE chat_id = $2)",
                &[&from, &to],
            )?;
            c.execute(
                "UPDATE outbox SET chat_id = $2 WHERE chat_id = $1 AND state = 'pending'",
                &[&from, &to],
            )?;
            Ok(())
        })
    }

    fn create_announcement(&self, new: &NewAnnouncement) -> StoreResult<Created> {
        self.tx(|c| create_in(c, new))
    }

    fn confirm(&self, id: AnnouncementId) -> StoreResult<Confirmed> {
        self.tx(|c| confirm_in(c, id))
    }

    fn cancel(&self, id: AnnouncementId) -> StoreResult<u64> {
        self.tx(|c| match announcement_state(c, id)? {
            AnnouncementState::Cancelled => Ok(0),
            state @ AnnouncementState::Done => Err(StoreError::InvalidState {
                id,
                state,
                action: "cancel",
            }),
            AnnouncementState::Draft | AnnouncementState::Queued => {
                c.execute(
                    concat!(
                        "UPDATE announcements SET state = 'cancelled', finished_at = ",
                        now_s!(),
                        " WHERE id = $1"
                    ),
                    &[&id.0],
                )?;
                c.execute(
                    "UPDATE outbox SET state = 'cancelled', last_error = 'announcement cancelled'
                     WHERE announcement_id = $1 AND state = 'pending'",
                    &[&id.0],
                )
            }
        })
    }

    fn queue_now(&self, new: &NewAnnouncement) -> StoreResult<Created> {
        self.tx(|c| {
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
        const SQL: &str = concat!(select_announcement!(), " WHERE id = $1");
        self.with(|c| {
            c.query_opt(SQL, &[&id.0])?
                .as_ref()
                .map(announcement_from)
                .transpose()
        })
    }

    fn pending_announcements(&self) -> StoreResult<Vec<Announcement>> {
        const SQL: &str = concat!(
            select_announcement!(),
            " WHERE state = 'queued' ORDER BY id"
        );
        self.with(|c| c.query(SQL, &[])?.iter().map(announcement_from).collect())
    }

    fn progress(&self, id: AnnouncementId) -> StoreResult<Progress> {
        self.with(|c| {
            if c.query_opt("SELECT 1 FROM announcements WHERE id = $1", &[&id.0])?
                .is_none()
            {
                return Err(not_found("announcement", id.0));
            }
            let mut p = Progress::default();
            for r in c.query(
                "SELECT state, COUNT(*) FROM outbox WHERE announcement_id = $1 GROUP BY state",
                &[&id.0],
            )? {
                let n = count(r.try_get(1)?);
                p.total += n;
                match parse::<DeliveryState>(&r, 0)? {
                    DeliveryState::Pending => p.pending = n,
                    DeliveryState::Sent => p.sent = n,
                    DeliveryState::Failed => p.failed = n,
                    DeliveryState::Blocked => p.blocked = n,
                    DeliveryState::Cancelled => p.cancelled = n,
                }
            }
            Ok(p)
        })
    }

    fn set_progress_message(
        &self,
        id: AnnouncementId,
        message: ProgressMessage,
    ) -> StoreResult<()> {
        self.with(|c| {
            let n = c.execute(
                "UPDATE announcements SET admin_chat = $2, progress_message_id = $3 WHERE id = $1",
                &[&id.0, &message.chat_id, &message.message_id],
            )?;
            if n == 0 {
                return Err(not_found("announcement", id.0));
            }
            Ok(())
        })
    }

    fn complete_if_done(&self, id: AnnouncementId) -> StoreResult<bool> {
        self.with(|c| {
            let n = c.execute(
                concat!(
                    "UPDATE announcements SET state = 'done', finished_at = ",
                    now_s!(),
                    " WHERE id = $1 AND state = 'queued' AND NOT EXISTS
                       (SELECT 1 FROM outbox WHERE announcement_id = $1 AND state = 'pending')"
                ),
                &[&id.0],
            )?;
            Ok(n > 0)
        })
    }

    fn next_pending(&self, limit: usize) -> StoreResult<Vec<Delivery>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(|c| {
            c.query(
                "SELECT id, announcement_id, chat_id, attempts FROM outbox
                 WHERE state = 'pending' AND not_before_ms <= reportbot_now_ms()
                 ORDER BY id LIMIT $1",
                &[&limit],
            )?
            .iter()
            .map(delivery_from)
            .collect()
        })
    }

    fn lease_pending(
        &self,
        worker: &str,
        limit: usize,
        lease: Duration,
    ) -> StoreResult<Vec<Delivery>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(|c| {
            let mut out: Vec<Delivery> = c
                .query(
                    "WITH now AS (SELECT reportbot_now_ms() AS ms),
                          free AS (SELECT o.id FROM outbox o, now
                                   WHERE o.state = 'pending' AND o.not_before_ms <= now.ms
                                     AND (o.leased_by IS NULL OR o.leased_by = $1
                                          OR o.lease_until_ms <= now.ms)
                                   ORDER BY o.id LIMIT $3
                                   FOR UPDATE OF o SKIP LOCKED)
                     UPDATE outbox SET leased_by = $1, lease_until_ms = now.ms + $2
                     FROM free, now WHERE outbox.id = free.id
                     RETURNING outbox.id, outbox.announcement_id, outbox.chat_id, outbox.attempts",
                    &[&worker, &millis(lease), &limit],
                )?
                .iter()
                .map(delivery_from)
                .collect::<StoreResult<_>>()?;
            out.sort_unstable_by_key(|d| d.id);
            Ok(out)
        })
    }

    fn begin_send(&self, id: DeliveryId, worker: &str, lease: Duration) -> StoreResult<BeginSend> {
        self.with(|c| {
            let row = c.query_one(
                "WITH now AS (SELECT reportbot_now_ms() AS ms),
                      claimed AS (UPDATE outbox SET leased_by = $2, lease_until_ms = now.ms + $3
                                  FROM now
                                  WHERE id = $1 AND state = 'pending'
                                    AND (leased_by IS NULL OR leased_by = $2
                                         OR lease_until_ms <= now.ms)
                                  RETURNING 1)
                 SELECT (SELECT COUNT(*) FROM claimed),
                        GREATEST(0, floor(extract(epoch FROM paused_until - clock_timestamp())
                                          * 1000))::bigint
                 FROM send_budget WHERE id = 1",
                &[&id.0, &worker, &millis(lease)],
            )?;
            let claimed: i64 = row.try_get(0)?;
            let paused_ms: i64 = row.try_get(1)?;
            Ok(if claimed == 0 {
                BeginSend::Skip
            } else if paused_ms > 0 {
                BeginSend::Paused(Duration::from_millis(u64::try_from(paused_ms).unwrap_or(0)))
            } else {
                BeginSend::Send
            })
        })
    }

    fn claim_update(
        &self,
        update_id: i64,
        owner: &str,
        lease: Duration,
    ) -> StoreResult<UpdateClaim> {
        let lease_ms = millis(lease);
        self.with(|c| {
            // One statement: two instances claiming at once cannot both win.
            let taken = c.query_opt(
                concat!(
                    "INSERT INTO handled_updates (update_id, owner, lease_until_ms) VALUES ($1, $2, ",
                    now_ms!(),
                    " + $3) ON CONFLICT (update_id) DO UPDATE SET owner = EXCLUDED.owner, ",
                    "lease_until_ms = EXCLUDED.lease_until_ms ",
                    "WHERE handled_updates.done_at_ms IS NULL AND handled_updates.lease_until_ms < ",
                    now_ms!(),
                    " RETURNING update_id"
                ),
                &[&update_id, &owner, &lease_ms],
            )?;
            if taken.is_some() {
                return Ok(UpdateClaim::New);
            }
            let done: Option<i64> = c
                .query_opt(
                    "SELECT done_at_ms FROM handled_updates WHERE update_id = $1",
                    &[&update_id],
                )?
                .map(|r| r.try_get(0))
                .transpose()?
                .flatten();
            Ok(if done.is_some() {
                UpdateClaim::Done
            } else {
                UpdateClaim::Busy
            })
        })
    }

    fn finish_update(&self, update_id: i64) -> StoreResult<()> {
        self.with(|c| {
            c.execute(
                concat!(
                    "UPDATE handled_updates SET done_at_ms = ",
                    now_ms!(),
                    " WHERE update_id = $1"
                ),
                &[&update_id],
            )?;
            Ok(())
        })
    }

    fn release_update(&self, update_id: i64, owner: &str) -> StoreResult<()> {
        self.with(|c| {
            c.execute(
                "DELETE FROM handled_updates
                 WHERE update_id = $1 AND owner = $2 AND done_at_ms IS NULL",
                &[&update_id, &owner],
            )?;
            Ok(())
        })
    }

    fn load_context(&self, key: &str) -> StoreResult<Option<String>> {
        self.with(|c| {
            c.query_opt(
                concat!(
                    "SELECT context FROM conversations WHERE key = $1 AND expires_at_ms > ",
                    now_ms!()
                ),
                &[&key],
            )?
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(Into::into)
        })
    }

    fn save_context(&self, key: &str, context: Option<&str>, ttl: Duration) -> StoreResult<()> {
        let ttl_ms = millis(ttl);
        self.with(|c| {
            match context {
                Some(text) => c.execute(
                    concat!(
                        "INSERT INTO conversations (key, context, expires_at_ms) VALUES ($1, $2, ",
                        now_ms!(),
                        " + $3) ON CONFLICT (key) DO UPDATE SET context = EXCLUDED.context, ",
                        "expires_at_ms = EXCLUDED.expires_at_ms"
                    ),
                    &[&key, &text, &ttl_ms],
                )?,
                None => c.execute("DELETE FROM conversations WHERE key = $1", &[&key])?,
            };
            Ok(())
        })
    }

    fn sweep(&self, max_contexts: usize, keep_updates: Duration) -> StoreResult<u64> {
        let max = i64::try_from(max_contexts).unwrap_or(i64::MAX);
        let keep_ms = millis(keep_updates);
        self.tx(|c| {
            let mut n = c.execute(
                concat!(
                    "DELETE FROM conversations WHERE expires_at_ms <= ",
                    now_ms!()
                ),
                &[],
            )?;
            // Beyond the bound: the ones that expire first go first.
            n += c.execute(
                "DELETE FROM conversations WHERE key IN (
                     SELECT key FROM conversations ORDER BY expires_at_ms DESC OFFSET $1)",
                &[&max],
            )?;
            n += c.execute(
                concat!(
                    "DELETE FROM handled_updates WHERE done_at_ms < ",
                    now_ms!(),
                    " - $1"
                ),
                &[&keep_ms],
            )?;
            Ok(n)
        })
    }

    fn release_leases(&self, worker: &str) -> StoreResult<u64> {
        self.with(|c| {
            c.execute(
                "UPDATE outbox SET leased_by = NULL, lease_until_ms = 0
                 WHERE state = 'pending' AND leased_by = $1",
                &[&worker],
            )
        })
    }

    fn delivery(&self, id: DeliveryId) -> StoreResult<Option<DeliveryInfo>> {
        self.with(|c| {
            let Some(r) = c.query_opt(
                "SELECT id, announcement_id, chat_id, state, attempts, last_error, not_before_ms,
                        sent_at, message_id, leased_by
                 FROM outbox WHERE id = $1",
                &[&id.0],
            )?
            else {
                return Ok(None);
            };
            Ok(Some(DeliveryInfo {
                id: DeliveryId(r.try_get(0)?),
                announcement_id: AnnouncementId(r.try_get(1)?),
                chat_id: r.try_get(2)?,
                state: parse(&r, 3)?,
                attempts: attempts(r.try_get(4)?),
                last_error: r.try_get(5)?,
                not_before_ms: r.try_get(6)?,
                sent_at: r.try_get(7)?,
                message_id: r.try_get(8)?,
                leased_by: r.try_get(9)?,
            }))
        })
    }

    fn mark_sent(&self, id: DeliveryId, message_id: i32) -> StoreResult<()> {
        // Recorded whatever the row's state: Telegram did deliver it, even if
        // the announcement was cancelled while the request was in flight.
        self.with(|c| {
            let n = c.execute(
                concat!(
                    "UPDATE outbox SET state = 'sent', sent_at = ",
                    now_s!(),
                    ", message_id = $2, last_error = NULL WHERE id = $1"
                ),
                &[&id.0, &message_id],
            )?;
            if n == 0 {
                return Err(not_found("delivery", id.0));
            }
            Ok(())
        })
    }

    fn mark_retry(&self, id: DeliveryId, error: &str, retry_in: Duration) -> StoreResult<u32> {
        self.with(|c| {
            let updated = c.query_opt(
                "UPDATE outbox SET attempts = attempts + 1, last_error = $2,
                     not_before_ms = reportbot_now_ms() + $3, leased_by = NULL, lease_until_ms = 0
                 WHERE id = $1 AND state = 'pending' RETURNING attempts",
                &[&id.0, &error, &millis(retry_in)],
            )?;
            let row = match updated {
                Some(row) => row,
                // Settled meanwhile (cancelled, blocked): leave it as it is.
                None => c
                    .query_opt("SELECT attempts FROM outbox WHERE id = $1", &[&id.0])?
                    .ok_or_else(|| not_found("delivery", id.0))?,
            };
            Ok(attempts(row.try_get(0)?))
        })
    }

    fn mark_failed(&self, id: DeliveryId, error: &str) -> StoreResult<()> {
        self.with(|c| {
            let n = c.execute(
                "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = $2
                 WHERE id = $1 AND state = 'pending'",
                &[&id.0, &error],
            )?;
            if n == 0
                && c.query_opt("SELECT 1 FROM outbox WHERE id = $1", &[&id.0])?
                    .is_none()
            {
                return Err(not_found("delivery", id.0));
            }
            Ok(())
        })
    }

    fn mark_blocked(&self, id: DeliveryId, reason: &str) -> StoreResult<()> {
        self.tx(|c| {
            let chat_id: i64 = c
                .query_opt(
                    "UPDATE outbox SET state = CASE WHEN state = 'pending' THEN 'blocked' ELSE state END,
                         attempts = attempts + CASE WHEN state = 'pending' THEN 1 ELSE 0 END,
                         last_error = CASE WHEN state = 'pending' THEN $2 ELSE last_error END
                     WHERE id = $1 RETURNING chat_id",
                    &[&id.0, &reason],
                )?
                .ok_or_else(|| not_found("delivery", id.0))?
                .try_get(0)?;
            c.query_one(BLOCK_CHAT, &[&chat_id, &reason])?;
            Ok(())
        })
    }

    fn uploaded_file(&self, key: &FileKey) -> StoreResult<Option<String>> {
        self.with(|c| {
            Ok(c.query_opt(
                "SELECT file_id FROM uploaded_files WHERE bot_id = $1 AND file_key = $2",
                &[&key.bot_id, &key.key],
            )?
            .map(|r| r.try_get::<_, String>(0))
            .transpose()?)
        })
    }

    fn remember_upload(&self, key: &FileKey, file_id: &str) -> StoreResult<()> {
        self.with(|c| {
            c.execute(
                concat!(
                    "INSERT INTO uploaded_files (bot_id, file_key, file_id, uploaded_at)
                     VALUES ($1, $2, $3, ",
                    now_s!(),
                    ")
                     ON CONFLICT (bot_id, file_key)
                     DO UPDATE SET file_id = EXCLUDED.file_id, uploaded_at = EXCLUDED.uploaded_at"
                ),
                &[&key.bot_id, &key.key, &file_id],
            )?;
            Ok(())
        })
    }

    fn forget_upload(&self, key: &FileKey, file_id: &str) -> StoreResult<bool> {
        self.with(|c| {
            Ok(c.execute(
                "DELETE FROM uploaded_files WHERE bot_id = $1 AND file_key = $2 AND file_id = $3",
                &[&key.bot_id, &key.key, &file_id],
            )? > 0)
        })
    }

    fn shared_budget(&self) -> Option<&dyn SharedBudget> {
        Some(self)
    }

    fn poller_election(&self, name: &str) -> StoreResult<Option<super::PollerElection>> {
        Ok(Some(shared::election(&self.pool, name)))
    }
}
