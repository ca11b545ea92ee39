//! What an import understood, for the operator to check before writing.

use crate::knowledge::{Award, Group, Levels, Prize};
use std::fmt;

/// A line inside the award list that could not be placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line of the stored source text.
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

/// Rows and prizes of one group (`None`: the prizes without a group, such as
/// the 最佳人气奖).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupCount {
    pub group: Option<Group>,
    pub prizes: usize,
    pub rows: usize,
}

/// One prize and its rows: (line, institution, winner).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrizeRows {
    pub prize: Prize,
    pub rows: Vec<(usize, String, String)>,
}

/// What was read: counts per group, every prize with its rows, and the problems.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Banking, insurance, then the prizes without a group; only those with rows.
    pub groups: Vec<GroupCount>,
    /// In the same order; within a group team prizes first, by rank.
    pub prizes: Vec<PrizeRows>,
    pub problems: Vec<Problem>,
    /// The standard levels and the prizes the report declares.
    pub levels: Levels,
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

fn group_rank(g: Option<Group>) -> usize {
    match g {
        Some(g) => Group::ALL.iter().position(|x| *x == g).unwrap_or(0),
        None => Group::ALL.len(),
    }
}

impl Summary {
    pub(crate) fn new(awards: &[Award], problems: Vec<Problem>, levels: Levels) -> Summary {
        let mut prizes: Vec<PrizeRows> = Vec::new();
        for a in awards {
            let row = (a.line, a.institution.clone(), a.winner.clone());
            match prizes.iter_mut().find(|p| p.prize == a.prize()) {
                Some(p) => p.rows.push(row),
                None => prizes.push(PrizeRows {
                    prize: a.prize(),
                    rows: vec![row],
                }),
            }
        }
        prizes.sort_by_key(|p| {
            (
                group_rank(p.prize.group),
                p.prize.kind,
                levels.rank(p.prize.level),
                p.prize.level,
            )
        });
        let mut groups: Vec<GroupCount> = Vec::new();
        for p in &prizes {
            match groups.iter_mut().find(|g| g.group == p.prize.group) {
                Some(g) => {
                    g.prizes += 1;
                    g.rows += p.rows.len();
                }
                None => groups.push(GroupCount {
                    group: p.prize.group,
                    prizes: 1,
                    rows: p.rows.len(),
                }),
            }
        }
        Summary {
            groups,
            prizes,
            problems,
            levels,
        }
    }

    /// The first line: rows and prizes per group.
    pub fn headline(&self) -> String {
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
                // The prizes without a group, by name (最佳人气奖: 2 rows).
                None => {
                    let labels: Vec<String> = self
                        .prizes
                        .iter()
                        .filter(|p| p.prize.group.is_none())
                        .map(|p| self.levels.label_zh(&p.prize))
                        .collect();
                    format!("{}: {}", labels.join("、"), plural(g.rows, "row", "rows"))
                }
            })
            .collect();
        if parts.is_empty() {
            "no rows".to_string()
        } else {
            parts.join("; ")
        }
    }
}

/// The headline; each group with its prizes and their rows (with line
/// numbers); then every problem.
impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.headline())?;
        let mut group: Option<Option<Group>> = None;
        for p in &self.prizes {
            if group != Some(p.prize.group) {
                group = Some(p.prize.group);
                if let Some(g) = p.prize.group {
                    write!(f, "\n{}", g.zh())?;
                }
            }
            let indent = if p.prize.group.is_some() { "  " } else { "" };
            write!(
                f,
                "\n{indent}{} ({})",
                self.levels.label_zh(&p.prize),
                plural(p.rows.len(), "row", "rows")
            )?;
            for (line, institution, winner) in &p.rows {
                write!(f, "\n{indent}  line {line}: {institution} | {winner}")?;
            }
        }
        let declared = self.levels.declared();
        if !declared.is_empty() {
            write!(
                f,
                "\n{} beyond the standard five (written to prizes.json):",
                plural(declared.len(), "prize", "prizes")
            )?;
            for d in declared {
                let rank = match (d.above, d.below) {
                    (Some(l), _) => format!("ranks above {}", self.levels.zh(l)),
                    (_, Some(l)) => format!("ranks below {}", self.levels.zh(l)),
                    _ => "a standalone award, no rank".to_string(),
                };
                let split = match (d.by_group, d.by_kind) {
                    (true, true) => "by group and 团体/个人",
                    (true, false) => "by group",
                    (false, true) => "by 团体/个人, no group",
                    (false, false) => "no group",
                };
                write!(f, "\n  {} `{}` \"{}\": {rank}; {split}", d.zh, d.id, d.en)?;
                if d.en == d.zh {
                    write!(f, " (give it an English label and a rank in prizes.json)")?;
                }
            }
        }
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
