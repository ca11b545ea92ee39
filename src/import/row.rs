//! One entry of an award list: who (a team or a person) of which institution.
//!
//! The forms pages use, in the order they are tried:
//!
//! - `数智先锋队（浙商银行）`: the winner, then the institution in brackets;
//! - `浙商银行 数智先锋队`: separated by spaces (ASCII, full-width, no-break)
//!   or tabs. With more than two fields the institution ends where an
//!   institution's name ends (银行, 分行, 公司 …) and the rest is one name:
//!   `王　芳` (a two-character name padded to the width of three) becomes
//!   `王芳`, `David Chen` keeps its space;
//! - `浙商银行“数智先锋队”`: the team's name in quotation marks right after
//!   the institution;
//! - `浙商银行数智先锋队`: written together; split after an institution this
//!   import already knows, or after the first institution ending (extended
//!   over a branch: `杭州银行科技支行`).
//!
//! A winner wholly inside quotation marks loses them (`“数智先锋队”` →
//! `数智先锋队`); quotation marks inside a name are kept
//! (`太平洋产险浙江分公司“数智”队`). Otherwise the text is kept as written.
//! The loader compares rows with their source line without quotation marks
//! and spaces, so nothing here can make a row that is not on its line.

use crate::engine::normalize::is_cjk;

/// The most characters a name (institution or winner) may have.
pub(crate) const MAX_FIELD_CHARS: usize = 40;

/// Sentence punctuation: a line with it is prose, not an entry.
pub(crate) const SENTENCE_PUNCT: &[char] = &['。', ',', '，', ';', '；', '!', '！', '?', '？'];
pub(crate) const QUOTES: &[char] = &['“', '”', '"', '「', '」', '‘', '’', '\'', '『', '』'];

/// Endings of institution names.
const INSTITUTION_ENDINGS: &[&str] = &[
    "分公司",
    "支公司",
    "公司",
    "分行",
    "支行",
    "营业部",
    "银行",
    "农商行",
    "信用社",
    "联社",
    "人寿",
    "财险",
    "产险",
    "寿险",
    "保险",
    "集团",
    "中心",
    "协会",
    "分局",
];

/// Endings that continue an institution's name (a branch after a bank).
const BRANCH_ENDINGS: &[&str] = &["分公司", "支公司", "分行", "支行", "营业部", "中心"];

pub(crate) fn is_separator(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{3000}' | '\u{a0}')
}

/// An institution and its winner, as written (trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    pub institution: String,
    pub winner: String,
}

/// Read one entry; `known` are institutions named so far (longest first is not
/// needed: the longest match wins).
pub(crate) fn parse(raw: &str, known: &[String]) -> Result<Row, String> {
    let text = raw.trim_matches(|c: char| is_separator(c) || c.is_whitespace());
    let text = text.trim_end_matches(['。', ';', '；', ',', '，', '、', '.']);
    if text.is_empty() {
        return Err("empty entry".into());
    }
    if text.contains(['。', '!', '！', '?', '？']) {
        return Err("sentence punctuation: not an `institution  team-or-person` entry".into());
    }
    if let Some(row) = bracketed(text) {
        return check(row);
    }
    let fields = split_fields(text);
    match fields.len() {
        0 => Err("empty entry".into()),
        1 => joined(text, known).map_or_else(
            || {
                Err(
                    "one field only: expected `institution  team-or-person` separated by spaces"
                        .into(),
                )
            },
            check,
        ),
        2 => check(Row {
            institution: fields[0].to_string(),
            winner: unquote(fields[1]).to_string(),
        }),
        _ => spaced(&fields).map_or_else(
            || {
                Err(format!(
                    "{} fields: cannot tell where the institution ends and the name begins",
                    fields.len()
                ))
            },
            check,
        ),
    }
}

pub(crate) fn check(row: Row) -> Result<Row, String> {
    if row.institution.is_empty() || row.winner.is_empty() {
        return Err("an empty institution or name".into());
    }
    if row.institution.contains(QUOTES) {
        return Err("quotation marks in the institution".into());
    }
    if row.institution.contains(SENTENCE_PUNCT) || row.winner.contains(SENTENCE_PUNCT) {
        return Err("sentence punctuation: not an `institution  team-or-person` entry".into());
    }
    if row.institution.chars().count() > MAX_FIELD_CHARS
        || row.winner.chars().count() > MAX_FIELD_CHARS
    {
        return Err(format!("a field longer than {MAX_FIELD_CHARS} characters"));
    }
    Ok(row)
}

/// Fields separated by spaces; text inside quotation marks is never split.
fn split_fields(text: &str) -> Vec<&str> {
    let mut fields = Vec::new();
    let mut start: Option<usize> = None;
    let mut quoted = false;
    for (i, c) in text.char_indices() {
        match c {
            '“' | '「' | '『' => quoted = true,
            '”' | '」' | '』' => quoted = false,
            '"' => quoted = !quoted,
            _ => {}
        }
        if is_separator(c) && !quoted {
            if let Some(s) = start.take() {
                fields.push(&text[s..i]);
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        fields.push(&text[s..]);
    }
    fields
}

/// `“数智先锋队”` → `数智先锋队`; `太平洋“数智”队` stays.
pub(crate) fn unquote(s: &str) -> &str {
    for (open, close) in [('“', '”'), ('"', '"'), ('「', '」'), ('『', '』')] {
        if let Some(inner) = s.strip_prefix(open).and_then(|r| r.strip_suffix(close))
            && !inner.is_empty()
            && !inner.contains([open, close])
        {
            return inner;
        }
    }
    s
}

pub(crate) fn ends_like_institution(s: &str) -> bool {
    INSTITUTION_ENDINGS.iter().any(|e| s.ends_with(e))
}

/// `数智先锋队（浙商银行）`.
fn bracketed(text: &str) -> Option<Row> {
    let (open, close) = if text.ends_with('）') {
        ('（', '）')
    } else if text.ends_with(')') {
        ('(', ')')
    } else {
        return None;
    };
    let at = text.rfind(open)?;
    let inner = text[at + open.len_utf8()..text.len() - close.len_utf8()].trim();
    let winner = text[..at].trim_matches(is_separator);
    if winner.is_empty() || !ends_like_institution(inner) || inner.contains(is_separator) {
        return None;
    }
    Some(Row {
        institution: inner.to_string(),
        winner: unquote(winner).to_string(),
    })
}

/// A name written across several fields: single characters (`王 芳`), or
/// words of Latin letters and digits (`David Chen`, `AI 先锋队`).
fn spaced_name(fields: &[&str]) -> Option<String> {
    if fields.len() == 1 {
        return Some(unquote(fields[0]).to_string());
    }
    let single_cjk = |f: &&str| {
        let mut cs = f.chars();
        cs.next().is_some_and(is_cjk) && cs.next().is_none()
    };
    if fields.iter().all(single_cjk) && fields.len() <= 4 {
        return Some(fields.concat());
    }
    let latin = |f: &&str| f.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if fields[..fields.len() - 1].iter().all(latin) {
        return Some(fields.join(" "));
    }
    None
}

/// Fields of an institution: Chinese parts join up, Latin ones keep a space.
fn join_institution(fields: &[&str]) -> String {
    let mut out = String::new();
    for f in fields {
        let latin_boundary = out
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric())
            || f.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        if !out.is_empty() && latin_boundary {
            out.push(' ');
        }
        out.push_str(f);
    }
    out
}

/// More than two fields: the institution is the first fields up to an
/// institution ending, the rest one spaced name.
fn spaced(fields: &[&str]) -> Option<Row> {
    let mut found = None;
    for k in (1..fields.len()).rev() {
        let institution = join_institution(&fields[..k]);
        if !ends_like_institution(&institution) {
            continue;
        }
        if let Some(winner) = spaced_name(&fields[k..]) {
            if found.is_some() {
                // Two readings: refuse rather than guess.
                return None;
            }
            found = Some(Row {
                institution,
                winner,
            });
        }
    }
    found
}

/// `浙商银行“数智先锋队”` or `浙商银行数智先锋队`.
fn joined(text: &str, known: &[String]) -> Option<Row> {
    // A quoted name right after the institution.
    if let Some(at) = text.find(['“', '「', '"', '『']) {
        let (institution, winner) = text.split_at(at);
        if ends_like_institution(institution) && unquote(winner) != winner {
            return Some(Row {
                institution: institution.to_string(),
                winner: unquote(winner).to_string(),
            });
        }
    }
    let min_winner = |rest: &str| rest.chars().count() >= 2;
    if let Some(name) = known
        .iter()
        .filter(|k| text.starts_with(k.as_str()) && min_winner(&text[k.len()..]))
        .max_by_key(|k| k.len())
    {
        return Some(Row {
            institution: name.clone(),
            winner: text[name.len()..].to_string(),
        });
    }
    // The first institution ending, extended over a branch name that follows.
    let ends: Vec<(usize, bool)> = (1..=text.len())
        .filter(|&i| text.is_char_boundary(i))
        .filter_map(|i| {
            let head = &text[..i];
            INSTITUTION_ENDINGS
                .iter()
                .find(|e| head.ends_with(*e))
                .map(|e| (i, BRANCH_ENDINGS.contains(e)))
        })
        .collect();
    let (mut end, _) = *ends.first()?;
    for &(next, branch) in &ends[1..] {
        if branch && text[end..next].chars().count() <= 8 && min_winner(&text[next..]) {
            end = next;
        }
    }
    let winner = &text[end..];
    // `测试银行丁分行` is one institution, `某某银行获得一等奖` a sentence.
    if !min_winner(winner)
        || winner.starts_with(['（', '('])
        || ends_like_institution(winner)
        || winner.contains(['奖', '获'])
    {
        return None;
    }
    Some(Row {
        institution: text[..end].to_string(),
        winner: winner.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: &str, w: &str) -> Result<Row, String> {
        Ok(Row {
            institution: i.into(),
            winner: w.into(),
        })
    }

    #[test]
    fn the_forms_pages_use() {
        let none: &[String] = &[];
        assert_eq!(
            parse("工商银行浙江省分行 工银浙里队", none),
            row("工商银行浙江省分行", "工银浙里队")
        );
        assert_eq!(
            parse(
                "太保财险浙江分公司 \u{3000}\t太平洋产险浙江分公司“数智”队  ",
                none
            ),
            row("太保财险浙江分公司", "太平洋产险浙江分公司“数智”队")
        );
        assert_eq!(
            parse("数智先锋队（浙商银行）", none),
            row("浙商银行", "数智先锋队")
        );
        assert_eq!(
            parse("“数智先锋”队(浙商银行)", none),
            row("浙商银行", "“数智先锋”队")
        );
        assert_eq!(
            parse("浙商银行 “数智先锋队”", none),
            row("浙商银行", "数智先锋队")
        );
        assert_eq!(
            parse("浙商银行“数智先锋队”", none),
            row("浙商银行", "数智先锋队")
        );
        assert_eq!(parse("杭州银行　王　芳", none), row("杭州银行", "王芳"));
        assert_eq!(
            parse("宁波银行 David Chen", none),
            row("宁波银行", "David Chen")
        );
        assert_eq!(
            parse("中国银行 浙江省分行 王芳", none),
            row("中国银行浙江省分行", "王芳")
        );
        assert_eq!(
            parse("泰隆银行 阿依古丽·买买提", none),
            row("泰隆银行", "阿依古丽·买买提")
        );
        assert_eq!(
            parse("杭州银行杭银数据队", none),
            row("杭州银行", "杭银数据队")
        );
        assert_eq!(
            parse("杭州银行科技支行数据队", none),
            row("杭州银行科技支行", "数据队")
        );
        let known = vec!["浙江泰隆商业银行".to_string()];
        assert_eq!(
            parse("浙江泰隆商业银行泰好队", &known),
            row("浙江泰隆商业银行", "泰好队")
        );
    }

    #[test]
    fn what_is_not_an_entry() {
        let none: &[String] = &[];
        for bad in [
            "浙商银行",
            "本报记者 赵琦 通讯员 吴梦霞",
            "打出反诈“组合拳” 守护人民“钱袋子”",
            "工行温州分行联合蒲鞋市小学开展“金融知识进校园”活动。 侯明哲摄",
            "（排名不分先后）",
        ] {
            assert!(parse(bad, none).is_err(), "{bad}");
        }
    }
}
