//! The award list: where it starts and ends, and which prize each entry is under.
//!
//! # Where the list is
//!
//! It starts at a list heading (`荣誉榜`, `获奖名单`, `表彰名单`, `获奖情况`,
//! also `获奖名单如下:`); a page without one starts at its first prize heading,
//! labelled entry or table header. Text between the list heading and the first
//! prize is an introduction and is skipped. After that, a line that is neither
//! blank, a heading, an entry, a table row nor a note is a **problem inside the
//! list** when the next non-blank line is a heading, or when it is not prose
//! (no sentence punctuation, at most 60 characters) and it touches the list
//! (the line before it is a heading or an entry, or the next non-blank line is
//! an entry). Otherwise the list ends there; a prize named after the end is a
//! problem too, so no prize is ever dropped silently.
//!
//! # Which prize
//!
//! Headings nest: `一、团体奖` › `（一）银行机构组` › `1.一等奖`. Each heading
//! names some of group, kind and prize; an entry is under the prize completed
//! from the headings above it (see [`prize::resolve`]). A heading replaces the
//! heading numbered the same way (`二、` replaces `一、` and everything under
//! it), and a heading that names a group (kind, prize) replaces the one that
//! named it before, with everything under that. A table row's own cells (奖项,
//! 组别 …) complete the prize the same way.

use super::Problem;
use super::line::{self, Class, Numbering, Part};
use super::prize::{self, Label, NewPrizes};
use super::row::Row;
use super::source::Line;
use super::table::{self, Split, Table};
use crate::knowledge::{Award, Prize, PrizeDecl};
use std::collections::HashMap;

/// A line in context: its class, or a table's header, rule or row.
#[derive(Debug, Clone)]
enum Item {
    Line(Class),
    TableHeader,
    TableRule,
    TableRow { label: Label, parts: Vec<Part> },
}

impl Item {
    fn is_blank(&self) -> bool {
        matches!(self, Item::Line(Class::Blank))
    }
    /// A heading of any kind (a section, a prize, a table's header).
    fn is_heading(&self) -> bool {
        match self {
            Item::Line(Class::Heading { .. }) => true,
            Item::Line(Class::ListHeading(l)) => !l.is_empty(),
            Item::Line(Class::Entries { parts, .. }) => {
                parts.iter().any(|p| matches!(p, Part::Label(_)))
            }
            Item::TableHeader => true,
            _ => false,
        }
    }
    /// Something of the list itself.
    fn is_listy(&self) -> bool {
        matches!(
            self,
            Item::Line(Class::Heading { .. } | Class::BadHeading(_) | Class::Entries { .. })
                | Item::TableHeader
                | Item::TableRule
                | Item::TableRow { .. }
        )
    }
    fn is_entry(&self) -> bool {
        matches!(
            self,
            Item::Line(Class::Entries { .. } | Class::BadHeading(_)) | Item::TableRow { .. }
        )
    }
    /// Names a prize, so a list starts or goes on here.
    fn names_prize(&self) -> bool {
        match self {
            Item::Line(c) => c.names_prize(),
            Item::TableRow { label, parts } => {
                label.name.is_some() && parts.iter().any(|p| matches!(p, Part::Row(_)))
            }
            Item::TableHeader => true,
            _ => false,
        }
    }
}

/// Classify every line, reading tables as they come.
fn classify_all(lines: &[Line]) -> Vec<Item> {
    let mut items = Vec::with_capacity(lines.len());
    let mut table: Option<Table> = None;
    let mut known: Vec<String> = Vec::new();
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    for line in lines {
        let item = classify_one(line, &mut table, &known);
        if let Item::Line(Class::Entries { parts, .. }) | Item::TableRow { parts, .. } = &item {
            for p in parts {
                if let Part::Row(r) = p
                    && seen.insert(r.institution.clone())
                {
                    known.push(r.institution.clone());
                }
            }
        }
        items.push(item);
    }
    items
}

fn classify_one(line: &Line, table: &mut Option<Table>, known: &[String]) -> Item {
    if let Some(cells) = &line.cells {
        let mut filled: Vec<&String> = cells.iter().filter(|c| !c.trim().is_empty()).collect();
        // A cell spanning the row (`colspan`) is a line of text: a section heading.
        let mut distinct = filled.clone();
        distinct.dedup();
        if distinct.len() == 1 {
            filled = distinct;
        }
        match filled.len() {
            0 => return Item::Line(Class::Blank),
            1 => return Item::Line(line::classify(filled[0], known)),
            _ => {
                if let Some(columns) = table::header(cells) {
                    *table = Some(Table::new(columns, Split::Cells));
                    return Item::TableHeader;
                }
                if let Some(t) = table.as_mut().filter(|t| t.split == Split::Cells) {
                    let (label, parts) = t.row(cells);
                    return Item::TableRow { label, parts };
                }
                // Cells before any header: read the line as text.
                let text = filled
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
                return Item::Line(line::classify(&text, known));
            }
        }
    }
    let text = line.text.as_str();
    if let Some(t) = table.as_mut().filter(|t| t.split != Split::Cells) {
        if text.trim().is_empty() {
            *table = None;
            return Item::Line(Class::Blank);
        }
        if table::is_rule(text) {
            return Item::TableRule;
        }
        if let Some(cells) = t.cells(text) {
            let (label, parts) = t.row(&cells);
            return Item::TableRow { label, parts };
        }
        *table = None;
    }
    if let Some(t) = Table::from_text(text) {
        *table = Some(t);
        return Item::TableHeader;
    }
    Item::Line(line::classify(text, known))
}

/// The award list that was read.
#[derive(Debug)]
pub(crate) struct List {
    pub awards: Vec<Award>,
    /// The prizes beyond the standard five that the awards use.
    pub prizes: Vec<PrizeDecl>,
    pub problems: Vec<Problem>,
    /// First and last line (1-based).
    pub span: (usize, usize),
}

/// The award list; `given` declares prizes beyond the standard five that
/// the page may name (others are declared as met, see [`prize::NewPrizes`]).
/// `Err`: why there is no list.
pub(crate) fn parse(lines: &[Line], given: &[PrizeDecl]) -> Result<List, String> {
    let items = classify_all(lines);
    let headings: Vec<usize> = (0..items.len())
        .filter(|&i| matches!(items[i], Item::Line(Class::ListHeading(_))))
        .collect();
    if headings.is_empty() {
        let Some(mut first) = items.iter().position(Item::names_prize) else {
            return Err(
                "no award list: no 荣誉榜 or 获奖名单 heading, no prize heading such as 团体一等奖(银行机构组) and no table of winners"
                    .to_string(),
            );
        };
        // Section headings just above the first prize (一、银行机构组) belong to the list.
        while let Some(j) = items[..first].iter().rposition(|c| !c.is_blank())
            && matches!(items[j], Item::Line(Class::Heading { .. }))
        {
            first = j;
        }
        return parse_at(lines, &items, first, true, given);
    }
    let mut reason = String::new();
    for (n, &start) in headings.iter().enumerate() {
        match parse_at(lines, &items, start, false, given) {
            Ok(list) => return Ok(list),
            Err(why) if n == 0 => reason = why,
            Err(_) => {}
        }
    }
    Err(reason)
}

/// A heading on the stack of headings in force.
#[derive(Debug, Clone)]
struct Frame {
    numbering: Option<Numbering>,
    label: Label,
}

/// The prize entries go under: a prize, or why there is none (the line of
/// the heading that could not be placed, if it is another line, and why).
type Current = Option<Result<Prize, (Option<usize>, String)>>;

struct Walk<'a> {
    lines: &'a [Line],
    stack: Vec<Frame>,
    current: Current,
    awards: Vec<Award>,
    problems: Vec<Problem>,
    rows_at: HashMap<(Prize, String, String), usize>,
    /// The last prize heading: its line index, prize and rows so far.
    open: Option<(usize, Prize, usize)>,
    /// Prizes beyond the standard five, declared as they are met.
    prizes: NewPrizes,
}

/// Text compared without quotation marks and spaces, exactly as the loader
/// compares (`knowledge::load`), so a row that passes here loads.
pub(crate) fn plain(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '“' | '”' | '"' | '「' | '」') && !c.is_whitespace())
        .collect()
}

impl Walk<'_> {
    fn problem(&mut self, i: usize, why: String) {
        self.problems.push(Problem {
            line: i + 1,
            text: self.lines[i].text.trim().to_string(),
            why,
        });
    }

    fn context(stack: &[Frame]) -> prize::Context {
        prize::Context {
            group: stack.iter().rev().find_map(|f| f.label.group),
            kind: stack.iter().rev().find_map(|f| f.label.kind),
        }
    }

    /// The prize named last on the stack, completed by the headings above it.
    fn resolve_stack(&mut self) -> Option<Result<Prize, String>> {
        let at = self.stack.iter().rposition(|f| f.label.name.is_some())?;
        let frame = &self.stack[at];
        let name = frame.label.name.as_ref()?;
        let ctx = Self::context(&self.stack[..at]);
        let kind = frame
            .label
            .kind
            .or_else(|| self.stack[at..].iter().rev().find_map(|f| f.label.kind));
        Some(prize::resolve(
            name,
            frame.label.group,
            kind,
            ctx,
            &mut self.prizes,
        ))
    }

    /// A prize as the summary writes it (`团体特等奖(银行机构组)`).
    fn label(&self, prize: &Prize) -> String {
        self.prizes.levels().full_label_zh(prize)
    }

    /// A prize heading without rows is a problem.
    fn close(&mut self) {
        if let Some((at, prize, 0)) = self.open.take() {
            let label = self.label(&prize);
            self.problem(at, format!("no rows under the prize heading {label}"));
        }
    }

    fn heading(&mut self, i: usize, numbering: Option<Numbering>, label: &Label) {
        self.close();
        if let Some(n) = numbering
            && let Some(d) = self.stack.iter().position(|f| f.numbering == Some(n))
        {
            self.stack.truncate(d);
        }
        let clash = |f: &Frame| {
            (label.group.is_some() && f.label.group.is_some())
                || (label.kind.is_some() && f.label.kind.is_some())
                || (label.name.is_some() && f.label.name.is_some())
        };
        if let Some(d) = self.stack.iter().position(clash) {
            self.stack.truncate(d);
        }
        self.stack.push(Frame {
            numbering,
            label: label.clone(),
        });
        self.current = match self.resolve_stack() {
            _ if label.name.is_none() => None,
            Some(Ok(p)) => {
                self.open = Some((i, p, 0));
                Some(Ok(p))
            }
            Some(Err(why)) => {
                self.problem(i, why.clone());
                Some(Err((Some(i + 1), why)))
            }
            None => None,
        };
    }

    /// The prize of a table row: its own cells, completed by the headings.
    fn row_prize(&mut self, label: &Label) -> Current {
        if label.is_empty() {
            return self.current.clone();
        }
        let ctx = Self::context(&self.stack);
        let resolved = match &label.name {
            Some(name) => prize::resolve(name, label.group, label.kind, ctx, &mut self.prizes),
            None => {
                let at = self.stack.iter().rposition(|f| f.label.name.is_some());
                let frame = at.map(|a| &self.stack[a])?;
                let name = frame.label.name.clone()?;
                let (group, kind) = (frame.label.group, frame.label.kind);
                prize::resolve(
                    &name,
                    label.group.or(group),
                    label.kind.or(kind),
                    prize::Context {
                        group: label.group.or(ctx.group),
                        kind: label.kind.or(ctx.kind),
                    },
                    &mut self.prizes,
                )
            }
        };
        Some(resolved.map_err(|why| (None, why)))
    }

    fn row(&mut self, i: usize, prize: &Current, row: &Row) {
        let prize = match prize {
            Some(Ok(p)) => *p,
            Some(Err((None, why))) => {
                self.problem(i, format!("{} {}: {why}", row.institution, row.winner));
                return;
            }
            Some(Err((Some(line), why))) => {
                self.problem(
                    i,
                    format!(
                        "{} {}: under the heading at line {line}, which could not be placed ({why})",
                        row.institution, row.winner
                    ),
                );
                return;
            }
            None => {
                self.problem(
                    i,
                    format!(
                        "{} {}: an entry before any prize heading",
                        row.institution, row.winner
                    ),
                );
                return;
            }
        };
        // Never a row that its line does not name.
        let line = plain(&self.lines[i].text);
        if !line.contains(&plain(&row.institution)) || !line.contains(&plain(&row.winner)) {
            self.problem(
                i,
                format!(
                    "{} {}: not found as written on this line",
                    row.institution, row.winner
                ),
            );
            return;
        }
        let key = (prize, row.institution.clone(), row.winner.clone());
        if let Some(first) = self.rows_at.get(&key) {
            let why = format!(
                "{} {}: the same entry as line {first} under {}",
                row.institution,
                row.winner,
                self.label(&prize)
            );
            self.problem(i, why);
            return;
        }
        self.rows_at.insert(key, i + 1);
        if let Some((_, _, n)) = &mut self.open {
            *n += 1;
        }
        self.awards.push(Award {
            group: prize.group,
            kind: prize.kind,
            level: prize.level,
            institution: row.institution.clone(),
            winner: row.winner.clone(),
            line: i + 1,
        });
    }

    fn parts(&mut self, i: usize, numbering: Option<Numbering>, parts: &[Part], prize: Current) {
        let mut prize = prize;
        let mut first = true;
        for p in parts {
            match p {
                Part::Label(label) => {
                    self.heading(i, if first { numbering } else { None }, label);
                    prize = self.current.clone();
                }
                Part::Row(r) => self.row(i, &prize, r),
                Part::Bad { text, why } => self.problem(i, format!("`{text}`: {why}")),
            }
            first = false;
        }
    }
}

/// The list from `start`: after the list heading there, or (`inclusive`)
/// beginning with the line there.
fn parse_at(
    lines: &[Line],
    items: &[Item],
    start: usize,
    inclusive: bool,
    given: &[PrizeDecl],
) -> Result<List, String> {
    let mut w = Walk {
        prizes: NewPrizes::new(given),
        lines,
        stack: Vec::new(),
        current: None,
        awards: Vec::new(),
        problems: Vec::new(),
        rows_at: HashMap::new(),
        open: None,
    };
    if let Item::Line(Class::ListHeading(label)) = &items[start]
        && !label.is_empty()
    {
        w.heading(start, None, label);
    }
    let next_nonblank = |i: usize| items[i + 1..].iter().find(|c| !c.is_blank());
    let mut seen = false;
    let mut last = start;
    let mut ended_at = None;
    let from = if inclusive { start } else { start + 1 };
    for i in from..items.len() {
        match &items[i] {
            Item::Line(Class::Blank | Class::Note) | Item::TableRule => continue,
            Item::TableHeader => {}
            Item::Line(Class::Heading { numbering, label }) => {
                w.heading(i, *numbering, label);
                seen |= label.name.is_some();
            }
            Item::Line(Class::ListHeading(label)) if !label.is_empty() => {
                w.heading(i, None, label);
            }
            Item::Line(Class::BadHeading(why)) => {
                w.close();
                w.problem(i, why.clone());
                w.current = Some(Err((Some(i + 1), "see that line".to_string())));
                seen = true;
            }
            Item::Line(Class::Entries { numbering, parts }) => {
                seen = true;
                let current = w.current.clone();
                w.parts(i, *numbering, parts, current);
            }
            Item::TableRow { label, parts } => {
                seen = true;
                let prize = w.row_prize(label);
                w.parts(i, None, parts, prize);
            }
            Item::Line(Class::Byline) => {
                if seen {
                    ended_at = Some(i);
                    break;
                }
                continue;
            }
            Item::Line(Class::Other(_) | Class::ListHeading(_)) => {
                if !seen {
                    continue;
                }
                let why = match &items[i] {
                    Item::Line(Class::Other(why)) => why.clone(),
                    _ => "a second list heading inside the award list".to_string(),
                };
                let next = next_nonblank(i);
                let prev = items[..i].iter().rev().find(|c| !c.is_blank());
                // A table ends where its rows end: text after it does not touch it.
                let after_table = matches!(prev, Some(Item::TableRow { .. }));
                let touches = (prev.is_some_and(Item::is_listy) && !after_table)
                    || next.is_some_and(Item::is_entry);
                let inside = next.is_some_and(|n| n.is_heading() || n.names_prize())
                    || (!line::is_prose(lines[i].text.trim()) && touches);
                if !inside {
                    ended_at = Some(i);
                    break;
                }
                w.problem(i, why);
            }
        }
        last = i;
    }
    if w.awards.is_empty() {
        let at = start + 1;
        return Err(if !seen {
            format!(
                "the list heading at line {at} is not followed by a prize heading such as 团体一等奖(银行机构组), entries or a table"
            )
        } else {
            format!("the award list at line {at} has no rows (`institution  team-or-person`)")
        });
    }
    w.close();
    if let Some(end) = ended_at {
        for (j, item) in items.iter().enumerate().skip(end + 1) {
            if item.names_prize() {
                let why = format!(
                    "a prize after the award list ended at line {}; its rows were not imported",
                    end + 1
                );
                w.problem(j, why);
            }
        }
    }
    w.close();
    let mut problems = w.problems;
    problems.sort_by_key(|p| p.line);
    Ok(List {
        prizes: w.prizes.used_by(&w.awards),
        awards: w.awards,
        problems,
        span: (start + 1, last + 1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::{Group, Kind, Level};

    fn lines(text: &str) -> Vec<Line> {
        text.lines()
            .map(|l| Line {
                text: l.to_string(),
                cells: None,
            })
            .collect()
    }

    fn rows(list: &List) -> Vec<(String, usize)> {
        let levels = crate::knowledge::Levels::new(list.prizes.clone()).unwrap();
        list.awards
            .iter()
            .map(|a| {
                (
                    format!(
                        "{} {} {}",
                        levels.full_label_zh(&a.prize()),
                        a.institution,
                        a.winner
                    ),
                    a.line,
                )
            })
            .collect()
    }

    #[test]
    fn sections_nest_by_numbering_and_by_what_they_name() {
        let text = "获奖名单\n一、团体奖\n（一）银行机构组\n1.一等奖：浙商银行 数智先锋队\n2.二等奖：杭州银行 杭银数据队、宁波银行 甬数队\n（二）保险机构组\n1.一等奖：人保财险 人保数智队\n二、个人奖\n（一）银行机构组\n一等奖：浙商银行 王芳\n三、最佳人气奖：浙商银行 数智先锋队\n\n11月21日，大赛在杭州举行。\n";
        let list = parse(&lines(text), &[]).unwrap();
        assert!(list.problems.is_empty(), "{:?}", list.problems);
        assert_eq!(
            rows(&list),
            [
                ("团体一等奖(银行机构组) 浙商银行 数智先锋队".to_string(), 4),
                ("团体二等奖(银行机构组) 杭州银行 杭银数据队".to_string(), 5),
                ("团体二等奖(银行机构组) 宁波银行 甬数队".to_string(), 5),
                ("团体一等奖(保险机构组) 人保财险 人保数智队".to_string(), 7),
                ("个人一等奖(银行机构组) 浙商银行 王芳".to_string(), 10),
                ("最佳人气奖 浙商银行 数智先锋队".to_string(), 11),
            ]
        );
        assert_eq!(list.span, (1, 11));
    }

    #[test]
    fn new_prizes_are_declared_with_their_rows() {
        let text = "获奖名单\n一、银行机构组\n团体特等奖：浙商银行 数智先锋队\n团体一等奖：杭州银行 杭银数据队\n最佳创意奖\n宁波银行 甬数队\n";
        let list = parse(&lines(text), &[]).unwrap();
        assert!(list.problems.is_empty(), "{:?}", list.problems);
        assert_eq!(
            rows(&list),
            [
                ("团体特等奖(银行机构组) 浙商银行 数智先锋队".to_string(), 3),
                ("团体一等奖(银行机构组) 杭州银行 杭银数据队".to_string(), 4),
                // A "best …" award under a group section is contest-wide.
                ("最佳创意奖 宁波银行 甬数队".to_string(), 6),
            ]
        );
        let ids: Vec<&str> = list.prizes.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["grand", "best_creativity"]);
        assert_eq!(list.awards[1].level, Level::First);
        assert_eq!(list.awards[0].group, Some(Group::Bank));
        assert_eq!(list.awards[0].kind, Kind::Team);
    }

    #[test]
    fn a_declared_prize_without_rows_is_not_kept() {
        let text = "获奖名单\n银行机构组\n团体特等奖\n团体一等奖：杭州银行 杭银数据队\n";
        let list = parse(&lines(text), &[]).unwrap();
        assert_eq!(list.problems.len(), 1, "{:?}", list.problems);
        assert_eq!(
            list.problems[0].why,
            "no rows under the prize heading 团体特等奖(银行机构组)"
        );
        assert!(list.prizes.is_empty());
    }
}
