//! The worker against a scripted sender and an in-memory store.

use super::*;
use crate::broadcast::sender::{SendFuture, SentId};
use crate::store::DeliveryState;
use crate::store::{
    Language, NewAnnouncement, NewSubscriber, Origin, SqliteStore, SubscriberStatus,
};
use crate::telegram::errors::SendError;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Mutex, MutexGuard, PoisonError};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const MS: Duration = Duration::from_millis(1);

/// How much later than its slot a send may start (timer lateness, the claim
/// of its row) on a loaded machine; pacing is measured against this margin.
const SEND_JITTER: Duration = Duration::from_millis(10);

/// Answers per chat from a script (then OK), records every call.
#[derive(Default)]
struct Scripted {
    script: Mutex<HashMap<i64, VecDeque<Result<SentId, SendError>>>>,
    always: Mutex<HashMap<i64, SendError>>,
    calls: Mutex<Vec<(i64, Instant)>>,
    delay: Duration,
    next_id: Mutex<i32>,
    /// When each answer was given.
    answers: Mutex<Vec<(i64, Instant)>>,
    /// Sends awaiting their answer now, and at most so far.
    active: AtomicUsize,
    peak: AtomicUsize,
    /// Chats whose send panics (a bug in a sender).
    panics: Mutex<HashSet<i64>>,
}

impl Scripted {
    fn then(&self, chat: i64, answer: Result<SentId, SendError>) {
        lock(&self.script)
            .entry(chat)
            .or_default()
            .push_back(answer);
    }
    fn always(&self, chat: i64, error: SendError) {
        lock(&self.always).insert(chat, error);
    }
    fn calls(&self) -> Vec<(i64, Instant)> {
        lock(&self.calls).clone()
    }
    fn answers(&self) -> Vec<(i64, Instant)> {
        lock(&self.answers).clone()
    }
    fn peak(&self) -> usize {
        self.peak.load(AtomicOrdering::SeqCst)
    }
    fn answer(&self, chat_id: i64) -> Result<SentId, SendError> {
        if let Some(e) = lock(&self.always).get(&chat_id) {
            return Err(e.clone());
        }
        if let Some(answer) = lock(&self.script)
            .get_mut(&chat_id)
            .and_then(VecDeque::pop_front)
        {
            return answer;
        }
        let mut id = lock(&self.next_id);
        *id += 1;
        Ok(SentId(*id))
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl AnnouncementSender for Scripted {
    fn send<'a>(&'a self, chat_id: i64, _text: &'a str) -> SendFuture<'a> {
        Box::pin(async move {
            lock(&self.calls).push((chat_id, Instant::now()));
            let now = self.active.fetch_add(1, AtomicOrdering::SeqCst) + 1;
            self.peak.fetch_max(now, AtomicOrdering::SeqCst);
            if !self.delay.is_zero() {
                tokio::time::sleep(self.delay).await;
            }
            let answer = self.answer(chat_id);
            self.active.fetch_sub(1, AtomicOrdering::SeqCst);
            if lock(&self.panics).contains(&chat_id) {
                panic!("test: the sender panics for chat {chat_id}");
            }
            lock(&self.answers).push((chat_id, Instant::now()));
            answer
        })
    }
}

fn fast() -> BroadcastSettings {
    BroadcastSettings {
        rate_per_sec: 30.0,
        per_chat_interval_ms: 0,
        max_attempts: 3,
        backoff_base_ms: 1,
        poll_interval_ms: 10,
        batch: 4,
        progress_interval_ms: 0,
        max_in_flight: 1,
        lease_secs: 10,
    }
}

fn store_with(chats: &[i64]) -> StoreResult<Arc<SqliteStore>> {
    let store = SqliteStore::open_in_memory()?;
    let subs: Vec<NewSubscriber> = chats
        .iter()
        .map(|&chat_id| NewSubscriber::private(chat_id, Language::Zh))
        .collect();
    store.subscribe_many(&subs)?;
    Ok(Arc::new(store))
}

fn announce(store: &SqliteStore, text: &str) -> StoreResult<AnnouncementId> {
    Ok(store
        .queue_now(&NewAnnouncement {
            text_html: text.into(),
            created_by: Origin::Cli,
            dedupe_key: None,
        })?
        .id)
}

struct Running {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    events: mpsc::UnboundedReceiver<BroadcastEvent>,
}

fn start(
    store: Arc<SqliteStore>,
    sender: Arc<Scripted>,
    settings: BroadcastSettings,
) -> Result<Running, SettingsError> {
    let mut worker = Broadcaster::new(store, sender, settings)?;
    let events = worker.events();
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(worker.run(rx));
    Ok(Running { stop, task, events })
}

impl Running {
    /// Wait for the `Finished` event of `id`; the events before it.
    async fn until_finished(&mut self, id: AnnouncementId) -> Vec<BroadcastEvent> {
        let mut seen = Vec::new();
        let deadline = tokio::time::sleep(Duration::from_secs(20));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => panic!("announcement {id} did not finish: {seen:?}"),
                ev = self.events.recv() => {
                    let ev = ev.unwrap_or_else(|| panic!("worker ended: {seen:?}"));
                    let done = matches!(&ev, BroadcastEvent::Finished(r) if r.announcement == id);
                    seen.push(ev);
                    if done {
                        return seen;
                    }
                }
            }
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

#[tokio::test]
async fn delivers_everything_paced_and_reports() -> TestResult {
    let store = store_with(&[1, 2, 3, 4, 5, 6])?;
    let id = announce(&store, "<b>hi</b>")?;
    let sender = Arc::new(Scripted::default());
    let mut run = start(store.clone(), sender.clone(), fast())?;
    let events = run.until_finished(id).await;
    run.stop().await;

    let p = store.progress(id)?;
    assert_eq!((p.total, p.sent, p.pending), (6, 6, 0));
    let calls = sender.calls();
    assert_eq!(calls.len(), 6);
    for w in calls.windows(2) {
        let gap = w[1].1.duration_since(w[0].1);
        assert!(
            // The interval is 33.3 ms; a send starts after its slot by the
            // timer's lateness plus the claim of its row, and the next slot
            // keeps the ideal cadence, so a gap may be short by that much.
            gap >= 33 * MS - SEND_JITTER,
            "sends {gap:?} apart"
        );
    }
    // Over the run, the cadence itself: five intervals of 33.3 ms.
    let span = calls[5].1.duration_since(calls[0].1);
    assert!(span >= 166 * MS - SEND_JITTER, "6 sends in {span:?}");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, BroadcastEvent::Progress(_)))
    );
    let Some(BroadcastEvent::Finished(last)) = events.last() else {
        panic!("{events:?}")
    };
    assert_eq!(last.state, AnnouncementState::Done);
    assert_eq!(last.progress.sent, 6);
    assert_eq!(last.eta, Duration::ZERO);
    Ok(())
}

#[tokio::test]
async fn retry_after_pauses_all_sends_and_is_not_an_attempt() -> TestResult {
    let store = store_with(&[1, 2, 3])?;
    let id = announce(&store, "hi")?;
    let sender = Arc::new(Scripted::default());
    sender.then(2, Err(SendError::RetryAfter(300 * MS)));
    let mut run = start(store.clone(), sender.clone(), fast())?;
    run.until_finished(id).await;
    run.stop().await;

    let calls = sender.calls();
    let chats: Vec<i64> = calls.iter().map(|c| c.0).collect();
    assert_eq!(chats, vec![1, 2, 2, 3]);
    let pause = calls[2].1.duration_since(calls[1].1);
    assert!(pause >= 300 * MS, "resumed after {pause:?}");
    let p = store.progress(id)?;
    assert_eq!((p.sent, p.failed), (3, 0));
    let d = store.next_pending(10)?;
    assert!(d.is_empty());
    Ok(())
}

#[tokio::test]
async fn transient_errors_retry_then_fail() -> TestResult {
    let store = store_with(&[1, 2, 3])?;
    let id = announce(&store, "hi")?;
    let sender = Arc::new(Scripted::default());
    sender.always(2, SendError::Transient("Internal Server Error".into()));
    sender.then(3, Err(SendError::Transient("Bad Gateway".into())));
    let mut run = start(store.clone(), sender.clone(), fast())?;
    run.until_finished(id).await;
    run.stop().await;

    let p = store.progress(id)?;
    assert_eq!((p.sent, p.failed, p.pending), (2, 1, 0));
    let to_2 = sender.calls().iter().filter(|c| c.0 == 2).count();
    assert_eq!(to_2, 3, "max_attempts tries");
    let to_3 = sender.calls().iter().filter(|c| c.0 == 3).count();
    assert_eq!(to_3, 2, "one retry, then sent");
    // Still subscribed: a server error is not the chat's fault.
    assert!(store.is_subscribed(2)?);
    Ok(())
}

#[tokio::test]
async fn blocked_chats_are_unsubscribed_with_their_other_deliveries() -> TestResult {
    let store = store_with(&[1, 2, 3])?;
    let first = announce(&store, "one")?;
    let second = announce(&store, "two")?;
    let sender = Arc::new(Scripted::default());
    sender.always(
        2,
        SendError::Blocked("Forbidden: bot was blocked by the user".into()),
    );
    let mut run = start(store.clone(), sender.clone(), fast())?;
    run.until_finished(second).await;
    run.stop().await;

    assert_eq!(sender.calls().iter().filter(|c| c.0 == 2).count(), 1);
    for id in [first, second] {
        let p = store.progress(id)?;
        assert_eq!((p.sent, p.blocked, p.pending), (2, 1, 0), "{id}");
    }
    let s = store.subscriber(2)?.ok_or("missing")?;
    assert_eq!(s.status, SubscriberStatus::Blocked);
    assert!(s.reason.is_some_and(|r| r.contains("blocked")));
    assert_eq!(store.counts()?.blocked, 1);
    Ok(())
}

#[tokio::test]
async fn refused_text_cancels_the_announcement() -> TestResult {
    let store = store_with(&[1, 2, 3])?;
    let id = announce(&store, "<x>")?;
    let sender = Arc::new(Scripted::default());
    sender.always(1, SendError::BadMessage("can't parse entities".into()));
    let mut run = start(store.clone(), sender.clone(), fast())?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let report = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, run.events.recv()).await? {
            Some(BroadcastEvent::Aborted { report, .. }) => break report,
            Some(_) => {}
            None => panic!("worker ended"),
        }
    };
    run.stop().await;
    assert_eq!(report.announcement, id);
    assert_eq!(report.state, AnnouncementState::Cancelled);
    assert_eq!((report.progress.failed, report.progress.cancelled), (1, 2));
    assert_eq!(sender.calls().len(), 1);
    Ok(())
}

#[tokio::test]
async fn migrated_group_gets_it_at_the_new_id() -> TestResult {
    let store = store_with(&[-5])?;
    let id = announce(&store, "hi")?;
    let sender = Arc::new(Scripted::default());
    sender.always(-5, SendError::MigratedTo(-1_000_000_005));
    let mut run = start(store.clone(), sender.clone(), fast())?;
    run.until_finished(id).await;
    run.stop().await;
    let chats: Vec<i64> = sender.calls().iter().map(|c| c.0).collect();
    assert_eq!(chats, vec![-5, -1_000_000_005]);
    assert_eq!(store.progress(id)?.sent, 1);
    assert!(store.is_subscribed(-1_000_000_005)?);
    assert!(!store.is_subscribed(-5)?);
    Ok(())
}

#[tokio::test]
async fn shutdown_finishes_the_send_in_flight_and_keeps_the_rest() -> TestResult {
    let chats: Vec<i64> = (1..=20).collect();
    let store = store_with(&chats)?;
    let id = announce(&store, "hi")?;
    let sender = Arc::new(Scripted {
        delay: 100 * MS,
        ..Scripted::default()
    });
    let run = start(store.clone(), sender.clone(), fast())?;
    // Stop while the third send is in flight.
    while sender.calls().len() < 3 {
        tokio::time::sleep(5 * MS).await;
    }
    run.stop().await;

    let calls = sender.calls().len() as u64;
    assert_eq!(calls, 3);
    let p = store.progress(id)?;
    assert_eq!(p.sent, 3, "the send in flight was recorded");
    assert_eq!(p.pending, 17);
    let a = store.announcement(id)?.ok_or("missing")?;
    assert_eq!(a.state, AnnouncementState::Queued);

    // A new worker picks up where the old one stopped.
    let sender2 = Arc::new(Scripted::default());
    let mut run2 = start(store.clone(), sender2.clone(), fast())?;
    run2.until_finished(id).await;
    run2.stop().await;
    let again: Vec<i64> = sender2.calls().iter().map(|c| c.0).collect();
    assert_eq!(again, (4..=20).collect::<Vec<_>>());
    Ok(())
}

#[tokio::test]
async fn a_chat_that_unsubscribes_mid_batch_gets_nothing_more() -> TestResult {
    let store = store_with(&[1, 2, 3, 4])?;
    let id = announce(&store, "hi")?;
    let sender = Arc::new(Scripted {
        delay: 50 * MS,
        ..Scripted::default()
    });
    let settings = BroadcastSettings {
        batch: 100,
        ..fast()
    };
    let mut run = start(store.clone(), sender.clone(), settings)?;
    while sender.calls().is_empty() {
        tokio::time::sleep(MS).await;
    }
    // The whole batch was read before this.
    store.unsubscribe(3)?;
    run.until_finished(id).await;
    run.stop().await;
    let chats: Vec<i64> = sender.calls().iter().map(|c| c.0).collect();
    assert_eq!(chats, vec![1, 2, 4]);
    let p = store.progress(id)?;
    assert_eq!((p.sent, p.cancelled), (3, 1));
    Ok(())
}

#[tokio::test]
async fn picks_up_work_queued_while_idle() -> TestResult {
    let store = store_with(&[1, 2])?;
    let sender = Arc::new(Scripted::default());
    let mut run = start(store.clone(), sender.clone(), fast())?;
    tokio::time::sleep(50 * MS).await;
    assert!(sender.calls().is_empty());
    let id = announce(&store, "later")?;
    run.until_finished(id).await;
    run.stop().await;
    assert_eq!(sender.calls().len(), 2);
    let d = store
        .delivery(crate::store::DeliveryId(1))?
        .ok_or("missing")?;
    assert_eq!(d.state, DeliveryState::Sent);
    assert!(d.message_id.is_some());
    Ok(())
}

#[tokio::test]
async fn announcement_without_subscribers_finishes() -> TestResult {
    let store = store_with(&[])?;
    let id = announce(&store, "nobody")?;
    let sender = Arc::new(Scripted::default());
    let mut run = start(store.clone(), sender, fast())?;
    let events = run.until_finished(id).await;
    run.stop().await;
    assert!(matches!(events.last(), Some(BroadcastEvent::Finished(r)) if r.progress.total == 0));
    Ok(())
}

// ----- several sends in flight (max_in_flight > 1) ------------------------------

fn in_flight(k: usize) -> BroadcastSettings {
    BroadcastSettings {
        max_in_flight: k,
        ..fast()
    }
}

async fn stop_and_join(run: Running) -> Result<mpsc::UnboundedReceiver<BroadcastEvent>, String> {
    let Running { stop, task, events } = run;
    let _ = stop.send(true);
    match tokio::time::timeout(Duration::from_secs(10), task).await {
        Ok(Ok(())) => Ok(events),
        Ok(Err(e)) => Err(format!("worker panicked: {e}")),
        Err(_) => Err("worker did not stop".into()),
    }
}

#[tokio::test]
async fn in_flight_sends_deliver_everything_exactly_once() -> TestResult {
    let chats: Vec<i64> = (1..=30).collect();
    let store = store_with(&chats)?;
    let first = announce(&store, "one")?;
    let second = announce(&store, "two")?;
    let sender = Arc::new(Scripted {
        delay: 40 * MS,
        ..Scripted::default()
    });
    // Batches smaller than the sends in flight: every batch read meets
    // rows still being sent, which must not be handed out again.
    let settings = BroadcastSettings {
        rate_per_sec: 400.0,
        ..in_flight(8)
    };
    let mut run = start(store.clone(), sender.clone(), settings)?;
    run.until_finished(first).await;
    run.until_finished(second).await;
    stop_and_join(run).await?;

    for id in [first, second] {
        let p = store.progress(id)?;
        assert_eq!(
            (p.total, p.sent, p.pending, p.failed),
            (30, 30, 0, 0),
            "{id}"
        );
    }
    let calls = sender.calls();
    assert_eq!(calls.len(), 60, "one send per delivery");
    let mut per_chat: HashMap<i64, usize> = HashMap::new();
    for (chat, _) in &calls {
        *per_chat.entry(*chat).or_default() += 1;
    }
    assert!(per_chat.values().all(|&n| n == 2), "{per_chat:?}");
    let peak = sender.peak();
    assert!((2..=8).contains(&peak), "{peak} sends at once");
    Ok(())
}

#[tokio::test]
async fn in_flight_sends_keep_the_pacing() -> TestResult {
    let store = store_with(&[1, 2, 3, 4, 5, 6])?;
    let first = announce(&store, "one")?;
    let second = announce(&store, "two")?;
    let sender = Arc::new(Scripted {
        delay: 200 * MS,
        ..Scripted::default()
    });
    let settings = BroadcastSettings {
        per_chat_interval_ms: 400,
        ..in_flight(8)
    };
    let mut run = start(store.clone(), sender.clone(), settings)?;
    run.until_finished(first).await;
    run.until_finished(second).await;
    stop_and_join(run).await?;

    let calls = sender.calls();
    assert_eq!(calls.len(), 12);
    for w in calls.windows(2) {
        let gap = w[1].1.duration_since(w[0].1);
        assert!(gap >= 33 * MS - SEND_JITTER, "sends {gap:?} apart");
    }
    for chat in 1..=6 {
        let to: Vec<Instant> = calls.iter().filter(|c| c.0 == chat).map(|c| c.1).collect();
        assert_eq!(to.len(), 2);
        // The pacer keeps 400 ms between the two slots; the first send
        // may start a little after its slot.
        let gap = to[1].duration_since(to[0]);
        assert!(gap >= 400 * MS - SEND_JITTER, "chat {chat}: {gap:?} apart");
    }
    // Not one at a time: a send takes 200 ms, the slots are 33 ms apart.
    assert!(sender.peak() >= 2, "peak {}", sender.peak());
    Ok(())
}

#[tokio::test]
async fn retry_after_pauses_every_send_in_flight_too() -> TestResult {
    let chats: Vec<i64> = (1..=8).collect();
    let store = store_with(&chats)?;
    let id = announce(&store, "hi")?;
    let sender = Arc::new(Scripted {
        delay: 50 * MS,
        ..Scripted::default()
    });
    sender.then(2, Err(SendError::RetryAfter(300 * MS)));
    let mut run = start(store.clone(), sender.clone(), in_flight(4))?;
    run.until_finished(id).await;
    stop_and_join(run).await?;

    // Slots at 0, 33, 67 ms, …; chat 2's 429 comes at about 83 ms,
    // while chat 3 is in flight: nothing starts for the next 300 ms.
    let answered = sender
        .answers()
        .iter()
        .find(|a| a.0 == 2)
        .map(|a| a.1)
        .ok_or("no answer to chat 2")?;
    let calls = sender.calls();
    for (chat, at) in &calls {
        assert!(
            *at < answered || *at >= answered + 300 * MS,
            "chat {chat} sent {:?} after the 429",
            at.duration_since(answered)
        );
    }
    assert!(calls.iter().any(|c| c.1 >= answered + 300 * MS));
    assert_eq!(calls.iter().filter(|c| c.0 == 2).count(), 2);
    assert!(sender.peak() >= 2, "peak {}", sender.peak());
    let p = store.progress(id)?;
    assert_eq!((p.sent, p.failed, p.pending), (8, 0, 0));
    for n in 1..=8 {
        let d = store
            .delivery(crate::store::DeliveryId(n))?
            .ok_or("missing")?;
        assert_eq!(d.attempts, 0, "a 429 is not an attempt ({d:?})");
    }
    Ok(())
}

#[tokio::test]
async fn in_flight_transient_error_waits_for_its_backoff() -> TestResult {
    let chats: Vec<i64> = (1..=12).collect();
    let store = store_with(&chats)?;
    let id = announce(&store, "hi")?;
    let sender = Arc::new(Scripted {
        delay: 30 * MS,
        ..Scripted::default()
    });
    sender.then(2, Err(SendError::Transient("Bad Gateway".into())));
    let settings = BroadcastSettings {
        rate_per_sec: 100.0,
        backoff_base_ms: 150,
        ..in_flight(4)
    };
    let mut run = start(store.clone(), sender.clone(), settings)?;
    run.until_finished(id).await;
    stop_and_join(run).await?;

    let to_2: Vec<Instant> = sender
        .calls()
        .iter()
        .filter(|c| c.0 == 2)
        .map(|c| c.1)
        .collect();
    assert_eq!(to_2.len(), 2, "one retry, then sent");
    let failed_at = sender
        .answers()
        .iter()
        .find(|a| a.0 == 2)
        .map(|a| a.1)
        .ok_or("no answer to chat 2")?;
    let waited = to_2[1].duration_since(failed_at);
    assert!(waited >= 145 * MS, "retried {waited:?} after the error");
    let p = store.progress(id)?;
    assert_eq!((p.sent, p.failed, p.pending), (12, 0, 0));
    assert_eq!(sender.calls().len(), 13);
    Ok(())
}

#[tokio::test]
async fn shutdown_records_every_send_in_flight() -> TestResult {
    let chats: Vec<i64> = (1..=30).collect();
    let store = store_with(&chats)?;
    let id = announce(&store, "hi")?;
    let sender = Arc::new(Scripted {
        delay: 300 * MS,
        ..Scripted::default()
    });
    let settings = BroadcastSettings {
        rate_per_sec: 100.0,
        ..in_flight(4)
    };
    let run = start(store.clone(), sender.clone(), settings)?;
    // Stop while four sends are in flight.
    while sender.calls().len() < 4 {
        tokio::time::sleep(MS).await;
    }
    assert_eq!(sender.peak(), 4);
    let stopped_at = Instant::now();
    stop_and_join(run).await?;
    assert!(
        stopped_at.elapsed() >= 200 * MS,
        "returned before the answers"
    );

    let calls = sender.calls();
    assert_eq!(calls.len(), 4, "no send started after the stop");
    let p = store.progress(id)?;
    assert_eq!(p.sent, 4, "every send in flight was recorded");
    assert_eq!(p.pending, 26);
    assert_eq!(
        store.announcement(id)?.ok_or("missing")?.state,
        AnnouncementState::Queued
    );

    // A new worker sends the rest, and nothing twice.
    let sender2 = Arc::new(Scripted::default());
    let mut run2 = start(store.clone(), sender2.clone(), in_flight(4))?;
    run2.until_finished(id).await;
    stop_and_join(run2).await?;
    let mut all: Vec<i64> = calls
        .iter()
        .chain(sender2.calls().iter())
        .map(|c| c.0)
        .collect();
    all.sort_unstable();
    assert_eq!(all, chats);
    assert_eq!(store.progress(id)?.sent, 30);
    Ok(())
}

#[tokio::test]
async fn refused_text_with_sends_in_flight_aborts_once() -> TestResult {
    let chats: Vec<i64> = (1..=10).collect();
    let store = store_with(&chats)?;
    let id = announce(&store, "<x>")?;
    let sender = Arc::new(Scripted {
        delay: 50 * MS,
        ..Scripted::default()
    });
    for &chat in &chats {
        sender.always(chat, SendError::BadMessage("can't parse entities".into()));
    }
    let settings = BroadcastSettings {
        rate_per_sec: 100.0,
        ..in_flight(4)
    };
    let run = start(store.clone(), sender.clone(), settings)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.announcement(id)?.ok_or("missing")?.state != AnnouncementState::Cancelled {
        assert!(Instant::now() < deadline, "not cancelled");
        tokio::time::sleep(5 * MS).await;
    }
    // Let the other refused sends in flight come back.
    tokio::time::sleep(200 * MS).await;
    let mut events = stop_and_join(run).await?;
    let mut aborted = 0;
    while let Ok(event) = events.try_recv() {
        if let BroadcastEvent::Aborted { report, .. } = event {
            assert_eq!(report.announcement, id);
            assert_eq!(report.state, AnnouncementState::Cancelled);
            aborted += 1;
        }
    }
    assert_eq!(aborted, 1, "one Aborted event");
    let calls = sender.calls().len();
    assert!((1..=4).contains(&calls), "{calls} sends");
    let p = store.progress(id)?;
    assert_eq!(p.sent, 0);
    assert!(p.failed >= 1);
    assert_eq!(p.failed + p.cancelled, 10);
    Ok(())
}

#[tokio::test]
async fn a_send_that_panics_is_left_for_the_next_start() -> TestResult {
    let store = store_with(&[1, 2, 3, 4, 5])?;
    let id = announce(&store, "hi")?;
    let sender = Arc::new(Scripted::default());
    lock(&sender.panics).insert(3);
    let run = start(store.clone(), sender.clone(), in_flight(2))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.progress(id)?.sent < 4 {
        assert!(Instant::now() < deadline, "the others were not sent");
        tokio::time::sleep(5 * MS).await;
    }
    // Not sent again by this worker, which keeps running.
    tokio::time::sleep(100 * MS).await;
    stop_and_join(run).await?;
    assert_eq!(sender.calls().iter().filter(|c| c.0 == 3).count(), 1);
    assert_eq!(store.progress(id)?.pending, 1);

    let sender2 = Arc::new(Scripted::default());
    let mut run2 = start(store.clone(), sender2.clone(), in_flight(2))?;
    run2.until_finished(id).await;
    stop_and_join(run2).await?;
    let again: Vec<i64> = sender2.calls().iter().map(|c| c.0).collect();
    assert_eq!(again, vec![3]);
    Ok(())
}

// ----- several workers on one database ------------------------------------------

#[tokio::test]
async fn two_workers_on_one_store_send_each_delivery_once() -> TestResult {
    let chats: Vec<i64> = (1..=40).collect();
    let store = store_with(&chats)?;
    let id = announce(&store, "hi")?;
    let sender = Arc::new(Scripted {
        delay: 5 * MS,
        ..Scripted::default()
    });
    let settings = BroadcastSettings {
        rate_per_sec: 200.0,
        batch: 3,
        ..fast()
    };
    let a = start(store.clone(), sender.clone(), settings.clone())?;
    let b = start(store.clone(), sender.clone(), settings)?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.progress(id)?.pending > 0 {
        assert!(Instant::now() < deadline, "not delivered");
        tokio::time::sleep(5 * MS).await;
    }
    stop_and_join(a).await?;
    stop_and_join(b).await?;
    let mut sent: Vec<i64> = sender.calls().iter().map(|c| c.0).collect();
    sent.sort_unstable();
    assert_eq!(sent, chats, "every chat once");
    assert_eq!(store.progress(id)?.sent, 40);
    Ok(())
}

#[tokio::test]
async fn a_stopped_worker_gives_its_leases_back() -> TestResult {
    let chats: Vec<i64> = (1..=10).collect();
    let store = store_with(&chats)?;
    let id = announce(&store, "hi")?;
    let sender = Arc::new(Scripted {
        delay: 50 * MS,
        ..Scripted::default()
    });
    let settings = BroadcastSettings {
        batch: 10,
        lease_secs: 3600,
        ..fast()
    };
    let run = start(store.clone(), sender.clone(), settings)?;
    while sender.calls().is_empty() {
        tokio::time::sleep(MS).await;
    }
    stop_and_join(run).await?;
    let p = store.progress(id)?;
    assert!(p.pending >= 8, "{p:?}");
    // Nothing is held any more: another worker gets every row at once.
    let leased = store.lease_pending("other", 100, Duration::from_secs(60))?;
    assert_eq!(leased.len() as u64, p.pending);
    Ok(())
}
