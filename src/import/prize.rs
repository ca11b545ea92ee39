//! Prize recognition, in one place: what a heading, a label before a colon or
//! a table cell says about the prize (its group, kind and level).
//!
//! The data model knows five levels (一等奖, 二等奖, 三等奖, 优胜奖 and
//! 最佳人气奖), two groups and two kinds. Any other prize name (特等奖,
//! 最佳创意奖, 优秀奖 …) is recognised as a prize but [`Name::Unsupported`]:
//! the importer reports it as a problem instead of mapping it to a level it
//! is not (data/lexicon.json lets users say 特等奖 for 一等奖 in questions;
//! the award list must not). When prizes become data-driven, this module is
//! the one to change.

use crate::engine::normalize::normalize_word;
use crate::knowledge::{Group, Kind, Level, Prize};

/// The prize name of a label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Name {
    Level(Level),
    /// A prize the data model cannot represent yet, as written (normalised).
    Unsupported(String),
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
                label.name = Some(Name::Unsupported(std::mem::take(&mut unknown)));
                // 团体奖 / 个人奖: a kind, not a prize.
            }
        }
    }
    if !unknown.is_empty() {
        // 奖项 after a kind (团体奖项) is still a kind.
        return None;
    }
    if let Some(Name::Unsupported(n)) = &label.name
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
    Level::ALL
        .into_iter()
        .find_map(|l| s.strip_prefix(l.zh()).map(|r| (l, r)))
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
/// contest-wide one).
pub(crate) fn resolve(
    name: &Name,
    label_group: Option<Group>,
    label_kind: Option<Kind>,
    ctx: Context,
) -> Result<Prize, String> {
    let level = match name {
        Name::Level(l) => *l,
        Name::Unsupported(n) => return Err(format!("prize {n} is not supported yet")),
    };
    if level == Level::MostPopular {
        if let Some(g) = label_group {
            return Err(format!(
                "prize {}({}) is not supported yet: the {} has no group in this data model",
                level.zh(),
                g.zh(),
                level.zh()
            ));
        }
        return Ok(Prize {
            level,
            group: None,
            kind: label_kind.unwrap_or(Kind::Team),
        });
    }
    let Some(kind) = label_kind.or(ctx.kind) else {
        return Err(format!(
            "{} without 团体 or 个人: cannot tell a team prize from an individual one",
            level.zh()
        ));
    };
    let Some(group) = label_group.or(ctx.group) else {
        return Err(format!(
            "{}{} without a group: expected ({}) or ({}), or a section heading such as 一、{}",
            kind.zh(),
            level.zh(),
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
    fn new_prizes_are_recognised_but_not_mapped() {
        assert_eq!(
            recognize("团体特等奖（银行机构组）"),
            label(
                Some(Group::Bank),
                Some(Kind::Team),
                Some(Name::Unsupported("特等奖".into()))
            )
        );
        assert_eq!(
            recognize("最佳创意奖"),
            label(None, None, Some(Name::Unsupported("最佳创意奖".into())))
        );
        assert_eq!(
            recognize("優秀獎"),
            label(None, None, Some(Name::Unsupported("优秀奖".into())))
        );
        let err = resolve(
            &Name::Unsupported("特等奖".into()),
            None,
            None,
            Context::default(),
        )
        .unwrap_err();
        assert_eq!(err, "prize 特等奖 is not supported yet");
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
        let ctx = Context {
            group: Some(Group::Insurance),
            kind: Some(Kind::Individual),
        };
        assert_eq!(
            resolve(&Name::Level(Level::Third), None, None, ctx),
            Ok(Prize {
                level: Level::Third,
                group: Some(Group::Insurance),
                kind: Kind::Individual
            })
        );
        // A 最佳人气奖 under a group section is the contest-wide one.
        assert_eq!(
            resolve(&Name::Level(Level::MostPopular), None, None, ctx),
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
                ctx
            )
            .is_err()
        );
        assert!(resolve(&Name::Level(Level::First), None, None, Context::default()).is_err());
    }
}
