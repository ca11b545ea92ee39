//! Conversation context: the last resolved [`Query`] and what its answer
//! showed, so that a follow-up such as "那保险组呢", "他是哪个单位的" or "几个?"
//! can change one part of it. The engine takes the context and gives it back;
//! transports keep one per chat (per user in groups).

use super::answer::Intent;
use super::index::EntityId;
use super::query::Query;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a context stays usable, and for how many follow-ups.
#[derive(Debug, Clone, Copy)]
pub struct ContextLimits {
    pub ttl: Duration,
    pub max_turns: u32,
}

impl Default for ContextLimits {
    fn default() -> Self {
        ContextLimits {
            ttl: Duration::from_secs(600),
            max_turns: 20,
        }
    }
}

/// The last resolved question of a conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    pub at: Instant,
    pub query: Query,
    pub intent: Intent,
    /// People and teams the last answer listed (for "她", "这两个队"); after a
    /// ranking, the institution on top.
    pub shown: Vec<EntityId>,
    /// Readings not taken (ambiguity, or a correction by sound).
    pub alternatives: Vec<EntityId>,
    /// Subjects (people) the last fact names, for "他" after "主任评委是谁".
    pub people: Vec<usize>,
    /// How many follow-ups since the last complete question.
    pub followups: u32,
}

/// Per-conversation state. Small and `Clone`; `Default` is a fresh chat.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    // Boxed: a map of 100,000 contexts then holds pointers, not whole turns.
    pub(crate) last: Option<Box<Turn>>,
}

impl Context {
    /// The last turn if it is still fresh at `now`.
    pub fn current(&self, now: Instant, limits: ContextLimits) -> Option<&Turn> {
        self.last.as_deref().filter(|t| {
            now.saturating_duration_since(t.at) <= limits.ttl && t.followups < limits.max_turns
        })
    }
    pub fn is_empty(&self) -> bool {
        self.last.is_none()
    }
    /// When this context was last used (to evict idle ones).
    pub fn last_used(&self) -> Option<Instant> {
        self.last.as_ref().map(|t| t.at)
    }
}

/// A context as text, to keep outside the process (a database several
/// instances share). Times become wall-clock milliseconds; `data` names the
/// knowledge the ids point into, so a context saved by an instance with
/// other data is not misread.
#[derive(Serialize, Deserialize)]
struct Saved {
    data: u64,
    at_unix_ms: i64,
    query: Query,
    intent: Intent,
    shown: Vec<EntityId>,
    alternatives: Vec<EntityId>,
    people: Vec<usize>,
    followups: u32,
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Context {
    /// The context as text (`None` when there is nothing to keep).
    /// `now` and `wall` are the same moment on the two clocks.
    pub fn encode(&self, data: u64, now: Instant, wall: SystemTime) -> Option<String> {
        let t = self.last.as_deref()?;
        let age = now.saturating_duration_since(t.at);
        let saved = Saved {
            data,
            at_unix_ms: unix_ms(wall).saturating_sub(i64::try_from(age.as_millis()).ok()?),
            query: t.query.clone(),
            intent: t.intent,
            shown: t.shown.clone(),
            alternatives: t.alternatives.clone(),
            people: t.people.clone(),
            followups: t.followups,
        };
        serde_json::to_string(&saved).ok()
    }

    /// A context from [`Context::encode`]'s text; a fresh one when the
    /// text cannot be read, was saved for other data or lies in the future
    /// of `now` beyond what clocks disagree by.
    pub fn decode(text: &str, data: u64, now: Instant, wall: SystemTime) -> Context {
        let Ok(saved) = serde_json::from_str::<Saved>(text) else {
            return Context::default();
        };
        if saved.data != data {
            return Context::default();
        }
        let age_ms = unix_ms(wall).saturating_sub(saved.at_unix_ms).max(0);
        let Some(at) = now.checked_sub(Duration::from_millis(age_ms.unsigned_abs())) else {
            return Context::default();
        };
        Context {
            last: Some(Box::new(Turn {
                at,
                query: saved.query,
                intent: saved.intent,
                shown: saved.shown,
                alternatives: saved.alternatives,
                people: saved.people,
                followups: saved.followups,
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Engine, Lang};

    #[test]
    fn a_context_survives_encoding_and_keeps_its_age() {
        let engine = Engine::builtin().unwrap();
        let data = engine.data_fingerprint();
        let now = Instant::now();
        let wall = SystemTime::now();
        let mut ctx = Context::default();
        let _ = engine.answer(&mut ctx, "个人一等奖是谁", None, now);
        let text = ctx.encode(data, now, wall).expect("something to keep");
        // Read back 30 s later by another process (another Instant base).
        let later = now + Duration::from_secs(30);
        let back = Context::decode(&text, data, later, wall + Duration::from_secs(30));
        let turn = back.last.as_deref().expect("kept");
        assert_eq!(turn.query, ctx.last.as_deref().unwrap().query);
        let age = later.saturating_duration_since(turn.at);
        assert!(
            age >= Duration::from_secs(29) && age <= Duration::from_secs(31),
            "{age:?}"
        );
        // The follow-up reads it as the original would.
        let mut a = ctx.clone();
        let mut b = back;
        let x = engine.answer(&mut a, "那保险组呢", Some(Lang::Zh), later);
        let y = engine.answer(&mut b, "那保险组呢", Some(Lang::Zh), later);
        assert_eq!(x.reply, y.reply);
        assert!(Context::default().encode(data, now, wall).is_none());
        assert!(
            Context::decode(&text, data ^ 1, now, wall).is_empty(),
            "other data"
        );
        assert!(Context::decode("{not json", data, now, wall).is_empty());
    }
}
