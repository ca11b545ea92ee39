//! Webhook against polling on one machine (issue 12): release `reportbot`
//! processes on one PostgreSQL (a throwaway cluster, `tests/support/pg.rs`)
//! answering 1,000 questions from 1,000 users that arrive at 200 a second
//! through the local fake Bot API. Per set-up: CPU seconds per 1,000
//! answers (all instances together, from /proc), update-to-reply p50/p99,
//! and the highest peak RSS of an instance. With 1 and 3 instances; in
//! polling mode only the elected instance polls and answers.
//!
//! Pacing is opened up (no per-chat interval, 1,000 sends/s, as a local Bot
//! API server allows) so the numbers are the bot's, not Telegram's limits.
//!
//! Run with `cargo bench --bench webhook` (about a minute after the build).

#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::app::reportbot_command;
use support::botapi::{FakeBotApi, LoadBalancer, Options, UserSpec};
use support::pg::Cluster;
use support::process::{cpu_ticks, listen_addr, status_kb};
use tokio::process::Child;

const QUESTIONS: u64 = 1000;
const PER_SEC: u64 = 200;
const SECRET: &str = "bench-secret";
const CONFIG: &str = "[telegram]\nchat_interval_ms = 0\nsends_per_sec = 1000\n";

async fn ready(addr: SocketAddr) -> bool {
    let c = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    matches!(c.get(format!("http://{addr}/readyz")).send().await, Ok(r) if r.status().is_success())
}

async fn run(cluster: &Cluster, webhook: bool, n: usize) {
    let db = tokio::task::block_in_place(|| cluster.server().fresh_database());
    let api = FakeBotApi::start_with(Options {
        record_calls: false,
        ..Options::default()
    })
    .await;
    let lb = LoadBalancer::start(Vec::new()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("config.toml");
    std::fs::write(&config, CONFIG).expect("config");
    let hook = format!("{}/tg/hook", lb.url());
    let mut children: Vec<Child> = Vec::new();
    let mut addrs = Vec::new();
    for i in 0..n {
        let log = dir.path().join(format!("{i}.log"));
        let mut cmd = reportbot_command(&api.url(), Path::new(&db.url));
        cmd.arg("--config")
            .arg(&config)
            .env("RUST_LOG", "warn,reportbot::http=info")
            .env("REPORTBOT_LOG_FORMAT", "json")
            .env("REPORTBOT_LISTEN", "127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).expect("log")))
            .kill_on_drop(true);
        if webhook {
            cmd.env("REPORTBOT_WEBHOOK_URL", &hook)
                .env("REPORTBOT_WEBHOOK_SECRET", SECRET);
        }
        children.push(cmd.spawn().expect("spawn reportbot"));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(a) = listen_addr(&log)
                && ready(a).await
            {
                addrs.push(a);
                break;
            }
            assert!(Instant::now() < deadline, "instance {i} never got ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    if webhook {
        lb.set_backends(addrs);
        let out = reportbot_command(&api.url(), Path::new(&db.url))
            .env("REPORTBOT_WEBHOOK_URL", &hook)
            .env("REPORTBOT_WEBHOOK_SECRET", SECRET)
            .args(["webhook", "set"])
            .output()
            .await
            .expect("webhook set");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        assert!(
            api.wait_for_poller(Duration::from_secs(30)).await,
            "nobody polls"
        );
    }
    // Warm up (first answers build caches; the elected poller settles).
    let warm = UserSpec::new(1, "warm").lang("zh-hans");
    api.send_text(&warm.private_chat(), &warm, "个人一等奖是谁");
    api.wait_for_messages(1, 1, Duration::from_secs(20)).await;
    let pids: Vec<u32> = children.iter().filter_map(Child::id).collect();
    let cpu_before: u64 = pids.iter().map(|p| cpu_ticks(*p)).sum();
    let questions = [
        "个人一等奖是谁",
        "李彬得了什么奖",
        "团体二等奖有哪些",
        "大赛什么时候举行",
    ];
    let mut asked = Vec::with_capacity(QUESTIONS as usize);
    let started = Instant::now();
    for i in 0..QUESTIONS {
        let at = started + Duration::from_micros(i * 1_000_000 / PER_SEC);
        tokio::time::sleep_until(at.into()).await;
        let id = 1_000_000 + i;
        let u = UserSpec::new(id, "用户").lang("zh-hans");
        api.send_text(
            &u.private_chat(),
            &u,
            questions[i as usize % questions.len()],
        );
        asked.push((id as i64, Instant::now()));
    }
    let all = api
        .wait_until(Duration::from_secs(120), |h| h.total_sent() > QUESTIONS)
        .await;
    assert!(all, "only {} of {QUESTIONS} answered", api.total_sent() - 1);
    let cpu_after: u64 = pids.iter().map(|p| cpu_ticks(*p)).sum();
    let peak = pids
        .iter()
        .map(|p| status_kb(*p, "VmHWM:"))
        .max()
        .unwrap_or(0);
    let mut lat: Vec<Duration> = asked
        .iter()
        .filter_map(|(chat, t)| {
            Some(
                api.sent_messages(*chat)
                    .first()?
                    .at
                    .saturating_duration_since(*t),
            )
        })
        .collect();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "{:<8} {n} instance{}: CPU {:.2} s per 1,000 answers, update-to-reply p50 {:.1} ms, \
         p99 {:.1} ms, peak RSS {:.1} MiB",
        if webhook { "webhook" } else { "polling" },
        if n == 1 { " " } else { "s" },
        (cpu_after - cpu_before) as f64 / 100.0 * 1000.0 / QUESTIONS as f64,
        pct(0.50).as_secs_f64() * 1000.0,
        pct(0.99).as_secs_f64() * 1000.0,
        peak as f64 / 1024.0
    );
    for c in children {
        support::process::terminate(c, Duration::from_secs(20)).await;
    }
    api.shutdown().await;
    std::thread::spawn(move || drop(db))
        .join()
        .expect("drop db");
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
    for (webhook, n) in [(false, 1), (true, 1), (false, 3), (true, 3)] {
        runtime.block_on(run(&cluster, webhook, n));
    }
    drop(cluster);
}
