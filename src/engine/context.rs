//! Conversation context: what the last answer was about, so a follow-up such
//! as "那保险组呢" or "他是哪个单位的" can fill in what it leaves out. The engine
//! takes it and gives it back; transports keep one per chat (per user in groups).

use super::index::EntityId;
use super::reply::{Intent, PrizeFilter};
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
    pub intent: Intent,
    pub report: usize,
    pub filter: PrizeFilter,
    /// The person, team or institution the last answer was about.
    pub entities: Vec<EntityId>,
    /// People and teams the last answer listed (for "她", "这两个队").
    pub shown: Vec<EntityId>,
    /// Trigger keywords of the last fact question (for "什么时候?" after it),
    /// plus the names of people its answer mentions (for "他").
    pub keywords: Vec<(u32, usize)>,
    /// Readings not taken (ambiguity, or a correction by sound).
    pub alternatives: Vec<EntityId>,
    pub case: Option<usize>,
    pub tips_topic: Option<String>,
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
