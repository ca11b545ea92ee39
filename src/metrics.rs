//! Prometheus metrics, kept in one place: what the bot counts while it runs,
//! and the text `/metrics` serves ([`encode`]).
//!
//! The counters are process-wide ([`metrics`]): every part of the bot bumps
//! them where the event happens, without an `App` to hand. Values that live
//! in the store (subscribers, pending deliveries) are read when scraped
//! ([`StoreGauges`]), so every instance reports the same numbers for them.
//!
//! Names start with `reportbot_`; counters end in `_total` (the encoder adds
//! it).

use prometheus_client::encoding::text::encode as encode_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::OnceLock;
use std::time::Duration;

/// One label, both parts fixed strings (no allocation per event).
type Label = [(&'static str, &'static str); 1];

/// Everything counted since start-up.
pub struct Metrics {
    registry: Registry,
    updates: Family<Label, Counter>,
    intents: Family<Label, Counter>,
    answer_latency: Histogram,
    pub replies_sent: Counter,
    pub replies_failed: Counter,
    pub replies_retried: Counter,
    pub too_many_requests: Counter,
    pub broadcast_sent: Counter,
    pub broadcast_failed: Counter,
    webhook_rejected: Family<Label, Counter>,
    pub webhook_duplicates: Counter,
    broadcast_pending: Gauge,
    subscribers: Gauge,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::default();
        let updates = Family::<Label, Counter>::default();
        let intents = Family::<Label, Counter>::default();
        // 50 µs … ~3.3 s: answers take microseconds, replies with a send
        // up to seconds.
        let answer_latency = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(0.000_05, 4.0, 9),
        );
        let webhook_rejected = Family::<Label, Counter>::default();
        let m = Metrics {
            updates: updates.clone(),
            intents: intents.clone(),
            answer_latency: answer_latency.clone(),
            replies_sent: Counter::default(),
            replies_failed: Counter::default(),
            replies_retried: Counter::default(),
            too_many_requests: Counter::default(),
            broadcast_sent: Counter::default(),
            broadcast_failed: Counter::default(),
            webhook_rejected: webhook_rejected.clone(),
            webhook_duplicates: Counter::default(),
            broadcast_pending: Gauge::default(),
            subscribers: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register("reportbot_updates", "Updates received, by kind", updates);
        registry.register(
            "reportbot_intents",
            "Messages answered, by what they asked",
            intents,
        );
        registry.register(
            "reportbot_answer_latency_seconds",
            "From an update taken up to its reply sent",
            answer_latency,
        );
        registry.register(
            "reportbot_replies_sent",
            "Replies Telegram accepted",
            m.replies_sent.clone(),
        );
        registry.register(
            "reportbot_replies_failed",
            "Replies given up",
            m.replies_failed.clone(),
        );
        registry.register(
            "reportbot_replies_retried",
            "Send attempts repeated after an error",
            m.replies_retried.clone(),
        );
        registry.register(
            "reportbot_telegram_429",
            "Answers 429 Too Many Requests from Telegram",
            m.too_many_requests.clone(),
        );
        registry.register(
            "reportbot_broadcast_sent",
            "Announcement deliveries sent by this instance",
            m.broadcast_sent.clone(),
        );
        registry.register(
            "reportbot_broadcast_failed",
            "Announcement deliveries given up by this instance",
            m.broadcast_failed.clone(),
        );
        registry.register(
            "reportbot_broadcast_pending",
            "Announcement deliveries not yet done (all instances)",
            m.broadcast_pending.clone(),
        );
        registry.register(
            "reportbot_subscribers",
            "Active subscribers",
            m.subscribers.clone(),
        );
        registry.register(
            "reportbot_webhook_rejected",
            "Webhook requests refused, by reason",
            webhook_rejected,
        );
        registry.register(
            "reportbot_webhook_duplicates",
            "Webhook deliveries of an update already handled",
            m.webhook_duplicates.clone(),
        );
        Metrics { registry, ..m }
    }

    /// An update arrived (kind as Telegram names it: `message` …).
    pub fn update(&self, kind: &'static str) {
        self.updates.get_or_create(&[("kind", kind)]).inc();
    }

    /// A message was answered: what it asked and how long it took.
    pub fn answered(&self, intent: &'static str, took: Duration) {
        self.intents.get_or_create(&[("intent", intent)]).inc();
        self.answer_latency.observe(took.as_secs_f64());
    }

    /// A webhook request was refused (`unauthorized`, `too_large`,
    /// `not_json`, `not_an_update`).
    pub fn webhook_rejected(&self, reason: &'static str) {
        self.webhook_rejected
            .get_or_create(&[("reason", reason)])
            .inc();
    }
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// Values read from the store when scraped.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoreGauges {
    pub subscribers: u64,
    pub broadcast_pending: u64,
}

/// The Prometheus text exposition of every metric.
pub fn encode(gauges: Option<StoreGauges>) -> String {
    let m = metrics();
    if let Some(g) = gauges {
        m.subscribers
            .set(i64::try_from(g.subscribers).unwrap_or(i64::MAX));
        m.broadcast_pending
            .set(i64::try_from(g.broadcast_pending).unwrap_or(i64::MAX));
    }
    let mut out = String::with_capacity(4096);
    // Writing into a String cannot fail.
    let _ = encode_text(&mut out, &m.registry);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values_show_in_the_text() {
        let m = metrics();
        m.update("message");
        m.answered("who_won", Duration::from_micros(120));
        m.replies_sent.inc();
        m.webhook_rejected("not_json");
        let text = encode(Some(StoreGauges {
            subscribers: 7,
            broadcast_pending: 3,
        }));
        for line in [
            "reportbot_updates_total{kind=\"message\"}",
            "reportbot_intents_total{intent=\"who_won\"}",
            "reportbot_answer_latency_seconds_bucket",
            "reportbot_replies_sent_total",
            "reportbot_replies_failed_total",
            "reportbot_replies_retried_total",
            "reportbot_telegram_429_total",
            "reportbot_broadcast_sent_total",
            "reportbot_broadcast_failed_total",
            "reportbot_broadcast_pending 3",
            "reportbot_subscribers 7",
            "reportbot_webhook_rejected_total{reason=\"not_json\"}",
        ] {
            assert!(text.contains(line), "{line} missing in:\n{text}");
        }
        for name in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            assert!(name.starts_with("reportbot_"), "{name}");
        }
    }
}
