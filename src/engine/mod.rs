//! The answering engine: a message in, a structured [`Answer`] out.
//!
//! `normalize` → `understand` (words, entities, leftovers) → `decide` (intent,
//! with the conversation [`Context`]) → [`Reply`]. It knows nothing of Telegram.

mod context;
mod decide;
pub mod index;
pub mod normalize;
mod reply;
mod understand;

pub use context::{Context, ContextLimits, Turn};
pub use index::{Entity, EntityId, EntityKind};
pub use reply::{Answer, EntityWins, Intent, Lang, PrizeFilter, PrizeWinners, Reply};
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

/// The engine. Build it once; it is `Send + Sync` and cheap to share.
#[derive(Debug)]
pub struct Engine {
    knowledge: Arc<Knowledge>,
    index: Index,
    /// Per report, per fact.
    facts: Vec<Vec<Trigger>>,
    /// Per report, per case.
    cases: Vec<Vec<Trigger>>,
    /// Topic id → keyword ids (merged over reports).
    topics: Vec<(String, Vec<u32>)>,
    /// Per report, per fact: keywords naming the people its answer mentions.
    fact_people: Vec<Vec<Vec<u32>>>,
    /// Per keyword: contains a scam-topic keyword (快递 in 快递公司).
    topical: Vec<bool>,
    limits: ContextLimits,
}

/// A plain-text answer, as `reportbot ask` prints it.
#[derive(Debug, Clone)]
pub struct Answered {
    pub text: String,
    pub intent: &'static str,
    pub answer: Answer,
}

impl Engine {
    pub fn new(knowledge: Arc<Knowledge>) -> Self {
        let index = Index::build(&knowledge);
        let compile = |groups: &Vec<Vec<String>>| Trigger {
            groups: groups
                .iter()
                .map(|g| g.iter().filter_map(|w| index.keyword_id(w)).collect())
                .collect(),
        };
        let facts = knowledge
            .reports
            .iter()
            .map(|r| r.facts.iter().map(|f| compile(&f.triggers)).collect())
            .collect();
        let cases = knowledge
            .reports
            .iter()
            .map(|r| {
                r.antifraud
                    .cases
                    .iter()
                    .map(|c| compile(&c.triggers))
                    .collect()
            })
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
        // Names of officials (trigger words of "people" facts that read as names).
        let lx = &knowledge.lexicon;
        let mut people: Vec<(String, u32)> = Vec::new();
        for r in &knowledge.reports {
            for f in r.facts.iter().filter(|f| f.topic == "people") {
                for w in f.triggers.iter().flatten() {
                    let n = w.chars().count();
                    if (2..=4).contains(&n)
                        && w.chars().all(normalize::is_cjk)
                        && lx.surnames.iter().any(|s| w.starts_with(s.as_str()))
                        && let Some(id) = index.keyword_id(w)
                        && !people.iter().any(|(_, k)| *k == id)
                    {
                        people.push((w.clone(), id));
                    }
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
                        people
                            .iter()
                            .filter(|(w, _)| f.answer_zh.contains(w.as_str()))
                            .map(|(_, k)| *k)
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
        let topical = index
            .keywords
            .iter()
            .map(|k| topic_words.iter().any(|t| k.contains(t.as_str())))
            .collect();
        Engine {
            topical,
            knowledge,
            index,
            facts,
            cases,
            topics,
            fact_people,
            limits: ContextLimits::default(),
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

    /// One question, no conversation: the plain-text answer.
    pub fn ask(&self, question: &str) -> Answered {
        let mut ctx = Context::default();
        self.converse(&mut ctx, question)
    }

    /// One turn of a conversation: uses and updates `ctx`.
    pub fn converse(&self, ctx: &mut Context, question: &str) -> Answered {
        let answer = self.answer(ctx, question, None, Instant::now());
        let text = crate::render::plain(self, &answer);
        Answered {
            text,
            intent: answer.intent.as_str(),
            answer,
        }
    }

    /// The structured answer to a message. `prefer` is the user's language
    /// (from Telegram); English questions are answered in English regardless.
    pub fn answer(
        &self,
        ctx: &mut Context,
        message: &str,
        prefer: Option<Lang>,
        now: Instant,
    ) -> Answer {
        let parsed = understand::parse(&self.index, message);
        // A bare command ("/help") says nothing about the language: the user's.
        let command = message.trim_start().starts_with(['/', '／']);
        let lang =
            if (!command && parsed.is_english()) || (prefer == Some(Lang::En) && !parsed.has_cjk) {
                Lang::En
            } else {
                prefer.unwrap_or(Lang::Zh)
            };
        let previous = ctx.current(now, self.limits).cloned();
        let (reply, intent, turn) = self.decide(message, &parsed, previous.as_ref(), now);
        // An off-topic message or an unknown name leaves the context as it
        // was: "二等奖呢" after a detour still means the last prize.
        if let Some(mut t) = turn {
            // Contexts live long and there may be 100,000 of them: keep them tight.
            t.shown.truncate(16);
            t.entities.shrink_to_fit();
            t.shown.shrink_to_fit();
            t.alternatives.shrink_to_fit();
            t.keywords.shrink_to_fit();
            ctx.last = Some(Box::new(t));
        }
        Answer {
            reply,
            intent,
            lang,
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
        let (reply, intent, turn) = self.won(&[id], None, None, now, 0);
        ctx.last = turn.map(Box::new);
        Answer {
            reply,
            intent,
            lang,
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
        Answer {
            reply,
            intent,
            lang,
        }
    }

    /// Tips of a topic (for the topic buttons).
    pub fn answer_tips(&self, topic: Option<&str>, lang: Lang) -> Answer {
        Answer {
            reply: self.tips(topic),
            intent: Intent::Tips,
            lang,
        }
    }

    /// Parse without deciding (for diagnostics and tests).
    pub fn parse(&self, message: &str) -> Parsed {
        understand::parse(&self.index, message)
    }
}
