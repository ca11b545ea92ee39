//! Conversation contexts per chat (per user in groups), in memory, bounded in
//! number and age. The engine reads and returns them; this only keeps them.

use crate::engine::Context;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Whose conversation: a private chat, or one user inside a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConversationKey {
    pub chat: i64,
    pub user: u64,
}

impl ConversationKey {
    /// Its name in the store (webhook mode: contexts shared by instances).
    pub fn store_key(&self) -> String {
        format!("{}:{}", self.chat, self.user)
    }
}

#[derive(Debug)]
pub struct Conversations {
    map: Mutex<HashMap<ConversationKey, Context>>,
    max: usize,
    ttl: Duration,
}

impl Conversations {
    pub fn new(max: usize, ttl: Duration) -> Self {
        Conversations {
            map: Mutex::new(HashMap::new()),
            max: max.max(1),
            ttl,
        }
    }

    /// The context to answer with (a fresh one if none or expired).
    pub fn take(&self, key: ConversationKey) -> Context {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&key).unwrap_or_default()
    }

    /// Keep the context after answering.
    pub fn put(&self, key: ConversationKey, ctx: Context, now: Instant) {
        if ctx.is_empty() {
            return;
        }
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.max && !map.contains_key(&key) {
            // Drop expired ones first; if still full, the least recently used
            // tenth, so eviction work is paid rarely.
            let ttl = self.ttl;
            map.retain(|_, c| {
                c.last_used()
                    .is_some_and(|t| now.saturating_duration_since(t) < ttl)
            });
            if map.len() >= self.max {
                let mut ages: Vec<(Instant, ConversationKey)> = map
                    .iter()
                    .filter_map(|(k, c)| c.last_used().map(|t| (t, *k)))
                    .collect();
                ages.sort_unstable_by_key(|(t, _)| *t);
                for (_, k) in ages.iter().take((self.max / 10).max(1)) {
                    map.remove(k);
                }
            }
        }
        map.insert(key, ctx);
    }

    /// Forget every conversation (after the reports were reloaded, old
    /// contexts point into the old data).
    pub fn clear(&self) {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Engine;

    #[test]
    fn bounded_and_separate() {
        let engine = Engine::builtin().unwrap();
        let store = Conversations::new(10, Duration::from_secs(600));
        let now = Instant::now();
        for i in 0..25 {
            let key = ConversationKey { chat: i, user: 1 };
            let mut ctx = store.take(key);
            let _ = engine.answer(&mut ctx, "个人一等奖是谁", None, now);
            store.put(key, ctx, now);
        }
        assert!(store.len() <= 10);
        let a = ConversationKey { chat: -5, user: 1 };
        let b = ConversationKey { chat: -5, user: 2 };
        let mut ctx = store.take(a);
        let _ = engine.answer(&mut ctx, "个人一等奖是谁", None, now);
        store.put(a, ctx, now);
        assert!(
            store.take(b).is_empty(),
            "users in one group do not share context"
        );
        assert!(!store.take(a).is_empty());
    }
}
