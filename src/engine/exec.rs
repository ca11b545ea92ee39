//! Executing a [`Query`] against the knowledge: one small function per
//! operator, each returning the structured reply (and for a yes/no question
//! the verdict). Nothing here reads the question's words again.

use super::Engine;
use super::answer::{
    CompareOutcome, Counted, EntityWins, Intent, Notice, PrizeFilter, PrizeWinners, RankBy,
    RankRow, Reply,
};
use super::claims::{self, Claimed};
use super::context::Turn;
use super::index::{EntityId, EntityKind};
use super::query::{About, Op, Query};
use super::resolve::Decision;
use super::understand::Parsed;
use crate::knowledge::{Group, Level, Prize, STANDALONE, ValueType};
use std::time::Instant;

/// What executing a query gave.
struct Outcome {
    reply: Reply,
    intent: Intent,
    verdict: Option<bool>,
    /// Entities the reply shows (for pronouns in the next turn).
    shown: Vec<EntityId>,
    /// People (subjects) a fact names.
    people: Vec<usize>,
    notices: Vec<Notice>,
}

impl Outcome {
    fn new(reply: Reply, intent: Intent) -> Self {
        Outcome {
            reply,
            intent,
            verdict: None,
            shown: Vec::new(),
            people: Vec::new(),
            notices: Vec::new(),
        }
    }
}

impl Engine {
    /// Order of prizes in a report, best first, from its levels (a declared
    /// 特等奖 above 一等奖; a standalone award such as the 最佳人气奖 is not
    /// a rank: last).
    fn level_rank(&self, report: usize, l: Level) -> u8 {
        self.knowledge.reports[report].levels.rank(l)
    }

    /// The best ranked level a report awarded (一等奖, or a 特等奖 above it).
    pub(super) fn top_level(&self, report: usize) -> Level {
        let r = &self.knowledge.reports[report];
        r.levels
            .ranked()
            .iter()
            .copied()
            .find(|l| r.has_level(*l))
            .unwrap_or(Level::First)
    }

    /// The ranked level after `level` that a report awarded ("还有呢" after
    /// the 一等奖 list).
    pub(super) fn next_level(&self, report: usize, level: Level) -> Option<Level> {
        let r = &self.knowledge.reports[report];
        let ranked = r.levels.ranked();
        let at = ranked.iter().position(|l| *l == level)?;
        ranked[at + 1..].iter().copied().find(|l| r.has_level(*l))
    }

    pub(super) fn turn(&self, query: Query, intent: Intent, now: Instant) -> Turn {
        Turn {
            at: now,
            query,
            intent,
            shown: Vec::new(),
            alternatives: Vec::new(),
            people: Vec::new(),
            followups: 0,
        }
    }

    /// Execute a query; the decision remembers it for follow-ups.
    pub(super) fn run(&self, q: Query, now: Instant) -> Decision {
        // "特等奖是谁" about a report that has none: say so and list its
        // prizes, never the winners of another prize.
        if let Some(level) = q.filter.level
            && q.about == About::Prizes
            && !self.knowledge.reports[q.report].has_level(level)
        {
            let mut d = Decision::plain(Reply::Prizes { report: q.report }, Intent::Awards);
            d.notices.push(Notice::NoSuchPrize {
                typed: self.knowledge.levels.zh(level).to_string(),
            });
            d.verdict = (q.op == Op::Verify).then_some(false);
            return d;
        }
        let mut out = self.execute(&q);
        let mut notices = std::mem::take(&mut out.notices);
        if let Some(asked) = q.asked_year {
            let is_claim = q
                .claims
                .iter()
                .any(|c| matches!(c, Claimed::Date(d) if d.year == Some(asked)));
            if !is_claim {
                notices.push(Notice::YearNotCovered {
                    asked,
                    covered: self.knowledge.reports.iter().map(|r| r.meta.year).collect(),
                });
            }
        }
        let mut turn = self.turn(q, out.intent, now);
        turn.shown = if out.shown.is_empty() {
            self.shown_in(&out.reply)
        } else {
            out.shown
        };
        turn.people = out.people;
        Decision {
            reply: out.reply,
            intent: out.intent,
            verdict: out.verdict,
            notices,
            turn: Some(turn),
        }
    }

    fn execute(&self, q: &Query) -> Outcome {
        match &q.about {
            About::Entities(ids) => match q.op {
                Op::Verify => self.verify_entities(q, ids),
                Op::Count => self.count_entity(q, ids),
                Op::Compare if ids.len() >= 2 => self.compare(q, ids),
                _ => self.won(q, ids),
            },
            About::Prizes => match q.op {
                Op::Count => self.count(q),
                Op::Rank => self.rank(q),
                Op::Institutions => self.institutions(q),
                Op::Compare if q.groups.len() >= 2 => self.compare_groups(q),
                _ => self.prize_winners(q),
            },
            About::Subject(_) | About::Facts => self.fact(q),
            About::Case(c) => Outcome::new(
                Reply::Case {
                    report: q.report,
                    case: *c,
                },
                Intent::Case,
            ),
            About::Tips { topic, after } => {
                Outcome::new(self.tips(topic.as_deref(), *after), Intent::Tips)
            }
        }
    }

    /// People and teams a reply lists.
    fn shown_in(&self, reply: &Reply) -> Vec<EntityId> {
        let mut shown: Vec<EntityId> = Vec::new();
        match reply {
            Reply::Winners {
                report, sections, ..
            } => {
                for s in sections {
                    shown.extend(
                        s.awards
                            .iter()
                            .map(|i| self.index.award_winners[*report][*i]),
                    );
                }
            }
            Reply::Won { wins, .. }
            | Reply::Ambiguous { wins, .. }
            | Reply::Compare { wins, .. } => {
                for w in wins {
                    shown.extend(
                        w.awards
                            .iter()
                            .map(|i| self.index.award_winners[w.report][*i]),
                    );
                }
            }
            Reply::Count { list, .. } => return self.shown_in(list),
            _ => {}
        }
        let mut out = Vec::new();
        for id in shown {
            if !out.contains(&id) {
                out.push(id);
            }
        }
        out
    }

    /// The filters a query selects prizes by: one, or one per level asked.
    fn filters_of(q: &Query) -> Vec<PrizeFilter> {
        if q.levels.is_empty() {
            vec![q.filter]
        } else {
            q.levels
                .iter()
                .map(|l| PrizeFilter {
                    level: Some(*l),
                    ..q.filter
                })
                .collect()
        }
    }

    /// Winners of every filter, as one list.
    fn winners_of(&self, report: usize, filters: &[PrizeFilter]) -> Reply {
        let mut sections: Vec<PrizeWinners> = Vec::new();
        for f in filters {
            if let Reply::Winners { sections: more, .. } = self.winners(report, *f) {
                for s in more {
                    if !sections.iter().any(|x| x.prize == s.prize) {
                        sections.push(s);
                    }
                }
            }
        }
        let filter = match filters {
            [one] => *one,
            _ => PrizeFilter {
                level: None,
                ..filters.first().copied().unwrap_or_default()
            },
        };
        Reply::Winners {
            report,
            filter,
            sections,
        }
    }

    /// "团体一等奖是谁"; a selection that no prize fits ("个人最佳人气奖")
    /// says so and shows the prize of that level.
    fn prize_winners(&self, q: &Query) -> Outcome {
        let intent = if q.filter.is_empty() && q.levels.is_empty() {
            Intent::Awards
        } else {
            Intent::WhoWon
        };
        let reply = self.winners_of(q.report, &Self::filters_of(q));
        if let Reply::Winners { sections, .. } = &reply
            && sections.is_empty()
            && let Some(level) = q.filter.level
        {
            let relaxed = PrizeFilter {
                level: Some(level),
                ..PrizeFilter::default()
            };
            let mut out = Outcome::new(self.winners(q.report, relaxed), intent);
            out.notices.push(Notice::NoSuchCell { filter: q.filter });
            return out;
        }
        Outcome::new(reply, intent)
    }

    pub(super) fn winners(&self, report: usize, filter: PrizeFilter) -> Reply {
        let r = &self.knowledge.reports[report];
        let sections = r
            .prizes()
            .into_iter()
            .filter(|prize| filter.matches(prize))
            .map(|prize| PrizeWinners {
                prize,
                awards: r
                    .awards
                    .iter()
                    .enumerate()
                    .filter(|(_, a)| a.prize() == prize)
                    .map(|(i, _)| i)
                    .collect(),
            })
            .collect();
        Reply::Winners {
            report,
            filter,
            sections,
        }
    }

    /// What one entity won in a report.
    pub(super) fn wins_of(&self, id: EntityId, report: usize) -> EntityWins {
        let e = &self.index.entities[id];
        let r = &self.knowledge.reports[report];
        let awards = r
            .awards
            .iter()
            .enumerate()
            .filter(|(_, a)| match e.kind {
                EntityKind::Institution => a.institution == e.name,
                _ => a.winner == e.name,
            })
            .map(|(i, _)| i)
            .collect();
        EntityWins {
            entity: id,
            report,
            awards,
        }
    }

    /// How many awards an entity has in a report (all of them).
    pub fn awards_of(&self, id: EntityId, report: usize) -> usize {
        self.wins_of(id, report).awards.len()
    }

    /// The first prize an entity is listed with (for "同等级还有谁").
    pub(super) fn first_prize_of(&self, id: EntityId, report: usize) -> Option<Prize> {
        let w = self.wins_of(id, report);
        let r = &self.knowledge.reports[report];
        w.awards
            .iter()
            .map(|i| r.awards[*i].prize())
            .min_by_key(|p| self.level_rank(report, p.level))
    }

    /// What entities won: in the report asked about (or the newest that
    /// names them), or in every report ("历届"); narrowed by the filter when
    /// that leaves something.
    fn won(&self, q: &Query, ids: &[EntityId]) -> Outcome {
        let mut wins = Vec::new();
        let mut nothing = Vec::new();
        let mut partial = false;
        for id in ids {
            if q.all_years {
                let found: Vec<EntityWins> = (0..self.knowledge.reports.len())
                    .map(|r| self.wins_of(*id, r))
                    .filter(|w| !w.awards.is_empty())
                    .collect();
                if found.is_empty() {
                    nothing.push(*id);
                }
                wins.extend(found);
                continue;
            }
            let mut w = self.wins_of(*id, q.report);
            // Without a year, an entity is looked up in the newest report that names it.
            if w.awards.is_empty() && q.report == 0 {
                for r in 1..self.knowledge.reports.len() {
                    let older = self.wins_of(*id, r);
                    if !older.awards.is_empty() {
                        w = older;
                        break;
                    }
                }
            }
            if !q.filter.is_empty() {
                let r = &self.knowledge.reports[w.report];
                let kept: Vec<usize> = w
                    .awards
                    .iter()
                    .copied()
                    .filter(|i| q.filter.matches(&r.awards[*i].prize()))
                    .collect();
                if !kept.is_empty() && kept.len() < w.awards.len() {
                    w.awards = kept;
                    partial = true;
                }
            }
            if w.awards.is_empty() {
                nothing.push(*id);
            } else {
                wins.push(w);
            }
        }
        Outcome::new(
            Reply::Won {
                wins,
                corrected: q.corrected.clone(),
                nothing,
                partial,
            },
            Intent::WhatWon,
        )
    }

    /// Does an entity's record bear a claim out?
    fn holds(&self, id: EntityId, claim: &Claimed, report: usize) -> Option<bool> {
        let w = self.wins_of(id, report);
        let r = &self.knowledge.reports[report];
        match claim {
            Claimed::Won => Some(!w.awards.is_empty()),
            Claimed::Prize(f) => Some(w.awards.iter().any(|i| f.matches(&r.awards[*i].prize()))),
            Claimed::Institution(inst) => {
                let name = &self.index.entities[*inst].name;
                Some(w.awards.iter().any(|i| &r.awards[*i].institution == name))
            }
            _ => None,
        }
    }

    /// "戚迎是保险组的吗": the verdict, then everything the entity won.
    fn verify_entities(&self, q: &Query, ids: &[EntityId]) -> Outcome {
        let verdicts: Vec<bool> = ids
            .iter()
            .flat_map(|id| q.claims.iter().filter_map(|c| self.holds(*id, c, q.report)))
            .collect();
        let lookup = Query {
            filter: PrizeFilter::default(),
            ..q.clone()
        };
        let mut out = self.won(&lookup, ids);
        out.verdict = (!verdicts.is_empty()).then(|| verdicts.iter().all(|v| *v));
        if out.verdict == Some(false)
            && let [id] = ids
        {
            for c in &q.claims {
                if let Claimed::Prize(f) = c
                    && self.holds(*id, c, q.report) == Some(false)
                {
                    out.notices.push(Notice::NotWon {
                        entity: *id,
                        filter: *f,
                    });
                }
            }
        }
        out
    }

    /// "中国人寿得了几个奖": the number of an entity's awards, then the list.
    fn count_entity(&self, q: &Query, ids: &[EntityId]) -> Outcome {
        let lookup = self.won(q, ids);
        let n = match &lookup.reply {
            Reply::Won { wins, .. } => wins.iter().map(|w| w.awards.len()).sum(),
            _ => 0,
        };
        Outcome::new(
            Reply::Count {
                n,
                counted: Counted::Awards,
                list: Box::new(lookup.reply),
            },
            Intent::Count,
        )
    }

    /// "银行组团体三等奖有几个队", "多少家单位获奖": a number, then the list.
    fn count(&self, q: &Query) -> Outcome {
        let r = &self.knowledge.reports[q.report];
        let mut filters = Self::filters_of(q);
        for f in &mut filters {
            match q.counted {
                Counted::People => f.kind = Some(crate::knowledge::Kind::Individual),
                Counted::Teams => f.kind = Some(crate::knowledge::Kind::Team),
                _ => {}
            }
        }
        let filter = filters[0];
        let rows: Vec<&crate::knowledge::Award> = r
            .awards
            .iter()
            .filter(|a| filters.iter().any(|f| f.matches(&a.prize())))
            .collect();
        let (n, list) = match q.counted {
            Counted::Awards => (rows.len(), self.winners_of(q.report, &filters)),
            Counted::Institutions => {
                let out = self.institutions(&Query {
                    filter,
                    ..q.clone()
                });
                let n = match &out.reply {
                    Reply::Institutions { names, .. } => names.len(),
                    _ => 0,
                };
                (n, out.reply)
            }
            Counted::People | Counted::Teams => {
                let mut names: Vec<&str> = rows.iter().map(|a| a.winner.as_str()).collect();
                names.sort_unstable();
                names.dedup();
                (names.len(), self.winners_of(q.report, &filters))
            }
        };
        Outcome::new(
            Reply::Count {
                n,
                counted: q.counted,
                list: Box::new(list),
            },
            Intent::Count,
        )
    }

    /// The group an institution competed in (from its grouped awards).
    fn group_of(&self, institution: &str, report: usize) -> Option<Group> {
        self.knowledge.reports[report]
            .awards
            .iter()
            .find(|a| a.institution == institution && a.group.is_some())
            .and_then(|a| a.group)
    }

    /// Institutions with their awards within a filter; the group narrows the
    /// institutions, kind and level the awards counted.
    fn rank_rows(&self, report: usize, filter: PrizeFilter) -> Vec<RankRow> {
        let r = &self.knowledge.reports[report];
        let awards_filter = PrizeFilter {
            group: None,
            ..filter
        };
        let mut rows: Vec<RankRow> = Vec::new();
        for a in &r.awards {
            if filter
                .group
                .is_some_and(|g| self.group_of(&a.institution, report) != Some(g))
            {
                continue;
            }
            if !awards_filter.matches(&a.prize()) {
                continue;
            }
            let prize = a.prize();
            match rows.iter_mut().find(|x| x.institution == a.institution) {
                Some(row) => {
                    row.awards += 1;
                    if row
                        .best
                        .is_none_or(|b| r.levels.rank(prize.level) < r.levels.rank(b.level))
                    {
                        row.best = Some(prize);
                    }
                }
                None => rows.push(RankRow {
                    institution: a.institution.clone(),
                    awards: 1,
                    best: Some(prize),
                }),
            }
        }
        rows
    }

    /// "哪家保险公司获奖最多", "哪家银行团体成绩最好", "获奖最少的保险公司",
    /// "获奖第二多的银行".
    fn rank(&self, q: &Query) -> Outcome {
        let by = if q.by_level {
            RankBy::Level
        } else {
            RankBy::Count
        };
        // "谁的成绩最好", "银行组成绩最好的团队": the best prize's winners.
        if by == RankBy::Level && q.counted != Counted::Institutions {
            let r = &self.knowledge.reports[q.report];
            let best = r
                .awards
                .iter()
                .filter(|a| q.filter.matches(&a.prize()) && r.levels.rank(a.level) != STANDALONE)
                .map(|a| a.level)
                .min_by_key(|l| r.levels.rank(*l))
                .unwrap_or_else(|| self.top_level(q.report));
            let filter = PrizeFilter {
                level: Some(best),
                ..q.filter
            };
            // One winner in that place: name them first ("成绩最好的团队").
            let mut rows = (0..r.awards.len()).filter(|i| filter.matches(&r.awards[*i].prize()));
            if let (Some(one), None) = (rows.next(), rows.next()) {
                let id = self.index.award_winners[q.report][one];
                let mut wins = self.wins_of(id, q.report);
                let all = wins.awards.len();
                wins.awards
                    .retain(|i| filter.matches(&r.awards[*i].prize()));
                let partial = wins.awards.len() < all;
                return Outcome {
                    shown: vec![id],
                    ..Outcome::new(
                        Reply::Won {
                            wins: vec![wins],
                            corrected: None,
                            nothing: Vec::new(),
                            partial,
                        },
                        Intent::WhoWon,
                    )
                };
            }
            return Outcome::new(self.winners(q.report, filter), Intent::WhoWon);
        }
        let mut rows = self.rank_rows(q.report, q.filter);
        let best = |r: &RankRow| {
            r.best
                .map_or(u8::MAX, |p| self.level_rank(q.report, p.level))
        };
        match (by, q.least) {
            (RankBy::Count, false) => rows.sort_by_key(|r| (std::cmp::Reverse(r.awards), best(r))),
            (RankBy::Count, true) => rows.sort_by_key(|r| (r.awards, std::cmp::Reverse(best(r)))),
            (RankBy::Level, false) => rows.sort_by_key(|r| (best(r), std::cmp::Reverse(r.awards))),
            (RankBy::Level, true) => rows.sort_by_key(|r| (std::cmp::Reverse(best(r)), r.awards)),
        }
        // The place asked for, counting tied institutions as one place.
        let key = |r: &RankRow| match by {
            RankBy::Count => r.awards,
            RankBy::Level => best(r) as usize,
        };
        let mut places: Vec<usize> = Vec::new();
        for r in &rows {
            if places.last() != Some(&key(r)) {
                places.push(key(r));
            }
        }
        let position = usize::from(q.position.max(1)).min(places.len().max(1));
        let wanted = places.get(position - 1).copied();
        let institution = |name: &str| {
            self.index
                .entities
                .iter()
                .position(|e| e.kind == EntityKind::Institution && e.name == name)
        };
        let at: Vec<usize> = (0..rows.len())
            .filter(|i| Some(key(&rows[*i])) == wanted)
            .collect();
        let at_place: Vec<EntityId> = at
            .iter()
            .filter_map(|i| institution(&rows[*i].institution))
            .collect();
        // What the one institution in that place won, within the filter.
        let top = match at_place.as_slice() {
            [one] => {
                let mut w = self.wins_of(*one, q.report);
                let r = &self.knowledge.reports[q.report];
                let awards_filter = PrizeFilter {
                    group: None,
                    ..q.filter
                };
                w.awards
                    .retain(|i| awards_filter.matches(&r.awards[*i].prize()));
                Some(w)
            }
            _ => None,
        };
        Outcome {
            shown: at_place,
            ..Outcome::new(
                Reply::Ranking {
                    report: q.report,
                    filter: q.filter,
                    by,
                    rows,
                    position: position as u8,
                    least: q.least,
                    at,
                    top,
                },
                Intent::Rank,
            )
        }
    }

    /// "银行组和保险组获奖名额谁多".
    fn compare_groups(&self, q: &Query) -> Outcome {
        let r = &self.knowledge.reports[q.report];
        let rows = q
            .groups
            .iter()
            .map(|g| {
                let f = PrizeFilter {
                    group: Some(*g),
                    ..q.filter
                };
                let n = r
                    .awards
                    .iter()
                    .filter(|a| a.group == Some(*g) && f.matches(&a.prize()))
                    .count();
                (*g, n)
            })
            .collect();
        Outcome::new(
            Reply::GroupCounts {
                filter: q.filter,
                rows,
            },
            Intent::Compare,
        )
    }

    /// "哪几家银行得了一等奖", "获奖的保险公司有哪些".
    fn institutions(&self, q: &Query) -> Outcome {
        let names = self
            .rank_rows(q.report, q.filter)
            .into_iter()
            .map(|r| r.institution)
            .collect();
        Outcome::new(
            Reply::Institutions {
                report: q.report,
                filter: q.filter,
                names,
            },
            Intent::WhoWon,
        )
    }

    /// "俞辉和吴峰谁的奖更好" (by the best prize), "建行和工行谁获奖多" (by the
    /// number of awards).
    fn compare(&self, q: &Query, ids: &[EntityId]) -> Outcome {
        let wins: Vec<EntityWins> = ids.iter().map(|id| self.wins_of(*id, q.report)).collect();
        let all_institutions = ids
            .iter()
            .all(|id| self.index.entities[*id].kind == EntityKind::Institution);
        let basis = if q.by_count || (all_institutions && !q.by_level) {
            RankBy::Count
        } else {
            RankBy::Level
        };
        let r = &self.knowledge.reports[q.report];
        let score = |w: &EntityWins| -> Option<i64> {
            if w.awards.is_empty() {
                return None;
            }
            match basis {
                RankBy::Count => Some(w.awards.len() as i64),
                RankBy::Level => w
                    .awards
                    .iter()
                    .map(|i| -i64::from(r.levels.rank(r.awards[*i].level)))
                    .max(),
            }
        };
        let scores: Vec<Option<i64>> = wins.iter().map(score).collect();
        let outcome = if scores.iter().any(Option::is_none) {
            CompareOutcome::Unranked
        } else {
            let best = scores.iter().flatten().max().copied().unwrap_or(0);
            let top: Vec<usize> = (0..ids.len())
                .filter(|i| scores[*i] == Some(best))
                .collect();
            // Two different standalone awards (最佳人气奖, 最佳创意奖) share a
            // rank but are not the same.
            let best_levels: Vec<Option<Level>> = wins
                .iter()
                .map(|w| {
                    w.awards
                        .iter()
                        .map(|i| r.awards[*i].level)
                        .min_by_key(|l| r.levels.rank(*l))
                })
                .collect();
            let same_level = basis == RankBy::Count || best_levels.windows(2).all(|p| p[0] == p[1]);
            if top.len() == ids.len() && !same_level {
                CompareOutcome::Unranked
            } else if top.len() == ids.len() {
                CompareOutcome::Same
            } else if let [one] = top.as_slice() {
                CompareOutcome::Ahead(ids[*one])
            } else {
                CompareOutcome::Unranked
            }
        };
        Outcome::new(
            Reply::Compare {
                basis,
                outcome,
                wins,
            },
            Intent::Compare,
        )
    }

    /// A fact question: the fact the words choose (for a subject, among its
    /// facts), checked against the claims of a yes/no question.
    fn fact(&self, q: &Query) -> Outcome {
        let report = &self.knowledge.reports[q.report];
        let words = Parsed::with_keywords(&q.words);
        let subject = match q.about {
            About::Subject(s) => Some(s),
            _ => None,
        };
        let chosen = self.best_fact_of(&words, q.report, subject).or_else(|| {
            // Nothing more specific: the subject's own fact ("王军是谁").
            let s = subject?;
            let id = &report.subjects[s].id;
            report.facts.iter().position(|f| {
                &f.subject == id
                    && f.triggers.len() == 1
                    && f.triggers[0].iter().all(|w| w.starts_with('@'))
            })
        });
        let Some(f) = chosen else {
            // A case's subject with no fact that fits: the story itself.
            if let Some(s) = subject
                && let Some(case) = report.subjects[s].case.as_ref()
                && let Some(c) = report.antifraud.cases.iter().position(|x| &x.id == case)
            {
                return Outcome::new(
                    Reply::Case {
                        report: q.report,
                        case: c,
                    },
                    Intent::Case,
                );
            }
            return Outcome::new(Reply::Fallback, Intent::Fallback);
        };
        let fact = &report.facts[f];
        let verdict = (q.op == Op::Verify)
            .then(|| self.fact_verdict(q, fact, report.meta.year))
            .flatten();
        Outcome {
            verdict,
            people: self.fact_people[q.report][f].clone(),
            ..Outcome::new(
                Reply::Fact {
                    report: q.report,
                    fact: f,
                },
                Intent::Fact,
            )
        }
    }

    /// Claims compared with the values of a fact that can be compared with
    /// them: a date with a date, a number with a number, a name with a name.
    fn fact_verdict(&self, q: &Query, fact: &crate::knowledge::Fact, year: u16) -> Option<bool> {
        let suits = |c: &Claimed| match c {
            Claimed::Date(_) => matches!(
                fact.value_type,
                ValueType::Date | ValueType::Text | ValueType::List
            ),
            Claimed::Number(_) => matches!(
                fact.value_type,
                ValueType::Number | ValueType::Text | ValueType::List
            ),
            Claimed::Place(_) => matches!(
                fact.value_type,
                ValueType::Place | ValueType::Date | ValueType::Text
            ),
            Claimed::Name(_) => matches!(fact.value_type, ValueType::Person | ValueType::Org),
            _ => false,
        };
        // Claims in plain words ("是被买成美元了吗", "加的是微信吗") against a
        // fact stated in words: a stated value that shares two characters
        // with the question (not counting the words that found the fact)
        // bears the claim out; a claim that shares nothing does not.
        let worded = matches!(
            fact.value_type,
            ValueType::Text | ValueType::List | ValueType::Org | ValueType::Person
        ) && !q
            .claims
            .iter()
            .any(|c| suits(c) && !matches!(c, Claimed::Name(_)));
        if worded
            && let Some(Claimed::Words(text)) =
                q.claims.iter().find(|c| matches!(c, Claimed::Words(_)))
        {
            let trigger_words: Vec<String> = fact
                .triggers
                .iter()
                .flatten()
                .map(|w| super::normalize::normalize_word(w))
                .collect();
            let shared = fact.values.iter().any(|v| {
                let chars: Vec<char> = super::normalize::normalize_word(v).chars().collect();
                chars.windows(2).any(|pair| {
                    let bigram: String = pair.iter().collect();
                    pair.iter().all(|c| super::normalize::is_cjk(*c))
                        && text.contains(&bigram)
                        // A trigger that is a part of the value ("美元" of
                        // 美元账户) is a claim as much as a way to the fact;
                        // the whole value as a trigger (主任评委) is not.
                        && !trigger_words.iter().any(|w| {
                            w.contains(&bigram) && !(w.len() < v.len() && v.contains(w.as_str()))
                        })
                })
            });
            if shared {
                return Some(true);
            }
            if q.claims
                .iter()
                .any(|c| matches!(c, Claimed::Text(_) | Claimed::Name(_)))
            {
                return Some(false);
            }
            return None;
        }
        let mut verdict: Option<bool> = None;
        for c in q.claims.iter().filter(|c| suits(c)) {
            let results: Vec<bool> = fact
                .values
                .iter()
                .filter_map(|v| claims::agrees(c, v, year, &self.index.units))
                .collect();
            if results.is_empty() {
                continue;
            }
            let this = results.iter().any(|r| *r);
            verdict = Some(verdict.unwrap_or(true) && this);
        }
        verdict
    }

    /// The best matching fact: (index, matched groups, score). A question
    /// that names the fact's subject ("工行温州分行…宣传") counts that as one
    /// more group when no trigger group already stands for the subject.
    pub(super) fn best_fact(&self, p: &Parsed, report: usize) -> Option<(usize, usize, usize)> {
        let named: Vec<bool> = self.subjects[report]
            .iter()
            .map(|s| s.words.iter().any(|k| p.keyword(*k).is_some()))
            .collect();
        let of_subject = &self.fact_subject[report];
        self.facts[report]
            .candidates(p)
            .filter_map(|(i, t)| {
                let (subject, counts) = &of_subject[i];
                let s = t.score(p)?;
                let bonus = *counts && subject.is_some_and(|x| named[x]);
                Some((i, t.groups.len() + usize::from(bonus), s))
            })
            .max_by_key(|(i, g, s)| (*g, *s, std::cmp::Reverse(*i)))
    }

    /// The best fact among a subject's facts (or all when `None`).
    fn best_fact_of(&self, p: &Parsed, report: usize, subject: Option<usize>) -> Option<usize> {
        let of_subject = &self.fact_subject[report];
        self.facts[report]
            .candidates(p)
            .filter(|(i, _)| subject.is_none_or(|s| of_subject[*i].0 == Some(s)))
            .filter_map(|(i, t)| t.score(p).map(|s| (i, t.groups.len(), s)))
            .max_by_key(|(i, g, s)| (*g, *s, std::cmp::Reverse(*i)))
            .map(|(i, _, _)| i)
    }

    /// The best fact for `merged` (a follow-up plus the last question's words),
    /// preferring facts that the new words speak to.
    pub(super) fn best_fact_with(
        &self,
        merged: &Parsed,
        new: &Parsed,
        report: usize,
    ) -> Option<(usize, usize, usize)> {
        self.facts[report]
            .candidates(merged)
            .filter_map(|(i, t)| {
                let s = t.score(merged)?;
                let own = t.partial(new);
                // "他还担任什么职务": the pronoun stands for the name.
                let pronoun = new.cue(super::index::Cue::Pronoun)
                    || new.cue(super::index::Cue::PronounPerson);
                (own > 0 || pronoun).then_some((i, t.groups.len(), s, own))
            })
            .max_by_key(|(i, g, s, own)| (*g, *own, *s, std::cmp::Reverse(*i)))
            .map(|(i, g, s, _)| (i, g, s))
    }

    /// How much of a case's match is its own details (贵州, 丰门, 刘阿姨) rather
    /// than words of a scam topic (快递, 冻结), which ask for advice.
    pub(super) fn case_specific(&self, p: &Parsed, report: usize, case: usize) -> usize {
        self.cases[report][case]
            .groups
            .iter()
            .flatten()
            .filter(|k| !self.topical[**k as usize])
            .filter_map(|k| p.keyword(*k))
            .sum()
    }

    pub(super) fn best_case(&self, p: &Parsed, report: usize) -> Option<(usize, usize)> {
        self.cases[report]
            .candidates(p)
            .filter_map(|(i, t)| t.score(p).map(|s| (i, s)))
            .max_by_key(|(i, s)| (*s, std::cmp::Reverse(*i)))
    }

    /// The scam topic a message is about, with its score.
    pub(super) fn best_topic(&self, p: &Parsed) -> Option<(String, usize)> {
        // Scored like triggers: the summed length of the matched keywords. The
        // general topic only wins when no specific one matches.
        self.topics
            .iter()
            .filter_map(|(id, kws)| {
                let score: usize = kws.iter().filter_map(|k| p.keyword(*k)).sum();
                (score > 0).then(|| (id, id != "general", score))
            })
            .max_by_key(|(_, specific, score)| (*specific, *score))
            .map(|(id, _, score)| (id.clone(), score))
    }

    /// Tips of several topics (a case's scam types), without duplicates.
    pub(super) fn tips_for(&self, topics: &[String]) -> Reply {
        let mut tips: Vec<(usize, usize)> = Vec::new();
        for t in topics {
            if let Reply::Tips { tips: more, .. } = self.tips(Some(t), false) {
                for x in more {
                    if !tips.contains(&x) {
                        tips.push(x);
                    }
                }
            }
        }
        Reply::Tips {
            topic: None,
            tips,
            topics: self.topic_ids(),
        }
    }

    /// A topic that stands for advice in general (overview of all scams).
    pub(super) fn is_overview_topic(&self, id: &str) -> bool {
        self.knowledge
            .reports
            .iter()
            .flat_map(|r| &r.antifraud.topics)
            .any(|t| t.id == id && t.overview)
    }

    fn topic_ids(&self) -> Vec<String> {
        let mut topics: Vec<String> = Vec::new();
        for r in &self.knowledge.reports {
            for t in &r.antifraud.topics {
                if !topics.contains(&t.id) {
                    topics.push(t.id.clone());
                }
            }
        }
        topics
    }

    /// Tips of one topic; without a topic, one tip of every scam the reports
    /// tell (prevention) or the after-the-fact steps (`after`); merged over
    /// reports without duplicates.
    pub(super) fn tips(&self, topic: Option<&str>, after: bool) -> Reply {
        let mut tips: Vec<(usize, usize)> = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        let mut topic = topic.map(str::to_string);
        if topic.is_none() && after {
            topic = self
                .knowledge
                .reports
                .iter()
                .flat_map(|r| &r.antifraud.topics)
                .find(|t| t.after)
                .map(|t| t.id.clone());
        }
        for (ri, r) in self.knowledge.reports.iter().enumerate() {
            let is_after = |id: &str| r.antifraud.topics.iter().any(|t| t.id == id && t.after);
            for (ti, t) in r.antifraud.tips.iter().enumerate() {
                if seen.contains(&t.zh.as_str()) {
                    continue;
                }
                let take = match &topic {
                    Some(id) => t.topic == *id,
                    None => {
                        !is_after(&t.topic)
                            && !tips.iter().any(|(r2, t2)| {
                                self.knowledge.reports[*r2].antifraud.tips[*t2].topic == t.topic
                            })
                    }
                };
                if take {
                    seen.push(&t.zh);
                    tips.push((ri, ti));
                }
            }
        }
        Reply::Tips {
            topic,
            tips,
            topics: self.topic_ids(),
        }
    }
}

#[cfg(test)]
mod tests {
    //! One test (at least) per operator, on queries built directly: the
    //! operators are checked apart from how questions are read.
    use super::*;
    use crate::knowledge::{Group, Kind};

    fn engine() -> Engine {
        Engine::builtin().expect("built-in data loads")
    }

    fn id(e: &Engine, name: &str) -> EntityId {
        e.entities()
            .iter()
            .position(|x| x.name == name)
            .unwrap_or_else(|| panic!("no entity {name}"))
    }

    fn entities(e: &Engine, op: Op, names: &[&str]) -> Query {
        Query::new(
            op,
            About::Entities(names.iter().map(|n| id(e, n)).collect()),
            0,
        )
    }

    #[test]
    fn lookup_lists_what_names_won_and_says_when_a_filter_narrows_it() {
        let e = engine();
        let out = e.execute(&entities(&e, Op::Lookup, &["建设银行浙江省分行"]));
        let Reply::Won { wins, partial, .. } = out.reply else {
            panic!("{:?}", out.reply)
        };
        assert_eq!((wins[0].awards.len(), partial), (4, false));
        let q = entities(&e, Op::Lookup, &["建设银行浙江省分行"]).with_filter(PrizeFilter {
            kind: Some(Kind::Team),
            ..PrizeFilter::default()
        });
        let Reply::Won { wins, partial, .. } = e.execute(&q).reply else {
            panic!()
        };
        assert_eq!((wins[0].awards.len(), partial), (2, true));
    }

    #[test]
    fn verify_gives_the_verdict_and_what_was_not_won() {
        let e = engine();
        let mut q = entities(&e, Op::Verify, &["戚迎"]);
        let insurance = PrizeFilter {
            group: Some(Group::Insurance),
            ..PrizeFilter::default()
        };
        q.claims = vec![Claimed::Prize(insurance)];
        let out = e.execute(&q);
        assert_eq!(out.verdict, Some(false));
        assert!(matches!(out.notices[0], Notice::NotWon { .. }));
        q.claims = vec![Claimed::Won];
        assert_eq!(e.execute(&q).verdict, Some(true));
    }

    #[test]
    fn verify_compares_claimed_values_with_a_fact() {
        let e = engine();
        let r = &e.knowledge().reports[0];
        let subject = |id: &str| r.subjects.iter().position(|s| s.id == id).unwrap();
        let fact_words = |fact: &str| -> Vec<(u32, usize)> {
            let f = r.facts.iter().position(|f| f.id == fact).unwrap();
            e.facts[0][f].groups.iter().map(|g| (g[0], 2)).collect()
        };
        let mut q = Query::new(Op::Verify, About::Subject(subject("contest")), 0);
        q.words = fact_words("final_date");
        q.claims = vec![Claimed::Date(claims::DateValue {
            month: Some(11),
            ..Default::default()
        })];
        assert_eq!(e.execute(&q).verdict, Some(true));
        let mut q = Query::new(Op::Verify, About::Subject(subject("platform")), 0);
        q.words = fact_words("platform_launch");
        q.claims = vec![Claimed::Date(claims::DateValue {
            year: Some(2020),
            ..Default::default()
        })];
        assert_eq!(e.execute(&q).verdict, Some(false));
    }

    #[test]
    fn count_counts_rows_institutions_people_and_teams() {
        let e = engine();
        let count = |filter: PrizeFilter, counted: Counted| {
            let mut q = Query::new(Op::Count, About::Prizes, 0).with_filter(filter);
            q.counted = counted;
            match e.execute(&q).reply {
                Reply::Count { n, .. } => n,
                other => panic!("{other:?}"),
            }
        };
        let all = PrizeFilter::default();
        assert_eq!(count(all, Counted::Awards), 42);
        assert_eq!(count(all, Counted::Institutions), 16);
        assert_eq!(count(all, Counted::People), 20);
        assert_eq!(count(all, Counted::Teams), 20);
        let cell = PrizeFilter {
            group: Some(Group::Bank),
            kind: Some(Kind::Team),
            level: Some(Level::Third),
        };
        assert_eq!(count(cell, Counted::Awards), 3);
        let q = entities(&e, Op::Count, &["中国人寿浙江省分公司"]);
        assert!(matches!(e.execute(&q).reply, Reply::Count { n: 6, .. }));
    }

    #[test]
    fn compare_by_prize_and_by_number_of_awards() {
        let e = engine();
        let outcome = |q: Query| match e.execute(&q).reply {
            Reply::Compare { outcome, .. } => outcome,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            outcome(entities(&e, Op::Compare, &["俞辉", "吴峰"])),
            CompareOutcome::Same
        );
        assert_eq!(
            outcome(entities(&e, Op::Compare, &["郭胜", "李彬"])),
            CompareOutcome::Ahead(id(&e, "李彬"))
        );
        let banks = ["工商银行浙江省分行", "建设银行浙江省分行"];
        assert_eq!(
            outcome(entities(&e, Op::Compare, &banks)),
            CompareOutcome::Ahead(id(&e, "建设银行浙江省分行"))
        );
        let mut by_level = entities(&e, Op::Compare, &banks);
        by_level.by_level = true;
        assert_eq!(
            outcome(by_level),
            CompareOutcome::Ahead(id(&e, "工商银行浙江省分行"))
        );
    }

    #[test]
    fn rank_respects_the_filter_the_place_and_the_end() {
        let e = engine();
        let top = |q: Query| match e.execute(&q).reply {
            Reply::Ranking { rows, at, .. } => at
                .iter()
                .map(|i| (rows[*i].institution.clone(), rows[*i].awards))
                .collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        let insurers = PrizeFilter {
            group: Some(Group::Insurance),
            ..PrizeFilter::default()
        };
        let mut q = Query::new(Op::Rank, About::Prizes, 0).with_filter(insurers);
        q.counted = Counted::Institutions;
        assert_eq!(
            top(q.clone()),
            vec![("中国人寿浙江省分公司".to_string(), 6)]
        );
        q.position = 2;
        assert_eq!(
            top(q.clone()),
            vec![("中华联合财险浙江分公司".to_string(), 4)]
        );
        q.position = 1;
        q.least = true;
        assert_eq!(top(q).len(), 4, "four insurers won 2 awards each");
    }

    #[test]
    fn the_best_team_is_named_when_one_team_holds_the_top_prize() {
        let e = engine();
        let mut q = Query::new(Op::Rank, About::Prizes, 0).with_filter(PrizeFilter {
            group: Some(Group::Bank),
            kind: Some(Kind::Team),
            ..PrizeFilter::default()
        });
        q.by_level = true;
        q.counted = Counted::Teams;
        let Reply::Won { wins, .. } = e.execute(&q).reply else {
            panic!("one team: its win")
        };
        assert_eq!(wins[0].entity, id(&e, "工银浙里队"));
        // Across both groups, four prizes share the top level: all are listed.
        q.filter = PrizeFilter::default();
        assert!(matches!(e.execute(&q).reply, Reply::Winners { .. }));
    }

    #[test]
    fn institutions_are_distinct_and_filtered() {
        let e = engine();
        let q = Query::new(Op::Institutions, About::Prizes, 0).with_filter(PrizeFilter {
            group: Some(Group::Bank),
            level: Some(Level::First),
            ..PrizeFilter::default()
        });
        let Reply::Institutions { names, .. } = e.execute(&q).reply else {
            panic!()
        };
        assert_eq!(names, vec!["工商银行浙江省分行".to_string()]);
    }

    #[test]
    fn tips_for_prevention_name_every_scam_and_after_the_fact_the_steps() {
        let e = engine();
        let topics_of = |reply: Reply| -> Vec<String> {
            let Reply::Tips { tips, .. } = reply else {
                panic!()
            };
            tips.iter()
                .map(|(r, t)| e.knowledge().reports[*r].antifraud.tips[*t].topic.clone())
                .collect()
        };
        let prevention = topics_of(e.tips(None, false));
        for scam in [
            "courier",
            "verification_code",
            "screen_sharing",
            "frozen_account",
        ] {
            assert!(prevention.iter().any(|t| t == scam), "{prevention:?}");
        }
        assert!(!prevention.iter().any(|t| t == "after_scam"));
        let after = topics_of(e.tips(None, true));
        assert!(!after.is_empty() && after.iter().all(|t| t == "after_scam"));
    }
}
