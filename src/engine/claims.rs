//! Values a question claims ("决赛在11月吗", "抓了5个嫌疑人对吗", "戚迎是保险组的
//! 吗") and how they compare with what the report states.
//!
//! Numbers and dates are read from the normalised text (Arabic digits, and
//! small Chinese numerals before a measure word); places come from the
//! lexicon; award-list claims (a prize, an institution) from the parse.
//!
//! The grammar of numbers and dates (零…九, 十, 两; 年 月 日 号; 万 亿 千; 余 多)
//! is written here; the units that follow a number are vocabulary and come
//! from the lexicon's `quantity_units`.

use super::answer::PrizeFilter;
use super::index::EntityId;
use crate::knowledge::{Lexicon, UnitClass};

/// A date, as precise as it was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct DateValue {
    pub year: Option<u16>,
    pub month: Option<u8>,
    pub day: Option<u8>,
}

/// A number with its unit ("4人", "12万元" = 120000 元, "100余个").
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Quantity {
    pub value: f64,
    /// What the unit after the number measures (none: a bare number).
    pub class: Option<UnitClass>,
    /// "100余个", "1万多": at least this much.
    pub at_least: bool,
}

/// Units that may follow a number, longest first (from the lexicon).
#[derive(Debug, Clone, Default)]
pub struct Units {
    words: Vec<(String, UnitClass)>,
}

impl Units {
    pub fn from_lexicon(lx: &Lexicon) -> Self {
        let mut words: Vec<(String, UnitClass)> = lx
            .quantity_units
            .iter()
            .flat_map(|(class, ws)| ws.iter().map(|w| (w.clone(), *class)))
            .collect();
        words.sort_by_key(|(w, _)| std::cmp::Reverse(w.len()));
        Units { words }
    }

    /// The unit at the start of `s`, with its length in bytes.
    fn at(&self, s: &str) -> Option<(usize, UnitClass)> {
        self.words
            .iter()
            .find(|(w, _)| s.starts_with(w.as_str()))
            .map(|(w, c)| (w.len(), *c))
    }
}

/// What a yes/no question claims.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Claimed {
    /// The entity won a prize of this selection ("是一等奖吗", "是保险组的吗").
    Prize(PrizeFilter),
    /// The person or team is from this institution ("是工行的吗").
    Institution(EntityId),
    /// The entity won anything at all ("获奖了吗").
    Won,
    Date(DateValue),
    Number(Quantity),
    Place(String),
    /// A name (an official, a person of the report).
    Name(String),
    /// Words the question claims that no vocabulary explains ("微信" in
    /// "刘阿姨加的是骗子的微信吗").
    Text(String),
    /// The whole question, for claims in plain words that a stated value
    /// may share ("被买成美元了吗" and "美元账户").
    Words(String),
}

fn chinese_digit(c: char) -> Option<u32> {
    "零一二三四五六七八九"
        .chars()
        .position(|d| d == c)
        .map(|p| p as u32)
        .or_else(|| (c == '两').then_some(2))
}

/// A number at the start of `s`: Arabic digits (with a decimal point) or a
/// small Chinese numeral (一 … 九十九). Returns the value and bytes used.
fn number_at(s: &str) -> Option<(f64, usize)> {
    let digits: usize = s
        .char_indices()
        .take_while(|(_, c)| c.is_ascii_digit() || *c == '.')
        .map(|(i, c)| i + c.len_utf8())
        .last()
        .unwrap_or(0);
    if digits > 0 {
        let text = s[..digits].trim_end_matches('.');
        return text.parse().ok().map(|v| (v, text.len()));
    }
    // 十, 十五, 六十, 六十三, 三
    let mut chars = s.char_indices().peekable();
    let mut value = 0u32;
    let mut used = 0usize;
    let mut current: Option<u32> = None;
    while let Some(&(i, c)) = chars.peek() {
        if let Some(d) = chinese_digit(c) {
            if current.is_some() {
                break;
            }
            current = Some(d);
        } else if c == '十' {
            value += current.take().unwrap_or(1) * 10;
        } else {
            break;
        }
        used = i + c.len_utf8();
        chars.next();
    }
    value += current.unwrap_or(0);
    (used > 0).then_some((f64::from(value), used))
}

/// Every date written in `text` ("2019年11月", "11月22日", "9月9号", "7月初").
pub fn dates(text: &str) -> Vec<(DateValue, usize, usize)> {
    let mut out: Vec<(DateValue, usize, usize)> = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let Some((n, used)) = number_at(rest) else {
            i += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        };
        // A numeral glued to the end of a longer one is part of it.
        let start = i;
        let mut date = DateValue::default();
        let mut j = i + used;
        let mut matched = false;
        let mut value = n;
        loop {
            let after = &text[j..];
            let whole = value.fract() == 0.0 && value >= 0.0;
            if whole && after.starts_with('年') && (1900.0..2100.0).contains(&value) {
                date.year = Some(value as u16);
            } else if whole && after.starts_with('月') && (1.0..=12.0).contains(&value) {
                date.month = Some(value as u8);
            } else if whole
                && (after.starts_with('日') || after.starts_with('号'))
                && (1.0..=31.0).contains(&value)
                && (date.month.is_some() || date.year.is_none())
            {
                date.day = Some(value as u8);
            } else {
                break;
            }
            matched = true;
            j += 3; // 年, 月, 日 and 号 are three bytes each
            match number_at(&text[j..]) {
                Some((v, u)) => {
                    let unit_ok = ["年", "月", "日", "号"]
                        .iter()
                        .any(|s| text[j + u..].starts_with(s));
                    if !unit_ok {
                        break;
                    }
                    value = v;
                    j += u;
                }
                None => break,
            }
        }
        if matched {
            out.push((date, start, j));
            i = j;
        } else {
            i += used;
        }
    }
    out
}

/// Whether `text` may hold a number at all (a cheap test before parsing).
pub fn may_hold_number(text: &str) -> bool {
    text.bytes().any(|b| b.is_ascii_digit())
        || text
            .chars()
            .any(|c| chinese_digit(c).is_some() || c == '十')
}

/// Every number with a unit written in `text`, dates left out.
pub fn quantities(text: &str, units: &Units) -> Vec<Quantity> {
    let skip = dates(text);
    let mut out = Vec::new();
    let mut i = 0;
    while i < text.len() {
        if let Some(&(_, _, end)) = skip.iter().find(|(_, s, _)| *s == i) {
            i = end;
            continue;
        }
        let rest = &text[i..];
        let arabic = rest.starts_with(|c: char| c.is_ascii_digit());
        let Some((mut value, used)) = number_at(rest) else {
            i += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        };
        let mut j = i + used;
        let mut at_least = false;
        for (word, factor) in [("万亿", 1e12), ("亿", 1e8), ("万", 1e4), ("千", 1e3)] {
            if text[j..].starts_with(word) {
                value *= factor;
                j += word.len();
                break;
            }
        }
        for more in ["余", "多"] {
            if text[j..].starts_with(more) {
                at_least = true;
                j += more.len();
            }
        }
        let unit = units.at(&text[j..]);
        // A Chinese numeral only counts with a measure word (一等奖 is no number).
        if arabic || unit.is_some() {
            j += unit.map_or(0, |(len, _)| len);
            out.push(Quantity {
                value,
                class: unit.map(|(_, c)| c),
                at_least,
            });
        }
        i = j.max(i + 1);
        while !text.is_char_boundary(i) {
            i += 1;
        }
    }
    out
}

/// Years written as contest years: "2020年", "2021届", "2023 年度"; `words`
/// are the lexicon's (年, 届, 年度). A bare four-digit number counts too.
pub fn years(text: &str) -> Vec<u16> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i + 4 <= bytes.len() {
        let four = &bytes[i..i + 4];
        let before_ok = i == 0 || !bytes[i - 1].is_ascii_digit();
        let after_ok = bytes.get(i + 4).is_none_or(|b| !b.is_ascii_digit());
        if before_ok
            && after_ok
            && four.iter().all(u8::is_ascii_digit)
            && (four[0] == b'1' || four[0] == b'2')
            && let Ok(y) = text[i..i + 4].parse::<u16>()
            && (1990..2100).contains(&y)
        {
            out.push(y);
            i += 4;
        } else {
            i += 1;
        }
    }
    out
}

/// Does a stated value agree with a claimed one? `None`: they cannot be
/// compared (different kinds of value).
pub fn agrees(claim: &Claimed, value: &str, default_year: u16, units: &Units) -> Option<bool> {
    match claim {
        Claimed::Date(c) => {
            let (v, _, _) = *dates(value).first()?;
            let v = DateValue {
                year: v.year.or(Some(default_year)),
                ..v
            };
            let same = |a: Option<u8>, b: Option<u8>| a.is_none() || b.is_none() || a == b;
            // A claim more precise than the value cannot be confirmed.
            if (c.month.is_some() && v.month.is_none()) || (c.day.is_some() && v.day.is_none()) {
                return None;
            }
            Some(
                c.year.is_none_or(|y| Some(y) == v.year)
                    && same(c.month, v.month)
                    && same(c.day, v.day),
            )
        }
        Claimed::Number(c) => {
            let v = quantities(value, units).into_iter().next()?;
            if let (Some(a), Some(b)) = (c.class, v.class)
                && !compatible(a, b)
            {
                return None;
            }
            if v.at_least {
                Some(c.value >= v.value && c.value < v.value * 2.0)
            } else {
                Some((c.value - v.value).abs() < 1e-9 * v.value.abs().max(1.0))
            }
        }
        Claimed::Place(p) | Claimed::Name(p) => Some(value.contains(p.as_str())),
        _ => None,
    }
}

/// 个 counts people or things; money, times and years of age only
/// themselves.
fn compatible(a: UnitClass, b: UnitClass) -> bool {
    let countable = |c| matches!(c, UnitClass::People | UnitClass::Things);
    a == b || (countable(a) && countable(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: Option<u16>, m: Option<u8>, day: Option<u8>) -> DateValue {
        DateValue {
            year: y,
            month: m,
            day,
        }
    }

    #[test]
    fn reads_dates() {
        let got: Vec<DateValue> = dates(" 决赛在11月吗 ").into_iter().map(|x| x.0).collect();
        assert_eq!(got, vec![d(None, Some(11), None)]);
        let got: Vec<DateValue> = dates("2019年11月上线").into_iter().map(|x| x.0).collect();
        assert_eq!(got, vec![d(Some(2019), Some(11), None)]);
        let got: Vec<DateValue> = dates("是9月9号吗").into_iter().map(|x| x.0).collect();
        assert_eq!(got, vec![d(None, Some(9), Some(9))]);
        let got: Vec<DateValue> = dates("十一月二十二日").into_iter().map(|x| x.0).collect();
        assert_eq!(got, vec![d(None, Some(11), Some(22))]);
        assert!(dates("一等奖 12万元").is_empty());
    }

    fn units() -> Units {
        let k = crate::knowledge::Knowledge::builtin().expect("built-in data loads");
        Units::from_lexicon(&k.lexicon)
    }

    fn quantities(text: &str) -> Vec<Quantity> {
        super::quantities(text, &units())
    }

    fn agrees(claim: &Claimed, value: &str, year: u16) -> Option<bool> {
        super::agrees(claim, value, year, &units())
    }

    #[test]
    fn reads_quantities() {
        use UnitClass::*;
        let q = quantities("抓了5个嫌疑人 挽回12万元 63岁 2.7亿次 100余个");
        let got: Vec<(f64, Option<UnitClass>, bool)> =
            q.iter().map(|q| (q.value, q.class, q.at_least)).collect();
        assert_eq!(
            got,
            vec![
                (5.0, Some(Things), false),
                (120000.0, Some(Money), false),
                (63.0, Some(Age), false),
                (270000000.0, Some(Times), false),
                (100.0, Some(Things), true)
            ]
        );
        assert!(quantities("一等奖 十一月二十二日").is_empty());
        let q = quantities("抓了四个人");
        assert_eq!(q[0].value, 4.0);
        assert_eq!(quantities("六十三岁")[0].value, 63.0);
    }

    #[test]
    fn reads_years() {
        assert_eq!(years(" 2020年的一等奖 "), vec![2020]);
        assert_eq!(years(" 12345 2.7亿次 "), Vec::<u16>::new());
    }

    #[test]
    fn compares_claims_with_values() {
        let month = Claimed::Date(d(None, Some(11), None));
        assert_eq!(agrees(&month, "11月22日", 2022), Some(true));
        assert_eq!(agrees(&month, "2022年7月", 2022), Some(false));
        let year = Claimed::Date(d(Some(2020), None, None));
        assert_eq!(agrees(&year, "2019年11月", 2022), Some(false));
        assert_eq!(agrees(&year, "杭州", 2022), None);
        let four = Claimed::Number(quantities("4个")[0].clone());
        assert_eq!(agrees(&four, "4人", 2022), Some(true));
        assert_eq!(agrees(&four, "5万元", 2022), None);
        let five = Claimed::Number(quantities("5人")[0].clone());
        assert_eq!(agrees(&five, "4人", 2022), Some(false));
        let hundred = Claimed::Number(quantities("100个")[0].clone());
        assert_eq!(agrees(&hundred, "100余个", 2022), Some(true));
        let place = Claimed::Place("杭州".into());
        assert_eq!(agrees(&place, "杭州", 2022), Some(true));
        assert_eq!(agrees(&place, "温州", 2022), Some(false));
    }
}
