//! Three release `reportbot` processes on one PostgreSQL (a throwaway
//! cluster, `tests/support/pg.rs`) broadcasting to 100,000 subscribers
//! through the local fake Bot API with Telegram's limit raised (as for a
//! self-hosted Bot API server): the aggregate rate, database statements per
//! delivered message (pg_stat_statements: every statement the instances
//! sent, idle polling included) and each instance's peak RSS.
//!
//! Run with `cargo bench --bench instances` (about five minutes).

#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

use reportbot::store::{ChatKind, Language, NewSubscriber, PgStore, Store};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::app::reportbot_command;
use support::botapi::{FakeBotApi, Options};
use support::pg::Cluster;
use support::process::status_kb;

const SUBSCRIBERS: i64 = 100_000;
const INSTANCES: usize = 3;
const RATE: f64 = 400.0;

fn config(max_in_flight: usize) -> String {
    format!(
        "[telegram]\nsend_timeout_secs = 4\n\n[broadcast]\nrate_per_sec = {RATE}\n\
         poll_interval_ms = 500\nprogress_interval_ms = 3000\nmax_in_flight = {max_in_flight}\n"
    )
}

fn mib(kb: u64) -> String {
    format!("{:.1} MiB", kb as f64 / 1024.0)
}

/// Run SQL returning one number, off the async threads.
fn number(url: &str, sql: &'static str) -> i64 {
    let url = url.to_string();
    std::thread::spawn(move || {
        let mut c = support::pg::connect(&url);
        let n = c
            .query_one(sql, &[])
            .map(|r| r.get::<_, i64>(0))
            .unwrap_or_else(|e| panic!("{sql}: {}", support::pg::describe(&e)));
        support::pg::close(c);
        n
    })
    .join()
    .expect("query thread")
}

fn execute(url: &str, sql: &'static str) {
    let url = url.to_string();
    std::thread::spawn(move || {
        let mut c = support::pg::connect(&url);
        c.batch_execute(sql)
            .unwrap_or_else(|e| panic!("{sql}: {}", support::pg::describe(&e)));
        support::pg::close(c);
    })
    .join()
    .expect("query thread");
}

async fn run(db: support::pg::TestDatabase, max_in_flight: usize) {
    let url = db.url.clone();
    let subscribed = Instant::now();
    std::thread::spawn({
        let url = url.clone();
        move || {
            let subs: Vec<NewSubscriber> = (1..=SUBSCRIBERS)
                .map(|chat_id| NewSubscriber {
                    chat_id,
                    kind: ChatKind::Private,
                    language: Language::Zh,
                })
                .collect();
            PgStore::open(&url)
                .and_then(|s| s.subscribe_many(&subs))
                .unwrap_or_else(|e| panic!("subscribe: {e}"))
        }
    })
    .join()
    .expect("subscribe thread");
    println!(
        "subscribed {SUBSCRIBERS} chats in {:.2} s",
        subscribed.elapsed().as_secs_f64()
    );
    let api = FakeBotApi::start_with(Options {
        record_calls: false,
        single_consumer: true,
        ..Options::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config_path = dir.path().join("config.toml");
    std::fs::write(&config_path, config(max_in_flight)).expect("config");
    let mut children = Vec::new();
    for i in 0..INSTANCES {
        let log = std::fs::File::create(dir.path().join(format!("{i}.log"))).expect("log");
        let child = reportbot_command(&api.url(), Path::new(&url))
            .arg("--config")
            .arg(&config_path)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .expect("spawn reportbot");
        children.push(child);
    }
    assert!(
        api.wait_for_poller(Duration::from_secs(30)).await,
        "no instance polls"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;

    execute(
        &url,
        "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset()",
    );
    let out = reportbot_command(&api.url(), Path::new(&url))
        .args(["announce", "百万订阅压测 (benchmark)"])
        .output()
        .await
        .expect("announce");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let started = Instant::now();
    let mut peak = [0u64; INSTANCES];
    let deadline = started + Duration::from_secs(900);
    while api.total_sent() < SUBSCRIBERS as u64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        for (i, c) in children.iter().enumerate() {
            if let Some(pid) = c.id() {
                peak[i] = peak[i].max(status_kb(pid, "VmHWM:"));
            }
        }
    }
    let elapsed = started.elapsed();
    let sent = api.total_sent();
    let statements = number(
        &url,
        "SELECT COALESCE(SUM(calls), 0)::bigint FROM pg_stat_statements
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND query NOT LIKE '%pg_stat_statements%'",
    );
    let per_worker = number(
        &url,
        "SELECT MIN(n)::bigint FROM (SELECT COUNT(*) AS n FROM outbox
                                     WHERE state = 'sent' GROUP BY leased_by) t",
    );
    let rate = sent as f64 / elapsed.as_secs_f64();
    println!(
        "{INSTANCES} instances, max_in_flight {max_in_flight}, {RATE}/s configured: \
         {sent} sent in {:.1} s = {rate:.1}/s ({:+.1} %); smallest share {per_worker}; \
         {:.2} database statements per delivered message; peak RSS {}",
        elapsed.as_secs_f64(),
        (rate / RATE - 1.0) * 100.0,
        statements as f64 / sent.max(1) as f64,
        peak.iter()
            .map(|kb| mib(*kb))
            .collect::<Vec<_>>()
            .join(" / ")
    );
    assert_eq!(sent, SUBSCRIBERS as u64, "everything delivered");
    for c in children {
        support::process::terminate(c, Duration::from_secs(20)).await;
    }
    api.shutdown().await;
    // Dropped off the async threads (it connects to drop the database).
    std::thread::spawn(move || drop(db))
        .join()
        .expect("drop the database");
}

fn main() {
    // SAFETY: before any thread of this process reads the environment.
    unsafe {
        std::env::set_var("NO_PROXY", "127.0.0.1,localhost,::1");
        std::env::set_var("no_proxy", "127.0.0.1,localhost,::1");
    }
    let cluster = Cluster::start().unwrap_or_else(|e| panic!("{e}"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let db = cluster.server().fresh_database();
    runtime.block_on(run(db, 1));
    drop(cluster);
}
