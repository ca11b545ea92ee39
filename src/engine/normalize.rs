//! Normalisation: the one canonical form every question and every data word is
//! compared in. NFKC folds full-width forms, a traditional→simplified table
//! folds 繁體, case is folded, punctuation becomes a separator, and spaces
//! survive only between ASCII words (Chinese text has none of its own).

use unicode_normalization::UnicodeNormalization;

/// Is this a CJK ideograph (the characters pinyin and names are made of)?
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FFFF)
}

/// The canonical form, padded with one space on each side so that ASCII words
/// can be matched at word boundaries (`" win "`).
pub fn normalize(input: &str) -> String {
    let without_tags = strip_tags(input);
    let mut simplified = nfkc(&without_tags);
    if simplified.chars().any(is_cjk) {
        fast2s::replace(&mut simplified);
    }
    let mut out = String::with_capacity(simplified.len() + 2);
    out.push(' ');
    let mut pending_space = false;
    let mut last: Option<char> = None;
    for c in simplified.chars() {
        let keep =
            is_cjk(c) || c.is_alphanumeric() || c == '\'' || c == '&' || c == '+' || c == '.';
        if !keep {
            pending_space = true;
            continue;
        }
        // A dot only matters inside numbers (2.7亿) and an apostrophe inside words.
        if (c == '.' || c == '\'') && !last.is_some_and(|l| l.is_ascii_alphanumeric()) {
            pending_space = true;
            continue;
        }
        let boundary = last.is_some_and(|l| {
            (l.is_ascii_alphabetic() && !c.is_ascii()) || (!l.is_ascii() && c.is_ascii_alphabetic())
        });
        if pending_space || boundary {
            // Latin words stay separated (from each other and from Chinese);
            // Chinese characters join up.
            // (Nothing to separate at the very start: the padding is there.)
            if last.is_some()
                && (boundary
                    || last.is_some_and(|l| l.is_ascii_alphanumeric())
                    || c.is_ascii_alphanumeric())
            {
                out.push(' ');
            }
            pending_space = false;
        }
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
        } else if is_cjk(c) {
            out.push(c);
        } else {
            out.extend(c.to_lowercase());
        }
        last = Some(c);
    }
    // Trailing dots and apostrophes are sentence punctuation.
    while out.ends_with('.') || out.ends_with('\'') {
        out.pop();
    }
    out.push(' ');
    out
}

/// Unicode NFKC, with a short cut for what questions are made of: ASCII,
/// the main CJK block, 、 and 。 are their own NFKC and compose with nothing
/// in it, and a full-width ASCII form (，？Ａ) is its ASCII character. Any
/// other character sends the whole text through the full algorithm.
fn nfkc(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    for c in input.chars() {
        match c as u32 {
            0..=0x7F | 0x3001 | 0x3002 | 0x4E00..=0x9FFF => out.push(c),
            code @ 0xFF01..=0xFF5E => out.extend(char::from_u32(code - 0xFEE0)),
            _ => return input.nfkc().collect(),
        }
    }
    out
}

/// People paste HTML now and then (`张<b>伟</b>`): tags are not words.
fn strip_tags(input: &str) -> std::borrow::Cow<'_, str> {
    if !input.contains('<') {
        return std::borrow::Cow::Borrowed(input);
    }
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        match after.find('>') {
            // A tag: `<` then a name or `/`, short, no second `<` inside.
            Some(end)
                if end <= 80
                    && after[1..end]
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_alphabetic() || c == '/')
                    && !after[1..end].contains('<') =>
            {
                out.push(' ');
                rest = &after[end + 1..];
            }
            _ => {
                out.push('<');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

/// Normalise a data word (alias, keyword) the same way, without the padding.
pub fn normalize_word(word: &str) -> String {
    normalize(word).trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_width_traditional_case_and_punctuation() {
        assert_eq!(normalize("個人一等獎是誰?"), " 个人一等奖是谁 ");
        assert_eq!(
            normalize("团体一等奖(银行机构组)"),
            " 团体一等奖银行机构组 "
        );
        assert_eq!(normalize("ＷＨＯ  won?"), " who won ");
        assert_eq!(normalize("李 彬"), " 李彬 ");
        assert_eq!(normalize("李彬 won what"), " 李彬 won what ");
        assert_eq!(normalize("CCB得了什么奖"), " ccb 得了什么奖 ");
        assert_eq!(normalize("What did 李彬win"), " what did 李彬 win ");
        assert_eq!(normalize("2.7亿次。"), " 2.7亿次 ");
        assert_eq!(normalize(""), "  ");
        assert_eq!(normalize("people's choice."), " people's choice ");
    }

    #[test]
    fn the_short_cut_is_nfkc() {
        let fast = (0..=0x7F)
            .chain([0x3001, 0x3002])
            .chain(0x4E00..=0x9FFF)
            .chain(0xFF01..=0xFF5E)
            .filter_map(char::from_u32);
        for c in fast {
            let s = c.to_string();
            assert_eq!(nfkc(&s), s.nfkc().collect::<String>(), "U+{:04X}", c as u32);
        }
        // Outside the short cut: a combining accent composes with the letter
        // before it, and a compatibility ideograph folds.
        for s in ["e\u{301}", "李彬\u{F9B1}？", "ｶﾞ", "①"] {
            assert_eq!(nfkc(s), s.nfkc().collect::<String>(), "{s}");
        }
    }

    #[test]
    fn emoji_and_symbols_are_separators() {
        assert_eq!(normalize("🎉李彬🎉"), " 李彬 ");
        assert_eq!(normalize("<b>x</b>"), " x ");
        assert_eq!(normalize("张<b>伟</b>"), " 张伟 ");
        assert_eq!(normalize("a < b"), " a b ");
    }
}
