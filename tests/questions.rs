//! Single-question evaluation of the reportbot engine.
//!
//! Every line of `tests/questions/cases.jsonl` is one JSON object:
//!
//! ```json
//! {"q": "个人一等奖是谁?", "must": ["李彬", "郭允正"], "must_not": [], "cat": "prize", "intent": "who_won"}
//! ```
//!
//! * `must`: every string must occur in the plain-text answer,
//! * `must_not`: no string may occur in the answer,
//! * `intent` (optional): the answer's intent must be exactly this,
//! * `cat`: the category used for the per-category report.
//!
//! Matching is substring matching, case-insensitive for Latin letters
//! (Chinese text is compared as is).
//!
//! Run with `cargo test --test questions -- --nocapture` to see the full
//! report even when the thresholds are met.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

use serde::Deserialize;

const CASES_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/questions/cases.jsonl");
const REPORT_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/data/sources/2022-11-zhejiang-banking-insurance-news.txt"
);

/// Overall share of cases that must pass.
const MIN_PASS_RATE: f64 = 0.98;
/// The question set must not silently shrink.
const MIN_CASES: usize = 250;

/// Categories whose answers must never contain a winner's name.
const LEAK_CATEGORIES: &[&str] = &["unknown", "offtopic"];

/// Known categories and the minimum number of cases each must have.
const CATEGORIES: &[(&str, usize)] = &[
    ("prize", 50),
    ("person", 30),
    ("team", 25),
    ("institution", 30),
    ("fact", 30),
    ("tips", 25),
    ("case", 6),
    ("traditional", 20),
    ("typo", 20),
    ("noise", 15),
    ("english", 30),
    ("unknown", 25),
    ("offtopic", 20),
    ("command", 10),
];

/// Categories whose `must` strings are award-list or report data and so
/// must literally occur in the source report.
const REPORT_BACKED_CATEGORIES: &[&str] = &[
    "prize",
    "person",
    "team",
    "institution",
    "typo",
    "traditional",
    "noise",
];

/// Every intent the engine may report.
const INTENTS: &[&str] = &[
    "who_won",
    "what_won",
    "awards",
    "fact",
    "tips",
    "case",
    "help",
    "start",
    "about",
    "not_found",
    "fallback",
    "ambiguous",
    "subscribe",
    "unsubscribe",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    q: String,
    #[serde(default)]
    must: Vec<String>,
    #[serde(default)]
    must_not: Vec<String>,
    cat: String,
    #[serde(default)]
    intent: Option<String>,
}

/// A case together with its 1-based line number in the JSONL file.
#[derive(Debug, Clone)]
struct NumberedCase {
    line: usize,
    case: Case,
}

/// Parses JSONL text; every error names the file and the line.
fn parse_cases(text: &str, file: &str) -> Result<Vec<NumberedCase>, Vec<String>> {
    let mut cases = Vec::new();
    let mut errors = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if raw.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Case>(raw) {
            Ok(case) => cases.push(NumberedCase { line, case }),
            Err(err) => errors.push(format!("{file}:{line}: {err}\n    {raw}")),
        }
    }
    if errors.is_empty() {
        Ok(cases)
    } else {
        Err(errors)
    }
}

fn load_cases() -> Vec<NumberedCase> {
    let text = std::fs::read_to_string(CASES_PATH)
        .unwrap_or_else(|err| panic!("cannot read {CASES_PATH}: {err}"));
    match parse_cases(&text, "cases.jsonl") {
        Ok(cases) => cases,
        Err(errors) => panic!(
            "{} malformed line(s) in {CASES_PATH}:\n{}",
            errors.len(),
            errors.join("\n")
        ),
    }
}

fn engine() -> &'static reportbot::Engine {
    static ENGINE: OnceLock<reportbot::Engine> = OnceLock::new();
    ENGINE.get_or_init(|| reportbot::Engine::builtin().expect("built-in data loads"))
}

/// Substring test, case-insensitive for letters that have case.
fn contains(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

/// Names from the award list (lines 5-82) of the report, parsed from the
/// source text itself: every row is "institution  name".
fn award_names_from_report() -> Vec<String> {
    let text = std::fs::read_to_string(REPORT_PATH)
        .unwrap_or_else(|err| panic!("cannot read {REPORT_PATH}: {err}"));
    let mut names = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line == "荣誉榜" {
            inside = true;
            continue;
        }
        if !inside || line.is_empty() {
            continue;
        }
        if line.ends_with("表示") || line.contains("表示,") || line.contains("表示，") {
            break;
        }
        let is_header = line.ends_with("奖") || line.ends_with("组)") || line.ends_with("组）");
        if is_header {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let name = fields.last().copied().unwrap_or_default();
        if fields.len() >= 2 && !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    names
}

fn strip_quotes(s: &str) -> String {
    s.chars()
        .filter(|c| {
            !matches!(
                c,
                '“' | '”' | '"' | '「' | '」' | '『' | '』' | '\'' | '‘' | '’'
            )
        })
        .collect()
}

struct Outcome {
    text: String,
    intent: String,
    missing: Vec<String>,
    forbidden: Vec<String>,
    intent_ok: bool,
    panicked: bool,
}

impl Outcome {
    fn passed(&self) -> bool {
        !self.panicked && self.missing.is_empty() && self.forbidden.is_empty() && self.intent_ok
    }
}

fn evaluate(engine: &reportbot::Engine, case: &Case) -> Outcome {
    let answered = catch_unwind(AssertUnwindSafe(|| engine.ask(&case.q)));
    let (text, intent, panicked) = match answered {
        Ok(a) => (a.text.clone(), a.intent.to_string(), false),
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "<non-string panic>".to_string());
            (format!("<PANIC: {msg}>"), String::from("<panic>"), true)
        }
    };
    let missing = case
        .must
        .iter()
        .filter(|m| !contains(&text, m))
        .cloned()
        .collect();
    let forbidden = case
        .must_not
        .iter()
        .filter(|m| contains(&text, m))
        .cloned()
        .collect();
    let intent_ok = case.intent.as_deref().is_none_or(|want| want == intent);
    Outcome {
        text,
        intent,
        missing,
        forbidden,
        intent_ok,
        panicked,
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("      | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn cases_jsonl_is_well_formed() {
    let text = std::fs::read_to_string(CASES_PATH)
        .unwrap_or_else(|err| panic!("cannot read {CASES_PATH}: {err}"));
    let cases = match parse_cases(&text, "cases.jsonl") {
        Ok(cases) => cases,
        Err(errors) => panic!(
            "{} malformed line(s) in {CASES_PATH}:\n{}",
            errors.len(),
            errors.join("\n")
        ),
    };
    assert!(
        cases.len() >= MIN_CASES,
        "only {} cases in {CASES_PATH}, need at least {MIN_CASES}",
        cases.len()
    );

    let report = std::fs::read_to_string(REPORT_PATH)
        .unwrap_or_else(|err| panic!("cannot read {REPORT_PATH}: {err}"));
    let known: BTreeMap<&str, usize> = CATEGORIES.iter().copied().collect();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for NumberedCase { line, case } in &cases {
        let at = format!("cases.jsonl:{line}");
        if case.q.trim().is_empty() {
            problems.push(format!("{at}: empty question"));
        }
        if !seen.insert(case.q.clone()) {
            problems.push(format!("{at}: duplicate question {:?}", case.q));
        }
        match known.get_key_value(case.cat.as_str()) {
            Some((cat, _)) => *counts.entry(*cat).or_default() += 1,
            None => problems.push(format!("{at}: unknown category {:?}", case.cat)),
        }
        if let Some(intent) = case.intent.as_deref().filter(|i| !INTENTS.contains(i)) {
            problems.push(format!("{at}: unknown intent {intent:?}"));
        }
        for s in case.must.iter().chain(&case.must_not) {
            if s.trim().is_empty() {
                problems.push(format!("{at}: empty must/must_not string"));
            }
        }
        for m in &case.must {
            for n in &case.must_not {
                if contains(m, n) || contains(n, m) {
                    problems.push(format!("{at}: must {m:?} overlaps must_not {n:?}"));
                }
            }
        }
        if REPORT_BACKED_CATEGORIES.contains(&case.cat.as_str()) {
            for m in &case.must {
                if !report.contains(m.as_str()) {
                    problems.push(format!(
                        "{at}: must string {m:?} does not occur in the report"
                    ));
                }
            }
        }
    }
    for (cat, min) in CATEGORIES {
        let n = counts.get(cat).copied().unwrap_or(0);
        if n < *min {
            problems.push(format!("category {cat}: {n} cases, need at least {min}"));
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s) in {CASES_PATH}:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn parse_errors_carry_line_numbers() {
    let text = "{\"q\": \"a\", \"must\": [], \"cat\": \"prize\"}\n\n{\"q\": \"b\", \"must\": [\n{\"q\": \"c\", \"cat\": \"fact\", \"typo_field\": 1}\n";
    let errors = parse_cases(text, "x.jsonl").expect_err("two bad lines");
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].starts_with("x.jsonl:3:"), "{}", errors[0]);
    assert!(errors[1].starts_with("x.jsonl:4:"), "{}", errors[1]);
}

#[test]
fn winner_names_cover_award_list() {
    // The leak check below is only meaningful if the engine knows every
    // winner; compare against the award list parsed from the report.
    let expected = award_names_from_report();
    assert!(
        expected.len() >= 40,
        "parsed only {} names from the report's award list: {expected:?}",
        expected.len()
    );
    let winners: Vec<String> = engine()
        .knowledge()
        .winner_names()
        .iter()
        .map(|n| strip_quotes(n))
        .collect();
    let missing: Vec<&String> = expected
        .iter()
        .filter(|n| !winners.contains(&strip_quotes(n)))
        .collect();
    assert!(
        missing.is_empty(),
        "winner_names() lacks {} name(s) of the award list: {missing:?}",
        missing.len()
    );
}

#[test]
fn question_set_accuracy() {
    let cases = load_cases();
    assert!(
        cases.len() >= MIN_CASES,
        "only {} cases loaded, need at least {MIN_CASES}",
        cases.len()
    );
    let engine = engine();
    let winners: Vec<String> = engine
        .knowledge()
        .winner_names()
        .into_iter()
        .filter(|n| !n.trim().is_empty())
        .collect();

    let mut per_cat: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut leaks = Vec::new();
    let mut passed_total = 0usize;

    for NumberedCase { line, case } in &cases {
        let outcome = evaluate(engine, case);
        let passed = outcome.passed();
        let entry = per_cat.entry(case.cat.clone()).or_default();
        entry.1 += 1;
        if passed {
            entry.0 += 1;
            passed_total += 1;
        } else {
            let mut report = format!("FAIL [{}] line {line}: {}", case.cat, case.q);
            if outcome.panicked {
                report.push_str("\n    engine panicked");
            }
            if !outcome.intent_ok {
                report.push_str(&format!(
                    "\n    intent: got {:?}, want {:?}",
                    outcome.intent,
                    case.intent.as_deref().unwrap_or("")
                ));
            }
            if !outcome.missing.is_empty() {
                report.push_str(&format!("\n    missing: {:?}", outcome.missing));
            }
            if !outcome.forbidden.is_empty() {
                report.push_str(&format!("\n    must not contain: {:?}", outcome.forbidden));
            }
            report.push_str(&format!(
                "\n    answer ({}):\n{}",
                outcome.intent,
                indent(&outcome.text)
            ));
            failures.push(report);
        }
        if LEAK_CATEGORIES.contains(&case.cat.as_str()) {
            let leaked: Vec<&String> = winners
                .iter()
                .filter(|w| outcome.text.contains(w.as_str()))
                .collect();
            if !leaked.is_empty() {
                leaks.push(format!(
                    "LEAK [{}] line {line}: {}\n    winner names in answer: {leaked:?}\n    answer ({}):\n{}",
                    case.cat,
                    case.q,
                    outcome.intent,
                    indent(&outcome.text)
                ));
            }
        }
    }

    for f in &failures {
        println!("{f}\n");
    }
    for l in &leaks {
        println!("{l}\n");
    }

    let total = cases.len();
    let rate = passed_total as f64 / total as f64;
    println!("per-category accuracy:");
    for (cat, (ok, n)) in &per_cat {
        println!(
            "  {cat:<12} {ok:>4}/{n:<4} {:>6.1}%",
            100.0 * *ok as f64 / *n as f64
        );
    }
    println!(
        "  {:<12} {passed_total:>4}/{total:<4} {:>6.1}%",
        "TOTAL",
        100.0 * rate
    );
    println!(
        "winner-name leaks in {}: {}",
        LEAK_CATEGORIES.join("/"),
        leaks.len()
    );

    assert!(
        leaks.is_empty(),
        "{} unknown/offtopic answer(s) contain a winner's name (must be zero)",
        leaks.len()
    );
    assert!(
        rate >= MIN_PASS_RATE,
        "pass rate {:.1}% ({passed_total}/{total}) is below {:.0}%; {} failure(s) listed above",
        100.0 * rate,
        100.0 * MIN_PASS_RATE,
        failures.len()
    );
}
