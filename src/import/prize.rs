//! Prize recognition, in one place: what a heading, a label before a colon or
//! a table cell says about the prize (its group, kind and level), and which
//! prize of the report it is.
//!
//! The five standard levels (一等奖, 二等奖, 三等奖, 优胜奖 and 最佳人气奖) are
//! every report's. Any other prize name (特等奖, 最佳创意奖, 优秀奖 …) is a
//! [`Name::New`]: the report declares it ([`NewPrizes`], written to
//! `prizes.json`), never mapped to a standard level it is not
//! (data/lexicon.json lets users say 优秀奖 for 优胜奖 in questions; the
//! award list must not). What a page does not say about a new prize — an id,
//! an English label, its rank, the words people type — comes from
//! [`ImportOptions::prizes`](super::ImportOptions::prizes) when given, else
//! from the table of common prizes below, else from defaults that claim
//! nothing (a standalone award, its Chinese name as its label).

use crate::engine::normalize::normalize_word;
use crate::knowledge::{Group, Kind, Level, Levels, Prize, PrizeDecl, PrizeId};

/// The prize name of a label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Name {
    /// A standard level.
    Level(Level),
    /// A prize beyond the standard five, as written (normalised): declared
    /// for the report being imported.
    New(String),
}

impl Name {
    /// A prize for the whole contest rather than per group: the 最佳人气奖,
    /// and by default a new "best …" award (最佳创意奖).
    pub fn is_contest_wide(&self) -> bool {
        match self {
            Name::Level(l) => *l == Level::MostPopular,
            Name::New(n) => n.starts_with("最佳"),
        }
    }
}

/// What a label says; any part may be missing (`一、银行机构组` names only a group).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Label {
    pub group: Option<Group>,
    pub kind: Option<Kind>,
    pub name: Option<Name>,
}

impl Label {
    pub fn is_empty(&self) -> bool {
        self.group.is_none() && self.kind.is_none() && self.name.is_none()
    }
}

/// Words that end a prize label without changing it: `团体一等奖获奖名单`,
/// `团体一等奖(3个)`, `团体一等奖共3名`.
const LABEL_SUFFIXES: &[&str] = &[
    "获奖名单",
    "获奖情况",
    "表彰名单",
    "获奖团队",
    "获奖个人",
    "获奖者",
    "获得者",
    "名单",
];

/// Words ending in 奖 that are not prize names.
const NOT_PRIZES: &[&str] = &["获奖", "颁奖", "评奖", "得奖", "嘉奖", "大奖", "奖"];

/// A cheap test before [`recognize`]: every label has one of these
/// characters (in either script).
pub(crate) fn may_be_label(text: &str) -> bool {
    text.contains([
        '奖', '獎', '组', '組', '类', '類', '道', '团', '團', '个', '個', '银', '銀', '保',
    ])
}

/// Read `text` as a label: `Some(label)` when all of it (after
/// [`normalize_word`]) is made of group, kind and prize words.
pub(crate) fn recognize(text: &str) -> Option<Label> {
    let norm: String = normalize_word(text)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    recognize_normalized(&norm)
}

fn recognize_normalized(norm: &str) -> Option<Label> {
    let mut rest = strip_count(norm);
    for suffix in LABEL_SUFFIXES {
        if let Some(r) = rest.strip_suffix(suffix) {
            rest = strip_count(r);
            break;
        }
    }
    if rest.is_empty() || rest.chars().count() > 24 {
        return None;
    }
    let mut label = Label::default();
    let mut unknown = String::new();
    while !rest.is_empty() {
        if let Some((g, r)) = group_word(rest) {
            if label.group.replace(g).is_some_and(|old| old != g) {
                return None;
            }
            rest = r;
        } else if let Some((k, r)) = kind_word(rest) {
            if label.kind.replace(k).is_some_and(|old| old != k) {
                return None;
            }
            rest = r;
        } else if let Some((l, r)) = level_word(rest) {
            if !unknown.is_empty() || label.name.is_some() {
                return None;
            }
            label.name = Some(Name::Level(l));
            rest = r;
        } else {
            // Anything else must be one prize name ending in 奖.
            let c = rest.chars().next()?;
            unknown.push(c);
            rest = &rest[c.len_utf8()..];
            if unknown.ends_with('奖') {
                if label.name.is_some() || NOT_PRIZES.contains(&unknown.as_str()) {
                    return None;
                }
                label.name = Some(Name::New(std::mem::take(&mut unknown)));
                // 团体奖 / 个人奖: a kind, not a prize.
            }
        }
    }
    if !unknown.is_empty() {
        // 奖项 after a kind (团体奖项) is still a kind.
        return None;
    }
    if let Some(Name::New(n)) = &label.name
        && (n == "奖" || (n.chars().count() > 10))
    {
        return None;
    }
    (!label.is_empty()).then_some(label)
}

/// `3个`, `共3名` at the end (the count of winners a page may give).
fn strip_count(s: &str) -> &str {
    let trimmed = s.trim_end_matches(['个', '名', '支', '项', '人', '队']);
    if trimmed.len() == s.len() {
        return s;
    }
    let digits = trimmed.trim_end_matches(|c: char| c.is_ascii_digit());
    if digits.len() == trimmed.len() {
        return s;
    }
    digits.strip_suffix('共').unwrap_or(digits)
}

/// `银行机构组`, `银行组`, `银行业`, `银行类`, `银行` (and the same for 保险).
fn group_word(s: &str) -> Option<(Group, &str)> {
    for (g, stem) in [(Group::Bank, "银行"), (Group::Insurance, "保险")] {
        let Some(mut rest) = s.strip_prefix(stem) else {
            continue;
        };
        rest = rest.strip_prefix('业').unwrap_or(rest);
        rest = rest.strip_prefix("机构").unwrap_or(rest);
        for end in ["组别", "组", "类", "赛道"] {
            if let Some(r) = rest.strip_prefix(end) {
                rest = r;
                break;
            }
        }
        return Some((g, rest));
    }
    None
}

/// `团体`, `团队`, `个人`, also as a section (`团体奖`, `个人奖项`, `团体组`).
fn kind_word(s: &str) -> Option<(Kind, &str)> {
    for (k, stem) in [
        (Kind::Team, "团体"),
        (Kind::Team, "团队"),
        (Kind::Individual, "个人"),
    ] {
        let Some(rest) = s.strip_prefix(stem) else {
            continue;
        };
        // 团体奖项 / 团体奖 (nothing after) / 团体组: the kind alone.
        for section in ["奖项", "组"] {
            if let Some(r) = rest.strip_prefix(section) {
                return Some((k, r));
            }
        }
        if rest == "奖" {
            return Some((k, ""));
        }
        return Some((k, rest));
    }
    None
}

fn level_word(s: &str) -> Option<(Level, &str)> {
    Level::STANDARD.into_iter().find_map(|l| {
        let zh = l.standard_zh()?;
        s.strip_prefix(zh).map(|r| (l, r))
    })
}

/// Where a common new prize ranks.
#[derive(Debug, Clone, Copy)]
enum Place {
    Above(Level),
    Below(Level),
    /// No rank, like the 最佳人气奖.
    Standalone,
}

/// A prize pages give beyond the standard five, with what a page does not say.
struct Common {
    zh: &'static str,
    id: &'static str,
    en: &'static str,
    place: Place,
    aliases: &'static [&'static str],
}

/// Common new prizes. A `最佳…奖` not listed here is a standalone award;
/// any other name is one too, with its Chinese name as its English label,
/// until the operator says otherwise (`--prizes`, or an edit of prizes.json).
const COMMON: &[Common] = &[
    Common {
        zh: "特等奖",
        id: "grand",
        en: "Grand Prize",
        place: Place::Above(Level::First),
        aliases: &["特等", "special prize"],
    },
    Common {
        zh: "优秀奖",
        id: "merit",
        en: "Merit Award",
        place: Place::Below(Level::Third),
        aliases: &[],
    },
    Common {
        zh: "鼓励奖",
        id: "encouragement",
        en: "Encouragement Award",
        place: Place::Below(Level::Excellence),
        aliases: &[],
    },
    Common {
        zh: "最佳创意奖",
        id: "best_creativity",
        en: "Best Creativity Award",
        place: Place::Standalone,
        aliases: &["最佳创意", "创意奖", "most creative"],
    },
    Common {
        zh: "最佳创新奖",
        id: "best_innovation",
        en: "Best Innovation Award",
        place: Place::Standalone,
        aliases: &["最佳创新", "创新奖", "most innovative"],
    },
];

/// The prizes a report declares, as the importer meets them.
#[derive(Debug, Clone, Default)]
pub(crate) struct NewPrizes {
    /// Declarations to use for the names they give (`--prizes`), as given.
    given: Vec<PrizeDecl>,
    declared: Vec<PrizeDecl>,
}

impl NewPrizes {
    pub fn new(given: &[PrizeDecl]) -> Self {
        NewPrizes {
            given: given.to_vec(),
            declared: Vec::new(),
        }
    }

    /// The declaration for a new prize name, made on first sight: given, or
    /// common, or a standalone award. A label that names a group (kind) the
    /// first time makes a prize split by group (kind).
    fn declare(
        &mut self,
        name: &str,
        label_group: Option<Group>,
        label_kind: Option<Kind>,
    ) -> &PrizeDecl {
        let names = |d: &PrizeDecl, name: &str| {
            normalize_word(&d.zh) == name || d.aliases.iter().any(|a| normalize_word(a) == name)
        };
        if let Some(at) = self.declared.iter().position(|d| names(d, name)) {
            return &self.declared[at];
        }
        let decl = match self.given.iter().find(|d| names(d, name)) {
            Some(given) => given.clone(),
            None => {
                let common = COMMON.iter().find(|c| c.zh == name);
                let (above, below) = match common.map_or(Place::Standalone, |c| c.place) {
                    Place::Above(l) => (Some(l), None),
                    Place::Below(l) => (None, Some(l)),
                    Place::Standalone => (None, None),
                };
                // A "best …" award is contest-wide, like the 最佳人气奖.
                let contest_wide = Name::New(name.to_string()).is_contest_wide();
                PrizeDecl {
                    id: self.free_id(common.map(|c| c.id), name),
                    zh: name.to_string(),
                    en: common.map_or(name, |c| c.en).to_string(),
                    above,
                    below,
                    by_group: !contest_wide || label_group.is_some(),
                    by_kind: !contest_wide || label_kind.is_some(),
                    aliases: common
                        .map(|c| c.aliases.iter().map(|a| a.to_string()).collect())
                        .unwrap_or_default(),
                }
            }
        };
        self.declared.push(decl);
        let last = self.declared.len() - 1;
        &self.declared[last]
    }

    /// An id no other declaration has: the common one, or the name's pinyin.
    fn free_id(&self, common: Option<&str>, name: &str) -> PrizeId {
        use pinyin::ToPinyin;
        let spelled: String = match common {
            Some(id) => id.to_string(),
            None => name
                .strip_suffix('奖')
                .unwrap_or(name)
                .chars()
                .filter_map(|c| c.to_pinyin().map(|p| p.plain()))
                .flat_map(str::chars)
                .filter(char::is_ascii_lowercase)
                .collect(),
        };
        let taken = |id: &PrizeId| {
            self.declared.iter().any(|d| d.id == *id)
                || self.given.iter().any(|d| d.id == *id)
                || Level::standard_named(id.as_str()).is_some()
        };
        // `prize`, `prize1` … are valid ids, and more of them than there are
        // declarations: one is free.
        let tries = self.declared.len() + self.given.len() + 1;
        for base in [spelled.as_str(), "prize"] {
            for n in 0..=tries {
                let suffix = if n == 0 { String::new() } else { n.to_string() };
                let keep = PrizeId::MAX - suffix.len();
                let candidate = format!("{}{suffix}", &base[..base.len().min(keep)]);
                if let Ok(id) = PrizeId::parse(&candidate)
                    && !taken(&id)
                {
                    return id;
                }
            }
        }
        unreachable!("one of prize, prize1 … prize{tries} is free")
    }

    /// The declarations the awards use (with those they are placed against),
    /// in the order met.
    pub fn used_by(&self, awards: &[crate::knowledge::Award]) -> Vec<PrizeDecl> {
        let mut keep: Vec<Level> = awards.iter().map(|a| a.level).collect();
        loop {
            let more: Vec<Level> = self
                .declared
                .iter()
                .filter(|d| keep.contains(&d.level()))
                .filter_map(|d| d.above.or(d.below))
                .filter(|l| !keep.contains(l))
                .collect();
            if more.is_empty() {
                break;
            }
            keep.extend(more);
        }
        self.declared
            .iter()
            .filter(|d| keep.contains(&d.level()))
            .cloned()
            .collect()
    }

    /// The levels declared so far (for messages).
    pub fn levels(&self) -> Levels {
        Levels::new(self.declared.clone()).unwrap_or_default()
    }
}

/// What a complete prize needs, from the label and the sections around it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Context {
    pub group: Option<Group>,
    pub kind: Option<Kind>,
}

/// The prize a label names in its context, or why there is none.
/// `label_group` is the group the label itself names (a 最佳人气奖 with its own
/// group is a prize the model cannot represent; under a group section it is the
/// contest-wide one). A new prize name is declared in `prizes`.
pub(crate) fn resolve(
    name: &Name,
    label_group: Option<Group>,
    label_kind: Option<Kind>,
    ctx: Context,
    prizes: &mut NewPrizes,
) -> Result<Prize, String> {
    let (level, zh, by_group, by_kind) = match name {
        Name::Level(l) => {
            let levels = Levels::default();
            (
                *l,
                levels.zh(*l).to_string(),
                levels.by_group(*l),
                levels.by_kind(*l),
            )
        }
        Name::New(n) => {
            let d = prizes.declare(n, label_group, label_kind);
            (d.level(), d.zh.clone(), d.by_group, d.by_kind)
        }
    };
    if !by_group {
        if let Some(g) = label_group {
            return Err(match name {
                Name::Level(_) => format!(
                    "prize {zh}({}) is not supported yet: the {zh} has no group in this data model",
                    g.zh()
                ),
                Name::New(_) => format!(
                    "{zh}({}): the {zh} was first listed without a group, as a contest-wide award; list it one way throughout",
                    g.zh()
                ),
            });
        }
        let kind = match label_kind {
            Some(k) => k,
            None if by_kind => ctx.kind.ok_or_else(|| no_kind(&zh))?,
            None => Kind::Team,
        };
        return Ok(Prize {
            level,
            group: None,
            kind,
        });
    }
    let kind = if by_kind {
        label_kind.or(ctx.kind).ok_or_else(|| no_kind(&zh))?
    } else {
        label_kind.unwrap_or(Kind::Team)
    };
    let Some(group) = label_group.or(ctx.group) else {
        let label = if by_kind {
            format!("{}{zh}", kind.zh())
        } else {
            zh.clone()
        };
        return Err(format!(
            "{label} without a group: expected ({}) or ({}), or a section heading such as 一、{}",
            Group::Bank.zh(),
            Group::Insurance.zh(),
            Group::Bank.zh()
        ));
    };
    Ok(Prize {
        level,
        group: Some(group),
        kind,
    })
}

fn no_kind(zh: &str) -> String {
    format!("{zh} without 团体 or 个人: cannot tell a team prize from an individual one")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(group: Option<Group>, kind: Option<Kind>, name: Option<Name>) -> Option<Label> {
        Some(Label { group, kind, name })
    }

    #[test]
    fn labels_in_all_spellings() {
        let bank_first = label(
            Some(Group::Bank),
            Some(Kind::Team),
            Some(Name::Level(Level::First)),
        );
        for h in [
            "团体一等奖(银行机构组)",
            "团体一等奖（银行机构组）",
            "團體一等獎（銀行機構組）",
            "银行机构组团体一等奖",
            "【银行组】团体一等奖",
            "团体一等奖（银行机构组，1个）",
            "银行业机构组团体一等奖获奖名单",
        ] {
            assert_eq!(recognize(h), bank_first, "{h}");
        }
        assert_eq!(
            recognize("银行机构组"),
            label(Some(Group::Bank), None, None)
        );
        assert_eq!(
            recognize("保险类"),
            label(Some(Group::Insurance), None, None)
        );
        assert_eq!(recognize("团体奖"), label(None, Some(Kind::Team), None));
        assert_eq!(
            recognize("个人奖项"),
            label(None, Some(Kind::Individual), None)
        );
        assert_eq!(
            recognize("二等奖（2名）"),
            label(None, None, Some(Name::Level(Level::Second)))
        );
        assert_eq!(
            recognize("最佳人气奖"),
            label(None, None, Some(Name::Level(Level::MostPopular)))
        );
    }

    #[test]
    fn new_prizes_are_declared_never_mapped_to_standard_ones() {
        assert_eq!(
            recognize("团体特等奖（银行机构组）"),
            label(
                Some(Group::Bank),
                Some(Kind::Team),
                Some(Name::New("特等奖".into()))
            )
        );
        assert_eq!(
            recognize("最佳创意奖"),
            label(None, None, Some(Name::New("最佳创意奖".into())))
        );
        assert_eq!(
            recognize("優秀獎"),
            label(None, None, Some(Name::New("优秀奖".into())))
        );
        let mut prizes = NewPrizes::default();
        let ctx = Context {
            group: Some(Group::Bank),
            kind: None,
        };
        let grand = resolve(
            &Name::New("特等奖".into()),
            None,
            Some(Kind::Team),
            ctx,
            &mut prizes,
        )
        .unwrap();
        assert_eq!(grand.level.name(), "grand");
        assert_eq!(grand.group, Some(Group::Bank));
        // A "best …" award under a group section is contest-wide.
        let creative = resolve(
            &Name::New("最佳创意奖".into()),
            None,
            None,
            ctx,
            &mut prizes,
        )
        .unwrap();
        assert_eq!(creative.level.name(), "best_creativity");
        assert_eq!((creative.group, creative.kind), (None, Kind::Team));
        // A name no table knows: declared, standalone, its id from its pinyin.
        let star = resolve(
            &Name::New("星光奖".into()),
            None,
            Some(Kind::Individual),
            ctx,
            &mut prizes,
        )
        .unwrap();
        assert_eq!(star.level.name(), "xingguang");
        let levels = prizes.levels();
        assert_eq!(levels.rank(grand.level), 0);
        assert_eq!(levels.rank(Level::First), 1);
        assert_eq!(levels.rank(creative.level), crate::knowledge::STANDALONE);
        assert_eq!(levels.rank(star.level), crate::knowledge::STANDALONE);
        assert_eq!(levels.en(star.level), "星光奖");
        // Met again: the same declaration.
        let again = resolve(
            &Name::New("特等奖".into()),
            Some(Group::Insurance),
            Some(Kind::Individual),
            Context::default(),
            &mut prizes,
        )
        .unwrap();
        assert_eq!(again.level, grand.level);
        assert_eq!(prizes.levels().declared().len(), 3);
        // Contest-wide once, contest-wide throughout.
        assert!(
            resolve(
                &Name::New("最佳创意奖".into()),
                Some(Group::Bank),
                None,
                ctx,
                &mut prizes
            )
            .is_err()
        );
    }

    #[test]
    fn given_declarations_win_over_the_table() {
        let given: PrizeDecl = serde_json::from_str(
            r#"{"id": "special", "zh": "特等奖", "en": "Special Prize", "above": "first", "aliases": ["特奖"]}"#,
        )
        .unwrap();
        let mut prizes = NewPrizes::new(std::slice::from_ref(&given));
        let ctx = Context {
            group: Some(Group::Bank),
            kind: Some(Kind::Team),
        };
        let p = resolve(&Name::New("特奖".into()), None, None, ctx, &mut prizes).unwrap();
        assert_eq!(p.level, given.level());
        assert_eq!(prizes.levels().declared(), [given]);
    }

    #[test]
    fn sentences_and_other_words_are_not_labels() {
        for s in [
            "大赛设团体一等奖",
            "获奖",
            "颁奖",
            "本次大赛",
            "浙商银行 数智先锋队",
            "团体一等奖二等奖",
            "银行机构组保险机构组",
            "",
        ] {
            assert_eq!(recognize(s), None, "{s}");
        }
    }

    #[test]
    fn context_completes_a_prize() {
        let mut prizes = NewPrizes::default();
        let ctx = Context {
            group: Some(Group::Insurance),
            kind: Some(Kind::Individual),
        };
        assert_eq!(
            resolve(&Name::Level(Level::Third), None, None, ctx, &mut prizes),
            Ok(Prize {
                level: Level::Third,
                group: Some(Group::Insurance),
                kind: Kind::Individual
            })
        );
        // A 最佳人气奖 under a group section is the contest-wide one.
        assert_eq!(
            resolve(
                &Name::Level(Level::MostPopular),
                None,
                None,
                ctx,
                &mut prizes
            ),
            Ok(Prize {
                level: Level::MostPopular,
                group: None,
                kind: Kind::Team
            })
        );
        assert!(
            resolve(
                &Name::Level(Level::MostPopular),
                Some(Group::Bank),
                None,
                ctx,
                &mut prizes
            )
            .is_err()
        );
        assert!(
            resolve(
                &Name::Level(Level::First),
                None,
                None,
                Context::default(),
                &mut prizes
            )
            .is_err()
        );
    }
}
