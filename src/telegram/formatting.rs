//! An admin's formatted text, as Telegram delivers it (plain text plus
//! message entities: bold, italic, links, …), turned into the Telegram HTML
//! an announcement is stored and sent as.
//!
//! The HTML is written by teloxide's own renderer
//! ([`teloxide::utils::render::Renderer`]) — not by hand — after the
//! entities are cut to the command's argument (`/announce ` is not part of
//! the announcement) and link addresses are made safe inside an attribute.
//! The result then passes the same check as hand-written HTML
//! ([`crate::markup::check`]), so what the preview shows is what every
//! subscriber gets, or the admin hears what is wrong.

use crate::markup::{self, Problem};
use teloxide::types::{MessageEntity, MessageEntityKind as Kind};
use teloxide::utils::render::Renderer;

/// Why a formatted text cannot be announced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("the announcement is empty")]
    Empty,
    #[error("the text is {units} characters long (UTF-16 units); Telegram takes at most {max}", max = markup::MAX_TEXT_UNITS)]
    TooLong { units: usize },
    /// The renderer's HTML fails the check (a bug, or an entity Telegram
    /// would refuse): never queued.
    #[error("the formatting cannot be sent: {0}")]
    Markup(markup::HtmlError),
}

fn units(s: &str) -> usize {
    s.encode_utf16().count()
}

/// `&`, `<`, `>` and `"` as entities: the renderer writes a link's address
/// into `href="…"` as it is.
fn attribute(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Entities that format text, cut to `from..to` (UTF-16 units of the whole
/// message) and made relative to `from`. Entities Telegram detects by
/// itself (commands, mentions, plain URLs) need no markup; custom emoji
/// need rights bots rarely have: the emoji's own character stays.
fn entities_within(entities: &[MessageEntity], from: usize, to: usize) -> Vec<MessageEntity> {
    entities
        .iter()
        .filter_map(|e| {
            let kind = match &e.kind {
                Kind::Bold
                | Kind::Italic
                | Kind::Underline
                | Kind::Strikethrough
                | Kind::Spoiler
                | Kind::Code
                | Kind::Blockquote
                | Kind::ExpandableBlockquote
                | Kind::TextMention { .. } => e.kind.clone(),
                Kind::Pre { language } => Kind::Pre {
                    language: language.as_deref().map(attribute),
                },
                // A parsed URL has its `"`, `<` and `>` percent-encoded
                // already; its `&` becomes `&amp;`, which Telegram reads
                // back as `&`.
                Kind::TextLink { url } => Kind::TextLink {
                    url: attribute(url.as_str())
                        .parse()
                        .unwrap_or_else(|_| url.clone()),
                },
                _ => return None,
            };
            let start = e.offset.max(from);
            let end = (e.offset + e.length).min(to);
            (end > start).then(|| MessageEntity {
                kind,
                offset: start - from,
                length: end - start,
            })
        })
        .collect()
}

/// The argument of a command message (`/announce <b>text</b>…`) as
/// Telegram HTML: the text after the command and its spaces, with the
/// formatting the admin gave it.
pub fn command_argument_html(
    text: &str,
    entities: &[MessageEntity],
) -> Result<String, FormatError> {
    // Entity offsets count from the message's first unit.
    let lead = units(text) - units(text.trim_start());
    let text = text.trim_start();
    // The command is the first word; the argument starts after its spaces.
    let command_end = text.find(char::is_whitespace).unwrap_or(text.len());
    let rest = &text[command_end..];
    let arg = rest.trim_start().trim_end();
    if arg.is_empty() {
        return Err(FormatError::Empty);
    }
    let from = lead + units(&text[..command_end]) + (units(rest) - units(rest.trim_start()));
    let to = from + units(arg);
    let arg_units = units(arg);
    if arg_units > markup::MAX_TEXT_UNITS {
        return Err(FormatError::TooLong { units: arg_units });
    }
    let shifted = entities_within(entities, from, to);
    // Without entities the renderer returns the text as it is, unescaped.
    let html = if shifted.is_empty() {
        crate::render::escape_html(arg)
    } else {
        Renderer::new(arg, &shifted).as_html()
    };
    match markup::check(&html) {
        Ok(checked) => Ok(checked.html),
        Err(e) => match e.problem {
            Problem::Empty => Err(FormatError::Empty),
            Problem::TooLong { units } => Err(FormatError::TooLong { units }),
            _ => Err(FormatError::Markup(e)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(kind: Kind, offset: usize, length: usize) -> MessageEntity {
        MessageEntity {
            kind,
            offset,
            length,
        }
    }

    fn link(url: &str, offset: usize, length: usize) -> MessageEntity {
        entity(
            Kind::TextLink {
                url: url.parse().unwrap(),
            },
            offset,
            length,
        )
    }

    #[test]
    fn bold_italic_and_a_link_after_the_command() {
        // "/announce " is 10 units; the entities count from the message start.
        let text = "/announce 新大赛 报名开始 详情";
        let entities = [
            entity(Kind::BotCommand, 0, 9),
            entity(Kind::Bold, 10, 3),
            entity(Kind::Italic, 14, 4),
            link("https://example.com/a?b=1&c=\"2\"", 19, 2),
        ];
        assert_eq!(
            command_argument_html(text, &entities).unwrap(),
            "<b>新大赛</b> <i>报名开始</i> <a href=\"https://example.com/a?b=1&amp;c=%222%22\">详情</a>"
        );
    }

    #[test]
    fn offsets_are_utf16_units_and_text_is_escaped() {
        // "😀" is two units; "<" and "&" are text, not markup.
        let text = "/announce@reportbot_test_bot   😀 <b> & <i>重要</i>";
        let lead = "/announce@reportbot_test_bot   ".encode_utf16().count();
        let bold = lead + "😀 <b> & <i>".encode_utf16().count();
        let entities = [entity(Kind::Bold, bold, 2), entity(Kind::Italic, lead, 2)];
        assert_eq!(
            command_argument_html(text, &entities).unwrap(),
            "<i>😀</i> &lt;b&gt; &amp; &lt;i&gt;<b>重要</b>&lt;/i&gt;"
        );
    }

    #[test]
    fn entities_are_cut_to_the_argument() {
        // A bold that starts on the command keeps only the argument's part;
        // trailing spaces are dropped with their formatting.
        let text = "/announce hello  ";
        let entities = [entity(Kind::Bold, 0, 17)];
        assert_eq!(
            command_argument_html(text, &entities).unwrap(),
            "<b>hello</b>"
        );
    }

    #[test]
    fn nested_and_multiline_formatting() {
        let text = "/announce 第一行\n第二行 代码";
        let entities = [
            entity(Kind::Bold, 10, 7),
            entity(Kind::Italic, 14, 3),
            entity(Kind::Code, 18, 2),
        ];
        assert_eq!(
            command_argument_html(text, &entities).unwrap(),
            "<b>第一行\n<i>第二行</i></b> <code>代码</code>"
        );
    }

    #[test]
    fn nothing_to_announce_or_too_much() {
        assert_eq!(
            command_argument_html("/announce", &[]),
            Err(FormatError::Empty)
        );
        assert_eq!(
            command_argument_html("/announce   \n ", &[entity(Kind::Bold, 10, 3)]),
            Err(FormatError::Empty)
        );
        let long = format!("/announce {}", "字".repeat(4097));
        assert_eq!(
            command_argument_html(&long, &[]),
            Err(FormatError::TooLong { units: 4097 })
        );
        // Tags do not count against the limit.
        let full = format!("/announce {}", "字".repeat(4096));
        let html = command_argument_html(&full, &[entity(Kind::Bold, 10, 4096)]).unwrap();
        assert!(html.starts_with("<b>") && html.ends_with("</b>"));
    }

    #[test]
    fn entities_bots_cannot_send_are_left_out() {
        let text = "/announce 🎉 #大赛 @someone";
        let entities = [
            entity(
                Kind::CustomEmoji {
                    custom_emoji_id: teloxide::types::CustomEmojiId("5368324170671202286".into()),
                },
                10,
                2,
            ),
            entity(Kind::Hashtag, 13, 3),
            entity(Kind::Mention, 17, 9),
        ];
        assert_eq!(
            command_argument_html(text, &entities).unwrap(),
            "🎉 #大赛 @someone"
        );
        // Plain text is escaped too (the renderer passes it through as is).
        assert_eq!(
            command_argument_html(" /announce a<b>&c", &[]).unwrap(),
            "a&lt;b&gt;&amp;c"
        );
    }
}
