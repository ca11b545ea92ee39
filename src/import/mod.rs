//! `reportbot import`: a published report → the data files of one report.
//!
//! The contest runs every year and its results are published in many shapes
//! (a news page, a CMS article, a table, a CSV attachment), so a new report is
//! imported instead of typed in by hand:
//!
//! ```text
//! import_report(text, "2023-11-….html")  → Imported { meta, awards, summary, problems }
//! write_report(&imported, out)           → out/reports/<id>/report.json
//!                                          out/reports/<id>/awards.json
//!                                          out/reports/<id>/prizes.json (new prizes only)
//!                                          out/sources/<source>   (what rows are checked against)
//!                                          out/sources/<page>.html (an HTML page, kept as given)
//! ```
//!
//! A directory written this way loads with
//! [`Knowledge::load_dir`](crate::knowledge::Knowledge::load_dir)
//! (facts.json and antifraud.json are optional; the vocabulary files fall back
//! to the built-in ones).
//!
//! One module, one step:
//!
//! - [`source`]: the input's format (text, CSV, TSV, HTML) → the stored source
//!   text and its numbered lines; [`html`] reads a saved page;
//! - [`line`]: what one line is (list heading, heading, entries, note);
//!   [`row`]: one entry (`institution  winner` in its written forms);
//!   [`table`]: header rows and table rows;
//! - [`prize`]: every word that names a prize, kind or group — the one place
//!   prize recognition lives — and the declarations of prizes beyond the
//!   standard five (特等奖, 最佳创意奖 …) that a page names;
//! - [`list`]: where the award list is and which prize each entry is under;
//! - [`meta`]: title, contest, year, final, counts, id;
//! - [`summary`]: what was understood; [`write`]: the files.
//!
//! A row is never invented: every award keeps the line of the stored source
//! it was read from, the importer checks that the line names its institution
//! and winner (as the loader does again), and anything that cannot be placed
//! is a [`Problem`] with its line number, never silently dropped.

mod html;
mod line;
mod list;
mod meta;
mod prize;
mod row;
mod source;
mod summary;
mod table;
mod write;

pub use source::Format;
pub use summary::{GroupCount, PrizeRows, Problem, Summary};
pub use write::{
    FileStatus, WriteOptions, WrittenFile, WrittenFiles, write_report, write_report_with,
};

use crate::knowledge::{Award, Levels, PrizeDecl, ReportMeta};
use std::path::PathBuf;

/// Why a text could not be imported or the files not written.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The text is not a report with an award list.
    #[error("not a report: {reason}")]
    NotAReport { reason: String },
    /// Something the report must state was not found.
    #[error("cannot find {what} in the report text")]
    Missing { what: &'static str },
    /// A line of the report says something that cannot be right.
    #[error("line {line}: {message}")]
    Line { line: usize, message: String },
    /// No id can be made from the contest name; pass one explicitly.
    #[error(
        "cannot derive a report id from the contest name {contest:?} (no province and no ASCII word in it); pass an explicit id"
    )]
    NeedsId { contest: String },
    /// An id or a source file name that cannot be used as a file name.
    #[error("invalid {what} {value:?}: {why}")]
    InvalidName {
        what: &'static str,
        value: String,
        why: &'static str,
    },
    /// A value given in [`ImportOptions`] that cannot be used.
    #[error("invalid {what} {value:?}: {why}")]
    InvalidOption {
        what: &'static str,
        value: String,
        why: String,
    },
    /// Writing would replace a different existing file.
    #[error(
        "{path}: already exists with different content (overwrite it explicitly to replace it)"
    )]
    Exists { path: PathBuf },
    /// Another report directory already uses this id.
    #[error("{path}: report id {id:?} is already used by this report")]
    IdTaken { id: String, path: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Choices for [`import_report_with`]; what is given here wins over what the
/// page says.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Use this report id instead of deriving `<year>-<slug>` from the contest
    /// name. Lower-case ASCII letters, digits, `-`, `_` and `.`; it names a directory.
    pub id: Option<String>,
    /// Read the input as this format instead of guessing from its name and content.
    pub format: Option<Format>,
    /// The contest's name; it must occur in the text.
    pub contest: Option<String>,
    /// The contest's year.
    pub year: Option<u16>,
    /// The date of the final, `YYYY-MM-DD`.
    pub final_date: Option<String>,
    /// Where the final took place.
    pub city: Option<String>,
    /// Prizes beyond the standard five that the page may name, as in a
    /// prizes.json: a name they give (`zh` or an alias) is read as that
    /// prize, with its id, label and rank, instead of the importer's
    /// defaults (see [`prize`]).
    pub prizes: Vec<PrizeDecl>,
}

/// A report read from its text, ready to be written.
#[derive(Debug, Clone)]
pub struct Imported {
    pub meta: ReportMeta,
    pub awards: Vec<Award>,
    /// The standard levels and the prizes the report declares (written to
    /// prizes.json when there are any).
    pub levels: Levels,
    pub summary: Summary,
    /// Lines inside the award list that could not be placed (also in the summary).
    pub problems: Vec<Problem>,
    /// First and last line (1-based) of the award list in the stored source.
    pub award_list: (usize, usize),
    /// How the input was read.
    pub format: Format,
    /// The stored source: written to `sources/<meta.source>`; award rows'
    /// lines are lines of this text. The input as given, except for HTML,
    /// where it is the article's text.
    pub source_text: String,
    /// The page an HTML import was read from, with its file name (written
    /// beside the stored source).
    pub original: Option<(String, String)>,
}

impl Imported {
    /// `report.json` as it is written: pretty JSON, 2-space indent, final newline.
    pub fn report_json(&self) -> Result<String, ImportError> {
        let mut s = serde_json::to_string_pretty(&self.meta)?;
        s.push('\n');
        Ok(s)
    }

    /// `awards.json` as it is written: an array with one object a line, keys
    /// group, kind, level, institution, winner, line (the layout of the shipped files).
    pub fn awards_json(&self) -> Result<String, ImportError> {
        let mut rows = Vec::with_capacity(self.awards.len());
        for a in &self.awards {
            rows.push(format!(
                "  {{\"group\": {}, \"kind\": {}, \"level\": {}, \"institution\": {}, \"winner\": {}, \"line\": {}}}",
                serde_json::to_value(a.group)?,
                serde_json::to_value(a.kind)?,
                serde_json::to_value(a.level)?,
                serde_json::Value::from(a.institution.as_str()),
                serde_json::Value::from(a.winner.as_str()),
                a.line
            ));
        }
        Ok(format!("[\n{}\n]\n", rows.join(",\n")))
    }

    /// `prizes.json` as it is written (`None` when the report has only
    /// standard prizes): one declaration a line, like awards.json.
    pub fn prizes_json(&self) -> Result<Option<String>, ImportError> {
        let declared = self.levels.declared();
        if declared.is_empty() {
            return Ok(None);
        }
        let rows = declared
            .iter()
            .map(|d| serde_json::to_string(d).map(|row| format!("  {row}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(format!("[\n{}\n]\n", rows.join(",\n"))))
    }
}

/// Read a report. `source_name` is its file name (e.g.
/// `2022-11-zhejiang-banking-insurance-news.txt`); its extension tells the
/// format (`.html`, `.csv`, `.tsv`; anything else is text unless it starts
/// like an HTML document).
pub fn import_report(text: &str, source_name: &str) -> Result<Imported, ImportError> {
    import_report_with(text, source_name, &ImportOptions::default())
}

/// [`import_report`] with options (an explicit id, format, contest, year, date, city).
pub fn import_report_with(
    text: &str,
    source_name: &str,
    options: &ImportOptions,
) -> Result<Imported, ImportError> {
    meta::check_file_name("source name", source_name)?;
    if let Some(id) = &options.id {
        meta::check_id(id)?;
    }
    if let Err(e) = Levels::new(options.prizes.clone()) {
        let id = options
            .prizes
            .get(e.index)
            .map_or(String::new(), |d| d.id.to_string());
        return Err(invalid_option(
            "prize declaration",
            &id,
            format!("field `{}`: {}", e.field, e.message),
        ));
    }
    let format = options
        .format
        .unwrap_or_else(|| Format::detect(source_name, text));
    let source = source::read(text, source_name, format)?;
    if source.lines.iter().all(|l| l.text.trim().is_empty()) {
        return Err(not_a_report("the text is empty"));
    }
    let list = list::parse(&source.lines, &options.prizes).map_err(not_a_report)?;
    // Declarations the importer made and those given can disagree (a given
    // alias that is a default's name): say so rather than write data that
    // does not load.
    let levels = Levels::new(list.prizes.clone()).map_err(|e| {
        let id = list
            .prizes
            .get(e.index)
            .map_or(String::new(), |d| d.id.to_string());
        invalid_option(
            "prize declaration",
            &id,
            format!("field `{}`: {}", e.field, e.message),
        )
    })?;
    let lines: Vec<&str> = source.lines.iter().map(|l| l.text.as_str()).collect();
    let meta = read_meta(&lines, &source, options)?;
    let summary = Summary::new(&list.awards, list.problems.clone(), levels.clone());
    Ok(Imported {
        meta,
        levels,
        awards: list.awards,
        summary,
        problems: list.problems,
        award_list: list.span,
        format,
        source_text: source.text,
        original: source.original,
    })
}

fn not_a_report(reason: impl Into<String>) -> ImportError {
    ImportError::NotAReport {
        reason: reason.into(),
    }
}

fn invalid_option(what: &'static str, value: &str, why: impl Into<String>) -> ImportError {
    ImportError::InvalidOption {
        what,
        value: value.to_string(),
        why: why.into(),
    }
}

/// Traditional characters as simplified ones, character for character (so
/// positions carry over to the text as written); the text itself when the
/// conversion would change its length.
fn simplified(s: &str) -> String {
    if !s.chars().any(crate::engine::normalize::is_cjk) {
        return s.to_string();
    }
    let out = fast2s::convert(s);
    if out.chars().count() == s.chars().count() {
        out
    } else {
        s.to_string()
    }
}

/// `YYYY-MM-DD` → (year, month, day), checked.
fn parse_date(s: &str) -> Result<(u16, u32, u32), ImportError> {
    let bad = |why: &str| invalid_option("date", s, why);
    let parts: Vec<&str> = s.trim().split('-').collect();
    let [y, m, d] = parts[..] else {
        return Err(bad("expected YYYY-MM-DD"));
    };
    let (Ok(y), Ok(m), Ok(d)) = (y.parse::<u16>(), m.parse::<u32>(), d.parse::<u32>()) else {
        return Err(bad("expected YYYY-MM-DD"));
    };
    if !(1..=12).contains(&m) || d == 0 || d > meta::days_in_month(u32::from(y), m) {
        return Err(bad("no such day"));
    }
    Ok((y, m, d))
}

fn read_meta(
    lines: &[&str],
    source: &source::Source,
    options: &ImportOptions,
) -> Result<ReportMeta, ImportError> {
    let title = lines
        .iter()
        .map(|l| l.trim())
        .find(|l| !l.is_empty())
        .unwrap_or_default()
        .to_string();
    // Pages in traditional characters (繁體版) are searched in simplified
    // form; the contest's name is taken from the text as written, because
    // the loader checks that the text contains it.
    let simple: Vec<String> = lines.iter().map(|l| simplified(l)).collect();
    let simple_lines: Vec<&str> = simple.iter().map(String::as_str).collect();
    let contest_in = |line: &str| {
        let s = simplified(line);
        let (c, year) = meta::find_contest(&s)?;
        let at = s.find(&c)?;
        let from = s[..at].chars().count();
        let original: String = line.chars().skip(from).take(c.chars().count()).collect();
        Some((original, year))
    };
    let found = contest_in(&title).or_else(|| lines.iter().find_map(|l| contest_in(l)));
    let (contest, year) = match (&options.contest, found) {
        (Some(c), found) => {
            let c = c.trim();
            if c.is_empty() || !source.text.contains(c) {
                return Err(invalid_option(
                    "contest name",
                    c,
                    "does not occur in the report text (the loader checks that it does)",
                ));
            }
            let year = meta::find_contest(c)
                .map(|(_, y)| y)
                .or(options.year)
                .or(found.map(|(_, y)| y))
                .or_else(|| {
                    options
                        .final_date
                        .as_deref()
                        .and_then(|d| parse_date(d).ok())
                        .map(|d| d.0)
                });
            let Some(year) = year else {
                return Err(ImportError::Missing {
                    what: "the contest's year (pass it explicitly)",
                });
            };
            (c.to_string(), year)
        }
        (None, Some(found)) => found,
        (None, None) => {
            return Err(ImportError::Missing {
                what: "the contest name (a year followed by its name up to 大赛, e.g. 2022浙江…大赛; or pass the name explicitly)",
            });
        }
    };
    let year = options.year.unwrap_or(year);
    let given_date = options.final_date.as_deref().map(parse_date).transpose()?;
    let given_city = match options.city.as_deref().map(str::trim) {
        Some("") => return Err(invalid_option("city", "", "must not be empty")),
        other => other.map(str::to_string),
    };
    let found = match (&given_date, &given_city) {
        (Some(_), Some(_)) => None,
        _ => meta::find_final(&simple_lines, &simplified(&contest), year)?,
    };
    let (y, m, d) = match (given_date, &found) {
        (Some(date), _) => date,
        (None, Some(f)) => (f.year, f.month, f.day),
        (None, None) => {
            return Err(ImportError::Missing {
                what: "the date and city of the final (a sentence like `11月22日,…大赛在杭州举行。`; or pass the date and city explicitly)",
            });
        }
    };
    let city = match (given_city, found) {
        (Some(c), _) => c,
        (None, Some(f)) => f.city,
        (None, None) => {
            return Err(ImportError::Missing {
                what: "the city of the final (a sentence like `…大赛在杭州举行。`; or pass the city explicitly)",
            });
        }
    };
    let counts = meta::find_counts(&simple_lines);
    let id = match &options.id {
        Some(id) => id.clone(),
        None => meta::derive_id(&contest, year)?,
    };
    Ok(ReportMeta {
        id,
        title,
        contest,
        year,
        final_date: format!("{y:04}-{m:02}-{d:02}"),
        city,
        published: format!("{y:04}-{m:02}"),
        source: source.name.clone(),
        teams: counts.teams,
        participants: counts.participants,
        finalists: counts.finalists,
    })
}
