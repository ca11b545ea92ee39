//! The release bot as a process, against the local fake Bot API server:
//! start-up time, memory, reply latency for a burst of users, a burst of
//! 1,000 users under Telegram's rate limits, broadcast rate and memory at
//! 10,000 and 100,000 subscribers, and resume time after kill -9.
//!
//! Run with `cargo bench --bench bot` (takes about eight minutes), or only
//! some parts: `cargo bench --bench bot -- interactive burst` (parts:
//! `interactive`, `burst`, `broadcast`).

#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

use reportbot::store::{ChatKind, Language, NewSubscriber, SqliteStore, Store};
use std::time::{Duration, Instant};
use support::app::{AppOptions, TestApp, reportbot_command, spawn_app_with};
use support::botapi::{ChatSpec, Options, UserSpec};
use support::process::status_kb;

fn mib(kb: u64) -> String {
    format!("{:.1} MiB", kb as f64 / 1024.0)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn interactive() {
    let started = Instant::now();
    let app = spawn_app_with(AppOptions::default()).await;
    let startup = started.elapsed();
    let pid = app.pid().expect("running");
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!(
        "start-up to first getUpdates: {:.0} ms (process spawn included)",
        startup.as_secs_f64() * 1e3
    );
    println!("idle: RSS {}", mib(status_kb(pid, "VmRSS:")));
    let api = &app.api;
    let questions = [
        "个人一等奖是谁",
        "李斌获得了什么奖",
        "工行获得了哪些奖",
        "怎么防止老人被骗",
        "What did Li Bin win?",
    ];
    for i in 0..100u64 {
        let user = UserSpec::new(10_000 + i, "U");
        api.send_text(
            &ChatSpec::private(10_000 + i as i64),
            &user,
            questions[i as usize % questions.len()],
        );
    }
    api.wait_for_total_sent(100, Duration::from_secs(30)).await;
    println!(
        "after 100 answers: RSS {}, peak RSS {}",
        mib(status_kb(pid, "VmRSS:")),
        mib(status_kb(pid, "VmHWM:"))
    );
    // A burst of 60 users at once: time from the update being queued to the reply.
    let base = api.total_sent();
    let mut injected = Vec::new();
    for i in 0..60u64 {
        let chat = 20_000 + i as i64;
        let user = UserSpec::new(chat as u64, "B");
        injected.push((chat, Instant::now()));
        api.send_text(
            &ChatSpec::private(chat),
            &user,
            questions[i as usize % questions.len()],
        );
    }
    api.wait_for_total_sent(base + 60, Duration::from_secs(30))
        .await;
    let mut lat: Vec<Duration> = injected
        .iter()
        .filter_map(|(chat, at)| {
            api.sent_messages(*chat)
                .first()
                .map(|m| m.at.duration_since(*at))
        })
        .collect();
    lat.sort();
    println!(
        "burst of 60 users: update-to-reply p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} replies)",
        pct(&lat, 0.5).as_secs_f64() * 1e3,
        pct(&lat, 0.99).as_secs_f64() * 1e3,
        lat.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        lat.len()
    );
    println!(
        "peak RSS after the burst: {}",
        mib(status_kb(pid, "VmHWM:"))
    );
}

/// 1,000 users, one question each, at once, while the server enforces
/// Telegram's limits (1 message a second per chat, 30 a second overall):
/// everybody answered, how long it takes, the bot's peak memory, and that
/// the bot caused no 429.
async fn burst(users: u64, config: Option<&str>) {
    let app = spawn_app_with(AppOptions {
        api: Options {
            per_chat_per_sec: Some(1),
            global_per_sec: Some(30),
            ..Options::default()
        },
        config: config.map(str::to_string),
        ..AppOptions::default()
    })
    .await;
    let pid = app.pid().expect("running");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = status_kb(pid, "VmRSS:");
    let api = app.api.handle();
    let questions = [
        "个人一等奖是谁",
        "李斌获得了什么奖",
        "工行获得了哪些奖",
        "怎么防止老人被骗",
        "What did Li Bin win?",
    ];
    let started = Instant::now();
    for i in 0..users {
        let chat = 300_000 + i as i64;
        let user = UserSpec::new(chat as u64, "B");
        api.send_text(
            &ChatSpec::private(chat),
            &user,
            questions[i as usize % questions.len()],
        );
    }
    let mut peak_sampled = 0;
    let deadline = Instant::now() + Duration::from_secs(users / 10 + 60);
    while api.total_sent() < users && Instant::now() < deadline {
        peak_sampled = peak_sampled.max(status_kb(pid, "VmRSS:"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = started.elapsed();
    let msgs = api.all_sent_messages();
    let mut chats: Vec<i64> = msgs.iter().map(|m| m.chat_id).collect();
    chats.sort_unstable();
    chats.dedup();
    let mut lat: Vec<Duration> = msgs.iter().map(|m| m.at.duration_since(started)).collect();
    lat.sort();
    println!(
        "burst of {users} users under Telegram's limits{}: {} of {users} answered in {:.1} s ({:.1}/s), reply after p50 {:.1} s / p99 {:.1} s, 429s caused: {}, RSS idle {}, peak RSS {} (VmHWM)",
        config.map_or(String::new(), |c| format!(
            " ({})",
            c.trim().replace('\n', " ")
        )),
        chats.len(),
        took.as_secs_f64(),
        chats.len() as f64 / took.as_secs_f64(),
        pct(&lat, 0.5).as_secs_f64(),
        pct(&lat, 0.99).as_secs_f64(),
        api.violations(),
        mib(idle),
        mib(status_kb(pid, "VmHWM:").max(peak_sampled)),
    );
}

async fn broadcast(subscribers: i64, rate: f64, in_flight: usize, kill_after: Option<u64>) {
    let opts = AppOptions {
        api: Options {
            record_calls: false,
            ..Options::default()
        },
        config: Some(format!(
            "[broadcast]\nrate_per_sec = {rate}\nper_chat_interval_ms = 1000\npoll_interval_ms = 200\nmax_in_flight = {in_flight}\n"
        )),
        ..AppOptions::default()
    };
    let mut app: TestApp = spawn_app_with(opts).await;
    {
        let store = SqliteStore::open(&app.db).expect("db");
        let subs: Vec<NewSubscriber> = (0..subscribers)
            .map(|i| NewSubscriber {
                chat_id: 1_000_000 + i,
                kind: ChatKind::Private,
                language: Language::Zh,
            })
            .collect();
        store.subscribe_many(&subs).expect("subscribe");
    }
    let out = reportbot_command(&app.api.url(), &app.db)
        .args(["announce", "基准测试公告(测试数据)"])
        .output()
        .await
        .expect("announce");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let api = app.api.handle();
    let n = subscribers as u64;
    let mut resume = None;
    if let Some(k) = kill_after {
        api.wait_for_total_sent(k, Duration::from_secs(120)).await;
        app.kill_hard().await;
        let sent_at_kill = api.total_sent();
        let t = Instant::now();
        app.start().await;
        api.wait_for_total_sent(sent_at_kill + 1, Duration::from_secs(60))
            .await;
        resume = Some(t.elapsed());
    }
    let mut peak = 0;
    let deadline = Instant::now() + Duration::from_secs_f64(n as f64 / rate * 2.0 + 30.0);
    while api.total_sent() < n && Instant::now() < deadline {
        if let Some(pid) = app.pid() {
            peak = peak.max(status_kb(pid, "VmRSS:"));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let msgs = api.all_sent_messages();
    let mut chats: Vec<i64> = msgs.iter().map(|m| m.chat_id).collect();
    chats.sort_unstable();
    let total = chats.len();
    chats.dedup();
    // Achieved rate over the steady part (skip the first and last 1 %).
    let mut times: Vec<Instant> = msgs.iter().map(|m| m.at).collect();
    times.sort();
    let (lo, hi) = (times.len() / 100, times.len() - 1 - times.len() / 100);
    let achieved = (hi - lo) as f64 / times[hi].duration_since(times[lo]).as_secs_f64();
    println!(
        "broadcast to {subscribers} (max_in_flight {in_flight}): configured {rate}/s, achieved {achieved:.1}/s ({:+.1} %), delivered to {} chats ({} messages), peak RSS {}{}",
        (achieved / rate - 1.0) * 100.0,
        chats.len(),
        total,
        mib(peak),
        resume.map_or(String::new(), |d| format!(
            ", resumed {:.0} ms after restart (kill -9 after {})",
            d.as_secs_f64() * 1e3,
            kill_after.unwrap_or(0)
        ))
    );
}

fn main() {
    // SAFETY of the benchmark's network use: everything is on 127.0.0.1.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let parts: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let run = |part: &str| parts.is_empty() || parts.iter().any(|p| p == part);
    rt.block_on(async {
        if run("interactive") {
            interactive().await;
        }
        if run("burst") {
            burst(1_000, None).await;
        }
        if run("burst-in-progress") {
            for n in [16, 256] {
                burst(1_000, Some(&format!("[telegram]\nmax_in_progress = {n}\n"))).await;
            }
        }
        if !run("broadcast") {
            return;
        }
        // At Telegram's own pace (the product default).
        broadcast(1_000, 25.0, 1, None).await;
        // "Limit raised" on the local server: a rate this 2-core machine can
        // carry with one send at a time (the default), the same with a kill -9
        // in the middle, and the machine's ceiling with 4 sends in flight.
        broadcast(10_000, 400.0, 1, None).await;
        broadcast(10_000, 400.0, 1, Some(3_000)).await;
        broadcast(100_000, 400.0, 1, None).await;
        broadcast(10_000, 1000.0, 4, None).await;
    });
}
