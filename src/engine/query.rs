//! What a question asks, as a value: the operator, what it is about, the
//! constraints on prizes, and for a yes/no question the claimed value.
//!
//! A message is read into a [`Query`] (`resolve`), executed against the
//! knowledge (`exec`), and kept in the conversation context so that a
//! follow-up ("那保险组呢", "他呢", "几个?") can change one part of it.

use super::answer::{Counted, PrizeFilter};
use super::claims::Claimed;
use super::index::EntityId;

/// What the question does with its subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Op {
    /// Tell it: who won, what someone won, a fact, a story, tips.
    Lookup,
    /// Yes or no, then the correct fact.
    Verify,
    /// How many, then the list.
    Count,
    /// Which of two (or more) names did better.
    Compare,
    /// Which institution won most (or best), within a filter.
    Rank,
    /// Which institutions won a prize selection.
    Institutions,
}

/// What the question is about.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum About {
    /// People, teams or institutions of the award list.
    Entities(Vec<EntityId>),
    /// The award list, narrowed by the query's filter.
    Prizes,
    /// A fact subject (contest, platform, an official, a case …): index into
    /// the report's subjects; the fact is chosen by the query's words.
    Subject(usize),
    /// Facts found by their words alone.
    Facts,
    /// An anti-fraud case, told as a story.
    Case(usize),
    /// Anti-fraud advice: a topic (or a general selection), and whether the
    /// harm is already done.
    Tips { topic: Option<String>, after: bool },
}

/// A resolved question.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Query {
    pub op: Op,
    pub about: About,
    pub filter: PrizeFilter,
    /// Index of the report asked about.
    pub report: usize,
    /// For [`Op::Verify`]: what the question claims (each checked against
    /// the value it can be compared with).
    pub claims: Vec<Claimed>,
    /// For [`Op::Count`] (and a ranking): what is counted.
    pub counted: Counted,
    /// For [`Op::Compare`] and [`Op::Rank`]: by the best prize rather than
    /// by the number of awards (or explicitly by the number: `by_count`).
    pub by_level: bool,
    pub by_count: bool,
    /// Matched fact keywords (with their weight), for choosing a fact and for
    /// follow-ups that change only the subject.
    pub words: Vec<(u32, usize)>,
    /// The name as typed when it was read by sound or similarity.
    pub corrected: Option<String>,
    /// Every contest loaded ("历届"), not just one report.
    pub all_years: bool,
    /// A year the question names that no report covers (said first).
    pub asked_year: Option<u16>,
    /// Several prize levels at once ("二等奖和三等奖分别是谁").
    pub levels: Vec<crate::knowledge::Level>,
    /// For [`Op::Rank`]: the place asked for (1 = the top) and from which end.
    pub position: u8,
    pub least: bool,
    /// For [`Op::Compare`]: the two groups compared ("银行组和保险组谁多").
    pub groups: Vec<crate::knowledge::Group>,
}

impl Query {
    pub fn new(op: Op, about: About, report: usize) -> Self {
        Query {
            op,
            about,
            filter: PrizeFilter::default(),
            report,
            claims: Vec::new(),
            counted: Counted::Awards,
            by_level: false,
            by_count: false,
            words: Vec::new(),
            corrected: None,
            all_years: false,
            asked_year: None,
            levels: Vec::new(),
            position: 1,
            least: false,
            groups: Vec::new(),
        }
    }

    pub fn with_filter(mut self, filter: PrizeFilter) -> Self {
        self.filter = filter;
        self
    }

    /// The entities the query is about, if it is about entities.
    pub fn entities(&self) -> &[EntityId] {
        match &self.about {
            About::Entities(ids) => ids,
            _ => &[],
        }
    }
}
