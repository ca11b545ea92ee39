//! Conversation context: the last resolved [`Query`] and what its answer
//! showed, so that a follow-up such as "那保险组呢", "他是哪个单位的" or "几个?"
//! can change one part of it. The engine takes the context and gives it back;
//! transports keep one per chat (per user in groups).

use super::answer::Intent;
use super::index::EntityId;
use super::query::Query;
use std::time::{Duration, Instant};

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
