//! A message may ask several questions ("大赛哪天举行的,在哪里?"). It is cut at
//! sentence punctuation and commas into pieces; a piece that asks nothing of
//! its own ("银行组,个人一等奖是谁", "hi,请问…") stays with its neighbour, so
//! only pieces that are questions in their own right become clauses.

use super::index::Index;
use super::understand::{Parsed, asks_something, parse};

const SEPARATORS: &[char] = &['?', '？', '!', '！', '。', ';', '；', ',', '，', '\n', '\r'];

/// The clauses of a message, each with its parse, in order.
pub fn split(index: &Index, message: &str) -> Vec<(String, Parsed)> {
    let body = message.trim().trim_end_matches(SEPARATORS);
    let command = body.starts_with(['/', '／']);
    if command || !body.contains(SEPARATORS) {
        return vec![(message.to_string(), parse(index, message))];
    }
    let pieces: Vec<&str> = body
        .split(SEPARATORS)
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if pieces.len() < 2 {
        return vec![(message.to_string(), parse(index, message))];
    }
    let focused: Vec<bool> = pieces.iter().map(|p| asks_something(index, p)).collect();
    // Groups of pieces: a piece without a question of its own joins the
    // group before it (the first ones join the first question).
    let mut groups: Vec<Vec<&str>> = Vec::new();
    let mut open_has_focus = false;
    for (piece, focus) in pieces.iter().zip(&focused) {
        match groups.last_mut() {
            Some(g) if !*focus || !open_has_focus => {
                g.push(piece);
                open_has_focus |= *focus;
            }
            _ => {
                groups.push(vec![piece]);
                open_has_focus = *focus;
            }
        }
    }
    if groups.len() < 2 {
        return vec![(message.to_string(), parse(index, message))];
    }
    groups
        .into_iter()
        .map(|g| {
            let text = g.join(",");
            let parsed = parse(index, &text);
            (text, parsed)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::Knowledge;

    fn texts(message: &str) -> Vec<String> {
        let k = Knowledge::builtin().expect("built-in data loads");
        let index = Index::build(&k);
        split(&index, message).into_iter().map(|c| c.0).collect()
    }

    #[test]
    fn questions_in_their_own_right_are_split() {
        assert_eq!(
            texts("大赛哪天举行的,在哪里?"),
            vec!["大赛哪天举行的", "在哪里"]
        );
        assert_eq!(
            texts("个人一等奖是谁?团体一等奖呢?"),
            vec!["个人一等奖是谁", "团体一等奖呢"]
        );
    }

    #[test]
    fn pieces_without_a_question_stay_together() {
        assert_eq!(
            texts("银行组,个人一等奖是谁"),
            vec!["银行组,个人一等奖是谁"]
        );
        assert_eq!(
            texts("hi，请问有多少个团队参赛"),
            vec!["hi，请问有多少个团队参赛"]
        );
        assert_eq!(texts("李彬"), vec!["李彬"]);
        assert_eq!(texts("/winner 李彬,郭胜"), vec!["/winner 李彬,郭胜"]);
    }
}
