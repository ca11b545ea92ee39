//! Multi-turn evaluation of the reportbot engine.
//!
//! Every line of `tests/questions/conversations.jsonl` is one script:
//!
//! ```json
//! {"name": "group switch", "turns": [
//!   {"q": "个人一等奖是谁", "must": ["李彬", "郭允正"]},
//!   {"q": "那保险组呢?", "must": ["郭允正"], "must_not": ["李彬"]}
//! ]}
//! ```
//!
//! Each script runs against a fresh `reportbot::Context`; every turn is
//! checked like a single question (`must`, `must_not`, optional `intent`),
//! case-insensitive for Latin letters.
//!
//! Run with `cargo test --test conversations -- --nocapture` to see the
//! full report even when the thresholds are met.

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

use serde::Deserialize;

const SCRIPTS_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/questions/conversations.jsonl"
);

/// Share of all turns (over all scripts) that must pass.
const MIN_TURN_PASS_RATE: f64 = 0.95;
/// The script set must not silently shrink.
const MIN_SCRIPTS: usize = 40;

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
struct Turn {
    q: String,
    #[serde(default)]
    must: Vec<String>,
    #[serde(default)]
    must_not: Vec<String>,
    #[serde(default)]
    intent: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Script {
    name: String,
    turns: Vec<Turn>,
}

#[derive(Debug, Clone)]
struct NumberedScript {
    line: usize,
    script: Script,
}

/// Parses JSONL text; every error names the file and the line.
fn parse_scripts(text: &str, file: &str) -> Result<Vec<NumberedScript>, Vec<String>> {
    let mut scripts = Vec::new();
    let mut errors = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if raw.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Script>(raw) {
            Ok(script) => scripts.push(NumberedScript { line, script }),
            Err(err) => errors.push(format!("{file}:{line}: {err}\n    {raw}")),
        }
    }
    if errors.is_empty() {
        Ok(scripts)
    } else {
        Err(errors)
    }
}

fn load_scripts() -> Vec<NumberedScript> {
    let text = std::fs::read_to_string(SCRIPTS_PATH)
        .unwrap_or_else(|err| panic!("cannot read {SCRIPTS_PATH}: {err}"));
    match parse_scripts(&text, "conversations.jsonl") {
        Ok(scripts) => scripts,
        Err(errors) => panic!(
            "{} malformed line(s) in {SCRIPTS_PATH}:\n{}",
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

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("        | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What happened on one turn.
struct TurnOutcome {
    text: String,
    intent: String,
    problems: Vec<String>,
}

fn run_turn(engine: &reportbot::Engine, ctx: &mut reportbot::Context, turn: &Turn) -> TurnOutcome {
    let answered = catch_unwind(AssertUnwindSafe(|| engine.converse(ctx, &turn.q)));
    let mut problems = Vec::new();
    let (text, intent) = match answered {
        Ok(a) => (a.text.clone(), a.intent.to_string()),
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "<non-string panic>".to_string());
            problems.push("engine panicked".to_string());
            (format!("<PANIC: {msg}>"), String::from("<panic>"))
        }
    };
    let missing: Vec<&String> = turn.must.iter().filter(|m| !contains(&text, m)).collect();
    if !missing.is_empty() {
        problems.push(format!("missing: {missing:?}"));
    }
    let forbidden: Vec<&String> = turn
        .must_not
        .iter()
        .filter(|m| contains(&text, m))
        .collect();
    if !forbidden.is_empty() {
        problems.push(format!("must not contain: {forbidden:?}"));
    }
    if let Some(want) = turn.intent.as_deref().filter(|want| *want != intent) {
        problems.push(format!("intent: got {intent:?}, want {want:?}"));
    }
    TurnOutcome {
        text,
        intent,
        problems,
    }
}

#[test]
fn conversations_jsonl_is_well_formed() {
    let text = std::fs::read_to_string(SCRIPTS_PATH)
        .unwrap_or_else(|err| panic!("cannot read {SCRIPTS_PATH}: {err}"));
    let scripts = match parse_scripts(&text, "conversations.jsonl") {
        Ok(scripts) => scripts,
        Err(errors) => panic!(
            "{} malformed line(s) in {SCRIPTS_PATH}:\n{}",
            errors.len(),
            errors.join("\n")
        ),
    };
    assert!(
        scripts.len() >= MIN_SCRIPTS,
        "only {} scripts in {SCRIPTS_PATH}, need at least {MIN_SCRIPTS}",
        scripts.len()
    );
    let mut problems = Vec::new();
    let mut names = BTreeSet::new();
    for NumberedScript { line, script } in &scripts {
        let at = format!("conversations.jsonl:{line}");
        if script.name.trim().is_empty() {
            problems.push(format!("{at}: empty script name"));
        }
        if !names.insert(script.name.clone()) {
            problems.push(format!("{at}: duplicate script name {:?}", script.name));
        }
        if script.turns.len() < 2 {
            problems.push(format!("{at}: a script needs at least two turns"));
        }
        for (i, turn) in script.turns.iter().enumerate() {
            let at = format!("{at} turn {}", i + 1);
            if turn.q.trim().is_empty() {
                problems.push(format!("{at}: empty question"));
            }
            if let Some(intent) = turn.intent.as_deref().filter(|i| !INTENTS.contains(i)) {
                problems.push(format!("{at}: unknown intent {intent:?}"));
            }
            for s in turn.must.iter().chain(&turn.must_not) {
                if s.trim().is_empty() {
                    problems.push(format!("{at}: empty must/must_not string"));
                }
            }
            for m in &turn.must {
                for n in &turn.must_not {
                    if contains(m, n) || contains(n, m) {
                        problems.push(format!("{at}: must {m:?} overlaps must_not {n:?}"));
                    }
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s) in {SCRIPTS_PATH}:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn parse_errors_carry_line_numbers() {
    let text = "{\"name\": \"a\", \"turns\": []}\n{\"name\": \"b\", \"turns\": [{\"q\": 1}]}\n\n{\"name\": \"c\"\n";
    let errors = parse_scripts(text, "x.jsonl").expect_err("two bad lines");
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].starts_with("x.jsonl:2:"), "{}", errors[0]);
    assert!(errors[1].starts_with("x.jsonl:4:"), "{}", errors[1]);
}

#[test]
fn conversation_accuracy() {
    let scripts = load_scripts();
    assert!(
        scripts.len() >= MIN_SCRIPTS,
        "only {} scripts loaded, need at least {MIN_SCRIPTS}",
        scripts.len()
    );
    let engine = engine();

    let mut turns_total = 0usize;
    let mut turns_passed = 0usize;
    let mut scripts_passed = 0usize;
    let mut failures = Vec::new();

    for NumberedScript { line, script } in &scripts {
        let mut ctx = reportbot::Context::default();
        let mut transcript = Vec::new();
        let mut script_ok = true;
        for (i, turn) in script.turns.iter().enumerate() {
            let outcome = run_turn(engine, &mut ctx, turn);
            turns_total += 1;
            transcript.push(format!(
                "    {}. Q: {}\n       A ({}):\n{}",
                i + 1,
                turn.q,
                outcome.intent,
                indent(&outcome.text)
            ));
            if outcome.problems.is_empty() {
                turns_passed += 1;
            } else {
                script_ok = false;
                failures.push(format!(
                    "FAIL script {:?} (line {line}) turn {}: {}\n    {}\n  transcript so far:\n{}",
                    script.name,
                    i + 1,
                    turn.q,
                    outcome.problems.join("\n    "),
                    transcript.join("\n")
                ));
            }
        }
        if script_ok {
            scripts_passed += 1;
        }
    }

    for f in &failures {
        println!("{f}\n");
    }
    let rate = turns_passed as f64 / turns_total.max(1) as f64;
    println!(
        "conversation turns: {turns_passed}/{turns_total} passed ({:.1}%)",
        100.0 * rate
    );
    println!(
        "conversation scripts fully passed: {scripts_passed}/{}",
        scripts.len()
    );

    assert!(
        rate >= MIN_TURN_PASS_RATE,
        "turn pass rate {:.1}% ({turns_passed}/{turns_total}) is below {:.0}%; {} failing turn(s) listed above",
        100.0 * rate,
        100.0 * MIN_TURN_PASS_RATE,
        failures.len()
    );
}
