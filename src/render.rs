//! Rendering a structured [`Answer`] as text: Telegram HTML or plain text.
//! Both come from one list of styled lines, so they always say the same.

use crate::engine::{Answer, Engine, EntityKind, EntityWins, Lang, Reply};
use crate::knowledge::{Award, Report};

/// A run of text, bold or not.
#[derive(Debug, Clone)]
struct Span {
    text: String,
    bold: bool,
}

#[derive(Debug, Default)]
struct Doc {
    lines: Vec<Vec<Span>>,
}

impl Doc {
    fn line(&mut self, text: impl Into<String>) -> &mut Self {
        self.lines.push(vec![Span {
            text: text.into(),
            bold: false,
        }]);
        self
    }
    fn bold(&mut self, text: impl Into<String>) -> &mut Self {
        self.lines.push(vec![Span {
            text: text.into(),
            bold: true,
        }]);
        self
    }
    fn blank(&mut self) -> &mut Self {
        if self.lines.last().is_some_and(|l| !l.is_empty()) {
            self.lines.push(Vec::new());
        }
        self
    }
    fn plain(&self) -> String {
        self.lines
            .iter()
            .map(|l| l.iter().map(|s| s.text.as_str()).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
            .trim_end()
            .to_string()
    }
    fn html(&self) -> String {
        self.lines
            .iter()
            .map(|l| {
                l.iter()
                    .map(|s| {
                        if s.bold {
                            format!("<b>{}</b>", escape_html(&s.text))
                        } else {
                            escape_html(&s.text)
                        }
                    })
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
            .trim_end()
            .to_string()
    }
}

/// Escape text for Telegram's HTML parse mode.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// The answer as plain text (command line, inline results, tests).
pub fn plain(engine: &Engine, answer: &Answer) -> String {
    compose(engine, answer).plain()
}

/// The answer as Telegram HTML (every piece of data text escaped).
pub fn html(engine: &Engine, answer: &Answer) -> String {
    compose(engine, answer).html()
}

/// One-line summary (inline-query result descriptions).
pub fn summary(engine: &Engine, answer: &Answer) -> String {
    let text = plain(engine, answer);
    let first: String = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    first.chars().take(120).collect()
}

fn zh_en(lang: Lang, zh: &str, en: &str) -> String {
    match lang {
        Lang::Zh => zh.to_string(),
        Lang::En => en.to_string(),
    }
}

fn winner_line(a: &Award) -> String {
    format!("· {} {}", a.institution, a.winner)
}

fn contest_label(engine: &Engine, report: &Report, lang: Lang) -> Option<String> {
    // With one report there is nothing to tell apart.
    (engine.knowledge().reports.len() > 1).then(|| match lang {
        Lang::Zh => format!("【{}】", report.meta.contest),
        Lang::En => format!("[{}]", report.meta.contest),
    })
}

fn examples(doc: &mut Doc, lang: Lang) {
    match lang {
        Lang::Zh => {
            doc.line("您可以这样问:");
            doc.line("· 个人一等奖是谁?");
            doc.line("· 团体二等奖(保险机构组)有哪些?");
            doc.line("· 工行获得了哪些奖?");
            doc.line("· 大赛决赛在哪里举行?");
            doc.line("· 怎么防止老人被冒充快递的骗?");
            doc.line("发送 /help 查看全部命令。");
        }
        Lang::En => {
            doc.line("You can ask, for example:");
            doc.line("· Who won the individual first prize?");
            doc.line("· Team second prize in the insurance group?");
            doc.line("· What did ICBC win?");
            doc.line("· Where was the contest final held?");
            doc.line("· Tips to protect my elderly parents from scams");
            doc.line("Send /help for all commands.");
        }
    }
}

fn wins(engine: &Engine, doc: &mut Doc, w: &EntityWins, lang: Lang) {
    let k = engine.knowledge();
    let r = &k.reports[w.report];
    let e = engine.entity(w.entity);
    let label = contest_label(engine, r, lang).unwrap_or_default();
    match e.kind {
        EntityKind::Institution => {
            let en = k
                .institution(&e.name)
                .map(|i| i.en.as_str())
                .filter(|en| *en != e.name);
            let head = match (lang, en) {
                (Lang::Zh, _) => format!("{label}{} 共获得 {} 个奖项:", e.name, w.awards.len()),
                (Lang::En, Some(en)) => {
                    format!("{label}{} ({en}) won {} award(s):", e.name, w.awards.len())
                }
                (Lang::En, None) => format!("{label}{} won {} award(s):", e.name, w.awards.len()),
            };
            doc.bold(head);
            for i in &w.awards {
                let a = &r.awards[*i];
                let prize = match lang {
                    Lang::Zh => a.prize().full_label_zh(),
                    Lang::En => a.prize().full_label_en(),
                };
                doc.line(format!("· {prize}:{}", a.winner));
            }
        }
        _ => {
            for i in &w.awards {
                let a = &r.awards[*i];
                let line = match lang {
                    Lang::Zh => format!(
                        "{label}{}({})获得 {}",
                        a.winner,
                        a.institution,
                        a.prize().full_label_zh()
                    ),
                    Lang::En => format!(
                        "{label}{} ({}) won the {}",
                        a.winner,
                        a.institution,
                        a.prize().full_label_en()
                    ),
                };
                doc.line(line);
            }
        }
    }
}

fn compose(engine: &Engine, answer: &Answer) -> Doc {
    let k = engine.knowledge();
    let lang = answer.lang;
    let mut doc = Doc::default();
    match &answer.reply {
        Reply::Welcome => {
            let r = k.newest();
            match lang {
                Lang::Zh => {
                    doc.bold("您好!我是报告问答机器人 reportbot。");
                    doc.line(format!("我能回答关于《{}》的问题:谁获得了哪个奖、某人/某队/某机构获得了什么奖、大赛和浙江省金融综合服务平台的情况,以及帮助老人防范诈骗的提示。", r.meta.contest));
                }
                Lang::En => {
                    doc.bold("Hello! I am reportbot.");
                    doc.line(format!("I answer questions about the {} ({}): who won which prize, what a person, team or institution won, facts about the contest and the 浙江省金融综合服务平台, and anti-fraud tips for elderly relatives.", r.meta.contest, r.meta.year));
                }
            }
            doc.blank();
            examples(&mut doc, lang);
        }
        Reply::Help => match lang {
            Lang::Zh => {
                doc.bold("命令:");
                doc.line("/start - 欢迎和示例");
                doc.line("/help - 本帮助");
                doc.line("/awards - 浏览荣誉榜(按组别、团体/个人、奖项)");
                doc.line("/winner 奖项或名字 - 例如 /winner 个人一等奖、/winner 李彬");
                doc.line("/tips [主题] - 帮老人防诈骗的提示,例如 /tips 验证码");
                doc.line("/reports - 已收录的报道");
                doc.line("/about - 数据来源");
                doc.line("/subscribe - 订阅新大赛公告");
                doc.line("/unsubscribe - 取消订阅");
                doc.line("/status - 查看订阅状态");
                doc.blank();
                doc.line("也可以直接用中文或英文提问,繁体、简称(工行、建行、国寿、平安)都可以。");
            }
            Lang::En => {
                doc.bold("Commands:");
                doc.line("/start - welcome and examples");
                doc.line("/help - this help");
                doc.line("/awards - browse the award list (group, team/individual, prize)");
                doc.line(
                    "/winner prize or name - e.g. /winner individual first prize, /winner 李彬",
                );
                doc.line("/tips [topic] - anti-fraud tips for elderly relatives, e.g. /tips verification code");
                doc.line("/reports - the reports I know");
                doc.line("/about - where the data comes from");
                doc.line("/subscribe - get new contest announcements");
                doc.line("/unsubscribe - stop them");
                doc.line("/status - your subscription");
                doc.blank();
                doc.line("Or just ask in English or Chinese.");
            }
        },
        Reply::About => {
            for r in &k.reports {
                match lang {
                    Lang::Zh => {
                        doc.bold(format!("数据来源:{}", r.meta.title));
                        doc.line(format!("{}年{}月的浙江金融新闻报道。回答中的每个名字和数字都来自这篇报道的原文,并经过测试核对。", &r.meta.published[..4.min(r.meta.published.len())], r.meta.published.get(5..).unwrap_or("")));
                    }
                    Lang::En => {
                        doc.bold(format!("Source: {}", r.meta.title));
                        doc.line(format!("A Zhejiang financial news report published {}. Every name and number in my answers comes from its text and is checked by tests.", r.meta.published));
                    }
                }
            }
        }
        Reply::Ranking { report, rows } => {
            let r = &k.reports[*report];
            if let Some(label) = contest_label(engine, r, lang) {
                doc.line(label);
            }
            doc.bold(zh_en(
                lang,
                "各单位获奖数(多的在前):",
                "Awards per institution (most first):",
            ));
            for (name, n) in rows {
                doc.line(match lang {
                    Lang::Zh => format!("· {name}:{n} 项"),
                    Lang::En => format!("· {name}: {n}"),
                });
            }
        }
        Reply::Reports => {
            doc.bold(zh_en(
                lang,
                "已收录的报道(最新在前):",
                "Reports I know (newest first):",
            ));
            for r in &k.reports {
                doc.line(match lang {
                    Lang::Zh => format!(
                        "· {}({} {},发布于 {})",
                        r.meta.contest, r.meta.final_date, r.meta.city, r.meta.published
                    ),
                    Lang::En => format!(
                        "· {} ({} {}, published {})",
                        r.meta.contest, r.meta.final_date, r.meta.city, r.meta.published
                    ),
                });
            }
            doc.line(zh_en(lang, "不写年份的问题按最新一届回答;加上年份(如“2022年个人一等奖”)可查询往届。", "Questions without a year are about the newest contest; add a year (e.g. \"2022 first prize\") for another."));
        }
        Reply::Subscribe => {
            doc.line(zh_en(
                lang,
                "请发送 /subscribe 订阅新大赛公告。",
                "Send /subscribe to get new contest announcements.",
            ));
        }
        Reply::Unsubscribe => {
            doc.line(zh_en(
                lang,
                "请发送 /unsubscribe 取消订阅。",
                "Send /unsubscribe to stop announcements.",
            ));
        }
        Reply::Winners {
            report,
            filter,
            sections,
        } => {
            let r = &k.reports[*report];
            if let Some(label) = contest_label(engine, r, lang) {
                doc.line(label);
            }
            if filter.is_empty() {
                doc.bold(zh_en(lang, "荣誉榜", "Award list"));
            }
            if sections.is_empty() {
                doc.line(zh_en(
                    lang,
                    "报道中没有这个奖项。",
                    "The report lists no such prize.",
                ));
            }

            for s in sections {
                doc.blank();
                doc.bold(match lang {
                    Lang::Zh => s.prize.full_label_zh(),
                    Lang::En => s.prize.full_label_en(),
                });
                for i in &s.awards {
                    doc.line(winner_line(&r.awards[*i]));
                }
            }
            let total: usize = sections.iter().map(|s| s.awards.len()).sum();
            if total > 1 {
                doc.blank();
                doc.line(match lang {
                    Lang::Zh => format!("共 {total} 项获奖。"),
                    Lang::En => format!("{total} awards in all."),
                });
            }
        }
        Reply::Won {
            wins: ws,
            corrected,
            nothing,
        } => {
            if let Some(typed) = corrected {
                let names: Vec<&str> = ws
                    .iter()
                    .map(|w| engine.entity(w.entity).name.as_str())
                    .collect();
                doc.line(match lang {
                    Lang::Zh => format!("(按“{}”理解您输入的“{}”)", names.join("、"), typed),
                    Lang::En => format!("(reading \"{typed}\" as \"{}\")", names.join(", ")),
                });
            }
            for w in ws {
                wins(engine, &mut doc, w, lang);
            }
            for id in nothing {
                let name = &engine.entity(*id).name;
                doc.line(match lang {
                    Lang::Zh => format!("{name} 在这份报道的荣誉榜中没有获奖记录。"),
                    Lang::En => format!("{name} is not on this report's award list."),
                });
            }
        }
        Reply::Fact { report, fact } => {
            let f = &k.reports[*report].facts[*fact];
            doc.line(zh_en(lang, &f.answer_zh, &f.answer_en));
        }
        Reply::Tips { topic, tips, .. } => {
            let name = topic.as_ref().and_then(|t| {
                k.reports
                    .iter()
                    .flat_map(|r| &r.antifraud.topics)
                    .find(|x| &x.id == t)
            });
            doc.bold(match (lang, name) {
                (Lang::Zh, Some(t)) => format!("防骗提示:{}", t.name_zh),
                (Lang::En, Some(t)) => format!("Anti-fraud tips: {}", t.name_en),
                (Lang::Zh, None) => "帮长辈防范诈骗的提示".to_string(),
                (Lang::En, None) => "Tips to protect elderly relatives from scams".to_string(),
            });
            for (n, (r, t)) in tips.iter().enumerate() {
                let tip = &k.reports[*r].antifraud.tips[*t];
                doc.line(format!("{}. {}", n + 1, zh_en(lang, &tip.zh, &tip.en)));
            }
            doc.blank();
            doc.line(zh_en(lang, "以上提示来自报道中温州工行拦截诈骗的经验。发送 /tips 加主题查看更多,例如 /tips 验证码。", "Drawn from the report's account of how a Wenzhou bank stopped scams. Send /tips with a topic for more, e.g. /tips screen sharing."));
        }
        Reply::Case { report, case } => {
            let c = &k.reports[*report].antifraud.cases[*case];
            doc.bold(zh_en(lang, &c.title_zh, &c.title_en));
            doc.line(zh_en(lang, &c.summary_zh, &c.summary_en));
            doc.blank();
            doc.line(zh_en(lang, &c.how_stopped_zh, &c.how_stopped_en));
            doc.blank();
            doc.line(zh_en(
                lang,
                "想知道怎么防?可以问“怎么防”或发送 /tips。",
                "Ask \"how to prevent it?\" or send /tips for advice.",
            ));
        }
        Reply::NotFound { name } => {
            doc.line(match lang {
                Lang::Zh => format!("这份报道的荣誉榜里没有“{name}”。我只回答报道中有的内容,不猜测。"),
                Lang::En => format!("\"{name}\" is not in this report. I only answer from the report and do not guess."),
            });
            doc.line(zh_en(lang, "请检查名字,或者按奖项提问,例如“个人一等奖是谁”,也可以发送 /awards 浏览荣誉榜。", "Check the name, or ask by prize, e.g. \"Who won the individual first prize?\", or send /awards to browse the list."));
        }
        Reply::Ambiguous {
            typed,
            options,
            wins: ws,
        } => {
            let names: Vec<&str> = options
                .iter()
                .map(|id| engine.entity(*id).name.as_str())
                .collect();
            doc.line(match (lang, typed.is_empty()) {
                (Lang::Zh, false) => format!(
                    "“{typed}”可能指 {} 个机构或名字,您是指哪一个?",
                    options.len()
                ),
                (Lang::Zh, true) => "您是指哪一个?".to_string(),
                (Lang::En, false) => format!(
                    "\"{typed}\" could mean {} names. Which one do you mean?",
                    options.len()
                ),
                (Lang::En, true) => "Which one do you mean?".to_string(),
            });
            for (i, n) in names.iter().enumerate() {
                doc.line(format!("{}. {n}", i + 1));
            }
            for w in ws {
                doc.blank();
                wins(engine, &mut doc, w, lang);
            }
            doc.blank();
            doc.line(zh_en(
                lang,
                "回复编号或全称即可。",
                "Reply with the number or the full name.",
            ));
        }
        Reply::NoMore => {
            doc.line(zh_en(
                lang,
                "没有更多了,以上就是全部。可以发送 /awards 浏览完整荣誉榜。",
                "That is all there is. Send /awards to browse the full list.",
            ));
        }
        Reply::Fallback => {
            doc.line(zh_en(lang, "抱歉,这个问题我回答不了。我只回答报道中的荣誉榜、大赛情况和防诈骗提示。", "Sorry, I can't answer that. I answer questions about the report's award list, the contest and anti-fraud tips."));
            doc.blank();
            examples(&mut doc, lang);
        }
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_telegram_parses() {
        assert_eq!(
            escape_html("<b>&\"x\"</b>"),
            "&lt;b&gt;&amp;&quot;x&quot;&lt;/b&gt;"
        );
    }
}
