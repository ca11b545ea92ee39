//! `reportbot ask` as a user runs it: one question, `--jsonl` batches,
//! `--explain`.

use std::io::Write;
use std::process::{Command, Stdio};

fn reportbot() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_reportbot"));
    // Never read an operator's settings while testing.
    c.env_remove("REPORTBOT_CONFIG")
        .env_remove("REPORTBOT_DATA");
    c
}

fn jsonl(input: &[u8]) -> Vec<serde_json::Value> {
    let mut child = reportbot()
        .args(["ask", "--jsonl"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run reportbot");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write questions");
    let out = child.wait_with_output().expect("reportbot ends");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("output is UTF-8");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn a_line_that_is_not_utf8_gets_an_error_of_its_own() {
    let rows = jsonl(b"\xe6\x9d\x8e\xe5\xbd\xac\n\xff\xfe bad\n\xe4\xb8\xaa\xe4\xba\xba\xe4\xb8\x80\xe7\xad\x89\xe5\xa5\x96\xe6\x98\xaf\xe8\xb0\x81\n");
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[0]["question"], "李彬");
    assert!(rows[0]["answer"].as_str().unwrap().contains("个人一等奖"));
    assert_eq!(rows[1]["line"], 2);
    assert!(
        rows[1]["error"]
            .as_str()
            .unwrap()
            .contains("not valid UTF-8"),
        "{:?}",
        rows[1]
    );
    assert!(rows[1].get("answer").is_none());
    assert_eq!(rows[2]["question"], "个人一等奖是谁");
    assert!(rows[2]["answer"].as_str().unwrap().contains("郭允正"));
}

#[test]
fn line_and_paragraph_separators_are_escaped() {
    let mut child = reportbot()
        .args(["ask", "--jsonl"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run reportbot");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all("李彬\u{2028}\u{2029}\n".as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("ends");
    let raw = String::from_utf8(out.stdout).expect("UTF-8");
    assert!(
        !raw.contains('\u{2028}') && !raw.contains('\u{2029}'),
        "{raw}"
    );
    assert!(raw.contains("\\u2028") && raw.contains("\\u2029"), "{raw}");
    let row: serde_json::Value = serde_json::from_str(raw.trim()).expect("valid JSON");
    assert_eq!(row["question"], "李彬\u{2028}\u{2029}");
}

#[test]
fn explain_shows_the_query() {
    let out = reportbot()
        .args(["ask", "--explain", "戚迎是保险组的吗"])
        .output()
        .expect("run reportbot");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains("query: Verify"), "{text}");
    assert!(text.contains("verdict: Some(false)"), "{text}");
}

#[test]
fn a_long_input_comes_back_whole_and_in_order() {
    // Several chunks' worth, answered on several threads: every line gets
    // its own row, in input order, and a bad line keeps its number.
    let mut input = Vec::new();
    for i in 1..=1000 {
        if i == 600 {
            input.extend_from_slice(b"\xff\n");
        } else {
            input.extend_from_slice(format!("{i} 李彬得了什么奖\n").as_bytes());
        }
    }
    let rows = jsonl(&input);
    assert_eq!(rows.len(), 1000);
    for (i, row) in (1..).zip(&rows) {
        if i == 600 {
            assert_eq!(row["line"], 600, "{row:?}");
        } else {
            assert_eq!(row["question"], format!("{i} 李彬得了什么奖"), "{row:?}");
            assert!(
                row["answer"].as_str().is_some_and(|a| a.contains("李彬")),
                "{row:?}"
            );
        }
    }
}
