//! A strict re-implementation of Telegram's `parse_mode=HTML` parser (modelled
//! on tdlib's `parse_html`), used by the fake Bot API to reject what Telegram
//! would reject.
//!
//! It is *stricter* than Telegram in two documented places, so that sloppy
//! escaping in the bot is caught early:
//! * a bare `&` that does not start one of `&lt; &gt; &amp; &quot; &#NN; &#xHH;`
//!   is an error (Telegram would keep it as a literal `&`);
//! * attribute values must be quoted (Telegram also accepts bare name tokens),
//!   except the value-less `expandable` attribute of `blockquote`.
//!
//! Unknown attributes on allowed tags are ignored, like Telegram does.

/// One formatting entity produced by the parser (offsets/lengths in UTF-16
/// code units, like Telegram's `MessageEntity`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HtmlEntity {
    /// Telegram entity type: `bold`, `italic`, `underline`, `strikethrough`,
    /// `spoiler`, `text_link`, `code`, `pre`, `blockquote`,
    /// `expandable_blockquote`, `custom_emoji`.
    pub kind: &'static str,
    pub offset: usize,
    pub length: usize,
    /// `text_link` only.
    pub url: Option<String>,
    /// `pre` only.
    pub language: Option<String>,
    /// `custom_emoji` only.
    pub custom_emoji_id: Option<String>,
}

impl HtmlEntity {
    /// The entity as Telegram's JSON `MessageEntity`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("type".into(), self.kind.into());
        m.insert("offset".into(), self.offset.into());
        m.insert("length".into(), self.length.into());
        if let Some(u) = &self.url {
            m.insert("url".into(), u.clone().into());
        }
        if let Some(l) = &self.language {
            m.insert("language".into(), l.clone().into());
        }
        if let Some(c) = &self.custom_emoji_id {
            m.insert("custom_emoji_id".into(), c.clone().into());
        }
        serde_json::Value::Object(m)
    }
}

/// Result of parsing a message in HTML parse mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedHtml {
    /// The visible text (tags removed, entities decoded), untrimmed.
    pub text: String,
    /// `text` length in UTF-16 code units.
    pub utf16_len: usize,
    /// Formatting entities, sorted by offset (then longest first).
    pub entities: Vec<HtmlEntity>,
}

/// Checks `text` like Telegram's HTML parse mode does and returns the visible
/// text length in UTF-16 code units, or the parser error (the part that
/// follows `"Bad Request: can't parse entities: "` in Telegram's answer).
pub fn check_telegram_html(text: &str) -> Result<usize, String> {
    parse_telegram_html(text).map(|p| p.utf16_len)
}

/// Length of `s` in UTF-16 code units (what Telegram counts).
pub fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// Escapes `&`, `<`, `>` and `"` so that `s` is shown verbatim in HTML mode.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

const ALLOWED_TAGS: &[&str] = &[
    "a",
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "code",
    "pre",
    "blockquote",
    "tg-emoji",
];

struct OpenTag {
    name: String,
    /// href / language / spoiler / emoji id / expandable
    argument: Option<String>,
    start_utf16: usize,
    /// For `pre`: language taken from an inner `<code class="language-…">`.
    inner_language: Option<String>,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'\x0c' | b'\x0b')
}

/// Decodes the HTML entity starting at byte `i` (which is `&`).
/// Returns the decoded char and the index just after the `;`.
fn decode_entity(text: &str, i: usize) -> Result<(char, usize), String> {
    let b = text.as_bytes();
    debug_assert_eq!(b[i], b'&');
    let rest = &text[i + 1..];
    for (name, ch) in [("lt;", '<'), ("gt;", '>'), ("amp;", '&'), ("quot;", '"')] {
        if rest.starts_with(name) {
            return Ok((ch, i + 1 + name.len()));
        }
    }
    let err = || {
        format!(
            "Unsupported HTML entity at byte offset {i} (only &lt; &gt; &amp; &quot; and numeric \
             entities are allowed; escape a literal '&' as &amp;)"
        )
    };
    if let Some(num) = rest.strip_prefix('#') {
        let (digits_start, radix) = if num.starts_with('x') || num.starts_with('X') {
            (1, 16)
        } else {
            (0, 10)
        };
        let digits: &str = &num[digits_start..];
        let len = digits
            .bytes()
            .take_while(|c| {
                if radix == 16 {
                    c.is_ascii_hexdigit()
                } else {
                    c.is_ascii_digit()
                }
            })
            .count();
        if len == 0 || len > 8 || digits.as_bytes().get(len) != Some(&b';') {
            return Err(err());
        }
        let code = u32::from_str_radix(&digits[..len], radix).map_err(|_| err())?;
        let ch = char::from_u32(code)
            .filter(|&c| c != '\0')
            .ok_or_else(|| format!("Invalid numeric HTML entity at byte offset {i}"))?;
        // '&' + '#' + [x] + digits + ';'
        return Ok((ch, i + 2 + digits_start + len + 1));
    }
    Err(err())
}

fn is_http_url(href: &str) -> bool {
    let rest = href
        .strip_prefix("https://")
        .or_else(|| href.strip_prefix("http://"));
    match rest {
        Some(r) => {
            let host_end = r.find(['/', '?', '#']).unwrap_or(r.len());
            let host = &r[..host_end];
            !host.is_empty()
                && !href.chars().any(|c| c.is_whitespace() || c.is_control())
                && host
                    .chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'))
        }
        None => false,
    }
}

/// Parses `text` like Telegram's HTML parse mode.
pub fn parse_telegram_html(text: &str) -> Result<ParsedHtml, String> {
    let b = text.as_bytes();
    let n = b.len();
    let mut out = String::with_capacity(n);
    let mut u16pos = 0usize;
    let mut stack: Vec<OpenTag> = Vec::new();
    let mut entities: Vec<HtmlEntity> = Vec::new();
    let mut i = 0usize;

    while i < n {
        match b[i] {
            b'&' => {
                let (ch, next) = decode_entity(text, i)?;
                out.push(ch);
                u16pos += ch.len_utf16();
                i = next;
            }
            b'<' => {
                let begin = i;
                i += 1;
                if i < n && b[i] == b'/' {
                    // End tag.
                    i += 1;
                    let Some(open) = stack.pop() else {
                        return Err(format!("Unexpected end tag at byte offset {begin}"));
                    };
                    let name_start = i;
                    while i < n && !is_space(b[i]) && b[i] != b'>' {
                        i += 1;
                    }
                    let end_name = text[name_start..i].to_ascii_lowercase();
                    while i < n && is_space(b[i]) {
                        i += 1;
                    }
                    if i >= n || b[i] != b'>' {
                        return Err(format!("Unclosed end tag at byte offset {begin}"));
                    }
                    i += 1;
                    if !end_name.is_empty() && end_name != open.name {
                        return Err(format!(
                            "Unmatched end tag at byte offset {begin}, expected \"</{}>\", found \"</{}>\"",
                            open.name, end_name
                        ));
                    }
                    close_tag(open, u16pos, &mut stack, &mut entities);
                } else {
                    // Start tag.
                    let name_start = i;
                    while i < n && !is_space(b[i]) && b[i] != b'>' {
                        i += 1;
                    }
                    let name = text[name_start..i].to_ascii_lowercase();
                    if !ALLOWED_TAGS.contains(&name.as_str()) {
                        return Err(format!(
                            "Unsupported start tag \"{name}\" at byte offset {begin}"
                        ));
                    }
                    let mut argument: Option<String> = None;
                    let mut has_spoiler_class = false;
                    loop {
                        while i < n && is_space(b[i]) {
                            i += 1;
                        }
                        if i >= n {
                            return Err(format!("Unclosed start tag at byte offset {begin}"));
                        }
                        if b[i] == b'>' {
                            i += 1;
                            break;
                        }
                        let attr_start = i;
                        while i < n && !is_space(b[i]) && b[i] != b'=' && b[i] != b'>' {
                            i += 1;
                        }
                        let attr_name = text[attr_start..i].to_ascii_lowercase();
                        if attr_name.is_empty() {
                            return Err(format!(
                                "Empty attribute name in the tag \"{name}\" at byte offset {attr_start}"
                            ));
                        }
                        while i < n && is_space(b[i]) {
                            i += 1;
                        }
                        if i >= n {
                            return Err(format!("Unclosed start tag at byte offset {begin}"));
                        }
                        if b[i] != b'=' {
                            if name == "blockquote" && attr_name == "expandable" {
                                argument = Some("expandable".into());
                                continue;
                            }
                            return Err(format!(
                                "Expected equal sign in declaration of an attribute of the tag \"{name}\" at byte offset {attr_start}"
                            ));
                        }
                        i += 1;
                        while i < n && is_space(b[i]) {
                            i += 1;
                        }
                        if i >= n {
                            return Err(format!("Unclosed start tag at byte offset {begin}"));
                        }
                        let quote = b[i];
                        if quote != b'"' && quote != b'\'' {
                            return Err(format!(
                                "Unquoted value of attribute \"{attr_name}\" in the tag \"{name}\" at byte offset {i} (strict checker: quote attribute values)"
                            ));
                        }
                        i += 1;
                        let mut value = String::new();
                        loop {
                            if i >= n {
                                return Err(format!("Unclosed start tag at byte offset {begin}"));
                            }
                            if b[i] == quote {
                                i += 1;
                                break;
                            }
                            if b[i] == b'&' {
                                let (ch, next) = decode_entity(text, i)?;
                                value.push(ch);
                                i = next;
                                continue;
                            }
                            // Copy one UTF-8 character.
                            let ch = text[i..].chars().next().unwrap();
                            value.push(ch);
                            i += ch.len_utf8();
                        }
                        match (name.as_str(), attr_name.as_str()) {
                            ("a", "href") => argument = Some(value),
                            ("code", "class") => {
                                if let Some(lang) = value.strip_prefix("language-") {
                                    argument = Some(lang.to_string());
                                }
                            }
                            ("span", "class") if value == "tg-spoiler" => {
                                has_spoiler_class = true;
                            }
                            ("tg-emoji", "emoji-id") => argument = Some(value),
                            ("blockquote", "expandable") => argument = Some("expandable".into()),
                            _ => {} // ignored, like Telegram
                        }
                    }
                    if name == "span" && !has_spoiler_class {
                        return Err(format!(
                            "Tag \"span\" must have class \"tg-spoiler\" at byte offset {begin}"
                        ));
                    }
                    if name == "tg-emoji" {
                        let ok = argument
                            .as_deref()
                            .map(|a| !a.is_empty() && a.parse::<i64>().is_ok())
                            .unwrap_or(false);
                        if !ok {
                            return Err(format!(
                                "Invalid custom emoji identifier specified at byte offset {begin}"
                            ));
                        }
                    }
                    stack.push(OpenTag {
                        name,
                        argument,
                        start_utf16: u16pos,
                        inner_language: None,
                    });
                }
            }
            _ => {
                // Copy a run of plain text up to the next '<' or '&'.
                let end = text[i..].find(['<', '&']).map(|p| i + p).unwrap_or(n);
                let run = &text[i..end];
                out.push_str(run);
                u16pos += utf16_len(run);
                i = end;
            }
        }
    }
    if let Some(open) = stack.last() {
        return Err(format!(
            "Can't find end tag corresponding to start tag \"{}\"",
            open.name
        ));
    }
    entities.sort_by(|a, b| a.offset.cmp(&b.offset).then(b.length.cmp(&a.length)));
    Ok(ParsedHtml {
        text: out,
        utf16_len: u16pos,
        entities,
    })
}

fn close_tag(open: OpenTag, end: usize, stack: &mut [OpenTag], entities: &mut Vec<HtmlEntity>) {
    let length = end - open.start_utf16;
    let mut e = HtmlEntity {
        kind: "bold",
        offset: open.start_utf16,
        length,
        url: None,
        language: None,
        custom_emoji_id: None,
    };
    match open.name.as_str() {
        "b" | "strong" => e.kind = "bold",
        "i" | "em" => e.kind = "italic",
        "u" | "ins" => e.kind = "underline",
        "s" | "strike" | "del" => e.kind = "strikethrough",
        "span" | "tg-spoiler" => e.kind = "spoiler",
        "a" => match open.argument {
            Some(href) if is_http_url(&href) => {
                e.kind = "text_link";
                e.url = Some(href);
            }
            // tg://user?id= (text_mention) or an unusable URL: Telegram
            // does not produce a text_link entity we could faithfully echo.
            _ => return,
        },
        "code" => {
            if let (Some(lang), Some(parent)) = (&open.argument, stack.last_mut())
                && parent.name == "pre"
                && parent.start_utf16 == open.start_utf16
            {
                parent.inner_language = Some(lang.clone());
                return;
            }
            e.kind = "code";
        }
        "pre" => {
            e.kind = "pre";
            e.language = open.inner_language;
        }
        "blockquote" => {
            e.kind = if open.argument.is_some() {
                "expandable_blockquote"
            } else {
                "blockquote"
            }
        }
        "tg-emoji" => {
            e.kind = "custom_emoji";
            e.custom_emoji_id = open.argument;
        }
        _ => return,
    }
    if length > 0 {
        entities.push(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_and_utf16_length() {
        assert_eq!(check_telegram_html("hello"), Ok(5));
        assert_eq!(check_telegram_html("报告"), Ok(2));
        // Emoji outside the BMP count as two UTF-16 units.
        assert_eq!(check_telegram_html("a😀"), Ok(3));
        assert_eq!(check_telegram_html(""), Ok(0));
        assert_eq!(check_telegram_html("a > b"), Ok(5));
    }

    #[test]
    fn allowed_tags() {
        let ok = [
            "<b>x</b>",
            "<strong>x</strong>",
            "<i>x</i><em>y</em>",
            "<u>x</u><ins>y</ins>",
            "<s>x</s><strike>y</strike><del>z</del>",
            "<span class=\"tg-spoiler\">x</span>",
            "<tg-spoiler>x</tg-spoiler>",
            "<a href=\"https://example.com/?a=1&amp;b=2\">x</a>",
            "<a href='http://example.com'>x</a>",
            "<a href=\"tg://user?id=1\">x</a>",
            "<code>x</code>",
            "<pre>x</pre>",
            "<pre><code class=\"language-rust\">fn main() {}</code></pre>",
            "<blockquote>x</blockquote>",
            "<blockquote expandable>x</blockquote>",
            "<tg-emoji emoji-id=\"5368324170671202286\">👍</tg-emoji>",
            "<B>upper</B>",
            "<b>x</>",
            "<b >x</b >",
            "<b><i>nested</i></b>",
        ];
        for t in ok {
            assert!(
                check_telegram_html(t).is_ok(),
                "{t}: {:?}",
                check_telegram_html(t)
            );
        }
    }

    #[test]
    fn rejected() {
        let bad = [
            ("a < b", "Unsupported start tag"),
            ("<br>", "Unsupported start tag \"br\""),
            ("<br/>", "Unsupported start tag"),
            ("<p>x</p>", "Unsupported start tag \"p\""),
            ("<b>x", "Can't find end tag"),
            ("x</b>", "Unexpected end tag"),
            ("<b><i>x</b></i>", "Unmatched end tag"),
            ("<span>x</span>", "must have class"),
            ("<span class=\"other\">x</span>", "must have class"),
            ("<a href=x>y</a>", "Unquoted"),
            ("<a href=\"x>y</a>", "Unclosed start tag"),
            ("<b", "Unclosed start tag"),
            ("Q&A", "Unsupported HTML entity"),
            ("&nbsp;", "Unsupported HTML entity"),
            ("&lt", "Unsupported HTML entity"),
            ("<tg-emoji>x</tg-emoji>", "custom emoji"),
            ("<b>x</b", "Unclosed end tag"),
            ("&#0;", "Invalid numeric"),
            ("&#xD800;", "Invalid numeric"),
        ];
        for (t, want) in bad {
            let err = check_telegram_html(t).expect_err(t);
            assert!(err.contains(want), "{t}: got {err:?}, want {want:?}");
        }
    }

    #[test]
    fn entities_decoded() {
        let p = parse_telegram_html("&lt;b&gt; &amp; &quot;q&quot; &#65;&#x42;&#X43;").unwrap();
        assert_eq!(p.text, "<b> & \"q\" ABC");
        assert_eq!(p.utf16_len, utf16_len(&p.text));
    }

    #[test]
    fn produces_entities() {
        let p = parse_telegram_html(
            "😀<b>bold <i>both</i></b> <a href=\"https://x.org\">l</a> <pre><code class=\"language-py\">c</code></pre>",
        )
        .unwrap();
        assert_eq!(p.text, "😀bold both l c");
        let kinds: Vec<_> = p
            .entities
            .iter()
            .map(|e| (e.kind, e.offset, e.length))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("bold", 2, 9),
                ("italic", 7, 4),
                ("text_link", 12, 1),
                ("pre", 14, 1)
            ]
        );
        assert_eq!(p.entities[3].language.as_deref(), Some("py"));
        assert_eq!(p.entities[2].url.as_deref(), Some("https://x.org"));
    }

    #[test]
    fn escape_roundtrip() {
        let s = "a<b>&\"c\" 报告 😀";
        let p = parse_telegram_html(&escape_html(s)).unwrap();
        assert_eq!(p.text, s);
    }
}
