//! The vocabulary index: every word the engine knows (entity names and aliases,
//! prize words, intent cues, fact/topic/case keywords), compiled once into one
//! Aho–Corasick automaton, plus pinyin readings for homophone-tolerant names.

use super::answer::Counted;
use super::normalize::{is_cjk, normalize_word};
use super::similar::{fuzzy_syllable, fuzzy_syllable_in};
use crate::knowledge::{Group, Kind, Knowledge, Level};
use aho_corasick::{AhoCorasick, MatchKind};
use pinyin::ToPinyinMulti;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// What an entity is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntityKind {
    Person,
    Team,
    Institution,
}

/// A named thing of the award list: a person, a team or an institution.
#[derive(Debug, Clone)]
pub struct Entity {
    pub kind: EntityKind,
    pub name: String,
}

pub type EntityId = usize;

impl Entity {
    /// A key that names this entity across data reloads (an [`EntityId`] is
    /// only a position in one index): 12 hex digits of a 64-bit FNV-1a hash
    /// of its kind and name, short enough for Telegram's callback data.
    pub fn key(&self) -> String {
        let kind = match self.kind {
            EntityKind::Person => "p",
            EntityKind::Team => "t",
            EntityKind::Institution => "i",
        };
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in kind.bytes().chain([b':']).chain(self.name.bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("{:012x}", h >> 16)
    }
}

/// Kinds of cue words (see [`crate::knowledge::lexicon::Cues`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cue {
    Award,
    ListAll,
    Identity,
    Greeting,
    Help,
    About,
    Subscribe,
    Unsubscribe,
    AntiFraud,
    Case,
    More,
    Why,
    Wrong,
    Pronoun,
    Filler,
    English,
    Followup,
    AllYears,
    Reports,
    Ranking,
    Verify,
    Count,
    Compare,
    ListInstitutions,
    SameInstitution,
    SamePrize,
    AfterScam,
    PronounPerson,
    PronounPlural,
    PronounTeam,
    PronounInstitution,
    Interrogative,
    RankLevel,
    RankCount,
    RankLeast,
    AsksWho,
}

impl Cue {
    pub const ALL: [Cue; 36] = [
        Cue::Award,
        Cue::ListAll,
        Cue::Identity,
        Cue::Greeting,
        Cue::Help,
        Cue::About,
        Cue::Subscribe,
        Cue::Unsubscribe,
        Cue::AntiFraud,
        Cue::Case,
        Cue::More,
        Cue::Why,
        Cue::Wrong,
        Cue::Pronoun,
        Cue::Filler,
        Cue::English,
        Cue::Followup,
        Cue::AllYears,
        Cue::Reports,
        Cue::Ranking,
        Cue::Verify,
        Cue::Count,
        Cue::Compare,
        Cue::ListInstitutions,
        Cue::SameInstitution,
        Cue::SamePrize,
        Cue::AfterScam,
        Cue::PronounPerson,
        Cue::PronounPlural,
        Cue::PronounTeam,
        Cue::PronounInstitution,
        Cue::Interrogative,
        Cue::RankLevel,
        Cue::RankCount,
        Cue::RankLeast,
        Cue::AsksWho,
    ];
}

/// One meaning a matched word carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sense {
    /// An entity name; `alias` when it is not the full name.
    Entity {
        id: EntityId,
        alias: bool,
    },
    Level(Level),
    Group(Group),
    Kind(Kind),
    Cue(Cue),
    /// A keyword of a fact, topic or case trigger.
    Keyword(u32),
    /// A place name (a claim: "决赛在宁波吗").
    Place,
    /// A noun that says what is counted.
    Unit(Counted),
    /// A place in a ranking ("第二多" → 2).
    Position(u8),
}

/// The kinds of meaning a word carries, one bit each. The parser asks
/// "only cues?" or "any name?" of every pair of overlapping words in a
/// question, so each such question is a mask test, not a walk over senses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenseSet(u16);

impl SenseSet {
    pub const ENTITY: SenseSet = SenseSet(1);
    pub const LEVEL: SenseSet = SenseSet(1 << 1);
    pub const GROUP: SenseSet = SenseSet(1 << 2);
    pub const KIND: SenseSet = SenseSet(1 << 3);
    /// The filler cue (有, 是, 哪个): kept apart from the other cues, since
    /// filler words shadow nothing.
    pub const FILLER: SenseSet = SenseSet(1 << 4);
    /// Any cue but filler.
    pub const CUE: SenseSet = SenseSet(1 << 5);
    pub const KEYWORD: SenseSet = SenseSet(1 << 6);
    pub const PLACE: SenseSet = SenseSet(1 << 7);
    pub const UNIT: SenseSet = SenseSet(1 << 8);
    pub const POSITION: SenseSet = SenseSet(1 << 9);
    /// Every cue, filler included.
    pub const ANY_CUE: SenseSet = SenseSet(Self::FILLER.0 | Self::CUE.0);

    fn of(senses: &[Sense]) -> SenseSet {
        senses.iter().fold(SenseSet::default(), |set, s| {
            set | match s {
                Sense::Entity { .. } => Self::ENTITY,
                Sense::Level(_) => Self::LEVEL,
                Sense::Group(_) => Self::GROUP,
                Sense::Kind(_) => Self::KIND,
                Sense::Cue(Cue::Filler) => Self::FILLER,
                Sense::Cue(_) => Self::CUE,
                Sense::Keyword(_) => Self::KEYWORD,
                Sense::Place => Self::PLACE,
                Sense::Unit(_) => Self::UNIT,
                Sense::Position(_) => Self::POSITION,
            }
        })
    }
    /// Some sense is one of `kinds`.
    pub fn any(self, kinds: SenseSet) -> bool {
        self.0 & kinds.0 != 0
    }
    /// Every sense is one of `kinds` (true of a word without senses, as
    /// `Iterator::all` is).
    pub fn only(self, kinds: SenseSet) -> bool {
        self.0 & !kinds.0 == 0
    }
}

impl std::ops::BitOr for SenseSet {
    type Output = SenseSet;
    fn bitor(self, other: SenseSet) -> SenseSet {
        SenseSet(self.0 | other.0)
    }
}

/// A matched word in the normalised question.
#[derive(Debug, Clone, Copy)]
pub struct Hit {
    pub start: usize,
    pub end: usize,
    pub pattern: u32,
}

/// A name written with the pinyin of each character, for homophone matching.
#[derive(Debug, Clone)]
struct Spoken {
    /// The pattern whose senses a match carries.
    pattern: u32,
    slips_ok: bool,
    chars: Vec<char>,
    readings: Vec<Readings>,
}

/// Toneless pinyin readings of one character (ids into the syllable table).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Readings {
    ids: [u16; 4],
    len: u8,
}

impl Readings {
    /// Fourteen bits per id, the count above them, and a top bit that says
    /// "read" (an empty word means "not read yet").
    const READ: u64 = 1 << 63;

    fn pack(&self) -> Option<u64> {
        let mut word = Self::READ | u64::from(self.len) << 56;
        for (i, id) in self.ids[..self.len as usize].iter().enumerate() {
            if *id >= 1 << 14 {
                return None;
            }
            word |= u64::from(*id) << (14 * i);
        }
        Some(word)
    }

    fn unpack(word: u64) -> Option<Readings> {
        if word & Self::READ == 0 {
            return None;
        }
        let mut r = Readings {
            len: ((word >> 56) & 0x7) as u8,
            ..Readings::default()
        };
        for i in 0..r.len as usize {
            r.ids[i] = ((word >> (14 * i)) & 0x3fff) as u16;
        }
        Some(r)
    }

    fn shares(&self, other: &Readings) -> bool {
        self.ids[..self.len as usize]
            .iter()
            .any(|a| other.ids[..other.len as usize].contains(a))
    }
}

/// A fuzzy match of a name against the question.
#[derive(Debug, Clone)]
pub struct FuzzyHit {
    pub pattern: u32,
    /// What the user typed (the window of the question).
    pub typed: String,
    pub start: usize,
    pub end: usize,
    /// 0.0–1.0; homophones score higher than other slips.
    pub confidence: f32,
}

pub struct Index {
    automaton: AhoCorasick,
    /// ASCII trigger keywords without spaces ("whattodo"), matched against the
    /// question with its spaces removed, so data may write English either way.
    compact: AhoCorasick,
    compact_keywords: Vec<u32>,
    patterns: Vec<String>,
    senses: Vec<Vec<Sense>>,
    /// Per pattern: the kinds of its senses.
    sense_sets: Vec<SenseSet>,
    pub entities: Vec<Entity>,
    /// Per report, per award row: the person or team that won it.
    pub award_winners: Vec<Vec<EntityId>>,
    pub keywords: Vec<String>,
    /// Keyword (its pattern, or `@name`) → id.
    keyword_ids: HashMap<String, u32>,
    /// Keywords that are also everyday cue words (什么奖, 是谁): weak evidence.
    pub generic_keywords: Vec<bool>,
    spoken: Vec<Spoken>,
    /// English words that open a yes/no question.
    pub verify_lead: Vec<String>,
    /// Words that may join two questions (lower case).
    pub clause_joins: Vec<String>,
    /// Units that may follow a number (claims).
    pub units: super::claims::Units,
    /// The character that ends prize names (奖), if the lexicon gives one.
    pub prize_suffix: Option<char>,
    /// Reading id (dense, an index) → (spoken name, position 0 or 1) with
    /// that reading there.
    starts: Vec<Vec<(u32, u8)>>,
    syllables: HashMap<String, u16>,
    /// The readings of each character of the main CJK block, filled in as
    /// questions bring them: looking a character up in the pinyin table and
    /// its syllables in `syllables` cost more than the rest of a homophone
    /// search, and a bot meets the same few thousand characters again and
    /// again. Shared by every thread without a lock (a race only computes a
    /// slot twice, with the same result).
    reading_cache: Box<[AtomicU64]>,
}

/// The block `reading_cache` covers (CJK Unified Ideographs).
const CACHED_CJK: std::ops::RangeInclusive<u32> = 0x4E00..=0x9FFF;

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("patterns", &self.patterns.len())
            .field("entities", &self.entities.len())
            .finish()
    }
}

/// How a data word is searched for in the normalised (space-padded) text.
fn pattern_for(word: &str) -> Option<String> {
    let w = normalize_word(word);
    if w.is_empty() {
        return None;
    }
    if w.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        // ASCII words match at a word start; short ones only as whole words.
        if w.chars().count() < 4 {
            Some(format!(" {w} "))
        } else {
            Some(format!(" {w}"))
        }
    } else {
        Some(w)
    }
}

struct Builder {
    patterns: Vec<String>,
    by_text: HashMap<String, usize>,
    senses: Vec<Vec<Sense>>,
}

impl Builder {
    fn add(&mut self, word: &str, sense: Sense) {
        if let Some(p) = pattern_for(word) {
            self.add_pattern(p, sense);
        }
    }

    /// `add` for a word already made a pattern.
    fn add_pattern(&mut self, p: String, sense: Sense) {
        let idx = *self.by_text.entry(p.clone()).or_insert_with(|| {
            self.patterns.push(p);
            self.senses.push(Vec::new());
            self.patterns.len() - 1
        });
        if !self.senses[idx].contains(&sense) {
            self.senses[idx].push(sense);
        }
    }

    /// A declared prize's word: it means that prize, whatever level the
    /// lexicon gives the same word.
    fn add_prize_name(&mut self, word: &str, level: Level) {
        self.add(word, Sense::Level(level));
        if let Some(p) = pattern_for(word)
            && let Some(&idx) = self.by_text.get(&p)
        {
            self.senses[idx].retain(|s| !matches!(s, Sense::Level(l) if *l != level));
        }
    }
}

impl Index {
    pub fn build(k: &Knowledge) -> Self {
        let mut b = Builder {
            patterns: Vec::new(),
            by_text: HashMap::new(),
            senses: Vec::new(),
        };
        let mut entities: Vec<Entity> = Vec::new();
        let mut ids: HashMap<(EntityKind, String), EntityId> = HashMap::new();
        let mut entity_id =
            |kind: EntityKind, name: &str, entities: &mut Vec<Entity>| -> EntityId {
                *ids.entry((kind, name.to_string())).or_insert_with(|| {
                    entities.push(Entity {
                        kind,
                        name: name.to_string(),
                    });
                    entities.len() - 1
                })
            };

        // Institutions and their aliases.
        for inst in &k.institutions {
            let id = entity_id(EntityKind::Institution, &inst.name, &mut entities);
            b.add(&inst.name, Sense::Entity { id, alias: false });
            for a in &inst.aliases {
                b.add(a, Sense::Entity { id, alias: true });
            }
        }
        let institution_words: Vec<String> = b.patterns.clone();
        // People and teams of every report.
        // Words that may be typed by sound: (word, may a non-homophone slip match).
        let mut spoken_names: Vec<(String, bool)> = Vec::new();
        let mut award_winners: Vec<Vec<EntityId>> = Vec::with_capacity(k.reports.len());
        for r in &k.reports {
            let mut winners = Vec::with_capacity(r.awards.len());
            for a in &r.awards {
                let kind = match a.kind {
                    Kind::Individual => EntityKind::Person,
                    Kind::Team => EntityKind::Team,
                };
                let id = entity_id(kind, &a.winner, &mut entities);
                winners.push(id);
                b.add(&a.winner, Sense::Entity { id, alias: false });
                for alias in k.team_aliases.get(&a.winner).into_iter().flatten() {
                    b.add(alias, Sense::Entity { id, alias: true });
                }
                // A team is often typed without its 队/团队 ending, or without quotes.
                if kind == EntityKind::Team {
                    let plain = normalize_word(&a.winner);
                    for suffix in &k.lexicon.team_suffixes {
                        if let Some(stem) = plain.strip_suffix(suffix.as_str())
                            && stem.chars().count() >= 3
                            && !institution_words.contains(&stem.to_string())
                        {
                            b.add(stem, Sense::Entity { id, alias: true });
                            break;
                        }
                    }
                }
                if kind == EntityKind::Person {
                    // Latin-letter names: "li bin", "libin", "bin li".
                    let syl: Vec<&str> = a
                        .winner
                        .chars()
                        .filter_map(|c| c.to_pinyin_multi().map(|m| m.get(0).plain()))
                        .collect();
                    if syl.len() >= 2 {
                        let (family, given) = (syl[0], syl[1..].concat());
                        for form in [
                            format!("{family} {}", syl[1..].join(" ")),
                            format!("{family} {given}"),
                            format!("{family}{given}"),
                            format!("{given} {family}"),
                        ] {
                            b.add(&form, Sense::Entity { id, alias: true });
                        }
                    }
                }
                spoken_names.push((a.winner.clone(), true));
            }
            award_winners.push(winners);
        }
        for inst in &k.institutions {
            let id = entity_id(EntityKind::Institution, &inst.name, &mut entities);
            let _ = id;
            // Bank names differ by one character all the time (招商银行,
            // 浙商银行, 农商银行): only homophones, never slips.
            spoken_names.push((inst.name.clone(), false));
            for a in &inst.aliases {
                // Short aliases (兴业, 平安) are too close to everyday words for
                // homophone matching; only long ones take part.
                if a.chars().filter(|c| is_cjk(*c)).count() >= 4 {
                    spoken_names.push((a.clone(), false));
                }
            }
        }

        let lx = &k.lexicon;
        for (level, words) in &lx.levels {
            for w in words {
                if w.chars().filter(|c| is_cjk(*c)).count() >= 4 {
                    spoken_names.push((w.clone(), false));
                }
                b.add(w, Sense::Level(*level));
            }
        }
        // Prizes the reports declare (特等奖, 最佳创意奖): their names, English
        // labels and aliases. A report's own name for a prize wins over a
        // lexicon synonym spelled the same (a declared 优秀奖 is not the
        // 优胜奖 the lexicon reads it as).
        for d in k.levels.declared() {
            for w in d.words() {
                if w.chars().filter(|c| is_cjk(*c)).count() >= 4 {
                    spoken_names.push((w.to_string(), false));
                }
                b.add_prize_name(w, d.level());
            }
        }
        for (group, words) in &lx.groups {
            for w in words {
                b.add(w, Sense::Group(*group));
            }
        }
        for (kind, words) in &lx.kinds {
            for w in words {
                b.add(w, Sense::Kind(*kind));
            }
        }
        let c = &lx.cues;
        for (cue, words) in [
            (Cue::Award, &c.award),
            (Cue::ListAll, &c.list_all),
            (Cue::Identity, &c.identity),
            (Cue::Greeting, &c.greeting),
            (Cue::Help, &c.help),
            (Cue::About, &c.about),
            (Cue::Subscribe, &c.subscribe),
            (Cue::Unsubscribe, &c.unsubscribe),
            (Cue::AntiFraud, &c.antifraud),
            (Cue::Case, &c.case),
            (Cue::More, &c.more),
            (Cue::Why, &c.why),
            (Cue::Wrong, &c.wrong),
            (Cue::Pronoun, &c.pronoun),
            (Cue::Filler, &c.filler),
            (Cue::English, &c.english),
            (Cue::Followup, &c.followup),
            (Cue::AllYears, &c.all_years),
            (Cue::Reports, &c.reports),
            (Cue::Ranking, &c.ranking),
            (Cue::Verify, &c.verify),
            (Cue::Count, &c.count),
            (Cue::Compare, &c.compare),
            (Cue::ListInstitutions, &c.list_institutions),
            (Cue::SameInstitution, &c.same_institution),
            (Cue::SamePrize, &c.same_prize),
            (Cue::AfterScam, &c.after_scam),
            (Cue::PronounPerson, &c.pronoun_person),
            (Cue::PronounPlural, &c.pronoun_plural),
            (Cue::PronounTeam, &c.pronoun_team),
            (Cue::PronounInstitution, &c.pronoun_institution),
            (Cue::Interrogative, &c.interrogative),
            (Cue::RankLevel, &c.rank_level),
            (Cue::RankCount, &c.rank_count),
            (Cue::RankLeast, &c.rank_least),
            (Cue::AsksWho, &c.asks_who),
        ] {
            for w in words {
                b.add(w, Sense::Cue(cue));
            }
        }

        for w in &lx.places {
            b.add(w, Sense::Place);
        }
        for (n, words) in &lx.rank_positions {
            for w in words {
                b.add(w, Sense::Position(*n));
            }
        }
        let u = &lx.count_units;
        for (counted, words) in [
            (Counted::Institutions, &u.institutions),
            (Counted::People, &u.people),
            (Counted::Teams, &u.teams),
            (Counted::Awards, &u.awards),
        ] {
            for w in words {
                b.add(w, Sense::Unit(counted));
            }
        }

        // Trigger keywords of facts, topics and cases share one id space.
        // `@name` references (a subject, a lexicon list) are not words: the
        // engine expands them; each gets a virtual id that no text matches,
        // which context and claims can add to a question.
        let mut keywords: Vec<String> = Vec::new();
        let mut kw_ids: HashMap<String, u32> = HashMap::new();
        let mut add_kw = |w: &str, b: &mut Builder| {
            if let Some(name) = w.strip_prefix('@') {
                let key = format!("@{name}");
                kw_ids.entry(key.clone()).or_insert_with(|| {
                    keywords.push(key);
                    (keywords.len() - 1) as u32
                });
                return;
            }
            let Some(p) = pattern_for(w) else { return };
            let id = *kw_ids.entry(p.clone()).or_insert_with(|| {
                keywords.push(p.clone());
                (keywords.len() - 1) as u32
            });
            b.add_pattern(p, Sense::Keyword(id));
        };
        for words in lx.asks.values() {
            for w in words {
                add_kw(w, &mut b);
            }
        }
        for name in lx.asks.keys() {
            add_kw(&format!("@{name}"), &mut b);
        }
        for r in &k.reports {
            for s in &r.subjects {
                add_kw(&format!("@{}", s.id), &mut b);
                for w in &s.words {
                    // People of the report are asked about by name, typed by sound too.
                    let n = w.chars().count();
                    if s.person
                        && (2..=4).contains(&n)
                        && w.chars().all(is_cjk)
                        && lx.surnames.iter().any(|x| w.starts_with(x.as_str()))
                    {
                        spoken_names.push((w.clone(), false));
                    }
                    add_kw(w, &mut b);
                }
            }
            for f in &r.facts {
                for g in &f.triggers {
                    for w in g {
                        add_kw(w, &mut b);
                    }
                }
            }
            for t in &r.antifraud.topics {
                for w in &t.keywords {
                    add_kw(w, &mut b);
                }
            }
            for cs in &r.antifraud.cases {
                for g in &cs.triggers {
                    for w in g {
                        add_kw(w, &mut b);
                    }
                }
            }
        }

        let generic_keywords: Vec<bool> = keywords
            .iter()
            .map(|k| {
                b.by_text.get(k).is_some_and(|i| {
                    b.senses[*i].iter().any(|s| {
                        matches!(
                            s,
                            Sense::Cue(_) | Sense::Level(_) | Sense::Kind(_) | Sense::Group(_)
                        )
                    })
                })
            })
            .collect();
        let mut compact_patterns: Vec<String> = Vec::new();
        let mut compact_keywords: Vec<u32> = Vec::new();
        for (id, kw) in keywords.iter().enumerate() {
            let c: String = kw.chars().filter(|c| *c != ' ').collect();
            if kw.starts_with(' ') && c.len() >= 4 && !compact_patterns.contains(&c) {
                compact_patterns.push(c);
                compact_keywords.push(id as u32);
            }
        }
        let compact = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(&compact_patterns)
            .expect("patterns are plain strings; building cannot fail below the size limit");
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(&b.patterns)
            .expect("patterns are plain strings; building cannot fail below the size limit");

        let mut syllables: HashMap<String, u16> = HashMap::new();
        let mut spoken = Vec::new();
        for (name, slips_ok) in spoken_names {
            let Some(&pattern) = pattern_for(&name).and_then(|p| b.by_text.get(&p)) else {
                continue;
            };
            let chars: Vec<char> = normalize_word(&name)
                .chars()
                .filter(|c| is_cjk(*c))
                .collect();
            if chars.len() < 2 || spoken.iter().any(|s: &Spoken| s.chars == chars) {
                continue;
            }
            let readings = chars
                .iter()
                .map(|c| readings_of(*c, &mut syllables))
                .collect();
            spoken.push(Spoken {
                pattern: pattern as u32,
                slips_ok,
                chars,
                readings,
            });
        }

        let mut starts: Vec<Vec<(u32, u8)>> = vec![Vec::new(); syllables.len()];
        for (si, s) in spoken.iter().enumerate() {
            for (pos, r) in s.readings.iter().take(2).enumerate() {
                for id in &r.ids[..r.len as usize] {
                    starts[*id as usize].push((si as u32, pos as u8));
                }
            }
        }
        Index {
            verify_lead: lx.verify_lead.iter().map(|w| w.to_lowercase()).collect(),
            clause_joins: lx
                .clause_joins
                .iter()
                .map(|w| w.to_lowercase())
                .filter(|w| !w.trim().is_empty())
                .collect(),
            units: super::claims::Units::from_lexicon(lx),
            prize_suffix: lx.prize_suffix.chars().next(),
            starts,
            automaton,
            compact,
            compact_keywords,
            patterns: b.patterns,
            sense_sets: b.senses.iter().map(|s| SenseSet::of(s)).collect(),
            senses: b.senses,
            entities,
            award_winners,
            keywords,
            keyword_ids: kw_ids,
            generic_keywords,
            spoken,
            syllables,
            reading_cache: CACHED_CJK.map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Every known word in `text` (overlapping), in order of position.
    pub fn hits(&self, text: &str) -> Vec<Hit> {
        // Room for a typical question's words up front, not grown by doubling.
        let mut hits = Vec::with_capacity(32);
        hits.extend(self.automaton.find_overlapping_iter(text).map(|m| Hit {
            start: m.start(),
            end: m.end(),
            pattern: m.pattern().as_u32(),
        }));
        hits
    }

    /// Trigger keywords found in the ASCII words of `text` run together:
    /// (keyword id, start, end) as byte offsets into `text`.
    pub fn compact_keyword_hits(&self, text: &str) -> Vec<(u32, usize, usize)> {
        if !text.is_ascii() {
            // Keep it simple: only all-ASCII questions need the joined form.
            return Vec::new();
        }
        let mut joined = String::with_capacity(text.len());
        let mut origin: Vec<usize> = Vec::with_capacity(text.len());
        for (i, b) in text.bytes().enumerate() {
            if b != b' ' {
                joined.push(b as char);
                origin.push(i);
            }
        }
        self.compact
            .find_overlapping_iter(&joined)
            .map(|m| {
                let id = self.compact_keywords[m.pattern().as_usize()];
                (id, origin[m.start()], origin[m.end() - 1] + 1)
            })
            .collect()
    }

    pub fn pattern_senses(&self, pattern: u32) -> &[Sense] {
        &self.senses[pattern as usize]
    }

    pub fn senses(&self, hit: &Hit) -> &[Sense] {
        &self.senses[hit.pattern as usize]
    }

    /// The kinds of a matched word's senses.
    pub fn sense_set(&self, hit: &Hit) -> SenseSet {
        self.sense_sets[hit.pattern as usize]
    }

    pub fn pattern(&self, hit: &Hit) -> &str {
        &self.patterns[hit.pattern as usize]
    }

    pub fn keyword_id(&self, word: &str) -> Option<u32> {
        let p = match word.strip_prefix('@') {
            Some(_) => word.to_string(),
            None => pattern_for(word)?,
        };
        self.keyword_ids.get(&p).copied()
    }

    /// Names that sound like a stretch of the question (homophones from pinyin
    /// input, or one slipped character in a long name). `free` marks the byte
    /// positions not already explained by known words.
    pub fn fuzzy(&self, text: &str, free: &dyn Fn(usize, usize) -> bool) -> Vec<FuzzyHit> {
        let chars: Vec<(usize, char)> = text.char_indices().collect();
        // A window may only cover characters no known word explains; count
        // blocked characters so each window is checked in O(1).
        let mut blocked_before = Vec::with_capacity(chars.len() + 1);
        blocked_before.push(0usize);
        let mut any_free = false;
        for (k, (b, c)) in chars.iter().enumerate() {
            let ok = free(*b, *b + c.len_utf8());
            any_free |= ok && is_cjk(*c);
            blocked_before.push(blocked_before[k] + usize::from(!ok));
        }
        if !any_free {
            return Vec::new();
        }
        // Readings only where a name may be (free characters).
        let readings: Vec<Readings> = chars
            .iter()
            .enumerate()
            .map(|(k, (_, c))| {
                let is_free = blocked_before[k + 1] == blocked_before[k];
                if is_free && is_cjk(*c) {
                    self.readings_known(*c)
                } else {
                    Readings::default()
                }
            })
            .collect();
        let mut out: Vec<FuzzyHit> = Vec::new();
        // Candidate windows: an accepted match has at most one slip, so its
        // first or second character sounds like the question's character there.
        let mut candidates: Vec<(u32, usize)> = Vec::new();
        for (k, r) in readings.iter().enumerate() {
            for id in &r.ids[..r.len as usize] {
                for &(s, pos) in self.starts.get(*id as usize).map_or(&[][..], Vec::as_slice) {
                    if k >= pos as usize {
                        candidates.push((s, k - pos as usize));
                    }
                }
            }
        }
        candidates.sort_unstable();
        candidates.dedup();
        for (si, i) in candidates {
            let s = &self.spoken[si as usize];
            let m = s.chars.len();
            if i + m > chars.len() {
                continue;
            }
            {
                if blocked_before[i + m] != blocked_before[i] {
                    continue;
                }
                let (mut equal, mut homophone, mut slip) = (0usize, 0usize, 0usize);
                for j in 0..m {
                    let (q, r) = (chars[i + j].1, &readings[i + j]);
                    if q == s.chars[j] {
                        equal += 1;
                    } else if r.len > 0 && r.shares(&s.readings[j]) {
                        homophone += 1;
                    } else {
                        slip += 1;
                        if slip > 1 || !is_cjk(q) {
                            break;
                        }
                    }
                }
                if equal == m || equal + homophone + slip != m {
                    continue;
                }
                let accept = match (m, slip) {
                    (2, 0) => equal == 1,
                    (3, 0) => equal >= 1,
                    (_, 0) => equal >= 2,
                    // A slipped (non-homophone) character only in long person or
                    // team names: bank names differ by one character all the time
                    // (招商银行, 浙商银行, 农商银行).
                    (m, 1) => {
                        m >= 4 && s.slips_ok && equal >= m - 1 - homophone.min(1) && equal >= 3
                    }
                    _ => false,
                };
                let start = chars[i].0;
                let end = chars.get(i + m).map_or(text.len(), |c| c.0);
                if !accept || !free(start, end) {
                    continue;
                }
                let confidence =
                    if slip == 0 { 0.9 } else { 0.7 } - 0.05 * homophone as f32 / m as f32;
                out.push(FuzzyHit {
                    pattern: s.pattern,
                    typed: text[start..end].to_string(),
                    start,
                    end,
                    confidence,
                });
            }
        }
        out.sort_by(|a, b| {
            b.confidence
                .total_cmp(&a.confidence)
                .then((b.end - b.start).cmp(&(a.end - a.start)))
        });
        out
    }

    fn readings_known(&self, c: char) -> Readings {
        let Some(slot) = (c as u32)
            .checked_sub(*CACHED_CJK.start())
            .and_then(|i| self.reading_cache.get(i as usize))
        else {
            return self.read_aloud(c);
        };
        if let Some(r) = Readings::unpack(slot.load(Ordering::Relaxed)) {
            return r;
        }
        let r = self.read_aloud(c);
        if let Some(word) = r.pack() {
            slot.store(word, Ordering::Relaxed);
        }
        r
    }

    /// The readings of `c` among the data's syllables, from the pinyin table.
    fn read_aloud(&self, c: char) -> Readings {
        let mut r = Readings::default();
        if let Some(multi) = c.to_pinyin_multi() {
            for p in multi {
                let mut buf = [0u8; 16];
                if let Some(id) = self.syllables.get(fuzzy_syllable_in(p.plain(), &mut buf))
                    && (r.len as usize) < r.ids.len()
                    && !r.ids[..r.len as usize].contains(id)
                {
                    r.ids[r.len as usize] = *id;
                    r.len += 1;
                }
            }
        }
        r
    }
}

/// Readings of a data character, interning syllables as they come. Sounds
/// Zhejiang speakers confuse (in/ing, z/zh, n/l …) share one syllable.
fn readings_of(c: char, table: &mut HashMap<String, u16>) -> Readings {
    let mut r = Readings::default();
    if let Some(multi) = c.to_pinyin_multi() {
        for p in multi {
            let next = table.len() as u16;
            let id = *table.entry(fuzzy_syllable(p.plain())).or_insert(next);
            if (r.len as usize) < r.ids.len() && !r.ids[..r.len as usize].contains(&id) {
                r.ids[r.len as usize] = id;
                r.len += 1;
            }
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_keys_are_unique_and_short() {
        let k = Knowledge::builtin().expect("built-in data loads");
        let index = Index::build(&k);
        let mut keys: Vec<String> = index.entities.iter().map(Entity::key).collect();
        assert!(keys.iter().all(|k| k.len() == 12));
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), index.entities.len());
    }

    #[test]
    fn cached_readings_are_the_readings() {
        let k = Knowledge::builtin().expect("built-in data loads");
        let index = Index::build(&k);
        // 斌 sounds like 彬 (a name in the data); 行 has two readings; 𠀀 is
        // outside the cached block; 的 and 々 read as nothing known.
        for c in ['斌', '彬', '行', '的', '𠀀', '々', '龥'] {
            let fresh = index.read_aloud(c);
            assert_eq!(index.readings_known(c), fresh, "{c}, first time");
            assert_eq!(index.readings_known(c), fresh, "{c}, from the cache");
        }
        assert!(
            index
                .readings_known('斌')
                .shares(&index.readings_known('彬'))
        );
        let full = Readings {
            ids: [1, 2, 0x3ffe, 0x3fff],
            len: 4,
        };
        assert_eq!(full.pack().and_then(Readings::unpack), Some(full));
        assert_eq!(
            Readings::default().pack().and_then(Readings::unpack),
            Some(Readings::default())
        );
        // Ids too large for the packed form are not cached, never cut short.
        let wide = Readings {
            ids: [1 << 14, 0, 0, 0],
            len: 1,
        };
        assert_eq!(wide.pack(), None);
    }
}
