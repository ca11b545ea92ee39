//! The local send budget: evenly spaced slots, a minimum gap per chat and a
//! global pause after a 429, kept in memory for one process.

use super::settings::{BroadcastSettings, interval_for};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Spaces sends evenly under a global rate, keeps a minimum gap per chat,
/// and pauses everything after a 429.
///
/// Shared (`Arc<Pacer>`) by every sender that counts against the bot's
/// limit, e.g. the broadcaster and the edits of progress messages. Slots do
/// not accumulate while idle: after a quiet minute the next sends are still
/// one interval apart, never a burst.
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    per_chat: Duration,
    state: Mutex<PacerState>,
}

#[derive(Debug, Default)]
struct PacerState {
    next_slot: Option<Instant>,
    paused_until: Option<Instant>,
    last_by_chat: HashMap<i64, Instant>,
}

/// Per-chat entries are pruned past this many.
const PACER_PRUNE_AT: usize = 4096;

impl Pacer {
    /// `rate_per_sec` sends a second overall; `per_chat` between two sends to one chat.
    pub fn new(rate_per_sec: f64, per_chat: Duration) -> Pacer {
        Pacer {
            interval: interval_for(rate_per_sec),
            per_chat,
            state: Mutex::new(PacerState::default()),
        }
    }

    pub fn from_settings(settings: &BroadcastSettings) -> Pacer {
        Pacer::new(settings.rate_per_sec, settings.per_chat_interval())
    }

    /// The gap between two sends.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    fn lock(&self) -> MutexGuard<'_, PacerState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Book the earliest slot at or after `now` for a send (to `chat`, if
    /// the per-chat gap applies) and return when it is. The caller sends at
    /// that instant; the next booking is one interval later.
    pub fn reserve_at(&self, now: Instant, chat: Option<i64>) -> Instant {
        self.reserve_inner(now, chat).0
    }

    fn reserve_inner(&self, now: Instant, chat: Option<i64>) -> (Instant, Option<Instant>) {
        let mut st = self.lock();
        let mut at = now;
        if let Some(next) = st.next_slot {
            at = at.max(next);
        }
        if let Some(until) = st.paused_until {
            at = at.max(until);
        }
        let mut previous = None;
        if let Some(chat) = chat {
            previous = st.last_by_chat.get(&chat).copied();
            if let Some(last) = previous {
                at = at.max(last + self.per_chat);
            }
            st.last_by_chat.insert(chat, at);
            if st.last_by_chat.len() > PACER_PRUNE_AT {
                let per_chat = self.per_chat;
                st.last_by_chat.retain(|_, last| *last + per_chat > now);
            }
        }
        st.next_slot = Some(at + self.interval);
        (at, previous)
    }

    /// Nothing is sent before `until` (a 429's `retry_after`). Extends, never
    /// shortens, a pause in force.
    pub fn pause_until(&self, until: Instant) {
        let mut st = self.lock();
        st.paused_until = Some(st.paused_until.map_or(until, |p| p.max(until)));
        st.next_slot = Some(st.next_slot.map_or(until, |n| n.max(until)));
    }

    /// The pause in force, if any.
    pub fn paused_until(&self) -> Option<Instant> {
        self.lock().paused_until.filter(|p| *p > Instant::now())
    }

    /// Wait for a slot (see [`Pacer::reserve_at`]). A pause that starts
    /// while waiting is respected: the slot is given up and a new one booked
    /// after the pause.
    pub async fn wait(&self, chat: Option<i64>) {
        loop {
            let (at, previous) = self.reserve_inner(Instant::now(), chat);
            tokio::time::sleep_until(at.into()).await;
            let now = Instant::now();
            let mut st = self.lock();
            match st.paused_until {
                Some(until) if until > now => {
                    if let Some(chat) = chat
                        && st.last_by_chat.get(&chat) == Some(&at)
                    {
                        match previous {
                            Some(p) => st.last_by_chat.insert(chat, p),
                            None => st.last_by_chat.remove(&chat),
                        };
                    }
                }
                _ => {
                    // Woken late? Timers fire on whole milliseconds, so a
                    // slot is routinely up to ~1 ms late; keeping the ideal
                    // cadence (the next slot stays `at + interval`) makes the
                    // average rate exact, and no second ever holds more than
                    // rate + 1 sends. Only after a long stall (later than a
                    // whole interval) does the cadence restart from now, so
                    // a stall is never followed by a burst.
                    if now > at + self.interval {
                        let restart = now + self.interval;
                        if st.next_slot.is_none_or(|n| n < restart) {
                            st.next_slot = Some(restart);
                        }
                    }
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn pacer_spaces_sends_evenly() {
        let p = Pacer::new(25.0, Duration::from_secs(1));
        let t0 = Instant::now();
        let slots: Vec<Duration> = (0..5)
            .map(|i| p.reserve_at(t0, Some(i)).duration_since(t0))
            .collect();
        assert_eq!(
            slots,
            vec![Duration::ZERO, 40 * MS, 80 * MS, 120 * MS, 160 * MS]
        );
    }

    #[test]
    fn pacer_does_not_burst_after_idling() {
        let p = Pacer::new(25.0, Duration::ZERO);
        let t0 = Instant::now();
        p.reserve_at(t0, None);
        let later = t0 + Duration::from_secs(60);
        assert_eq!(p.reserve_at(later, None), later);
        assert_eq!(p.reserve_at(later, None), later + 40 * MS);
    }

    #[test]
    fn pacer_keeps_the_per_chat_gap() {
        let p = Pacer::new(25.0, Duration::from_secs(1));
        let t0 = Instant::now();
        assert_eq!(p.reserve_at(t0, Some(7)), t0);
        assert_eq!(p.reserve_at(t0, Some(8)), t0 + 40 * MS);
        assert_eq!(p.reserve_at(t0, Some(7)), t0 + 1000 * MS);
        // The global spacing continues after the chat's slot.
        assert_eq!(p.reserve_at(t0, Some(9)), t0 + 1040 * MS);
        // Sends without a chat only follow the global spacing.
        assert_eq!(p.reserve_at(t0, None), t0 + 1080 * MS);
    }

    #[test]
    fn pacer_pause_delays_every_send_and_never_shortens() {
        let p = Pacer::new(25.0, Duration::from_secs(1));
        let t0 = Instant::now();
        p.reserve_at(t0, Some(1));
        p.pause_until(t0 + Duration::from_secs(3));
        p.pause_until(t0 + Duration::from_secs(2));
        assert_eq!(p.reserve_at(t0, Some(2)), t0 + Duration::from_secs(3));
        assert_eq!(p.reserve_at(t0, Some(3)), t0 + 3040 * MS);
    }

    #[test]
    fn pacer_forgets_old_chats() {
        let p = Pacer::new(30.0, Duration::from_secs(1));
        let t0 = Instant::now();
        for chat in 0..(PACER_PRUNE_AT as i64 + 10) {
            p.reserve_at(t0 + Duration::from_secs(10), Some(chat));
        }
        p.reserve_at(t0 + Duration::from_secs(10_000), Some(-1));
        assert!(p.lock().last_by_chat.len() < 10);
    }

    #[tokio::test]
    async fn pacer_wait_really_waits() {
        let p = Pacer::new(30.0, Duration::ZERO);
        let start = Instant::now();
        for _ in 0..4 {
            p.wait(None).await;
        }
        // Slots at 0, 33, 67, 100 ms.
        assert!(start.elapsed() >= 95 * MS, "{:?}", start.elapsed());
    }
}
