//! The typed shape of a report's data. These types parse at the edge: once a
//! [`Knowledge`](super::Knowledge) exists, every prize, group and level is valid.

use serde::{Deserialize, Serialize};

/// The two competition groups of the contest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    Bank,
    Insurance,
}

/// Team (团体) or individual (个人) prize.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Team,
    Individual,
}

/// Prize level: one of the five standard ones, or a prize a report declares
/// in its `prizes.json` (特等奖, 最佳创意奖 …). Names, labels and ranks live
/// in [`Levels`](super::Levels); in JSON a level is its name (`first` …
/// `most_popular`) or its declared id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    First,
    Second,
    Third,
    Excellence,
    MostPopular,
    Declared(super::PrizeId),
}

impl Group {
    pub const ALL: [Group; 2] = [Group::Bank, Group::Insurance];
    pub fn zh(self) -> &'static str {
        match self {
            Group::Bank => "银行机构组",
            Group::Insurance => "保险机构组",
        }
    }
    pub fn en(self) -> &'static str {
        match self {
            Group::Bank => "Banking group",
            Group::Insurance => "Insurance group",
        }
    }
    pub fn code(self) -> &'static str {
        match self {
            Group::Bank => "b",
            Group::Insurance => "i",
        }
    }
    pub fn from_code(s: &str) -> Option<Self> {
        Group::ALL.into_iter().find(|g| g.code() == s)
    }
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::Team, Kind::Individual];
    pub fn zh(self) -> &'static str {
        match self {
            Kind::Team => "团体",
            Kind::Individual => "个人",
        }
    }
    pub fn en(self) -> &'static str {
        match self {
            Kind::Team => "Team",
            Kind::Individual => "Individual",
        }
    }
    pub fn code(self) -> &'static str {
        match self {
            Kind::Team => "t",
            Kind::Individual => "p",
        }
    }
    pub fn from_code(s: &str) -> Option<Self> {
        Kind::ALL.into_iter().find(|k| k.code() == s)
    }
}

/// A prize of the award list. A prize not split by group (the 最佳人气奖) has
/// no group; one not split by kind is labelled without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prize {
    pub level: Level,
    pub group: Option<Group>,
    pub kind: Kind,
}

impl Prize {
    /// The label as the report writes it, e.g. `团体一等奖` or `最佳人气奖`.
    pub fn label_zh(&self, levels: &super::Levels) -> String {
        levels.label_zh(self)
    }
    pub fn label_en(&self, levels: &super::Levels) -> String {
        levels.label_en(self)
    }
    /// Label with its group, e.g. `团体一等奖(银行机构组)`.
    pub fn full_label_zh(&self, levels: &super::Levels) -> String {
        levels.full_label_zh(self)
    }
    pub fn full_label_en(&self, levels: &super::Levels) -> String {
        levels.full_label_en(self)
    }
}

/// One row of the award list: who (a team or a person) of which institution won which prize.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Award {
    pub group: Option<Group>,
    pub kind: Kind,
    pub level: Level,
    pub institution: String,
    pub winner: String,
    /// Line of the source report this row was read from (1-based).
    pub line: usize,
}

impl Award {
    pub fn prize(&self) -> Prize {
        Prize {
            level: self.level,
            group: self.group,
            kind: self.kind,
        }
    }
}

/// An institution and the names people really use for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Institution {
    pub name: String,
    pub en: String,
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// What a report is about: the contest and where the text lives.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportMeta {
    pub id: String,
    pub title: String,
    pub contest: String,
    pub year: u16,
    /// ISO date of the final, e.g. `2022-11-22`.
    pub final_date: String,
    pub city: String,
    pub published: String,
    /// File name under `sources/`.
    pub source: String,
    #[serde(default)]
    pub teams: Option<u32>,
    #[serde(default)]
    pub participants: Option<u32>,
    #[serde(default)]
    pub finalists: Option<u32>,
}

/// How the bot presents a report: sentences about it that are not facts of
/// it (texts.json, optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportTexts {
    /// What kind of text the report is ("浙江金融新闻报道").
    #[serde(default)]
    pub kind_zh: Option<String>,
    #[serde(default)]
    pub kind_en: Option<String>,
    /// What questions about it the bot answers (for the welcome message).
    #[serde(default)]
    pub covers_zh: Option<String>,
    #[serde(default)]
    pub covers_en: Option<String>,
    /// Example questions shown in the welcome and fallback messages.
    #[serde(default)]
    pub examples_zh: Vec<String>,
    #[serde(default)]
    pub examples_en: Vec<String>,
}

/// What kind of value a fact states: the kind of question it answers
/// (when, where, who, how many …) and how a claimed value is compared with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueType {
    Date,
    Place,
    Number,
    Person,
    Org,
    List,
    Text,
}

/// Something a report states facts about: the contest, the platform, an
/// official, a case. Questions name it with its `words`; trigger groups of
/// facts refer to them as `@id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    pub id: String,
    pub name_zh: String,
    pub name_en: String,
    pub words: Vec<String>,
    /// A person (pronouns 他/她 can point at them).
    #[serde(default)]
    pub person: bool,
    /// The anti-fraud case this subject is the story of, if any.
    #[serde(default)]
    pub case: Option<String>,
}

/// A stated fact: one attribute of one subject, with its value(s), the words
/// that find it and the report text it rests on.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fact {
    pub id: String,
    /// The [`Subject`] id this fact is about.
    pub subject: String,
    /// The kind of value stated (the first of `values` is the main one).
    #[serde(rename = "type")]
    pub value_type: ValueType,
    pub question_zh: String,
    pub question_en: String,
    /// All groups must match; within a group any keyword. `@subject` stands
    /// for a subject's words, `@when` / `@where` for the lexicon's.
    pub triggers: Vec<Vec<String>>,
    pub answer_zh: String,
    pub answer_en: String,
    #[serde(default)]
    pub values: Vec<String>,
    pub evidence: Vec<String>,
    /// The fact is about the winners of these prizes ("个人一等奖获得者"):
    /// answers name them from the award list.
    #[serde(default)]
    pub winners: Option<PrizeRef>,
}

/// A selection of prizes named in data; unset parts match anything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrizeRef {
    #[serde(default)]
    pub group: Option<Group>,
    #[serde(default)]
    pub kind: Option<Kind>,
    #[serde(default)]
    pub level: Option<Level>,
}

impl PrizeRef {
    pub fn matches(&self, p: &Prize) -> bool {
        self.group.is_none_or(|g| p.group == Some(g))
            && self.kind.is_none_or(|k| p.kind == k)
            && self.level.is_none_or(|l| p.level == l)
    }
}

/// A kind of scam, with the words that name it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topic {
    pub id: String,
    pub name_zh: String,
    pub name_en: String,
    pub keywords: Vec<String>,
    /// What to do once scammed, rather than how to avoid it.
    #[serde(default)]
    pub after: bool,
    /// General advice: asking about it gets an overview of every scam.
    #[serde(default)]
    pub overview: bool,
}

/// One piece of advice, tied to the sentence of the report it is drawn from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tip {
    pub id: String,
    pub topic: String,
    pub zh: String,
    pub en: String,
    pub evidence: String,
}

/// A scam case the report tells.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub id: String,
    pub title_zh: String,
    pub title_en: String,
    pub topics: Vec<String>,
    pub summary_zh: String,
    pub summary_en: String,
    pub how_stopped_zh: String,
    pub how_stopped_en: String,
    #[serde(default)]
    pub values: Vec<String>,
    pub evidence: Vec<String>,
    pub triggers: Vec<Vec<String>>,
}

/// The anti-fraud part of a report.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AntiFraud {
    /// Where the tips come from, said under them.
    #[serde(default)]
    pub source_zh: Option<String>,
    #[serde(default)]
    pub source_en: Option<String>,
    #[serde(default)]
    pub topics: Vec<Topic>,
    #[serde(default)]
    pub tips: Vec<Tip>,
    #[serde(default)]
    pub cases: Vec<Case>,
}
