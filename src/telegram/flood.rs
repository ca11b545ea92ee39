//! Flood protection per sender: more than `max_messages` within `window` gets
//! one polite notice, then silence for `cooldown`, so one user cannot starve
//! others. Checked on arrival (see `intake`); the notice is owed to one
//! message and sent by that message's handler, in order.

use crate::config::FloodSettings;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What to do with a user's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Over the limit just now: tell the user once.
    Warn,
    /// Still cooling down: ignore quietly.
    Drop,
}

#[derive(Debug, Default)]
struct Window {
    hits: VecDeque<Instant>,
    cooldown_until: Option<Instant>,
}

#[derive(Debug)]
pub struct FloodGuard {
    max: usize,
    window: Duration,
    cooldown: Duration,
    users: Mutex<HashMap<i64, Window>>,
    /// (chat, message id) of messages to be answered with the notice.
    notices: Mutex<HashSet<(i64, i32)>>,
}

/// Above this many tracked users, idle ones are forgotten.
const TRACKED_USERS: usize = 10_000;

impl FloodGuard {
    pub fn new(s: &FloodSettings) -> Self {
        FloodGuard {
            max: s.max_messages as usize,
            window: Duration::from_secs(s.window_secs),
            cooldown: Duration::from_secs(s.cooldown_secs),
            users: Mutex::new(HashMap::new()),
            notices: Mutex::new(HashSet::new()),
        }
    }

    /// The notice goes out as the answer to this message.
    pub fn owe_notice(&self, chat: i64, message: i32) {
        let mut n = self.notices.lock().unwrap_or_else(|e| e.into_inner());
        if n.len() > TRACKED_USERS {
            n.clear();
        }
        n.insert((chat, message));
    }

    /// Is the notice the answer to this message? (Once.)
    pub fn take_notice(&self, chat: i64, message: i32) -> bool {
        self.notices
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(chat, message))
    }

    /// `sender`: a user id, or a chat id for messages sent as a chat.
    pub fn check(&self, sender: i64, now: Instant) -> Verdict {
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        if users.len() > TRACKED_USERS {
            let window = self.window;
            users.retain(|_, w| {
                w.cooldown_until.is_some_and(|t| t > now)
                    || w.hits
                        .back()
                        .is_some_and(|t| now.duration_since(*t) < window)
            });
        }
        let w = users.entry(sender).or_default();
        if let Some(until) = w.cooldown_until {
            if now < until {
                return Verdict::Drop;
            }
            w.cooldown_until = None;
            w.hits.clear();
        }
        while w
            .hits
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            w.hits.pop_front();
        }
        w.hits.push_back(now);
        if w.hits.len() > self.max {
            w.cooldown_until = Some(now + self.cooldown);
            w.hits.clear();
            return Verdict::Warn;
        }
        Verdict::Allow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_once_then_drops_then_recovers() {
        let g = FloodGuard::new(&FloodSettings {
            max_messages: 3,
            window_secs: 10,
            cooldown_secs: 30,
        });
        let t0 = Instant::now();
        for i in 0..3 {
            assert_eq!(g.check(1, t0 + Duration::from_millis(i)), Verdict::Allow);
        }
        assert_eq!(
            g.check(2, t0),
            Verdict::Allow,
            "other users are not affected"
        );
        assert_eq!(g.check(1, t0 + Duration::from_millis(5)), Verdict::Warn);
        assert_eq!(g.check(1, t0 + Duration::from_secs(1)), Verdict::Drop);
        assert_eq!(g.check(1, t0 + Duration::from_secs(31)), Verdict::Allow);
    }

    #[test]
    fn slow_users_are_never_limited() {
        let g = FloodGuard::new(&FloodSettings::default());
        let t0 = Instant::now();
        for i in 0..100 {
            assert_eq!(g.check(7, t0 + Duration::from_secs(i)), Verdict::Allow);
        }
    }
}
