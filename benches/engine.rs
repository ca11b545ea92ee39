//! Answering speed, in process. Run with `cargo bench --bench engine`.
//!
//! First it times every question of the test question set one by one
//! (many rounds) and prints p50 / p99 / max per question and questions per
//! second on one core; then criterion measures a few typical questions.

use criterion::Criterion;
use reportbot::Engine;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Every single question of both question sets (names, prizes, facts, tips
/// and the question forms: yes/no, counts, comparisons, several at once).
fn questions() -> Vec<String> {
    let text = [
        include_str!("../tests/questions/cases.jsonl"),
        include_str!("../tests/questions/forms.jsonl"),
    ]
    .concat();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("q").and_then(|q| q.as_str()).map(str::to_string))
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn latency_report(engine: &Engine, qs: &[String]) {
    // Warm up caches and the allocator.
    for q in qs {
        black_box(engine.ask(q));
    }
    let rounds = 50;
    let mut samples = Vec::with_capacity(qs.len() * rounds);
    let started = Instant::now();
    for _ in 0..rounds {
        for q in qs {
            let t = Instant::now();
            black_box(engine.ask(black_box(q)));
            samples.push(t.elapsed());
        }
    }
    let total = started.elapsed();
    samples.sort_unstable();
    println!(
        "engine.ask over {} questions x {rounds} rounds: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs, {:.0} questions/s on one thread",
        qs.len(),
        percentile(&samples, 0.50).as_secs_f64() * 1e6,
        percentile(&samples, 0.99).as_secs_f64() * 1e6,
        samples.last().map_or(0.0, |d| d.as_secs_f64() * 1e6),
        samples.len() as f64 / total.as_secs_f64(),
    );
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Conversation context: the time it adds per answer, and memory per chat.
fn context_report(engine: &Engine, qs: &[String]) {
    use reportbot::telegram::{ConversationKey, Conversations};
    let rounds = 20;
    let mut plain = Vec::new();
    let mut with_ctx = Vec::new();
    let mut ctx = reportbot::Context::default();
    for _ in 0..rounds {
        for q in qs {
            let t = Instant::now();
            black_box(engine.ask(black_box(q)));
            plain.push(t.elapsed());
            let t = Instant::now();
            black_box(engine.converse(&mut ctx, black_box(q)));
            with_ctx.push(t.elapsed());
        }
    }
    plain.sort_unstable();
    with_ctx.sort_unstable();
    let mean = |v: &[Duration]| v.iter().sum::<Duration>().as_secs_f64() / v.len() as f64 * 1e6;
    println!(
        "context: mean {:.2} µs per answer with a running conversation vs {:.2} µs without (added {:+.2} µs; p50 {:.1} vs {:.1} µs)",
        mean(&with_ctx),
        mean(&plain),
        mean(&with_ctx) - mean(&plain),
        percentile(&with_ctx, 0.5).as_secs_f64() * 1e6,
        percentile(&plain, 0.5).as_secs_f64() * 1e6,
    );
    let before = rss_kb();
    let chats = Conversations::new(200_000, Duration::from_secs(600));
    let now = Instant::now();
    let n = 100_000i64;
    for i in 0..n {
        let key = ConversationKey { chat: i, user: 0 };
        let mut c = chats.take(key);
        let _ = engine.answer(&mut c, &qs[i as usize % qs.len()], None, now);
        chats.put(key, c, now);
    }
    let after = rss_kb();
    println!(
        "contexts: {} active chats kept, {:.1} MiB more resident, {:.0} bytes per chat",
        chats.len(),
        (after - before) as f64 / 1024.0,
        (after - before) as f64 * 1024.0 / chats.len().max(1) as f64
    );
}

fn main() {
    let t = Instant::now();
    let engine = Engine::builtin().expect("built-in data loads");
    println!(
        "engine start-up (load + validate + index): {:.2} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    let qs = questions();
    latency_report(&engine, &qs);
    context_report(&engine, &qs);

    let mut c = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (name, q) in [
        ("prize", "个人一等奖是谁?"),
        ("person_typo", "李斌获得了什么奖"),
        ("traditional", "團體二等獎(銀行機構組)"),
        ("english", "What did Li Bin win?"),
        ("unknown", "张伟获得了什么奖"),
        ("tips", "怎么防止老人被冒充快递的骗"),
        ("offtopic", "今天天气怎么样"),
        ("verdict", "戚迎是保险组的吗"),
        ("count", "银行组团体三等奖有几个队"),
        ("compare", "俞辉和吴峰谁的奖更好"),
        ("rank", "哪家保险公司获奖最多"),
        ("two_questions", "大赛哪天举行的,在哪里?"),
        ("similar", "蔡寒真得了什么奖"),
    ] {
        c.bench_function(&format!("ask/{name}"), |b| {
            b.iter(|| engine.ask(black_box(q)))
        });
    }
    c.bench_function("ask/whole_question_set", |b| {
        b.iter(|| {
            for q in &qs {
                black_box(engine.ask(q));
            }
        })
    });
    c.final_summary();
}
