//! Command-line interface: the arguments, and the commands that need no Telegram.

use crate::engine::{Context, Engine};
use clap::{Parser, Subcommand};
use std::io::{BufRead, Write};
use std::path::PathBuf;

/// reportbot: answers questions about published reports, on Telegram and here.
#[derive(Debug, Parser)]
#[command(name = "reportbot", version, about)]
pub struct Cli {
    /// Settings file (TOML); see config.example.toml. Also REPORTBOT_CONFIG.
    #[arg(long, global = true, env = "REPORTBOT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Load reports from this data directory instead of the built-in data.
    #[arg(long, global = true, env = "REPORTBOT_DATA")]
    pub data: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Telegram bot (the default).
    Run,
    /// Answer a question, as the bot would, in plain text.
    Ask {
        /// The question. Omit it with --jsonl.
        question: Option<String>,
        /// Read one question a line from stdin; write one JSON object a line.
        #[arg(long)]
        jsonl: bool,
    },
    /// An interactive conversation with context (follow-up questions work).
    Chat,
}

/// `reportbot ask`.
pub fn ask(engine: &Engine, question: Option<&str>, jsonl: bool) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if jsonl {
        if question.is_some() {
            anyhow::bail!("--jsonl reads questions from stdin; do not pass a question as well");
        }
        let stdin = std::io::stdin();
        let mut line = String::new();
        let mut reader = stdin.lock();
        let mut number = 0usize;
        loop {
            line.clear();
            let n = reader
                .read_line(&mut line)
                .map_err(|e| anyhow::anyhow!("stdin line {}: {e}", number + 1))?;
            if n == 0 {
                break;
            }
            number += 1;
            let q = line.trim_end_matches(['\n', '\r']);
            let a = engine.ask(q);
            serde_json::to_writer(
                &mut out,
                &serde_json::json!({"question": q, "answer": a.text, "intent": a.intent}),
            )?;
            out.write_all(b"\n")?;
        }
    } else {
        let Some(q) = question else {
            anyhow::bail!(
                "usage: reportbot ask \"问题\" (or reportbot ask --jsonl < questions.txt)"
            );
        };
        let a = engine.ask(q);
        writeln!(out, "{}", a.text)?;
    }
    out.flush()?;
    Ok(())
}

/// `reportbot chat`: a conversation on the terminal, with context.
pub fn chat(engine: &Engine) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    let mut ctx = Context::default();
    let mut out = std::io::stdout();
    writeln!(
        out,
        "reportbot chat: 输入问题,空行或 Ctrl-D 结束。 Type a question; an empty line or Ctrl-D ends."
    )?;
    loop {
        write!(out, "> ")?;
        out.flush()?;
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        let a = engine.converse(&mut ctx, line.trim());
        writeln!(out, "{}\n", a.text)?;
    }
    Ok(())
}
