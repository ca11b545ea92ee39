//! The vocabulary that turns words into meaning: prize words and intent cues.
//! It lives in `data/lexicon.json` so that wording can be tuned without code.

use super::{Group, Kind, Level};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Words that signal prize parts and what a question asks for. Chinese words
/// are matched anywhere in the normalised text; ASCII words at word starts
/// (and, when shorter than four letters, as whole words).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lexicon {
    pub levels: BTreeMap<Level, Vec<String>>,
    pub groups: BTreeMap<Group, Vec<String>>,
    pub kinds: BTreeMap<Kind, Vec<String>>,
    pub cues: Cues,
    /// English words that open a yes/no question ("Is …", "Did …").
    pub verify_lead: Vec<String>,
    /// Generic words for what a question asks (`when`, `where`), which fact
    /// triggers use as `@when` / `@where`.
    pub asks: BTreeMap<String, Vec<String>>,
    /// Place names a question may claim ("决赛在宁波吗").
    pub places: Vec<String>,
    /// Nouns that say what a "how many" question counts.
    pub count_units: CountUnits,
    /// Words for a place in a ranking other than the top ("第二多" → 2).
    pub rank_positions: BTreeMap<u8, Vec<String>>,
    /// Units after a number, by what they measure ("4人", "12万元", "63岁").
    pub quantity_units: BTreeMap<UnitClass, Vec<String>>,
    /// Measure words: "个团队" is no team name.
    pub measure_words: Vec<String>,
    /// Endings of team names ("饺子队" is typed "饺子").
    pub team_suffixes: Vec<String>,
    /// Marks a family name ("姓郭的获奖者").
    pub family_marker: String,
    /// Ends a prize's name ("金奖" is a prize word the report may lack).
    pub prize_suffix: String,
    /// Common family names: a short unknown word starting with one reads as a person.
    pub surnames: Vec<String>,
    /// Endings that make an unknown word read as a team or institution name.
    pub name_endings: Vec<String>,
    /// Words that join two questions in one sentence, like a comma ("… and
    /// how many …"): a message is cut there when both sides ask something.
    #[serde(default)]
    pub clause_joins: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cues {
    /// The question is about prizes (获奖, 得了, won …).
    pub award: Vec<String>,
    /// The question asks for the whole award list.
    pub list_all: Vec<String>,
    /// Asks who someone is or where they work (是谁, 哪个单位 …).
    pub identity: Vec<String>,
    pub greeting: Vec<String>,
    pub help: Vec<String>,
    pub about: Vec<String>,
    pub subscribe: Vec<String>,
    pub unsubscribe: Vec<String>,
    /// Anything about scams and protecting elderly people.
    pub antifraud: Vec<String>,
    /// Asks for a story/case rather than advice.
    pub case: Vec<String>,
    /// "还有呢", "others": continue the last list.
    pub more: Vec<String>,
    /// "为什么", "怎么防": after a case, move to the tips.
    pub why: Vec<String>,
    /// "不对", "不是这个": the last reading was wrong.
    pub wrong: Vec<String>,
    /// Pronouns that point back to the last person, team or institution.
    pub pronoun: Vec<String>,
    /// Filler words stripped when a question names somebody unknown.
    pub filler: Vec<String>,
    /// Words that make a message read as English.
    pub english: Vec<String>,
    /// Marks a message as a follow-up that leaves things out ("二等奖呢", "what about").
    pub followup: Vec<String>,
    /// Across every contest loaded ("历届", "every year").
    pub all_years: Vec<String>,
    /// Asks which reports/contests the bot knows.
    pub reports: Vec<String>,
    /// Asks which institutions won most ("哪个单位获奖最多").
    pub ranking: Vec<String>,
    /// A yes/no question ("吗", "是不是", "有没有").
    pub verify: Vec<String>,
    /// A "how many" question ("几个", "多少", "一共").
    pub count: Vec<String>,
    /// Two names compared ("谁的奖更好", "谁获奖多").
    pub compare: Vec<String>,
    /// Asks which institutions ("哪几家银行", "which insurers").
    pub list_institutions: Vec<String>,
    /// "同单位还有谁": the last person's institution.
    pub same_institution: Vec<String>,
    /// "同等级还有谁": the last person's prize.
    pub same_prize: Vec<String>,
    /// After the fact ("已经被骗了怎么办"), not prevention.
    pub after_scam: Vec<String>,
    /// Pronouns for one person, several names, a team, an institution.
    pub pronoun_person: Vec<String>,
    pub pronoun_plural: Vec<String>,
    pub pronoun_team: Vec<String>,
    pub pronoun_institution: Vec<String>,
    /// A ranking or comparison by the best prize ("成绩最好", "谁的奖高").
    pub rank_level: Vec<String>,
    /// … by the number of awards ("最多", "谁获奖多").
    pub rank_count: Vec<String>,
    /// Asks who or which ("谁", "哪", "名单"), not what.
    pub asks_who: Vec<String>,
    /// A ranking from the bottom ("获奖最少").
    pub rank_least: Vec<String>,
    /// Question words: a clause with one asks something of its own.
    pub interrogative: Vec<String>,
}

/// What a unit after a number measures; numbers of different classes are
/// not compared ("4人" and "5万元").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitClass {
    People,
    Money,
    Times,
    Age,
    /// Counted things; also compatible with people (个).
    Things,
}

/// Words for what is counted.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountUnits {
    pub institutions: Vec<String>,
    pub people: Vec<String>,
    pub teams: Vec<String>,
    pub awards: Vec<String>,
}
