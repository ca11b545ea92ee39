//! Reading a data directory (or the built-in copy) and checking it.

use super::{
    AntiFraud, Award, Fact, Institution, Knowledge, Levels, Lexicon, PrizeDecl, Report, ReportMeta,
    ReportTexts, Subject,
};
use serde::de::DeserializeOwned;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Why data could not be loaded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {place}: {message}")]
    Invalid {
        path: PathBuf,
        place: String,
        message: String,
    },
    #[error("{path}: no reports found (expected reports/<id>/report.json)")]
    NoReports { path: PathBuf },
}

fn invalid(path: &Path, place: impl Into<String>, message: impl Into<String>) -> DataError {
    DataError::Invalid {
        path: path.to_path_buf(),
        place: place.into(),
        message: message.into(),
    }
}

fn parse<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, DataError> {
    serde_json::from_str(text).map_err(|e| DataError::Syntax {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })
}

/// Line (1-based) of the `index`-th top-level element of a JSON array, for messages.
fn element_line(text: &str, index: usize) -> usize {
    let mut depth = 0i32;
    let mut in_str = false;
    let mut escape = false;
    let mut seen = 0usize;
    let mut line = 1usize;
    let mut expect_value = false;
    for c in text.chars() {
        if c == '\n' {
            line += 1;
        }
        if in_str {
            match (escape, c) {
                (true, _) => escape = false,
                (false, '\\') => escape = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '[' | '{' => {
                if depth == 1 && expect_value {
                    if seen == index {
                        return line;
                    }
                    seen += 1;
                    expect_value = false;
                }
                depth += 1;
                if depth == 1 {
                    expect_value = true;
                }
            }
            ']' | '}' => depth -= 1,
            ',' if depth == 1 => expect_value = true,
            _ => {}
        }
    }
    line
}

/// The texts of one report directory.
struct ReportFiles<'a> {
    awards: &'a str,
    prizes: Option<&'a str>,
    facts: Option<&'a str>,
    subjects: Option<&'a str>,
    antifraud: Option<&'a str>,
    texts: Option<&'a str>,
}

const BUILTIN_REPORTS: &[(&str, &str, ReportFiles<'static>)] = &[(
    "2022-zhejiang",
    include_str!("../../data/reports/2022-zhejiang/report.json"),
    ReportFiles {
        awards: include_str!("../../data/reports/2022-zhejiang/awards.json"),
        prizes: None,
        facts: Some(include_str!("../../data/reports/2022-zhejiang/facts.json")),
        subjects: Some(include_str!(
            "../../data/reports/2022-zhejiang/subjects.json"
        )),
        antifraud: Some(include_str!(
            "../../data/reports/2022-zhejiang/antifraud.json"
        )),
        texts: Some(include_str!("../../data/reports/2022-zhejiang/texts.json")),
    },
)];
const BUILTIN_SOURCES: &[(&str, &str)] = &[(
    "2022-11-zhejiang-banking-insurance-news.txt",
    include_str!("../../data/sources/2022-11-zhejiang-banking-insurance-news.txt"),
)];
const BUILTIN_INSTITUTIONS: &str = include_str!("../../data/institutions.json");
const BUILTIN_LEXICON: &str = include_str!("../../data/lexicon.json");
const BUILTIN_TEAM_ALIASES: &str = include_str!("../../data/team_aliases.json");

pub(super) fn builtin() -> Result<Knowledge, DataError> {
    let root = Path::new("<built-in data>");
    let mut reports = Vec::new();
    for (id, meta, files) in BUILTIN_REPORTS {
        let dir = root.join("reports").join(id);
        let meta: ReportMeta = parse(&dir.join("report.json"), meta)?;
        let source = BUILTIN_SOURCES
            .iter()
            .find(|(name, _)| *name == meta.source)
            .map(|(_, text)| text.to_string())
            .ok_or_else(|| {
                invalid(
                    &dir.join("report.json"),
                    "field `source`",
                    format!("no built-in source named {}", meta.source),
                )
            })?;
        reports.push(build_report(&dir, meta, source, files)?);
    }
    finish(
        root,
        reports,
        parse(&root.join("institutions.json"), BUILTIN_INSTITUTIONS)?,
        parse(&root.join("team_aliases.json"), BUILTIN_TEAM_ALIASES)?,
        parse(&root.join("lexicon.json"), BUILTIN_LEXICON)?,
    )
}

fn read(path: &Path) -> Result<String, DataError> {
    std::fs::read_to_string(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn read_optional(path: &Path) -> Result<Option<String>, DataError> {
    if path.exists() {
        read(path).map(Some)
    } else {
        Ok(None)
    }
}

pub(super) fn from_dir(root: &Path) -> Result<Knowledge, DataError> {
    let reports_dir = root.join("reports");
    let entries = std::fs::read_dir(&reports_dir).map_err(|source| DataError::Io {
        path: reports_dir.clone(),
        source,
    })?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("report.json").is_file())
        .collect();
    dirs.sort();
    let mut reports = Vec::new();
    for dir in dirs {
        let meta_path = dir.join("report.json");
        let meta: ReportMeta = parse(&meta_path, &read(&meta_path)?)?;
        let source = read(&root.join("sources").join(&meta.source))?;
        let awards = read(&dir.join("awards.json"))?;
        let prizes = read_optional(&dir.join("prizes.json"))?;
        let facts = read_optional(&dir.join("facts.json"))?;
        let subjects = read_optional(&dir.join("subjects.json"))?;
        let antifraud = read_optional(&dir.join("antifraud.json"))?;
        let texts = read_optional(&dir.join("texts.json"))?;
        let files = ReportFiles {
            awards: &awards,
            prizes: prizes.as_deref(),
            facts: facts.as_deref(),
            subjects: subjects.as_deref(),
            antifraud: antifraud.as_deref(),
            texts: texts.as_deref(),
        };
        reports.push(build_report(&dir, meta, source, &files)?);
    }
    // Vocabulary and aliases fall back to the built-in ones, so a directory
    // made by `reportbot import` only needs its reports.
    let institutions = match read_optional(&root.join("institutions.json"))? {
        Some(text) => parse(&root.join("institutions.json"), &text)?,
        None => parse(
            Path::new("<built-in data>/institutions.json"),
            BUILTIN_INSTITUTIONS,
        )?,
    };
    let lexicon = match read_optional(&root.join("lexicon.json"))? {
        Some(text) => parse(&root.join("lexicon.json"), &text)?,
        None => parse(Path::new("<built-in data>/lexicon.json"), BUILTIN_LEXICON)?,
    };
    let team_aliases = match read_optional(&root.join("team_aliases.json"))? {
        Some(text) => parse(&root.join("team_aliases.json"), &text)?,
        None => parse(
            Path::new("<built-in data>/team_aliases.json"),
            BUILTIN_TEAM_ALIASES,
        )?,
    };
    finish(root, reports, institutions, team_aliases, lexicon)
}

fn build_report(
    dir: &Path,
    meta: ReportMeta,
    source_text: String,
    files: &ReportFiles,
) -> Result<Report, DataError> {
    let awards_path = dir.join("awards.json");
    let facts_path = dir.join("facts.json");
    let subjects_path = dir.join("subjects.json");
    let antifraud_path = dir.join("antifraud.json");
    let awards_text = files.awards;
    let facts_text = files.facts;
    let awards: Vec<Award> = parse(&awards_path, awards_text)?;
    let prizes_path = dir.join("prizes.json");
    let levels = match files.prizes {
        Some(text) => check_prizes(&prizes_path, text, parse(&prizes_path, text)?)?,
        None => Levels::default(),
    };
    let facts: Vec<Fact> = match facts_text {
        Some(t) => parse(&facts_path, t)?,
        None => Vec::new(),
    };
    let subjects: Vec<Subject> = match files.subjects {
        Some(t) => parse(&subjects_path, t)?,
        None => Vec::new(),
    };
    let texts: ReportTexts = match files.texts {
        Some(t) => parse(&dir.join("texts.json"), t)?,
        None => ReportTexts::default(),
    };
    let antifraud: AntiFraud = match files.antifraud {
        Some(t) => parse(&antifraud_path, t)?,
        None => AntiFraud::default(),
    };
    let meta_path = dir.join("report.json");
    if meta.id.trim().is_empty() {
        return Err(invalid(&meta_path, "field `id`", "must not be empty"));
    }
    if !source_text.contains(&meta.contest) {
        return Err(invalid(
            &meta_path,
            "field `contest`",
            format!("{:?} does not occur in the report text", meta.contest),
        ));
    }
    check_awards(&awards_path, awards_text, &awards, &levels, &source_text)?;
    check_antifraud(&antifraud_path, &antifraud, &source_text)?;
    check_subjects(
        &subjects_path,
        files.subjects.unwrap_or(""),
        &subjects,
        &antifraud,
    )?;
    check_facts(
        &facts_path,
        facts_text.unwrap_or(""),
        &facts,
        &subjects,
        &levels,
        &source_text,
    )?;
    Ok(Report {
        meta,
        levels,
        awards,
        facts,
        subjects,
        texts,
        antifraud,
        source_text,
    })
}

/// Read and check a prizes.json on its own (for `reportbot import --prizes`).
pub fn read_prizes(path: &Path) -> Result<Vec<PrizeDecl>, DataError> {
    let text = read(path)?;
    let levels = check_prizes(path, &text, parse(path, &text)?)?;
    Ok(levels.declared().to_vec())
}

/// prizes.json: each declaration checked, placed among the standard levels.
fn check_prizes(path: &Path, text: &str, declared: Vec<PrizeDecl>) -> Result<Levels, DataError> {
    let ids: Vec<String> = declared.iter().map(|d| d.id.to_string()).collect();
    Levels::new(declared).map_err(|e| {
        invalid(
            path,
            format!(
                "line {} (prize {:?}) field `{}`",
                element_line(text, e.index),
                ids.get(e.index).map_or("", String::as_str),
                e.field
            ),
            e.message,
        )
    })
}

fn check_awards(
    path: &Path,
    text: &str,
    awards: &[Award],
    levels: &Levels,
    source: &str,
) -> Result<(), DataError> {
    if awards.is_empty() {
        return Err(invalid(path, "top level", "the award list is empty"));
    }
    let lines: Vec<&str> = source.lines().collect();
    let mut seen = HashSet::new();
    for (i, a) in awards.iter().enumerate() {
        let place = || format!("line {} (award #{})", element_line(text, i), i + 1);
        for (field, value) in [("institution", &a.institution), ("winner", &a.winner)] {
            if value.trim().is_empty() {
                return Err(invalid(
                    path,
                    format!("{} field `{field}`", place()),
                    "must not be empty",
                ));
            }
        }
        let Some(src_line) = a.line.checked_sub(1).and_then(|i| lines.get(i)) else {
            return Err(invalid(
                path,
                format!("{} field `line`", place()),
                format!("the report has no line {}", a.line),
            ));
        };
        let plain = plain_text(src_line);
        if !plain.contains(&plain_text(&a.institution)) || !plain.contains(&plain_text(&a.winner)) {
            return Err(invalid(
                path,
                format!("{} field `line`", place()),
                format!(
                    "report line {} does not name {} {}",
                    a.line, a.institution, a.winner
                ),
            ));
        }
        if !levels.knows(a.level) {
            return Err(invalid(
                path,
                format!("{} field `level`", place()),
                format!(
                    "prize {:?} is not declared in prizes.json (the standard ones are first, second, third, excellence, most_popular)",
                    a.level.name()
                ),
            ));
        }
        match (levels.by_group(a.level), a.group) {
            (true, None) => {
                return Err(invalid(
                    path,
                    format!("{} field `group`", place()),
                    format!(
                        "the {} is split by group: the row needs one",
                        levels.zh(a.level)
                    ),
                ));
            }
            (false, Some(_)) if a.level == super::Level::MostPopular => {
                return Err(invalid(
                    path,
                    format!("{} field `group`", place()),
                    "only the 最佳人气奖 has no group",
                ));
            }
            (false, Some(_)) => {
                return Err(invalid(
                    path,
                    format!("{} field `group`", place()),
                    format!(
                        "the {} is not split by group (prizes.json `by_group`): the row has none",
                        levels.zh(a.level)
                    ),
                ));
            }
            _ => {}
        }
        if !seen.insert((a.prize(), a.institution.clone(), a.winner.clone())) {
            return Err(invalid(path, place(), "duplicate award row"));
        }
    }
    Ok(())
}

/// Quotation marks around team names and spaces inside names (`王　芳`,
/// padded to the width of a three-character name) vary between texts;
/// compare without them.
fn plain_text(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '“' | '”' | '"' | '「' | '」') && !c.is_whitespace())
        .collect()
}

fn check_evidence(
    path: &Path,
    place: &dyn Fn() -> String,
    evidence: &[String],
    values: &[String],
    source: &str,
) -> Result<(), DataError> {
    if evidence.is_empty() {
        return Err(invalid(
            path,
            format!("{} field `evidence`", place()),
            "needs at least one quote from the report",
        ));
    }
    for e in evidence {
        if e.is_empty() || !source.contains(e.as_str()) {
            return Err(invalid(
                path,
                format!("{} field `evidence`", place()),
                format!("not found in the report text: {e:?}"),
            ));
        }
    }
    for v in values {
        if !evidence.iter().any(|e| e.contains(v.as_str())) {
            return Err(invalid(
                path,
                format!("{} field `values`", place()),
                format!("{v:?} is not in its evidence"),
            ));
        }
    }
    Ok(())
}

fn check_subjects(
    path: &Path,
    text: &str,
    subjects: &[Subject],
    antifraud: &AntiFraud,
) -> Result<(), DataError> {
    let mut ids = HashSet::new();
    for (i, s) in subjects.iter().enumerate() {
        // Where an error is: computed only for an error (it scans the text).
        let place = || format!("line {} (subject {:?})", element_line(text, i), s.id);
        if s.id.is_empty() || !ids.insert(s.id.as_str()) {
            return Err(invalid(path, place(), "empty or duplicate id"));
        }
        if s.words.iter().all(|w| w.trim().is_empty()) {
            return Err(invalid(
                path,
                format!("{} field `words`", place()),
                "needs a word",
            ));
        }
        if let Some(case) = &s.case
            && !antifraud.cases.iter().any(|c| &c.id == case)
        {
            return Err(invalid(
                path,
                format!("{} field `case`", place()),
                format!("no case {case:?} in antifraud.json"),
            ));
        }
    }
    Ok(())
}

/// Trigger references a fact may use besides subject ids (the lexicon's
/// `asks` lists).
pub(crate) const ASK_REFERENCES: &[&str] = &["when", "where", "howmany"];

fn check_facts(
    path: &Path,
    text: &str,
    facts: &[Fact],
    subjects: &[Subject],
    levels: &Levels,
    source: &str,
) -> Result<(), DataError> {
    let mut ids = HashSet::new();
    for (i, f) in facts.iter().enumerate() {
        let place = || format!("line {} (fact {:?})", element_line(text, i), f.id);
        if !ids.insert(f.id.as_str()) {
            return Err(invalid(path, place(), "duplicate id"));
        }
        if !subjects.iter().any(|s| s.id == f.subject) {
            return Err(invalid(
                path,
                format!("{} field `subject`", place()),
                format!("no subject {:?} in subjects.json", f.subject),
            ));
        }
        let unknown = f.triggers.iter().flatten().find_map(|w| {
            let r = w.strip_prefix('@')?;
            (!subjects.iter().any(|s| s.id == r) && !ASK_REFERENCES.contains(&r)).then_some(w)
        });
        if let Some(w) = unknown {
            return Err(invalid(
                path,
                format!("{} field `triggers`", place()),
                format!("{w:?} names no subject and no lexicon list"),
            ));
        }
        if f.triggers.is_empty()
            || f.triggers
                .iter()
                .any(|g| g.iter().all(|k| k.trim().is_empty()))
        {
            return Err(invalid(
                path,
                format!("{} field `triggers`", place()),
                "every trigger group needs a keyword",
            ));
        }
        if let Some(level) = f.winners.and_then(|w| w.level)
            && !levels.knows(level)
        {
            return Err(invalid(
                path,
                format!("{} field `winners`", place()),
                format!("prize {:?} is not declared in prizes.json", level.name()),
            ));
        }
        check_evidence(path, &place, &f.evidence, &f.values, source)?;
    }
    Ok(())
}

fn check_antifraud(path: &Path, af: &AntiFraud, source: &str) -> Result<(), DataError> {
    let topics: HashSet<&str> = af.topics.iter().map(|t| t.id.as_str()).collect();
    for t in &af.tips {
        let place = format!("tip {:?}", t.id);
        if !topics.contains(t.topic.as_str()) {
            return Err(invalid(
                path,
                format!("{place} field `topic`"),
                format!("unknown topic {:?}", t.topic),
            ));
        }
        check_evidence(
            path,
            &|| place.clone(),
            std::slice::from_ref(&t.evidence),
            &[],
            source,
        )?;
    }
    for c in &af.cases {
        let place = format!("case {:?}", c.id);
        if let Some(bad) = c.topics.iter().find(|t| !topics.contains(t.as_str())) {
            return Err(invalid(
                path,
                format!("{place} field `topics`"),
                format!("unknown topic {bad:?}"),
            ));
        }
        check_evidence(path, &|| place.clone(), &c.evidence, &c.values, source)?;
    }
    Ok(())
}

fn finish(
    root: &Path,
    mut reports: Vec<Report>,
    mut institutions: Vec<Institution>,
    team_aliases: std::collections::BTreeMap<String, Vec<String>>,
    lexicon: Lexicon,
) -> Result<Knowledge, DataError> {
    if reports.is_empty() {
        return Err(DataError::NoReports {
            path: root.to_path_buf(),
        });
    }
    let mut ids = HashSet::new();
    for r in &reports {
        if !ids.insert(r.meta.id.clone()) {
            return Err(invalid(
                root,
                format!("report {:?}", r.meta.id),
                "two reports share this id",
            ));
        }
    }
    check_levels_agree(root, &reports)?;
    if let Some(l) = lexicon.levels.keys().find(|l| l.is_declared()) {
        return Err(invalid(
            &root.join("lexicon.json"),
            "field `levels`",
            format!(
                "{:?} is not a standard level; a report's own prizes are declared in its prizes.json",
                l.name()
            ),
        ));
    }
    // Newest contest first; questions without a year are about it.
    reports.sort_by(|a, b| {
        b.meta
            .year
            .cmp(&a.meta.year)
            .then(b.meta.final_date.cmp(&a.meta.final_date))
    });
    // An institution that only a new report names still gets an entry.
    for r in &reports {
        for a in &r.awards {
            if !institutions.iter().any(|i| i.name == a.institution) {
                institutions.push(Institution {
                    name: a.institution.clone(),
                    en: a.institution.clone(),
                    aliases: Vec::new(),
                });
            }
        }
    }
    let levels = Levels::merged(reports.iter().map(|r| &r.levels));
    Ok(Knowledge {
        reports,
        institutions,
        team_aliases,
        lexicon,
        levels,
    })
}

/// Questions and buttons name a declared prize by its id and its words in
/// every report at once: an id must mean the same prize in every report
/// that declares it, and a word must name one prize.
fn check_levels_agree(root: &Path, reports: &[Report]) -> Result<(), DataError> {
    let path = |r: &Report| root.join("reports").join(&r.meta.id).join("prizes.json");
    for (i, r) in reports.iter().enumerate() {
        for d in r.levels.declared() {
            for other in &reports[..i] {
                for e in other.levels.declared() {
                    let place = format!("prize {:?}", d.id.as_str());
                    if e.id == d.id && e != d {
                        return Err(invalid(
                            &path(r),
                            place,
                            format!(
                                "declared differently in report {:?}; one id is one prize in every report",
                                other.meta.id
                            ),
                        ));
                    }
                    if e.id != d.id
                        && let Some(w) = d.words().find(|w| e.words().any(|x| x == *w))
                    {
                        return Err(invalid(
                            &path(r),
                            place,
                            format!(
                                "{w:?} also names the prize {:?} of report {:?}",
                                e.id.as_str(),
                                other.meta.id
                            ),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_line_finds_array_entries() {
        let text = "[\n  {\"a\": [1,2]},\n  {\"b\": \"x,{\"}\n,\n {}]";
        assert_eq!(element_line(text, 0), 2);
        assert_eq!(element_line(text, 1), 3);
        assert_eq!(element_line(text, 2), 5);
    }

    #[test]
    fn syntax_errors_name_file_and_line() {
        let err =
            parse::<Vec<Award>>(Path::new("x/awards.json"), "[\n {\"group\": 3}\n]").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("x/awards.json:2:"), "{msg}");
    }
}
