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
    /// Common family names: a short unknown word starting with one reads as a person.
    pub surnames: Vec<String>,
    /// Endings that make an unknown word read as a team or institution name.
    pub name_endings: Vec<String>,
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
}
