//! Names close to what was typed: a dropped or added character (`董兰` for
//! 董兰兰, `善建田野队`), or a sound confused in Zhejiang speech (the 模糊音
//! pairs in/ing, en/eng, an/ang, z/zh, c/ch, s/sh, n/l, f/h).
//!
//! Candidates are the people and teams of the award list (and their aliases),
//! scored by Jaro–Winkler similarity over characters and over fuzzy pinyin;
//! the better of the two counts. Institutions are left out on purpose: bank
//! names differ by one character all the time (中国银行, 中国工商银行), and a
//! wrong bank is worse than "not in this report".

use super::index::{EntityId, EntityKind, Index};
use super::normalize::{is_cjk, normalize_word};
use crate::knowledge::Knowledge;
use pinyin::ToPinyin;

/// One clearly closest name, a few close ones, or none.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    One(EntityId),
    Several(Vec<EntityId>),
    None,
}

/// At least this similar to be answered as that name.
const CERTAIN: f64 = 0.85;
/// At least this similar to be offered ("您是不是要找…").
const CLOSE: f64 = 0.78;
/// The runner-up must be this much less similar for the best to be certain.
const MARGIN: f64 = 0.06;
/// A shortened name ("善建队" for 善建希望田野队) is close, never certain:
/// it is offered, not answered as that name.
const SHORTENED: f64 = 0.82;

/// `short` keeps `long`'s first and last character and the rest in order,
/// with something left out: how people shorten team names.
fn shortens(short: &[char], long: &[char]) -> bool {
    if short.len() < 3 || short.len() >= long.len() {
        return false;
    }
    if short.first() != long.first() || short.last() != long.last() {
        return false;
    }
    let mut rest = long.iter();
    short.iter().all(|c| rest.any(|l| l == c))
}

/// A syllable as a Zhejiang speaker may confuse it: zh/ch/sh → z/c/s,
/// l → n, f → h, -ing/-eng/-ang → -in/-en/-an.
pub fn fuzzy_syllable(s: &str) -> String {
    let mut buf = [0u8; 16];
    fuzzy_syllable_in(s, &mut buf).to_string()
}

/// [`fuzzy_syllable`] written into `buf` (no allocation: it runs for every
/// character of a question that may be a name). Pinyin syllables are ASCII
/// and at most six letters; anything longer is returned as it is.
pub fn fuzzy_syllable_in<'a>(s: &'a str, buf: &'a mut [u8; 16]) -> &'a str {
    let (initial, rest) = if let Some(r) = s.strip_prefix("zh") {
        (Some(b'z'), r)
    } else if let Some(r) = s.strip_prefix("ch") {
        (Some(b'c'), r)
    } else if let Some(r) = s.strip_prefix("sh") {
        (Some(b's'), r)
    } else if let Some(r) = s.strip_prefix('l') {
        (Some(b'n'), r)
    } else if let Some(r) = s.strip_prefix('f') {
        (Some(b'h'), r)
    } else {
        (None, s)
    };
    let body = match rest.strip_suffix("ng") {
        Some(stem) if stem.ends_with(['i', 'e', 'a']) => stem,
        _ => rest,
    };
    let nasal = body.len() != rest.len();
    let len = usize::from(initial.is_some()) + body.len() + usize::from(nasal);
    if !s.is_ascii() || len > buf.len() {
        return s;
    }
    let mut at = 0;
    if let Some(i) = initial {
        buf[0] = i;
        at = 1;
    }
    buf[at..at + body.len()].copy_from_slice(body.as_bytes());
    at += body.len();
    if nasal {
        buf[at] = b'n';
        at += 1;
    }
    // Only ASCII bytes were written.
    std::str::from_utf8(&buf[..at]).unwrap_or(s)
}

fn spoken(name: &str) -> Vec<String> {
    name.chars()
        .filter(|c| is_cjk(*c))
        .map(|c| match c.to_pinyin() {
            Some(p) => fuzzy_syllable(p.plain()),
            None => c.to_string(),
        })
        .collect()
}

#[derive(Debug, Clone)]
struct Candidate {
    entity: EntityId,
    chars: Vec<char>,
    sounds: Vec<String>,
}

/// The names to compare with, prepared once.
#[derive(Debug, Clone, Default)]
pub struct Names {
    candidates: Vec<Candidate>,
    /// Name endings of institutions (not teams): 银行, 公司 ….
    institution_endings: Vec<String>,
}

impl Names {
    pub fn build(index: &Index, knowledge: &Knowledge) -> Self {
        let mut candidates = Vec::new();
        let mut add = |entity: EntityId, name: &str| {
            let chars: Vec<char> = normalize_word(name)
                .chars()
                .filter(|c| is_cjk(*c))
                .collect();
            if chars.len() >= 2 {
                candidates.push(Candidate {
                    entity,
                    sounds: spoken(name),
                    chars,
                });
            }
        };
        for (id, e) in index.entities.iter().enumerate() {
            if e.kind == EntityKind::Institution {
                continue;
            }
            add(id, &e.name);
            for alias in knowledge.team_aliases.get(&e.name).into_iter().flatten() {
                add(id, alias);
            }
        }
        // Endings that make a name an institution's, not a team's (队 ends teams).
        let institution_endings = knowledge
            .lexicon
            .name_endings
            .iter()
            .filter(|e| !knowledge.lexicon.team_suffixes.contains(e))
            .cloned()
            .collect();
        Names {
            candidates,
            institution_endings,
        }
    }

    /// The names close to `typed`. A name that ends like an institution
    /// (…银行, …公司) is never read as a person or team.
    pub fn lookup(&self, typed: &str) -> Verdict {
        let chars: Vec<char> = typed.chars().filter(|c| is_cjk(*c)).collect();
        if chars.len() < 2
            || self
                .institution_endings
                .iter()
                .any(|e| typed.ends_with(e.as_str()))
        {
            return Verdict::None;
        }
        let sounds = spoken(typed);
        let mut scored: Vec<(EntityId, f64)> = Vec::new();
        for c in &self.candidates {
            let by_chars = strsim::generic_jaro_winkler(&chars, &c.chars);
            let by_sound = strsim::generic_jaro_winkler(&sounds, &c.sounds);
            let mut score = by_chars.max(by_sound);
            if shortens(&chars, &c.chars) {
                score = score.max(SHORTENED);
            }
            match scored.iter_mut().find(|(e, _)| *e == c.entity) {
                Some((_, s)) => *s = s.max(score),
                None => scored.push((c.entity, score)),
            }
        }
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        let Some(&(best, top)) = scored.first() else {
            return Verdict::None;
        };
        let runner_up = scored.get(1).map_or(0.0, |x| x.1);
        if top >= CERTAIN && top - runner_up >= MARGIN {
            return Verdict::One(best);
        }
        if top >= CLOSE {
            let close: Vec<EntityId> = scored
                .iter()
                .take_while(|(_, s)| *s >= CLOSE && top - *s < 0.08)
                .take(4)
                .map(|(e, _)| *e)
                .collect();
            return match close.as_slice() {
                [only] if top >= CERTAIN => Verdict::One(*only),
                _ => Verdict::Several(close),
            };
        }
        Verdict::None
    }
}

impl super::Engine {
    /// The names of the award list close to a name the report does not have.
    pub(super) fn similar_names(&self, typed: &str) -> Verdict {
        self.similar.lookup(typed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> (Index, Names) {
        let k = Knowledge::builtin().expect("built-in data loads");
        let index = Index::build(&k);
        let names = Names::build(&index, &k);
        (index, names)
    }

    fn one(index: &Index, names: &Names, typed: &str) -> Option<String> {
        match names.lookup(typed) {
            Verdict::One(id) => Some(index.entities[id].name.clone()),
            _ => None,
        }
    }

    #[test]
    fn fuzzy_syllables_fold_the_usual_pairs() {
        assert_eq!(fuzzy_syllable("bing"), "bin");
        assert_eq!(fuzzy_syllable("zheng"), "zen");
        assert_eq!(fuzzy_syllable("shang"), "san");
        assert_eq!(fuzzy_syllable("lan"), "nan");
        assert_eq!(fuzzy_syllable("fu"), "hu");
        assert_eq!(fuzzy_syllable("chong"), "cong");
    }

    #[test]
    fn close_names_are_found() {
        let (index, names) = names();
        assert_eq!(one(&index, &names, "李兵").as_deref(), Some("李彬"));
        assert_eq!(one(&index, &names, "蔡寒真").as_deref(), Some("蔡函真"));
        assert_eq!(one(&index, &names, "董兰").as_deref(), Some("董兰兰"));
        assert_eq!(
            one(&index, &names, "善建田野队").as_deref(),
            Some("善建希望田野队")
        );
    }

    #[test]
    fn shortened_team_names_are_offered_never_answered() {
        let (index, names) = names();
        let offered = |typed: &str| -> Vec<String> {
            match names.lookup(typed) {
                Verdict::Several(ids) => ids
                    .iter()
                    .map(|i| index.entities[*i].name.clone())
                    .collect(),
                other => panic!("{typed}: {other:?}"),
            }
        };
        let mut shan_jian = offered("善建队");
        shan_jian.sort();
        assert_eq!(shan_jian, ["善建希望田野队", "善建绿金数创队"]);
        assert!(offered("平安队").contains(&"平安人寿队".to_string()));
        assert!(
            !shortens(&['平', '安'], &['平', '安', '队']),
            "two characters"
        );
        assert!(
            !shortens(&['安', '人', '队'], &['平', '安', '人', '寿', '队']),
            "first kept"
        );
    }

    #[test]
    fn strangers_stay_strangers() {
        let (_, names) = names();
        for typed in ["张伟", "李明", "王小明", "宁波银行", "中国银行"] {
            assert_eq!(names.lookup(typed), Verdict::None, "{typed}");
        }
    }
}
