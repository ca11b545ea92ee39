//! Chinese punctuation for print. The data keeps ASCII `,:;!?()` next to
//! Chinese characters (it is normalised for matching); on a picture those
//! read as cramped dots, so Chinese cards use the full-width forms, as
//! printed Chinese does. Latin text and numbers are left alone.

/// Han characters, CJK punctuation, full-width forms and the curly quotes
/// Chinese text uses.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x2E80..=0x9FFF | 0xF900..=0xFAFF | 0xFF00..=0xFFEF | 0x20000..=0x3FFFF)
        || matches!(c, '“' | '”' | '‘' | '’' | '…' | '—')
}

fn full_width(c: char) -> Option<char> {
    Some(match c {
        ',' => '\u{FF0C}',
        ':' => '\u{FF1A}',
        ';' => '\u{FF1B}',
        '!' => '\u{FF01}',
        '?' => '\u{FF1F}',
        _ => return None,
    })
}

/// `text` with the ASCII punctuation that follows a Chinese character made
/// full-width, and each `( )` pair that touches Chinese made `（ ）`.
pub fn chinese(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = chars.clone();
    let mut open: Vec<(usize, bool)> = Vec::new();
    for (i, &c) in chars.iter().enumerate() {
        let before = i.checked_sub(1).map(|j| chars[j]);
        let after = chars.get(i + 1).copied();
        match c {
            '(' => open.push((i, before.is_some_and(is_cjk) || after.is_some_and(is_cjk))),
            ')' => {
                if let Some((at, cjk)) = open.pop()
                    && (cjk || before.is_some_and(is_cjk) || after.is_some_and(is_cjk))
                {
                    out[at] = '\u{FF08}';
                    out[i] = '\u{FF09}';
                }
            }
            _ => {
                if let Some(fw) = full_width(c)
                    && before.is_some_and(is_cjk)
                    && !after.is_some_and(|a| a.is_ascii_alphanumeric() && c == ':')
                {
                    out[i] = fw;
                }
            }
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::chinese;

    #[test]
    fn punctuation_after_chinese_becomes_full_width() {
        assert_eq!(
            chinese("快递滞留后,有人说:要赔付;对吗?是的!"),
            "快递滞留后\u{FF0C}有人说\u{FF1A}要赔付\u{FF1B}对吗\u{FF1F}是的\u{FF01}"
        );
        assert_eq!(
            chinese("出处:浙江金融新闻报道(2022-11)"),
            "出处\u{FF1A}浙江金融新闻报道\u{FF08}2022-11\u{FF09}"
        );
        assert_eq!(
            chinese("“账户/余额被冻结”,催促"),
            "“账户/余额被冻结”\u{FF0C}催促"
        );
    }

    #[test]
    fn latin_and_numbers_stay_as_they_are() {
        for s in [
            "12,000 yuan (RMB): ok",
            "APP, v1.2",
            "see https://x.cn/a?b=1",
            "(a, b)",
        ] {
            assert_eq!(chinese(s), s);
        }
        // A colon before a Latin letter or digit is part of a time or URL.
        assert_eq!(chinese("下午3:30"), "下午3:30");
    }
}
