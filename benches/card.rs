//! Large-print tips pictures: `cargo bench --bench card`.
//!
//! Render time per picture (criterion), the PNG sizes of every card, and
//! memory: resident set size when idle (data loaded, font parsed), after
//! one picture, and after 500 more — it must come back to the idle level,
//! not grow with each picture.

use criterion::{Criterion, criterion_group, criterion_main};
use reportbot::card::{self, render_topic};
use reportbot::engine::Lang;
use reportbot::knowledge::Knowledge;
use std::hint::black_box;

/// A field of /proc/self/status, in KiB.
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// Resident memory: all of it, and the heap part (RssAnon; the rest is the
/// binary and the font, mapped from the file).
fn rss() -> String {
    format!(
        "{} (heap {})",
        mib(status_kib("VmRSS:")),
        mib(status_kib("RssAnon:"))
    )
}

fn memory(k: &Knowledge) {
    let topics = card::topic_ids(k);
    card::font::font().expect("font");
    let idle = rss();
    render_topic(k, None, Lang::En).expect("renders");
    let after_one = rss();
    let mut bytes = 0usize;
    for i in 0..500 {
        let lang = if i % 2 == 0 { Lang::Zh } else { Lang::En };
        let t = &topics[i % topics.len()];
        bytes += render_topic(k, Some(t), lang).expect("renders").png.len();
    }
    eprintln!(
        "memory: idle {idle} / after the largest picture {after_one} / after 500 more ({} MB of PNG) {}; peak {}",
        bytes / 1_000_000,
        rss(),
        mib(status_kib("VmHWM:"))
    );
}

fn bench(c: &mut Criterion) {
    let k = Knowledge::builtin().expect("built-in data");
    memory(&k);
    let mut largest = (0usize, String::new());
    for topic in std::iter::once(None).chain(card::topic_ids(&k).into_iter().map(Some)) {
        for lang in [Lang::Zh, Lang::En] {
            let card = render_topic(&k, topic.as_deref(), lang).expect("renders");
            eprintln!(
                "{:<18} {:?}: {}×{} px, {} bytes",
                topic.as_deref().unwrap_or("(overview)"),
                lang,
                card.width,
                card.height,
                card.png.len()
            );
            if card.png.len() > largest.0 {
                largest = (card.png.len(), card.key.to_string());
            }
        }
    }
    eprintln!("largest PNG: {} bytes ({})", largest.0, largest.1);
    for (name, topic, lang) in [
        ("card courier zh", Some("courier"), Lang::Zh),
        ("card courier en", Some("courier"), Lang::En),
        ("card overview en (the largest)", None, Lang::En),
    ] {
        c.bench_function(name, |b| {
            b.iter(|| render_topic(black_box(&k), topic, lang).expect("renders"))
        });
    }
    c.bench_function("card catalog check (all cards)", |b| {
        b.iter(|| card::Catalog::check(black_box(&k)))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = bench
}
criterion_main!(benches);
