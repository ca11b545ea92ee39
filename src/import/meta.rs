//! The report's metadata: title, contest, year, date and city of the final,
//! counts, and the id.
//!
//! - `title`: the first non-empty line (for a page, its `<h1>`);
//! - `contest` and `year`: a 4-digit year (not a date like `2022年7月`) and the
//!   text after it up to the first `大赛`, without spaces or punctuation —
//!   looked for in the title first, then in the whole text;
//! - `final_date` and `city`: the first sentence that says `…在<city>举行`
//!   (`举办`, `落幕`, `闭幕`, `收官`, `召开`; `于<city>` too) and has a date
//!   `M月D日` (optionally `YYYY年M月D日`; otherwise the contest's year); a
//!   sentence naming the contest wins over one only saying `大赛`, which wins
//!   over nothing;
//! - `published`: `YYYY-MM` of the final;
//! - `teams` / `participants`: the first clause mentioning `选手` (and not
//!   `决赛`) with `N个团队` / `N位(参赛)选手` or `N名(参赛)选手`; `finalists`:
//!   the first clause mentioning `决赛` with `N个团队`. Arabic digits only;
//!   counts the text does not state stay `None`;
//! - `id`: `<year>-<slug>`. The slug is the pinyin of the first province,
//!   municipality or region named in the contest name (`浙江` → `zhejiang`, from
//!   a fixed table, so the id never depends on a pinyin dictionary); failing
//!   that, the first run of ASCII letters and digits in the contest name,
//!   lower-cased; failing that, [`ImportError::NeedsId`].
//!
//! The contest, year, date and city can be given instead
//! ([`ImportOptions`](super::ImportOptions)); a given contest name must occur
//! in the text, because the loader checks that it does.

use super::ImportError;
use super::row::SENTENCE_PUNCT;

/// `2022浙江…大赛` and its year, the first in `s`.
pub(crate) fn find_contest(s: &str) -> Option<(String, u16)> {
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    for k in 0..chars.len() {
        if k > 0 && chars[k - 1].1.is_ascii_digit() {
            continue;
        }
        let Some(digits) = chars.get(k..k + 4) else {
            break;
        };
        if !digits.iter().all(|(_, c)| c.is_ascii_digit()) {
            continue;
        }
        match chars.get(k + 4) {
            Some((_, c)) if c.is_ascii_digit() => continue,
            // `2022年7月` is a date; `2023年浙江…大赛` is a contest.
            Some((_, '年')) if chars.get(k + 5).is_some_and(|(_, c)| digit(*c).is_some()) => {
                continue;
            }
            None => break,
            _ => {}
        }
        let from = chars[k].0;
        let end = chars[k + 4..]
            .iter()
            .find(|(_, c)| !c.is_alphanumeric())
            .map_or(s.len(), |(i, _)| *i);
        let segment = &s[from..end];
        let Some(at) = segment.find("大赛") else {
            continue;
        };
        let contest = &segment[..at + "大赛".len()];
        let name_chars = contest.chars().count() - 4;
        if !(3..=60).contains(&name_chars) {
            continue;
        }
        let year: u16 = contest[..4].parse().ok()?;
        return Some((contest.to_string(), year));
    }
    None
}

pub(crate) struct Final {
    pub year: u16,
    pub month: u32,
    pub day: u32,
    pub city: String,
}

fn digit(c: char) -> Option<u32> {
    match c {
        '0'..='9' => Some(c as u32 - '0' as u32),
        '０'..='９' => Some(c as u32 - '０' as u32),
        _ => None,
    }
}

/// The number written right before byte `end` of `s`.
fn number_before(s: &str, end: usize) -> Option<u32> {
    let digits: Vec<u32> = s[..end]
        .chars()
        .rev()
        .map_while(digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    if digits.is_empty() || digits.len() > 9 {
        return None;
    }
    Some(digits.iter().fold(0, |n, d| n * 10 + d))
}

/// The number written right after byte `start` of `s`, and where it ends.
fn number_after(s: &str, start: usize) -> Option<(u32, usize)> {
    let mut n = 0u32;
    let mut end = start;
    for (i, c) in s[start..].char_indices() {
        let Some(d) = digit(c) else { break };
        n = n.checked_mul(10)?.checked_add(d)?;
        end = start + i + c.len_utf8();
    }
    (end > start).then_some((n, end))
}

/// The first `[YYYY年]M月D日` in `s`: (year, month, day).
pub(crate) fn find_date(s: &str) -> Option<Date> {
    for (at, _) in s.match_indices('月') {
        let Some(month) = number_before(s, at) else {
            continue;
        };
        let Some((day, end)) = number_after(s, at + '月'.len_utf8()) else {
            continue;
        };
        if !s[end..].starts_with('日') && !s[end..].starts_with('号') {
            continue;
        }
        let month_start = s[..at]
            .char_indices()
            .rev()
            .take_while(|(_, c)| digit(*c).is_some())
            .last()
            .map_or(at, |(i, _)| i);
        let year = s[..month_start]
            .strip_suffix('年')
            .and_then(|before| number_before(before, before.len()));
        return Some((year, month, day));
    }
    None
}

pub(crate) fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

/// `[YYYY年]M月D日` as written: the year only when the text gives it.
type Date = (Option<u32>, u32, u32);

/// Words between the city and [`HELD`].
const ADVERBS: &[&str] = &["圆满", "隆重", "顺利", "成功", "正式", "胜利"];

/// Words that say the final took place.
const HELD: &[&str] = &["举行", "举办", "落幕", "闭幕", "收官", "召开"];

pub(crate) fn find_final(
    lines: &[&str],
    contest: &str,
    year: u16,
) -> Result<Option<Final>, ImportError> {
    // (rank, line index, date, city): rank 0 names the contest, 1 only 大赛.
    let mut best: Option<(u8, usize, Date, String)> = None;
    for (i, line) in lines.iter().enumerate() {
        for sentence in line.split(['。', '!', '?', '！', '？', ';', '；']) {
            let Some(held) = HELD.iter().filter_map(|w| sentence.find(w)).min() else {
                continue;
            };
            let before = &sentence[..held];
            let Some(at) = before.rfind(['在', '于']) else {
                continue;
            };
            let mut city = before[at + '在'.len_utf8()..].trim();
            // `在杭州圆满落幕`, `在杭州隆重举行`.
            while let Some(c) = ADVERBS.iter().find_map(|a| city.strip_suffix(a)) {
                city = c;
            }
            let city_chars = city.chars().count();
            if !(1..=10).contains(&city_chars)
                || !city.chars().all(crate::engine::normalize::is_cjk)
            {
                continue;
            }
            let rank = if sentence.contains(contest) {
                0
            } else if sentence.contains("大赛") {
                1
            } else {
                continue;
            };
            let Some(date) = find_date(&sentence[..at]) else {
                continue;
            };
            if best.as_ref().is_none_or(|b| rank < b.0) {
                best = Some((rank, i, date, city.to_string()));
            }
        }
    }
    let Some((_, i, (date_year, month, day), city)) = best else {
        return Ok(None);
    };
    let year = date_year.unwrap_or(u32::from(year));
    let Ok(year16) = u16::try_from(year) else {
        return Err(ImportError::Line {
            line: i + 1,
            message: format!("the final's year {year} is not a year"),
        });
    };
    if day == 0 || day > days_in_month(year, month) {
        return Err(ImportError::Line {
            line: i + 1,
            message: format!("the final's date {year}年{month}月{day}日 does not exist"),
        });
    }
    Ok(Some(Final {
        year: year16,
        month,
        day,
        city,
    }))
}

#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub teams: Option<u32>,
    pub participants: Option<u32>,
    pub finalists: Option<u32>,
}

fn count_before_any(clause: &str, suffixes: &[&str]) -> Option<u32> {
    suffixes
        .iter()
        .flat_map(|s| clause.match_indices(s))
        .filter_map(|(at, _)| number_before(clause, at).map(|n| (at, n)))
        .min_by_key(|(at, _)| *at)
        .map(|(_, n)| n)
}

pub(crate) fn find_counts(lines: &[&str]) -> Counts {
    const TEAMS: &[&str] = &["个团队", "支团队", "支队伍", "个队伍", "支参赛队"];
    let mut counts = Counts::default();
    for line in lines {
        for clause in line.split(SENTENCE_PUNCT) {
            if clause.contains("决赛") {
                if counts.finalists.is_none() {
                    counts.finalists = count_before_any(clause, TEAMS);
                }
                continue;
            }
            if !clause.contains("选手") {
                continue;
            }
            if counts.teams.is_none() {
                counts.teams = count_before_any(clause, TEAMS);
            }
            if counts.participants.is_none() {
                counts.participants = clause.match_indices("选手").find_map(|(at, _)| {
                    let before = clause[..at].strip_suffix("参赛").unwrap_or(&clause[..at]);
                    let before = before
                        .strip_suffix('位')
                        .or_else(|| before.strip_suffix('名'))?;
                    number_before(before, before.len())
                });
            }
        }
    }
    counts
}

/// Provinces, municipalities and regions, for the id's slug.
const PLACES: &[(&str, &str)] = &[
    ("北京", "beijing"),
    ("天津", "tianjin"),
    ("河北", "hebei"),
    ("山西", "shanxi"),
    ("内蒙古", "neimenggu"),
    ("辽宁", "liaoning"),
    ("吉林", "jilin"),
    ("黑龙江", "heilongjiang"),
    ("上海", "shanghai"),
    ("江苏", "jiangsu"),
    ("浙江", "zhejiang"),
    ("安徽", "anhui"),
    ("福建", "fujian"),
    ("江西", "jiangxi"),
    ("山东", "shandong"),
    ("河南", "henan"),
    ("湖北", "hubei"),
    ("湖南", "hunan"),
    ("广东", "guangdong"),
    ("广西", "guangxi"),
    ("海南", "hainan"),
    ("重庆", "chongqing"),
    ("四川", "sichuan"),
    ("贵州", "guizhou"),
    ("云南", "yunnan"),
    ("西藏", "xizang"),
    ("陕西", "shaanxi"),
    ("甘肃", "gansu"),
    ("青海", "qinghai"),
    ("宁夏", "ningxia"),
    ("新疆", "xinjiang"),
    ("香港", "hongkong"),
    ("澳门", "macau"),
    ("台湾", "taiwan"),
];

/// `<year>-<slug>`; see the module documentation.
pub(crate) fn derive_id(contest: &str, year: u16) -> Result<String, ImportError> {
    let name = contest.get(4..).unwrap_or_default();
    let place = PLACES
        .iter()
        .filter_map(|(zh, slug)| name.find(zh).map(|at| (at, *slug)))
        .min_by_key(|(at, _)| *at)
        .map(|(_, slug)| slug.to_string());
    let slug = place.or_else(|| {
        name.split(|c: char| !c.is_ascii_alphanumeric())
            .find(|w| !w.is_empty())
            .map(str::to_ascii_lowercase)
    });
    match slug {
        Some(slug) => Ok(format!("{year}-{slug}")),
        None => Err(ImportError::NeedsId {
            contest: contest.to_string(),
        }),
    }
}

pub(crate) fn check_id(id: &str) -> Result<(), ImportError> {
    let bad = |why| {
        Err(ImportError::InvalidName {
            what: "report id",
            value: id.to_string(),
            why,
        })
    };
    if id.is_empty() || id.len() > 64 {
        return bad("must be 1 to 64 characters");
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
    {
        return bad("only lower-case ASCII letters, digits, `-`, `_` and `.` are allowed");
    }
    if !id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return bad("must start with a letter or a digit");
    }
    Ok(())
}

pub(crate) fn check_file_name(what: &'static str, name: &str) -> Result<(), ImportError> {
    let bad = |why| {
        Err(ImportError::InvalidName {
            what,
            value: name.to_string(),
            why,
        })
    };
    if name.trim().is_empty() {
        return bad("must not be empty");
    }
    if name.contains(['/', '\\', '\0']) || name == "." || name == ".." {
        return bad("must be a plain file name, without a directory");
    }
    if name.starts_with('.') {
        return bad("must not start with a dot");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contest_date_and_counts() {
        assert_eq!(
            find_contest("大赛自2022年7月开赛以来,2023浙江某某大赛顺利举办"),
            Some(("2023浙江某某大赛".to_string(), 2023))
        );
        assert_eq!(find_contest("2022年7月大赛"), None);
        assert_eq!(
            find_contest("2023年浙江某某大赛顺利举办"),
            Some(("2023年浙江某某大赛".to_string(), 2023))
        );
        assert_eq!(find_date("11月22日,由"), Some((None, 11, 22)));
        assert_eq!(find_date("于2021年3月5日"), Some((Some(2021), 3, 5)));
        let lines =
            ["有来自全省66个团队的307位参赛选手参与角逐,经过初赛、复赛,最终决出20个团队进入决赛。"];
        let c = find_counts(&lines);
        assert_eq!(
            (c.teams, c.participants, c.finalists),
            (Some(66), Some(307), Some(20))
        );
        let lines = ["12月1日,2023江苏测试大赛在南京举行。"];
        let f = find_final(&lines, "2023江苏测试大赛", 2023)
            .unwrap()
            .unwrap();
        assert_eq!(
            (f.year, f.month, f.day, f.city.as_str()),
            (2023, 12, 1, "南京")
        );
        let lines = ["2月30日,2023江苏测试大赛在南京举行。"];
        assert!(matches!(
            find_final(&lines, "2023江苏测试大赛", 2023),
            Err(ImportError::Line { line: 1, .. })
        ));
    }

    #[test]
    fn ids() {
        assert_eq!(
            derive_id("2022浙江银行业大赛", 2022).unwrap(),
            "2022-zhejiang"
        );
        assert_eq!(derive_id("2024ABC数据大赛", 2024).unwrap(), "2024-abc");
        assert!(matches!(
            derive_id("2024数据大赛", 2024),
            Err(ImportError::NeedsId { .. })
        ));
        assert!(check_id("../x").is_err());
        assert!(check_id("2024-x").is_ok());
        assert!(check_file_name("source name", "a/b.txt").is_err());
    }

    #[test]
    fn other_ways_to_say_where_and_when() {
        let lines = ["2023年11月21日,2023江苏测试大赛决赛于南京圆满落幕。"];
        let f = find_final(&lines, "2023江苏测试大赛", 2023)
            .unwrap()
            .unwrap();
        assert_eq!((f.month, f.day, f.city.as_str()), (11, 21, "南京"));
    }
}
