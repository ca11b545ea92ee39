//! The structured answer: what to say, not how to say it. Renderers turn it
//! into Telegram HTML or plain text; transports add buttons from it.

use super::index::EntityId;
use crate::knowledge::{Group, Kind, Level, Prize};

/// Reply language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Zh,
    En,
}

impl Lang {
    /// From a Telegram `language_code` such as `en`, `en-GB`, `zh-hans`.
    pub fn from_code(code: Option<&str>) -> Option<Lang> {
        let code = code?.to_ascii_lowercase();
        if code.starts_with("en") {
            Some(Lang::En)
        } else if code.starts_with("zh") {
            Some(Lang::Zh)
        } else {
            None
        }
    }
}

/// Which prizes a question asks about; `None` means "any".
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct PrizeFilter {
    pub group: Option<Group>,
    pub kind: Option<Kind>,
    pub level: Option<Level>,
}

impl PrizeFilter {
    pub fn matches(&self, p: &Prize) -> bool {
        let level_ok = self.level.is_none_or(|l| l == p.level);
        // A prize not split by group (the 最佳人气奖, a declared 最佳创意奖)
        // answers any group's question that asks for it by name.
        let asked_by_name = self.level == Some(p.level);
        let group_ok = match (self.group, p.group) {
            (Some(g), Some(pg)) => g == pg,
            (Some(_), None) => asked_by_name,
            (None, _) => true,
        };
        let kind_ok = match self.kind {
            Some(k) => k == p.kind && (p.group.is_some() || asked_by_name || self.group.is_none()),
            None => true,
        };
        level_ok && group_ok && kind_ok
    }
    pub fn is_empty(&self) -> bool {
        self.group.is_none() && self.kind.is_none() && self.level.is_none()
    }
    /// Fields of `self` where given, else those of `base` (a follow-up question).
    pub fn over(self, base: PrizeFilter) -> PrizeFilter {
        PrizeFilter {
            group: self.group.or(base.group),
            kind: self.kind.or(base.kind),
            level: self.level.or(base.level),
        }
    }
}

/// One prize with its winners (indices into the report's award list).
#[derive(Debug, Clone, PartialEq)]
pub struct PrizeWinners {
    pub prize: Prize,
    pub awards: Vec<usize>,
}

/// What one entity won in one report.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityWins {
    pub entity: EntityId,
    pub report: usize,
    pub awards: Vec<usize>,
}

/// A structured answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `/start`: welcome, what the bot answers, examples.
    Welcome,
    /// `/help`: every command.
    Help,
    /// `/about`: where the data comes from.
    About,
    /// `/reports`: the loaded reports, newest first.
    Reports,
    /// The user wants announcements (the transport makes it durable).
    Subscribe,
    Unsubscribe,
    /// Institutions by number of awards (or by their best prize), in the
    /// order asked (`least`: fewest first); `filter` narrows which
    /// institutions take part. `position` is the place asked about (1 = the
    /// top), `at` the rows in that place (ties share it), `top` what the one
    /// institution in that place won.
    Ranking {
        report: usize,
        filter: PrizeFilter,
        by: RankBy,
        rows: Vec<RankRow>,
        position: u8,
        least: bool,
        at: Vec<usize>,
        top: Option<EntityWins>,
    },
    /// The two groups side by side by number of awards.
    GroupCounts {
        filter: PrizeFilter,
        rows: Vec<(Group, usize)>,
    },
    /// The institutions that won a prize selection ("哪几家银行得了一等奖").
    Institutions {
        report: usize,
        filter: PrizeFilter,
        names: Vec<String>,
    },
    /// A number first, then what was counted.
    Count {
        n: usize,
        counted: Counted,
        /// What the number is of, listed after it.
        list: Box<Reply>,
    },
    /// Two or more names side by side; `outcome` says who is ahead.
    Compare {
        basis: RankBy,
        outcome: CompareOutcome,
        wins: Vec<EntityWins>,
    },
    /// The prizes a report has (after "there is no such prize").
    Prizes {
        report: usize,
    },
    /// Winners of the prizes a filter selects.
    Winners {
        report: usize,
        filter: PrizeFilter,
        sections: Vec<PrizeWinners>,
    },
    /// What people, teams or institutions won. `corrected` holds what the user
    /// typed when the name was recognised by sound rather than spelling.
    Won {
        wins: Vec<EntityWins>,
        corrected: Option<String>,
        /// The entity was named, but won nothing in the selected report(s).
        nothing: Vec<EntityId>,
        /// Only some of the awards are listed (a prize filter applied):
        /// totals say "其中".
        partial: bool,
    },
    Fact {
        report: usize,
        fact: usize,
    },
    /// Anti-fraud tips; `topic` is a topic id, `None` for a general selection.
    Tips {
        topic: Option<String>,
        tips: Vec<(usize, usize)>,
        /// Topics to offer as buttons.
        topics: Vec<String>,
    },
    Case {
        report: usize,
        case: usize,
    },
    /// The name is not in the report.
    NotFound {
        name: String,
    },
    /// Several readings; `options` are entities, and each one's wins are
    /// listed. `similar`: not a name we know, but close to these ("您是不是要找").
    Ambiguous {
        typed: String,
        options: Vec<EntityId>,
        wins: Vec<EntityWins>,
        similar: bool,
    },
    /// A follow-up asked for more, and there is no more.
    NoMore,
    /// Off-topic or junk: a short polite answer with example questions.
    Fallback,
}

/// What a ranking or comparison goes by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RankBy {
    /// Number of awards.
    Count,
    /// The best prize won.
    Level,
}

/// One institution in a ranking.
#[derive(Debug, Clone, PartialEq)]
pub struct RankRow {
    pub institution: String,
    pub awards: usize,
    /// Its best prize within the filter.
    pub best: Option<Prize>,
}

/// Who is ahead in a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum CompareOutcome {
    /// All the same (same prize, or the same number of awards).
    Same,
    /// This entity is ahead of the others.
    Ahead(EntityId),
    /// Not comparable (someone won nothing, or different kinds of names).
    Unranked,
}

/// What a count counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Counted {
    /// Rows of the award list (each prize awarded).
    Awards,
    /// Distinct institutions.
    Institutions,
    /// Distinct people.
    People,
    /// Distinct teams.
    Teams,
}

/// Something said before the answer proper: the premise of the question
/// was wrong, or the bot read the question in a particular way.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// The question names a year no loaded report covers.
    YearNotCovered { asked: u16, covered: Vec<u16> },
    /// The question names a prize the report does not have.
    NoSuchPrize { typed: String },
    /// A prize selection no row matches ("个人最佳人气奖"); the answer shows
    /// the nearest one that exists.
    NoSuchCell { filter: PrizeFilter },
    /// "兴业银行得了最佳人气奖吗" — no: the entity did not win that.
    NotWon {
        entity: EntityId,
        filter: PrizeFilter,
    },
}

/// What kind of question it was (for logs, tests and `ask --jsonl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Intent {
    Start,
    Help,
    About,
    Reports,
    Subscribe,
    Unsubscribe,
    WhoWon,
    WhatWon,
    Awards,
    Fact,
    Tips,
    Case,
    NotFound,
    Ambiguous,
    NoMore,
    Fallback,
    Count,
    Compare,
    Rank,
}

impl Intent {
    pub fn as_str(self) -> &'static str {
        match self {
            Intent::Start => "start",
            Intent::Help => "help",
            Intent::About => "about",
            Intent::Reports => "reports",
            Intent::Subscribe => "subscribe",
            Intent::Unsubscribe => "unsubscribe",
            Intent::WhoWon => "who_won",
            Intent::WhatWon => "what_won",
            Intent::Awards => "awards",
            Intent::Fact => "fact",
            Intent::Tips => "tips",
            Intent::Case => "case",
            Intent::NotFound => "not_found",
            Intent::Ambiguous => "ambiguous",
            Intent::NoMore => "no_more",
            Intent::Fallback => "fallback",
            Intent::Count => "count",
            Intent::Compare => "compare",
            Intent::Rank => "rank",
        }
    }
}

/// A decided answer: the reply, the intent it answers and the language to use.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub reply: Reply,
    pub intent: Intent,
    pub lang: Lang,
    /// For a yes/no question: the verdict, said first.
    pub verdict: Option<bool>,
    /// Said before the reply (a year or prize that does not exist).
    pub notices: Vec<Notice>,
    /// The other questions of the same message, answered in order.
    pub also: Vec<Answer>,
}

impl Answer {
    pub fn new(reply: Reply, intent: Intent, lang: Lang) -> Self {
        Answer {
            reply,
            intent,
            lang,
            verdict: None,
            notices: Vec::new(),
            also: Vec::new(),
        }
    }
}
