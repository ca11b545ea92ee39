//! Question sets: single questions and conversations, checked per case
//! against a committed baseline.
//!
//! Four files under `tests/questions/`, each one JSON object per line:
//!
//! - `cases.jsonl` — the first question set (lookups by name and prize,
//!   facts, tips, typos, English, unknown names, commands);
//! - `forms.jsonl` — question *forms* written from the report before the
//!   engine answered them (yes/no, false premises, comparisons, counts,
//!   rankings, two questions in one, details, paraphrases, similar names,
//!   anti-fraud by intent, totals);
//! - `conversations.jsonl`, `forms_conversations.jsonl` — scripts of turns
//!   that rely on the turns before (`{"name": …, "turns": [case, …]}`).
//!
//! A case (or turn):
//!
//! ```json
//! {"q": "戚迎是保险组的吗", "cat": "verdict", "must": ["银行机构组"], "must_not": [],
//!  "starts": ["不是", "No"], "head": [], "order": [], "intent": null, "note": "…"}
//! ```
//!
//! * `must`: every string occurs in the plain-text answer; `must_not`: none does
//!   (substring matching, case-insensitive for Latin letters);
//! * `starts`: the answer begins with one of these (the verdict comes first);
//! * `head`: every string occurs in the answer's first line (the short answer);
//! * `order`: the strings occur in this order (two questions in one message);
//! * `intent`: the answer's intent is exactly this.
//!
//! `tests/questions/baseline.txt` lists every case and turn that passed when it
//! was last recorded. A listed case that fails now fails the test: a case that
//! passed must keep passing (no threshold lets a few break silently). Cases
//! that pass but are not listed are reported; record them with
//! `REPORTBOT_BLESS=1 cargo test --test questions`.
//!
//! Run with `cargo test --test questions -- --nocapture` for the full report.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::OnceLock;

use serde::Deserialize;

const REPORT_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/data/sources/2022-11-zhejiang-banking-insurance-news.txt"
);

/// The single-question files, with the categories each may use and the
/// least number of cases per category (the sets must not silently shrink).
const SINGLE_SETS: &[(&str, &[(&str, usize)])] = &[
    (
        "cases.jsonl",
        &[
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
        ],
    ),
    (
        "forms.jsonl",
        &[
            ("verdict", 40),
            ("premise", 15),
            ("compare", 20),
            ("count", 30),
            ("rank", 15),
            ("multi", 15),
            ("detail", 30),
            ("paraphrase", 30),
            ("similar", 30),
            ("antifraud", 20),
            ("totals", 10),
        ],
    ),
];

/// Conversation files and the least number of scripts each holds.
const CONVERSATION_SETS: &[(&str, usize)] = &[
    ("conversations.jsonl", 60),
    ("forms_conversations.jsonl", 50),
];

/// The first question set keeps at least this share whatever else changes.
const FIRST_SET_MIN_RATE: f64 = 0.99;

/// Categories whose answers must never contain a winner's name.
const LEAK_CATEGORIES: &[&str] = &["unknown", "offtopic"];

/// Categories whose `must` strings are award-list data and so must occur
/// literally in the source report.
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
    "verify",
    "count",
    "compare",
    "rank",
    "reports",
    "no_more",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    q: String,
    #[serde(default)]
    cat: String,
    #[serde(default)]
    must: Vec<String>,
    #[serde(default)]
    must_not: Vec<String>,
    #[serde(default)]
    starts: Vec<String>,
    #[serde(default)]
    head: Vec<String>,
    #[serde(default)]
    order: Vec<String>,
    #[serde(default)]
    intent: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    note: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Script {
    name: String,
    turns: Vec<Case>,
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/questions")
}

/// Parses JSONL text; every error names the file and the line.
fn parse_lines<T: for<'de> Deserialize<'de>>(
    text: &str,
    file: &str,
) -> Result<Vec<(usize, T)>, Vec<String>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if raw.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<T>(raw) {
            Ok(v) => out.push((line, v)),
            Err(err) => errors.push(format!("{file}:{line}: {err}\n    {raw}")),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn load<T: for<'de> Deserialize<'de>>(file: &str) -> Vec<(usize, T)> {
    let path = dir().join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    parse_lines(&text, file).unwrap_or_else(|errors| {
        panic!(
            "{} malformed line(s) in {}:\n{}",
            errors.len(),
            path.display(),
            errors.join("\n")
        )
    })
}

fn engine() -> &'static reportbot::Engine {
    static ENGINE: OnceLock<reportbot::Engine> = OnceLock::new();
    ENGINE.get_or_init(|| reportbot::Engine::builtin().expect("built-in data loads"))
}

/// Substring test, case-insensitive for letters that have case.
fn contains(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

/// What is wrong with an answer (empty: the case passed).
fn check(case: &Case, text: &str, intent: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let missing: Vec<&String> = case.must.iter().filter(|m| !contains(text, m)).collect();
    if !missing.is_empty() {
        problems.push(format!("missing: {missing:?}"));
    }
    let forbidden: Vec<&String> = case.must_not.iter().filter(|m| contains(text, m)).collect();
    if !forbidden.is_empty() {
        problems.push(format!("must not contain: {forbidden:?}"));
    }
    let trimmed = text.trim_start();
    if !case.starts.is_empty() && !case.starts.iter().any(|s| trimmed.starts_with(s.as_str())) {
        problems.push(format!("does not start with one of {:?}", case.starts));
    }
    let first = trimmed.lines().next().unwrap_or("");
    let not_first: Vec<&String> = case.head.iter().filter(|h| !contains(first, h)).collect();
    if !not_first.is_empty() {
        problems.push(format!("first line lacks {not_first:?}"));
    }
    let lower = text.to_lowercase();
    let mut from = 0;
    for o in &case.order {
        match lower[from..].find(&o.to_lowercase()) {
            Some(at) => from += at + o.to_lowercase().len(),
            None => {
                problems.push(format!("not in order {:?} (at {o:?})", case.order));
                break;
            }
        }
    }
    if let Some(want) = case.intent.as_deref().filter(|want| *want != intent) {
        problems.push(format!("intent: got {intent:?}, want {want:?}"));
    }
    problems
}

/// The engine's answer; a panic becomes an answer that fails every check.
fn answer(ctx: &mut reportbot::Context, q: &str) -> (String, String) {
    match catch_unwind(AssertUnwindSafe(|| engine().converse(ctx, q))) {
        Ok(a) => (a.text, a.intent.to_string()),
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "<non-string panic>".to_string());
            (format!("<PANIC: {msg}>"), "<panic>".to_string())
        }
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("      | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One evaluated case or turn.
struct Outcome {
    /// `file<TAB>question` or `file<TAB>script#turn`: the baseline key.
    key: String,
    set: &'static str,
    cat: String,
    problems: Vec<String>,
    report: String,
    leak: Option<String>,
}

fn winners() -> Vec<String> {
    engine()
        .knowledge()
        .winner_names()
        .into_iter()
        .filter(|n| !n.trim().is_empty())
        .collect()
}

fn evaluate_all() -> Vec<Outcome> {
    let winners = winners();
    let mut out = Vec::new();
    for (file, _) in SINGLE_SETS {
        for (line, case) in load::<Case>(file) {
            let (text, intent) = answer(&mut reportbot::Context::default(), &case.q);
            let problems = check(&case, &text, &intent);
            let leak = LEAK_CATEGORIES
                .contains(&case.cat.as_str())
                .then(|| {
                    winners
                        .iter()
                        .filter(|w| text.contains(w.as_str()))
                        .cloned()
                        .collect::<Vec<_>>()
                })
                .filter(|l| !l.is_empty())
                .map(|l| format!("{file}:{line}: {} — winner names in answer: {l:?}", case.q));
            out.push(Outcome {
                key: format!("{file}\t{}", one_line(&case.q)),
                set: file,
                cat: case.cat.clone(),
                report: format!(
                    "FAIL {file}:{line} [{}] {}\n    {}\n    answer ({intent}):\n{}",
                    case.cat,
                    case.q,
                    problems.join("\n    "),
                    indent(&text)
                ),
                problems,
                leak,
            });
        }
    }
    for (file, _) in CONVERSATION_SETS {
        for (line, script) in load::<Script>(file) {
            let mut ctx = reportbot::Context::default();
            let mut transcript = String::new();
            for (i, turn) in script.turns.iter().enumerate() {
                let (text, intent) = answer(&mut ctx, &turn.q);
                transcript.push_str(&format!(
                    "    {}. {}\n       ({intent})\n{}\n",
                    i + 1,
                    turn.q,
                    indent(&text)
                ));
                let problems = check(turn, &text, &intent);
                out.push(Outcome {
                    key: format!("{file}\t{}#{}", one_line(&script.name), i + 1),
                    set: file,
                    cat: "conversation".into(),
                    report: format!(
                        "FAIL {file}:{line} {:?} turn {}: {}\n    {}\n  transcript:\n{transcript}",
                        script.name,
                        i + 1,
                        turn.q,
                        problems.join("\n    ")
                    ),
                    problems,
                    leak: None,
                });
            }
        }
    }
    out
}

/// A question as one baseline line: tabs and line breaks escaped.
fn one_line(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

fn baseline_path() -> PathBuf {
    dir().join("baseline.txt")
}

fn read_baseline() -> BTreeSet<String> {
    let text = std::fs::read_to_string(baseline_path()).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

#[test]
fn question_files_are_well_formed() {
    let report = std::fs::read_to_string(REPORT_PATH)
        .unwrap_or_else(|err| panic!("cannot read {REPORT_PATH}: {err}"));
    let mut problems = Vec::new();
    let lint = |at: &str, case: &Case, problems: &mut Vec<String>| {
        if case.q.trim().is_empty() {
            problems.push(format!("{at}: empty question"));
        }
        if let Some(intent) = case.intent.as_deref().filter(|i| !INTENTS.contains(i)) {
            problems.push(format!("{at}: unknown intent {intent:?}"));
        }
        let strings = case
            .must
            .iter()
            .chain(&case.must_not)
            .chain(&case.starts)
            .chain(&case.head)
            .chain(&case.order);
        for s in strings {
            if s.trim().is_empty() {
                problems.push(format!("{at}: empty expected string"));
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
                    problems.push(format!("{at}: {m:?} does not occur in the report"));
                }
            }
        }
    };
    for (file, categories) in SINGLE_SETS {
        let known: BTreeMap<&str, usize> = categories.iter().copied().collect();
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for (line, case) in load::<Case>(file) {
            let at = format!("{file}:{line}");
            if !seen.insert(case.q.clone()) {
                problems.push(format!("{at}: duplicate question {:?}", case.q));
            }
            match known.get_key_value(case.cat.as_str()) {
                Some((cat, _)) => *counts.entry(*cat).or_default() += 1,
                None => problems.push(format!("{at}: unknown category {:?}", case.cat)),
            }
            lint(&at, &case, &mut problems);
        }
        for (cat, min) in *categories {
            let n = counts.get(cat).copied().unwrap_or(0);
            if n < *min {
                problems.push(format!("{file}: category {cat}: {n} cases, need {min}"));
            }
        }
    }
    for (file, min) in CONVERSATION_SETS {
        let scripts = load::<Script>(file);
        if scripts.len() < *min {
            problems.push(format!("{file}: {} scripts, need {min}", scripts.len()));
        }
        let mut names = BTreeSet::new();
        for (line, script) in scripts {
            let at = format!("{file}:{line}");
            if !names.insert(script.name.clone()) {
                problems.push(format!("{at}: duplicate script name {:?}", script.name));
            }
            if script.turns.len() < 2 {
                problems.push(format!("{at}: a script needs at least two turns"));
            }
            for (i, turn) in script.turns.iter().enumerate() {
                lint(&format!("{at} turn {}", i + 1), turn, &mut problems);
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn parse_errors_carry_line_numbers() {
    let text = "{\"q\": \"a\", \"cat\": \"prize\"}\n\n{\"q\": \"b\", \"must\": [\n{\"q\": \"c\", \"typo_field\": 1}\n";
    let errors = parse_lines::<Case>(text, "x.jsonl").expect_err("two bad lines");
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].starts_with("x.jsonl:3:"), "{}", errors[0]);
    assert!(errors[1].starts_with("x.jsonl:4:"), "{}", errors[1]);
}

#[test]
fn checks_catch_what_they_should() {
    let case = Case {
        q: "q".into(),
        cat: String::new(),
        must: vec!["李彬".into()],
        must_not: vec!["郭胜".into()],
        starts: vec!["是".into()],
        head: vec!["一等奖".into()],
        order: vec!["11月22日".into(), "杭州".into()],
        intent: Some("verify".into()),
        note: None,
    };
    let good = "是的。李彬获得个人一等奖\n11月22日在杭州";
    assert!(check(&case, good, "verify").is_empty());
    assert_eq!(check(&case, good, "fact").len(), 1);
    assert_eq!(
        check(&case, "不是。李彬获得个人一等奖\n11月22日在杭州", "verify").len(),
        1
    );
    assert_eq!(
        check(&case, "是的。李彬\n个人一等奖 11月22日在杭州", "verify").len(),
        1
    );
    assert_eq!(
        check(&case, "是的。李彬获得个人一等奖 杭州 11月22日", "verify").len(),
        1
    );
    assert_eq!(
        check(
            &case,
            "是的。李彬获得个人一等奖 郭胜 11月22日杭州",
            "verify"
        )
        .len(),
        1
    );
}

#[test]
fn winner_names_cover_award_list() {
    // The leak check is only meaningful if the engine knows every winner:
    // compare with the names of the award list read from the report itself.
    let text = std::fs::read_to_string(REPORT_PATH)
        .unwrap_or_else(|err| panic!("cannot read {REPORT_PATH}: {err}"));
    let mut expected: Vec<String> = Vec::new();
    let mut inside = false;
    for line in text.lines().map(str::trim) {
        if line == "荣誉榜" {
            inside = true;
            continue;
        }
        if !inside || line.is_empty() {
            continue;
        }
        if line.contains("表示") {
            break;
        }
        if line.ends_with('奖') || line.ends_with("组)") || line.ends_with("组）") {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let [_, .., name] = fields.as_slice() {
            expected.push(name.replace(['“', '”'], ""));
        }
    }
    assert!(expected.len() >= 40, "parsed {expected:?}");
    let known: Vec<String> = winners()
        .iter()
        .map(|n| n.replace(['“', '”'], ""))
        .collect();
    let missing: Vec<&String> = expected.iter().filter(|n| !known.contains(n)).collect();
    assert!(missing.is_empty(), "unknown winners: {missing:?}");
}

#[test]
fn every_case_that_passed_still_passes() {
    let outcomes = evaluate_all();
    let baseline = read_baseline();

    let mut per: BTreeMap<(&str, String), (usize, usize)> = BTreeMap::new();
    let mut regressions = Vec::new();
    let mut new_passes = 0usize;
    let mut leaks = Vec::new();
    for o in &outcomes {
        let e = per.entry((o.set, o.cat.clone())).or_default();
        e.1 += 1;
        if o.problems.is_empty() {
            e.0 += 1;
            if !baseline.contains(&o.key) {
                new_passes += 1;
            }
        } else {
            println!("{}\n", o.report);
            if baseline.contains(&o.key) {
                regressions.push(o.report.clone());
            }
        }
        leaks.extend(o.leak.clone());
    }
    println!("accuracy per set and category:");
    let mut set_totals: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for ((set, cat), (ok, n)) in &per {
        println!(
            "  {set:<26} {cat:<13} {ok:>4}/{n:<4} {:>6.1}%",
            100.0 * *ok as f64 / *n as f64
        );
        let t = set_totals.entry(set).or_default();
        t.0 += ok;
        t.1 += n;
    }
    for (set, (ok, n)) in &set_totals {
        println!(
            "  {set:<26} {:<13} {ok:>4}/{n:<4} {:>6.1}%",
            "TOTAL",
            100.0 * *ok as f64 / *n as f64
        );
    }
    let known: BTreeSet<&str> = outcomes.iter().map(|o| o.key.as_str()).collect();
    let stale: Vec<&String> = baseline
        .iter()
        .filter(|k| !known.contains(k.as_str()))
        .collect();
    println!(
        "baseline: {} listed, {} regressions, {new_passes} newly passing, {} no longer in the sets",
        baseline.len(),
        regressions.len(),
        stale.len()
    );

    if std::env::var_os("REPORTBOT_BLESS").is_some() {
        let mut text = String::from(
            "# Cases and turns that passed when last recorded (REPORTBOT_BLESS=1 cargo test --test questions).\n\
             # A listed case that fails fails CI. Format: file<TAB>question, or file<TAB>script#turn.\n",
        );
        let mut keys: Vec<&str> = outcomes
            .iter()
            .filter(|o| o.problems.is_empty())
            .map(|o| o.key.as_str())
            .collect();
        keys.sort_unstable();
        for k in keys {
            text.push_str(k);
            text.push('\n');
        }
        std::fs::write(baseline_path(), text).expect("write the baseline");
        println!("baseline recorded: {}", baseline_path().display());
    }

    assert!(
        leaks.is_empty(),
        "winner names leaked:\n{}",
        leaks.join("\n")
    );
    assert!(
        stale.is_empty(),
        "the baseline lists cases that no longer exist (re-record it): {stale:?}"
    );
    let (ok, n) = set_totals.get("cases.jsonl").copied().unwrap_or((0, 0));
    assert!(
        n > 0 && ok as f64 / n as f64 >= FIRST_SET_MIN_RATE,
        "the first question set fell below {:.0}%: {ok}/{n}",
        100.0 * FIRST_SET_MIN_RATE
    );
    assert!(
        regressions.is_empty(),
        "{} case(s) that passed before fail now:\n{}",
        regressions.len(),
        regressions.join("\n")
    );
}
