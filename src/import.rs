//! `reportbot import`: a report's plain text → the data files of one report.
//!
//! The contest runs every year and its news pages look alike, so a new report
//! is imported instead of typed in by hand:
//!
//! ```text
//! import_report(text, "2023-11-….txt")  → Imported { meta, awards, summary, problems }
//! write_report(&imported, out)          → out/reports/<id>/report.json
//!                                         out/reports/<id>/awards.json
//!                                         out/sources/<source name>
//! ```
//!
//! A directory written this way loads with
//! [`Knowledge::load_dir`](crate::knowledge::Knowledge::load_dir)
//! (facts.json and antifraud.json are optional; the vocabulary files fall back
//! to the built-in ones).
//!
//! # The award list (荣誉榜)
//!
//! The list starts at a line that reads `荣誉榜`. Inside it:
//!
//! - a **prize heading** is `[团体|个人]` + `一等奖|二等奖|三等奖|优胜奖` +
//!   `(银行机构组|保险机构组)`, or `最佳人气奖` without a group. Headings are
//!   compared after [`normalize_word`], so full-width brackets and spaces and
//!   traditional characters (`團體一等獎（銀行機構組）`) are accepted.
//!   A short line that mentions a prize (`等奖`, `优胜奖`, `人气奖`) but is no
//!   such heading is reported as a problem, and the rows under it too;
//! - a **row** is `institution  team-or-person`: exactly two fields separated
//!   by one or more ASCII or full-width spaces or tabs, without sentence
//!   punctuation (`。,,;;!!??`), at most 40 characters each, and no quotation
//!   marks in the institution (the winner may have them: `太平洋产险浙江分公司“数智”队`).
//!   The text of both fields is kept exactly as written, only trimmed;
//! - blank lines never end a section (a row after a blank line belongs to the
//!   heading above it).
//!
//! Text between `荣誉榜` and the first prize heading is an introduction and is
//! skipped. After the first heading, a line that is neither blank, a heading
//! nor a row is a **problem inside the list** when the next non-blank line is a
//! prize heading, or when it is not prose (no sentence punctuation, at most 60
//! characters) and it touches the list (the line before it is a heading or a
//! row, or the next non-blank line is a row). Otherwise the list ends there.
//! A prize heading after the end of the list is reported as a problem too, so
//! no prize is ever dropped silently. A heading without rows, a row before any
//! heading and a duplicate row are problems as well. Lines outside the list
//! are not problems.
//!
//! # The report's metadata
//!
//! - `title`: the first non-empty line;
//! - `contest` and `year`: a 4-digit year (not a date like `2022年7月`) and the
//!   text after it up to the first `大赛`, without spaces or punctuation —
//!   looked for in the title first, then in the whole text;
//! - `final_date` and `city`: the first sentence that says `…在<city>举行`
//!   (or `举办`) and has a date `M月D日` (optionally `YYYY年M月D日`; otherwise the
//!   contest's year); a sentence naming the contest wins over one only saying
//!   `大赛`, which wins over nothing (then it is an error);
//! - `published`: `YYYY-MM` of the final;
//! - `teams` / `participants`: the first clause mentioning `选手` (and not
//!   `决赛`) with `N个团队` / `N位(参赛)选手` or `N名(参赛)选手`; `finalists`:
//!   the first clause mentioning `决赛` with `N个团队`. Arabic digits only;
//!   counts the text does not state stay `None`;
//! - `id`: `<year>-<slug>`. The slug is the pinyin of the first province,
//!   municipality or region named in the contest name (`浙江` → `zhejiang`, from
//!   a fixed table, so the id never depends on a pinyin dictionary); failing
//!   that, the first run of ASCII letters and digits in the contest name,
//!   lower-cased; failing that, [`ImportError::NeedsId`] — pass
//!   [`ImportOptions::id`].

use crate::engine::normalize::normalize_word;
use crate::knowledge::{Award, Group, Kind, Level, Prize, ReportMeta};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

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

/// Choices for [`import_report_with`].
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Use this report id instead of deriving `<year>-<slug>` from the contest
    /// name. Lower-case ASCII letters, digits, `-`, `_` and `.`; it names a directory.
    pub id: Option<String>,
}

/// Choices for [`write_report_with`].
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// Replace existing files whose content differs (otherwise that is an error).
    pub overwrite: bool,
}

/// A line inside the award list that could not be placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line of the report text.
    pub line: usize,
    /// The line, trimmed.
    pub text: String,
    pub why: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {} — {}", self.line, self.text, self.why)
    }
}

/// Rows and prizes of one group (`None`: the prizes without a group, 最佳人气奖).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupCount {
    pub group: Option<Group>,
    pub prizes: usize,
    pub rows: usize,
}

/// What was read: counts per group, and the problems.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Banking, insurance, then the prizes without a group; only those with rows.
    pub groups: Vec<GroupCount>,
    pub problems: Vec<Problem>,
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .groups
            .iter()
            .map(|g| match g.group {
                Some(group) => format!(
                    "{}: {} in {}",
                    group.zh(),
                    plural(g.rows, "row", "rows"),
                    plural(g.prizes, "prize", "prizes")
                ),
                None if g.prizes == 1 => {
                    format!(
                        "{}: {}",
                        Level::MostPopular.zh(),
                        plural(g.rows, "row", "rows")
                    )
                }
                None => format!(
                    "{}: {} in {}",
                    Level::MostPopular.zh(),
                    plural(g.rows, "row", "rows"),
                    plural(g.prizes, "prize", "prizes")
                ),
            })
            .collect();
        f.write_str(&parts.join("; "))?;
        if !self.problems.is_empty() {
            write!(
                f,
                "\n{} in the award list:",
                plural(self.problems.len(), "problem", "problems")
            )?;
            for p in &self.problems {
                write!(f, "\n  {p}")?;
            }
        }
        Ok(())
    }
}

/// A report read from its text, ready to be written.
#[derive(Debug, Clone)]
pub struct Imported {
    pub meta: ReportMeta,
    pub awards: Vec<Award>,
    pub summary: Summary,
    /// Lines inside the award list that could not be placed (also in the summary).
    pub problems: Vec<Problem>,
    /// First and last line (1-based) of the award list: the 荣誉榜 heading and
    /// its last heading, row or problem.
    pub award_list: (usize, usize),
    /// The text as given; [`write_report`] writes it to `sources/<meta.source>`.
    pub source_text: String,
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
}

/// Read a report's text. `source_name` is the file name it will have under
/// `sources/` (e.g. `2022-11-zhejiang-banking-insurance-news.txt`).
pub fn import_report(text: &str, source_name: &str) -> Result<Imported, ImportError> {
    import_report_with(text, source_name, &ImportOptions::default())
}

/// [`import_report`] with options (an explicit id).
pub fn import_report_with(
    text: &str,
    source_name: &str,
    options: &ImportOptions,
) -> Result<Imported, ImportError> {
    check_file_name("source name", source_name)?;
    if let Some(id) = &options.id {
        check_id(id)?;
    }
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    // The same line numbering as the loader (`str::lines`).
    let lines: Vec<&str> = body.lines().collect();
    if lines.iter().all(|l| l.trim().is_empty()) {
        return Err(not_a_report("the text is empty"));
    }
    let list = parse_list(&lines)?;

    let title = lines
        .iter()
        .map(|l| l.trim())
        .find(|l| !l.is_empty())
        .unwrap_or_default()
        .to_string();
    let (contest, year) = find_contest(&title)
        .or_else(|| lines.iter().find_map(|l| find_contest(l)))
        .ok_or(ImportError::Missing {
            what: "the contest name (a year followed by its name up to 大赛, e.g. 2022浙江…大赛)",
        })?;
    let fin = find_final(&lines, &contest, year)?.ok_or(ImportError::Missing {
        what: "the date and city of the final (a sentence like `11月22日,…大赛在杭州举行。`)",
    })?;
    let counts = find_counts(&lines);
    let id = match &options.id {
        Some(id) => id.clone(),
        None => derive_id(&contest, year)?,
    };
    let meta = ReportMeta {
        id,
        title,
        contest,
        year,
        final_date: format!("{:04}-{:02}-{:02}", fin.year, fin.month, fin.day),
        city: fin.city,
        published: format!("{:04}-{:02}", fin.year, fin.month),
        source: source_name.to_string(),
        teams: counts.teams,
        participants: counts.participants,
        finalists: counts.finalists,
    };
    let summary = Summary {
        groups: count_groups(&list.awards),
        problems: list.problems.clone(),
    };
    Ok(Imported {
        meta,
        awards: list.awards,
        summary,
        problems: list.problems,
        award_list: list.span,
        source_text: text.to_string(),
    })
}

fn not_a_report(reason: impl Into<String>) -> ImportError {
    ImportError::NotAReport {
        reason: reason.into(),
    }
}

fn count_groups(awards: &[Award]) -> Vec<GroupCount> {
    let mut out = Vec::new();
    for group in Group::ALL.map(Some).into_iter().chain([None]) {
        let mut prizes: Vec<Prize> = Vec::new();
        let mut rows = 0;
        for a in awards.iter().filter(|a| a.group == group) {
            rows += 1;
            if !prizes.contains(&a.prize()) {
                prizes.push(a.prize());
            }
        }
        if rows > 0 {
            out.push(GroupCount {
                group,
                prizes: prizes.len(),
                rows,
            });
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Lines of the award list

/// What one line of the text is, on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Class {
    Blank,
    /// `荣誉榜`
    Honour,
    Heading(Prize),
    /// Names a prize but cannot be read as a heading.
    BadHeading(String),
    Row {
        institution: String,
        winner: String,
    },
    /// Anything else, with why it is not a row.
    Other(String),
}

const SENTENCE_PUNCT: &[char] = &['。', ',', ',', ';', ';', '!', '!', '?', '?'];
const QUOTES: &[char] = &['“', '”', '"', '「', '」', '‘', '’', '\''];
const MAX_FIELD_CHARS: usize = 40;
const MAX_LIST_LINE_CHARS: usize = 60;

fn is_separator(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{3000}' | '\u{a0}')
}

/// A sentence, not an entry of a list.
fn is_prose(line: &str) -> bool {
    line.contains(SENTENCE_PUNCT) || line.chars().count() > MAX_LIST_LINE_CHARS
}

fn classify(raw: &str) -> Class {
    let line = raw.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    if line.is_empty() {
        return Class::Blank;
    }
    let norm = normalize_word(line);
    if norm == "荣誉榜" {
        return Class::Honour;
    }
    if let Some(heading) = parse_heading(&norm) {
        return match heading {
            Ok(prize) => Class::Heading(prize),
            Err(why) => Class::BadHeading(why),
        };
    }
    if !is_prose(line)
        && norm.chars().count() <= 20
        && ["等奖", "优胜奖", "人气奖"]
            .iter()
            .any(|w| norm.contains(w))
    {
        return Class::BadHeading(
            "names a prize but is not a heading like 团体一等奖(银行机构组), 个人优胜奖(保险机构组) or 最佳人气奖"
                .to_string(),
        );
    }
    match split_row(line) {
        Ok((institution, winner)) => Class::Row {
            institution: institution.to_string(),
            winner: winner.to_string(),
        },
        Err(why) => Class::Other(why),
    }
}

/// `Some` when the whole (normalised) line is `[group][kind]level[group]`;
/// `Err` says what is missing for the data model.
fn parse_heading(norm: &str) -> Option<Result<Prize, String>> {
    fn strip_group(s: &str) -> (Option<Group>, &str) {
        for g in Group::ALL {
            if let Some(rest) = s.strip_prefix(g.zh()) {
                return (Some(g), rest);
            }
        }
        (None, s)
    }
    let (group_before, rest) = strip_group(norm);
    let (kind, rest) = if let Some(r) = rest.strip_prefix("团体") {
        (Some(Kind::Team), r)
    } else if let Some(r) = rest.strip_prefix("团队") {
        (Some(Kind::Team), r)
    } else if let Some(r) = rest.strip_prefix("个人") {
        (Some(Kind::Individual), r)
    } else {
        (None, rest)
    };
    let (level, rest) = Level::ALL
        .into_iter()
        .find_map(|l| rest.strip_prefix(l.zh()).map(|r| (l, r)))?;
    let (group_after, rest) = strip_group(rest);
    if !rest.is_empty() {
        return None;
    }
    let group = match (group_before, group_after) {
        (Some(_), Some(_)) => return Some(Err("names its group twice".to_string())),
        (g, None) | (None, g) => g,
    };
    Some(match (level, kind, group) {
        (Level::MostPopular, _, Some(_)) => Err(format!(
            "{} has no group in this data model",
            Level::MostPopular.zh()
        )),
        (Level::MostPopular, kind, None) => Ok(Prize {
            level,
            group: None,
            kind: kind.unwrap_or(Kind::Team),
        }),
        (_, None, _) => Err(format!(
            "{} without 团体 or 个人: cannot tell a team prize from an individual one",
            level.zh()
        )),
        (_, Some(_), None) => Err(format!(
            "no group: expected ({}) or ({})",
            Group::Bank.zh(),
            Group::Insurance.zh()
        )),
        (_, Some(kind), Some(group)) => Ok(Prize {
            level,
            group: Some(group),
            kind,
        }),
    })
}

/// `institution  winner`, or why the line is not such a row.
fn split_row(line: &str) -> Result<(&str, &str), String> {
    let fields: Vec<&str> = line.split(is_separator).filter(|f| !f.is_empty()).collect();
    let [institution, winner] = fields[..] else {
        return Err(if fields.len() == 1 {
            "one field only: expected `institution  team-or-person` separated by spaces".to_string()
        } else {
            format!(
                "{} fields: expected exactly two (institution, team or person) separated by spaces",
                fields.len()
            )
        });
    };
    if line.contains(SENTENCE_PUNCT) {
        return Err("sentence punctuation: not an `institution  team-or-person` row".to_string());
    }
    if institution.contains(QUOTES) {
        return Err("quotation marks in the institution".to_string());
    }
    if institution.chars().count() > MAX_FIELD_CHARS || winner.chars().count() > MAX_FIELD_CHARS {
        return Err(format!("a field longer than {MAX_FIELD_CHARS} characters"));
    }
    Ok((institution, winner))
}

struct List {
    awards: Vec<Award>,
    problems: Vec<Problem>,
    span: (usize, usize),
}

fn parse_list(lines: &[&str]) -> Result<List, ImportError> {
    let classes: Vec<Class> = lines.iter().map(|l| classify(l)).collect();
    let honours: Vec<usize> = (0..classes.len())
        .filter(|&i| classes[i] == Class::Honour)
        .collect();
    let Some(&first) = honours.first() else {
        return Err(not_a_report(
            "no 荣誉榜 heading: the text has no award list",
        ));
    };
    let mut reason = String::new();
    for &start in &honours {
        match parse_list_at(lines, &classes, start) {
            Ok(list) => return Ok(list),
            Err(why) if start == first => reason = why,
            Err(_) => {}
        }
    }
    Err(not_a_report(reason))
}

/// The award list after the 荣誉榜 at index `start`, or why there is none.
fn parse_list_at(lines: &[&str], classes: &[Class], start: usize) -> Result<List, String> {
    let problem = |i: usize, why: String| Problem {
        line: i + 1,
        text: lines[i].trim().to_string(),
        why,
    };
    let next_nonblank = |i: usize| classes[i + 1..].iter().find(|c| **c != Class::Blank);

    let mut awards: Vec<Award> = Vec::new();
    let mut problems = Vec::new();
    // The heading rows go under: a prize with its line and row count, or a
    // heading that could not be read (its line).
    let mut current: Option<(Result<Prize, usize>, usize, usize)> = None;
    let mut seen_heading = false;
    let mut last = start;
    let mut ended_at = None;
    let mut rows_at: HashMap<(Prize, &str, &str), usize> = HashMap::new();

    let close = |current: &Option<(Result<Prize, usize>, usize, usize)>,
                 problems: &mut Vec<Problem>| {
        if let Some((Ok(prize), at, 0)) = current {
            problems.push(problem(
                *at,
                format!("no rows under the prize heading {prize}"),
            ));
        }
    };

    for i in start + 1..classes.len() {
        match &classes[i] {
            Class::Blank => continue,
            Class::Heading(prize) => {
                close(&current, &mut problems);
                current = Some((Ok(*prize), i, 0));
                seen_heading = true;
            }
            Class::BadHeading(why) => {
                close(&current, &mut problems);
                problems.push(problem(i, why.clone()));
                current = Some((Err(i + 1), i, 0));
                seen_heading = true;
            }
            Class::Row {
                institution,
                winner,
            } => match &mut current {
                Some((Ok(prize), _, count)) => {
                    let key = (*prize, institution.as_str(), winner.as_str());
                    if let Some(first) = rows_at.get(&key) {
                        problems.push(problem(
                            i,
                            format!("the same row as line {first} under {prize}"),
                        ));
                    } else {
                        rows_at.insert(key, i + 1);
                        *count += 1;
                        awards.push(Award {
                            group: prize.group,
                            kind: prize.kind,
                            level: prize.level,
                            institution: institution.clone(),
                            winner: winner.clone(),
                            line: i + 1,
                        });
                    }
                }
                Some((Err(heading_line), _, _)) => problems.push(problem(
                    i,
                    format!(
                        "row under the heading at line {heading_line}, which could not be read"
                    ),
                )),
                None => problems.push(problem(i, "row before any prize heading".to_string())),
            },
            Class::Honour | Class::Other(_) => {
                if !seen_heading {
                    // Introduction between 荣誉榜 and the first heading.
                    continue;
                }
                let why = match &classes[i] {
                    Class::Other(why) => why.clone(),
                    _ => "a second 荣誉榜 heading inside the award list".to_string(),
                };
                let next = next_nonblank(i);
                let touches = matches!(
                    classes[i - 1],
                    Class::Heading(_) | Class::BadHeading(_) | Class::Row { .. }
                ) || matches!(next, Some(Class::Row { .. } | Class::BadHeading(_)));
                let inside = matches!(next, Some(Class::Heading(_)))
                    || (!is_prose(lines[i].trim()) && touches);
                if !inside {
                    ended_at = Some(i);
                    break;
                }
                problems.push(problem(i, why));
            }
        }
        last = i;
    }
    close(&current, &mut problems);

    if !seen_heading {
        return Err(format!(
            "the 荣誉榜 at line {} is not followed by a prize heading such as 团体一等奖(银行机构组)",
            start + 1
        ));
    }
    if awards.is_empty() {
        return Err(format!(
            "the award list after the 荣誉榜 at line {} has no rows (`institution  team-or-person`)",
            start + 1
        ));
    }
    if let Some(end) = ended_at {
        for (j, class) in classes.iter().enumerate().skip(end + 1) {
            if let Class::Heading(prize) = class {
                problems.push(problem(
                    j,
                    format!(
                        "prize heading {prize} after the award list ended at line {}; its rows were not imported",
                        end + 1
                    ),
                ));
            }
        }
    }
    problems.sort_by_key(|p| p.line);
    Ok(List {
        awards,
        problems,
        span: (start + 1, last + 1),
    })
}

// ---------------------------------------------------------------------------
// Metadata

/// `2022浙江…大赛` and its year, the first in `s`.
fn find_contest(s: &str) -> Option<(String, u16)> {
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    for k in 0..chars.len() {
        if k > 0 && chars[k - 1].1.is_ascii_digit() {
            continue;
        }
        let Some(digits) = chars.get(k..k + 4) else {
            break;
        };
        if !digits.iter().all(|(_, c)| c.is_ascii_digit()) {
            continue;
        }
        match chars.get(k + 4) {
            Some((_, c)) if c.is_ascii_digit() => continue,
            // `2022年7月` is a date; `2023年浙江…大赛` is a contest.
            Some((_, '年')) if chars.get(k + 5).is_some_and(|(_, c)| digit(*c).is_some()) => {
                continue;
            }
            None => break,
            _ => {}
        }
        let from = chars[k].0;
        let end = chars[k + 4..]
            .iter()
            .find(|(_, c)| !c.is_alphanumeric())
            .map_or(s.len(), |(i, _)| *i);
        let segment = &s[from..end];
        let Some(at) = segment.find("大赛") else {
            continue;
        };
        let contest = &segment[..at + "大赛".len()];
        let name_chars = contest.chars().count() - 4;
        if !(3..=60).contains(&name_chars) {
            continue;
        }
        let year: u16 = contest[..4].parse().ok()?;
        return Some((contest.to_string(), year));
    }
    None
}

struct Final {
    year: u16,
    month: u32,
    day: u32,
    city: String,
}

fn digit(c: char) -> Option<u32> {
    match c {
        '0'..='9' => Some(c as u32 - '0' as u32),
        '０'..='９' => Some(c as u32 - '０' as u32),
        _ => None,
    }
}

/// The number written right before byte `end` of `s`.
fn number_before(s: &str, end: usize) -> Option<u32> {
    let digits: Vec<u32> = s[..end]
        .chars()
        .rev()
        .map_while(digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    if digits.is_empty() || digits.len() > 9 {
        return None;
    }
    Some(digits.iter().fold(0, |n, d| n * 10 + d))
}

/// The number written right after byte `start` of `s`, and where it ends.
fn number_after(s: &str, start: usize) -> Option<(u32, usize)> {
    let mut n = 0u32;
    let mut end = start;
    for (i, c) in s[start..].char_indices() {
        let Some(d) = digit(c) else { break };
        n = n.checked_mul(10)?.checked_add(d)?;
        end = start + i + c.len_utf8();
    }
    (end > start).then_some((n, end))
}

/// The first `[YYYY年]M月D日` in `s`: (year, month, day).
fn find_date(s: &str) -> Option<Date> {
    for (at, _) in s.match_indices('月') {
        let Some(month) = number_before(s, at) else {
            continue;
        };
        let Some((day, end)) = number_after(s, at + '月'.len_utf8()) else {
            continue;
        };
        if !s[end..].starts_with('日') && !s[end..].starts_with('号') {
            continue;
        }
        let month_start = s[..at]
            .char_indices()
            .rev()
            .take_while(|(_, c)| digit(*c).is_some())
            .last()
            .map_or(at, |(i, _)| i);
        let year = s[..month_start]
            .strip_suffix('年')
            .and_then(|before| number_before(before, before.len()));
        return Some((year, month, day));
    }
    None
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

/// `[YYYY年]M月D日` as written: the year only when the text gives it.
type Date = (Option<u32>, u32, u32);

fn find_final(lines: &[&str], contest: &str, year: u16) -> Result<Option<Final>, ImportError> {
    // (rank, line index, date, city): rank 0 names the contest, 1 only 大赛.
    let mut best: Option<(u8, usize, Date, String)> = None;
    for (i, line) in lines.iter().enumerate() {
        for sentence in line.split(['。', '!', '?', '!', '?', ';', ';']) {
            let Some(held) = ["举行", "举办"]
                .iter()
                .filter_map(|w| sentence.find(w))
                .min()
            else {
                continue;
            };
            let before = &sentence[..held];
            let Some(at) = before.rfind('在') else {
                continue;
            };
            let city = before[at + '在'.len_utf8()..].trim();
            let city_chars = city.chars().count();
            if !(1..=10).contains(&city_chars)
                || !city.chars().all(crate::engine::normalize::is_cjk)
            {
                continue;
            }
            let rank = if sentence.contains(contest) {
                0
            } else if sentence.contains("大赛") {
                1
            } else {
                continue;
            };
            let Some(date) = find_date(&sentence[..at]) else {
                continue;
            };
            if best.as_ref().is_none_or(|b| rank < b.0) {
                best = Some((rank, i, date, city.to_string()));
            }
        }
    }
    let Some((_, i, (date_year, month, day), city)) = best else {
        return Ok(None);
    };
    let year = date_year.unwrap_or(u32::from(year));
    let Ok(year16) = u16::try_from(year) else {
        return Err(ImportError::Line {
            line: i + 1,
            message: format!("the final's year {year} is not a year"),
        });
    };
    if day == 0 || day > days_in_month(year, month) {
        return Err(ImportError::Line {
            line: i + 1,
            message: format!("the final's date {year}年{month}月{day}日 does not exist"),
        });
    }
    Ok(Some(Final {
        year: year16,
        month,
        day,
        city,
    }))
}

#[derive(Debug, Default)]
struct Counts {
    teams: Option<u32>,
    participants: Option<u32>,
    finalists: Option<u32>,
}

fn count_before_any(clause: &str, suffixes: &[&str]) -> Option<u32> {
    suffixes
        .iter()
        .flat_map(|s| clause.match_indices(s))
        .filter_map(|(at, _)| number_before(clause, at).map(|n| (at, n)))
        .min_by_key(|(at, _)| *at)
        .map(|(_, n)| n)
}

fn find_counts(lines: &[&str]) -> Counts {
    const TEAMS: &[&str] = &["个团队", "支团队", "支队伍", "个队伍", "支参赛队"];
    let mut counts = Counts::default();
    for line in lines {
        for clause in line.split(['。', ',', ',', ';', ';', '!', '!', '?', '?']) {
            if clause.contains("决赛") {
                if counts.finalists.is_none() {
                    counts.finalists = count_before_any(clause, TEAMS);
                }
                continue;
            }
            if !clause.contains("选手") {
                continue;
            }
            if counts.teams.is_none() {
                counts.teams = count_before_any(clause, TEAMS);
            }
            if counts.participants.is_none() {
                counts.participants = clause.match_indices("选手").find_map(|(at, _)| {
                    let before = clause[..at].strip_suffix("参赛").unwrap_or(&clause[..at]);
                    let before = before
                        .strip_suffix('位')
                        .or_else(|| before.strip_suffix('名'))?;
                    number_before(before, before.len())
                });
            }
        }
    }
    counts
}

/// Provinces, municipalities and regions, for the id's slug.
const PLACES: &[(&str, &str)] = &[
    ("北京", "beijing"),
    ("天津", "tianjin"),
    ("河北", "hebei"),
    ("山西", "shanxi"),
    ("内蒙古", "neimenggu"),
    ("辽宁", "liaoning"),
    ("吉林", "jilin"),
    ("黑龙江", "heilongjiang"),
    ("上海", "shanghai"),
    ("江苏", "jiangsu"),
    ("浙江", "zhejiang"),
    ("安徽", "anhui"),
    ("福建", "fujian"),
    ("江西", "jiangxi"),
    ("山东", "shandong"),
    ("河南", "henan"),
    ("湖北", "hubei"),
    ("湖南", "hunan"),
    ("广东", "guangdong"),
    ("广西", "guangxi"),
    ("海南", "hainan"),
    ("重庆", "chongqing"),
    ("四川", "sichuan"),
    ("贵州", "guizhou"),
    ("云南", "yunnan"),
    ("西藏", "xizang"),
    ("陕西", "shaanxi"),
    ("甘肃", "gansu"),
    ("青海", "qinghai"),
    ("宁夏", "ningxia"),
    ("新疆", "xinjiang"),
    ("香港", "hongkong"),
    ("澳门", "macau"),
    ("台湾", "taiwan"),
];

/// `<year>-<slug>`; see the module documentation.
fn derive_id(contest: &str, year: u16) -> Result<String, ImportError> {
    let name = contest.get(4..).unwrap_or_default();
    let place = PLACES
        .iter()
        .filter_map(|(zh, slug)| name.find(zh).map(|at| (at, *slug)))
        .min_by_key(|(at, _)| *at)
        .map(|(_, slug)| slug.to_string());
    let slug = place.or_else(|| {
        name.split(|c: char| !c.is_ascii_alphanumeric())
            .find(|w| !w.is_empty())
            .map(str::to_ascii_lowercase)
    });
    match slug {
        Some(slug) => Ok(format!("{year}-{slug}")),
        None => Err(ImportError::NeedsId {
            contest: contest.to_string(),
        }),
    }
}

fn check_id(id: &str) -> Result<(), ImportError> {
    let bad = |why| {
        Err(ImportError::InvalidName {
            what: "report id",
            value: id.to_string(),
            why,
        })
    };
    if id.is_empty() || id.len() > 64 {
        return bad("must be 1 to 64 characters");
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
    {
        return bad("only lower-case ASCII letters, digits, `-`, `_` and `.` are allowed");
    }
    if !id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return bad("must start with a letter or a digit");
    }
    Ok(())
}

fn check_file_name(what: &'static str, name: &str) -> Result<(), ImportError> {
    let bad = |why| {
        Err(ImportError::InvalidName {
            what,
            value: name.to_string(),
            why,
        })
    };
    if name.trim().is_empty() {
        return bad("must not be empty");
    }
    if name.contains(['/', '\\', '\0']) || name == "." || name == ".." {
        return bad("must be a plain file name, without a directory");
    }
    if name.starts_with('.') {
        return bad("must not start with a dot");
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Writing

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStatus {
    Created,
    /// Existed with other content; replaced because overwriting was allowed.
    Replaced,
    /// Existed with the same content; left alone.
    Unchanged,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    pub path: PathBuf,
    pub status: FileStatus,
}

/// The files of one report under the output directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFiles {
    /// `<out>/reports/<id>`
    pub report_dir: PathBuf,
    /// report.json, awards.json, then the source text.
    pub files: Vec<WrittenFile>,
}

impl fmt::Display for WrittenFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, file) in self.files.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            let status = match file.status {
                FileStatus::Created => "created  ",
                FileStatus::Replaced => "replaced ",
                FileStatus::Unchanged => "unchanged",
            };
            write!(f, "{status} {}", file.path.display())?;
        }
        Ok(())
    }
}

/// Write `<out>/reports/<id>/{report,awards}.json` and `<out>/sources/<source>`.
/// An existing file with other content is an error ([`ImportError::Exists`]);
/// the same content is left alone.
pub fn write_report(imported: &Imported, out_dir: &Path) -> Result<WrittenFiles, ImportError> {
    write_report_with(imported, out_dir, &WriteOptions::default())
}

/// [`write_report`] with options (overwriting).
pub fn write_report_with(
    imported: &Imported,
    out_dir: &Path,
    options: &WriteOptions,
) -> Result<WrittenFiles, ImportError> {
    let meta = &imported.meta;
    check_id(&meta.id)?;
    check_file_name("source name", &meta.source)?;
    let report_dir = out_dir.join("reports").join(&meta.id);
    check_id_free(out_dir, &meta.id, &report_dir)?;

    let planned = [
        (report_dir.join("report.json"), imported.report_json()?),
        (report_dir.join("awards.json"), imported.awards_json()?),
        (
            out_dir.join("sources").join(&meta.source),
            imported.source_text.clone(),
        ),
    ];
    // Check everything before writing anything.
    let mut files = Vec::new();
    for (path, content) in &planned {
        let status = match std::fs::read(path) {
            Ok(existing) if existing == content.as_bytes() => FileStatus::Unchanged,
            Ok(_) if options.overwrite => FileStatus::Replaced,
            Ok(_) => return Err(ImportError::Exists { path: path.clone() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => FileStatus::Created,
            Err(source) => {
                return Err(ImportError::Io {
                    path: path.clone(),
                    source,
                });
            }
        };
        files.push(WrittenFile {
            path: path.clone(),
            status,
        });
    }
    for ((path, content), file) in planned.iter().zip(&files) {
        if file.status != FileStatus::Unchanged {
            write_atomically(path, content.as_bytes())?;
        }
    }
    Ok(WrittenFiles { report_dir, files })
}

/// Another directory under `reports/` whose report.json has this id would make
/// the data directory fail to load.
fn check_id_free(out_dir: &Path, id: &str, report_dir: &Path) -> Result<(), ImportError> {
    let reports = out_dir.join("reports");
    let Ok(entries) = std::fs::read_dir(&reports) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        if dir == report_dir {
            continue;
        }
        let path = dir.join("report.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let other: Option<String> = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("id").and_then(|id| id.as_str()).map(str::to_string));
        if other.as_deref() == Some(id) {
            return Err(ImportError::IdTaken {
                id: id.to_string(),
                path,
            });
        }
    }
    Ok(())
}

fn write_atomically(path: &Path, content: &[u8]) -> Result<(), ImportError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ImportError::Io { path, source }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.import-tmp"));
    std::fs::write(&tmp, content).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        ImportError::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prize(level: Level, group: Option<Group>, kind: Kind) -> Prize {
        Prize { level, group, kind }
    }

    #[test]
    fn headings_in_all_spellings() {
        let bank_first = prize(Level::First, Some(Group::Bank), Kind::Team);
        for h in [
            "团体一等奖(银行机构组)",
            "团体一等奖（银行机构组）",
            "团体一等奖 （银行机构组）",
            "  團體一等獎（銀行機構組）",
            "银行机构组团体一等奖",
            "团体一等奖:银行机构组",
        ] {
            assert_eq!(classify(h), Class::Heading(bank_first), "{h}");
        }
        assert_eq!(
            classify("個人優勝獎(保險機構組)"),
            Class::Heading(prize(
                Level::Excellence,
                Some(Group::Insurance),
                Kind::Individual
            ))
        );
        assert_eq!(
            classify("最佳人气奖"),
            Class::Heading(prize(Level::MostPopular, None, Kind::Team))
        );
        assert_eq!(classify("榮譽榜"), Class::Honour);
        for bad in [
            "一等奖(银行机构组)",
            "团体一等奖",
            "最佳人气奖(银行机构组)",
            "团体一等奖 银行组",
            "团体特等奖(银行机构组)",
        ] {
            assert!(matches!(classify(bad), Class::BadHeading(_)), "{bad}");
        }
    }

    #[test]
    fn rows_keep_their_text() {
        assert_eq!(
            classify("太保财险浙江分公司 \u{3000}\t太平洋产险浙江分公司“数智”队  "),
            Class::Row {
                institution: "太保财险浙江分公司".into(),
                winner: "太平洋产险浙江分公司“数智”队".into()
            }
        );
        for other in [
            "浙商银行",
            "本报记者 赵琦 通讯员 吴梦霞",
            "打出反诈“组合拳” 守护人民“钱袋子”",
            "工行温州分行联合蒲鞋市小学开展“金融知识进校园”活动。 侯明哲摄",
        ] {
            assert!(matches!(classify(other), Class::Other(_)), "{other}");
        }
    }

    #[test]
    fn contest_date_and_counts() {
        assert_eq!(
            find_contest("大赛自2022年7月开赛以来,2023浙江某某大赛顺利举办"),
            Some(("2023浙江某某大赛".to_string(), 2023))
        );
        assert_eq!(find_contest("2022年7月大赛"), None);
        assert_eq!(
            find_contest("2023年浙江某某大赛顺利举办"),
            Some(("2023年浙江某某大赛".to_string(), 2023))
        );
        assert_eq!(find_date("11月22日,由"), Some((None, 11, 22)));
        assert_eq!(find_date("于2021年3月5日"), Some((Some(2021), 3, 5)));
        let lines =
            ["有来自全省66个团队的307位参赛选手参与角逐,经过初赛、复赛,最终决出20个团队进入决赛。"];
        let c = find_counts(&lines);
        assert_eq!(
            (c.teams, c.participants, c.finalists),
            (Some(66), Some(307), Some(20))
        );
        let lines = ["12月1日,2023江苏测试大赛在南京举行。"];
        let f = find_final(&lines, "2023江苏测试大赛", 2023)
            .unwrap()
            .unwrap();
        assert_eq!(
            (f.year, f.month, f.day, f.city.as_str()),
            (2023, 12, 1, "南京")
        );
        let lines = ["2月30日,2023江苏测试大赛在南京举行。"];
        assert!(matches!(
            find_final(&lines, "2023江苏测试大赛", 2023),
            Err(ImportError::Line { line: 1, .. })
        ));
    }

    #[test]
    fn ids() {
        assert_eq!(
            derive_id("2022浙江银行业大赛", 2022).unwrap(),
            "2022-zhejiang"
        );
        assert_eq!(derive_id("2024ABC数据大赛", 2024).unwrap(), "2024-abc");
        assert!(matches!(
            derive_id("2024数据大赛", 2024),
            Err(ImportError::NeedsId { .. })
        ));
        assert!(check_id("../x").is_err());
        assert!(check_id("2024-x").is_ok());
        assert!(check_file_name("source name", "a/b.txt").is_err());
    }
}
