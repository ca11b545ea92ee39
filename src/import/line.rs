//! What one line of text is, on its own: a heading, entries, a note or other
//! text. Table rows are read by [`super::table`].

use super::prize::{self, Label};
use super::row::{self, Row, SENTENCE_PUNCT};
use crate::engine::normalize::normalize_word;

/// Longer lines are prose, not list entries or headings.
pub(crate) const MAX_LIST_LINE_CHARS: usize = 60;

/// How a heading is numbered. Headings with the same style are siblings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Numbering {
    /// `一、`
    Chinese,
    /// `（一）`, `㈠`
    ChineseParen,
    /// `1.`, `1、`, `⒈`
    Digit,
    /// `(1)`, `⑴`
    DigitParen,
    /// `①`
    Circled,
    /// Markdown `#`, `##` …
    Markdown(u8),
}

/// One part of a line of entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    /// `团体一等奖:` before the rows it introduces.
    Label(Label),
    Row(Row),
    /// An entry that could not be read.
    Bad {
        text: String,
        why: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Class {
    Blank,
    /// `荣誉榜`, `获奖名单如下:` … (with what else it names: `银行机构组获奖名单`).
    ListHeading(Label),
    /// A line that is only a label: `一、银行机构组`, `团体一等奖(银行机构组)`, `1.一等奖`.
    Heading {
        numbering: Option<Numbering>,
        label: Label,
    },
    /// Names a prize but cannot be read as a heading.
    BadHeading(String),
    /// Rows, possibly after labels: `团体一等奖:浙商银行 数智先锋队;杭州银行 杭银数据队`.
    Entries {
        numbering: Option<Numbering>,
        parts: Vec<Part>,
    },
    /// `（排名不分先后）`, `注:…`: a remark about the list.
    Note,
    /// `责任编辑：…`, `（来源：…）`: the page's byline, after the article.
    Byline,
    /// Anything else, with why it is not an entry.
    Other(String),
}

impl Class {
    /// Names a prize (so a list goes on up to it).
    pub fn names_prize(&self) -> bool {
        match self {
            Class::Heading { label, .. } => label.name.is_some(),
            Class::Entries { parts, .. } => parts
                .iter()
                .any(|p| matches!(p, Part::Label(l) if l.name.is_some())),
            _ => false,
        }
    }
}

/// Heading words of an award list.
const LIST_WORDS: &[&str] = &["荣誉榜", "获奖名单", "表彰名单", "获奖情况", "获奖结果"];
/// What may follow them: `获奖名单如下:`, `现将获奖名单公布如下`.
const LIST_TAILS: &[&str] = &["", "如下", "公布如下", "公示如下", "如下所示", "一览"];

/// Words of remarks about a list.
const NOTE_WORDS: &[&str] = &["排名不分先后", "不分先后", "排序", "为序", "排名", "顺序"];

/// Sentence punctuation or too long: a sentence, not an entry of a list.
pub(crate) fn is_prose(line: &str) -> bool {
    line.contains(SENTENCE_PUNCT) || line.chars().count() > MAX_LIST_LINE_CHARS
}

fn chinese_numeral(c: char) -> bool {
    "一二三四五六七八九十".contains(c)
}

fn ascii_digit(c: char) -> bool {
    c.is_ascii_digit() || ('０'..='９').contains(&c)
}

fn trim(s: &str) -> &str {
    s.trim_start_matches(row::is_separator)
}

/// Remove a numbering or bullet at the start: (numbering, rest).
pub(crate) fn strip_numbering(line: &str) -> (Option<Numbering>, &str) {
    // Markdown headings and emphasis.
    if line.starts_with('#') {
        let hashes = line.chars().take_while(|c| *c == '#').count();
        let rest = &line[hashes..];
        if hashes <= 6 && rest.starts_with(' ') {
            let rest = rest.trim().trim_matches('*').trim();
            let hashes = u8::try_from(hashes).unwrap_or(6);
            return (Some(Numbering::Markdown(hashes)), strip_numbering(rest).1);
        }
    }
    let mut chars = line.char_indices();
    let Some((_, first)) = chars.next() else {
        return (None, line);
    };
    let after = |i: usize| trim(&line[i..]);
    match first {
        '①'..='⑳' => return (Some(Numbering::Circled), after(first.len_utf8())),
        '⑴'..='⒇' => return (Some(Numbering::DigitParen), after(first.len_utf8())),
        '⒈'..='⒛' => return (Some(Numbering::Digit), after(first.len_utf8())),
        '㈠'..='㈩' => return (Some(Numbering::ChineseParen), after(first.len_utf8())),
        '-' | '*' | '•' | '●' | '○' | '■' | '□' | '◆' | '◇' | '▪' | '►' | '√' | '·'
            if line[first.len_utf8()..].starts_with(|c: char| row::is_separator(c))
                || !matches!(first, '-' | '*' | '·') =>
        {
            // A bullet: not a numbering of headings.
            return (None, after(first.len_utf8()));
        }
        '(' | '（' => {
            let inner_start = first.len_utf8();
            let inner: String = line[inner_start..]
                .chars()
                .take_while(|c| chinese_numeral(*c) || ascii_digit(*c))
                .collect();
            if !inner.is_empty() {
                let close_at = inner_start + inner.len();
                if let Some(close) = line[close_at..]
                    .chars()
                    .next()
                    .filter(|c| matches!(c, ')' | '）'))
                {
                    let rest = after(close_at + close.len_utf8());
                    let style = if inner.chars().all(chinese_numeral) {
                        Numbering::ChineseParen
                    } else if inner.chars().all(ascii_digit) {
                        Numbering::DigitParen
                    } else {
                        return (None, line);
                    };
                    return (Some(style), rest);
                }
            }
            return (None, line);
        }
        _ => {}
    }
    let run: String = line.chars().take_while(|c| chinese_numeral(*c)).collect();
    if !run.is_empty() {
        let rest = &line[run.len()..];
        if let Some(r) = rest.strip_prefix(['、', '.', '．']) {
            return (Some(Numbering::Chinese), trim(r));
        }
        return (None, line);
    }
    let run: String = line.chars().take_while(|c| ascii_digit(*c)).collect();
    if !run.is_empty() && run.chars().count() <= 3 {
        let rest = &line[run.len()..];
        for sep in ['、', '.', '．'] {
            if let Some(r) = rest.strip_prefix(sep)
                && !r.starts_with(ascii_digit)
            {
                return (Some(Numbering::Digit), trim(r));
            }
        }
    }
    (None, line)
}

/// A label line may end with a colon and carry markdown emphasis.
fn label_text(rest: &str) -> &str {
    rest.trim()
        .trim_matches('*')
        .trim_end_matches([':', '：'])
        .trim_matches('*')
        .trim()
}

/// `荣誉榜`, `获奖名单如下:`, `银行机构组获奖名单`: `Some(what else it names)`.
fn list_heading(rest: &str) -> Option<Label> {
    // Cheap test first: every list word has one of these (either script).
    if !rest.contains(['榜', '单', '單', '况', '況', '果']) {
        return None;
    }
    let mut text = label_text(rest);
    // `…评出奖项30项。获奖名单如下：` ends a paragraph.
    if rest.trim_end().ends_with([':', '：'])
        && let Some(at) = text.rfind(SENTENCE_PUNCT)
    {
        text = text[at..].trim_start_matches(SENTENCE_PUNCT).trim();
    }
    if text.chars().count() > 40 || is_prose(text) {
        return None;
    }
    let norm = normalize_word(text);
    for word in LIST_WORDS {
        let Some(at) = norm.rfind(word) else { continue };
        let tail = &norm[at + word.len()..];
        if !LIST_TAILS.contains(&tail) {
            continue;
        }
        let head = &norm[..at];
        // What comes before may name a group or kind (`银行机构组获奖名单`);
        // other words (the contest's name, 现将, 附件) are allowed.
        let label = prize::recognize(head).unwrap_or_default();
        if label.name.is_some() {
            // `团体一等奖获奖名单` is a prize heading.
            return None;
        }
        return Some(label);
    }
    None
}

/// Split entries at `;`, `、`, `,` (either width) and `。` (between prizes), never
/// inside brackets or quotes.
fn split_items(s: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let mut depth = 0i32;
    let mut quoted = false;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' | '（' | '【' | '[' | '《' => depth += 1,
            ')' | '）' | '】' | ']' | '》' => depth -= 1,
            '“' | '「' => quoted = true,
            '”' | '」' => quoted = false,
            '"' => quoted = !quoted,
            ';' | '；' | '、' | ',' | '，' | '。' if depth <= 0 && !quoted => {
                items.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    items.push(&s[start..]);
    items
        .into_iter()
        .map(|i| i.trim_matches(|c: char| row::is_separator(c) || c.is_whitespace()))
        .filter(|i| !i.is_empty())
        .collect()
}

/// The first `:` outside brackets: (label, rest).
fn split_colon(item: &str) -> Option<(&str, &str)> {
    let mut depth = 0i32;
    for (i, c) in item.char_indices() {
        match c {
            '(' | '（' | '【' => depth += 1,
            ')' | '）' | '】' => depth -= 1,
            ':' | '：' if depth <= 0 => return Some((&item[..i], &item[i + c.len_utf8()..])),
            _ => {}
        }
    }
    None
}

/// `团体一等奖:浙商银行 数智先锋队;杭州银行 杭银数据队`, or rows separated by `;`.
/// `None` when the line is not entries at all.
fn entries(rest: &str, known: &[String]) -> Option<Vec<Part>> {
    let rest = rest.trim_end_matches(['。', '.']);
    let items = split_items(rest);
    let mut parts = Vec::new();
    let mut labels = 0;
    for item in &items {
        let (label, body) = match split_colon(item) {
            Some((head, body)) => {
                let head = label_text(head);
                if !prize::may_be_label(head) {
                    return None;
                }
                let label = prize::recognize(head)?;
                labels += 1;
                (Some(label), body)
            }
            None => (None, *item),
        };
        if let Some(label) = label {
            parts.push(Part::Label(label));
        }
        let body = body.trim();
        if body.is_empty() {
            continue;
        }
        match row::parse(body, known) {
            Ok(r) => parts.push(Part::Row(r)),
            Err(why) => parts.push(Part::Bad {
                text: body.to_string(),
                why,
            }),
        }
    }
    let rows = parts.iter().filter(|p| matches!(p, Part::Row(_))).count();
    let bad = parts.len() - rows - labels;
    // Without a label, every item must be a row (a sentence with commas is prose).
    if labels == 0 && (bad > 0 || rows == 0) {
        return None;
    }
    Some(parts)
}

/// Words of a byline: `责任编辑：叶青`, `（来源：浙江日报）`.
const BYLINE_WORDS: &[&str] = &[
    "责任编辑",
    "编辑",
    "来源",
    "审核",
    "校对",
    "撰稿",
    "作者",
    "记者",
    "通讯员",
    "供稿",
    "摄影",
    "责编",
    "审校",
    "终审",
    "初审",
    "复审",
];

fn is_byline(rest: &str) -> bool {
    let t = rest
        .trim()
        .trim_matches('*')
        .trim_start_matches(['（', '(', '【', '['])
        .trim_end_matches(['）', ')', '】', ']']);
    if t.chars().count() <= 40
        && (t.contains("供稿") || t.contains("来源：") || t.contains("来源:"))
    {
        return true;
    }
    BYLINE_WORDS.iter().any(|w| {
        t.strip_prefix(w)
            .is_some_and(|r| r.trim_start().starts_with([':', '：', ' ', '\u{3000}']))
    })
}

fn is_note(rest: &str) -> bool {
    let t = rest.trim();
    let bracketed = (t.starts_with(['（', '(']) && t.ends_with(['）', ')']))
        || (t.starts_with('【') && t.ends_with('】'));
    let remark = ["注:", "注：", "备注", "说明:", "说明："]
        .iter()
        .any(|w| t.starts_with(w));
    remark || (bracketed && NOTE_WORDS.iter().any(|w| t.contains(w)))
}

/// Classify one line. `known` are institutions named so far in this import.
pub(crate) fn classify(raw: &str, known: &[String]) -> Class {
    let line = raw.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}' || c == '\u{3000}');
    if line.is_empty() {
        return Class::Blank;
    }
    // A Markdown rule or a row of dashes separates, like a blank line.
    if line.len() >= 3
        && line
            .chars()
            .all(|c| matches!(c, '-' | '*' | '_' | '—' | '=' | ' '))
    {
        return Class::Blank;
    }
    let (numbering, rest) = strip_numbering(line);
    if rest.is_empty() {
        return Class::Other("a number alone".into());
    }
    if let Some(label) = list_heading(rest) {
        return Class::ListHeading(label);
    }
    let text = label_text(rest);
    if !is_prose(text)
        && prize::may_be_label(text)
        && let Some(label) = prize::recognize(text)
    {
        return Class::Heading { numbering, label };
    }
    if is_note(rest) {
        return Class::Note;
    }
    if is_byline(rest) {
        return Class::Byline;
    }
    if let Some(parts) = entries(rest, known) {
        return Class::Entries { numbering, parts };
    }
    if !is_prose(rest) && rest.contains(['奖', '獎']) && normalize_word(rest).chars().count() <= 20
    {
        return Class::BadHeading(
            "names a prize but is not a heading like 团体一等奖(银行机构组), 一、银行机构组 or 最佳人气奖"
                .to_string(),
        );
    }
    match row::parse(rest, known) {
        Ok(r) => Class::Entries {
            numbering,
            parts: vec![Part::Row(r)],
        },
        Err(why) => Class::Other(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::prize::Name;
    use crate::knowledge::{Group, Kind, Level};

    fn row(i: &str, w: &str) -> Part {
        Part::Row(Row {
            institution: i.into(),
            winner: w.into(),
        })
    }

    #[test]
    fn numbering_styles() {
        assert_eq!(
            strip_numbering("一、银行机构组"),
            (Some(Numbering::Chinese), "银行机构组")
        );
        assert_eq!(
            strip_numbering("（二）保险机构组"),
            (Some(Numbering::ChineseParen), "保险机构组")
        );
        assert_eq!(
            strip_numbering("(2)团体二等奖"),
            (Some(Numbering::DigitParen), "团体二等奖")
        );
        assert_eq!(
            strip_numbering("１．团体一等奖"),
            (Some(Numbering::Digit), "团体一等奖")
        );
        assert_eq!(
            strip_numbering("③ 个人三等奖"),
            (Some(Numbering::Circled), "个人三等奖")
        );
        assert_eq!(
            strip_numbering("## 银行机构组"),
            (Some(Numbering::Markdown(2)), "银行机构组")
        );
        assert_eq!(strip_numbering("2.7亿次"), (None, "2.7亿次"));
        assert_eq!(strip_numbering("11月22日"), (None, "11月22日"));
        assert_eq!(strip_numbering("- 浙商银行 队"), (None, "浙商银行 队"));
    }

    #[test]
    fn headings_and_list_headings() {
        for h in [
            "荣誉榜",
            "獲獎名單",
            "获奖名单如下：",
            "现将获奖名单公布如下:",
            "**表彰名单**",
        ] {
            assert_eq!(
                classify(h, &[]),
                Class::ListHeading(Label::default()),
                "{h}"
            );
        }
        assert!(matches!(
            classify("大赛现场公布了获奖名单。", &[]),
            Class::Other(_)
        ));
        assert_eq!(
            classify("（二）保险机构组", &[]),
            Class::Heading {
                numbering: Some(Numbering::ChineseParen),
                label: Label {
                    group: Some(Group::Insurance),
                    ..Label::default()
                }
            }
        );
        assert_eq!(classify("（排名不分先后）", &[]), Class::Note);
        assert!(matches!(
            classify("团体一等奖 银行组 第一名", &[]),
            Class::BadHeading(_)
        ));
    }

    #[test]
    fn entries_inline() {
        let first = Label {
            kind: Some(Kind::Team),
            name: Some(Name::Level(Level::First)),
            ..Label::default()
        };
        assert_eq!(
            classify(
                "团体一等奖：浙商银行 数智先锋队；杭州银行 杭银数据队、宁波银行 甬数队。",
                &[]
            ),
            Class::Entries {
                numbering: None,
                parts: vec![
                    Part::Label(first.clone()),
                    row("浙商银行", "数智先锋队"),
                    row("杭州银行", "杭银数据队"),
                    row("宁波银行", "甬数队"),
                ]
            }
        );
        let Class::Entries { parts, .. } = classify(
            "一等奖:浙商银行 甲队;二等奖(2个):杭州银行 乙队,宁波银行 丙队",
            &[],
        ) else {
            panic!()
        };
        assert_eq!(parts.len(), 5);
        assert_eq!(
            classify("工商银行浙江省分行 工银浙里队", &[]),
            Class::Entries {
                numbering: None,
                parts: vec![row("工商银行浙江省分行", "工银浙里队")]
            }
        );
        // A sentence with commas is not a list of rows.
        assert!(matches!(
            classify("本次大赛共评出团体奖项20个,个人奖项20个", &[]),
            Class::Other(_)
        ));
    }
}
