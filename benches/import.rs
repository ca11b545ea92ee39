//! `reportbot import` of a 200 KB page: `cargo bench --bench import`.
//!
//! The pages are built from the hand-written fixtures: the news page's
//! article with its prose repeated and a long award list (unique rows, so no
//! problems), about 200 KB of HTML; and the same list as a 200 KB text page.

use criterion::{Criterion, criterion_group, criterion_main};
use reportbot::import::import_report;
use std::hint::black_box;

const TARGET: usize = 200 * 1024;

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Rows `团体二等奖：杭州银行第N支行 杭银数据N队；…` until the page is 200 KB.
fn html_page() -> String {
    let page = fixture("2023-news-p.html");
    let prose = "<p>　　本届大赛共有来自全省71个团队的326位参赛选手参与角逐，经过初赛、复赛，22个团队进入决赛。大赛期间，评委们对参赛作品进行了点评，围绕数据治理、风险防控、普惠金融等方向展开交流。</p>\n";
    let (head, tail) = page.split_at(page.find("<p style=").expect("list heading"));
    let mut out = String::with_capacity(TARGET + 4096);
    out.push_str(head);
    while out.len() < TARGET / 2 {
        out.push_str(prose);
    }
    let (list, rest) = tail.split_at(tail.find("<p><strong>二、").expect("section"));
    out.push_str(list);
    let mut n = 0;
    while out.len() < TARGET - rest.len() {
        n += 1;
        out.push_str(&format!(
            "<p>团体三等奖：杭州银行第{n}支行&nbsp;杭银数据{n}队；宁波银行第{n}支行&nbsp;甬数智汇{n}队</p>\n"
        ));
    }
    out.push_str(rest);
    out
}

fn text_page() -> String {
    let page = fixture("2023-classic.txt");
    let (head, tail) = page.split_at(page.find("团体二等奖（银行机构组）").expect("heading"));
    let mut out = String::with_capacity(TARGET + 4096);
    out.push_str(head);
    out.push_str("团体三等奖（银行机构组）\n");
    let mut n = 0;
    while out.len() < TARGET - tail.len() {
        n += 1;
        out.push_str(&format!("杭州银行第{n}支行 杭银数据{n}队\n"));
    }
    out.push('\n');
    out.push_str(tail);
    out
}

fn bench(c: &mut Criterion) {
    for (name, file, page) in [
        ("import 200 KB HTML page", "bench.html", html_page()),
        ("import 200 KB text page", "bench.txt", text_page()),
    ] {
        let imported = import_report(&page, file).expect("the bench page imports");
        assert!(
            imported.problems.is_empty(),
            "{name}: {}",
            imported.summary.headline()
        );
        eprintln!(
            "{name}: {} bytes, {} rows",
            page.len(),
            imported.awards.len()
        );
        c.bench_function(name, |b| {
            b.iter(|| import_report(black_box(&page), file).expect("imports"))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
