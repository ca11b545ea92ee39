//! Line breaking for the pictures: where a line may end is decided by the
//! Unicode line breaking algorithm (UAX #14, the `unicode-linebreak` crate),
//! which carries the Chinese rules (禁则): no line starts with 。，、：；！？）」”
//! and the like, none ends with （「“, and Latin words are never split.
//! Lines are then filled greedily. Only a single unbreakable run wider than a
//! whole line (a long URL) is cut between characters, still never before a
//! closing mark nor after an opening one.

use unicode_linebreak::{BreakClass, BreakOpportunity, break_property, linebreaks};

/// One line: a slice of the text without its trailing spaces and line break,
/// and its width.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Line<'a> {
    pub text: &'a str,
    pub width: f32,
}

fn is_trailing_space(c: char) -> bool {
    c.is_whitespace()
}

/// Width of `s` without trailing whitespace.
fn visible_width(s: &str, width_of: &impl Fn(char) -> f32) -> f32 {
    s.trim_end_matches(is_trailing_space)
        .chars()
        .map(width_of)
        .sum()
}

fn line<'a>(s: &'a str, width_of: &impl Fn(char) -> f32) -> Line<'a> {
    let text = s.trim_end_matches(is_trailing_space);
    Line {
        text,
        width: text.chars().map(width_of).sum(),
    }
}

/// May not start a line (UAX #14 classes CL, CP, EX, IS, NS and closing quotes).
fn no_break_before(c: char) -> bool {
    matches!(
        break_property(c as u32),
        BreakClass::ClosePunctuation
            | BreakClass::CloseParenthesis
            | BreakClass::Exclamation
            | BreakClass::InfixSeparator
            | BreakClass::NonStarter
            | BreakClass::Symbol
    ) || matches!(c, '”' | '’' | '」' | '』' | '»' | '›')
}

/// May not end a line (UAX #14 class OP and opening quotes).
fn no_break_after(c: char) -> bool {
    break_property(c as u32) == BreakClass::OpenPunctuation
        || matches!(c, '“' | '‘' | '「' | '『' | '«' | '‹')
}

/// Break `text` into lines no wider than `max_width` (each character's width
/// given by `width_of`). A `\n` always ends a line.
pub fn wrap<'a>(text: &'a str, max_width: f32, width_of: impl Fn(char) -> f32) -> Vec<Line<'a>> {
    let mut lines: Vec<Line<'a>> = Vec::new();
    let mut start = 0usize; // start of the line being filled
    let mut end = 0usize; // end of what it holds so far
    let mut width = 0.0f32; // width of text[start..end], trailing spaces included
    let mut prev = 0usize;
    for (at, kind) in linebreaks(text) {
        let segment = &text[prev..at];
        let seg_visible = visible_width(segment, &width_of);
        if end > start && width + seg_visible > max_width {
            lines.push(line(&text[start..end], &width_of));
            start = end;
            width = 0.0;
        }
        if end == start && seg_visible > max_width {
            // One run wider than a line: cut it between characters.
            let pieces = cut(segment, max_width, &width_of);
            let last = pieces.len().saturating_sub(1);
            let mut offset = prev;
            for (i, piece) in pieces.into_iter().enumerate() {
                if i < last {
                    lines.push(line(&text[offset..offset + piece], &width_of));
                    offset += piece;
                } else {
                    start = offset;
                    width = text[offset..at].chars().map(&width_of).sum();
                }
            }
        } else {
            width += segment.chars().map(&width_of).sum::<f32>();
        }
        end = at;
        prev = at;
        if kind == BreakOpportunity::Mandatory
            && !(at == text.len() && start == end && !lines.is_empty())
        {
            lines.push(line(&text[start..end], &width_of));
            start = end;
            width = 0.0;
        }
    }
    lines
}

/// Byte lengths of the pieces an unbreakable run is cut into, each as wide
/// as fits, moving a cut earlier rather than leaving a closing mark at the
/// start of a line or an opening one at its end.
fn cut(run: &str, max_width: f32, width_of: &impl Fn(char) -> f32) -> Vec<usize> {
    let chars: Vec<(usize, char)> = run.char_indices().collect();
    let mut pieces = Vec::new();
    let mut first = 0usize; // index into chars
    while first < chars.len() {
        let mut w = 0.0;
        let mut next = first;
        while next < chars.len() && (next == first || w + width_of(chars[next].1) <= max_width) {
            w += width_of(chars[next].1);
            next += 1;
        }
        let forbidden = |at: usize| no_break_before(chars[at].1) || no_break_after(chars[at - 1].1);
        if next < chars.len() && forbidden(next) {
            // Move the cut earlier; if this line has no allowed place, let
            // it run over to the next allowed place rather than start a line
            // with a closing mark.
            let mut at = next;
            while at > first + 1 && forbidden(at) {
                at -= 1;
            }
            if forbidden(at) {
                at = next;
                while at < chars.len() && forbidden(at) {
                    at += 1;
                }
            }
            next = at;
        }
        let from = chars[first].0;
        let to = chars.get(next).map_or(run.len(), |(i, _)| *i);
        pieces.push(to - from);
        first = next;
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Closing marks a line must never start with, opening ones it must
    /// never end with (listed here by hand, not taken from the code above).
    const CLOSING: &str = "。，、：；！？）」』】》〉”’.,;:!?)]}%";
    const OPENING: &str = "（「『【《〈“‘([{";

    fn one(_: char) -> f32 {
        1.0
    }
    fn cjk(c: char) -> f32 {
        if c.is_ascii() { 0.5 } else { 1.0 }
    }

    fn check(text: &str, lines: &[Line<'_>]) {
        for (i, l) in lines.iter().enumerate() {
            let first = l.text.chars().next();
            let last = l.text.chars().last();
            if i > 0 {
                assert!(
                    !first.is_some_and(|c| CLOSING.contains(c)),
                    "line {i} starts with a closing mark: {:?} in {text:?}",
                    l.text
                );
            }
            if i + 1 < lines.len() {
                assert!(
                    !last.is_some_and(|c| OPENING.contains(c)),
                    "line {i} ends with an opening mark: {:?} in {text:?}",
                    l.text
                );
            }
        }
        // Nothing lost, nothing added (only spaces at line ends are dropped).
        let joined: String = lines.iter().map(|l| l.text).collect();
        let squeezed: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        assert_eq!(joined.replace(' ', ""), squeezed);
    }

    #[test]
    fn chinese_punctuation_never_starts_a_line() {
        let text = "快递滞留后，有人自称“快递公司工作人员”主动联系、说要双倍赔付所购物品金额，要高度警惕：刘阿姨就是这样被盯上的。（见报道）「注意」！";
        for width in 2..40 {
            let lines = wrap(text, width as f32, one);
            check(text, &lines);
            for l in &lines {
                // A line may overflow only if it cannot be broken at all.
                assert!(
                    l.width <= width as f32 || l.text.chars().count() <= 3,
                    "{l:?} at {width}"
                );
            }
        }
    }

    #[test]
    fn english_words_are_never_split() {
        let text = "Don't add the caller as a friend or send your account details just to get the \"compensation\" faster; when someone rushes you to act, stop first.";
        for width in 8..60 {
            let lines = wrap(text, width as f32, one);
            check(text, &lines);
            // Only a word wider than a whole line may be cut.
            for word in text.split_whitespace().filter(|w| w.len() <= width) {
                assert!(
                    lines.iter().any(|l| l.text.contains(word)),
                    "{word:?} split at width {width}: {lines:?}"
                );
            }
        }
    }

    #[test]
    fn a_run_wider_than_a_line_is_cut_but_not_before_a_closing_mark() {
        let text = "网址https://example.com/aaaaaaaaaaaaaaaaaaaaaaaa。后面";
        for width in 3..20 {
            let lines = wrap(text, width as f32, cjk);
            check(text, &lines);
            assert!(lines.len() > 1);
        }
    }

    #[test]
    fn newlines_end_lines_and_widths_exclude_trailing_spaces() {
        let lines = wrap("ab cd\nef ", 100.0, one);
        assert_eq!(
            lines,
            vec![
                Line {
                    text: "ab cd",
                    width: 5.0
                },
                Line {
                    text: "ef",
                    width: 2.0
                }
            ]
        );
        assert_eq!(wrap("", 10.0, one), vec![]);
    }
}
