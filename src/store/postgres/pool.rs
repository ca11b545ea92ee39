//! A small pool of synchronous PostgreSQL connections, each with a cache of
//! prepared statements.
//!
//! The store is called from blocking threads (`spawn_blocking`) and from
//! the command line, so it uses the synchronous `postgres` client. A few
//! connections are enough for one bot process: every call is one short
//! statement or transaction. A connection that failed is dropped; one that
//! sat idle for a while is checked before use (a server restart leaves idle
//! connections dead without telling them).

use crate::store::{StoreError, StoreResult};
use postgres::types::ToSql;
use postgres::{Client, NoTls, Row, Statement};
use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Connections per process.
pub const MAX_CONNECTIONS: usize = 8;
/// How long a call waits for a free connection.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle longer than this: check the connection before handing it out.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(2);
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// One connection and its prepared statements.
pub struct Conn {
    client: Client,
    statements: HashMap<&'static str, Statement>,
    idle_since: Instant,
}

impl Conn {
    fn statement(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.statements.insert(sql, s.clone());
        Ok(s)
    }

    pub fn query(&mut self, sql: &'static str, params: Params<'_>) -> StoreResult<Vec<Row>> {
        let s = self.statement(sql)?;
        Ok(self.client.query(&s, params)?)
    }

    pub fn query_one(&mut self, sql: &'static str, params: Params<'_>) -> StoreResult<Row> {
        let s = self.statement(sql)?;
        Ok(self.client.query_one(&s, params)?)
    }

    pub fn query_opt(&mut self, sql: &'static str, params: Params<'_>) -> StoreResult<Option<Row>> {
        let s = self.statement(sql)?;
        Ok(self.client.query_opt(&s, params)?)
    }

    pub fn execute(&mut self, sql: &'static str, params: Params<'_>) -> StoreResult<u64> {
        let s = self.statement(sql)?;
        Ok(self.client.execute(&s, params)?)
    }

    /// Several statements as one transaction: committed if `f` succeeds,
    /// rolled back otherwise.
    pub fn transaction<T>(
        &mut self,
        f: impl FnOnce(&mut Conn) -> StoreResult<T>,
    ) -> StoreResult<T> {
        self.client.batch_execute("BEGIN")?;
        match f(self) {
            Ok(v) => {
                self.client.batch_execute("COMMIT")?;
                Ok(v)
            }
            Err(e) => {
                // A broken connection rolls back by itself (and is dropped).
                let _ = self.client.batch_execute("ROLLBACK");
                Err(e)
            }
        }
    }

    /// The connection for anything the cache does not cover.
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        match e.as_db_error() {
            // The server's own words (the bare error only says "db error").
            Some(db) if !is_shutdown(db.code()) => StoreError::Database(db.to_string().into()),
            // The connection, not the statement: the server is unreachable
            // or restarting. Worth trying again.
            Some(db) => StoreError::Unavailable(db.to_string()),
            None => StoreError::Unavailable(e.to_string()),
        }
    }
}

/// The server is going away (restart, shutdown, the session terminated).
fn is_shutdown(code: &postgres::error::SqlState) -> bool {
    use postgres::error::SqlState;
    [
        SqlState::ADMIN_SHUTDOWN,
        SqlState::CRASH_SHUTDOWN,
        SqlState::CANNOT_CONNECT_NOW,
        SqlState::CONNECTION_FAILURE,
        SqlState::CONNECTION_EXCEPTION,
    ]
    .contains(code)
}

/// A new connection (outside a pool: the poller election's own).
pub fn connect(config: &postgres::Config, name: &str) -> StoreResult<Client> {
    config
        .connect(NoTls)
        .map_err(|e| StoreError::Unavailable(format!("cannot connect to PostgreSQL {name}: {e}")))
}

pub struct Pool {
    config: postgres::Config,
    /// `user@host:port/db`, never the password.
    name: String,
    state: Mutex<PoolState>,
    freed: Condvar,
}

struct PoolState {
    idle: Vec<Conn>,
    /// Connections open, idle or checked out.
    open: usize,
}

impl Pool {
    pub fn new(config: postgres::Config, name: String) -> Pool {
        Pool {
            config,
            name,
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn config(&self) -> &postgres::Config {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn connect(&self) -> StoreResult<Client> {
        connect(&self.config, &self.name)
    }

    /// Run `f` on a connection of the pool.
    pub fn with<T>(&self, f: impl FnOnce(&mut Conn) -> StoreResult<T>) -> StoreResult<T> {
        let mut conn = self.checkout()?;
        let result = f(&mut conn);
        // A connection that failed may be in any state: drop it. (A
        // statement refused by the server leaves a good connection.)
        let broken = conn.client.is_closed()
            || matches!(&result, Err(StoreError::Unavailable(_)))
            || matches!(&result, Err(StoreError::Database(_)) if conn.client.is_valid(CHECK_TIMEOUT).is_err());
        self.checkin(conn, broken);
        result
    }

    fn checkout(&self) -> StoreResult<Conn> {
        let deadline = Instant::now() + CHECKOUT_TIMEOUT;
        let mut st = self.lock();
        loop {
            while let Some(mut conn) = st.idle.pop() {
                if conn.idle_since.elapsed() < CHECK_AFTER_IDLE {
                    return Ok(conn);
                }
                drop(st);
                let alive = !conn.client.is_closed() && conn.client.is_valid(CHECK_TIMEOUT).is_ok();
                st = self.lock();
                if alive {
                    return Ok(conn);
                }
                st.open -= 1;
            }
            if st.open < MAX_CONNECTIONS {
                st.open += 1;
                drop(st);
                return match self.connect() {
                    Ok(client) => Ok(Conn {
                        client,
                        statements: HashMap::new(),
                        idle_since: Instant::now(),
                    }),
                    Err(e) => {
                        self.lock().open -= 1;
                        self.freed.notify_one();
                        Err(e)
                    }
                };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(StoreError::Unavailable(format!(
                    "all {MAX_CONNECTIONS} connections to {} are busy",
                    self.name
                )));
            }
            st = self
                .freed
                .wait_timeout(st, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn checkin(&self, mut conn: Conn, broken: bool) {
        let mut st = self.lock();
        if broken {
            st.open -= 1;
        } else {
            conn.idle_since = Instant::now();
            st.idle.push(conn);
        }
        drop(st);
        self.freed.notify_one();
    }
}

/// Each connection of the synchronous client owns a small tokio runtime,
/// and tokio refuses to drop a runtime on a thread that drives async tasks
/// (where the bot's last handle on the store may well be dropped): the
/// connections are closed on a thread of their own.
impl Drop for Pool {
    fn drop(&mut self) {
        let idle = std::mem::take(&mut self.lock().idle);
        if idle.is_empty() {
            return;
        }
        let closing = std::thread::Builder::new()
            .name("pg-close".into())
            .spawn(move || drop(idle));
        if let Ok(handle) = closing {
            let _ = handle.join();
        }
    }
}
