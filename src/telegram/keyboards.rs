//! Inline keyboards and their callback data, parsed at the edge into
//! [`Callback`]. Every callback string stays within Telegram's 64 bytes.

use crate::card::find_topic;
use crate::engine::{Engine, EntityId, Lang, PrizeFilter};
use crate::knowledge::{Group, Kind, Knowledge, Level};
use teloxide::types::{
    InlineKeyboardButton, InlineKeyboardButtonKind, InlineKeyboardMarkup,
    SwitchInlineQueryChosenChat,
};

/// A button press, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Callback {
    /// Browse the award list: a partial prize selection (`level` set = winners).
    Browse(PrizeFilter),
    /// The whole award list.
    BrowseAll,
    /// Tips of a topic (`None` = a general selection).
    Tips(Option<String>),
    /// The large-print picture of a topic's tips (`None` = the overview),
    /// in the language of the answer the button is under.
    Picture { topic: Option<String>, lang: Lang },
    /// One reading of an ambiguous name, by its stable key
    /// ([`crate::engine::Entity::key`]): an index would name somebody else
    /// after a data reload that reorders the entities.
    Entity(String),
    /// Confirm or cancel a drafted announcement.
    Announce { id: i64, confirm: bool },
}

impl Callback {
    pub fn encode(&self) -> String {
        match self {
            Callback::Browse(f) => {
                let mut s = String::from("a");
                match (f.group, f.level) {
                    (None, Some(Level::MostPopular)) => return "a:m".into(),
                    // A prize without a group (a declared 最佳创意奖).
                    (None, Some(l)) => return format!("a:-:{}", l.code()),
                    _ => {}
                }
                if let Some(g) = f.group {
                    s.push(':');
                    s.push_str(g.code());
                    if let Some(k) = f.kind {
                        s.push(':');
                        s.push_str(k.code());
                        if let Some(l) = f.level {
                            s.push(':');
                            s.push_str(l.code());
                        }
                    }
                }
                s
            }
            Callback::BrowseAll => "a:all".into(),
            Callback::Tips(t) => format!("t:{}", t.as_deref().unwrap_or("")),
            Callback::Picture { topic, lang } => {
                format!("p:{}:{}", lang_code(*lang), topic.as_deref().unwrap_or(""))
            }
            Callback::Entity(key) => format!("k:{key}"),
            Callback::Announce { id, confirm } => {
                format!("n:{}:{id}", if *confirm { "ok" } else { "no" })
            }
        }
    }

    /// Parse callback data; `None` for anything we did not make.
    pub fn parse(data: &str) -> Option<Callback> {
        let parts: Vec<&str> = data.split(':').collect();
        match parts.as_slice() {
            ["a"] => Some(Callback::Browse(PrizeFilter::default())),
            ["a", "all"] => Some(Callback::BrowseAll),
            ["a", "m"] => Some(Callback::Browse(PrizeFilter {
                level: Some(Level::MostPopular),
                ..PrizeFilter::default()
            })),
            ["a", "-", l] => Some(Callback::Browse(PrizeFilter {
                level: Some(Level::from_code(l).filter(|l| *l != Level::MostPopular)?),
                ..PrizeFilter::default()
            })),
            ["a", g, rest @ ..] if rest.len() <= 2 => {
                let group = Some(Group::from_code(g)?);
                let kind = match rest.first() {
                    Some(k) => Some(Kind::from_code(k)?),
                    None => None,
                };
                let level = match rest.get(1) {
                    Some(l) => Some(Level::from_code(l).filter(|l| *l != Level::MostPopular)?),
                    None => None,
                };
                Some(Callback::Browse(PrizeFilter { group, kind, level }))
            }
            ["t", ""] => Some(Callback::Tips(None)),
            ["t", topic] if is_topic_id(topic) => Some(Callback::Tips(Some(topic.to_string()))),
            ["p", lang, topic] => Some(Callback::Picture {
                lang: match *lang {
                    "zh" => Lang::Zh,
                    "en" => Lang::En,
                    _ => return None,
                },
                topic: match *topic {
                    "" => None,
                    t if is_topic_id(t) => Some(t.to_string()),
                    _ => return None,
                },
            }),
            // "e:<index>" (before stable keys) is not accepted: it may name
            // somebody else now.
            ["k", key] if key.len() == 12 && key.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Some(Callback::Entity(key.to_ascii_lowercase()))
            }
            ["n", "ok", id] => id
                .parse()
                .ok()
                .map(|id| Callback::Announce { id, confirm: true }),
            ["n", "no", id] => id
                .parse()
                .ok()
                .map(|id| Callback::Announce { id, confirm: false }),
            _ => None,
        }
    }
}

/// A topic id as the data has them (and as fits a callback).
fn is_topic_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 40 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn lang_code(lang: Lang) -> &'static str {
    match lang {
        Lang::Zh => "zh",
        Lang::En => "en",
    }
}

fn button(label: impl Into<String>, cb: Callback) -> InlineKeyboardButton {
    InlineKeyboardButton::callback(label.into(), cb.encode())
}

fn t(lang: Lang, zh: &str, en: &str) -> String {
    match lang {
        Lang::Zh => zh.into(),
        Lang::En => en.into(),
    }
}

/// The text above a browsing keyboard.
pub fn browse_title(f: &PrizeFilter, lang: Lang) -> String {
    match (f.group, f.kind) {
        (None, _) => t(lang, "荣誉榜:请选择组别", "Award list: choose a group"),
        (Some(g), None) => match lang {
            Lang::Zh => format!("{}:团体还是个人?", g.zh()),
            Lang::En => format!("{}: team or individual?", g.en()),
        },
        (Some(g), Some(k)) => match lang {
            Lang::Zh => format!("{} · {}:请选择奖项", g.zh(), k.zh()),
            Lang::En => format!("{} · {}: choose a prize", g.en(), k.en()),
        },
    }
}

/// Whether a browsing step names prizes the newest report still has: a
/// button of an older message may name one a data reload removed.
pub fn offered(engine: &Engine, f: &PrizeFilter) -> bool {
    f.level.is_none()
        || engine
            .knowledge()
            .newest()
            .prizes()
            .iter()
            .any(|p| f.matches(p))
}

/// Keyboard for one step of browsing: group → kind → level → winners, with Back.
pub fn browse(engine: &Engine, f: &PrizeFilter, lang: Lang) -> InlineKeyboardMarkup {
    let back = |to: PrizeFilter| button(t(lang, "« 返回", "« Back"), Callback::Browse(to));
    let mut rows: Vec<Vec<InlineKeyboardButton>> = Vec::new();
    let label_group = |g: Group| match lang {
        Lang::Zh => g.zh().to_string(),
        Lang::En => g.en().to_string(),
    };
    if f.level.is_some() {
        // Winners are shown: go back one step.
        let parent = if f.group.is_none() {
            PrizeFilter::default()
        } else {
            PrizeFilter { level: None, ..*f }
        };
        rows.push(vec![
            back(parent),
            button(
                t(lang, "荣誉榜首页", "Award list"),
                Callback::Browse(PrizeFilter::default()),
            ),
        ]);
        return InlineKeyboardMarkup::new(rows);
    }
    match (f.group, f.kind) {
        (None, _) => {
            rows.push(
                Group::ALL
                    .iter()
                    .map(|g| {
                        button(
                            label_group(*g),
                            Callback::Browse(PrizeFilter {
                                group: Some(*g),
                                ..PrizeFilter::default()
                            }),
                        )
                    })
                    .collect(),
            );
            // Prizes without a group (最佳人气奖, a declared 最佳创意奖), then the full list.
            let report = engine.knowledge().newest();
            let mut ungrouped: Vec<Level> = Vec::new();
            for p in report.prizes() {
                if p.group.is_none() && !ungrouped.contains(&p.level) {
                    ungrouped.push(p.level);
                }
            }
            let mut buttons: Vec<InlineKeyboardButton> = ungrouped
                .into_iter()
                .map(|l| {
                    let label = match lang {
                        Lang::Zh => report.levels.zh(l),
                        Lang::En => report.levels.en(l),
                    };
                    let only = PrizeFilter {
                        level: Some(l),
                        ..PrizeFilter::default()
                    };
                    button(label, Callback::Browse(only))
                })
                .collect();
            buttons.push(button(
                t(lang, "完整名单", "Full list"),
                Callback::BrowseAll,
            ));
            rows.extend(buttons.chunks(2).map(<[InlineKeyboardButton]>::to_vec));
        }
        (Some(g), None) => {
            rows.push(
                Kind::ALL
                    .iter()
                    .map(|k| {
                        let label = match lang {
                            Lang::Zh => k.zh().to_string(),
                            Lang::En => k.en().to_string(),
                        };
                        button(
                            label,
                            Callback::Browse(PrizeFilter {
                                group: Some(g),
                                kind: Some(*k),
                                level: None,
                            }),
                        )
                    })
                    .collect(),
            );
            rows.push(vec![back(PrizeFilter::default())]);
        }
        (Some(g), Some(k)) => {
            let report = engine.knowledge().newest();
            let levels: Vec<Level> = report
                .prizes()
                .into_iter()
                .filter(|p| p.group == Some(g) && p.kind == k)
                .map(|p| p.level)
                .collect();
            for pair in levels.chunks(2) {
                rows.push(
                    pair.iter()
                        .map(|l| {
                            let label = match lang {
                                Lang::Zh => report.levels.zh(*l),
                                Lang::En => report.levels.en(*l),
                            };
                            button(
                                label,
                                Callback::Browse(PrizeFilter {
                                    group: Some(g),
                                    kind: Some(k),
                                    level: Some(*l),
                                }),
                            )
                        })
                        .collect(),
                );
            }
            rows.push(vec![back(PrizeFilter {
                group: Some(g),
                kind: None,
                level: None,
            })]);
        }
    }
    InlineKeyboardMarkup::new(rows)
}

/// The word that starts an inline query for tips: `@bot tips 验证码`.
pub const SHARE_PREFIX: &str = "tips";

/// The inline query the "Share with family" button puts in the chat the
/// user picks: `tips` and a word for the topic — its first Chinese keyword
/// (`tips 验证码`) or, in English, its id (`tips verification_code`) —
/// or `tips` alone for the overview. Always a word [`parse_share_query`]
/// reads back as the same topic.
pub fn share_query(k: &Knowledge, topic: Option<&str>, lang: Lang) -> String {
    let Some(id) = topic else {
        return SHARE_PREFIX.to_string();
    };
    let keyword = k
        .reports
        .iter()
        .flat_map(|r| &r.antifraud.topics)
        .find(|t| t.id == id)
        .and_then(|t| t.keywords.iter().find(|w| !w.is_ascii()))
        .filter(|w| lang == Lang::Zh && find_topic(k, w).is_some_and(|t| t.id == id));
    format!("{SHARE_PREFIX} {}", keyword.map_or(id, String::as_str))
}

/// What an inline query asks for, if it asks for tips: `Some(None)` for
/// the overview (`tips`), `Some(Some(id))` for a topic (`tips 验证码`,
/// `/tips courier`); `None` for any other question, or a word that names
/// no topic (the engine answers those).
pub fn parse_share_query(k: &Knowledge, query: &str) -> Option<Option<String>> {
    let q = query.trim();
    let q = q.strip_prefix('/').unwrap_or(q);
    let head = q.get(..SHARE_PREFIX.len())?;
    if !head.eq_ignore_ascii_case(SHARE_PREFIX) {
        return None;
    }
    let rest = &q[SHARE_PREFIX.len()..];
    if rest.is_empty() {
        return Some(None);
    }
    // `tips 验证码`, not `tipsy`.
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let word = rest.trim();
    if word.is_empty() {
        return Some(None);
    }
    find_topic(k, word).map(|t| Some(t.id.clone()))
}

/// "Large-print picture" and "Share with family" under tips. Without
/// inline mode (`share` false: the bot's settings lack it) Telegram would
/// refuse the share button, so it is left out.
fn pass_on_row(
    k: &Knowledge,
    topic: Option<&str>,
    lang: Lang,
    share: bool,
) -> Vec<InlineKeyboardButton> {
    let mut row = vec![button(
        t(lang, "大字图片", "Large-print picture"),
        Callback::Picture {
            topic: topic.map(str::to_string),
            lang,
        },
    )];
    if share {
        row.push(InlineKeyboardButton::new(
            t(lang, "转发给家人", "Share with family"),
            InlineKeyboardButtonKind::SwitchInlineQueryChosenChat(SwitchInlineQueryChosenChat {
                query: Some(share_query(k, topic, lang)),
                allow_user_chats: true,
                allow_bot_chats: false,
                allow_group_chats: true,
                allow_channel_chats: false,
            }),
        ));
    }
    row
}

/// The keyboard under tips: pass them on (picture, share), then one
/// button per scam topic.
pub fn tips(engine: &Engine, topic: Option<&str>, lang: Lang, share: bool) -> InlineKeyboardMarkup {
    let mut kb = tip_topics(engine, lang);
    kb.inline_keyboard
        .insert(0, pass_on_row(engine.knowledge(), topic, lang, share));
    kb
}

/// One button per scam topic.
pub fn tip_topics(engine: &Engine, lang: Lang) -> InlineKeyboardMarkup {
    let mut seen: Vec<&str> = Vec::new();
    let mut buttons = Vec::new();
    for r in &engine.knowledge().reports {
        for topic in &r.antifraud.topics {
            if seen.contains(&topic.id.as_str()) || topic.id.len() > 40 {
                continue;
            }
            seen.push(&topic.id);
            let label = match lang {
                Lang::Zh => topic.name_zh.clone(),
                Lang::En => topic.name_en.clone(),
            };
            buttons.push(button(label, Callback::Tips(Some(topic.id.clone()))));
        }
    }
    let rows: Vec<Vec<InlineKeyboardButton>> = buttons.chunks(2).map(|c| c.to_vec()).collect();
    InlineKeyboardMarkup::new(rows)
}

/// One button per reading of an ambiguous name.
pub fn readings(engine: &Engine, options: &[EntityId]) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(
        options
            .iter()
            .map(|id| {
                let entity = engine.entity(*id);
                vec![button(entity.name.clone(), Callback::Entity(entity.key()))]
            })
            .collect::<Vec<_>>(),
    )
}

/// Confirm / Cancel under an announcement preview.
pub fn announce(id: i64, lang: Lang) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![vec![
        button(
            t(lang, "✅ 确认发送", "✅ Confirm"),
            Callback::Announce { id, confirm: true },
        ),
        button(
            t(lang, "取消", "Cancel"),
            Callback::Announce { id, confirm: false },
        ),
    ]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_callback_round_trips_within_64_bytes() {
        let mut all = vec![
            Callback::BrowseAll,
            Callback::Tips(None),
            Callback::Picture {
                topic: None,
                lang: Lang::En,
            },
            Callback::Picture {
                topic: Some("a".repeat(40)),
                lang: Lang::Zh,
            },
            Callback::Entity("0123456789ab".into()),
            Callback::Announce {
                id: i64::MAX,
                confirm: true,
            },
        ];
        all.push(Callback::Browse(PrizeFilter::default()));
        for g in Group::ALL {
            all.push(Callback::Browse(PrizeFilter {
                group: Some(g),
                ..Default::default()
            }));
            for k in Kind::ALL {
                all.push(Callback::Browse(PrizeFilter {
                    group: Some(g),
                    kind: Some(k),
                    level: None,
                }));
                for l in &Level::STANDARD[..4] {
                    all.push(Callback::Browse(PrizeFilter {
                        group: Some(g),
                        kind: Some(k),
                        level: Some(*l),
                    }));
                }
            }
        }
        all.push(Callback::Browse(PrizeFilter {
            level: Some(Level::MostPopular),
            ..Default::default()
        }));
        // Declared prizes: with a group, and without one; the longest id.
        for id in ["grand", "best_creativity", "abcdefghijklmno"] {
            let level = Some(Level::Declared(
                crate::knowledge::PrizeId::parse(id).unwrap(),
            ));
            all.push(Callback::Browse(PrizeFilter {
                level,
                ..Default::default()
            }));
            all.push(Callback::Browse(PrizeFilter {
                group: Some(Group::Insurance),
                kind: Some(Kind::Individual),
                level,
            }));
        }
        for cb in all {
            let s = cb.encode();
            assert!(s.len() <= 64, "{s}");
            assert_eq!(Callback::parse(&s), Some(cb), "{s}");
        }
    }

    #[test]
    fn foreign_data_is_rejected() {
        for s in [
            "",
            "x",
            "a:z",
            "a:b:t:m",
            "e:x",
            "e:5",
            "k:123",
            "k:0123456789abc",
            "k:0123456789ag",
            "t:../../etc",
            "n:ok:",
            "a:b:t:1:9",
            "a:-:m",
            "a:-:",
            "a:-:first",
            "a:-:Grand",
            "a:b:t:most_popular",
            "a:b:t:abcdefghijklmnop",
            "p",
            "p:",
            "p:fr:courier",
            "p:zh:../x",
            "p:zh:courier:1",
        ] {
            assert_eq!(Callback::parse(s), None, "{s}");
        }
    }

    #[test]
    fn keyboards_fit_telegram_limits() {
        let engine = Engine::builtin().unwrap();
        for lang in [Lang::Zh, Lang::En] {
            for kb in [
                tip_topics(&engine, lang),
                browse(&engine, &PrizeFilter::default(), lang),
            ] {
                for b in kb.inline_keyboard.iter().flatten() {
                    if let teloxide::types::InlineKeyboardButtonKind::CallbackData(d) = &b.kind {
                        assert!(d.len() <= 64);
                        assert!(Callback::parse(d).is_some());
                    }
                }
            }
        }
    }

    #[test]
    fn tips_keyboards_pass_on_in_the_answers_language() {
        let engine = Engine::builtin().unwrap();
        for (lang, picture, share) in [
            (Lang::Zh, "大字图片", "转发给家人"),
            (Lang::En, "Large-print picture", "Share with family"),
        ] {
            let kb = tips(&engine, Some("verification_code"), lang, true);
            let first = &kb.inline_keyboard[0];
            assert_eq!(first[0].text, picture);
            let InlineKeyboardButtonKind::CallbackData(d) = &first[0].kind else {
                panic!("{:?}", first[0]);
            };
            assert_eq!(
                Callback::parse(d),
                Some(Callback::Picture {
                    topic: Some("verification_code".into()),
                    lang
                })
            );
            assert_eq!(first[1].text, share);
            let InlineKeyboardButtonKind::SwitchInlineQueryChosenChat(c) = &first[1].kind else {
                panic!("{:?}", first[1]);
            };
            assert!(c.allow_user_chats && c.allow_group_chats && !c.allow_bot_chats);
            let expected = match lang {
                Lang::Zh => "tips 验证码",
                Lang::En => "tips verification_code",
            };
            assert_eq!(c.query.as_deref(), Some(expected));
            // The topic buttons follow.
            assert_eq!(
                kb.inline_keyboard[1..],
                tip_topics(&engine, lang).inline_keyboard[..]
            );
            // No inline mode: no share button.
            assert_eq!(tips(&engine, None, lang, false).inline_keyboard[0].len(), 1);
        }
    }

    #[test]
    fn every_share_query_reads_back_as_its_topic() {
        let engine = Engine::builtin().unwrap();
        let k = engine.knowledge();
        for lang in [Lang::Zh, Lang::En] {
            assert_eq!(
                parse_share_query(k, &share_query(k, None, lang)),
                Some(None)
            );
            for id in crate::card::topic_ids(k) {
                let q = share_query(k, Some(&id), lang);
                assert!(q.len() <= 256, "{q}");
                assert_eq!(parse_share_query(k, &q), Some(Some(id.clone())), "{q}");
            }
        }
        assert_eq!(
            parse_share_query(k, " /TIPS  验证码 "),
            Some(Some("verification_code".into()))
        );
        assert_eq!(
            parse_share_query(k, "tips courier"),
            Some(Some("courier".into()))
        );
        for other in ["", "tipsy", "李彬", "tips 李彬", "t", "提示 验证码"] {
            assert_eq!(parse_share_query(k, other), None, "{other}");
        }
    }

    /// The engine over the 2022 report and a 2023 page with a 特等奖 and a
    /// 最佳创意奖, imported as the operator would.
    fn engine_with_new_prizes() -> (Engine, tempfile::TempDir) {
        use crate::import::{import_report, write_report};
        let out = tempfile::tempdir().unwrap();
        let page = include_str!("../../tests/fixtures/import/2023-grand-prize.html");
        write_report(
            &import_report(page, "2023-grand-prize.html").unwrap(),
            out.path(),
        )
        .unwrap();
        let k = crate::knowledge::Knowledge::load_dir(out.path()).unwrap();
        (Engine::new(std::sync::Arc::new(k)), out)
    }

    /// (label, callback data) of every button.
    fn buttons(kb: &InlineKeyboardMarkup) -> Vec<(String, String)> {
        kb.inline_keyboard
            .iter()
            .flatten()
            .filter_map(|b| match &b.kind {
                teloxide::types::InlineKeyboardButtonKind::CallbackData(d) => {
                    Some((b.text.clone(), d.clone()))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn awards_browsing_offers_the_new_prizes() {
        let (engine, _dir) = engine_with_new_prizes();
        let root = buttons(&browse(&engine, &PrizeFilter::default(), Lang::Zh));
        assert!(
            root.contains(&("最佳创意奖".to_string(), "a:-:best_creativity".to_string())),
            "{root:?}"
        );
        assert!(
            root.contains(&("最佳人气奖".to_string(), "a:m".to_string())),
            "{root:?}"
        );
        let bank_team = PrizeFilter {
            group: Some(Group::Bank),
            kind: Some(Kind::Team),
            level: None,
        };
        let cells = buttons(&browse(&engine, &bank_team, Lang::En));
        assert_eq!(
            cells[..2],
            [
                ("Grand Prize".to_string(), "a:b:t:grand".to_string()),
                ("First Prize".to_string(), "a:b:t:1".to_string()),
            ]
        );
        // Each button shows its prize's winners and leads back.
        for (_, data) in root.iter().chain(&cells) {
            assert!(data.len() <= 64);
            let Some(Callback::Browse(f)) = Callback::parse(data) else {
                continue;
            };
            assert!(offered(&engine, &f), "{data}");
            if f.level.is_some() {
                let text = crate::render::plain(&engine, &engine.answer_filter(f, Lang::Zh));
                assert!(text.contains("· "), "{data}: {text}");
            }
        }
        let creative = engine.answer_filter(
            Callback::parse("a:-:best_creativity")
                .and_then(|c| match c {
                    Callback::Browse(f) => Some(f),
                    _ => None,
                })
                .unwrap(),
            Lang::Zh,
        );
        let text = crate::render::plain(&engine, &creative);
        assert!(text.contains("温州银行 温银数字化先锋队"), "{text}");
        assert!(!text.contains("甬数智汇队"), "{text}");
    }

    #[test]
    fn a_button_for_a_prize_the_data_no_longer_has_is_out_of_date() {
        // The 2022 report has no 特等奖: a button from a message sent while
        // the 2023 data was loaded parses, but is not offered.
        let engine = Engine::builtin().unwrap();
        for data in ["a:b:t:grand", "a:-:best_creativity"] {
            let Some(Callback::Browse(f)) = Callback::parse(data) else {
                panic!("{data} parses");
            };
            assert!(!offered(&engine, &f), "{data}");
        }
        for data in ["a:b:t:1", "a:m", "a:b", "a"] {
            let Some(Callback::Browse(f)) = Callback::parse(data) else {
                panic!("{data} parses");
            };
            assert!(offered(&engine, &f), "{data}");
        }
    }
}
