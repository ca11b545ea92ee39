//! Telegram HTML written by hand (`reportbot announce --html`), checked
//! before it is queued: a message Telegram cannot parse would fail for every
//! subscriber, so it is refused here with the problem and its place.
//!
//! The rules are those of the Bot API's HTML parse mode: the tags `b`,
//! `strong`, `i`, `em`, `u`, `ins`, `s`, `strike`, `del`, `a href`, `code`,
//! `pre`, `tg-spoiler`, `span class="tg-spoiler"` and `blockquote`
//! (optionally `expandable`), each closed in order; `<`, `>` and `&` in text
//! written as entities, of which Telegram knows `&lt;` `&gt;` `&amp;`
//! `&quot;` and numeric ones; nothing inside `code`, only `code` inside
//! `pre`, no link inside a link, no quote inside a quote; at most 4096
//! characters of text (UTF-16 units, tags not counted).
//!
//! Tokens come from `quick-xml` (a real tokenizer that gives byte offsets):
//! Telegram's HTML is stricter than a browser's, close to XML, so an
//! error-correcting HTML5 parser would accept what Telegram refuses.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

/// Longest message text Telegram accepts, in UTF-16 code units.
pub const MAX_TEXT_UNITS: usize = 4096;

/// The tags Telegram's HTML parse mode understands.
pub const ALLOWED_TAGS: [&str; 15] = [
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "a",
    "code",
    "pre",
    "tg-spoiler",
    "span",
    "blockquote",
];

/// What is wrong with the markup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("the message is empty")]
    Empty,
    #[error(
        "the text is {units} characters long (UTF-16 units, tags not counted); Telegram takes at most {MAX_TEXT_UNITS}"
    )]
    TooLong { units: usize },
    #[error("<{0}> is not a tag Telegram supports (allowed: {tags})", tags = ALLOWED_TAGS.join(", "))]
    UnsupportedTag(String),
    #[error("a `<` that starts no tag must be written &lt;")]
    BareLessThan,
    #[error("the tag is not closed with `>`")]
    UnclosedTag,
    #[error("a `&` that starts no entity must be written &amp;")]
    BareAmpersand,
    #[error(
        "&{0}; is not an entity Telegram knows (only &lt; &gt; &amp; &quot; and numeric ones such as &#160;)"
    )]
    UnknownEntity(String),
    #[error("&{0}; is not a valid character")]
    BadCharacter(String),
    #[error("<{tag}> opened at line {line}, column {column} is never closed")]
    NotClosed {
        tag: String,
        line: usize,
        column: usize,
    },
    #[error("</{0}> closes no open tag")]
    ClosesNothing(String),
    #[error(
        "</{found}> found where </{expected}> (opened at line {line}, column {column}) must close first"
    )]
    Mismatched {
        found: String,
        expected: String,
        line: usize,
        column: usize,
    },
    #[error("self-closing <{0}/> is not supported: write <{0}>…</{0}>")]
    SelfClosing(String),
    #[error("<a> needs an href attribute")]
    MissingHref,
    #[error("href {0:?} is not a link Telegram accepts (http://, https://, tg:// or mailto:)")]
    BadHref(String),
    #[error("<span> must be <span class=\"tg-spoiler\">")]
    SpanClass,
    #[error("<{tag}> does not take the attribute {attribute:?}")]
    BadAttribute { tag: String, attribute: String },
    #[error("<{inner}> cannot be inside <{outer}>")]
    Nested { inner: String, outer: String },
    #[error("{0} are not supported")]
    Unsupported(&'static str),
    #[error("{0}")]
    Syntax(String),
}

/// A problem and where it is: byte offset into the input, and 1-based line
/// and column (in characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {problem}")]
pub struct HtmlError {
    pub offset: usize,
    pub line: usize,
    pub column: usize,
    pub problem: Problem,
}

/// Markup that passed the check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedHtml {
    /// The markup as given, without leading and trailing whitespace.
    pub html: String,
    /// Length of the text a reader sees, in UTF-16 units.
    pub text_units: usize,
    /// Number of tags (formatting entities).
    pub tags: usize,
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let mut at = offset;
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}

struct Open {
    name: String,
    offset: usize,
}

/// Check pre-written Telegram HTML.
pub fn check(input: &str) -> Result<CheckedHtml, HtmlError> {
    let lead = input.len() - input.trim_start().len();
    let html = input.trim();
    let fail = |offset: usize, problem: Problem| {
        let offset = lead + offset;
        let (line, column) = line_column(input, offset);
        HtmlError {
            offset,
            line,
            column,
            problem,
        }
    };
    if html.is_empty() {
        return Err(fail(0, Problem::Empty));
    }
    let mut reader = Reader::from_str(html);
    // Tags are matched here, case-insensitively, with better messages.
    reader.config_mut().check_end_names = false;
    reader.config_mut().allow_unmatched_ends = true;
    let mut open: Vec<Open> = Vec::new();
    let mut units = 0usize;
    let mut visible = false;
    let mut tags = 0usize;
    loop {
        let at = reader.buffer_position() as usize;
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(e) => {
                let pos = reader.error_position() as usize;
                let rest = &html[pos.min(html.len())..];
                let problem = if let Some(after) = rest.strip_prefix('<') {
                    let next = after.chars().next();
                    if next.is_some_and(|c| c.is_ascii_alphabetic() || c == '/') {
                        Problem::UnclosedTag
                    } else {
                        Problem::BareLessThan
                    }
                } else if rest.starts_with('&') {
                    Problem::BareAmpersand
                } else {
                    Problem::Syntax(e.to_string())
                };
                return Err(fail(pos, problem));
            }
        };
        match event {
            Event::Eof => break,
            Event::Text(t) => {
                let text = String::from_utf8_lossy(&t);
                units += text.encode_utf16().count();
                visible |= !text.trim().is_empty();
            }
            Event::GeneralRef(r) => {
                let name = String::from_utf8_lossy(&r).to_string();
                let c = entity(&name).map_err(|p| fail(at, p))?;
                units += c.len_utf16();
                visible |= !c.is_whitespace();
            }
            Event::Start(s) => {
                let name = tag_name(&s).map_err(|p| fail(at, p))?;
                if let Some(outer) = open.last() {
                    nesting(&name, &outer.name, &open).map_err(|p| fail(at, p))?;
                }
                attributes(&s, &name, open.last().map(|o| o.name.as_str()))
                    .map_err(|p| fail(at, p))?;
                tags += 1;
                open.push(Open { name, offset: at });
            }
            Event::End(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).to_ascii_lowercase();
                match open.pop() {
                    Some(o) if o.name == name => {}
                    Some(o) => {
                        let (line, column) = line_column(input, lead + o.offset);
                        return Err(fail(
                            at,
                            Problem::Mismatched {
                                found: name,
                                expected: o.name,
                                line,
                                column,
                            },
                        ));
                    }
                    None => return Err(fail(at, Problem::ClosesNothing(name))),
                }
            }
            Event::Empty(s) => {
                let name = String::from_utf8_lossy(s.name().as_ref()).to_ascii_lowercase();
                return Err(fail(at, Problem::SelfClosing(name)));
            }
            Event::Comment(_) => return Err(fail(at, Problem::Unsupported("comments <!-- -->"))),
            Event::CData(_) => return Err(fail(at, Problem::Unsupported("CDATA sections"))),
            Event::Decl(_) | Event::PI(_) => {
                return Err(fail(at, Problem::Unsupported("<?…?> declarations")));
            }
            Event::DocType(_) => return Err(fail(at, Problem::Unsupported("<!DOCTYPE>"))),
        }
    }
    if let Some(o) = open.first() {
        let (line, column) = line_column(input, lead + o.offset);
        return Err(fail(
            o.offset,
            Problem::NotClosed {
                tag: o.name.clone(),
                line,
                column,
            },
        ));
    }
    if !visible {
        return Err(fail(0, Problem::Empty));
    }
    if units > MAX_TEXT_UNITS {
        return Err(fail(html.len(), Problem::TooLong { units }));
    }
    Ok(CheckedHtml {
        html: html.to_string(),
        text_units: units,
        tags,
    })
}

/// The character an entity stands for, as Telegram decodes it.
fn entity(name: &str) -> Result<char, Problem> {
    let numeric = if let Some(hex) = name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
        Some(u32::from_str_radix(hex, 16).ok())
    } else {
        name.strip_prefix('#').map(|dec| dec.parse::<u32>().ok())
    };
    match (name, numeric) {
        (_, Some(code)) => code
            .filter(|c| *c != 0)
            .and_then(char::from_u32)
            .ok_or_else(|| Problem::BadCharacter(name.to_string())),
        ("lt", None) => Ok('<'),
        ("gt", None) => Ok('>'),
        ("amp", None) => Ok('&'),
        ("quot", None) => Ok('"'),
        _ => Err(Problem::UnknownEntity(name.to_string())),
    }
}

/// The lower-case name of a start tag, if it is one Telegram supports.
fn tag_name(s: &BytesStart<'_>) -> Result<String, Problem> {
    let name = String::from_utf8_lossy(s.name().as_ref()).to_ascii_lowercase();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        // `a <1 b>` or `< b>`: text, not a tag.
        return Err(Problem::BareLessThan);
    }
    if !ALLOWED_TAGS.contains(&name.as_str()) {
        return Err(Problem::UnsupportedTag(name));
    }
    Ok(name)
}

/// Whether `inner` may be opened inside `outer` (and the tags above it).
fn nesting(inner: &str, outer: &str, open: &[Open]) -> Result<(), Problem> {
    let nested = |why_outer: &str| {
        Err(Problem::Nested {
            inner: inner.to_string(),
            outer: why_outer.to_string(),
        })
    };
    if outer == "code" || (outer == "pre" && inner != "code") {
        return nested(outer);
    }
    for o in open {
        let same_kind = match inner {
            "a" => o.name == "a",
            "blockquote" => o.name == "blockquote",
            "pre" => o.name == "pre",
            _ => false,
        };
        if same_kind {
            return nested(&o.name);
        }
    }
    Ok(())
}

/// The attributes a tag may have.
fn attributes(s: &BytesStart<'_>, tag: &str, parent: Option<&str>) -> Result<(), Problem> {
    let mut href: Option<String> = None;
    let mut class: Option<String> = None;
    for attr in s.html_attributes() {
        let attr = attr.map_err(|e| Problem::Syntax(format!("<{tag}>: {e}")))?;
        let key = String::from_utf8_lossy(attr.key.as_ref()).to_ascii_lowercase();
        let value = String::from_utf8_lossy(&attr.value).to_string();
        match (tag, key.as_str()) {
            ("a", "href") => href = Some(value),
            ("span" | "code", "class") => class = Some(value),
            ("blockquote", "expandable") => {}
            _ => {
                return Err(Problem::BadAttribute {
                    tag: tag.to_string(),
                    attribute: key,
                });
            }
        }
    }
    match tag {
        "a" => {
            let href = href.ok_or(Problem::MissingHref)?;
            let url = href.trim();
            let ok = ["http://", "https://", "tg://", "mailto:"]
                .iter()
                .any(|p| url.len() > p.len() && url[..p.len()].eq_ignore_ascii_case(p));
            if !ok {
                return Err(Problem::BadHref(href));
            }
        }
        "span" if class.as_deref() != Some("tg-spoiler") => return Err(Problem::SpanClass),
        "code" => {
            if let Some(c) = class
                && !(parent == Some("pre") && c.starts_with("language-") && c.len() > 9)
            {
                return Err(Problem::BadAttribute {
                    tag: "code".into(),
                    attribute: format!("class={c} (only class=\"language-…\" inside <pre>)"),
                });
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(html: &str) -> CheckedHtml {
        check(html).unwrap_or_else(|e| panic!("{html:?}: {e}"))
    }

    /// The problem and its line and column.
    fn bad(html: &str) -> (Problem, usize, usize) {
        let e = check(html).expect_err(html);
        (e.problem, e.line, e.column)
    }

    #[test]
    fn accepts_every_tag_telegram_supports() {
        let html = "<b>粗</b><strong>体</strong> <i>斜</i><em>体</em> <u>下</u><ins>划</ins> \
            <s>删</s><strike>除</strike><del>线</del> <a href=\"https://example.com/?a=1&b=2\">链接</a> \
            <code>code</code> <pre>pre</pre> <pre><code class=\"language-rust\">let x;</code></pre> \
            <tg-spoiler>剧透</tg-spoiler> <span class=\"tg-spoiler\">剧透</span> \
            <blockquote>引用</blockquote> <blockquote expandable>长引用</blockquote> \
            <B>大写</B> <a href='tg://user?id=1'>人</a> <b><i><u>叠</u></i></b>";
        let c = ok(html);
        assert_eq!(c.tags, 23);
        assert_eq!(c.html, html);
        assert_eq!(ok("  <b>x</b>\n").html, "<b>x</b>");
    }

    #[test]
    fn counts_the_text_a_reader_sees() {
        assert_eq!(
            ok("<b>新一届</b>大赛 &lt;报名&gt; &amp; &quot;x&quot;").text_units,
            16
        );
        assert_eq!(ok("&#128512;&#x1F600;").text_units, 4);
        assert_eq!(ok("a > b").text_units, 5);
        let long = format!("<b>{}</b>", "字".repeat(4096));
        assert_eq!(ok(&long).text_units, 4096);
        let e = check(&format!("<b>{}</b>", "字".repeat(4097))).unwrap_err();
        assert_eq!(e.problem, Problem::TooLong { units: 4097 });
    }

    #[test]
    fn rejects_unbalanced_tags_with_their_places() {
        assert_eq!(
            bad("新<b>一届"),
            (
                Problem::NotClosed {
                    tag: "b".into(),
                    line: 1,
                    column: 2
                },
                1,
                2
            )
        );
        assert_eq!(
            bad("<b>x</i>"),
            (
                Problem::Mismatched {
                    found: "i".into(),
                    expected: "b".into(),
                    line: 1,
                    column: 1
                },
                1,
                5
            )
        );
        assert_eq!(bad("x</b>"), (Problem::ClosesNothing("b".into()), 1, 2));
        assert_eq!(
            bad("第一行\n第二<b>行</i>"),
            (
                Problem::Mismatched {
                    found: "i".into(),
                    expected: "b".into(),
                    line: 2,
                    column: 3
                },
                2,
                7
            )
        );
        assert_eq!(bad("<b>x</b"), (Problem::UnclosedTag, 1, 5));
        assert_eq!(bad("<b/>"), (Problem::SelfClosing("b".into()), 1, 1));
    }

    #[test]
    fn rejects_tags_and_attributes_telegram_does_not_know() {
        assert_eq!(bad("a<br>b").0, Problem::UnsupportedTag("br".into()));
        assert_eq!(bad("<div>x</div>").0, Problem::UnsupportedTag("div".into()));
        assert_eq!(bad("<p>x</p>"), (Problem::UnsupportedTag("p".into()), 1, 1));
        assert_eq!(bad("<a>x</a>").0, Problem::MissingHref);
        assert_eq!(
            bad("<a href=\"javascript:x\">x</a>").0,
            Problem::BadHref("javascript:x".into())
        );
        assert_eq!(bad("<span>x</span>").0, Problem::SpanClass);
        assert_eq!(
            bad("<b style=\"x\">x</b>").0,
            Problem::BadAttribute {
                tag: "b".into(),
                attribute: "style".into()
            }
        );
        assert!(matches!(
            bad("<code class=\"language-rust\">x</code>").0,
            Problem::BadAttribute { .. }
        ));
        assert_eq!(
            bad("<!-- 备注 -->x").0,
            Problem::Unsupported("comments <!-- -->")
        );
    }

    #[test]
    fn rejects_bare_special_characters_and_unknown_entities() {
        assert_eq!(bad("价格 < 100").0, Problem::BareLessThan);
        assert_eq!(bad("a <1 b>").0, Problem::BareLessThan);
        assert_eq!(bad("工行 & 建行"), (Problem::BareAmpersand, 1, 4));
        assert_eq!(
            bad("a&nbsp;b"),
            (Problem::UnknownEntity("nbsp".into()), 1, 2)
        );
        assert_eq!(bad("&#0;").0, Problem::BadCharacter("#0".into()));
        assert_eq!(bad("&#xD800;").0, Problem::BadCharacter("#xD800".into()));
    }

    #[test]
    fn rejects_nesting_telegram_refuses() {
        assert_eq!(
            bad("<code><b>x</b></code>").0,
            Problem::Nested {
                inner: "b".into(),
                outer: "code".into()
            }
        );
        assert_eq!(
            bad("<pre><i>x</i></pre>").0,
            Problem::Nested {
                inner: "i".into(),
                outer: "pre".into()
            }
        );
        assert!(matches!(
            bad("<a href=\"https://a\"><b><a href=\"https://b\">x</a></b></a>").0,
            Problem::Nested { .. }
        ));
        assert!(matches!(
            bad("<blockquote><blockquote>x</blockquote></blockquote>").0,
            Problem::Nested { .. }
        ));
    }

    #[test]
    fn rejects_empty_messages_and_names_positions_after_leading_space() {
        assert_eq!(bad("  ").0, Problem::Empty);
        assert_eq!(bad("<b> </b>").0, Problem::Empty);
        let e = check("\n\n  <b>x").unwrap_err();
        assert_eq!((e.line, e.column, e.offset), (3, 3, 4));
        assert_eq!(
            e.to_string(),
            "line 3, column 3: <b> opened at line 3, column 3 is never closed"
        );
    }
}
