//! `reportbot`: run the Telegram bot (default) or use the command line.

use clap::Parser;
use reportbot::cli::{self, Cli, Command};
use reportbot::config::Settings;
use reportbot::engine::{ContextLimits, Engine};
use reportbot::knowledge::Knowledge;
use reportbot::store;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reportbot: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, each cause once: many errors
/// already show their source in their own message, so a cause whose text is
/// already there ends the chain.
fn one_line(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if out.contains(&text) {
            break;
        }
        out.push_str(": ");
        out.push_str(&text);
    }
    out.replace('\n', " ")
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let mut settings = Settings::load(cli.config.as_deref())?;
    let data_dir = cli.data.clone().or_else(|| settings.data.dir.clone());
    settings.data.dir = data_dir.clone();
    let load = || -> anyhow::Result<Engine> {
        let knowledge = match &data_dir {
            Some(dir) => Knowledge::load_dir(dir)?,
            None => Knowledge::builtin()?,
        };
        Ok(Engine::new(Arc::new(knowledge)).with_limits(ContextLimits {
            ttl: Duration::from_secs(settings.conversation.ttl_secs),
            max_turns: settings.conversation.max_turns,
        }))
    };
    match cli.command {
        Some(Command::Ask {
            question,
            jsonl,
            explain,
        }) => {
            let engine = load()?;
            match (explain, question.as_deref()) {
                (true, Some(q)) => {
                    print!("{}", engine.explain(q));
                    Ok(())
                }
                _ => cli::ask(&engine, question.as_deref(), jsonl),
            }
        }
        Some(Command::Chat) => cli::chat(&load()?),
        Some(Command::Announce { text, file, html }) => {
            let store = store::open(&settings.database()?)?;
            cli::announce(store.as_ref(), text.as_deref(), file.as_deref(), html)
        }
        Some(Command::Import {
            report,
            out,
            id,
            format,
            contest,
            year,
            date,
            city,
            prizes,
            dry_run,
            overwrite,
            allow_problems,
            publish,
        }) => {
            let out = out.or(data_dir.clone()).unwrap_or_else(|| "data".into());
            let written = cli::import(cli::ImportArgs {
                report: &report,
                out: &out,
                options: reportbot::import::ImportOptions {
                    id,
                    format,
                    contest,
                    year,
                    final_date: date,
                    city,
                    prizes: Vec::new(),
                },
                prizes: prizes.as_deref(),
                dry_run,
                overwrite,
                allow_problems,
            })?;
            if let (true, Some(id)) = (publish, written) {
                let store = store::open(&settings.database()?)?;
                cli::publish(store.as_ref(), &out, &id)?;
            }
            Ok(())
        }
        Some(Command::TipsCard {
            topic,
            out,
            lang,
            list,
        }) => {
            let knowledge = match &data_dir {
                Some(dir) => Knowledge::load_dir(dir)?,
                None => Knowledge::builtin()?,
            };
            cli::tips_card(&knowledge, topic.as_deref(), out.as_deref(), lang, list)
        }
        Some(Command::Subscribers) => {
            let store = store::open(&settings.database()?)?;
            cli::subscribers(store.as_ref())
        }
        Some(Command::Webhook { action }) => {
            use reportbot::cli::WebhookAction;
            use reportbot::telegram::webhook_admin;
            let bot = reportbot::telegram::make_bot(&settings)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let out = runtime.block_on(async {
                match action {
                    WebhookAction::Set {
                        drop_pending_updates,
                    } => webhook_admin::set(&bot, &settings, drop_pending_updates).await,
                    WebhookAction::Delete {
                        drop_pending_updates,
                    } => webhook_admin::delete(&bot, drop_pending_updates).await,
                    WebhookAction::Info => webhook_admin::info(&bot).await,
                }
            })?;
            println!("{}", out.trim_end());
            Ok(())
        }
        Some(Command::Run) | None => {
            reportbot::telemetry::init(settings.log.format);
            // Check everything before touching the network: token, data, database.
            settings.require_listen_for_webhook()?;
            let bot = reportbot::telegram::make_bot(&settings)?;
            let engine = Arc::new(load()?);
            let database = settings.database()?;
            let store = store::open(&database)?;
            tracing::info!(%database, "database opened");
            let app = Arc::new(reportbot::telegram::App::new(engine, store, settings));
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            let result = runtime.block_on(reportbot::telegram::run(app, bot));
            // Whatever is still running after the stop (a blocked store call)
            // must not hold the process.
            runtime.shutdown_timeout(Duration::from_millis(500));
            result
        }
    }
}
