//! Understanding one message: which known words it contains, which entities it
//! names (exactly, by alias, or by a homophone), and what is left over.

use super::answer::Counted;
use super::claims::{self, DateValue, Quantity};
use super::index::{Cue, EntityId, Hit, Index, Sense, SenseSet};
use super::normalize::{is_cjk, normalize};
use crate::knowledge::{Group, Kind, Level};
use unicode_normalization::UnicodeNormalization;

/// An entity the message names. Several ids mean several readings (平安).
#[derive(Debug, Clone, PartialEq)]
pub struct Mention {
    pub ids: Vec<EntityId>,
    /// The words as the user typed them (normalised).
    pub typed: String,
    /// Found by sound or a slipped character, not letter for letter.
    pub corrected: bool,
    pub confidence: f32,
    pub start: usize,
}

/// What a message says, before any decision about how to answer it.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    pub text: String,
    pub has_cjk: bool,
    pub levels: Vec<Level>,
    pub groups: Vec<Group>,
    pub kinds: Vec<Kind>,
    pub mentions: Vec<Mention>,
    /// One bit per [`Cue`].
    cues: u64,
    /// Matched trigger keywords with the length (in chars) of each match,
    /// sorted by id (add with [`Parsed::add_keyword`]).
    pub keywords: Vec<(u32, usize)>,
    /// A name-like stretch no known word explains (an unknown person or bank).
    pub unknown_name: Option<String>,
    /// Characters/words that carry meaning but are not explained by any word.
    pub unexplained: usize,
    /// A bare number ("1", "2") — picks one of offered readings.
    pub choice: Option<usize>,
    /// Chinese characters that are not part of a named entity.
    pub cjk_outside_mentions: usize,
    /// Place names (claims such as "决赛在宁波吗").
    pub places: Vec<String>,
    /// What a "how many" question counts, by the nouns it uses.
    pub units: Vec<Counted>,
    /// Four-digit years ("2020年的一等奖").
    pub years: Vec<u16>,
    pub dates: Vec<DateValue>,
    pub quantities: Vec<Quantity>,
    /// "金奖", "特等奖": a prize word the report does not have.
    pub unknown_prize: Option<String>,
    /// The unknown name was written with capitals ("Zhang Wei"): for Latin
    /// letters, only that reads as a name, not any leftover English word.
    pub unknown_capitalized: bool,
    /// A place in a ranking other than the top ("第二多").
    pub position: Option<u8>,
}

impl Parsed {
    pub fn cue(&self, c: Cue) -> bool {
        self.cues & (1 << c as u32) != 0
    }
    /// The weight of a matched keyword (its length), if it matched.
    pub fn keyword(&self, id: u32) -> Option<usize> {
        self.keywords
            .binary_search_by_key(&id, |(k, _)| *k)
            .ok()
            .map(|i| self.keywords[i].1)
    }
    /// Record a matched keyword; `keywords` stays sorted by id (facts are
    /// scored by looking keywords up, many times per question).
    pub fn add_keyword(&mut self, id: u32, len: usize) {
        match self.keywords.binary_search_by_key(&id, |(k, _)| *k) {
            Ok(i) => self.keywords[i].1 = self.keywords[i].1.max(len),
            Err(i) => self.keywords.insert(i, (id, len)),
        }
    }
    /// English, possibly with Chinese names inside ("What did 李彬 win?").
    pub fn is_english(&self) -> bool {
        let latin_words = self
            .text
            .split(|c: char| !c.is_ascii_alphabetic())
            .filter(|w| w.len() >= 2)
            .count();
        if !self.has_cjk {
            return latin_words >= 1;
        }
        latin_words >= 2 && self.cue(Cue::English) && self.cjk_outside_mentions == 0
    }
    /// Only punctuation, emoji or nothing.
    pub fn is_empty(&self) -> bool {
        self.text.trim().is_empty()
    }
    /// Asks something of its own (a question word, a yes/no or "呢"): a
    /// clause that can stand as a question.
    pub fn has_focus(&self) -> bool {
        self.cue(Cue::Interrogative)
            || self.cue(Cue::Verify)
            || self.cue(Cue::Followup)
            || self.cue(Cue::Count)
            || self.cue(Cue::Identity)
    }
    /// The cue words found, by kind (for `ask --explain`).
    pub fn cues(&self) -> Vec<Cue> {
        Cue::ALL.into_iter().filter(|c| self.cue(*c)).collect()
    }
    /// Only keywords (to score facts by a query's remembered words).
    pub(super) fn with_keywords(keywords: &[(u32, usize)]) -> Self {
        let mut p = Parsed::default();
        for (k, len) in keywords {
            p.add_keyword(*k, *len);
        }
        p
    }
    pub(super) fn set_cue(&mut self, c: Cue) {
        self.cues |= 1 << c as u32;
    }
}

/// Whether a piece of a message asks something of its own (a question word,
/// a yes/no, "呢", "how many"), read cheaply from cue words alone: used to
/// decide where one message holds several questions.
pub fn asks_something(index: &Index, input: &str) -> bool {
    let text = normalize(input);
    let hits = index.hits(&text);
    let inside_longer = |h: &Hit| {
        hits.iter()
            .any(|g| g.start <= h.start && h.end <= g.end && g.end - g.start > h.end - h.start)
    };
    let mut cue = false;
    let mut only_tags = true;
    let mut covered = vec![false; text.len()];
    for h in &hits {
        let senses = index.senses(h);
        let asks = senses.iter().any(|s| {
            matches!(
                s,
                Sense::Cue(
                    Cue::Interrogative | Cue::Verify | Cue::Followup | Cue::Count | Cue::Identity
                )
            )
        });
        // "那" in "那个" is no follow-up.
        let followup_in_word = inside_longer(h)
            && senses
                .iter()
                .all(|s| matches!(s, Sense::Cue(Cue::Followup)));
        cue |= asks && !followup_in_word;
        // Words inside a longer word are read as part of it ("不是" in "是不是").
        only_tags &= inside_longer(h)
            || senses.iter().all(|s| {
                matches!(
                    s,
                    Sense::Cue(Cue::Verify | Cue::Interrogative | Cue::Filler)
                )
            });
        covered[h.start..h.end].fill(true);
    }
    // "对吗", "是不是": a tag on the sentence before, no question of its own.
    let tag_only = only_tags
        && text
            .char_indices()
            .all(|(i, c)| covered[i] || !c.is_alphanumeric());
    if tag_only {
        return false;
    }
    let first = text.trim().split(' ').next().unwrap_or("");
    cue || index.verify_lead.iter().any(|w| w == first)
}

/// The longer words a word of the question lies inside.
#[derive(Debug, Clone, Copy, Default)]
struct Around {
    /// Every sense of every longer word around it.
    outer: SenseSet,
    /// Inside any longer word.
    inside_any: bool,
    /// Inside a longer word that is not only filler ("奖" in "获奖").
    inside_word: bool,
    /// Inside a longer cue word that is not filler ("几个" in "哪几个").
    inside_cue: bool,
}

fn push_unique<T: PartialEq>(v: &mut Vec<T>, x: T) {
    if !v.contains(&x) {
        v.push(x);
    }
}

pub fn parse(index: &Index, input: &str) -> Parsed {
    let text = normalize(input);
    let hits = index.hits(&text);
    let mut p = Parsed {
        has_cjk: text.chars().any(is_cjk),
        ..Parsed::default()
    };

    let set = |h: &Hit| index.sense_set(h);
    let is_entity = |h: &Hit| set(h).any(SenseSet::ENTITY);
    let cue_only = |h: &Hit| set(h).only(SenseSet::ANY_CUE);
    let contains = |outer: &Hit, inner: &Hit| {
        outer.start <= inner.start
            && inner.end <= outer.end
            && (outer.end - outer.start) > (inner.end - inner.start)
    };
    // A word inside a longer name is part of that name (银行 in 工商银行, 平安 in
    // 平安人寿); an entity or group word inside any longer word is part of it.
    // What the longer words around each word mean, in one pass over the
    // pairs: the rules below ask "is it inside a longer word that …?".
    let around: Vec<Around> = hits
        .iter()
        .map(|h| {
            let mut a = Around::default();
            for g in hits.iter().filter(|g| contains(g, h)) {
                let outer = set(g);
                a.outer = a.outer | outer;
                a.inside_any = true;
                a.inside_word |= !outer.only(SenseSet::FILLER);
                a.inside_cue |= outer.only(SenseSet::ANY_CUE) && !outer.only(SenseSet::FILLER);
            }
            a
        })
        .collect();
    let kept: Vec<(&Hit, &Around)> = hits
        .iter()
        .zip(&around)
        .filter(|(h, around)| {
            let own = set(h);
            let weak = own.only(
                SenseSet::ENTITY
                    | SenseSet::GROUP
                    | SenseSet::KEYWORD
                    | SenseSet::PLACE
                    | SenseSet::UNIT,
            );
            let name_like = own.only(SenseSet::ENTITY | SenseSet::GROUP);
            let kind_only = own.only(SenseSet::KIND);
            let level_only = own.only(SenseSet::LEVEL);
            let unit_only = own.only(SenseSet::UNIT);
            // A cue word partly overlapping a longer name or prize word is
            // a misreading ("the best" in "the best popularity award").
            let overlapped = cue_only(h)
                && hits.iter().any(|g| {
                    let (from, to) = (g.start.max(h.start), g.end.min(h.end));
                    from < to
                        && (g.end - g.start) > (h.end - h.start)
                        && !cue_only(g)
                        && !contains(g, h)
                        && !contains(h, g)
                        // ASCII words share the space between them: no overlap.
                        && !text[from..to].trim().is_empty()
                });
            let outer = around.outer;
            !overlapped
                && !({
                    // A name or prize word inside a longer name, prize word or
                    // keyword is part of it (银行 in 银行机构组, 平安 in 平安人寿);
                    // inside a question word it still counts (银行 in 哪家银行).
                    let names_it = outer.any(
                        SenseSet::ENTITY
                            | SenseSet::GROUP
                            | SenseSet::LEVEL
                            | SenseSet::KIND
                            | SenseSet::KEYWORD,
                    );
                    (weak && outer.any(SenseSet::ENTITY))
                    || (name_like && names_it)
                    // A prize word inside a longer one is part of it
                    // ("merit" in a declared "Merit Award"), and so is a
                    // level inside a rank position ("第二" in "第二多").
                    || (level_only && outer.any(SenseSet::LEVEL | SenseSet::POSITION))
                    || (unit_only && around.inside_any)
                    // "个人" in "几个人" or "这个人" is no individual prize.
                    || (kind_only && outer.any(SenseSet::ANY_CUE | SenseSet::UNIT))
                })
        })
        .collect();

    // A cue word inside a longer cue word is part of it ("几个" in "哪几个"):
    // it keeps its other meanings (a fact keyword) but not its cue.
    // Filler words (哪个, 几个队) shadow nothing, and a question word stays
    // one inside any word ("哪" in "哪个").
    let mut covered = vec![false; text.len()];
    let mut name_parts = vec![false; text.len()];
    // Covered by something other than filler words (有, 是, 的 …), which also
    // occur inside names (张有荣) and must not hide them from sound matching.
    let mut solid = vec![false; text.len()];
    for &(h, around) in &kept {
        let senses = index.senses(h);
        let own = set(h);
        // Places and counted nouns say nothing about names: 宁波 in 宁波银行
        // stays part of an unknown name.
        let claims_only = own.only(SenseSet::PLACE | SenseSet::UNIT | SenseSet::POSITION);
        if claims_only {
            for s in senses {
                match *s {
                    Sense::Place => push_unique(&mut p.places, text[h.start..h.end].trim().into()),
                    Sense::Unit(u) => push_unique(&mut p.units, u),
                    Sense::Position(n) => p.position = Some(n),
                    _ => {}
                }
            }
            continue;
        }
        if !own.only(SenseSet::FILLER) {
            solid[h.start..h.end].fill(true);
        }
        let group_or_kind = own.any(SenseSet::GROUP | SenseSet::KIND)
            && !own.any(SenseSet::ANY_CUE | SenseSet::LEVEL);
        for b in h.start..h.end {
            covered[b] = true;
            if group_or_kind {
                name_parts[b] = true;
            }
        }
        for s in senses {
            match *s {
                Sense::Level(l) => push_unique(&mut p.levels, l),
                Sense::Group(g) => push_unique(&mut p.groups, g),
                Sense::Kind(k) => push_unique(&mut p.kinds, k),
                Sense::Cue(c) => {
                    // "那" in "那个" is no follow-up, though filler words
                    // shadow no other cue.
                    let followup_in_word = c == Cue::Followup && around.inside_any;
                    if (matches!(c, Cue::Interrogative | Cue::AsksWho) || !around.inside_cue)
                        && !followup_in_word
                    {
                        p.set_cue(c);
                    }
                }
                Sense::Keyword(k) => {
                    // Everyday words count for little when ranking facts.
                    let len = if index.generic_keywords[k as usize] {
                        1
                    } else {
                        text[h.start..h.end].trim().chars().count()
                    };
                    p.add_keyword(k, len);
                }
                Sense::Place => push_unique(&mut p.places, text[h.start..h.end].trim().into()),
                // "奖" in "获奖" counts no awards.
                Sense::Unit(u) if !around.inside_word => push_unique(&mut p.units, u),
                Sense::Position(n) => p.position = Some(n),
                Sense::Unit(_) | Sense::Entity { .. } => {}
            }
        }
    }

    for (k, s, e) in index.compact_keyword_hits(&text) {
        covered[s..e].fill(true);
        let len = e - s;
        p.add_keyword(k, len);
    }

    // Entities: longest first, no overlaps; one span may carry several readings.
    let mut entity_hits: Vec<&Hit> = kept
        .iter()
        .map(|(h, _)| *h)
        .filter(|h| is_entity(h))
        .collect();
    entity_hits.sort_by_key(|h| (std::cmp::Reverse(h.end - h.start), h.start));
    let mut taken: Vec<(usize, usize)> = Vec::new();
    for h in entity_hits {
        if taken.iter().any(|&(s, e)| h.start < e && s < h.end) {
            continue;
        }
        taken.push((h.start, h.end));
        let mut ids: Vec<EntityId> = Vec::new();
        for s in index.senses(h) {
            if let Sense::Entity { id, .. } = s {
                push_unique(&mut ids, *id);
            }
        }
        p.mentions.push(Mention {
            ids,
            typed: text[h.start..h.end].trim().to_string(),
            corrected: false,
            confidence: 1.0,
            start: h.start,
        });
    }

    // A short alias glued to unexplained characters is part of another
    // name: 泰康 + 人寿 is not one of our 人寿s, 平安 + 银行 is not 平安人寿 or
    // 平安财险, and 平安 + 风空专家队 is a typo for one of the teams.
    let mut dropped: Vec<(usize, usize)> = Vec::new();
    p.mentions.retain(|m| {
        let short = !m.corrected && m.typed.chars().count() <= 2 && m.ids.len() > 1;
        let end = m.start + m.typed.len();
        let before = text[..m.start].chars().next_back();
        let after = text[end..].chars().next();
        let glued_before = before.is_some_and(|c| is_cjk(c) && !covered[m.start - c.len_utf8()]);
        let glued_after = after.is_some_and(|c| is_cjk(c) && (!covered[end] || name_parts[end]));
        if short && (glued_before || glued_after) {
            dropped.push((m.start, end));
            false
        } else {
            true
        }
    });
    // Its characters are unexplained again: part of an unknown name.
    for (s, e) in dropped {
        covered[s..e].fill(false);
        solid[s..e].fill(false);
    }

    // Nothing named exactly: try names that sound like what was typed.
    if p.mentions.is_empty() && p.has_cjk {
        let fuzzy = index.fuzzy(&text, &|s, e| (s..e).all(|b| !solid[b] || name_parts[b]));
        if let Some(best) = fuzzy.first() {
            let mut ids: Vec<EntityId> = Vec::new();
            for f in fuzzy.iter().filter(|f| {
                f.start == best.start
                    && f.end == best.end
                    && (best.confidence - f.confidence).abs() < 0.06
            }) {
                for sense in index.pattern_senses(f.pattern) {
                    match *sense {
                        Sense::Entity { id, .. } => push_unique(&mut ids, id),
                        Sense::Level(l) => push_unique(&mut p.levels, l),
                        Sense::Group(g) => push_unique(&mut p.groups, g),
                        Sense::Kind(k) => push_unique(&mut p.kinds, k),
                        Sense::Cue(c) => p.set_cue(c),
                        Sense::Keyword(k) => {
                            if p.keyword(k).is_none() {
                                p.add_keyword(k, best.typed.chars().count());
                            }
                        }
                        Sense::Place | Sense::Unit(_) | Sense::Position(_) => {}
                    }
                }
            }
            covered[best.start..best.end].fill(true);
            if !ids.is_empty() {
                p.mentions.push(Mention {
                    ids,
                    typed: best.typed.clone(),
                    corrected: true,
                    confidence: best.confidence,
                    start: best.start,
                });
            }
        }
    }
    p.mentions.sort_by_key(|m| m.start);
    let mentioned: Vec<(usize, usize)> = p
        .mentions
        .iter()
        .map(|m| {
            let end = text[m.start..]
                .find(m.typed.as_str())
                .map_or(0, |o| o + m.typed.len());
            (m.start, m.start + end)
        })
        .collect();
    p.cjk_outside_mentions = text
        .char_indices()
        .filter(|(i, c)| is_cjk(*c) && !mentioned.iter().any(|(s, e)| s <= i && i < e))
        .count();

    // What is left: runs of unexplained letters, widened by adjacent group or
    // kind words (中国 + 银行, 飞虎 + 队) into a name-like candidate.
    let units = units_of(&text);
    let state = |&(s, e): &(usize, usize)| {
        if (s..e).all(|b| !covered[b]) {
            2 // unexplained
        } else if (s..e).all(|b| name_parts[b]) {
            1 // a group/kind word that may end a name
        } else {
            0
        }
    };
    p.unexplained = units.iter().filter(|u| state(u) == 2).count();
    let mut best: Option<(usize, usize, usize)> = None;
    let mut i = 0;
    while i < units.len() {
        if state(&units[i]) == 0 {
            i += 1;
            continue;
        }
        let mut j = i;
        let mut own = 0;
        while j < units.len() && state(&units[j]) > 0 {
            own += usize::from(state(&units[j]) == 2);
            j += 1;
        }
        if own > 0 && best.is_none_or(|(_, _, o)| own > o) {
            best = Some((units[i].0, units[j - 1].1, own));
        }
        i = j;
    }
    if let Some((s, e, _)) = best {
        let cand = text[s..e].trim();
        let cjk = cand.chars().filter(|c| is_cjk(*c)).count();
        let ascii = cand.chars().filter(|c| c.is_ascii_alphabetic()).count();
        if (2..=12).contains(&cjk) || (cjk == 0 && ascii >= 3) {
            p.unknown_name = Some(cand.to_string());
            p.unknown_capitalized = cjk == 0 && capitalized_in(input, cand);
        }
    }
    let trimmed = text.trim();
    if let Ok(n) = trimmed.parse::<usize>()
        && (1..=9).contains(&n)
    {
        p.choice = Some(n);
    }
    // "Is …", "Did …": an English yes/no question.
    let first = trimmed.split(' ').next().unwrap_or("");
    if index.verify_lead.iter().any(|w| w == first) {
        p.set_cue(Cue::Verify);
    }
    p.unknown_prize = index
        .prize_suffix
        .and_then(|suffix| unknown_prize(&text, &covered, suffix));
    p.years = claims::years(&text);
    if claims::may_hold_number(&text) {
        p.dates = claims::dates(&text).into_iter().map(|d| d.0).collect();
        p.quantities = claims::quantities(&text, &index.units);
    }
    p.text = text;
    p
}

/// Whether each Latin word of `name` (found lower-cased) starts with a
/// capital letter where it occurs in the message as typed.
fn capitalized_in(input: &str, name: &str) -> bool {
    let folded: String = input.nfkc().collect();
    name.split(' ').filter(|w| !w.is_empty()).all(|w| {
        folded.char_indices().any(|(i, c)| {
            c.is_uppercase()
                && folded
                    .get(i..i + w.len())
                    .is_some_and(|s| s.eq_ignore_ascii_case(w))
        })
    })
}

/// A prize word the vocabulary does not know: one to four unexplained
/// characters right before the prize suffix (奖: "金奖", "特等奖", "最佳创意奖").
fn unknown_prize(text: &str, covered: &[bool], suffix: char) -> Option<String> {
    for (at, _) in text.match_indices(suffix) {
        let mut start = at;
        for (i, c) in text[..at].char_indices().rev() {
            if !is_cjk(c) || covered[i] {
                break;
            }
            start = i;
        }
        let n = text[start..at].chars().count();
        if (1..=4).contains(&n) {
            return Some(text[start..at + suffix.len_utf8()].to_string());
        }
    }
    None
}

/// Byte spans of the message's units: each CJK character, each ASCII word.
fn units_of(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut word: Option<usize> = None;
    for (i, c) in text.char_indices() {
        if c.is_ascii_alphanumeric()
            || c == '&'
            || (word.is_some() && matches!(c, '\'' | '.' | '+'))
        {
            word.get_or_insert(i);
            continue;
        }
        if let Some(s) = word.take() {
            out.push((s, i));
        }
        if c.is_alphanumeric() {
            out.push((i, i + c.len_utf8()));
        }
    }
    if let Some(s) = word {
        out.push((s, text.len()));
    }
    out
}
