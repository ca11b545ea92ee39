//! A message may ask several questions ("大赛哪天举行的,在哪里?"). It is cut at
//! sentence punctuation and commas into pieces; a piece that asks nothing of
//! its own ("银行组,个人一等奖是谁", "hi,请问…") stays with its neighbour, so
//! only pieces that are questions in their own right become clauses.

use super::index::Index;
use super::understand::{Parsed, asks_something, parse};

const SEPARATORS: &[char] = &['?', '？', '!', '！', '。', ';', '；', ',', '，', '\n', '\r'];

/// A piece of a message and what joined it to the piece before: a comma
/// for punctuation, else the join word as typed (" and ").
struct Piece<'a> {
    joiner: &'a str,
    text: &'a str,
}

/// Cut at punctuation, then at join words (ASCII, any case).
fn pieces<'a>(index: &Index, body: &'a str) -> Vec<Piece<'a>> {
    let mut out = Vec::new();
    for part in body
        .split(SEPARATORS)
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let mut joiner = ",";
        let mut rest = part;
        loop {
            // ASCII lower-casing keeps byte offsets.
            let lower = rest.to_ascii_lowercase();
            let next = index
                .clause_joins
                .iter()
                .filter_map(|w| lower.find(w.as_str()).map(|at| (at, w.len())))
                .min();
            match next {
                Some((at, len)) => {
                    let text = rest[..at].trim();
                    if !text.is_empty() {
                        out.push(Piece { joiner, text });
                    }
                    joiner = &rest[at..at + len];
                    rest = &rest[at + len..];
                }
                None => {
                    let text = rest.trim();
                    if !text.is_empty() {
                        out.push(Piece { joiner, text });
                    }
                    break;
                }
            }
        }
    }
    out
}

/// The clauses of a message, each with its parse, in order.
pub fn split(index: &Index, message: &str) -> Vec<(String, Parsed)> {
    let body = message.trim().trim_end_matches(SEPARATORS);
    let command = body.starts_with(['/', '／']);
    let joined = || {
        let lower = body.to_ascii_lowercase();
        index
            .clause_joins
            .iter()
            .any(|w| lower.contains(w.as_str()))
    };
    if command || !(body.contains(SEPARATORS) || joined()) {
        return vec![(message.to_string(), parse(index, message))];
    }
    let pieces = pieces(index, body);
    if pieces.len() < 2 {
        return vec![(message.to_string(), parse(index, message))];
    }
    let focused: Vec<bool> = pieces
        .iter()
        .map(|p| asks_something(index, p.text))
        .collect();
    // Groups of pieces: a piece without a question of its own joins the
    // group before it (the first ones join the first question).
    let mut groups: Vec<Vec<&Piece>> = Vec::new();
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
            let mut text = String::new();
            for (i, p) in g.iter().enumerate() {
                if i > 0 {
                    text.push_str(p.joiner);
                }
                text.push_str(p.text);
            }
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
    fn a_tag_question_belongs_to_the_sentence_before() {
        assert_eq!(
            texts("贵州那个案子抓了4个嫌疑人，对吗"),
            vec!["贵州那个案子抓了4个嫌疑人，对吗"]
        );
        assert_eq!(texts("决赛在11月吗,是不是").len(), 1);
    }

    #[test]
    fn join_words_cut_only_between_two_questions() {
        assert_eq!(
            texts("How many teams took part and how many participants were there?"),
            vec![
                "How many teams took part",
                "how many participants were there"
            ]
        );
        assert_eq!(
            texts("Who won the first and second prizes?"),
            vec!["Who won the first and second prizes?"]
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
