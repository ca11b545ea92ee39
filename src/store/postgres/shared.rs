//! What the instances on one PostgreSQL database share besides the data:
//! the send budget ([`SharedBudget`]) and the poller lock.

use super::pool::{self, Pool};
use super::{PgStore, micros, millis};
use crate::store::election::{PollerElection, PollerLock};
use crate::store::{SharedBudget, StoreResult};
use postgres::Client;
use std::time::Duration;

impl SharedBudget for PgStore {
    fn book_slot(
        &self,
        chat: Option<i64>,
        interval: Duration,
        per_chat: Duration,
    ) -> StoreResult<Duration> {
        self.with(|c| {
            let wait_us: i64 = c
                .query_one(
                    "SELECT reportbot_book_slot($1, $2, $3)",
                    &[&chat, &micros(interval), &micros(per_chat)],
                )?
                .try_get(0)?;
            Ok(Duration::from_micros(u64::try_from(wait_us).unwrap_or(0)))
        })
    }

    fn pause_all(&self, wait: Duration) -> StoreResult<()> {
        self.with(|c| {
            c.execute(
                "UPDATE send_budget
                 SET paused_until = GREATEST(paused_until,
                                             clock_timestamp() + $1 * interval '1 millisecond')
                 WHERE id = 1",
                &[&(millis(wait) as f64)],
            )?;
            Ok(())
        })
    }
}

/// The advisory lock key of an election: a stable hash (FNV-1a) of its name.
fn lock_key(name: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("reportbot poller {name}").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

/// The poller lock: a session-level advisory lock on a connection of its own.
/// It is held as long as that session lives; closing the connection (or the
/// process dying) releases it.
struct AdvisoryLock {
    client: Client,
    key: i64,
}

impl PollerLock for AdvisoryLock {
    fn try_acquire(&mut self) -> StoreResult<bool> {
        Ok(self
            .client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&self.key])?
            .try_get(0)?)
    }

    fn still_held(&mut self) -> StoreResult<bool> {
        // The lock lives as long as the session: a live session holds it.
        self.client.is_valid(Duration::from_secs(2))?;
        Ok(true)
    }
}

pub fn election(pool: &Pool, name: &str) -> PollerElection {
    let key = lock_key(name);
    let config = pool.config().clone();
    let db = pool.name().to_string();
    PollerElection::start(
        name,
        Box::new(move || {
            let client = pool::connect(&config, &db)?;
            Ok(Box::new(AdvisoryLock { client, key }) as Box<dyn PollerLock>)
        }),
        PollerElection::CHECK_EVERY,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_stable_and_differ_by_name() {
        assert_eq!(lock_key("bot 42"), lock_key("bot 42"));
        assert_ne!(lock_key("bot 42"), lock_key("bot 43"));
    }
}
