//! `reportbot ask --jsonl`: one question per input line, one JSON object per
//! output line, in input order.
//!
//! A pipeline with no barrier in it: the calling thread reads lines and
//! hands out chunks of them through a short queue; worker threads answer a
//! chunk at a time; a writer thread puts the answered chunks back in input
//! order and writes them. A slow question holds up only its own chunk, the
//! queue keeps memory bounded however long the input, and an error on
//! either end stops the others after what was read has been written.

use crate::engine::Engine;
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

/// Lines a worker takes at a time.
const CHUNK: usize = 512;

/// One line of output for a question, fields in this order.
#[derive(serde::Serialize)]
struct JsonAnswer<'a> {
    question: &'a str,
    answer: &'a str,
    intent: &'a str,
}

/// One line of output for an input line that got no answer.
#[derive(serde::Serialize)]
struct JsonError<'a> {
    line: usize,
    error: &'a str,
}

/// One line of input.
enum Line {
    Question { number: usize, text: String },
    Bad { number: usize, error: String },
}

/// Answers every line of `input` on `threads` threads, writing to `out`.
pub fn answer_lines(
    engine: &Engine,
    mut input: impl BufRead,
    out: impl Write + Send,
    threads: usize,
) -> anyhow::Result<()> {
    let threads = threads.max(1);
    // A few chunks waiting per worker: enough that none starves.
    let (to_workers, chunks) = sync_channel::<(usize, Vec<Line>)>(2 * threads);
    let chunks = Arc::new(Mutex::new(chunks));
    let (to_writer, answered) = sync_channel::<(usize, Vec<u8>)>(2 * threads);
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || write_in_order(answered, out));
        for _ in 0..threads {
            let (chunks, to_writer) = (Arc::clone(&chunks), to_writer.clone());
            scope.spawn(move || answer_chunks(engine, &chunks, &to_writer));
        }
        // Only the workers hold these now: when they are gone, sending a
        // chunk fails instead of waiting for ever, and the writer ends.
        drop((chunks, to_writer));
        let read = read_chunks(&mut input, &to_workers);
        // No more chunks: the workers finish theirs, then the writer its.
        drop(to_workers);
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the output thread failed")));
        // A write error (a closed pipe) is what stopped the reading.
        let (written, read) = (written?, read?);
        // Only a worker thread that died outside any question leaves a gap.
        if written < read {
            anyhow::bail!(
                "the answers from input line {} on were lost (a worker thread failed)",
                written * CHUNK + 1
            );
        }
        Ok(())
    })
}

/// Reads `input` to its end in numbered chunks; returns how many it sent.
/// Stops early, without error, if nobody takes chunks any more (the output
/// failed).
fn read_chunks(
    input: &mut impl BufRead,
    to_workers: &SyncSender<(usize, Vec<Line>)>,
) -> anyhow::Result<usize> {
    let mut number = 0usize;
    let mut sent = 0usize;
    loop {
        let mut chunk = Vec::with_capacity(CHUNK);
        while chunk.len() < CHUNK {
            let mut bytes = Vec::new();
            let n = input
                .read_until(b'\n', &mut bytes)
                .map_err(|e| anyhow::anyhow!("stdin line {}: {e}", number + 1))?;
            if n == 0 {
                break;
            }
            number += 1;
            while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                bytes.pop();
            }
            // One bad line gets an error of its own; the others are answered.
            chunk.push(match String::from_utf8(bytes) {
                Ok(text) => Line::Question { number, text },
                Err(e) => Line::Bad {
                    number,
                    error: format!(
                        "line {number} is not valid UTF-8 (byte {})",
                        e.utf8_error().valid_up_to()
                    ),
                },
            });
        }
        let last = chunk.len() < CHUNK;
        if !chunk.is_empty() {
            if to_workers.send((sent, chunk)).is_err() {
                return Ok(sent);
            }
            sent += 1;
        }
        if last {
            return Ok(sent);
        }
    }
}

/// Answers chunks until there are none; stops if the writer is gone.
fn answer_chunks(
    engine: &Engine,
    chunks: &Mutex<Receiver<(usize, Vec<Line>)>>,
    to_writer: &SyncSender<(usize, Vec<u8>)>,
) {
    loop {
        // A poisoned lock only means another worker panicked while holding
        // it; the receiver inside is intact.
        let next = chunks.lock().unwrap_or_else(|p| p.into_inner()).recv();
        let Ok((seq, lines)) = next else { return };
        let mut buf = Vec::with_capacity(lines.len() * 512);
        for line in &lines {
            write_line(engine, line, &mut buf);
        }
        if to_writer.send((seq, buf)).is_err() {
            return;
        }
    }
}

/// Writes answered chunks in input order as they come in.
/// Returns how many chunks it wrote.
fn write_in_order(
    answered: Receiver<(usize, Vec<u8>)>,
    mut out: impl Write,
) -> anyhow::Result<usize> {
    let mut waiting: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
    let mut next = 0usize;
    for (seq, bytes) in answered {
        waiting.insert(seq, bytes);
        while let Some(bytes) = waiting.remove(&next) {
            out.write_all(&bytes)?;
            next += 1;
        }
    }
    out.flush()?;
    Ok(next)
}

/// The output line for one input line.
fn write_line(engine: &Engine, line: &Line, buf: &mut Vec<u8>) {
    let start = buf.len();
    // Serialising plain strings into a Vec cannot fail.
    let _ = match line {
        Line::Question { number, text } => {
            // A bug on one question costs that question, not the run.
            let asked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| engine.ask(text)));
            match asked {
                Ok(a) => serde_json::to_writer(
                    &mut *buf,
                    &JsonAnswer {
                        question: text,
                        answer: &a.text,
                        intent: a.intent,
                    },
                ),
                Err(_) => serde_json::to_writer(
                    &mut *buf,
                    &JsonError {
                        line: *number,
                        error: &format!(
                            "line {number}: answering failed (a bug; please report it)"
                        ),
                    },
                ),
            }
        }
        Line::Bad { number, error } => serde_json::to_writer(
            &mut *buf,
            &JsonError {
                line: *number,
                error,
            },
        ),
    };
    escape_line_separators(buf, start);
    buf.push(b'\n');
}

/// U+2028 and U+2029 are valid in JSON strings but end lines in JavaScript
/// and in some JSONL readers: write them as `\u2028` / `\u2029`. (In
/// serialised JSON they can only occur inside strings.)
fn escape_line_separators(buf: &mut Vec<u8>, from: usize) {
    // Both are E2 80 A8/A9 in UTF-8; most output has no E2 byte at all.
    let separator = |w: &[u8]| w[0] == 0xE2 && w[1] == 0x80 && (w[2] == 0xA8 || w[2] == 0xA9);
    if !buf[from..].windows(3).any(separator) {
        return;
    }
    let tail = buf.split_off(from);
    let mut i = 0;
    while i < tail.len() {
        if i + 3 <= tail.len() && separator(&tail[i..i + 3]) {
            buf.extend_from_slice(if tail[i + 2] == 0xA8 {
                b"\\u2028"
            } else {
                b"\\u2029"
            });
            i += 3;
        } else {
            buf.push(tail[i]);
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_are_escaped_and_nothing_else_changes() {
        let mut buf = b"keep\xe2\x80\xa8".to_vec();
        let from = buf.len();
        buf.extend_from_slice("a\u{2028}b\u{2029}c“d”".as_bytes());
        escape_line_separators(&mut buf, from);
        assert_eq!(
            String::from_utf8(buf).expect("UTF-8"),
            "keep\u{2028}a\\u2028b\\u2029c“d”"
        );
    }
}
