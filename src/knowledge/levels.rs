//! Prize levels as data: the five every report may have (一等奖, 二等奖,
//! 三等奖, 优胜奖, 最佳人气奖) and the ones a report declares in its
//! `prizes.json` (特等奖, 最佳创意奖 …), with their names, English labels,
//! ranks and the words people type for them.
//!
//! `prizes.json` (optional, beside `awards.json`) is an array of
//! declarations:
//!
//! ```json
//! [
//!   {"id": "grand", "zh": "特等奖", "en": "Grand Prize", "above": "first",
//!    "by_group": true, "by_kind": true, "aliases": ["特等", "special prize"]},
//!   {"id": "best_creativity", "zh": "最佳创意奖", "en": "Best Creativity Award",
//!    "by_group": false, "by_kind": false, "aliases": ["创意奖"]}
//! ]
//! ```
//!
//! - `id`: what `awards.json` writes as the row's `level` (2–15 characters
//!   `a-z`, `0-9`, `_`, starting with a letter; not a standard level's name);
//! - `zh`, `en`: the prize's name as the report writes it, and in English;
//! - `above` / `below`: where it ranks — immediately above or below a
//!   standard ranked level (`first`, `second`, `third`, `excellence`) or
//!   another ranked prize of the same file (prizes declared against the
//!   same one keep the order of the file). Neither: a standalone award
//!   that is no rank, like the 最佳人气奖 (rankings put it last, and two
//!   standalone awards are not compared);
//! - `by_group`: split by 银行机构组/保险机构组 (rows have a `group`), default true;
//! - `by_kind`: split by 团体/个人 (labels say `团体特等奖`), default true;
//! - `aliases`: other words people type for it (its `zh` and `en` count too).

use super::{Level, Prize};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The id of a declared prize, stored inline so that a [`Level`] stays
/// `Copy`: 2–15 bytes of `a-z`, `0-9` and `_`, starting with a letter.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PrizeId {
    bytes: [u8; PrizeId::MAX],
    len: u8,
}

impl PrizeId {
    pub const MAX: usize = 15;

    /// A valid id, or why not.
    pub fn parse(s: &str) -> Result<PrizeId, String> {
        let b = s.as_bytes();
        if !(2..=Self::MAX).contains(&b.len()) {
            return Err(format!(
                "prize id {s:?} must be 2 to {} characters long",
                Self::MAX
            ));
        }
        if !b[0].is_ascii_lowercase()
            || !b
                .iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
        {
            return Err(format!(
                "prize id {s:?} must be lower-case letters, digits and _, starting with a letter"
            ));
        }
        let mut bytes = [0u8; Self::MAX];
        bytes[..b.len()].copy_from_slice(b);
        Ok(PrizeId {
            bytes,
            len: b.len() as u8,
        })
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored (see `parse`).
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl fmt::Debug for PrizeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrizeId({})", self.as_str())
    }
}

impl fmt::Display for PrizeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for PrizeId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for PrizeId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        PrizeId::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// What the five standard levels are.
struct Standard {
    level: Level,
    /// As `awards.json` writes it.
    name: &'static str,
    zh: &'static str,
    en: &'static str,
    ranked: bool,
    by_group: bool,
    by_kind: bool,
}

const STANDARD: [Standard; 5] = [
    Standard {
        level: Level::First,
        name: "first",
        zh: "一等奖",
        en: "First Prize",
        ranked: true,
        by_group: true,
        by_kind: true,
    },
    Standard {
        level: Level::Second,
        name: "second",
        zh: "二等奖",
        en: "Second Prize",
        ranked: true,
        by_group: true,
        by_kind: true,
    },
    Standard {
        level: Level::Third,
        name: "third",
        zh: "三等奖",
        en: "Third Prize",
        ranked: true,
        by_group: true,
        by_kind: true,
    },
    Standard {
        level: Level::Excellence,
        name: "excellence",
        zh: "优胜奖",
        en: "Excellence Award",
        ranked: true,
        by_group: true,
        by_kind: true,
    },
    Standard {
        level: Level::MostPopular,
        name: "most_popular",
        zh: "最佳人气奖",
        en: "Most Popular Award",
        ranked: false,
        by_group: false,
        by_kind: false,
    },
];

fn standard(l: Level) -> Option<&'static Standard> {
    STANDARD.iter().find(|s| s.level == l)
}

impl Level {
    /// The five levels every report may have, in rank order (the 最佳人气奖,
    /// no rank, last). A report may declare more (see [`Levels`]).
    pub const STANDARD: [Level; 5] = [
        Level::First,
        Level::Second,
        Level::Third,
        Level::Excellence,
        Level::MostPopular,
    ];

    /// The standard level a name (`first` … `most_popular`) or a standard
    /// Chinese name (`一等奖` …) stands for.
    pub fn standard_named(s: &str) -> Option<Level> {
        STANDARD
            .iter()
            .find(|x| x.name == s || x.zh == s)
            .map(|x| x.level)
    }

    /// The Chinese name of a standard level (`None` for a declared one,
    /// whose name is in its report's [`Levels`]).
    pub fn standard_zh(self) -> Option<&'static str> {
        standard(self).map(|s| s.zh)
    }

    pub fn is_declared(self) -> bool {
        matches!(self, Level::Declared(_))
    }

    /// As `awards.json` writes it: `first` … `most_popular`, or the declared id.
    pub fn name(&self) -> &str {
        match self {
            Level::Declared(id) => id.as_str(),
            l => standard(*l).map_or("", |s| s.name),
        }
    }

    /// Short code for button data: `1`, `2`, `3`, `x`, `m`, or the declared id
    /// (at least two characters, so never one of those).
    pub fn code(&self) -> &str {
        match self {
            Level::First => "1",
            Level::Second => "2",
            Level::Third => "3",
            Level::Excellence => "x",
            Level::MostPopular => "m",
            Level::Declared(id) => id.as_str(),
        }
    }

    /// The level a [`code`](Level::code) stands for; a declared id parses to
    /// a level whether or not any report has it (check before use).
    pub fn from_code(s: &str) -> Option<Self> {
        match s {
            "1" => Some(Level::First),
            "2" => Some(Level::Second),
            "3" => Some(Level::Third),
            "x" => Some(Level::Excellence),
            "m" => Some(Level::MostPopular),
            s if Level::standard_named(s).is_some() => None,
            s => PrizeId::parse(s).ok().map(Level::Declared),
        }
    }
}

impl Serialize for Level {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Level {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        if let Some(l) = STANDARD.iter().find(|x| x.name == s).map(|x| x.level) {
            return Ok(l);
        }
        PrizeId::parse(&s).map(Level::Declared).map_err(|why| {
            serde::de::Error::custom(format!(
                "unknown prize level {s:?} (the standard ones are first, second, third, excellence, most_popular; others are declared in prizes.json): {why}"
            ))
        })
    }
}

fn yes() -> bool {
    true
}

/// One entry of `prizes.json`: a prize a report has beyond the standard five.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrizeDecl {
    pub id: PrizeId,
    pub zh: String,
    pub en: String,
    /// Ranks immediately above this level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<Level>,
    /// Ranks immediately below this level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<Level>,
    #[serde(default = "yes")]
    pub by_group: bool,
    #[serde(default = "yes")]
    pub by_kind: bool,
    #[serde(default)]
    pub aliases: Vec<String>,
}

impl PrizeDecl {
    pub fn level(&self) -> Level {
        Level::Declared(self.id)
    }

    /// Ranked (placed above or below another level), or a standalone award.
    pub fn is_ranked(&self) -> bool {
        self.above.is_some() || self.below.is_some()
    }

    /// The words that name it: its Chinese name, its English label, its aliases.
    pub fn words(&self) -> impl Iterator<Item = &str> {
        [self.zh.as_str(), self.en.as_str()]
            .into_iter()
            .chain(self.aliases.iter().map(String::as_str))
    }
}

/// Why a list of declarations is wrong: which one (index into the list),
/// which field, what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclError {
    pub index: usize,
    pub field: &'static str,
    pub message: String,
}

/// The levels of a report (or of all reports): the standard five and the
/// declared ones, with the order of the ranked ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Levels {
    declared: Vec<PrizeDecl>,
    /// Ranked levels, best first.
    order: Vec<Level>,
}

impl Default for Levels {
    fn default() -> Self {
        Levels {
            declared: Vec::new(),
            order: STANDARD
                .iter()
                .filter(|s| s.ranked)
                .map(|s| s.level)
                .collect(),
        }
    }
}

/// The rank [`Levels::rank`] gives a standalone award (and a level it does not know).
pub const STANDALONE: u8 = u8::MAX - 1;

impl Levels {
    /// Check declarations and place them among the standard levels.
    pub fn new(declared: Vec<PrizeDecl>) -> Result<Levels, DeclError> {
        let err = |index: usize, field: &'static str, message: String| DeclError {
            index,
            field,
            message,
        };
        for (i, d) in declared.iter().enumerate() {
            if Level::standard_named(d.id.as_str()).is_some() {
                return Err(err(
                    i,
                    "id",
                    format!(
                        "{:?} is a standard level; declare only new prizes",
                        d.id.as_str()
                    ),
                ));
            }
            if declared[..i].iter().any(|e| e.id == d.id) {
                return Err(err(
                    i,
                    "id",
                    format!("{:?} is declared twice", d.id.as_str()),
                ));
            }
            if d.zh.trim().is_empty() || !d.zh.chars().any(crate::engine::normalize::is_cjk) {
                return Err(err(i, "zh", "needs the prize's Chinese name".into()));
            }
            if d.en.trim().is_empty() {
                return Err(err(i, "en", "needs an English label".into()));
            }
            if d.above.is_some() && d.below.is_some() {
                return Err(err(i, "above", "give `above` or `below`, not both".into()));
            }
            for (field, word) in [("zh", d.zh.as_str()), ("en", d.en.as_str())]
                .into_iter()
                .chain(d.aliases.iter().map(|a| ("aliases", a.as_str())))
            {
                if word.trim().is_empty() {
                    return Err(err(i, field, "an empty word".into()));
                }
                if let Some(l) = Level::standard_named(word) {
                    return Err(err(
                        i,
                        field,
                        format!("{word:?} is the standard level {}", l.name()),
                    ));
                }
                let taken = declared
                    .iter()
                    .take(i)
                    .find(|e| e.words().any(|w| w == word));
                if let Some(e) = taken {
                    return Err(err(
                        i,
                        field,
                        format!("{word:?} also names the prize {:?}", e.id.as_str()),
                    ));
                }
            }
        }
        let mut levels = Levels {
            declared,
            ..Levels::default()
        };
        levels.place()?;
        Ok(levels)
    }

    /// Insert the ranked declarations into the order, each next to its anchor;
    /// several against one anchor keep the order of the file.
    fn place(&mut self) -> Result<(), DeclError> {
        let mut pending: Vec<usize> = (0..self.declared.len())
            .filter(|i| self.declared[*i].is_ranked())
            .collect();
        // Per anchor: the last level placed below it.
        let mut last_below: Vec<(Level, Level)> = Vec::new();
        while !pending.is_empty() {
            let before = pending.len();
            pending.retain(|&i| {
                let d = &self.declared[i];
                let (anchor, above) = match (d.above, d.below) {
                    (Some(a), _) => (a, true),
                    (_, Some(b)) => (b, false),
                    _ => return false,
                };
                let Some(at) = self.order.iter().position(|l| *l == anchor) else {
                    return true;
                };
                let level = d.level();
                if above {
                    self.order.insert(at, level);
                } else {
                    let after = last_below
                        .iter()
                        .find(|(a, _)| *a == anchor)
                        .and_then(|(_, l)| self.order.iter().position(|x| x == l))
                        .unwrap_or(at);
                    self.order.insert(after + 1, level);
                    last_below.retain(|(a, _)| *a != anchor);
                    last_below.push((anchor, level));
                }
                false
            });
            if pending.len() == before {
                let anchor_of = |d: &PrizeDecl| match (d.above, d.below) {
                    (Some(a), _) => ("above", a),
                    (_, b) => ("below", b.unwrap_or(Level::MostPopular)),
                };
                // The one whose anchor is not waiting itself is the cause;
                // if every anchor waits, they wait for each other.
                let waiting: Vec<Level> =
                    pending.iter().map(|i| self.declared[*i].level()).collect();
                let i = pending
                    .iter()
                    .copied()
                    .find(|i| !waiting.contains(&anchor_of(&self.declared[*i]).1))
                    .unwrap_or(pending[0]);
                let (field, anchor) = anchor_of(&self.declared[i]);
                let why = if anchor == Level::MostPopular
                    || self
                        .declared
                        .iter()
                        .any(|e| e.level() == anchor && !e.is_ranked())
                {
                    "is a standalone award, not a rank"
                } else if self.declared.iter().any(|e| e.level() == anchor) {
                    "is placed relative to this prize in turn (a cycle)"
                } else {
                    "is neither a standard ranked level (first, second, third, excellence) nor declared in this file"
                };
                return Err(DeclError {
                    index: i,
                    field,
                    message: format!("{:?} {why}", anchor.name()),
                });
            }
        }
        Ok(())
    }

    /// The declared prizes.
    pub fn declared(&self) -> &[PrizeDecl] {
        &self.declared
    }

    pub fn declaration(&self, l: Level) -> Option<&PrizeDecl> {
        self.declared.iter().find(|d| d.level() == l)
    }

    /// A standard level, or one declared here.
    pub fn knows(&self, l: Level) -> bool {
        !l.is_declared() || self.declaration(l).is_some()
    }

    /// The Chinese name (`一等奖`, `特等奖`). A level these levels do not
    /// know (one a data reload removed) is "未知奖项".
    pub fn zh(&self, l: Level) -> &str {
        match (standard(l), self.declaration(l)) {
            (Some(s), _) => s.zh,
            (None, Some(d)) => &d.zh,
            (None, None) => "未知奖项",
        }
    }

    /// The English label (`First Prize`, `Grand Prize`).
    pub fn en(&self, l: Level) -> &str {
        match (standard(l), self.declaration(l)) {
            (Some(s), _) => s.en,
            (None, Some(d)) => &d.en,
            (None, None) => "unknown prize",
        }
    }

    /// Split by group: its rows name a group.
    pub fn by_group(&self, l: Level) -> bool {
        match (standard(l), self.declaration(l)) {
            (Some(s), _) => s.by_group,
            (None, Some(d)) => d.by_group,
            (None, None) => true,
        }
    }

    /// Split by 团体/个人: its label names the kind.
    pub fn by_kind(&self, l: Level) -> bool {
        match (standard(l), self.declaration(l)) {
            (Some(s), _) => s.by_kind,
            (None, Some(d)) => d.by_kind,
            (None, None) => true,
        }
    }

    /// Position among the ranked levels, best first (一等奖 is 0 unless a
    /// prize ranks above it); [`STANDALONE`] for a standalone award.
    pub fn rank(&self, l: Level) -> u8 {
        self.order
            .iter()
            .position(|x| *x == l)
            .map_or(STANDALONE, |p| p.min(usize::from(STANDALONE - 1)) as u8)
    }

    /// Ranked levels, best first.
    pub fn ranked(&self) -> &[Level] {
        &self.order
    }

    /// Every level: the ranked ones best first, then the standalone awards.
    pub fn all(&self) -> Vec<Level> {
        let mut all = self.order.clone();
        all.push(Level::MostPopular);
        all.extend(
            self.declared
                .iter()
                .filter(|d| !d.is_ranked())
                .map(PrizeDecl::level),
        );
        all
    }

    /// `团体一等奖`, `最佳人气奖`, `团体特等奖`, `最佳创意奖`.
    pub fn label_zh(&self, p: &Prize) -> String {
        if self.by_kind(p.level) {
            [p.kind.zh(), self.zh(p.level)].concat()
        } else {
            self.zh(p.level).to_string()
        }
    }

    pub fn label_en(&self, p: &Prize) -> String {
        if self.by_kind(p.level) {
            format!("{} {}", p.kind.en(), self.en(p.level))
        } else {
            self.en(p.level).to_string()
        }
    }

    /// With the group: `团体一等奖(银行机构组)`.
    pub fn full_label_zh(&self, p: &Prize) -> String {
        match p.group {
            // Labels are written for every award of every answer: no format!.
            Some(g) => [&self.label_zh(p), "(", g.zh(), ")"].concat(),
            None => self.label_zh(p),
        }
    }

    pub fn full_label_en(&self, p: &Prize) -> String {
        match p.group {
            Some(g) => format!("{} ({})", self.label_en(p), g.en()),
            None => self.label_en(p),
        }
    }

    /// The levels of several reports together (their declarations must
    /// agree: see the loader).
    pub fn merged<'a>(all: impl IntoIterator<Item = &'a Levels>) -> Levels {
        let mut declared: Vec<PrizeDecl> = Vec::new();
        for levels in all {
            for d in &levels.declared {
                if !declared.iter().any(|e| e.id == d.id) {
                    declared.push(d.clone());
                }
            }
        }
        let mut merged = Levels {
            declared,
            ..Levels::default()
        };
        // Each report's declarations were placed on their own; together an
        // anchor may be declared by another report only if ids agree, which
        // the loader checks, so this cannot fail on loaded data.
        if merged.place().is_err() {
            merged.order = Levels::default().order;
        }
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::{Group, Kind};

    fn decl(json: &str) -> PrizeDecl {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn standard_levels_keep_their_names_and_order() {
        let l = Levels::default();
        assert_eq!(
            l.ranked(),
            [Level::First, Level::Second, Level::Third, Level::Excellence]
        );
        assert_eq!(l.rank(Level::First), 0);
        assert_eq!(l.rank(Level::MostPopular), STANDALONE);
        let p = Prize {
            level: Level::First,
            group: Some(Group::Bank),
            kind: Kind::Team,
        };
        assert_eq!(l.full_label_zh(&p), "团体一等奖(银行机构组)");
        assert_eq!(l.full_label_en(&p), "Team First Prize (Banking group)");
        let mp = Prize {
            level: Level::MostPopular,
            group: None,
            kind: Kind::Team,
        };
        assert_eq!(l.full_label_zh(&mp), "最佳人气奖");
        assert_eq!(
            serde_json::to_string(&Level::MostPopular).unwrap(),
            "\"most_popular\""
        );
    }

    #[test]
    fn declared_prizes_rank_where_they_say() {
        let l = Levels::new(vec![
            decl(r#"{"id": "grand", "zh": "特等奖", "en": "Grand Prize", "above": "first"}"#),
            decl(r#"{"id": "gold", "zh": "金奖", "en": "Gold", "above": "grand"}"#),
            decl(r#"{"id": "merit", "zh": "优秀奖", "en": "Merit Award", "below": "third"}"#),
            decl(r#"{"id": "hope", "zh": "希望奖", "en": "Hope Award", "below": "third"}"#),
            decl(
                r#"{"id": "best_idea", "zh": "最佳创意奖", "en": "Best Creativity Award", "by_group": false, "by_kind": false}"#,
            ),
        ])
        .unwrap();
        let id = |s: &str| Level::Declared(PrizeId::parse(s).unwrap());
        assert_eq!(
            l.ranked(),
            [
                id("gold"),
                id("grand"),
                Level::First,
                Level::Second,
                Level::Third,
                id("merit"),
                id("hope"),
                Level::Excellence
            ]
        );
        assert_eq!(l.rank(id("best_idea")), STANDALONE);
        assert_eq!(l.zh(id("grand")), "特等奖");
        let creative = Prize {
            level: id("best_idea"),
            group: None,
            kind: Kind::Team,
        };
        assert_eq!(l.full_label_zh(&creative), "最佳创意奖");
        let grand = Prize {
            level: id("grand"),
            group: Some(Group::Bank),
            kind: Kind::Individual,
        };
        assert_eq!(l.full_label_zh(&grand), "个人特等奖(银行机构组)");
        assert_eq!(
            l.full_label_en(&grand),
            "Individual Grand Prize (Banking group)"
        );
    }

    #[test]
    fn bad_declarations_name_the_entry_and_field() {
        let bad = |json: &str| Levels::new(vec![decl(json)]).unwrap_err();
        let e = bad(r#"{"id": "x1", "zh": "特等奖", "en": "G", "above": "most_popular"}"#);
        assert_eq!((e.index, e.field), (0, "above"));
        assert!(e.message.contains("standalone"), "{}", e.message);
        let e = bad(r#"{"id": "x1", "zh": "特等奖", "en": "G", "above": "nothing"}"#);
        assert!(e.message.contains("nor declared"), "{}", e.message);
        let e = bad(r#"{"id": "x1", "zh": "一等奖", "en": "G"}"#);
        assert_eq!(e.field, "zh");
        let e = bad(r#"{"id": "x1", "zh": "特等奖", "en": "", "above": "first"}"#);
        assert_eq!(e.field, "en");
        let e =
            bad(r#"{"id": "x1", "zh": "特等奖", "en": "G", "above": "first", "below": "third"}"#);
        assert_eq!(e.field, "above");
        let e = Levels::new(vec![
            decl(r#"{"id": "aa", "zh": "甲奖", "en": "A", "above": "bb"}"#),
            decl(r#"{"id": "bb", "zh": "乙奖", "en": "B", "above": "aa"}"#),
        ])
        .unwrap_err();
        assert!(e.message.contains("cycle"), "{}", e.message);
        let e = Levels::new(vec![
            decl(r#"{"id": "aa", "zh": "甲奖", "en": "A", "above": "bb"}"#),
            decl(r#"{"id": "bb", "zh": "乙奖", "en": "B", "below": "zz"}"#),
        ])
        .unwrap_err();
        assert_eq!((e.index, e.field), (1, "below"));
        assert!(e.message.contains("nor declared"), "{}", e.message);
        let e = Levels::new(vec![
            decl(r#"{"id": "aa", "zh": "甲奖", "en": "A"}"#),
            decl(r#"{"id": "bb", "zh": "乙奖", "en": "B", "aliases": ["甲奖"]}"#),
        ])
        .unwrap_err();
        assert_eq!((e.index, e.field), (1, "aliases"));
        for bad_id in [
            "\"first\"",
            "\"A1\"",
            "\"x\"",
            "\"1a\"",
            "\"abcdefghijklmnop\"",
        ] {
            let json = format!(r#"{{"id": {bad_id}, "zh": "甲奖", "en": "A"}}"#);
            let parsed: Result<PrizeDecl, _> = serde_json::from_str(&json);
            let rejected = match parsed {
                Err(_) => true,
                Ok(d) => Levels::new(vec![d]).is_err(),
            };
            assert!(rejected, "{bad_id}");
        }
    }

    #[test]
    fn codes_round_trip_and_never_collide() {
        for l in Level::STANDARD {
            assert_eq!(Level::from_code(l.code()), Some(l));
        }
        let grand = Level::Declared(PrizeId::parse("grand").unwrap());
        assert_eq!(Level::from_code("grand"), Some(grand));
        assert_eq!(Level::from_code("first"), None);
        assert_eq!(Level::from_code("G"), None);
        assert_eq!(Level::from_code(""), None);
    }
}
