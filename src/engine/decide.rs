//! Deciding what a message asks for, with the conversation so far.

use super::Engine;
use super::context::Turn;
use super::index::{Cue, EntityId, EntityKind};
use super::reply::{EntityWins, Intent, PrizeFilter, PrizeWinners, Reply};
use super::understand::{Mention, Parsed};
use crate::knowledge::Level;
use std::time::Instant;

type Decision = (Reply, Intent, Option<Turn>);

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
            return (Reply::Fallback, Intent::Fallback, None);
        }
        let report = self.report_for(p);
        let (reply, intent, turn) = match self.follow_up(p, prev, now, report) {
            Some(d) => d,
            None => self.fresh(p, now, report),
        };
        let turn = turn.map(|mut t| {
            t.shown = self.shown_in(&reply);
            if intent == Intent::Fact && t.keywords.is_empty() {
                t.keywords = p.keywords.clone();
                // A run of fact questions keeps its subject ("平台 … 部门 … 调用").
                if let Some(prev) = prev.filter(|t| t.intent == Intent::Fact) {
                    for (k, len) in &prev.keywords {
                        if t.keywords.len() < 24 && !t.keywords.iter().any(|(id, _)| id == k) {
                            t.keywords.push((*k, *len));
                        }
                    }
                }
                if let Reply::Fact { report, fact } = &reply {
                    t.keywords
                        .extend(self.fact_people[*report][*fact].iter().map(|k| (*k, 3)));
                }
            }
            t
        });
        (reply, intent, turn)
    }

    /// People and teams a reply lists.
    fn shown_in(&self, reply: &Reply) -> Vec<EntityId> {
        let mut names: Vec<&str> = Vec::new();
        match reply {
            Reply::Winners {
                report, sections, ..
            } => {
                for s in sections {
                    for i in &s.awards {
                        names.push(&self.knowledge.reports[*report].awards[*i].winner);
                    }
                }
            }
            Reply::Won { wins, .. } | Reply::Ambiguous { wins, .. } => {
                for w in wins {
                    for i in &w.awards {
                        names.push(&self.knowledge.reports[w.report].awards[*i].winner);
                    }
                }
            }
            _ => {}
        }
        let mut out = Vec::new();
        for name in names {
            if let Some(id) = self
                .index
                .entities
                .iter()
                .position(|e| e.kind != EntityKind::Institution && e.name == name)
                && !out.contains(&id)
            {
                out.push(id);
            }
        }
        out
    }

    /// `/cmd[@bot] args` typed as text behaves like the command.
    fn command(&self, message: &str, prev: Option<&Turn>, now: Instant) -> Option<Decision> {
        let text = message.trim_start();
        let rest = text.strip_prefix('/').or_else(|| text.strip_prefix('／'))?;
        let (head, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let name = head.split('@').next().unwrap_or("").to_ascii_lowercase();
        let args = args.trim();
        let plain = |r: Reply, i: Intent| Some((r, i, None));
        match name.as_str() {
            "start" => match args {
                "tips" | "antifraud" => plain(self.tips(None), Intent::Tips),
                "awards" => plain(self.winners(0, PrizeFilter::default()), Intent::Awards),
                "subscribe" => plain(Reply::Subscribe, Intent::Subscribe),
                _ => plain(Reply::Welcome, Intent::Start),
            },
            "help" => plain(Reply::Help, Intent::Help),
            "about" => plain(Reply::About, Intent::About),
            "reports" => plain(Reply::Reports, Intent::Reports),
            "awards" => plain(self.winners(0, PrizeFilter::default()), Intent::Awards),
            "subscribe" => plain(Reply::Subscribe, Intent::Subscribe),
            "unsubscribe" => plain(Reply::Unsubscribe, Intent::Unsubscribe),
            "tips" => {
                let p = super::understand::parse(&self.index, args);
                let topic = self.best_topic(&p).map(|(t, _)| t);
                plain(self.tips(topic.as_deref()), Intent::Tips)
            }
            "winner" | "who" | "ask" => {
                if args.is_empty() {
                    return plain(Reply::Help, Intent::Help);
                }
                let p = super::understand::parse(&self.index, args);
                // A bare name after /winner is a lookup even without "获得".
                let report = self.report_for(&p);
                if let Some(d) = self.follow_up(&p, prev, now, report) {
                    return Some(d);
                }
                let d = self.fresh(&p, now, report);
                if d.1 == Intent::Fallback
                    && let Some(name) = p.unknown_name.clone()
                {
                    return plain(Reply::NotFound { name }, Intent::NotFound);
                }
                Some(d)
            }
            _ => plain(Reply::Help, Intent::Help),
        }
    }

    /// Which report a question is about: a year it names, else the newest.
    fn report_for(&self, p: &Parsed) -> usize {
        let reports = &self.knowledge.reports;
        if reports.len() > 1 {
            for (i, r) in reports.iter().enumerate() {
                let year = r.meta.year.to_string();
                if p.text.contains(&year) || p.text.contains(&r.meta.contest) {
                    return i;
                }
            }
        }
        0
    }

    fn filter_of(p: &Parsed) -> PrizeFilter {
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

    /// A short message that leans on the last answer.
    fn follow_up(
        &self,
        p: &Parsed,
        prev: Option<&Turn>,
        now: Instant,
        report: usize,
    ) -> Option<Decision> {
        let prev = prev?;
        let next = |mut t: Turn| {
            t.at = now;
            t.followups += 1;
            t
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
            });
        if let Some(id) = picked {
            let (reply, intent, turn) = self.won(&[id], None, None, now, report);
            let turn = turn.map(|t| Turn {
                alternatives: prev
                    .alternatives
                    .iter()
                    .copied()
                    .filter(|a| *a != id)
                    .collect(),
                ..t
            });
            return Some((reply, intent, turn));
        }
        let named: Vec<&Mention> = p.mentions.iter().filter(|m| !m.corrected).collect();
        let filter = Self::filter_of(p);
        // "不对": offer the other readings, or help. "不对,我问的是保险组"
        // carries its own correction and is handled as a follow-up below.
        if p.cue(Cue::Wrong) && p.mentions.is_empty() && filter.is_empty() {
            if prev.alternatives.is_empty() {
                return Some((Reply::Help, Intent::Help, None));
            }
            if let [only] = prev.alternatives.as_slice() {
                return Some(self.won(&[*only], None, None, now, report));
            }
            let options = prev.alternatives.clone();
            let wins = options.iter().map(|id| self.wins_of(*id, report)).collect();
            let turn = Turn {
                alternatives: options.clone(),
                ..next(prev.clone())
            };
            return Some((
                Reply::Ambiguous {
                    typed: String::new(),
                    options,
                    wins,
                },
                Intent::Ambiguous,
                Some(turn),
            ));
        }
        // "为什么 / 怎么防" after a case: the tips for its scam types.
        if p.cue(Cue::Why)
            && p.mentions.is_empty()
            && let Some(case) = prev.case
        {
            let topics = self.knowledge.reports[prev.report].antifraud.cases[case]
                .topics
                .clone();
            let reply = self.tips_for(&topics);
            let turn = Turn {
                intent: Intent::Tips,
                ..next(prev.clone())
            };
            return Some((reply, Intent::Tips, Some(turn)));
        }
        // A detail of the case just told ("她多大年纪", "钱最后去哪了"): the
        // case again, which holds every detail the report gives.
        if prev.intent == Intent::Case
            && let Some(case) = prev.case
            && p.mentions.is_empty()
            && filter.is_empty()
            && self.best_fact(p, report).is_none_or(|(_, g, _)| g < 2)
            && self.best_topic(p).is_none()
        {
            return Some((
                Reply::Case {
                    report: prev.report,
                    case,
                },
                Intent::Case,
                Some(next(prev.clone())),
            ));
        }
        let prize_only = p.mentions.is_empty() && p.unknown_name.is_none() && !filter.is_empty();
        let elliptic = p.cue(Cue::Followup)
            || p.cue(Cue::Wrong)
            || (prize_only && !p.cue(Cue::Award) && !p.cue(Cue::ListAll));
        // Pronouns: "他是哪个单位的", "这家银行还得了什么奖", "这两个队是哪家的".
        if p.mentions.is_empty()
            && p.cue(Cue::Pronoun)
            && (!prev.entities.is_empty() || !prev.shown.is_empty())
            && prev.intent != Intent::Fact
        {
            let (target, affiliation) = self.pronoun_target(p, prev);
            if !target.is_empty() {
                let (reply, intent, turn) = self.won(&target, None, Some(filter), now, prev.report);
                // After "which bank is she from?", "that bank" / "they" is the bank.
                let turn = turn.map(|t| Turn {
                    entities: if affiliation {
                        self.institutions_of(&target, prev.report)
                    } else {
                        t.entities.clone()
                    },
                    ..t
                });
                return Some((reply, intent, turn));
            }
        }
        // "还有呢": the rest of a list.
        if p.cue(Cue::More) && named.is_empty() && filter.is_empty() {
            return Some(match prev.intent {
                Intent::WhoWon => {
                    let level = prev.filter.level.and_then(|l| {
                        let all = [Level::First, Level::Second, Level::Third, Level::Excellence];
                        all.iter()
                            .position(|x| *x == l)
                            .and_then(|i| all.get(i + 1).copied())
                    });
                    match level {
                        Some(level) => self.who_won(
                            PrizeFilter {
                                level: Some(level),
                                ..prev.filter
                            },
                            now,
                            prev.report,
                        ),
                        None => (Reply::NoMore, Intent::NoMore, Some(next(prev.clone()))),
                    }
                }
                Intent::Tips => {
                    let reply = self.tips(None);
                    (reply, Intent::Tips, Some(next(prev.clone())))
                }
                _ => (Reply::NoMore, Intent::NoMore, Some(next(prev.clone()))),
            });
        }
        // Follow-ups to a fact: "什么时候?" after "比赛在哪里举行", "他还担任什么职务".
        if prev.intent == Intent::Fact && p.mentions.is_empty() && filter.is_empty() {
            let mut merged = p.clone();
            for (k, len) in &prev.keywords {
                if merged.keyword(*k).is_none() {
                    merged.keywords.push((*k, *len));
                }
            }
            let own = self.best_fact(p, report);
            if let Some((f, groups, _)) = self.best_fact_with(&merged, p, prev.report)
                && own.is_none_or(|(of, og, _)| og < 2 && of != f)
                && (groups >= 2 || p.cue(Cue::Pronoun))
                && self.best_topic(p).is_none()
            {
                let (reply, intent, turn) = self.fact(prev.report, f, now);
                let turn = turn.map(|t| Turn {
                    keywords: merged.keywords.clone(),
                    ..t
                });
                return Some((reply, intent, turn));
            }
        }
        // "那保险组呢", "二等奖呢", "个人的呢": change one part of the last prize.
        if prize_only && elliptic && matches!(prev.intent, Intent::WhoWon | Intent::Awards) {
            return Some(self.who_won(filter.over(prev.filter), now, prev.report));
        }
        // "他们呢" / "那建行呢" after an institution: a new entity, same question.
        if elliptic && !named.is_empty() && prev.intent == Intent::WhatWon {
            let ids: Vec<EntityId> = named
                .iter()
                .filter(|m| m.ids.len() == 1)
                .map(|m| m.ids[0])
                .collect();
            if !ids.is_empty() {
                return Some(self.won(&ids, None, None, now, report));
            }
        }
        None
    }

    fn institutions_of(&self, ids: &[EntityId], report: usize) -> Vec<EntityId> {
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
        let text = p.text.as_str();
        let has = |words: &[&str]| words.iter().any(|w| text.contains(w));
        let plural = has(&[
            "他们", "她们", "这两", "这些", "这几", " they ", " them ", " these ", " their ",
        ]);
        let person = !plural
            && has(&[
                "他",
                "她",
                "此人",
                "这个人",
                " he ",
                " she ",
                " him ",
                " her ",
                " his ",
            ]);
        let team = has(&["队", "团队", " team"]);
        let base: Vec<EntityId> = if prev.entities.is_empty() {
            prev.shown.clone()
        } else {
            prev.entities.clone()
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
        let institution_pronoun = has(&[
            "这家",
            "那家",
            "该行",
            "该公司",
            "该单位",
            "这个单位",
            "他们单位",
            "她们单位",
            "他的单位",
            "她的单位",
            "that company",
            "this company",
            "this bank",
            "that bank",
            "that institution",
            "this institution",
        ]);
        // "他是哪个单位的", "which bank is she from": where the target is from.
        let asks_where =
            p.cue(Cue::Identity) || has(&["哪家", "哪个单位", "which", "where", " from"]);
        let institution_word = has(&[
            "单位",
            "公司",
            "银行",
            "机构",
            "institution",
            "company",
            " bank",
            " firm",
        ]);
        let asks_more = has(&[
            "还", "得了", "获得", "拿了", "else", " win", " won", " other",
        ]);
        if institution_pronoun || (institution_word && asks_more && !asks_where) {
            return (self.institutions_of(&target, prev.report), false);
        }
        (target, asks_where || institution_word)
    }

    /// A message read on its own.
    pub(super) fn fresh(&self, p: &Parsed, now: Instant, report: usize) -> Decision {
        if p.cue(Cue::Unsubscribe) {
            return (Reply::Unsubscribe, Intent::Unsubscribe, None);
        }
        if p.cue(Cue::Reports) && p.mentions.is_empty() {
            return (Reply::Reports, Intent::Reports, None);
        }
        // "哪个单位获奖最多": count per institution.
        if p.cue(Cue::Ranking) && p.mentions.is_empty() && p.unknown_name.is_none() {
            let r = &self.knowledge.reports[report];
            let mut rows: Vec<(String, usize)> = Vec::new();
            for a in &r.awards {
                match rows.iter_mut().find(|(name, _)| *name == a.institution) {
                    Some((_, n)) => *n += 1,
                    None => rows.push((a.institution.clone(), 1)),
                }
            }
            rows.sort_by_key(|r| std::cmp::Reverse(r.1));
            return (Reply::Ranking { report, rows }, Intent::Awards, None);
        }
        if p.cue(Cue::Subscribe) {
            return (Reply::Subscribe, Intent::Subscribe, None);
        }
        let filter = Self::filter_of(p);
        let award_cue = p.cue(Cue::Award) || p.cue(Cue::ListAll);
        let antifraud = p.cue(Cue::AntiFraud) || p.cue(Cue::Case);
        let fact = self.best_fact(p, report);
        let strong_fact = fact.filter(|(_, groups, score)| *groups >= 2 || *score >= 4);

        // Ambiguous names: answer what can be answered and offer the readings.
        let ambiguous: Vec<&Mention> = p.mentions.iter().filter(|m| m.ids.len() > 1).collect();
        let clear: Vec<&Mention> = p.mentions.iter().filter(|m| m.ids.len() == 1).collect();
        let people_teams: Vec<EntityId> = clear
            .iter()
            .map(|m| m.ids[0])
            .filter(|id| self.index.entities[*id].kind != EntityKind::Institution)
            .collect();
        let institutions: Vec<EntityId> = clear
            .iter()
            .map(|m| m.ids[0])
            .filter(|id| self.index.entities[*id].kind == EntityKind::Institution)
            .collect();

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
                return (
                    Reply::NotFound {
                        name: format!("姓{family}的获奖者"),
                    },
                    Intent::NotFound,
                    None,
                );
            }
            return self.won(&people, None, None, now, report);
        }
        if !people_teams.is_empty() {
            let corrected = clear.iter().find(|m| m.corrected).map(|m| m.typed.clone());
            if p.cue(Cue::AllYears) {
                return self.won_all_years(&people_teams, corrected, now, report);
            }
            return self.won(&people_teams, corrected, None, now, report);
        }
        if let Some(m) = ambiguous.first()
            && institutions.is_empty()
            && (!antifraud || award_cue)
        {
            let options = m.ids.clone();
            let wins = options.iter().map(|id| self.wins_of(*id, report)).collect();
            let turn = Turn {
                alternatives: options.clone(),
                ..self.turn(Intent::Ambiguous, report, PrizeFilter::default(), now)
            };
            return (
                Reply::Ambiguous {
                    typed: m.typed.clone(),
                    options,
                    wins,
                },
                Intent::Ambiguous,
                Some(turn),
            );
        }
        // "李娜是不是拿了二等奖", "宁波银行获奖情况": a name we do not know, asked
        // about with prize words, is not in the report; listing the real
        // winners would suggest otherwise.
        if p.mentions.is_empty()
            && let Some(name) = &p.unknown_name
            && (award_cue || p.cue(Cue::Identity))
            && strong_fact.is_none()
            && self.is_asked_name(name)
        {
            return (
                Reply::NotFound { name: name.clone() },
                Intent::NotFound,
                None,
            );
        }
        // "世界杯冠军是哪个国家": prize words amid much unexplained text are not
        // about this contest.
        let about_contest = p.unexplained <= 2 || filter.group.is_some() || filter.kind.is_some();
        let prize_question = about_contest && (filter.level.is_some() || p.cue(Cue::ListAll))
            || ((filter.group.is_some() || filter.kind.is_some())
                && award_cue
                && p.unknown_name.is_none());
        if prize_question && institutions.is_empty() && (award_cue || !antifraud) {
            // "个人一等奖获得者被推荐申报什么": about the prize, not who won it.
            let asks_who = ["谁", "哪", "名单", " who", " which", " list"]
                .iter()
                .any(|w| p.text.contains(w));
            if let Some((f, groups, score)) = strong_fact
                && filter.group.is_none()
                && ((groups >= 2 && filter.level.is_none()) || (score >= 4 && !asks_who))
                && !p.cue(Cue::ListAll)
            {
                return self.fact(report, f, now);
            }
            if filter.is_empty()
                || p.cue(Cue::ListAll) && filter.level.is_none() && filter.kind.is_none()
            {
                let reply = self.winners(report, filter);
                return (
                    reply,
                    if filter.is_empty() {
                        Intent::Awards
                    } else {
                        Intent::WhoWon
                    },
                    Some(self.turn(Intent::WhoWon, report, filter, now)),
                );
            }
            return self.who_won(filter, now, report);
        }
        if !institutions.is_empty()
            && (award_cue || !antifraud)
            && strong_fact.is_none_or(|(_, g, _)| g < 2 || award_cue)
        {
            let corrected = clear.iter().find(|m| m.corrected).map(|m| m.typed.clone());
            if p.cue(Cue::AllYears) {
                return self.won_all_years(&institutions, corrected, now, report);
            }
            return self.won(&institutions, corrected, Some(filter), now, report);
        }
        let case = self.best_case(p, report);
        let topic = self.best_topic(p);
        let topic_score = topic.as_ref().map_or(0, |(_, s)| *s);
        let topic = topic.map(|(t, _)| t);
        if let Some((c, case_score)) = case
            && (p.cue(Cue::Case) || topic.is_none() || self.case_specific(p, report, c) > 0)
            && strong_fact.is_none_or(|(_, g, s)| g < 2 && s <= case_score)
        {
            let turn = Turn {
                case: Some(c),
                ..self.turn(Intent::Case, report, PrizeFilter::default(), now)
            };
            return (Reply::Case { report, case: c }, Intent::Case, Some(turn));
        }
        // "张伟获得了什么奖": an unknown name outweighs a loose one-word fact match.
        if let Some(name) = &p.unknown_name
            && (award_cue || p.cue(Cue::Identity))
            && fact.is_none_or(|(_, g, s)| g < 2 && s < 4)
            && topic.is_none()
            && self.is_asked_name(name)
        {
            return (
                Reply::NotFound { name: name.clone() },
                Intent::NotFound,
                None,
            );
        }
        if let Some((f, groups, score)) = fact
            && (groups >= 2
                || (topic.is_none() && !p.cue(Cue::AntiFraud))
                || (score >= 3 && score > topic_score))
        {
            return self.fact(report, f, now);
        }
        if topic.is_some() || p.cue(Cue::AntiFraud) {
            let turn = Turn {
                tips_topic: topic.clone(),
                ..self.turn(Intent::Tips, report, PrizeFilter::default(), now)
            };
            return (self.tips(topic.as_deref()), Intent::Tips, Some(turn));
        }
        if p.cue(Cue::Help) {
            return (Reply::Help, Intent::Help, None);
        }
        if p.cue(Cue::About) && p.unknown_name.is_none() {
            return (Reply::About, Intent::About, None);
        }
        if let Some(name) = &p.unknown_name
            && ((award_cue || p.cue(Cue::Identity)) && self.is_asked_name(name)
                || self.looks_like_name(p, name))
        {
            return (
                Reply::NotFound { name: name.clone() },
                Intent::NotFound,
                None,
            );
        }
        if p.cue(Cue::Greeting) && p.unexplained <= 1 {
            return (Reply::Welcome, Intent::Start, None);
        }
        (Reply::Fallback, Intent::Fallback, None)
    }

    /// The family name in "姓郭的…" / "姓郭", if it is one.
    fn family_name(&self, p: &Parsed) -> Option<char> {
        let at = p.text.find('姓')?;
        let c = p.text[at + '姓'.len_utf8()..].chars().next()?;
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
    fn is_name_like(&self, name: &str) -> bool {
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
                    && !["个", "支", "家", "位", "名"]
                        .iter()
                        .any(|m| stem.ends_with(m))
            })
        });
        person || org
    }

    /// In an English question about prizes, the Latin words left over are the
    /// name asked about ("What did Zhang Wei win?").
    fn is_asked_name(&self, name: &str) -> bool {
        let latin =
            name.is_ascii() && name.chars().filter(|c| c.is_ascii_alphabetic()).count() >= 3;
        latin || self.is_name_like(name)
    }

    fn turn(&self, intent: Intent, report: usize, filter: PrizeFilter, now: Instant) -> Turn {
        Turn {
            at: now,
            intent,
            report,
            filter,
            entities: Vec::new(),
            shown: Vec::new(),
            keywords: Vec::new(),
            alternatives: Vec::new(),
            case: None,
            tips_topic: None,
            followups: 0,
        }
    }

    fn fact(&self, report: usize, fact: usize, now: Instant) -> Decision {
        (
            Reply::Fact { report, fact },
            Intent::Fact,
            Some(self.turn(Intent::Fact, report, PrizeFilter::default(), now)),
        )
    }

    /// The best matching fact: (index, matched groups, score).
    fn best_fact(&self, p: &Parsed, report: usize) -> Option<(usize, usize, usize)> {
        self.facts[report]
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.score(p).map(|s| (i, t.groups.len(), s)))
            .max_by_key(|(i, g, s)| (*g, *s, std::cmp::Reverse(*i)))
    }

    /// The best fact for `merged` (a follow-up plus the last question's words),
    /// preferring facts that the new words speak to.
    fn best_fact_with(
        &self,
        merged: &Parsed,
        new: &Parsed,
        report: usize,
    ) -> Option<(usize, usize, usize)> {
        self.facts[report]
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                let s = t.score(merged)?;
                let own = t.partial(new);
                // "他还担任什么职务": the pronoun stands for the name.
                (own > 0 || new.cue(Cue::Pronoun)).then_some((i, t.groups.len(), s, own))
            })
            .max_by_key(|(i, g, s, own)| (*g, *own, *s, std::cmp::Reverse(*i)))
            .map(|(i, g, s, _)| (i, g, s))
    }

    /// How much of a case's match is its own details (贵州, 丰门, 刘阿姨) rather
    /// than words of a scam topic (快递, 冻结), which ask for advice.
    fn case_specific(&self, p: &Parsed, report: usize, case: usize) -> usize {
        self.cases[report][case]
            .groups
            .iter()
            .flatten()
            .filter(|k| !self.topical[**k as usize])
            .filter_map(|k| p.keyword(*k))
            .sum()
    }

    fn best_case(&self, p: &Parsed, report: usize) -> Option<(usize, usize)> {
        self.cases[report]
            .iter()
            .enumerate()
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

    fn who_won(&self, filter: PrizeFilter, now: Instant, report: usize) -> Decision {
        let reply = self.winners(report, filter);
        (
            reply,
            Intent::WhoWon,
            Some(self.turn(Intent::WhoWon, report, filter, now)),
        )
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
    fn wins_of(&self, id: EntityId, report: usize) -> EntityWins {
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

    /// What entities won in every contest loaded ("历届", "every year").
    fn won_all_years(
        &self,
        ids: &[EntityId],
        corrected: Option<String>,
        now: Instant,
        report: usize,
    ) -> Decision {
        let mut wins = Vec::new();
        let mut nothing = Vec::new();
        // "李彬历届获得了什么奖": every contest that names them, newest first.
        for id in ids {
            let found: Vec<EntityWins> = (0..self.knowledge.reports.len())
                .map(|r| self.wins_of(*id, r))
                .filter(|w| !w.awards.is_empty())
                .collect();
            if found.is_empty() {
                nothing.push(*id);
            }
            wins.extend(found);
        }
        self.won_decision(
            ids,
            Reply::Won {
                wins,
                corrected,
                nothing,
            },
            now,
            report,
        )
    }

    /// A `Won` reply with the turn that remembers who it was about.
    fn won_decision(
        &self,
        ids: &[EntityId],
        reply: Reply,
        now: Instant,
        report: usize,
    ) -> Decision {
        let turn = Turn {
            entities: ids.to_vec(),
            ..self.turn(Intent::WhatWon, report, PrizeFilter::default(), now)
        };
        (reply, Intent::WhatWon, Some(turn))
    }

    pub(super) fn won(
        &self,
        ids: &[EntityId],
        corrected: Option<String>,
        filter: Option<PrizeFilter>,
        now: Instant,
        report: usize,
    ) -> Decision {
        let mut wins = Vec::new();
        let mut nothing = Vec::new();
        for id in ids {
            // Without a year, an entity is looked up in the newest report that names it.
            let mut w = self.wins_of(*id, report);
            if w.awards.is_empty() && report == 0 {
                for r in 1..self.knowledge.reports.len() {
                    let older = self.wins_of(*id, r);
                    if !older.awards.is_empty() {
                        w = older;
                        break;
                    }
                }
            }
            if let Some(f) = filter.filter(|f| !f.is_empty()) {
                let r = &self.knowledge.reports[w.report];
                let kept: Vec<usize> = w
                    .awards
                    .iter()
                    .copied()
                    .filter(|i| f.matches(&r.awards[*i].prize()))
                    .collect();
                if !kept.is_empty() {
                    w.awards = kept;
                }
            }
            if w.awards.is_empty() {
                nothing.push(*id);
            } else {
                wins.push(w);
            }
        }
        self.won_decision(
            ids,
            Reply::Won {
                wins,
                corrected,
                nothing,
            },
            now,
            report,
        )
    }

    /// Tips of several topics (a case's scam types), without duplicates.
    fn tips_for(&self, topics: &[String]) -> Reply {
        let mut tips: Vec<(usize, usize)> = Vec::new();
        for t in topics {
            if let Reply::Tips { tips: more, .. } = self.tips(Some(t)) {
                for x in more {
                    if !tips.contains(&x) {
                        tips.push(x);
                    }
                }
            }
        }
        let all = match self.tips(None) {
            Reply::Tips { topics, .. } => topics,
            _ => Vec::new(),
        };
        Reply::Tips {
            topic: None,
            tips,
            topics: all,
        }
    }

    /// Tips of one topic, or one tip of every topic; merged over reports
    /// without duplicates.
    pub(super) fn tips(&self, topic: Option<&str>) -> Reply {
        let mut tips: Vec<(usize, usize)> = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        let mut topics: Vec<String> = Vec::new();
        for (ri, r) in self.knowledge.reports.iter().enumerate() {
            for t in &r.antifraud.topics {
                if !topics.contains(&t.id) {
                    topics.push(t.id.clone());
                }
            }
            for (ti, t) in r.antifraud.tips.iter().enumerate() {
                if seen.contains(&t.zh.as_str()) {
                    continue;
                }
                let take = match topic {
                    Some(id) => t.topic == id,
                    None => !tips.iter().any(|(r2, t2)| {
                        self.knowledge.reports[*r2].antifraud.tips[*t2].topic == t.topic
                    }),
                };
                if take {
                    seen.push(&t.zh);
                    tips.push((ri, ti));
                }
            }
        }
        Reply::Tips {
            topic: topic.map(str::to_string),
            tips,
            topics,
        }
    }
}
