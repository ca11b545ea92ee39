//! The answering engine: a message in, a structured [`Answer`] out. It knows
//! nothing of Telegram and nothing of rendering.
//!
//! - [`normalize`]: the canonical text (NFKC, simplified, case, punctuation);
//! - [`index`]: every known word in one Aho–Corasick automaton, pinyin readings
//!   for names typed by sound; [`similar`]: names close to what was typed;
//! - `understand`: the words, names, numbers and leftovers of one clause;
//! - `clauses`: a message split into the questions it asks;
//! - `resolve`: a clause (with the conversation so far) read into a [`Query`]:
//!   an operator, what it is about, constraints, a claimed value;
//! - `exec`: one small function per operator, run against the knowledge;
//! - [`Answer`]: verdict, notices and a [`Reply`], for renderers to word.

mod answer;
mod claims;
mod clauses;
mod commands;
mod context;
mod exec;
pub mod index;
pub mod normalize;
mod query;
mod resolve;
pub mod similar;
mod understand;

pub use answer::{
    Answer, CompareOutcome, Counted, EntityWins, Intent, Lang, Notice, PrizeFilter, PrizeWinners,
    RankBy, RankRow, Reply,
};
pub use context::{Context, ContextLimits, Turn};
pub use index::{Entity, EntityId, EntityKind};
pub use query::{About, Op, Query};
pub use understand::Parsed;

use crate::knowledge::{DataError, Knowledge};
use index::Index;
use std::sync::Arc;
use std::time::Instant;

/// Trigger groups compiled to keyword ids.
#[derive(Debug, Clone)]
struct Trigger {
    groups: Vec<Vec<u32>>,
}

impl Trigger {
    /// Summed length of every matched keyword, complete or not.
    fn partial(&self, p: &Parsed) -> usize {
        self.groups
            .iter()
            .flatten()
            .filter_map(|k| p.keyword(*k))
            .sum()
    }

    /// If every group matches: the summed length of all matched keywords
    /// (more and longer evidence ranks higher).
    fn score(&self, p: &Parsed) -> Option<usize> {
        let mut total = 0;
        for g in &self.groups {
            let matched: usize = g.iter().filter_map(|k| p.keyword(*k)).sum();
            if matched == 0 {
                return None;
            }
            total += matched;
        }
        Some(total)
    }
}

/// The triggers of one report's facts (or cases), with the triggers each
/// keyword appears in: a question names a handful of keywords, so only the
/// triggers those appear in can match, and the other hundred are never
/// scored. Derefs to the triggers, in data order.
#[derive(Debug)]
struct Triggers {
    list: Vec<Trigger>,
    /// Keyword id → the triggers that use it, ascending.
    by_keyword: Vec<Vec<u32>>,
    /// Triggers without groups, which match any question.
    always: Vec<u32>,
}

impl Triggers {
    fn new(list: Vec<Trigger>) -> Self {
        let mut by_keyword: Vec<Vec<u32>> = Vec::new();
        let mut always = Vec::new();
        for (i, t) in list.iter().enumerate() {
            if t.groups.is_empty() {
                always.push(i as u32);
            }
            for &k in t.groups.iter().flatten() {
                let k = k as usize;
                if by_keyword.len() <= k {
                    by_keyword.resize_with(k + 1, Vec::new);
                }
                if by_keyword[k].last() != Some(&(i as u32)) {
                    by_keyword[k].push(i as u32);
                }
            }
        }
        Triggers {
            list,
            by_keyword,
            always,
        }
    }

    /// The triggers that may match `p` (every other one scores `None`),
    /// each once, in data order.
    fn candidates<'a>(&'a self, p: &Parsed) -> impl Iterator<Item = (usize, &'a Trigger)> {
        let mut found: Vec<u32> = self.always.clone();
        for (k, _) in &p.keywords {
            if let Some(ts) = self.by_keyword.get(*k as usize) {
                found.extend_from_slice(ts);
            }
        }
        found.sort_unstable();
        found.dedup();
        found
            .into_iter()
            .map(|i| (i as usize, &self.list[i as usize]))
    }
}

impl std::ops::Deref for Triggers {
    type Target = [Trigger];
    fn deref(&self) -> &[Trigger] {
        &self.list
    }
}

/// A subject of a report, compiled: the keyword ids of its words and the
/// virtual id that context adds when a follow-up leaves it out.
#[derive(Debug, Clone)]
struct SubjectWords {
    words: Vec<u32>,
    virtual_id: Option<u32>,
}

/// The engine. Build it once; it is `Send + Sync` and cheap to share.
#[derive(Debug)]
pub struct Engine {
    knowledge: Arc<Knowledge>,
    index: Index,
    /// Per report, per fact.
    facts: Vec<Triggers>,
    /// Per report, per case.
    cases: Vec<Triggers>,
    /// Per report, per subject.
    subjects: Vec<Vec<SubjectWords>>,
    /// Per report, per fact: the subject it is about, and whether naming
    /// the subject counts as a matched group (no trigger group stands for it).
    fact_subject: Vec<Vec<(Option<usize>, bool)>>,
    /// Topic id → keyword ids (merged over reports).
    topics: Vec<(String, Vec<u32>)>,
    /// Per report, per fact: subjects (people) its answer names.
    fact_people: Vec<Vec<Vec<usize>>>,
    /// Per keyword: contains a scam-topic keyword (快递 in 快递公司).
    topical: Vec<bool>,
    /// Virtual keyword ids of the lexicon's `@when` and `@where`.
    when_id: Option<u32>,
    where_id: Option<u32>,
    howmany_id: Option<u32>,
    /// People and teams prepared for similarity lookup.
    similar: similar::Names,
    limits: ContextLimits,
    fingerprint: std::sync::OnceLock<u64>,
}

impl Engine {
    /// Names the data this engine answers from (a hash of its knowledge):
    /// a saved context is only read by an engine with the same data, since
    /// it holds indexes into it. Computed once, when first asked.
    pub fn data_fingerprint(&self) -> u64 {
        *self.fingerprint.get_or_init(|| {
            use std::hash::{Hash, Hasher};
            // SipHash with fixed keys: the same on every instance of a build.
            #[allow(deprecated)]
            let mut h = std::hash::SipHasher::new();
            format!("{:?}", self.knowledge).hash(&mut h);
            h.finish()
        })
    }

    pub fn new(knowledge: Arc<Knowledge>) -> Self {
        let index = Index::build(&knowledge);
        let lx = &knowledge.lexicon;
        // `@name` expands to the words it stands for, plus its virtual id.
        let expand = |report: &crate::knowledge::Report, w: &str| -> Vec<u32> {
            let Some(name) = w.strip_prefix('@') else {
                return index.keyword_id(w).into_iter().collect();
            };
            let words: Vec<&String> = match report.subjects.iter().find(|s| s.id == name) {
                Some(s) => s.words.iter().collect(),
                None => lx.asks.get(name).into_iter().flatten().collect(),
            };
            words
                .into_iter()
                .filter_map(|w| index.keyword_id(w))
                .chain(index.keyword_id(w))
                .collect()
        };
        let compile = |report: &crate::knowledge::Report, groups: &Vec<Vec<String>>| Trigger {
            groups: groups
                .iter()
                .map(|g| g.iter().flat_map(|w| expand(report, w)).collect())
                .collect(),
        };
        let facts = knowledge
            .reports
            .iter()
            .map(|r| Triggers::new(r.facts.iter().map(|f| compile(r, &f.triggers)).collect()))
            .collect();
        let cases = knowledge
            .reports
            .iter()
            .map(|r| {
                Triggers::new(
                    r.antifraud
                        .cases
                        .iter()
                        .map(|c| compile(r, &c.triggers))
                        .collect(),
                )
            })
            .collect();
        let subjects = knowledge
            .reports
            .iter()
            .map(|r| {
                r.subjects
                    .iter()
                    .map(|s| SubjectWords {
                        words: s.words.iter().filter_map(|w| index.keyword_id(w)).collect(),
                        virtual_id: index.keyword_id(&format!("@{}", s.id)),
                    })
                    .collect()
            })
            .collect();
        let fact_subject = knowledge
            .reports
            .iter()
            .zip(&facts)
            .zip(&subjects)
            .map(
                |((r, triggers), words): (
                    (&crate::knowledge::Report, &Triggers),
                    &Vec<SubjectWords>,
                )| {
                    r.facts
                        .iter()
                        .zip(triggers.iter())
                        .map(|(f, t)| {
                            let s = r.subjects.iter().position(|x| x.id == f.subject);
                            let stands_for = |w: &SubjectWords| {
                                t.groups.iter().any(|g| {
                                    g.iter()
                                        .any(|k| w.words.contains(k) || Some(*k) == w.virtual_id)
                                })
                            };
                            (s, s.is_some_and(|s| !stands_for(&words[s])))
                        })
                        .collect()
                },
            )
            .collect();
        let mut topics: Vec<(String, Vec<u32>)> = Vec::new();
        for r in &knowledge.reports {
            for t in &r.antifraud.topics {
                let ids: Vec<u32> = t
                    .keywords
                    .iter()
                    .filter_map(|w| index.keyword_id(w))
                    .collect();
                match topics.iter_mut().find(|(id, _)| *id == t.id) {
                    Some((_, v)) => v.extend(ids),
                    None => topics.push((t.id.clone(), ids)),
                }
            }
        }
        let fact_people = knowledge
            .reports
            .iter()
            .map(|r| {
                r.facts
                    .iter()
                    .map(|f| {
                        r.subjects
                            .iter()
                            .enumerate()
                            .filter(|(_, s)| s.person && f.answer_zh.contains(s.name_zh.as_str()))
                            .map(|(i, _)| i)
                            .collect()
                    })
                    .collect()
            })
            .collect();
        let topic_words: Vec<String> = knowledge
            .reports
            .iter()
            .flat_map(|r| &r.antifraud.topics)
            .flat_map(|t| &t.keywords)
            .map(|w| normalize::normalize_word(w))
            .filter(|w| !w.is_empty())
            .collect();
        // One automaton over the topic words, not a search per pair.
        let topical = match aho_corasick::AhoCorasick::new(&topic_words) {
            Ok(topic) => index.keywords.iter().map(|k| topic.is_match(k)).collect(),
            Err(_) => index
                .keywords
                .iter()
                .map(|k| topic_words.iter().any(|t| k.contains(t.as_str())))
                .collect(),
        };
        Engine {
            similar: similar::Names::build(&index, &knowledge),
            when_id: index.keyword_id("@when"),
            where_id: index.keyword_id("@where"),
            howmany_id: index.keyword_id("@howmany"),
            topical,
            knowledge,
            index,
            facts,
            cases,
            subjects,
            fact_subject,
            topics,
            fact_people,
            limits: ContextLimits::default(),
            fingerprint: std::sync::OnceLock::new(),
        }
    }

    /// The engine over the data compiled into the binary.
    pub fn builtin() -> Result<Self, DataError> {
        Ok(Engine::new(Arc::new(Knowledge::builtin()?)))
    }

    pub fn with_limits(mut self, limits: ContextLimits) -> Self {
        self.limits = limits;
        self
    }

    pub fn knowledge(&self) -> &Knowledge {
        &self.knowledge
    }

    pub fn knowledge_arc(&self) -> Arc<Knowledge> {
        Arc::clone(&self.knowledge)
    }

    pub fn entity(&self, id: EntityId) -> &Entity {
        &self.index.entities[id]
    }

    pub fn entities(&self) -> &[Entity] {
        &self.index.entities
    }

    /// The entity a stable key names (see [`Entity::key`]), if this data has it.
    pub fn entity_by_key(&self, key: &str) -> Option<EntityId> {
        self.index.entities.iter().position(|e| e.key() == key)
    }

    /// The structured answer to a message. `prefer` is the user's language
    /// (from Telegram); English questions are answered in English regardless.
    /// A message that asks several questions gets one answer per question
    /// (the first here, the others in [`Answer::also`]).
    pub fn answer(
        &self,
        ctx: &mut Context,
        message: &str,
        prefer: Option<Lang>,
        now: Instant,
    ) -> Answer {
        let clauses = clauses::split(&self.index, message);
        let mut answers: Vec<Answer> = Vec::with_capacity(clauses.len());
        for (text, parsed) in &clauses {
            let answer = self.answer_clause(ctx, text, parsed, prefer, now);
            // Two clauses that come to the same answer ("戚迎是哪个单位的,得了什么奖"):
            // say it once.
            if answers
                .iter()
                .any(|a| a.reply == answer.reply && a.verdict == answer.verdict)
            {
                continue;
            }
            answers.push(answer);
        }
        // A clause that asks nothing answerable ("hi", "我爸八十了") says
        // nothing when another one does.
        if answers.len() > 1 {
            answers.retain(|a| !matches!(a.intent, Intent::Fallback | Intent::Start));
        }
        let mut answers = answers.into_iter();
        let mut first = answers
            .next()
            .unwrap_or_else(|| Answer::new(Reply::Fallback, Intent::Fallback, Lang::Zh));
        first.also.extend(answers);
        first
    }

    fn answer_clause(
        &self,
        ctx: &mut Context,
        message: &str,
        parsed: &Parsed,
        prefer: Option<Lang>,
        now: Instant,
    ) -> Answer {
        // A bare command ("/help") says nothing about the language: the user's.
        let command = message.trim_start().starts_with(['/', '／']);
        let lang =
            if (!command && parsed.is_english()) || (prefer == Some(Lang::En) && !parsed.has_cjk) {
                Lang::En
            } else {
                prefer.unwrap_or(Lang::Zh)
            };
        let previous = ctx.current(now, self.limits).cloned();
        let decision = self.decide(message, parsed, previous.as_ref(), now);
        // An off-topic message or an unknown name leaves the context as it
        // was: "二等奖呢" after a detour still means the last prize.
        if let Some(mut t) = decision.turn {
            // Contexts live long and there may be 100,000 of them: keep them tight.
            t.shown.truncate(16);
            t.shown.shrink_to_fit();
            t.alternatives.shrink_to_fit();
            t.people.shrink_to_fit();
            t.query.words.truncate(24);
            t.query.words.shrink_to_fit();
            ctx.last = Some(Box::new(t));
        }
        Answer {
            reply: decision.reply,
            intent: decision.intent,
            lang,
            verdict: decision.verdict,
            notices: decision.notices,
            also: Vec::new(),
        }
    }

    /// The answer to a button press that chose one entity (ambiguity, browsing).
    pub fn answer_entity(
        &self,
        ctx: &mut Context,
        id: EntityId,
        lang: Lang,
        now: Instant,
    ) -> Answer {
        let query = Query::new(Op::Lookup, About::Entities(vec![id]), 0);
        let decision = self.run(query, now);
        ctx.last = decision.turn.map(Box::new);
        Answer {
            verdict: None,
            notices: Vec::new(),
            ..Answer::new(decision.reply, decision.intent, lang)
        }
    }

    /// The winners of a prize filter (for browsing with buttons).
    pub fn answer_filter(&self, filter: PrizeFilter, lang: Lang) -> Answer {
        let reply = self.winners(0, filter);
        let intent = if filter.is_empty() {
            Intent::Awards
        } else {
            Intent::WhoWon
        };
        Answer::new(reply, intent, lang)
    }

    /// Tips of a topic (for the topic buttons).
    pub fn answer_tips(&self, topic: Option<&str>, lang: Lang) -> Answer {
        Answer::new(self.tips(topic, false), Intent::Tips, lang)
    }

    /// How a message is read: each clause's words and the query it becomes
    /// (for `reportbot ask --explain`; the wording is for developers).
    pub fn explain(&self, message: &str) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let mut ctx = Context::default();
        let now = Instant::now();
        for (text, p) in clauses::split(&self.index, message) {
            let names: Vec<String> = p
                .mentions
                .iter()
                .map(|m| {
                    let ids: Vec<&str> = m
                        .ids
                        .iter()
                        .map(|i| self.index.entities[*i].name.as_str())
                        .collect();
                    format!(
                        "{}→{}{}",
                        m.typed,
                        ids.join("|"),
                        if m.corrected { " (by sound)" } else { "" }
                    )
                })
                .collect();
            let words: Vec<&str> = p
                .keywords
                .iter()
                .map(|(k, _)| self.index.keywords[*k as usize].trim())
                .collect();
            let _ = writeln!(out, "clause: {text}");
            let _ = writeln!(out, "  cues: {:?}", p.cues());
            let _ = writeln!(
                out,
                "  names: {names:?}; unknown: {:?}; unknown prize: {:?}",
                p.unknown_name, p.unknown_prize
            );
            let _ = writeln!(
                out,
                "  prize words: {:?} {:?} {:?}",
                p.groups, p.kinds, p.levels
            );
            let _ = writeln!(out, "  fact words: {words:?}");
            let _ = writeln!(
                out,
                "  values: years {:?} dates {:?} numbers {:?} places {:?} units {:?}",
                p.years, p.dates, p.quantities, p.places, p.units
            );
            let previous = ctx.current(now, self.limits).cloned();
            let d = self.decide(&text, &p, previous.as_ref(), now);
            let _ = writeln!(
                out,
                "  intent: {}; verdict: {:?}",
                d.intent.as_str(),
                d.verdict
            );
            if let Some(t) = d.turn {
                let _ = writeln!(
                    out,
                    "  query: {:?} {:?} {:?} claims {:?} counted {:?}",
                    t.query.op, t.query.about, t.query.filter, t.query.claims, t.query.counted
                );
                ctx.last = Some(Box::new(t));
            }
        }
        out
    }

    /// Parse without deciding (for diagnostics and tests).
    pub fn parse(&self, message: &str) -> Parsed {
        understand::parse(&self.index, message)
    }
}
