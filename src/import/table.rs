//! Award lists written as tables: a header row names the columns (奖项, 组别,
//! 单位, 团队/个人 … in any order), every following row is one entry.
//!
//! Tables come as Markdown (`| 奖项 | 单位 |`), as text aligned with tabs or
//! with spaces (columns found from where the header's words start), as CSV or
//! TSV files, or as HTML `<table>`s (already split into cells by
//! [`super::html`]). A 奖项, 组别 or 类别 cell left empty (or `同上`, `〃`)
//! repeats the one above, as merged cells do; an empty 单位 or name is a
//! problem, because the row's line must name both.

use super::line::Part;
use super::prize::{self, Label};
use super::row::{self, Row};
use crate::engine::normalize::normalize_word;
use crate::knowledge::Kind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Column {
    /// 序号: ignored.
    Number,
    /// 奖项: the prize (may name kind and group too).
    Prize,
    /// 组别.
    Group,
    /// 类别: a kind or a group.
    Category,
    Institution,
    /// The team or person; the header may say which (`团队名称`, `姓名`).
    Winner(Option<Kind>),
    /// 备注, 作品名称 …: not part of the award row.
    Ignored,
}

fn column(header: &str) -> Option<Column> {
    let h = normalize_word(header);
    let h = h.as_str();
    Some(match h {
        "序号" | "编号" | "序" | "no" => Column::Number,
        "奖项" | "获奖等级" | "等级" | "奖次" | "奖励等级" | "所获奖项" | "获得奖项"
        | "奖项名称" | "奖项等级" | "获奖情况" | "荣誉" | "奖励" | "获奖" => {
            Column::Prize
        }
        "组别" | "参赛组别" | "所属组别" | "组" | "赛道" => Column::Group,
        "类别" | "类型" | "奖项类别" | "获奖类型" | "奖项类型" => Column::Category,
        "单位" | "获奖单位" | "所在单位" | "参赛单位" | "机构" | "所属机构" | "推荐单位"
        | "工作单位" | "单位名称" | "所属单位" | "机构名称" | "报送单位" => {
            Column::Institution
        }
        "团队个人"
        | "团队或个人"
        | "获奖团队个人"
        | "获奖者"
        | "获奖团队或个人"
        | "获奖人"
        | "名称"
        | "获奖名称"
        | "团队名称姓名"
        | "团队姓名"
        | "团队名称个人姓名"
        | "获奖团队姓名"
        | "获奖对象"
        | "团队名称或姓名" => Column::Winner(None),
        "团队名称" | "获奖团队" | "参赛团队" | "队名" | "团队" => {
            Column::Winner(Some(Kind::Team))
        }
        "姓名" | "获奖个人" | "个人姓名" | "选手姓名" | "选手" | "个人" => {
            Column::Winner(Some(Kind::Individual))
        }
        "备注" | "作品名称" | "作品" | "项目名称" | "参赛作品" | "项目" | "说明" => {
            Column::Ignored
        }
        _ => return None,
    })
}

/// How the rows of a text table are split into cells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Split {
    /// `| a | b |`
    Pipe,
    /// Runs of tabs.
    Tabs,
    /// Columns start where the header's words start (display columns).
    Aligned(Vec<usize>),
    /// Already split (CSV, TSV, HTML).
    Cells,
}

/// An open table: its columns and the values merged cells repeat.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub columns: Vec<Column>,
    pub split: Split,
    above: Vec<String>,
}

/// Display width of a character (CJK and full-width forms are two columns).
fn width(c: char) -> usize {
    match c as u32 {
        0x1100..=0x115F
        | 0x2E80..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6
        | 0x20000..=0x3FFFD => 2,
        _ => 1,
    }
}

/// Pieces of an aligned line with their display column: split at two or more
/// spaces, a full-width space or a tab.
fn aligned_pieces(line: &str) -> Vec<(usize, String)> {
    let mut pieces = Vec::new();
    let mut col = 0;
    let mut current = String::new();
    let mut start = 0;
    let mut spaces = 0;
    for c in line.chars() {
        let gap = c == '\t' || c == '\u{3000}';
        if c == ' ' || c == '\u{a0}' {
            spaces += 1;
        } else if !gap {
            if spaces >= 2 && !current.is_empty() {
                pieces.push((start, std::mem::take(&mut current)));
            } else if spaces == 1 && !current.is_empty() {
                current.push(' ');
            }
            spaces = 0;
            if current.is_empty() {
                start = col;
            }
            current.push(c);
        }
        if gap {
            spaces = 0;
            if !current.is_empty() {
                pieces.push((start, std::mem::take(&mut current)));
            }
        }
        col += if c == '\t' { 8 - col % 8 } else { width(c) };
    }
    if !current.is_empty() {
        pieces.push((start, current));
    }
    pieces
}

fn pipe_cells(line: &str) -> Option<Vec<String>> {
    let t = line.trim();
    if !t.starts_with('|') {
        return None;
    }
    let inner = t.strip_prefix('|')?;
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    Some(inner.split('|').map(|c| c.trim().to_string()).collect())
}

fn tab_cells(line: &str) -> Vec<String> {
    line.split('\t')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

/// `|---|:--:|`
pub(crate) fn is_rule(line: &str) -> bool {
    pipe_cells(line).is_some_and(|cells| {
        cells.iter().all(|c| {
            let c = c.trim_matches(':');
            !c.is_empty() && c.chars().all(|ch| ch == '-')
        })
    })
}

/// The columns of a header row, if `cells` is one.
pub(crate) fn header(cells: &[String]) -> Option<Vec<Column>> {
    let named: Vec<&String> = cells.iter().filter(|c| !c.trim().is_empty()).collect();
    if named.len() < 2 {
        return None;
    }
    let columns: Vec<Option<Column>> = cells.iter().map(|c| column(c)).collect();
    let known = columns.iter().flatten().count();
    let unknown = named.len() - known;
    let has = |f: fn(&Column) -> bool| columns.iter().flatten().any(f);
    let ok = has(|c| matches!(c, Column::Winner(_)))
        && has(|c| *c == Column::Institution)
        && (unknown == 0 || (unknown == 1 && known >= 3));
    ok.then(|| {
        columns
            .into_iter()
            .map(|c| c.unwrap_or(Column::Ignored))
            .collect()
    })
}

impl Table {
    /// A header row of a text table, with how its rows are split.
    pub fn from_text(line: &str) -> Option<Table> {
        // A header names the institution column; test that cheaply first.
        if !line.contains(['单', '單', '机', '機']) {
            return None;
        }
        if let Some(cells) = pipe_cells(line) {
            return header(&cells).map(|columns| Table::new(columns, Split::Pipe));
        }
        if line.contains('\t') {
            let cells = tab_cells(line);
            return header(&cells).map(|columns| Table::new(columns, Split::Tabs));
        }
        let pieces = aligned_pieces(line);
        let cells: Vec<String> = pieces.iter().map(|(_, p)| p.clone()).collect();
        let columns = header(&cells)?;
        let starts = pieces.iter().map(|(s, _)| *s).collect();
        Some(Table::new(columns, Split::Aligned(starts)))
    }

    pub fn new(columns: Vec<Column>, split: Split) -> Table {
        let above = vec![String::new(); columns.len()];
        Table {
            columns,
            split,
            above,
        }
    }

    /// The cells of a row of this (text) table; `None` when the line is not
    /// one (the table has ended).
    pub fn cells(&self, line: &str) -> Option<Vec<String>> {
        let cells = match &self.split {
            Split::Pipe => pipe_cells(line)?,
            Split::Tabs => {
                if !line.contains('\t') {
                    return None;
                }
                self.place(tab_cells(line))
            }
            Split::Aligned(starts) => {
                let pieces = aligned_pieces(line);
                if pieces.len() < 2 {
                    return None;
                }
                let mut cells = vec![String::new(); starts.len()];
                for (at, piece) in pieces {
                    let j = starts.iter().rposition(|s| *s <= at + 1).unwrap_or(0);
                    let cell = &mut cells[j];
                    if !cell.is_empty() {
                        // A name with a wide space inside (`王　芳`).
                        let latin = cell.ends_with(|c: char| c.is_ascii_alphanumeric())
                            || piece.starts_with(|c: char| c.is_ascii_alphanumeric());
                        if latin {
                            cell.push(' ');
                        }
                    }
                    cell.push_str(&piece);
                }
                cells
            }
            Split::Cells => return None,
        };
        (cells.iter().filter(|c| !c.trim().is_empty()).count() >= 2).then_some(cells)
    }

    /// Tabs aligned for one tab width look different in another, so a row
    /// with fewer cells than columns (an empty 组别 written as two tabs) is
    /// placed by what its cells are: a cell goes to the next column that can
    /// hold it (序号 only a number, 奖项/组别/类别 only what they name).
    fn place(&self, cells: Vec<String>) -> Vec<String> {
        let n = self.columns.len();
        if cells.len() >= n {
            return cells;
        }
        let fits = |col: Column, cell: &str| match col {
            Column::Number => cell.chars().all(|c| c.is_ascii_digit()),
            Column::Prize => prize::recognize(cell).is_some_and(|l| l.name.is_some()),
            Column::Group => {
                prize::recognize(cell).is_some_and(|l| l.group.is_some() && l.name.is_none())
            }
            Column::Category => prize::recognize(cell).is_some_and(|l| l.name.is_none()),
            Column::Institution | Column::Winner(_) | Column::Ignored => true,
        };
        let mut placed = vec![String::new(); n];
        let mut j = 0;
        for (k, cell) in cells.iter().enumerate() {
            let left = cells.len() - k;
            while j < n && !fits(self.columns[j], cell) && n - j > left {
                j += 1;
            }
            if j >= n {
                break;
            }
            placed[j] = cell.clone();
            j += 1;
        }
        placed
    }

    /// One row: the prize its cells name (possibly nothing: the heading above
    /// then applies) and its entries.
    pub fn row(&mut self, cells: &[String]) -> (Label, Vec<Part>) {
        let mut label = Label::default();
        let mut parts = Vec::new();
        let mut institution: Option<String> = None;
        let mut names: Vec<String> = Vec::new();
        let mut winner_kind = None;
        let mut inherited_group = false;
        let mut own_group = false;
        let bad = |parts: &mut Vec<Part>, text: &str, why: String| {
            parts.push(Part::Bad {
                text: text.to_string(),
                why,
            })
        };
        for (j, col) in self.columns.iter().enumerate() {
            let value = cells.get(j).map_or("", |c| c.trim());
            match col {
                Column::Number | Column::Ignored => {}
                Column::Prize | Column::Group | Column::Category => {
                    if matches!(value, "—" | "－" | "-" | "/" | "／" | "无" | "——") {
                        // Explicitly none (a 最佳人气奖 has no group).
                        self.above[j].clear();
                        continue;
                    }
                    let repeated = value.is_empty() || matches!(value, "同上" | "〃" | "\"" | "″");
                    let value = if repeated {
                        self.above[j].clone()
                    } else {
                        self.above[j] = value.to_string();
                        value.to_string()
                    };
                    if value.is_empty() {
                        continue;
                    }
                    match prize::recognize(&value) {
                        Some(l) => {
                            if repeated {
                                inherited_group |= l.group.is_some();
                            } else if l.group.is_some() {
                                own_group = true;
                            }
                            if let Err(why) = merge(&mut label, l) {
                                bad(&mut parts, &value, why);
                            }
                        }
                        None => bad(
                            &mut parts,
                            &value,
                            format!(
                                "`{value}` in a {} column is not a prize, kind or group",
                                col_name(*col)
                            ),
                        ),
                    }
                }
                Column::Institution => {
                    let v = value.replace('\n', "");
                    if !v.is_empty() {
                        institution = Some(v);
                    }
                }
                Column::Winner(kind) => {
                    winner_kind = *kind;
                    names = value
                        .split(['、', '；', ';', '\n', '，', ','])
                        .map(|n| spaced(n.trim()))
                        .filter(|n| !n.is_empty())
                        .collect();
                }
            }
        }
        if label.kind.is_none() {
            label.kind = winner_kind;
        }
        // The 最佳人气奖 (a new 最佳创意奖 too) has no group: a 组别 merged
        // down from the rows above is not its own.
        if label
            .name
            .as_ref()
            .is_some_and(prize::Name::is_contest_wide)
            && inherited_group
            && !own_group
        {
            label.group = None;
        }
        match (institution, names.is_empty()) {
            (None, true) => {}
            (None, false) => bad(
                &mut parts,
                &names.join("、"),
                "no institution in this row (the line must name it)".into(),
            ),
            (Some(inst), true) => bad(&mut parts, &inst, "no team or person in this row".into()),
            (Some(inst), false) => {
                for name in names {
                    let row = Row {
                        institution: inst.clone(),
                        winner: row::unquote(&name).to_string(),
                    };
                    match row::check(row) {
                        Ok(r) => parts.push(Part::Row(r)),
                        Err(why) => bad(&mut parts, &name, why),
                    }
                }
            }
        }
        (label, parts)
    }
}

/// `王　芳` → `王芳` (padding inside a Chinese name), `David  Chen` → `David Chen`.
fn spaced(name: &str) -> String {
    let fields: Vec<&str> = name
        .split(row::is_separator)
        .filter(|f| !f.is_empty())
        .collect();
    let mut out = String::new();
    for f in fields {
        let latin = out.ends_with(|c: char| c.is_ascii_alphanumeric())
            || f.starts_with(|c: char| c.is_ascii_alphanumeric());
        if !out.is_empty() && latin {
            out.push(' ');
        }
        out.push_str(f);
    }
    out
}

fn col_name(c: Column) -> &'static str {
    match c {
        Column::Prize => "奖项",
        Column::Group => "组别",
        Column::Category => "类别",
        _ => "",
    }
}

/// Combine what two cells say; a contradiction is an error.
fn merge(into: &mut Label, l: Label) -> Result<(), String> {
    fn one<T: PartialEq + Copy>(a: &mut Option<T>, b: Option<T>) -> Result<(), ()> {
        match (*a, b) {
            (Some(x), Some(y)) if x != y => Err(()),
            (None, Some(y)) => {
                *a = Some(y);
                Ok(())
            }
            _ => Ok(()),
        }
    }
    let conflict = || "cells of this row contradict each other".to_string();
    one(&mut into.group, l.group).map_err(|()| conflict())?;
    one(&mut into.kind, l.kind).map_err(|()| conflict())?;
    match (&into.name, l.name) {
        (Some(a), Some(b)) if *a != b => return Err(conflict()),
        (None, Some(b)) => into.name = Some(b),
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::prize::Name;
    use crate::knowledge::{Group, Level};

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn headers_in_any_order() {
        assert_eq!(
            header(&s(&["奖项", "组别", "单位", "团队/个人"])),
            Some(vec![
                Column::Prize,
                Column::Group,
                Column::Institution,
                Column::Winner(None)
            ])
        );
        assert_eq!(
            header(&s(&["获奖团队（个人）", "所在单位", "獎項"])),
            Some(vec![
                Column::Winner(None),
                Column::Institution,
                Column::Prize
            ])
        );
        assert_eq!(header(&s(&["浙商银行", "数智先锋队"])), None);
        assert_eq!(header(&s(&["奖项", "单位"])), None);
    }

    #[test]
    fn aligned_columns() {
        let t = Table::from_text("奖项        组别        单位          团队/个人").unwrap();
        assert_eq!(t.columns.len(), 4);
        assert_eq!(
            t.cells("团体一等奖  银行机构组  浙商银行      数智先锋队"),
            Some(s(&["团体一等奖", "银行机构组", "浙商银行", "数智先锋队"]))
        );
        assert_eq!(
            t.cells("                        杭州银行      王　芳"),
            Some(s(&["", "", "杭州银行", "王芳"]))
        );
        assert_eq!(t.cells("这是一段正文。"), None);
    }

    #[test]
    fn merged_cells_repeat() {
        let mut t = Table::new(
            vec![
                Column::Prize,
                Column::Group,
                Column::Institution,
                Column::Winner(None),
            ],
            Split::Cells,
        );
        let (l, parts) = t.row(&s(&["个人二等奖", "保险机构组", "人保财险", "王芳、李明"]));
        assert_eq!(
            l,
            Label {
                group: Some(Group::Insurance),
                kind: Some(Kind::Individual),
                name: Some(Name::Level(Level::Second))
            }
        );
        assert_eq!(parts.len(), 2);
        let (l2, parts) = t.row(&s(&["", "同上", "太保产险", "赵一"]));
        assert_eq!(l2, l);
        assert_eq!(parts.len(), 1);
        let (_, parts) = t.row(&s(&["", "", "", "赵二"]));
        assert!(matches!(parts[0], Part::Bad { .. }));
    }

    #[test]
    fn a_contest_wide_prize_does_not_take_a_merged_group() {
        let mut t = Table::new(
            vec![
                Column::Group,
                Column::Prize,
                Column::Institution,
                Column::Winner(None),
            ],
            Split::Cells,
        );
        t.row(&s(&["保险机构组", "团体一等奖", "人保财险", "人保队"]));
        let (l, _) = t.row(&s(&["", "最佳创意奖", "温州银行", "温银队"]));
        assert_eq!(l.group, None);
        assert_eq!(l.name, Some(Name::New("最佳创意奖".into())));
        let (l, _) = t.row(&s(&["", "团体特等奖", "国寿", "国寿队"]));
        assert_eq!(l.group, Some(Group::Insurance));
    }
}
