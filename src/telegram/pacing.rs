//! Pacing replies to Telegram's limits, so the bot causes no 429 of its own:
//! at most one message per `per_chat` in a chat, and at most `per_sec`
//! messages in any second overall.
//!
//! Both are counted from when a send *completes*: Telegram counts a message
//! when it arrives, which is after we start sending it and before we hear
//! back, so spacing completions by the interval keeps arrivals at least that
//! far apart whatever the network does. The overall limit is a fair (FIFO)
//! semaphore whose permits come back one second after each send.
//!
//! Telegram's overall limit is per bot, not per kind of message: the
//! announcement sender takes its slots from the same [`OverallRate`]
//! ([`Pacer::overall`]), so replies and a broadcast together stay within it.

use super::shutdown::{Shutdown, Stopping};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Above this many remembered chats, idle ones are forgotten.
const TRACKED_CHATS: usize = 10_000;

#[derive(Debug, Default)]
struct ChatSlot {
    busy: bool,
    free_at: Option<Instant>,
}

#[derive(Debug)]
pub struct Pacer {
    per_chat: Duration,
    overall: OverallRate,
    chats: Mutex<HashMap<i64, ChatSlot>>,
}

/// At most so many messages in any window, for every sender that holds a
/// clone (replies and announcements of one process).
#[derive(Debug, Clone)]
pub struct OverallRate {
    window: Duration,
    permits: Arc<Semaphore>,
}

/// One message's place in the window; it counts from when this is dropped
/// (after the send) until a window later.
#[derive(Debug)]
pub struct OverallSlot {
    window: Duration,
    permit: Option<OwnedSemaphorePermit>,
}

impl OverallRate {
    fn new(per_window: u32, window: Duration) -> Self {
        OverallRate {
            window,
            permits: Arc::new(Semaphore::new(per_window.max(1) as usize)),
        }
    }

    /// Wait (in arrival order) for a place in the window.
    pub async fn slot(&self) -> OverallSlot {
        OverallSlot {
            window: self.window,
            // The semaphore is never closed, so this is always a permit.
            permit: Arc::clone(&self.permits).acquire_owned().await.ok(),
        }
    }
}

impl Drop for OverallSlot {
    fn drop(&mut self) {
        if let Some(p) = self.permit.take() {
            let window = self.window;
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn(async move {
                        tokio::time::sleep(window).await;
                        drop(p);
                    });
                }
                Err(_) => drop(p),
            }
        }
    }
}

/// The right to send one message now. Dropping it (after the send) starts
/// the chat's interval and the second the message counts against.
#[derive(Debug)]
pub struct Permit<'a> {
    pacer: &'a Pacer,
    chat: i64,
    global: Option<OverallSlot>,
}

impl Pacer {
    pub fn new(per_chat: Duration, per_sec: u32) -> Self {
        Self::with_window(per_chat, per_sec, Duration::from_secs(1))
    }

    /// At most `per_window` sends in any `window` (tests use short ones).
    fn with_window(per_chat: Duration, per_window: u32, window: Duration) -> Self {
        Pacer {
            per_chat,
            overall: OverallRate::new(per_window, window),
            chats: Mutex::new(HashMap::new()),
        }
    }

    /// The overall limit, for other senders of this bot to share.
    pub fn overall(&self) -> OverallRate {
        self.overall.clone()
    }

    /// Wait for this chat's turn and a free place in the overall second.
    pub async fn acquire(&self, chat: i64, shutdown: &Shutdown) -> Result<Permit<'_>, Stopping> {
        loop {
            let wait = {
                let mut chats = self.chats.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                if chats.len() > TRACKED_CHATS {
                    chats.retain(|_, s| s.busy || s.free_at.is_some_and(|t| t > now));
                }
                let slot = chats.entry(chat).or_default();
                match (slot.busy, slot.free_at) {
                    // Another send to this chat is under way: look again soon.
                    (true, _) => Duration::from_millis(20),
                    (false, Some(t)) if t > now => t - now,
                    _ => {
                        slot.busy = true;
                        break;
                    }
                }
            };
            shutdown.sleep(wait).await?;
        }
        let mut permit = Permit {
            pacer: self,
            chat,
            global: None,
        };
        let global = tokio::select! {
            slot = self.overall.slot() => slot,
            _ = shutdown.deadline_passed() => return Err(Stopping),
        };
        permit.global = Some(global);
        Ok(permit)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let now = Instant::now();
        {
            let mut chats = self.pacer.chats.lock().unwrap_or_else(|e| e.into_inner());
            let slot = chats.entry(self.chat).or_default();
            slot.busy = false;
            slot.free_at = Some(now + self.pacer.per_chat);
        }
        // The overall slot starts its window as it drops, after this.
        self.global.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real time, short intervals; only lower bounds are checked (a sleep
    // never ends early, however loaded the machine is).
    const MS: Duration = Duration::from_millis(1);

    #[tokio::test]
    async fn one_per_interval_in_a_chat() {
        let pacer = Pacer::with_window(100 * MS, 1000, 100 * MS);
        let shutdown = Shutdown::default();
        let mut times = Vec::new();
        for _ in 0..3 {
            let p = pacer.acquire(1, &shutdown).await.unwrap();
            times.push(Instant::now());
            drop(p);
        }
        for w in times.windows(2) {
            assert!(w[1] - w[0] >= 100 * MS, "{:?}", w[1] - w[0]);
        }
    }

    #[tokio::test]
    async fn chats_do_not_wait_for_each_other() {
        let pacer = Pacer::new(Duration::from_secs(60), 30);
        let shutdown = Shutdown::default();
        drop(pacer.acquire(1, &shutdown).await.unwrap());
        let other = tokio::time::timeout(Duration::from_secs(30), pacer.acquire(2, &shutdown));
        assert!(other.await.is_ok(), "chat 2 waited for chat 1's minute");
    }

    #[tokio::test]
    async fn at_most_n_in_any_window_overall() {
        let pacer = Arc::new(Pacer::with_window(MS, 3, 200 * MS));
        let shutdown = Arc::new(Shutdown::default());
        let mut tasks = Vec::new();
        for chat in 100..110 {
            let (pacer, shutdown) = (Arc::clone(&pacer), Arc::clone(&shutdown));
            tasks.push(tokio::spawn(async move {
                let p = pacer.acquire(chat, &shutdown).await.unwrap();
                let at = Instant::now();
                drop(p);
                at
            }));
        }
        let mut at = Vec::new();
        for t in tasks {
            at.push(t.await.unwrap());
        }
        at.sort();
        for w in at.windows(4) {
            assert!(w[3] - w[0] >= 200 * MS, "{:?}", w[3] - w[0]);
        }
    }

    #[tokio::test]
    async fn a_wait_past_the_stop_deadline_is_abandoned() {
        let pacer = Pacer::new(Duration::from_secs(60), 30);
        let shutdown = Shutdown::default();
        drop(pacer.acquire(1, &shutdown).await.unwrap());
        shutdown.begin(Duration::from_secs(40));
        let t = Instant::now();
        assert!(pacer.acquire(1, &shutdown).await.is_err());
        assert!(t.elapsed() < Duration::from_secs(30), "not at once");
        assert!(pacer.acquire(2, &shutdown).await.is_ok());
    }
}
