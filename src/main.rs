use clap::Parser;
use reportbot::cli::{self, Cli, Command};
use reportbot::engine::Engine;
use reportbot::knowledge::Knowledge;
use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reportbot: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let knowledge = match &cli.data {
        Some(dir) => Knowledge::load_dir(dir)?,
        None => Knowledge::builtin()?,
    };
    let engine = Engine::new(Arc::new(knowledge));
    match cli.command {
        Some(Command::Ask { question, jsonl }) => cli::ask(&engine, question.as_deref(), jsonl),
        Some(Command::Chat) => cli::chat(&engine),
        Some(Command::Run) | None => anyhow::bail!("the Telegram bot is not built yet"),
    }
}
