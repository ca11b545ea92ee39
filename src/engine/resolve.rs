//! Reading a clause into a [`Query`]: what it is about (names, a prize
//! selection, a fact subject, a case, tips), which operator it asks for
//! (lookup, yes/no, count, compare, rank, which institutions) and, for a
//! follow-up, which parts of the last query it keeps.

use super::Engine;
use super::answer::{Counted, Intent, PrizeFilter, Reply};
use super::claims::Claimed;
use super::context::Turn;
use super::index::{Cue, EntityId, EntityKind};
use super::query::{About, Op, Query};
use super::understand::{Mention, Parsed};
use crate::knowledge::Level;
use std::time::Instant;

/// What was decided for one clause: the reply, and the turn to remember
/// (`None` leaves the conversation context as it was).
#[derive(Debug, Clone)]
pub(super) struct Decision {
    pub reply: Reply,
    pub intent: Intent,
    pub verdict: Option<bool>,
    pub notices: Vec<super::answer::Notice>,
    pub turn: Option<Turn>,
}

impl Decision {
    /// An answer that leaves the context alone (help, unknown names …).
    pub fn plain(reply: Reply, intent: Intent) -> Self {
        Decision {
            reply,
            intent,
            verdict: None,
            notices: Vec::new(),
            turn: None,
        }
    }
}

/// The operator a clause asks for, from its cue words alone.
fn op_of(p: &Parsed) -> Op {
    let two_names = p.mentions.len() >= 2 || p.groups.len() >= 2;
    let better = p.cue(Cue::RankLevel) || p.cue(Cue::RankCount);
    if p.cue(Cue::Compare) || (two_names && better && p.cue(Cue::Interrogative)) {
        Op::Compare
    } else if p.cue(Cue::Ranking) || p.position.is_some() || p.cue(Cue::RankLeast) {
        Op::Rank
    } else if p.cue(Cue::Count) {
        Op::Count
    } else if p.cue(Cue::Verify) {
        Op::Verify
    } else {
        Op::Lookup
    }
}

impl Engine {
    pub(super) fn decide(
        &self,
        message: &str,
        p: &Parsed,
        prev: Option<&Turn>,
        now: Instant,
    ) -> Decision {
        if let Some(d) = self.command(message, prev, now) {
            return d;
        }
        if p.is_empty() {
            return Decision::plain(Reply::Fallback, Intent::Fallback);
        }
        let report = self.report_for(p);
        match prev.and_then(|t| self.follow_up(p, t, now, report)) {
            Some(d) => d,
            None => self.fresh(p, now, report),
        }
    }

    /// Which report a question is about: a year it names, else the newest.
    pub(super) fn report_for(&self, p: &Parsed) -> usize {
        let reports = &self.knowledge.reports;
        if reports.len() > 1 {
            for (i, r) in reports.iter().enumerate() {
                if p.years.contains(&r.meta.year) || p.text.contains(&r.meta.contest) {
                    return i;
                }
            }
        }
        0
    }

    /// A year the question names that no report covers ("2020年的一等奖").
    fn uncovered_year(&self, p: &Parsed) -> Option<u16> {
        let covered: Vec<u16> = self.knowledge.reports.iter().map(|r| r.meta.year).collect();
        if p.years.iter().any(|y| covered.contains(y)) {
            return None;
        }
        p.years.first().copied()
    }

    pub(super) fn filter_of(p: &Parsed) -> PrizeFilter {
        fn one<T: Copy>(v: &[T]) -> Option<T> {
            if v.len() == 1 { Some(v[0]) } else { None }
        }
        // "银行业保险业" names both groups: that is no group at all.
        PrizeFilter {
            group: one(&p.groups),
            kind: one(&p.kinds),
            level: one(&p.levels),
        }
    }

    /// What a "how many" question counts.
    fn counted_of(p: &Parsed, filter: PrizeFilter) -> Counted {
        // A prize cell counts its rows ("团体三等奖有几个队"); nouns decide
        // otherwise ("多少家单位", "多少人获得个人奖").
        // Units are in the order typed: the first noun is what is counted
        // ("how many institutions won awards").
        if p.units.contains(&Counted::Institutions) && !p.cue(Cue::Award)
            || p.units.contains(&Counted::Institutions) && p.units.len() == 1
            || p.units.first() == Some(&Counted::Institutions)
        {
            return Counted::Institutions;
        }
        if filter.level.is_some() {
            return Counted::Awards;
        }
        if p.units.contains(&Counted::Awards) {
            Counted::Awards
        } else if p.units.contains(&Counted::People) {
            Counted::People
        } else if p.units.contains(&Counted::Teams) {
            Counted::Teams
        } else {
            Counted::Awards
        }
    }

    /// Claims of a yes/no question about names: a prize selection, an
    /// institution, or just "won anything".
    fn entity_claims(&self, p: &Parsed, institutions: &[EntityId]) -> Vec<Claimed> {
        let filter = Self::filter_of(p);
        let mut claims = Vec::new();
        if !filter.is_empty() {
            claims.push(Claimed::Prize(filter));
        }
        claims.extend(institutions.iter().map(|i| Claimed::Institution(*i)));
        if claims.is_empty() {
            claims.push(Claimed::Won);
        }
        claims
    }

    /// Claims of a yes/no question about facts: dates, numbers, places, names.
    fn fact_claims(&self, p: &Parsed, report: usize) -> Vec<Claimed> {
        let mut claims: Vec<Claimed> = p.dates.iter().map(|d| Claimed::Date(*d)).collect();
        // "Was it held in 2021?": a bare year claims a date too.
        for y in &p.years {
            if !p.dates.iter().any(|d| d.year == Some(*y)) {
                claims.push(Claimed::Date(super::claims::DateValue {
                    year: Some(*y),
                    ..Default::default()
                }));
            }
        }
        claims.extend(p.quantities.iter().cloned().map(Claimed::Number));
        claims.extend(p.places.iter().cloned().map(Claimed::Place));
        let r = &self.knowledge.reports[report];
        for (i, s) in r.subjects.iter().enumerate() {
            if s.person
                && self.subjects[report][i]
                    .words
                    .iter()
                    .any(|k| p.keyword(*k).is_some())
            {
                claims.push(Claimed::Name(s.name_zh.clone()));
            }
        }
        if let Some(text) = &p.unknown_name {
            claims.push(Claimed::Text(text.clone()));
        }
        claims.push(Claimed::Words(p.text.clone()));
        claims
    }

    /// The parse with the virtual keywords a yes/no question implies: a
    /// claimed date asks "when", a claimed place "where", a number "how many".
    fn with_claim_words(&self, p: &Parsed) -> Parsed {
        let mut p = p.clone();
        if (!p.quantities.is_empty() || !p.years.is_empty())
            && let Some(id) = self.howmany_id
        {
            p.add_keyword(id, 2);
        }
        if !p.years.is_empty()
            && p.dates.is_empty()
            && let Some(id) = self.when_id
        {
            p.add_keyword(id, 2);
        }
        if !p.dates.is_empty()
            && let Some(id) = self.when_id
        {
            p.add_keyword(id, 2);
        }
        if !p.places.is_empty()
            && let Some(id) = self.where_id
        {
            p.add_keyword(id, 2);
        }
        p
    }

    /// A query, made into a decision: executed, with the turn to remember.
    fn query(&self, mut q: Query, p: &Parsed, now: Instant) -> Decision {
        if q.asked_year.is_none() {
            q.asked_year = self.uncovered_year(p);
        }
        self.run(q, now)
    }

    /// A message read on its own.
    pub(super) fn fresh(&self, p: &Parsed, now: Instant, report: usize) -> Decision {
        if p.cue(Cue::Unsubscribe) {
            return Decision::plain(Reply::Unsubscribe, Intent::Unsubscribe);
        }
        if p.cue(Cue::Reports) && p.mentions.is_empty() {
            return Decision::plain(Reply::Reports, Intent::Reports);
        }
        let filter = Self::filter_of(p);
        let op = op_of(p);
        // "哪家保险公司获奖最多", "哪个队成绩最好".
        let stranger = p
            .unknown_name
            .as_ref()
            .is_some_and(|n| self.is_asked_name(p, n));
        if op == Op::Rank && p.mentions.is_empty() && !stranger {
            let mut q = Query::new(Op::Rank, About::Prizes, report).with_filter(filter);
            q.by_level = p.cue(Cue::RankLevel) && !p.cue(Cue::RankCount);
            q.least = p.cue(Cue::RankLeast);
            q.position = p.position.unwrap_or(1);
            // Institutions, unless the best of people or teams is asked for.
            let institutions = p.units.contains(&Counted::Institutions)
                || p.cue(Cue::ListInstitutions)
                || !q.by_level;
            q.counted = if institutions {
                Counted::Institutions
            } else if p.kinds.contains(&crate::knowledge::Kind::Individual) {
                Counted::People
            } else {
                Counted::Teams
            };
            return self.query(q, p, now);
        }
        if p.cue(Cue::Subscribe) {
            return Decision::plain(Reply::Subscribe, Intent::Subscribe);
        }
        let award_cue = p.cue(Cue::Award) || p.cue(Cue::ListAll);
        let antifraud = p.cue(Cue::AntiFraud) || p.cue(Cue::Case) || p.cue(Cue::AfterScam);
        let with_claims;
        let fact_parse = if op == Op::Verify {
            with_claims = self.with_claim_words(p);
            &with_claims
        } else {
            p
        };
        let fact = self.best_fact(fact_parse, report);
        let strong_fact = fact.filter(|(_, groups, score)| *groups >= 2 || *score >= 4);

        let ambiguous: Vec<&Mention> = p.mentions.iter().filter(|m| m.ids.len() > 1).collect();
        let clear: Vec<&Mention> = p.mentions.iter().filter(|m| m.ids.len() == 1).collect();
        let named: Vec<EntityId> = clear.iter().map(|m| m.ids[0]).collect();
        let kind = |id: &EntityId| self.index.entities[*id].kind;
        let people_teams: Vec<EntityId> = named
            .iter()
            .copied()
            .filter(|id| kind(id) != EntityKind::Institution)
            .collect();
        let institutions: Vec<EntityId> = named
            .iter()
            .copied()
            .filter(|id| kind(id) == EntityKind::Institution)
            .collect();
        let corrected = clear.iter().find(|m| m.corrected).map(|m| m.typed.clone());

        // "银行组和保险组获奖名额谁多".
        if op == Op::Compare && named.is_empty() && p.groups.len() >= 2 {
            let mut q = Query::new(Op::Compare, About::Prizes, report);
            q.groups = p.groups.clone();
            q.filter = PrizeFilter {
                group: None,
                ..filter
            };
            return self.query(q, p, now);
        }
        // "俞辉和吴峰谁的奖更好", "建行和工行谁获奖多".
        if op == Op::Compare && named.len() >= 2 {
            let mut q = Query::new(Op::Compare, About::Entities(named), report);
            q.by_level = p.cue(Cue::RankLevel) && !p.cue(Cue::RankCount);
            q.by_count = p.cue(Cue::RankCount) && !p.cue(Cue::RankLevel);
            return self.query(q, p, now);
        }

        // "姓郭的获奖者有哪些": everyone of that family name.
        if people_teams.is_empty()
            && let Some(family) = self.family_name(p)
        {
            let people: Vec<EntityId> = (0..self.index.entities.len())
                .filter(|id| {
                    let e = &self.index.entities[*id];
                    e.kind == EntityKind::Person && e.name.starts_with(family)
                })
                .collect();
            if people.is_empty() {
                return Decision::plain(
                    Reply::NotFound {
                        name: format!("{}{family}", self.knowledge.lexicon.family_marker),
                    },
                    Intent::NotFound,
                );
            }
            let q = Query::new(Op::Lookup, About::Entities(people), report);
            return self.query(q, p, now);
        }

        if !people_teams.is_empty() {
            let mut q = Query::new(Op::Lookup, About::Entities(people_teams), report);
            q.corrected = corrected;
            q.all_years = p.cue(Cue::AllYears);
            match op {
                Op::Verify => {
                    q.op = Op::Verify;
                    q.claims = self.entity_claims(p, &institutions);
                }
                Op::Count => q.op = Op::Count,
                _ => {}
            }
            return self.query(q, p, now);
        }
        if let Some(m) = ambiguous.first()
            && institutions.is_empty()
            && (!antifraud || award_cue)
        {
            return self.ambiguous(m.typed.clone(), m.ids.clone(), report, now, false);
        }
        // "李娜是不是拿了二等奖", "宁波银行获奖情况": a name we do not know, asked
        // about with prize words, is not in the report; listing the real
        // winners would suggest otherwise.
        if p.mentions.is_empty()
            && let Some(name) = &p.unknown_name
            && (award_cue || p.cue(Cue::Identity))
            && strong_fact.is_none()
            && self.is_asked_name(p, name)
        {
            return self.not_found(name, p, report, now);
        }
        // "金奖是谁拿的": a prize the report does not have.
        if let Some(typed) = &p.unknown_prize
            && p.mentions.is_empty()
            && strong_fact.is_none()
            && !antifraud
        {
            let mut d = Decision::plain(Reply::Prizes { report }, Intent::Awards);
            d.notices.push(super::answer::Notice::NoSuchPrize {
                typed: typed.clone(),
            });
            d.verdict = (op == Op::Verify).then_some(false);
            return d;
        }
        // "三等奖(最佳人气)": the 最佳人气奖 has no levels.
        if p.levels.len() >= 2 && p.levels.contains(&Level::MostPopular) && p.mentions.is_empty() {
            let mut d = Decision::plain(Reply::Prizes { report }, Intent::Awards);
            d.notices.push(super::answer::Notice::NoSuchPrize {
                typed: p.text.trim().to_string(),
            });
            d.verdict = (op == Op::Verify).then_some(false);
            return d;
        }
        // "二等奖和三等奖分别是谁", "一二等奖": several levels at once.
        if p.levels.len() >= 2 && p.mentions.is_empty() && !antifraud {
            let mut q = Query::new(Op::Lookup, About::Prizes, report).with_filter(filter);
            q.levels = p.levels.clone();
            if op == Op::Count {
                q.op = Op::Count;
                q.counted = Self::counted_of(p, filter);
            }
            return self.query(q, p, now);
        }
        // "世界杯冠军是哪个国家": prize words amid much unexplained text are not
        // about this contest.
        let about_contest = p.unexplained <= 2 || filter.group.is_some() || filter.kind.is_some();
        let prize_question = about_contest && (filter.level.is_some() || p.cue(Cue::ListAll))
            || ((filter.group.is_some() || filter.kind.is_some())
                && (award_cue || p.cue(Cue::ListInstitutions) || op == Op::Count)
                && p.unknown_name.is_none());
        if prize_question && institutions.is_empty() && (award_cue || !antifraud) {
            // "个人一等奖获得者被推荐申报什么": about the prize, not who won it.
            let asks_who = p.cue(Cue::AsksWho);
            // "有多少个团队参赛": a figure the report states, not a count of
            // the award list (that one asks about prizes: "多少个团队获奖").
            let stated_figure = op == Op::Count && !p.cue(Cue::Award);
            if let Some((f, groups, score)) = strong_fact
                && filter.group.is_none()
                && ((groups >= 2 && filter.level.is_none()) || (score >= 4 && !asks_who))
                && !p.cue(Cue::ListAll)
                && (op != Op::Count || stated_figure)
            {
                return self.fact_query(p, f, report, op, now);
            }
            let mut q = Query::new(Op::Lookup, About::Prizes, report).with_filter(filter);
            if op == Op::Count {
                q.op = Op::Count;
                q.counted = Self::counted_of(p, filter);
            } else if p.cue(Cue::ListInstitutions) {
                q.op = Op::Institutions;
            }
            return self.query(q, p, now);
        }
        // "多少家单位获奖", "一共有多少个获奖名额": counts over the whole list
        // (unless a fact states the number: "有多少个团队参赛").
        if op == Op::Count
            && p.mentions.is_empty()
            && (award_cue || !p.units.is_empty())
            && (fact.is_none() || (award_cue && strong_fact.is_none_or(|(_, g, _)| g < 2)))
            && !antifraud
        {
            let mut q = Query::new(Op::Count, About::Prizes, report).with_filter(filter);
            q.counted = Self::counted_of(p, filter);
            return self.query(q, p, now);
        }
        // "获奖的保险公司有哪些": institutions of a group.
        if p.cue(Cue::ListInstitutions)
            && p.mentions.is_empty()
            && p.cue(Cue::Award)
            && strong_fact.is_none()
            && !antifraud
        {
            let q = Query {
                op: Op::Institutions,
                ..Query::new(Op::Institutions, About::Prizes, report).with_filter(filter)
            };
            return self.query(q, p, now);
        }
        if !institutions.is_empty()
            && (award_cue || !antifraud)
            && strong_fact.is_none_or(|(_, g, _)| g < 2 || award_cue)
        {
            let mut q =
                Query::new(Op::Lookup, About::Entities(institutions), report).with_filter(filter);
            q.corrected = corrected;
            q.all_years = p.cue(Cue::AllYears);
            match op {
                Op::Verify => {
                    q.op = Op::Verify;
                    q.filter = PrizeFilter::default();
                    q.claims = self.entity_claims(p, &[]);
                }
                Op::Count => q.op = Op::Count,
                _ => {}
            }
            return self.query(q, p, now);
        }
        let case = self.best_case(p, report);
        let topic = self.best_topic(p);
        let topic_score = topic.as_ref().map_or(0, |(_, s)| *s);
        let topic = topic.map(|(t, _)| t);
        if let Some((c, case_score)) = case
            && (p.cue(Cue::Case) || topic.is_none() || self.case_specific(p, report, c) > 0)
            && strong_fact.is_none_or(|(_, g, s)| g < 2 && s <= case_score)
        {
            let q = Query::new(Op::Lookup, About::Case(c), report);
            return self.query(q, p, now);
        }
        // "张伟获得了什么奖": an unknown name outweighs a loose one-word fact match.
        if let Some(name) = &p.unknown_name
            && (award_cue || p.cue(Cue::Identity))
            && fact.is_none_or(|(_, g, s)| g < 2 && s < 4)
            && topic.is_none()
            && self.is_asked_name(p, name)
        {
            return self.not_found(name, p, report, now);
        }
        if let Some((f, groups, score)) = fact
            && (groups >= 2
                || (topic.is_none() && !p.cue(Cue::AntiFraud))
                || (score >= 3 && score > topic_score))
        {
            return self.fact_query(p, f, report, op, now);
        }
        if topic.is_some() || p.cue(Cue::AntiFraud) || p.cue(Cue::AfterScam) {
            let after = p.cue(Cue::AfterScam);
            // General advice ("老人怎么防骗") is an overview of every scam.
            let topic = topic.filter(|t| !self.is_overview_topic(t));
            let q = Query::new(Op::Lookup, About::Tips { topic, after }, report);
            return self.query(q, p, now);
        }
        if p.cue(Cue::Help) {
            return Decision::plain(Reply::Help, Intent::Help);
        }
        if p.cue(Cue::About) && p.unknown_name.is_none() {
            return Decision::plain(Reply::About, Intent::About);
        }
        if let Some(name) = &p.unknown_name
            && ((award_cue || p.cue(Cue::Identity)) && self.is_asked_name(p, name)
                || self.looks_like_name(p, name))
        {
            return self.not_found(name, p, report, now);
        }
        if p.cue(Cue::Greeting) && p.unexplained <= 1 {
            return Decision::plain(Reply::Welcome, Intent::Start);
        }
        // "在哪儿办的", "哪天办的": no subject named — the report's main one
        // (its first subject, the contest).
        if let Some(main) = self.subjects[report].first().and_then(|s| s.virtual_id)
            && p.has_cjk
            && p.unexplained <= 2
        {
            let mut with_main = p.clone();
            with_main.add_keyword(main, 2);
            if let Some((f, groups, _)) = self.best_fact(&with_main, report)
                && groups >= 2
                && self.knowledge.reports[report].facts[f].subject
                    == self.knowledge.reports[report].subjects[0].id
            {
                return self.fact_query(&with_main, f, report, op, now);
            }
        }
        // "Who won the 2021 contest?": a year not covered, about the contest.
        if self.uncovered_year(p).is_some() && (award_cue || self.subject_in(p, report) == Some(0))
        {
            return self.query(Query::new(Op::Lookup, About::Prizes, report), p, now);
        }
        Decision::plain(Reply::Fallback, Intent::Fallback)
    }

    /// A fact question: the subject its words name (or the fact's own), the
    /// words to choose the fact by, and for a yes/no question the claims.
    fn fact_query(&self, p: &Parsed, fact: usize, report: usize, op: Op, now: Instant) -> Decision {
        let r = &self.knowledge.reports[report];
        let subject = r
            .subjects
            .iter()
            .position(|s| s.id == r.facts[fact].subject);
        let about = subject.map_or(About::Facts, About::Subject);
        let mut q = Query::new(Op::Lookup, about, report);
        q.words = if op == Op::Verify {
            self.with_claim_words(p).keywords
        } else {
            p.keywords.clone()
        };
        if op == Op::Verify {
            q.op = Op::Verify;
            q.claims = self.fact_claims(p, report);
        }
        self.query(q, p, now)
    }

    /// Several readings of one name: answer what can be answered, offer the
    /// readings (and remember them for "1", "2" or "不是这个").
    pub(super) fn ambiguous(
        &self,
        typed: String,
        options: Vec<EntityId>,
        report: usize,
        now: Instant,
        similar: bool,
    ) -> Decision {
        let wins = options.iter().map(|id| self.wins_of(*id, report)).collect();
        let turn = Turn {
            alternatives: options.clone(),
            ..self.turn(
                Query::new(Op::Lookup, About::Entities(Vec::new()), report),
                Intent::Ambiguous,
                now,
            )
        };
        Decision {
            turn: Some(turn),
            ..Decision::plain(
                Reply::Ambiguous {
                    typed,
                    options,
                    wins,
                    similar,
                },
                Intent::Ambiguous,
            )
        }
    }

    /// A name that is not in the report: say so, or offer names close to it.
    fn not_found(&self, name: &str, p: &Parsed, report: usize, now: Instant) -> Decision {
        match self.similar_names(name) {
            super::similar::Verdict::One(id) => {
                let mut q = Query::new(op_of_lookup(p), About::Entities(vec![id]), report);
                q.corrected = Some(name.to_string());
                if q.op == Op::Verify {
                    q.claims = self.entity_claims(p, &[]);
                }
                self.query(q, p, now)
            }
            super::similar::Verdict::Several(ids) => {
                self.ambiguous(name.to_string(), ids, report, now, true)
            }
            super::similar::Verdict::None => {
                let mut d = Decision::plain(
                    Reply::NotFound {
                        name: name.to_string(),
                    },
                    Intent::NotFound,
                );
                d.verdict = (p.cue(Cue::Verify)).then_some(false);
                d
            }
        }
    }

    /// The family name in "姓郭的…" / "姓郭", if it is one.
    fn family_name(&self, p: &Parsed) -> Option<char> {
        let marker = self.knowledge.lexicon.family_marker.as_str();
        if marker.is_empty() {
            return None;
        }
        let at = p.text.find(marker)?;
        let c = p.text[at + marker.len()..].chars().next()?;
        let known = self
            .knowledge
            .lexicon
            .surnames
            .iter()
            .any(|s| s.starts_with(c));
        known.then_some(c)
    }

    /// A message that is just a name: a family name and one or two more
    /// characters, or a word ending like a team or institution.
    fn looks_like_name(&self, p: &Parsed, name: &str) -> bool {
        p.unexplained <= name.chars().count() && self.is_name_like(name)
    }

    /// A family name and one or two more characters, or a word ending like
    /// a team or an institution (宁波银行, 飞虎队).
    pub(super) fn is_name_like(&self, name: &str) -> bool {
        let chars: Vec<char> = name.chars().collect();
        let lx = &self.knowledge.lexicon;
        let person = (2..=3).contains(&chars.len())
            && chars.iter().all(|c| super::normalize::is_cjk(*c))
            && lx.surnames.iter().any(|s| name.starts_with(s.as_str()));
        // An ending after at least two characters of name (宁波+银行, 飞虎+队),
        // not after a measure word (个+团队).
        let org = lx.name_endings.iter().any(|e| {
            name.strip_suffix(e.as_str()).is_some_and(|stem| {
                stem.chars().count() >= 2
                    && !lx.measure_words.iter().any(|m| stem.ends_with(m.as_str()))
            })
        });
        person || org
    }

    /// In an English question about prizes, the Latin words left over are the
    /// name asked about ("What did Zhang Wei win?").
    fn is_asked_name(&self, p: &Parsed, name: &str) -> bool {
        let latin = name.is_ascii()
            && name.chars().filter(|c| c.is_ascii_alphabetic()).count() >= 3
            && p.unknown_capitalized;
        latin || self.is_name_like(name)
    }

    /// A short message that leans on the last answer.
    pub(super) fn follow_up(
        &self,
        p: &Parsed,
        prev: &Turn,
        now: Instant,
        report: usize,
    ) -> Option<Decision> {
        // A prize the report does not have ("金奖是谁拿的") is answered as
        // such, whatever was asked before: never as the last name's awards.
        if p.unknown_prize.is_some() {
            return None;
        }
        let again = |q: Query| {
            let mut d = self.query(q, p, now);
            if let Some(t) = d.turn.as_mut() {
                t.followups = prev.followups + 1;
            }
            d
        };
        // A number, or one of the names, picks one of the readings offered;
        // the others stay available for "不是这个".
        let picked = p
            .choice
            .and_then(|n| prev.alternatives.get(n - 1).copied())
            .or_else(|| {
                // "平安人寿", or just "人寿" when only one reading has it.
                p.mentions.iter().find_map(|m| {
                    let hits: Vec<EntityId> = m
                        .ids
                        .iter()
                        .copied()
                        .filter(|id| prev.alternatives.contains(id))
                        .collect();
                    (hits.len() == 1).then(|| hits[0])
                })
            })
            .or_else(|| self.pick_by_part(p, &prev.alternatives));
        if let Some(id) = picked {
            let mut d = self.query(
                Query::new(Op::Lookup, About::Entities(vec![id]), report),
                p,
                now,
            );
            if let Some(t) = d.turn.as_mut() {
                t.alternatives = prev
                    .alternatives
                    .iter()
                    .copied()
                    .filter(|a| *a != id)
                    .collect();
            }
            return Some(d);
        }
        let named: Vec<&Mention> = p.mentions.iter().filter(|m| !m.corrected).collect();
        let filter = Self::filter_of(p);
        let op = op_of(p);
        // "不对": offer the other readings, or help. "不对,我问的是保险组"
        // carries its own correction and is handled as a follow-up below.
        if p.cue(Cue::Wrong) && p.mentions.is_empty() && filter.is_empty() {
            if prev.alternatives.is_empty() {
                return Some(Decision::plain(Reply::Help, Intent::Help));
            }
            if let [only] = prev.alternatives.as_slice() {
                return Some(again(Query::new(
                    Op::Lookup,
                    About::Entities(vec![*only]),
                    report,
                )));
            }
            return Some(self.ambiguous(
                String::new(),
                prev.alternatives.clone(),
                report,
                now,
                false,
            ));
        }
        let case = match prev.query.about {
            About::Case(c) => Some(c),
            _ => None,
        };
        // "为什么 / 怎么防" after a case: the tips for its scam types.
        if p.cue(Cue::Why)
            && p.mentions.is_empty()
            && let Some(case) = case
        {
            let topics = self.knowledge.reports[prev.query.report].antifraud.cases[case]
                .topics
                .clone();
            let mut d = Decision::plain(self.tips_for(&topics), Intent::Tips);
            d.turn = Some(Turn {
                followups: prev.followups + 1,
                at: now,
                ..prev.clone()
            });
            return Some(d);
        }
        // The subject the last question was about (a fact's subject, or the
        // subject of the case told), and the people its answer named.
        let prev_subject = match &prev.query.about {
            About::Subject(s) => Some(*s),
            About::Case(c) => self.case_subject(prev.query.report, *c),
            _ => None,
        };
        let own_subject = self.subject_in(p, report).is_some();
        let pronoun = p.cue(Cue::PronounPerson) || p.cue(Cue::PronounPlural);
        // "她多大年纪", "钱去哪了", "他是什么职务", "交易额呢": a fact of the
        // subject (or person) just talked about.
        let institutions_only = p.mentions.iter().all(|m| {
            m.ids
                .iter()
                .all(|id| self.index.entities[*id].kind == EntityKind::Institution)
        });
        if (p.mentions.is_empty() || (institutions_only && !p.cue(Cue::Award)))
            && filter.is_empty()
            && !own_subject
        {
            let subject = if pronoun && !prev.people.is_empty() {
                prev.people.first().copied()
            } else {
                prev_subject
            };
            if let Some(s) = subject
                && let Some(v) = self.subjects[prev.query.report][s].virtual_id
            {
                let mut merged = if op == Op::Verify {
                    self.with_claim_words(p)
                } else {
                    p.clone()
                };
                merged.add_keyword(v, 3);
                let own = self.best_fact(p, report);
                if let Some((f, groups, _)) = self.best_fact_with(&merged, p, prev.query.report)
                    && self.knowledge.reports[prev.query.report].facts[f].subject
                        == self.knowledge.reports[prev.query.report].subjects[s].id
                    && (groups >= 2 || pronoun)
                    && own.is_none_or(|(of, og, _)| og < 2 || of == f)
                    && self.best_topic(p).is_none_or(|_| case.is_some())
                {
                    let mut q = Query::new(Op::Lookup, About::Subject(s), prev.query.report);
                    q.words = merged.keywords;
                    if op == Op::Verify {
                        q.op = Op::Verify;
                        q.claims = self.fact_claims(p, prev.query.report);
                    }
                    return Some(again(q));
                }
            }
        }
        // A detail of the case just told that no fact states: the case
        // again, which holds every detail the report gives.
        if let Some(c) = case
            && p.mentions.is_empty()
            && filter.is_empty()
            && self.best_fact(p, report).is_none_or(|(_, g, _)| g < 2)
            && self.best_topic(p).is_none()
            && !p.cue(Cue::AntiFraud)
        {
            return Some(again(Query::new(
                Op::Lookup,
                About::Case(c),
                prev.query.report,
            )));
        }
        let prize_only = p.mentions.is_empty() && p.unknown_name.is_none() && !filter.is_empty();
        let elliptic = p.cue(Cue::Followup)
            || p.cue(Cue::Wrong)
            || (prize_only && !p.cue(Cue::Award) && !p.cue(Cue::ListAll));
        let prev_entities = prev.query.entities();
        // "同单位还有谁": the institution of the last person or team.
        if p.mentions.is_empty() && p.cue(Cue::SameInstitution) {
            let base = if prev_entities.is_empty() {
                &prev.shown
            } else {
                prev_entities
            };
            let inst = self.institutions_of(base, prev.query.report);
            if !inst.is_empty() {
                return Some(again(
                    Query::new(Op::Lookup, About::Entities(inst), prev.query.report)
                        .with_filter(filter),
                ));
            }
        }
        // "同等级还有谁", "同组同等级还有谁": the prize of the last person or team.
        if p.mentions.is_empty() && p.cue(Cue::SamePrize) {
            if let Some(prize) = prev_entities
                .first()
                .and_then(|id| self.first_prize_of(*id, prev.query.report))
            {
                let f = PrizeFilter {
                    group: prize.group,
                    kind: Some(prize.kind),
                    level: Some(prize.level),
                };
                return Some(again(
                    Query::new(Op::Lookup, About::Prizes, prev.query.report).with_filter(f),
                ));
            }
        }
        // Pronouns: "他是哪个单位的", "这家银行还得了什么奖", "他是银行组的吗",
        // "他和董兰兰谁的奖好".
        let any_pronoun = pronoun
            || p.cue(Cue::PronounTeam)
            || p.cue(Cue::PronounInstitution)
            || p.cue(Cue::Pronoun);
        let named_ids: Vec<EntityId> = named
            .iter()
            .filter(|m| m.ids.len() == 1)
            .map(|m| m.ids[0])
            .collect();
        if any_pronoun
            && (p.mentions.is_empty() || (op == Op::Compare && !named_ids.is_empty()))
            && (!prev_entities.is_empty() || !prev.shown.is_empty())
            && !matches!(prev.query.about, About::Subject(_) | About::Facts)
        {
            let (mut target, asks_where) = self.pronoun_target(p, prev);
            if !target.is_empty() {
                if op == Op::Compare {
                    target.truncate(1);
                    for id in &named_ids {
                        if !target.contains(id) {
                            target.push(*id);
                        }
                    }
                }
                let mut q = Query::new(
                    Op::Lookup,
                    About::Entities(target.clone()),
                    prev.query.report,
                )
                .with_filter(filter);
                match op {
                    Op::Verify => {
                        q.op = Op::Verify;
                        q.filter = PrizeFilter::default();
                        q.claims = self.entity_claims(p, &[]);
                    }
                    Op::Count => q.op = Op::Count,
                    Op::Compare if target.len() >= 2 => {
                        q.op = Op::Compare;
                        q.by_level = p.cue(Cue::RankLevel) && !p.cue(Cue::RankCount);
                        q.by_count = p.cue(Cue::RankCount) && !p.cue(Cue::RankLevel);
                    }
                    _ => {}
                }
                let mut d = again(q);
                // After "which bank is she from?", "that bank" / "they" is the bank.
                if asks_where && let Some(t) = d.turn.as_mut() {
                    let institutions = self.institutions_of(&target, prev.query.report);
                    if !institutions.is_empty() {
                        t.query.about = About::Entities(institutions);
                    }
                }
                return Some(d);
            }
        }
        // "还有呢": the rest of a list.
        if p.cue(Cue::More) && named.is_empty() && filter.is_empty() {
            return Some(self.more(prev, now));
        }
        // "What did it win?", "How many exactly?" after a ranking: its top.
        if prev.intent == Intent::Rank
            && p.mentions.is_empty()
            && filter.is_empty()
            && !prev.shown.is_empty()
            && (op == Op::Count || p.cue(Cue::Award) || any_pronoun)
        {
            let mut q = Query::new(Op::Lookup, About::Entities(prev.shown.clone()), report);
            if op == Op::Count {
                q.op = Op::Count;
            }
            return Some(again(q));
        }
        // Follow-ups to a fact: "什么时候?" after "比赛在哪里举行", "那平台呢".
        if matches!(prev.query.about, About::Subject(_) | About::Facts)
            && p.mentions.is_empty()
            && filter.is_empty()
        {
            let mut merged = p.clone();
            for (k, len) in &prev.query.words {
                // A new subject replaces the old one; the rest carries over.
                if merged.keyword(*k).is_none() {
                    merged.add_keyword(*k, *len);
                }
            }
            let own = self.best_fact(p, report);
            if let Some((f, groups, _)) = self.best_fact_with(&merged, p, prev.query.report)
                && own.is_none_or(|(of, og, _)| og < 2 && of != f)
                && (groups >= 2 || p.cue(Cue::Pronoun))
                && self.best_topic(p).is_none()
            {
                let r = &self.knowledge.reports[prev.query.report];
                let subject = r.subjects.iter().position(|s| s.id == r.facts[f].subject);
                let mut q = Query::new(
                    Op::Lookup,
                    subject.map_or(About::Facts, About::Subject),
                    prev.query.report,
                );
                q.words = merged.keywords;
                return Some(again(q));
            }
        }
        // "那保险组呢", "二等奖呢", "个人的呢": change one part of the last
        // selection, keeping what was asked of it (who, how many, which most).
        if prize_only && elliptic {
            let mut q = prev.query.clone();
            match &q.about {
                About::Prizes => {
                    q.filter = filter.over(prev.query.filter);
                    if q.op == Op::Verify {
                        q.op = Op::Lookup;
                    }
                    if op == Op::Count {
                        q.op = Op::Count;
                    }
                    return Some(again(q));
                }
                About::Entities(_) if matches!(q.op, Op::Count | Op::Lookup) => {
                    q.filter = filter.over(prev.query.filter);
                    return Some(again(q));
                }
                _ => {}
            }
        }
        // "其中个人奖有谁" after what an institution won: the same names,
        // narrowed.
        if p.mentions.is_empty()
            && !filter.is_empty()
            && !prev_entities.is_empty()
            && prev.intent == Intent::Count
        {
            let q = Query::new(Op::Lookup, About::Entities(prev_entities.to_vec()), report)
                .with_filter(filter);
            return Some(again(q));
        }
        // "都列出来", "都是谁" after a count: the list itself.
        if p.mentions.is_empty()
            && filter.is_empty()
            && prev.intent == Intent::Count
            && (p.cue(Cue::Award) || p.cue(Cue::ListAll))
            && op == Op::Lookup
        {
            let mut q = prev.query.clone();
            q.op = Op::Lookup;
            return Some(again(q));
        }
        // "得了几等奖", "几个?", "那谁的奖级别高": the same names, a new question.
        if p.mentions.is_empty()
            && p.unknown_name.is_none()
            && !prev_entities.is_empty()
            && (filter.is_empty() || op == Op::Verify)
            && (op != Op::Lookup || p.cue(Cue::Award) || p.cue(Cue::Identity))
            && op != Op::Rank
            && self.best_fact(p, report).is_none()
            && self.best_topic(p).is_none()
        {
            let mut q = Query::new(
                op,
                About::Entities(prev_entities.to_vec()),
                prev.query.report,
            );
            match op {
                Op::Verify => q.claims = self.entity_claims(p, &[]),
                Op::Compare if prev_entities.len() < 2 => q.op = Op::Lookup,
                Op::Compare => {
                    q.by_level = p.cue(Cue::RankLevel) && !p.cue(Cue::RankCount);
                    q.by_count = p.cue(Cue::RankCount) && !p.cue(Cue::RankLevel);
                }
                _ => {}
            }
            return Some(again(q));
        }
        // "那郭胜呢", "稠州呢", "那俞辉和李彬呢", "那人保呢,几个": new names, the
        // same question.
        if (elliptic || op != Op::Lookup)
            && !named.is_empty()
            && matches!(prev.query.about, About::Entities(_))
        {
            let ids: Vec<EntityId> = named
                .iter()
                .filter(|m| m.ids.len() == 1)
                .map(|m| m.ids[0])
                .collect();
            if !ids.is_empty() && (elliptic || op == prev.query.op) {
                let mut q = prev.query.clone();
                q.about = About::Entities(ids);
                q.corrected = None;
                if op != Op::Lookup && op != q.op {
                    q.op = op;
                }
                if q.op == Op::Compare && q.entities().len() < 2 {
                    q.op = Op::Lookup;
                }
                return Some(again(q));
            }
        }
        None
    }

    /// "财险那家" after 平安: the one reading whose name has a part of the
    /// message (two characters or more) that the others lack.
    fn pick_by_part(&self, p: &Parsed, options: &[EntityId]) -> Option<EntityId> {
        if options.len() < 2 {
            return None;
        }
        let chars: Vec<char> = p.text.chars().collect();
        let mut found: Option<EntityId> = None;
        for pair in chars.windows(2) {
            if !pair.iter().all(|c| super::normalize::is_cjk(*c)) {
                continue;
            }
            let part: String = pair.iter().collect();
            let having: Vec<EntityId> = options
                .iter()
                .copied()
                .filter(|id| self.index.entities[*id].name.contains(&part))
                .collect();
            if let [one] = having.as_slice() {
                if found.is_some_and(|f| f != *one) {
                    return None;
                }
                found = Some(*one);
            }
        }
        found
    }

    /// "还有呢" after a list.
    fn more(&self, prev: &Turn, now: Instant) -> Decision {
        let next = || {
            let mut d = Decision::plain(Reply::NoMore, Intent::NoMore);
            d.turn = Some(Turn {
                at: now,
                followups: prev.followups + 1,
                ..prev.clone()
            });
            d
        };
        match &prev.query.about {
            About::Prizes if prev.query.op == Op::Lookup => {
                let level = prev
                    .query
                    .filter
                    .level
                    .and_then(|l| self.next_level(prev.query.report, l));
                match level {
                    Some(level) => {
                        let q = Query::new(Op::Lookup, About::Prizes, prev.query.report)
                            .with_filter(PrizeFilter {
                                level: Some(level),
                                ..prev.query.filter
                            });
                        self.run(q, now)
                    }
                    None => next(),
                }
            }
            // "建行得了什么团体奖" → "还有呢": the awards not shown.
            About::Entities(ids) if !prev.query.filter.is_empty() => {
                let q = Query::new(Op::Lookup, About::Entities(ids.clone()), prev.query.report);
                let mut d = self.run(q, now);
                if let Reply::Won { wins, partial, .. } = &mut d.reply {
                    let r = &self.knowledge.reports[prev.query.report];
                    for w in wins.iter_mut() {
                        w.awards
                            .retain(|i| !prev.query.filter.matches(&r.awards[*i].prize()));
                    }
                    *partial = true;
                }
                d
            }
            About::Tips { .. } => {
                let mut d = Decision::plain(self.tips(None, false), Intent::Tips);
                d.turn = next().turn;
                d
            }
            _ => next(),
        }
    }

    /// The institutions of people or teams (institutions stay themselves).
    pub(super) fn institutions_of(&self, ids: &[EntityId], report: usize) -> Vec<EntityId> {
        let mut out = Vec::new();
        for id in ids {
            let e = &self.index.entities[*id];
            let name = if e.kind == EntityKind::Institution {
                Some(e.name.as_str())
            } else {
                self.knowledge.reports[report]
                    .awards
                    .iter()
                    .find(|a| a.winner == e.name)
                    .map(|a| a.institution.as_str())
            };
            if let Some(i) = name.and_then(|n| {
                self.index
                    .entities
                    .iter()
                    .position(|x| x.kind == EntityKind::Institution && x.name == n)
            }) && !out.contains(&i)
            {
                out.push(i);
            }
        }
        out
    }

    /// Which of the last entities a pronoun points at: 他/她 → a person,
    /// 这个队 → a team, 这家银行 → the institution (of the person, if need be).
    /// Also says whether the question asks where the target is from.
    fn pronoun_target(&self, p: &Parsed, prev: &Turn) -> (Vec<EntityId>, bool) {
        let kind_of = |id: &EntityId| self.index.entities[*id].kind;
        let plural = p.cue(Cue::PronounPlural);
        let person = !plural && p.cue(Cue::PronounPerson);
        let team =
            p.cue(Cue::PronounTeam) || (!person && p.kinds.contains(&crate::knowledge::Kind::Team));
        let prev_entities = prev.query.entities();
        let base: Vec<EntityId> = if prev_entities.is_empty() {
            prev.shown.clone()
        } else {
            prev_entities.to_vec()
        };
        let pick = |kind: EntityKind| -> Vec<EntityId> {
            let from_base: Vec<EntityId> = base
                .iter()
                .copied()
                .filter(|id| kind_of(id) == kind)
                .collect();
            if !from_base.is_empty() {
                return from_base;
            }
            prev.shown
                .iter()
                .copied()
                .filter(|id| kind_of(id) == kind)
                .collect()
        };
        let mut target = if person {
            pick(EntityKind::Person)
        } else if team {
            pick(EntityKind::Team)
        } else {
            base.clone()
        };
        if target.is_empty() {
            target = base;
        }
        // "这家银行的个人奖呢", "that company": the institution itself.
        let asks_where = p.cue(Cue::Identity) || p.cue(Cue::ListInstitutions);
        let institution_word = p.units.contains(&Counted::Institutions);
        let asks_more = p.cue(Cue::Award) && !asks_where;
        if p.cue(Cue::PronounInstitution) || (institution_word && asks_more) {
            return (self.institutions_of(&target, prev.query.report), false);
        }
        (target, asks_where || institution_word)
    }

    /// The fact subject a clause names, if any.
    pub(super) fn subject_in(&self, p: &Parsed, report: usize) -> Option<usize> {
        self.subjects[report]
            .iter()
            .position(|s| s.words.iter().any(|k| p.keyword(*k).is_some()))
    }

    /// The subject whose story a case is.
    fn case_subject(&self, report: usize, case: usize) -> Option<usize> {
        let r = &self.knowledge.reports[report];
        let id = &r.antifraud.cases[case].id;
        r.subjects
            .iter()
            .position(|s| s.case.as_deref() == Some(id.as_str()))
    }
}

/// The operator for a name read by similarity: a yes/no question stays one.
fn op_of_lookup(p: &Parsed) -> Op {
    match op_of(p) {
        Op::Verify => Op::Verify,
        Op::Count => Op::Count,
        _ => Op::Lookup,
    }
}

#[cfg(test)]
mod tests {
    //! How questions become queries (what is executed is tested in exec).
    use super::*;
    use crate::engine::{Context, Engine};

    /// The query each message of a conversation becomes.
    fn queries(messages: &[&str]) -> Vec<Query> {
        let e = Engine::builtin().expect("built-in data loads");
        let mut ctx = Context::default();
        let now = Instant::now();
        messages
            .iter()
            .map(|m| {
                e.answer(&mut ctx, m, None, now);
                ctx.last.as_ref().expect("a turn").query.clone()
            })
            .collect()
    }

    #[test]
    fn operators_come_from_the_form_of_the_question() {
        let q = queries(&[
            "戚迎是保险组的吗",
            "一共多少个团队获奖",
            "哪家保险公司获奖最多",
            "俞辉和吴峰谁的奖更好",
            "哪几家银行得了一等奖",
        ]);
        assert_eq!(q[0].op, Op::Verify);
        assert!(matches!(q[0].claims[0], Claimed::Prize(_)));
        assert_eq!((q[1].op, q[1].counted), (Op::Count, Counted::Teams));
        assert_eq!(q[2].op, Op::Rank);
        assert_eq!(q[2].filter.group, Some(crate::knowledge::Group::Insurance));
        assert_eq!(q[3].op, Op::Compare);
        assert_eq!(q[3].entities().len(), 2);
        assert_eq!(q[4].op, Op::Institutions);
    }

    #[test]
    fn a_follow_up_changes_one_part_of_the_last_query() {
        let q = queries(&["银行组个人优胜奖有几个人", "保险组呢"]);
        assert_eq!(q[1].op, Op::Count, "still a count");
        assert_eq!(q[1].filter.group, Some(crate::knowledge::Group::Insurance));
        assert_eq!(q[1].filter.level, q[0].filter.level);
        let q = queries(&["李彬是一等奖吗", "那郭胜呢"]);
        assert_eq!(q[1].op, Op::Verify, "still a yes/no question");
        assert_ne!(q[1].entities(), q[0].entities());
    }
}
