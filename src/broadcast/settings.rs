//! `[broadcast]` settings: the rate, the per-chat gap, retries, batches,
//! the lease of outbox rows and how many sends may be in flight.

use serde::Deserialize;
use std::time::Duration;

/// Upper bound of `rate_per_sec` for any Bot API server. Telegram's own
/// limit (30/s) is enforced in `Settings::validate` when the bot talks to
/// api.telegram.org; a self-hosted or test server may take more.
pub const MAX_RATE_PER_SEC: f64 = 10_000.0;
/// Telegram's documented broadcast limit.
pub const TELEGRAM_RATE_PER_SEC: f64 = 30.0;
/// The longest backoff after transient errors.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Upper bound of `max_in_flight`.
pub const MAX_IN_FLIGHT: usize = 256;

/// `[broadcast]` settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BroadcastSettings {
    /// Messages per second over all chats, evenly spaced (25 → one every 40 ms).
    pub rate_per_sec: f64,
    /// Minimum gap between two messages to the same chat.
    pub per_chat_interval_ms: u64,
    /// Tries per delivery on 5xx / network errors (429 waits do not count).
    pub max_attempts: u32,
    /// First backoff after a transient error; doubles per attempt, at most 30 s.
    pub backoff_base_ms: u64,
    /// How often to look for newly queued work (e.g. from `reportbot announce`).
    pub poll_interval_ms: u64,
    /// Deliveries read from the database at a time.
    pub batch: usize,
    /// At most one progress event per announcement this often (0: after every
    /// send). Editing the admin's message more often than every few seconds
    /// competes with Telegram's per-chat limit.
    pub progress_interval_ms: u64,
    /// How many sends may be awaiting Telegram's answer at once (1 to 256).
    /// With 1 (the default) a message is sent only after the previous answer
    /// was recorded, so a kill -9 sends at most the one message in flight
    /// twice; with K, at most K. More than 1 only helps where the round trip,
    /// not the rate, is the limit: a self-hosted Bot API server at hundreds
    /// of messages a second.
    pub max_in_flight: usize,
    /// How long an outbox row stays leased to the worker that took it. If
    /// that worker's process dies, other instances (PostgreSQL) send the
    /// row once this has passed. Each send renews its row's lease, so it
    /// must exceed the longest send (`telegram.send_timeout_secs`).
    pub lease_secs: u64,
}

impl Default for BroadcastSettings {
    fn default() -> Self {
        BroadcastSettings {
            rate_per_sec: 25.0,
            per_chat_interval_ms: 1000,
            max_attempts: 5,
            backoff_base_ms: 500,
            poll_interval_ms: 1000,
            batch: 500,
            progress_interval_ms: 3000,
            max_in_flight: 1,
            lease_secs: 10,
        }
    }
}

/// A setting out of range; `field` is its name under `[broadcast]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SettingsError {
    pub field: &'static str,
    pub message: String,
}

fn bad(field: &'static str, message: impl Into<String>) -> SettingsError {
    SettingsError {
        field,
        message: message.into(),
    }
}

impl BroadcastSettings {
    pub fn validate(&self) -> Result<(), SettingsError> {
        let r = self.rate_per_sec;
        if !(r.is_finite() && r > 0.0 && r <= MAX_RATE_PER_SEC) {
            return Err(bad(
                "rate_per_sec",
                format!("must be more than 0 and at most {MAX_RATE_PER_SEC} (got {r})"),
            ));
        }
        if self.per_chat_interval_ms > 60_000 {
            return Err(bad("per_chat_interval_ms", "at most 60000"));
        }
        if !(1..=100).contains(&self.max_attempts) {
            return Err(bad("max_attempts", "must be 1 to 100"));
        }
        if !(1..=60_000).contains(&self.backoff_base_ms) {
            return Err(bad("backoff_base_ms", "must be 1 to 60000"));
        }
        if !(10..=3_600_000).contains(&self.poll_interval_ms) {
            return Err(bad("poll_interval_ms", "must be 10 to 3600000"));
        }
        if !(1..=10_000).contains(&self.batch) {
            return Err(bad("batch", "must be 1 to 10000"));
        }
        if self.progress_interval_ms > 3_600_000 {
            return Err(bad("progress_interval_ms", "at most 3600000"));
        }
        if !(1..=MAX_IN_FLIGHT).contains(&self.max_in_flight) {
            return Err(bad(
                "max_in_flight",
                format!("must be 1 to {MAX_IN_FLIGHT}"),
            ));
        }
        if !(1..=3600).contains(&self.lease_secs) {
            return Err(bad("lease_secs", "must be 1 to 3600"));
        }
        Ok(())
    }

    /// How long a leased outbox row stays this worker's.
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_secs)
    }

    /// Rows leased at a time: at most `batch`, and about a quarter of a
    /// second of sends at the configured rate, so that every worker comes
    /// back for more often and a crashed instance's rows are taken over
    /// soon after their lease ends.
    pub fn lease_batch(&self) -> usize {
        let quarter_second = (self.rate_per_sec / 4.0).ceil();
        let n = if quarter_second.is_finite() && quarter_second >= 1.0 {
            quarter_second as usize
        } else {
            1
        };
        n.clamp(1, self.batch.max(1))
    }

    /// The gap between two sends.
    pub fn send_interval(&self) -> Duration {
        interval_for(self.rate_per_sec)
    }

    pub fn per_chat_interval(&self) -> Duration {
        Duration::from_millis(self.per_chat_interval_ms)
    }

    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }

    pub fn progress_interval(&self) -> Duration {
        Duration::from_millis(self.progress_interval_ms)
    }

    /// Wait after the `n`th consecutive failure (n ≥ 1): base · 2ⁿ⁻¹, at most [`MAX_BACKOFF`].
    pub fn backoff(&self, n: u32) -> Duration {
        let factor = 1u64 << n.saturating_sub(1).min(20);
        Duration::from_millis(self.backoff_base_ms.saturating_mul(factor)).min(MAX_BACKOFF)
    }

    /// Time to send `pending` messages at the configured rate.
    pub fn eta(&self, pending: u64) -> Duration {
        self.send_interval()
            .saturating_mul(u32::try_from(pending).unwrap_or(u32::MAX))
    }
}

pub(crate) fn interval_for(rate_per_sec: f64) -> Duration {
    let rate = if rate_per_sec.is_finite() && rate_per_sec > 0.0 {
        rate_per_sec
    } else {
        1.0
    };
    Duration::try_from_secs_f64(1.0 / rate).unwrap_or(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn defaults_are_valid_and_errors_name_the_field() {
        let s = BroadcastSettings::default();
        assert_eq!(s.validate(), Ok(()));
        assert_eq!(s.send_interval(), 40 * MS);
        for (bad, field) in [
            (
                BroadcastSettings {
                    rate_per_sec: 10_001.0,
                    ..s.clone()
                },
                "rate_per_sec",
            ),
            (
                BroadcastSettings {
                    rate_per_sec: f64::NAN,
                    ..s.clone()
                },
                "rate_per_sec",
            ),
            (
                BroadcastSettings {
                    rate_per_sec: 0.0,
                    ..s.clone()
                },
                "rate_per_sec",
            ),
            (
                BroadcastSettings {
                    max_attempts: 0,
                    ..s.clone()
                },
                "max_attempts",
            ),
            (
                BroadcastSettings {
                    batch: 0,
                    ..s.clone()
                },
                "batch",
            ),
            (
                BroadcastSettings {
                    poll_interval_ms: 0,
                    ..s.clone()
                },
                "poll_interval_ms",
            ),
        ] {
            let err = bad.validate().err();
            assert_eq!(err.as_ref().map(|e| e.field), Some(field), "{err:?}");
            assert!(err.is_some_and(|e| e.to_string().starts_with(field)));
        }
    }

    #[test]
    fn settings_deserialize_with_defaults_and_refuse_unknown_fields() {
        let s: BroadcastSettings =
            serde_json::from_str(r#"{"rate_per_sec": 10}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.rate_per_sec, 10.0);
        assert_eq!(s.batch, 500);
        assert!(serde_json::from_str::<BroadcastSettings>(r#"{"rate": 10}"#).is_err());
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let s = BroadcastSettings::default();
        assert_eq!(s.backoff(1), 500 * MS);
        assert_eq!(s.backoff(2), 1000 * MS);
        assert_eq!(s.backoff(4), 4000 * MS);
        assert_eq!(s.backoff(7), MAX_BACKOFF);
        assert_eq!(s.backoff(500), MAX_BACKOFF);
        assert_eq!(s.eta(250), Duration::from_secs(10));
    }

    #[test]
    fn max_in_flight_defaults_to_one_and_is_bounded() {
        let s = BroadcastSettings::default();
        assert_eq!(s.max_in_flight, 1);
        for bad in [0, MAX_IN_FLIGHT + 1] {
            let err = BroadcastSettings {
                max_in_flight: bad,
                ..s.clone()
            }
            .validate()
            .err();
            assert_eq!(err.map(|e| e.field), Some("max_in_flight"), "{bad}");
        }
        let most = BroadcastSettings {
            max_in_flight: MAX_IN_FLIGHT,
            ..s.clone()
        };
        assert_eq!(most.validate(), Ok(()));
        let parsed: BroadcastSettings =
            serde_json::from_str(r#"{"max_in_flight": 8}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.max_in_flight, 8);
        let omitted: BroadcastSettings =
            serde_json::from_str("{}").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(omitted.max_in_flight, 1);
    }

    #[test]
    fn leases_a_quarter_second_of_sends_at_a_time() {
        let s = BroadcastSettings::default();
        assert_eq!(s.lease_batch(), 7, "25/s");
        assert_eq!(s.lease(), Duration::from_secs(10));
        let fast = BroadcastSettings {
            rate_per_sec: 400.0,
            ..s.clone()
        };
        assert_eq!(fast.lease_batch(), 100);
        let capped = BroadcastSettings { batch: 50, ..fast };
        assert_eq!(capped.lease_batch(), 50);
        let slow = BroadcastSettings {
            rate_per_sec: 0.5,
            ..s
        };
        assert_eq!(slow.lease_batch(), 1);
    }
}
