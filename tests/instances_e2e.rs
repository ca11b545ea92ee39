//! Several instances on one PostgreSQL (issue 11), end to end: three real
//! `reportbot` processes, a real PostgreSQL started by the tests
//! (`tests/support/pg.rs`) and the fake Bot API with Telegram's limits
//! enforced strictly (30 messages/s overall, 1/s per chat, a sliding
//! one-second window; one getUpdates consumer, a second one is a 409).
//!
//! Run with `cargo test --test instances_e2e -- --nocapture` to see the
//! measured numbers.

mod support;

use reportbot::store::{Language, NewSubscriber, PgStore, Store};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::app::reportbot_command;
use support::botapi::{BotApiHandle, ChatSpec, FakeBotApi, Options, SentMessage, UserSpec};
use support::pg::{Cluster, TestDatabase};
use tokio::process::Child;

/// The default rate and send time limit; a lease short enough to keep the
/// kill test short.
const CONFIG: &str = "[telegram]\npolling_timeout_secs = 2\n\n\
                      [broadcast]\nrate_per_sec = 25.0\npoll_interval_ms = 200\n\
                      progress_interval_ms = 1000\nlease_secs = 5\n";
const RATE: f64 = 25.0;
const LEASE: Duration = Duration::from_secs(5);

fn strict_api() -> Options {
    Options {
        global_per_sec: Some(30),
        per_chat_per_sec: Some(1),
        single_consumer: true,
        // Thousands of calls: keep only counters and sent messages.
        record_calls: false,
        ..Options::default()
    }
}

/// One `reportbot` process.
struct Instance {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Instance {
    /// Start one with the config file `config` (written once for all: a
    /// file rewritten while another process reads it could read empty).
    fn start(api: &FakeBotApi, db_url: &str, dir: &Path, config: &Path, name: &str) -> Instance {
        let log = dir.join(format!("{name}.log"));
        let mut cmd = reportbot_command(&api.url(), Path::new(db_url));
        // JSON lines: the test reads fields (the worker's name) from the log.
        cmd.env("REPORTBOT_LOG_FORMAT", "json")
            .arg("--config")
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).expect("log file")))
            .kill_on_drop(true);
        Instance {
            name: name.to_string(),
            child: Some(cmd.spawn().expect("spawn reportbot")),
            log,
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().and_then(Child::id).unwrap_or(0)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn is_poller(&self) -> bool {
        let log = self.log();
        log.matches("elected to poll Telegram").count()
            > log.matches("lost the poller lock").count()
    }

    /// This process's delivery worker, as named on the rows it leases.
    fn worker(&self) -> Option<String> {
        self.log().lines().find_map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).ok()?;
            Some(v.get("worker")?.as_str()?.to_string())
        })
    }

    async fn kill_9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
        }
    }

    async fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            support::process::terminate(child, Duration::from_secs(15)).await;
        }
    }
}

struct Fleet {
    api: FakeBotApi,
    instances: Vec<Instance>,
    dir: tempfile::TempDir,
}

impl Fleet {
    async fn start(db_url: &str, n: usize) -> Fleet {
        let api = FakeBotApi::start_with(strict_api()).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("config.toml");
        std::fs::write(&config, CONFIG).expect("write config");
        let instances = (0..n)
            .map(|i| Instance::start(&api, db_url, dir.path(), &config, &format!("instance-{i}")))
            .collect();
        let fleet = Fleet {
            api,
            instances,
            dir,
        };
        // Every instance is up (its worker named in its log) and one polls.
        let up = fleet
            .api
            .wait_until(Duration::from_secs(30), |api| {
                api.polls_in_flight() > 0 && fleet.instances.iter().all(|i| i.worker().is_some())
            })
            .await;
        assert!(up, "the instances did not start:\n{}", fleet.logs());
        fleet
    }

    fn logs(&self) -> String {
        self.instances
            .iter()
            .map(|i| format!("--- {} (pid {}) ---\n{}", i.name, i.pid(), i.log()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn pollers(&self) -> Vec<usize> {
        (0..self.instances.len())
            .filter(|&i| self.instances[i].child.is_some() && self.instances[i].is_poller())
            .collect()
    }

    async fn stop(mut self) {
        for i in &mut self.instances {
            i.stop().await;
        }
        let _ = &self.dir;
        self.api.shutdown().await;
    }
}

fn subscribe(db_url: &str, chats: &[i64]) {
    let url = db_url.to_string();
    let subs: Vec<NewSubscriber> = chats
        .iter()
        .map(|&chat_id| NewSubscriber::private(chat_id, Language::Zh))
        .collect();
    std::thread::spawn(move || -> Result<u64, String> {
        PgStore::open(&url)
            .and_then(|s| s.subscribe_many(&subs))
            .map_err(|e| e.to_string())
    })
    .join()
    .expect("subscribe thread")
    .expect("subscribe");
}

/// Queue an announcement the way an operator does: `reportbot announce`.
async fn announce(api: &FakeBotApi, db_url: &str, text: &str) {
    let out = reportbot_command(&api.url(), Path::new(db_url))
        .args(["announce", text])
        .output()
        .await
        .expect("run reportbot announce");
    assert!(
        out.status.success(),
        "reportbot announce: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sent copies of `text` per chat.
fn copies(api: &BotApiHandle, text: &str) -> HashMap<i64, Vec<SentMessage>> {
    let mut by_chat: HashMap<i64, Vec<SentMessage>> = HashMap::new();
    for m in api.all_sent_messages() {
        if m.text == text {
            by_chat.entry(m.chat_id).or_default().push(m);
        }
    }
    by_chat
}

async fn wait_delivered(api: &BotApiHandle, chats: &[i64], text: &str, within: Duration) -> bool {
    let text = text.to_string();
    api.wait_until(within, |api| {
        let got = copies(api, &text);
        chats.iter().all(|c| got.contains_key(c))
    })
    .await
}

/// Sends per worker (the outbox keeps which worker sent each row).
fn sent_by_worker(db_url: &str) -> HashMap<String, u64> {
    let url = db_url.to_string();
    std::thread::spawn(move || {
        let mut c = support::pg::connect(&url);
        let rows = c
            .query(
                "SELECT leased_by, COUNT(*) FROM outbox WHERE state = 'sent' GROUP BY leased_by",
                &[],
            )
            .expect("count sends per worker");
        let out = rows
            .iter()
            .map(|r| {
                (
                    r.get::<_, Option<String>>(0).unwrap_or_default(),
                    r.get::<_, i64>(1) as u64,
                )
            })
            .collect();
        support::pg::close(c);
        out
    })
    .join()
    .expect("query thread")
}

fn chat_range(first: i64, n: usize) -> Vec<i64> {
    (first..first + n as i64).collect()
}

fn fresh_db() -> TestDatabase {
    support::pg::fresh_database()
}

// ----- 1. one paced broadcast over three instances ------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_one_paced_broadcast() {
    const N: usize = 300;
    let db = tokio::task::block_in_place(fresh_db);
    let chats = chat_range(500_001, N);
    tokio::task::block_in_place(|| subscribe(&db.url, &chats));
    let fleet = Fleet::start(&db.url, 3).await;
    let text = "第三届大赛报名开始 (three instances)";
    announce(&fleet.api, &db.url, text).await;
    let started = Instant::now();
    assert!(
        wait_delivered(&fleet.api, &chats, text, Duration::from_secs(60)).await,
        "not delivered within 60 s:\n{}",
        fleet.logs()
    );
    let got = copies(&fleet.api, text);
    let dups: usize = got.values().map(|v| v.len() - 1).sum();
    assert_eq!(dups, 0, "every chat exactly once");
    let mut times: Vec<Instant> = got.values().flatten().map(|m| m.at).collect();
    times.sort();
    let span = times[times.len() - 1].duration_since(times[0]);
    let rate = (times.len() - 1) as f64 / span.as_secs_f64();
    // The busiest second (a sliding window), over all instances.
    let busiest = times
        .iter()
        .enumerate()
        .map(|(i, t)| {
            times[i..]
                .iter()
                .take_while(|u| u.duration_since(*t) < Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0);
    let shares = sent_by_worker(&db.url);
    println!(
        "three instances, {N} chats: {rate:.2}/s aggregate (configured {RATE}), busiest second \
         {busiest}, 429s {}, shares {shares:?}, done {:.1} s after queueing",
        fleet.api.violations(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(fleet.api.violations(), 0, "no 429 from the strict limiter");
    assert!(
        (rate - RATE).abs() <= RATE * 0.10,
        "aggregate rate {rate:.2}/s is not within 10 % of {RATE}/s"
    );
    assert!(busiest <= 30, "{busiest} in one second");
    for instance in &fleet.instances {
        let worker = instance.worker().unwrap_or_default();
        let share = shares.get(&worker).copied().unwrap_or(0);
        assert!(
            share >= (N / 10) as u64,
            "{} sent only {share} of {N}: {shares:?}",
            instance.name
        );
    }
    assert_eq!(shares.values().sum::<u64>(), N as u64);

    // One poller among them: a question is answered once, and nobody was
    // told 409.
    assert_eq!(
        fleet.pollers().len(),
        1,
        "{:?}\n{}",
        fleet.pollers(),
        fleet.logs()
    );
    let alice = UserSpec::new(900_001, "Alice").lang("zh-hans");
    fleet
        .api
        .send_text(&ChatSpec::private(900_001), &alice, "个人一等奖是谁");
    let replies = fleet
        .api
        .wait_for_messages(900_001, 1, Duration::from_secs(10))
        .await;
    assert_eq!(replies.len(), 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fleet.api.sent_messages(900_001).len(), 1, "answered once");
    assert_eq!(fleet.api.conflicts(), 0, "no 409 Conflict");
    assert!(
        fleet.api.rejections().is_empty(),
        "{:?}",
        fleet.api.rejections()
    );
    fleet.stop().await;
}

// ----- 2. kill -9 of one instance mid-broadcast -----------------------------------

/// Rows a worker holds now, and when the last of their leases ends (by the
/// database clock, as milliseconds from now).
fn held_by(db_url: &str, worker: &str) -> (Vec<i64>, i64) {
    let (url, worker) = (db_url.to_string(), worker.to_string());
    std::thread::spawn(move || {
        let mut c = support::pg::connect(&url);
        let rows = c
            .query(
                "SELECT chat_id, lease_until_ms - reportbot_now_ms() FROM outbox
                 WHERE state = 'pending' AND leased_by = $1",
                &[&worker],
            )
            .expect("rows held");
        support::pg::close(c);
        let chats = rows.iter().map(|r| r.get::<_, i64>(0)).collect();
        let left = rows.iter().map(|r| r.get::<_, i64>(1)).max().unwrap_or(0);
        (chats, left)
    })
    .join()
    .expect("query thread")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_one_instance_loses_nothing_and_the_others_take_over() {
    const N: usize = 300;
    let db = tokio::task::block_in_place(fresh_db);
    let chats = chat_range(600_001, N);
    tokio::task::block_in_place(|| subscribe(&db.url, &chats));
    let mut fleet = Fleet::start(&db.url, 3).await;
    let text = "kill -9 mid-broadcast";
    announce(&fleet.api, &db.url, text).await;
    let sent = fleet
        .api
        .wait_for_total_sent(80, Duration::from_secs(30))
        .await;
    assert!(sent >= 80, "the broadcast did not start:\n{}", fleet.logs());

    // Kill one that is not the poller (the takeover of polling is the next test).
    let victim = (0..3).find(|i| !fleet.pollers().contains(i)).unwrap_or(0);
    let worker = fleet.instances[victim].worker().unwrap_or_default();
    fleet.instances[victim].kill_9().await;
    let killed_at = Instant::now();
    let (held, lease_left_ms) = tokio::task::block_in_place(|| held_by(&db.url, &worker));
    println!(
        "killed {} holding {} rows, lease ends in {lease_left_ms} ms",
        fleet.instances[victim].name,
        held.len()
    );
    assert!(lease_left_ms <= LEASE.as_millis() as i64 + 100);

    // Its rows are sent by the others within the lease + 2 s.
    let deadline = Duration::from_millis(lease_left_ms.max(0) as u64) + Duration::from_secs(2);
    let taken_over = wait_delivered(&fleet.api, &held, text, deadline).await;
    let took = killed_at.elapsed();
    assert!(
        taken_over,
        "rows of the killed instance not sent within the lease + 2 s ({deadline:?}):\n{}",
        fleet.logs()
    );
    assert!(
        wait_delivered(&fleet.api, &chats, text, Duration::from_secs(60)).await,
        "not everything delivered:\n{}",
        fleet.logs()
    );
    let done = killed_at.elapsed();
    let got = copies(&fleet.api, text);
    let dups: usize = got.values().map(|v| v.len() - 1).sum();
    println!(
        "kill -9: {} held rows sent {:.1} s after the kill; all done {:.1} s after; {dups} duplicate(s); 429s {}",
        held.len(),
        took.as_secs_f64(),
        done.as_secs_f64(),
        fleet.api.violations()
    );
    assert!(chats.iter().all(|c| got.contains_key(c)), "nothing lost");
    assert!(dups <= 1, "{dups} duplicates (max_in_flight = 1)");
    assert_eq!(fleet.api.violations(), 0);
    fleet.stop().await;
}

// ----- 3. the poller dies: another takes over, no 409 storm -----------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poller_dies_and_another_instance_takes_over_polling() {
    let db = tokio::task::block_in_place(fresh_db);
    let mut fleet = Fleet::start(&db.url, 3).await;
    // A few seconds of three instances: one polls, nobody else tries.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pollers = fleet.pollers();
    assert_eq!(
        pollers.len(),
        1,
        "one poller: {pollers:?}\n{}",
        fleet.logs()
    );
    assert_eq!(fleet.api.conflicts(), 0, "no 409 while one polls");
    let bob = UserSpec::new(900_002, "Bob").lang("en");
    let chat = ChatSpec::private(900_002);
    fleet
        .api
        .send_text(&chat, &bob, "Who won the first prize in the banking group?");
    let first = fleet
        .api
        .wait_for_messages(900_002, 1, Duration::from_secs(10))
        .await;
    assert_eq!(first.len(), 1);

    // The poller has confirmed the update (asked for the next ones): an
    // update fetched but not confirmed when a poller dies is fetched again
    // by the next one, as Telegram does (and as after any restart).
    assert!(
        fleet.api.wait_for_no_pending(Duration::from_secs(10)).await,
        "update not confirmed"
    );
    let polls_before = fleet.api.polls_started();
    fleet.instances[pollers[0]].kill_9().await;
    let killed_at = Instant::now();
    let took_over = fleet
        .api
        .wait_until(Duration::from_secs(10), |api| {
            api.polls_started() > polls_before && api.polls_in_flight() > 0
        })
        .await;
    let after = killed_at.elapsed();
    println!(
        "the poller was killed; another instance polls {:.2} s later",
        after.as_secs_f64()
    );
    assert!(
        took_over && after < Duration::from_secs(5),
        "took over after {after:?}:\n{}",
        fleet.logs()
    );
    // Users are answered by the new poller, once.
    fleet.api.send_text(&chat, &bob, "What did Li Bin win?");
    let second = fleet
        .api
        .wait_for_messages(900_002, 2, Duration::from_secs(10))
        .await;
    assert_eq!(second.len(), 2, "{}", fleet.logs());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let texts: Vec<String> = fleet
        .api
        .sent_messages(900_002)
        .iter()
        .map(|m| m.visible_text())
        .collect();
    assert_eq!(texts.len(), 2, "each question answered once: {texts:#?}");
    assert_eq!(fleet.pollers().len(), 1, "{}", fleet.logs());
    // The dead poller's own long poll may be ended by the new one (one 409
    // to nobody); a storm would be many.
    assert!(
        fleet.api.conflicts() <= 1,
        "{} conflicts",
        fleet.api.conflicts()
    );
    fleet.stop().await;
}

// ----- 4. PostgreSQL restarted mid-broadcast --------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_restarted_mid_broadcast_loses_nothing() {
    const N: usize = 200;
    // A server of its own: it is restarted.
    let cluster =
        tokio::task::block_in_place(|| Cluster::start().unwrap_or_else(|e| panic!("{e}")));
    let db = tokio::task::block_in_place(|| cluster.server().fresh_database());
    let chats = chat_range(700_001, N);
    tokio::task::block_in_place(|| subscribe(&db.url, &chats));
    let fleet = Fleet::start(&db.url, 2).await;
    let text = "PostgreSQL restarted mid-broadcast";
    announce(&fleet.api, &db.url, text).await;
    let sent = fleet
        .api
        .wait_for_total_sent(50, Duration::from_secs(30))
        .await;
    assert!(sent >= 50, "the broadcast did not start:\n{}", fleet.logs());
    let restart_at = Instant::now();
    tokio::task::block_in_place(|| cluster.restart());
    println!(
        "PostgreSQL restarted in {:.1} s",
        restart_at.elapsed().as_secs_f64()
    );
    assert!(
        wait_delivered(&fleet.api, &chats, text, Duration::from_secs(90)).await,
        "not everything delivered after the restart:\n{}\nserver log:\n{}",
        fleet.logs(),
        cluster.log()
    );
    let got = copies(&fleet.api, text);
    let dups: usize = got.values().map(|v| v.len() - 1).sum();
    println!(
        "PostgreSQL restart: all {N} delivered {:.1} s after the restart; {dups} duplicate(s)",
        restart_at.elapsed().as_secs_f64()
    );
    assert!(dups <= fleet.instances.len(), "{dups} duplicates");
    assert_eq!(fleet.api.violations(), 0);
    // The announcement is finished in the database too.
    let url = db.url.clone();
    let done = tokio::task::block_in_place(|| {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut c = support::pg::connect(&url);
        let mut done = false;
        while !done && Instant::now() < deadline {
            done = c
                .query_one(
                    "SELECT COUNT(*) FROM announcements WHERE state = 'done'",
                    &[],
                )
                .is_ok_and(|r| r.get::<_, i64>(0) == 1);
            std::thread::sleep(Duration::from_millis(100));
        }
        support::pg::close(c);
        done
    });
    assert!(done, "announcement not marked done");
    fleet.stop().await;
    drop(db);
    drop(cluster);
}

// ----- 5. the command line against PostgreSQL ---------------------------------------

async fn cli(db_url: &str, args: &[&std::ffi::OsStr]) -> (bool, String) {
    // No bot runs here: the commands only use the database.
    let out = reportbot_command("http://127.0.0.1:9", Path::new(db_url))
        .args(args)
        .output()
        .await
        .expect("run reportbot");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_works_against_postgres() {
    use std::ffi::OsStr;
    let db = tokio::task::block_in_place(fresh_db);
    let (ok, out) = cli(&db.url, &[OsStr::new("subscribers")]).await;
    assert!(ok && out.contains("active: 0"), "{out}");
    tokio::task::block_in_place(|| subscribe(&db.url, &[11, 12, 13]));
    let (ok, out) = cli(&db.url, &[OsStr::new("subscribers")]).await;
    assert!(ok && out.contains("active: 3"), "{out}");

    let (ok, out) = cli(
        &db.url,
        &[OsStr::new("announce"), OsStr::new("新一届大赛报名开始")],
    )
    .await;
    assert!(ok && out.contains("for 3 subscribers"), "{out}");

    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/sources/2022-11-zhejiang-banking-insurance-news.txt");
    let import = [
        OsStr::new("import"),
        source.as_os_str(),
        OsStr::new("--out"),
        data.as_os_str(),
        OsStr::new("--publish"),
    ];
    let (ok, out) = cli(&db.url, &import).await;
    assert!(ok && out.contains("for 3 subscribers"), "{out}");
    let (ok, out) = cli(&db.url, &import).await;
    assert!(
        ok && out.contains("announced before"),
        "published once: {out}"
    );

    let url = db.url.clone();
    let queued = tokio::task::block_in_place(|| {
        let mut c = support::pg::connect(&url);
        let n: i64 = c
            .query_one(
                "SELECT COUNT(*) FROM outbox o JOIN announcements a ON a.id = o.announcement_id
                 WHERE a.state = 'queued'",
                &[],
            )
            .map(|r| r.get(0))
            .unwrap_or(-1);
        support::pg::close(c);
        n
    });
    assert_eq!(queued, 6, "two announcements for three subscribers each");

    // A PostgreSQL URL with a typo stops with the setting's name.
    let (ok, out) = cli(
        "postgres://bot@127.0.0.1:notaport/x",
        &[OsStr::new("subscribers")],
    )
    .await;
    assert!(!ok && out.contains("REPORTBOT_DB"), "{out}");
}
