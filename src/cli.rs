//! Command-line interface: the arguments, and the commands that need no Telegram.

use crate::engine::{Context, Engine};
use clap::{Parser, Subcommand};
use std::io::{BufRead, Write};
use std::path::PathBuf;

mod jsonl;

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
        /// Show how the question is read (clauses, words, the query).
        #[arg(long, conflicts_with = "jsonl")]
        explain: bool,
    },
    /// An interactive conversation with context (follow-up questions work).
    Chat,
    /// Queue an announcement for every subscriber; the running bot delivers it.
    Announce {
        /// The text (plain text; it is sent escaped). With --html: Telegram HTML, or a file holding it.
        text: Option<String>,
        /// Read the text from this file instead.
        #[arg(long, conflicts_with = "text")]
        file: Option<PathBuf>,
        /// The text is Telegram HTML (<b>, <i>, <a href>, …), checked before it is queued.
        #[arg(long)]
        html: bool,
    },
    /// Print subscriber counts.
    Subscribers,
    /// Draw the large-print picture of anti-fraud tips (PNG, 1080 px wide).
    TipsCard {
        /// Topic: its id, its name or a word for it (验证码, courier). Omit it for the overview.
        topic: Option<String>,
        /// Where to write the PNG (default: tips-TOPIC.png, tips-TOPIC-en.png); `-` writes to stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Language of the picture: zh or en.
        #[arg(long, default_value = "zh", value_parser = parse_lang)]
        lang: crate::engine::Lang,
        /// List every card instead: whether it can be drawn, and its cache key.
        #[arg(long, conflicts_with_all = ["topic", "out"])]
        list: bool,
    },
    /// Register, remove or show the webhook (webhook mode behind a load
    /// balancer; see README, "Deploying"). Run once, not by each instance.
    Webhook {
        #[command(subcommand)]
        action: WebhookAction,
    },
    /// Turn a published report (text, Markdown, CSV/TSV or a saved HTML page) into checked data files.
    Import {
        /// The report as published: a text file, a saved news page (.html), or a table (.csv, .tsv).
        report: PathBuf,
        /// Data directory to write into (default: --data, else ./data).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Report id (default: derived from the contest's year and name).
        #[arg(long)]
        id: Option<String>,
        /// Read the report as text, csv, tsv or html (default: from its extension and content).
        #[arg(long)]
        format: Option<crate::import::Format>,
        /// The contest's name, when the page's title does not give it as `YYYY…大赛` (it must occur in the report).
        #[arg(long)]
        contest: Option<String>,
        /// The contest's year (default: from the contest's name).
        #[arg(long)]
        year: Option<u16>,
        /// Date of the final, YYYY-MM-DD (default: from a sentence like `11月22日,…在杭州举行`).
        #[arg(long)]
        date: Option<String>,
        /// City of the final (default: from the same sentence).
        #[arg(long)]
        city: Option<String>,
        /// A prizes.json declaring prizes beyond the standard five that the page names
        /// (id, English label, rank, aliases); declarations of the reports already in the
        /// data directory are used too, so one prize keeps one id.
        #[arg(long)]
        prizes: Option<PathBuf>,
        /// Print the summary and write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Replace files of an existing report with different content.
        #[arg(long)]
        overwrite: bool,
        /// Write even if some lines of the award list could not be placed.
        #[arg(long)]
        allow_problems: bool,
        /// Also queue an announcement of the new report for subscribers.
        #[arg(long, conflicts_with = "dry_run")]
        publish: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum WebhookAction {
    /// setWebhook: REPORTBOT_WEBHOOK_URL and REPORTBOT_WEBHOOK_SECRET, with
    /// http.allowed_updates and http.max_connections of the settings.
    Set {
        /// Also drop the updates Telegram holds now.
        #[arg(long)]
        drop_pending_updates: bool,
    },
    /// deleteWebhook (back to long polling).
    Delete {
        /// Also drop the updates Telegram holds now.
        #[arg(long)]
        drop_pending_updates: bool,
    },
    /// getWebhookInfo: the URL, pending updates, the last error.
    Info,
}

/// `reportbot import`: read, check, write, optionally announce.
pub struct ImportArgs<'a> {
    pub report: &'a std::path::Path,
    pub out: &'a std::path::Path,
    pub options: crate::import::ImportOptions,
    /// A prizes.json to use for new prize names (before those of the data directory).
    pub prizes: Option<&'a std::path::Path>,
    pub dry_run: bool,
    pub overwrite: bool,
    pub allow_problems: bool,
}

/// Import a report; returns the id of the report written (`None` for a dry run).
pub fn import(args: ImportArgs<'_>) -> anyhow::Result<Option<String>> {
    use crate::import::{WriteOptions, import_report_with, write_report_with};
    let text = std::fs::read_to_string(args.report)
        .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", args.report.display()))?;
    let name = args
        .report
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| anyhow::anyhow!("{}: not a file name", args.report.display()))?;
    let mut options = args.options.clone();
    options.prizes = known_prizes(args.prizes, args.out)?;
    let imported = import_report_with(&text, name, &options)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.report.display()))?;
    let m = &imported.meta;
    let read_as = match &imported.original {
        Some(_) => format!(
            "{}, article text stored as sources/{}",
            imported.format.name(),
            m.source
        ),
        None => imported.format.name().to_string(),
    };
    println!(
        "{} ({}): final {} in {}; read as {read_as}; award list at lines {}-{}",
        m.contest, m.id, m.final_date, m.city, imported.award_list.0, imported.award_list.1
    );
    println!("{}", imported.summary);
    if !imported.problems.is_empty() && !args.allow_problems {
        anyhow::bail!(
            "{}: {} line(s) of the award list could not be placed (listed above); nothing was written. Fix them, or pass --allow-problems to write the rest",
            args.report.display(),
            imported.problems.len()
        );
    }
    if args.dry_run {
        println!("dry run: nothing was written");
        return Ok(None);
    }
    let written = write_report_with(
        &imported,
        args.out,
        &WriteOptions {
            overwrite: args.overwrite,
        },
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("{written}");
    // Prove the directory loads as the bot will load it.
    crate::knowledge::Knowledge::load_dir(args.out)?;
    Ok(Some(imported.meta.id.clone()))
}

/// Prize declarations an import should follow: the `--prizes` file, then
/// those of the reports already in the data directory (one id, one prize).
fn known_prizes(
    file: Option<&std::path::Path>,
    out: &std::path::Path,
) -> anyhow::Result<Vec<crate::knowledge::PrizeDecl>> {
    let mut files: Vec<std::path::PathBuf> = file.into_iter().map(|f| f.to_path_buf()).collect();
    if let Ok(entries) = std::fs::read_dir(out.join("reports")) {
        let mut found: Vec<std::path::PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path().join("prizes.json"))
            .filter(|p| p.is_file())
            .collect();
        found.sort();
        files.extend(found);
    }
    let mut known: Vec<crate::knowledge::PrizeDecl> = Vec::new();
    for path in files {
        for d in crate::knowledge::read_prizes(&path)? {
            if !known.iter().any(|k| k.id == d.id || k.zh == d.zh) {
                known.push(d);
            }
        }
    }
    Ok(known)
}

/// `import --publish`: announce the report once (publishing again is a no-op).
pub fn publish(
    store: &dyn crate::store::Store,
    data: &std::path::Path,
    id: &str,
) -> anyhow::Result<()> {
    let k = crate::knowledge::Knowledge::load_dir(data)?;
    let report = k
        .reports
        .iter()
        .find(|r| r.meta.id == id)
        .ok_or_else(|| anyhow::anyhow!("no report {id:?} in {}", data.display()))?;
    let created = store.queue_now(&crate::store::NewAnnouncement {
        text_html: crate::publish::announcement(report),
        created_by: crate::store::Origin::Report(id.to_string()),
        dedupe_key: Some(crate::publish::dedupe_key(id)),
    })?;
    if created.duplicate {
        println!(
            "report {id} was announced before (announcement {}); not announcing again",
            created.id.0
        );
    } else {
        let p = store.progress(created.id)?;
        println!(
            "queued announcement {} of report {id} for {} subscribers; a bot running with --data {} serves the report within seconds",
            created.id.0,
            p.total,
            data.display()
        );
    }
    Ok(())
}

/// `reportbot announce --html FILE_OR_TEXT`: an existing file is read; a
/// word that looks like a file name but names none is an error, not an
/// announcement reading "news.html".
fn html_source(arg: &str) -> anyhow::Result<(String, Option<PathBuf>)> {
    let path = std::path::Path::new(arg);
    if !arg.contains('<') && !arg.contains('\n') && path.is_file() {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{arg}: cannot read: {e}"))?;
        return Ok((text, Some(path.to_path_buf())));
    }
    let looks_like_file = !arg.contains(char::is_whitespace)
        && !arg.contains(['<', '&'])
        && [".html", ".htm", ".txt"]
            .iter()
            .any(|ext| arg.to_ascii_lowercase().ends_with(ext));
    if looks_like_file {
        anyhow::bail!("{arg}: no such file; nothing was queued");
    }
    Ok((arg.to_string(), None))
}

/// `reportbot announce`: queue it in the database the bot reads. Plain text
/// is escaped; with `html`, the text is Telegram HTML, queued as written
/// once [`crate::markup::check`] accepts it (the delivery worker sends every
/// announcement with `parse_mode = HTML`).
pub fn announce(
    store: &dyn crate::store::Store,
    text: Option<&str>,
    file: Option<&std::path::Path>,
    html: bool,
) -> anyhow::Result<()> {
    let (text, source) = match (text, file) {
        (Some(t), None) if html => html_source(t)?,
        (Some(t), None) => (t.to_string(), None),
        (None, Some(f)) => (
            std::fs::read_to_string(f)
                .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", f.display()))?,
            Some(f.to_path_buf()),
        ),
        _ => {
            anyhow::bail!(
                "usage: reportbot announce \"text\"  or  reportbot announce --file FILE  (add --html for Telegram HTML)"
            )
        }
    };
    if html {
        let checked = crate::markup::check(&text).map_err(|e| {
            let place = source
                .as_ref()
                .map_or_else(|| "the HTML".to_string(), |p| p.display().to_string());
            anyhow::anyhow!("{place}: {e}; nothing was queued")
        })?;
        let created = store.queue_now(&crate::store::NewAnnouncement {
            text_html: checked.html,
            created_by: crate::store::Origin::Cli,
            dedupe_key: None,
        })?;
        let progress = store.progress(created.id)?;
        println!(
            "queued announcement {} (HTML checked: {} tag(s), {} characters of text) for {} subscribers; the running bot delivers it",
            created.id.0, checked.tags, checked.text_units, progress.total
        );
        return Ok(());
    }
    let html = crate::telegram::announcement_html(&text).map_err(|why| {
        if why == "empty" {
            anyhow::anyhow!("the announcement is empty")
        } else {
            anyhow::anyhow!("the announcement is too long for one Telegram message ({why} UTF-16 units); nothing was queued")
        }
    })?;
    let created = store.queue_now(&crate::store::NewAnnouncement {
        text_html: html,
        created_by: crate::store::Origin::Cli,
        dedupe_key: None,
    })?;
    let progress = store.progress(created.id)?;
    println!(
        "queued announcement {} for {} subscribers; the running bot delivers it",
        created.id.0, progress.total
    );
    Ok(())
}

fn parse_lang(s: &str) -> Result<crate::engine::Lang, String> {
    match s.to_ascii_lowercase().as_str() {
        "zh" | "cn" | "zh-cn" | "zh-hans" => Ok(crate::engine::Lang::Zh),
        "en" => Ok(crate::engine::Lang::En),
        _ => Err(format!("{s:?}: expected zh or en")),
    }
}

/// `reportbot tips-card`: draw one card, or list them all.
pub fn tips_card(
    k: &crate::knowledge::Knowledge,
    topic: Option<&str>,
    out: Option<&std::path::Path>,
    lang: crate::engine::Lang,
    list: bool,
) -> anyhow::Result<()> {
    use crate::card;
    use crate::engine::Lang;
    let code = |l: Lang| if l == Lang::En { "en" } else { "zh" };
    if list {
        let catalog = card::Catalog::check(k);
        println!("font: {}", card::font::FONT_NAME);
        for e in catalog.entries() {
            let status = match (&e.problem, &e.key) {
                (None, Some(key)) => format!("ok  {key}"),
                (Some(p), _) => format!("text only: {p}"),
                (None, None) => "text only".to_string(),
            };
            println!(
                "{:<20} {}  {status}",
                e.topic.as_deref().unwrap_or("(overview)"),
                code(e.lang)
            );
        }
        return Ok(());
    }
    let id =
        match topic {
            None => None,
            Some(word) => Some(card::find_topic(k, word).map(|t| t.id.clone()).ok_or_else(
                || {
                    anyhow::anyhow!(
                        "no anti-fraud topic {word:?}; topics: {}",
                        card::topic_ids(k).join(", ")
                    )
                },
            )?),
        };
    let c = card::render_topic(k, id.as_deref(), lang)
        .map_err(|e| anyhow::anyhow!("{e}; nothing was written"))?;
    let default = match lang {
        Lang::Zh => format!("tips-{}.png", id.as_deref().unwrap_or("all")),
        Lang::En => format!("tips-{}-en.png", id.as_deref().unwrap_or("all")),
    };
    let path = out.map_or_else(|| PathBuf::from(default), std::path::Path::to_path_buf);
    if path.as_os_str() == "-" {
        std::io::stdout().write_all(&c.png)?;
        return Ok(());
    }
    std::fs::write(&path, &c.png)
        .map_err(|e| anyhow::anyhow!("{}: cannot write: {e}", path.display()))?;
    println!(
        "{}: {}×{} px, {} bytes ({})\ncache key: {}",
        path.display(),
        c.width,
        c.height,
        c.png.len(),
        c.caption,
        c.key
    );
    Ok(())
}

/// `reportbot subscribers`.
pub fn subscribers(store: &dyn crate::store::Store) -> anyhow::Result<()> {
    let c = store.counts()?;
    println!(
        "active: {}\nunsubscribed: {}\nblocked: {}",
        c.active, c.unsubscribed, c.blocked
    );
    Ok(())
}

/// `reportbot ask`.
pub fn ask(engine: &Engine, question: Option<&str>, jsonl: bool) -> anyhow::Result<()> {
    if jsonl {
        if question.is_some() {
            anyhow::bail!("--jsonl reads questions from stdin; do not pass a question as well");
        }
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(8);
        let input = std::io::BufReader::with_capacity(1 << 16, std::io::stdin().lock());
        // Written from its own thread: stdout unlocked here.
        let out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout());
        return jsonl::answer_lines(engine, input, out, threads);
    }
    let Some(q) = question else {
        anyhow::bail!("usage: reportbot ask \"问题\" (or reportbot ask --jsonl < questions.txt)");
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", engine.ask(q).text)?;
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
