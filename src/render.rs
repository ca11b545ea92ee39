//! Rendering a structured [`Answer`] as text: Telegram HTML or plain text.
//! Both come from one list of styled lines, so they always say the same.
//! The wording lives here; every name, number and report-specific sentence
//! comes from the knowledge.

use crate::engine::{
    Answer, CompareOutcome, Context, Counted, Engine, EntityKind, EntityWins, Lang, Notice,
    PrizeFilter, RankBy, Reply,
};
use crate::knowledge::{Award, Group, Kind, Level, Levels, Report};
use std::time::Instant;

/// A run of text, bold or not.
#[derive(Debug, Clone)]
struct Span {
    text: String,
    bold: bool,
}

/// Lines of spans, kept flat (every answer is built here, and a Vec per
/// line cost an allocation per line).
#[derive(Debug, Default)]
struct Doc {
    spans: Vec<Span>,
    /// Where each line starts in `spans`; a blank line has no spans.
    starts: Vec<usize>,
}

impl Doc {
    fn line(&mut self, text: impl Into<String>) -> &mut Self {
        self.push_line(text.into(), false)
    }
    fn bold(&mut self, text: impl Into<String>) -> &mut Self {
        self.push_line(text.into(), true)
    }
    fn push_line(&mut self, text: String, bold: bool) -> &mut Self {
        self.starts.push(self.spans.len());
        self.spans.push(Span { text, bold });
        self
    }
    fn blank(&mut self) -> &mut Self {
        if self.starts.last().is_some_and(|s| *s < self.spans.len()) {
            self.starts.push(self.spans.len());
        }
        self
    }
    /// The spans of line `i`.
    fn line_spans(&self, i: usize) -> &[Span] {
        let end = self.starts.get(i + 1).copied().unwrap_or(self.spans.len());
        &self.spans[self.starts[i]..end]
    }
    /// Puts `span` at the start of the first line (a new line if none).
    fn prepend(&mut self, span: Span) {
        match self.starts.is_empty() {
            true => self.starts.push(0),
            false => self.starts[1..].iter_mut().for_each(|s| *s += 1),
        }
        self.spans.insert(0, span);
    }
    /// Another document's lines after these.
    fn append(&mut self, other: Doc) {
        let offset = self.spans.len();
        self.starts.extend(other.starts.iter().map(|s| s + offset));
        self.spans.extend(other.spans);
    }
    fn pop_line(&mut self) {
        if let Some(start) = self.starts.pop() {
            self.spans.truncate(start);
        }
    }
    fn plain(&self) -> String {
        self.write(|out, s| out.push_str(&s.text))
    }
    fn html(&self) -> String {
        self.write(|out, s| {
            if s.bold {
                out.push_str("<b>");
                escape_html_into(out, &s.text);
                out.push_str("</b>");
            } else {
                escape_html_into(out, &s.text);
            }
        })
    }
    /// The lines joined by newlines, trailing blanks trimmed, into one
    /// buffer (every answer passes through here).
    fn write(&self, span: impl Fn(&mut String, &Span)) -> String {
        let size: usize =
            self.spans.iter().map(|s| s.text.len()).sum::<usize>() + self.starts.len();
        let mut out = String::with_capacity(size + 16);
        for i in 0..self.starts.len() {
            if i > 0 {
                out.push('\n');
            }
            for s in self.line_spans(i) {
                span(&mut out, s);
            }
        }
        out.truncate(out.trim_end().len());
        out
    }
}

/// Escape text for Telegram's HTML parse mode.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_html_into(&mut out, s);
    out
}

fn escape_html_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

/// A plain-text answer, as `reportbot ask` prints it.
#[derive(Debug, Clone)]
pub struct Answered {
    pub text: String,
    pub intent: &'static str,
    pub answer: Answer,
}

/// Asking in plain text (command line, tests, benchmarks). The engine gives
/// structured answers; wording them is this module's job, so the convenience
/// lives here.
impl Engine {
    /// One question, no conversation: the plain-text answer.
    pub fn ask(&self, question: &str) -> Answered {
        let mut ctx = Context::default();
        self.converse(&mut ctx, question)
    }

    /// One turn of a conversation: uses and updates `ctx`.
    pub fn converse(&self, ctx: &mut Context, question: &str) -> Answered {
        let answer = self.answer(ctx, question, None, Instant::now());
        Answered {
            text: plain(self, &answer),
            intent: answer.intent.as_str(),
            answer,
        }
    }
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

fn examples(engine: &Engine, doc: &mut Doc, lang: Lang) {
    let texts = &engine.knowledge().newest().texts;
    let list = match lang {
        Lang::Zh => &texts.examples_zh,
        Lang::En => &texts.examples_en,
    };
    if !list.is_empty() {
        doc.line(zh_en(lang, "您可以这样问:", "You can ask, for example:"));
        for q in list {
            doc.line(format!("· {q}"));
        }
    }
    doc.line(zh_en(
        lang,
        "发送 /help 查看全部命令。",
        "Send /help for all commands.",
    ));
}

/// A prize selection in words: "银行机构组团体一等奖", "保险机构组".
fn filter_label(levels: &Levels, f: &PrizeFilter, lang: Lang) -> String {
    match lang {
        Lang::Zh => {
            let mut s = String::new();
            if let Some(g) = f.group {
                s.push_str(g.zh());
            }
            if let Some(k) = f.kind {
                s.push_str(k.zh());
            }
            if let Some(l) = f.level {
                s.push_str(levels.zh(l));
            }
            s
        }
        Lang::En => {
            let mut parts: Vec<&str> = Vec::new();
            if let Some(g) = f.group {
                parts.push(g.en());
            }
            if let Some(k) = f.kind {
                parts.push(k.en());
            }
            if let Some(l) = f.level {
                parts.push(levels.en(l));
            }
            parts.join(", ")
        }
    }
}

fn prize_label(levels: &Levels, p: &crate::knowledge::Prize, lang: Lang) -> String {
    match lang {
        Lang::Zh => p.full_label_zh(levels),
        Lang::En => p.full_label_en(levels),
    }
}

fn wins(engine: &Engine, doc: &mut Doc, w: &EntityWins, lang: Lang, partial: bool) {
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
            let total = engine.awards_of(w.entity, w.report);
            let n = w.awards.len();
            let head = match (lang, en, partial) {
                (Lang::Zh, _, false) => format!("{label}{} 共获得 {n} 个奖项:", e.name),
                (Lang::Zh, _, true) => {
                    format!("{label}{} 共获得 {total} 个奖项,其中 {n} 个:", e.name)
                }
                (Lang::En, Some(en), false) => {
                    format!("{label}{} ({en}) won {n} award(s):", e.name)
                }
                (Lang::En, None, false) => format!("{label}{} won {n} award(s):", e.name),
                (Lang::En, Some(en), true) => {
                    format!("{label}{} ({en}) won {total} award(s), among them:", e.name)
                }
                (Lang::En, None, true) => {
                    format!("{label}{} won {total} award(s), among them:", e.name)
                }
            };
            doc.bold(head);
            for i in &w.awards {
                let a = &r.awards[*i];
                doc.line(format!(
                    "· {}:{}",
                    prize_label(&k.levels, &a.prize(), lang),
                    a.winner
                ));
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
                        a.prize().full_label_zh(&k.levels)
                    ),
                    Lang::En => format!(
                        "{label}{} ({}) won the {}",
                        a.winner,
                        a.institution,
                        a.prize().full_label_en(&k.levels)
                    ),
                };
                doc.line(line);
            }
        }
    }
}

/// The whole answer: each question of the message in turn, each with its
/// notices and verdict first.
fn compose(engine: &Engine, answer: &Answer) -> Doc {
    let mut doc = Doc::default();
    for (i, part) in std::iter::once(answer).chain(&answer.also).enumerate() {
        if i > 0 {
            doc.blank();
        }
        let mut one = Doc::default();
        for n in &part.notices {
            notice(engine, &mut one, n, part.lang);
        }
        reply(engine, &mut one, &part.reply, part.lang);
        // The verdict comes first, on the first line.
        if let Some(yes) = part.verdict {
            let word = match (part.lang, yes) {
                (Lang::Zh, true) => "是的。",
                (Lang::Zh, false) => "不是。",
                (Lang::En, true) => "Yes. ",
                (Lang::En, false) => "No. ",
            };
            let span = Span {
                text: word.to_string(),
                bold: true,
            };
            one.prepend(span);
        }
        doc.append(one);
    }
    doc
}

fn notice(engine: &Engine, doc: &mut Doc, n: &Notice, lang: Lang) {
    let _ = engine;
    match n {
        Notice::YearNotCovered { asked, covered } => {
            let years: Vec<String> = covered.iter().map(u16::to_string).collect();
            doc.line(match lang {
                Lang::Zh => format!(
                    "报道只涉及{}年的大赛,没有{asked}年的信息。以下是{}年的情况:",
                    years.join("、"),
                    years.join("、")
                ),
                Lang::En => format!(
                    "The report covers the {} contest only; it says nothing about {asked}. Here is {}:",
                    years.join(", "),
                    years.join(", ")
                ),
            });
        }
        Notice::NoSuchPrize { typed } => {
            doc.line(match lang {
                Lang::Zh => format!("报道中没有“{typed}”这个奖项。"),
                Lang::En => format!("The report has no prize called \"{typed}\"."),
            });
        }
        Notice::NoSuchCell { filter } => {
            let label = filter_label(&engine.knowledge().levels, filter, lang);
            doc.line(match lang {
                Lang::Zh => format!("报道中没有“{label}”。以下是该奖项的实际获奖名单:"),
                Lang::En => format!("The report has no \"{label}\". Here is who won that prize:"),
            });
        }
        Notice::NotWon { entity, filter } => {
            let name = &engine.entity(*entity).name;
            let label = filter_label(&engine.knowledge().levels, filter, lang);
            // A group alone is no prize: "戚迎是保险组的吗" is not "did 戚迎
            // win the 保险机构组".
            let group_only = filter.level.is_none() && filter.kind.is_none();
            doc.line(match (lang, group_only) {
                (Lang::Zh, false) => format!("{name}没有获得{label}。"),
                (Lang::Zh, true) => format!("{name}不在{label}的获奖名单中。"),
                (Lang::En, false) => format!("{name} did not win the {label}."),
                (Lang::En, true) => format!("{name} is not among the winners of the {label}."),
            });
        }
    }
}

fn unit(counted: Counted, n: usize, lang: Lang) -> &'static str {
    match (counted, lang, n == 1) {
        (Counted::Awards, Lang::Zh, _) => "个奖项",
        (Counted::Institutions, Lang::Zh, _) => "家单位",
        (Counted::People, Lang::Zh, _) => "人",
        (Counted::Teams, Lang::Zh, _) => "个团队",
        (Counted::Awards, Lang::En, true) => "award",
        (Counted::Awards, Lang::En, false) => "awards",
        (Counted::Institutions, Lang::En, true) => "institution",
        (Counted::Institutions, Lang::En, false) => "institutions",
        (Counted::People, Lang::En, true) => "person",
        (Counted::People, Lang::En, false) => "people",
        (Counted::Teams, Lang::En, true) => "team",
        (Counted::Teams, Lang::En, false) => "teams",
    }
}

fn reply(engine: &Engine, doc: &mut Doc, reply_: &Reply, lang: Lang) {
    let k = engine.knowledge();
    match reply_ {
        Reply::Welcome => {
            let r = k.newest();
            let covers = match lang {
                Lang::Zh => r.texts.covers_zh.clone(),
                Lang::En => r.texts.covers_en.clone(),
            };
            match lang {
                Lang::Zh => {
                    doc.bold("您好!我是报告问答机器人 reportbot。");
                    doc.line(match covers {
                        Some(c) => format!("我能回答关于《{}》的问题:{c}。", r.meta.contest),
                        None => format!("我能回答关于《{}》的问题。", r.meta.contest),
                    });
                }
                Lang::En => {
                    doc.bold("Hello! I am reportbot.");
                    doc.line(match covers {
                        Some(c) => format!(
                            "I answer questions about the {} ({}): {c}.",
                            r.meta.contest, r.meta.year
                        ),
                        None => format!(
                            "I answer questions about the {} ({}).",
                            r.meta.contest, r.meta.year
                        ),
                    });
                }
            }
            doc.blank();
            examples(engine, doc, lang);
        }
        Reply::Help => match lang {
            Lang::Zh => {
                doc.bold("命令:");
                doc.line("/start - 欢迎和示例");
                doc.line("/help - 本帮助");
                doc.line("/awards - 浏览荣誉榜(按组别、团体/个人、奖项)");
                doc.line("/winner 奖项或名字 - 例如 /winner 个人一等奖");
                doc.line("/tips [主题] - 帮老人防诈骗的提示,例如 /tips 验证码");
                doc.line("/reports - 已收录的报道");
                doc.line("/about - 数据来源");
                doc.line("/subscribe - 订阅新大赛公告");
                doc.line("/unsubscribe - 取消订阅");
                doc.line("/status - 查看订阅状态");
                doc.blank();
                doc.line("也可以直接用中文或英文提问,繁体、简称都可以;一条消息里可以问几个问题,也可以接着上一个问题追问(“那保险组呢”“他是哪个单位的”)。");
            }
            Lang::En => {
                doc.bold("Commands:");
                doc.line("/start - welcome and examples");
                doc.line("/help - this help");
                doc.line("/awards - browse the award list (group, team/individual, prize)");
                doc.line("/winner prize or name - e.g. /winner individual first prize");
                doc.line("/tips [topic] - anti-fraud tips for elderly relatives, e.g. /tips verification code");
                doc.line("/reports - the reports I know");
                doc.line("/about - where the data comes from");
                doc.line("/subscribe - get new contest announcements");
                doc.line("/unsubscribe - stop them");
                doc.line("/status - your subscription");
                doc.blank();
                doc.line("Or just ask in English or Chinese; several questions in one message and follow-ups (\"and the insurance group?\") work too.");
            }
        },
        Reply::About => {
            for r in &k.reports {
                match lang {
                    Lang::Zh => {
                        doc.bold(format!("数据来源:{}", r.meta.title));
                        let kind = r.texts.kind_zh.as_deref().unwrap_or("报道");
                        doc.line(format!("{}年{}月的{kind}。回答中的每个名字和数字都来自这篇报道的原文,并经过测试核对。", &r.meta.published[..4.min(r.meta.published.len())], r.meta.published.get(5..).unwrap_or("")));
                    }
                    Lang::En => {
                        doc.bold(format!("Source: {}", r.meta.title));
                        let kind = r.texts.kind_en.as_deref().unwrap_or("A report");
                        doc.line(format!("{kind} published {}. Every name and number in my answers comes from its text and is checked by tests.", r.meta.published));
                    }
                }
            }
        }
        Reply::Ranking {
            report,
            filter,
            by,
            rows,
            position,
            least,
            at,
            top,
        } => {
            let r = &k.reports[*report];
            if let Some(label) = contest_label(engine, r, lang) {
                doc.line(label);
            }
            let scope = filter_label(&k.levels, filter, lang);
            let at: Vec<&crate::engine::RankRow> = at.iter().filter_map(|i| rows.get(*i)).collect();
            match at.first() {
                None => {
                    doc.line(zh_en(
                        lang,
                        "没有符合条件的获奖单位。",
                        "No institution won such a prize.",
                    ));
                }
                Some(first) => {
                    let names: Vec<&str> = at.iter().map(|x| x.institution.as_str()).collect();
                    let best = first
                        .best
                        .map(|p| prize_label(&k.levels, &p, lang))
                        .unwrap_or_default();
                    let place_zh = match (*position, *least) {
                        (1, false) => String::new(),
                        (1, true) => String::new(),
                        // Places are small: read as words ("第二多").
                        (n @ 2..=10, _) => {
                            const ZH: [&str; 9] =
                                ["二", "三", "四", "五", "六", "七", "八", "九", "十"];
                            format!("第{}", ZH[usize::from(n) - 2])
                        }
                        (n, _) => format!("第{n}"),
                    };
                    let each = if names.len() > 1 { "各 " } else { "" };
                    doc.bold(match (lang, by, least) {
                        (Lang::Zh, RankBy::Count, false) if place_zh.is_empty() => format!(
                            "{scope}获奖最多的是{}:{each}{} 个奖项。",
                            names.join("、"),
                            first.awards
                        ),
                        (Lang::Zh, RankBy::Count, false) => format!(
                            "{scope}获奖{place_zh}多的是{}:{each}{} 个奖项。",
                            names.join("、"),
                            first.awards
                        ),
                        (Lang::Zh, RankBy::Count, true) => format!(
                            "{scope}获奖最少的是{}:{each}{} 个奖项。",
                            names.join("、"),
                            first.awards
                        ),
                        (Lang::Zh, RankBy::Level, false) => {
                            format!("{scope}成绩最好的是{}:{best}。", names.join("、"))
                        }
                        (Lang::Zh, RankBy::Level, true) => {
                            format!("{scope}成绩最靠后的是{}:{best}。", names.join("、"))
                        }
                        (Lang::En, RankBy::Count, least) => format!(
                            "{}{}: {} ({} award(s){}).",
                            match (*position, least) {
                                (_, true) => "Fewest awards".to_string(),
                                (1, false) => "Most awards".to_string(),
                                (n, false) => format!("Number {n} by awards"),
                            },
                            if scope.is_empty() {
                                String::new()
                            } else {
                                format!(" ({scope})")
                            },
                            names.join(", "),
                            first.awards,
                            if names.len() > 1 { " each" } else { "" }
                        ),
                        (Lang::En, RankBy::Level, _) => format!(
                            "Best result{}: {} ({best}).",
                            if scope.is_empty() {
                                String::new()
                            } else {
                                format!(" ({scope})")
                            },
                            names.join(", ")
                        ),
                    });
                    if let Some(w) = top
                        && !w.awards.is_empty()
                    {
                        for i in &w.awards {
                            let a = &r.awards[*i];
                            doc.line(format!(
                                "· {}:{}",
                                prize_label(&k.levels, &a.prize(), lang),
                                a.winner
                            ));
                        }
                    }
                    doc.blank();
                    doc.line(zh_en(
                        lang,
                        "各单位获奖数(多的在前):",
                        "Awards per institution (most first):",
                    ));
                    let mut ordered: Vec<&crate::engine::RankRow> = rows.iter().collect();
                    if *least {
                        ordered.reverse();
                    }
                    for row in ordered {
                        let best = row
                            .best
                            .map(|p| prize_label(&k.levels, &p, lang))
                            .unwrap_or_default();
                        doc.line(match (lang, by) {
                            (Lang::Zh, RankBy::Count) => {
                                format!("· {}:{} 项", row.institution, row.awards)
                            }
                            (Lang::Zh, RankBy::Level) => {
                                format!("· {}:{best}(共 {} 项)", row.institution, row.awards)
                            }
                            (Lang::En, RankBy::Count) => {
                                format!("· {}: {}", row.institution, row.awards)
                            }
                            (Lang::En, RankBy::Level) => {
                                format!("· {}: {best} ({} in all)", row.institution, row.awards)
                            }
                        });
                    }
                }
            }
        }
        Reply::GroupCounts { filter, rows } => {
            let scope = filter_label(&k.levels, filter, lang);
            let same = rows.windows(2).all(|w| w[0].1 == w[1].1);
            let list: Vec<String> = rows
                .iter()
                .map(|(g, n)| match lang {
                    Lang::Zh => format!("{}{scope} {n} 个", g.zh()),
                    Lang::En => format!("{} {n}", g.en()),
                })
                .collect();
            let most = rows.iter().max_by_key(|(_, n)| *n);
            doc.bold(match (lang, same, most) {
                (Lang::Zh, true, _) => format!("一样:{}。", list.join(",")),
                (Lang::En, true, _) => format!("The same: {}.", list.join(", ")),
                (Lang::Zh, false, Some((g, _))) => format!("{}更多:{}。", g.zh(), list.join(",")),
                (Lang::En, false, Some((g, _))) => {
                    format!("The {} has more: {}.", g.en(), list.join(", "))
                }
                (_, false, None) => String::new(),
            });
        }
        Reply::Institutions {
            report,
            filter,
            names,
        } => {
            let r = &k.reports[*report];
            if let Some(label) = contest_label(engine, r, lang) {
                doc.line(label);
            }
            let scope = filter_label(&k.levels, filter, lang);
            doc.bold(match lang {
                Lang::Zh if scope.is_empty() => format!("获奖单位共 {} 家:", names.len()),
                Lang::Zh => format!("获得{scope}的单位共 {} 家:", names.len()),
                Lang::En if scope.is_empty() => {
                    format!("{} institutions won awards:", names.len())
                }
                Lang::En => format!("{} institution(s) won ({scope}):", names.len()),
            });
            for n in names {
                doc.line(format!("· {n}"));
            }
        }
        Reply::Count { n, counted, list } => {
            doc.bold(match lang {
                Lang::Zh => format!("共 {n} {}。", unit(*counted, *n, lang)),
                Lang::En => format!("{n} {} in all.", unit(*counted, *n, lang)),
            });
            doc.blank();
            let mut inner = Doc::default();
            reply(engine, &mut inner, list, lang);
            // The list repeats the number in its own heading or total line.
            if let Reply::Winners { .. } = **list
                && let Some(last) = inner.starts.len().checked_sub(1)
                && inner
                    .line_spans(last)
                    .iter()
                    .any(|s| s.text.starts_with('共') || s.text.contains("in all"))
            {
                inner.pop_line();
            }
            doc.append(inner);
        }
        Reply::Compare {
            basis,
            outcome,
            wins: ws,
        } => {
            let name = |id: &crate::engine::EntityId| engine.entity(*id).name.clone();
            let best = |w: &EntityWins| -> Option<crate::knowledge::Prize> {
                let r = &k.reports[w.report];
                w.awards
                    .iter()
                    .map(|i| r.awards[*i].prize())
                    .min_by_key(|p| r.levels.rank(p.level))
            };
            match outcome {
                CompareOutcome::Same => {
                    let prizes: Vec<crate::knowledge::Prize> = ws.iter().filter_map(best).collect();
                    let same_group = prizes.windows(2).all(|p| p[0] == p[1]);
                    doc.bold(match (lang, basis) {
                        (Lang::Zh, RankBy::Count) => format!(
                            "一样:都获得 {} 个奖项。",
                            ws.first().map_or(0, |w| w.awards.len())
                        ),
                        (Lang::En, RankBy::Count) => format!(
                            "The same: {} award(s) each.",
                            ws.first().map_or(0, |w| w.awards.len())
                        ),
                        (Lang::Zh, RankBy::Level) => match prizes.first() {
                            Some(p) if same_group => {
                                format!("一样:都是{}。", p.full_label_zh(&k.levels))
                            }
                            Some(p) => format!("一样:都是{}(组别不同)。", p.label_zh(&k.levels)),
                            None => "一样。".into(),
                        },
                        (Lang::En, RankBy::Level) => match prizes.first() {
                            Some(p) if same_group => {
                                format!("The same: both won the {}.", p.full_label_en(&k.levels))
                            }
                            Some(p) => format!(
                                "The same: both won the {} (in different groups).",
                                p.label_en(&k.levels)
                            ),
                            None => "The same.".into(),
                        },
                    });
                }
                CompareOutcome::Ahead(id) => {
                    let ahead = ws.iter().find(|w| w.entity == *id);
                    let others: Vec<&EntityWins> = ws.iter().filter(|w| w.entity != *id).collect();
                    let line = match basis {
                        RankBy::Count => {
                            let n = ahead.map_or(0, |w| w.awards.len());
                            let rest: Vec<String> = others
                                .iter()
                                .map(|w| match lang {
                                    Lang::Zh => {
                                        format!("{} {} 个", name(&w.entity), w.awards.len())
                                    }
                                    Lang::En => format!("{} {}", name(&w.entity), w.awards.len()),
                                })
                                .collect();
                            match lang {
                                Lang::Zh => {
                                    format!("{}获奖更多:{n} 个奖项,{}。", name(id), rest.join(","))
                                }
                                Lang::En => format!(
                                    "{} won more: {n} award(s), against {}.",
                                    name(id),
                                    rest.join(", ")
                                ),
                            }
                        }
                        RankBy::Level => {
                            let top = ahead
                                .and_then(best)
                                .map(|p| prize_label(&k.levels, &p, lang))
                                .unwrap_or_default();
                            let rest: Vec<String> = others
                                .iter()
                                .map(|w| {
                                    let p = best(w)
                                        .map(|p| prize_label(&k.levels, &p, lang))
                                        .unwrap_or_default();
                                    match lang {
                                        Lang::Zh => format!("{}是{p}", name(&w.entity)),
                                        Lang::En => format!("{}: {p}", name(&w.entity)),
                                    }
                                })
                                .collect();
                            match lang {
                                Lang::Zh => {
                                    format!("{}的奖更高:{top};{}。", name(id), rest.join(";"))
                                }
                                Lang::En => {
                                    format!("{} did better: {top}; {}.", name(id), rest.join("; "))
                                }
                            }
                        }
                    };
                    doc.bold(line);
                }
                CompareOutcome::Unranked => {
                    doc.bold(zh_en(
                        lang,
                        "没法直接比较:",
                        "They cannot be compared directly:",
                    ));
                }
            }
            for w in ws {
                doc.blank();
                if w.awards.is_empty() {
                    let n = name(&w.entity);
                    doc.line(match lang {
                        Lang::Zh => format!("{n} 在这份报道的荣誉榜中没有获奖记录。"),
                        Lang::En => format!("{n} is not on this report's award list."),
                    });
                } else {
                    wins(engine, doc, w, lang, false);
                }
            }
        }
        Reply::Prizes { report } => {
            let r = &k.reports[*report];
            doc.line(zh_en(
                lang,
                "报道中设有的奖项:",
                "The prizes the report lists:",
            ));
            let prizes = r.prizes();
            for g in Group::ALL {
                let kinds: Vec<Kind> = Kind::ALL
                    .into_iter()
                    .filter(|k| prizes.iter().any(|p| p.group == Some(g) && p.kind == *k))
                    .collect();
                let levels: Vec<Level> = r
                    .levels
                    .all()
                    .into_iter()
                    .filter(|l| prizes.iter().any(|p| p.group == Some(g) && p.level == *l))
                    .collect();
                if levels.is_empty() {
                    continue;
                }
                doc.line(match lang {
                    Lang::Zh => format!(
                        "· {}:{}{}",
                        g.zh(),
                        kinds.iter().map(|k| k.zh()).collect::<Vec<_>>().join("和"),
                        levels
                            .iter()
                            .map(|l| r.levels.zh(*l))
                            .collect::<Vec<_>>()
                            .join("、")
                    ),
                    Lang::En => format!(
                        "· {}: {} {}",
                        g.en(),
                        kinds
                            .iter()
                            .map(|k| k.en())
                            .collect::<Vec<_>>()
                            .join(" and "),
                        levels
                            .iter()
                            .map(|l| r.levels.en(*l))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
            for p in prizes.iter().filter(|p| p.group.is_none()) {
                doc.line(format!("· {}", prize_label(&k.levels, p, lang)));
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
                doc.bold(prize_label(&k.levels, &s.prize, lang));
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
            partial,
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
                wins(engine, doc, w, lang, *partial);
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
            let r = &k.reports[*report];
            let f = &r.facts[*fact];
            doc.line(zh_en(lang, &f.answer_zh, &f.answer_en));
            // "个人一等奖获得者": who they are, from the award list.
            if let Some(sel) = f.winners {
                let names: Vec<String> = r
                    .awards
                    .iter()
                    .filter(|a| sel.matches(&a.prize()))
                    .map(|a| match lang {
                        Lang::Zh => format!(
                            "{}({},{})",
                            a.winner,
                            a.institution,
                            prize_label(&k.levels, &a.prize(), lang)
                        ),
                        Lang::En => format!(
                            "{} ({}, {})",
                            a.winner,
                            a.institution,
                            prize_label(&k.levels, &a.prize(), lang)
                        ),
                    })
                    .collect();
                if !names.is_empty() {
                    doc.line(match lang {
                        Lang::Zh => format!("获奖者:{}。", names.join("、")),
                        Lang::En => format!("The winners: {}.", names.join("; ")),
                    });
                }
            }
        }
        Reply::Tips { topic, tips, .. } => {
            let found = topic.as_ref().and_then(|t| {
                k.reports
                    .iter()
                    .flat_map(|r| &r.antifraud.topics)
                    .find(|x| &x.id == t)
            });
            doc.bold(match (lang, found) {
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
            let source = tips
                .first()
                .map(|(r, _)| &k.reports[*r].antifraud)
                .and_then(|a| match lang {
                    Lang::Zh => a.source_zh.clone(),
                    Lang::En => a.source_en.clone(),
                });
            let more = zh_en(
                lang,
                "发送 /tips 加主题查看更多,例如 /tips 验证码。",
                "Send /tips with a topic for more, e.g. /tips screen sharing.",
            );
            doc.line(match source {
                Some(s) => format!("{s}{}{more}", if lang == Lang::En { " " } else { "" }),
                None => more,
            });
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
            similar,
        } => {
            let names: Vec<&str> = options
                .iter()
                .map(|id| engine.entity(*id).name.as_str())
                .collect();
            doc.line(match (lang, typed.is_empty(), similar) {
                (Lang::Zh, false, true) => {
                    format!("报道里没有“{typed}”。您是不是要找:")
                }
                (Lang::En, false, true) => {
                    format!("\"{typed}\" is not in the report. Did you mean:")
                }
                (Lang::Zh, false, false) => format!(
                    "“{typed}”可能指 {} 个机构或名字,您是指哪一个?",
                    options.len()
                ),
                (Lang::Zh, true, _) => "您是指哪一个?".to_string(),
                (Lang::En, false, false) => format!(
                    "\"{typed}\" could mean {} names. Which one do you mean?",
                    options.len()
                ),
                (Lang::En, true, _) => "Which one do you mean?".to_string(),
            });
            for (i, n) in names.iter().enumerate() {
                doc.line(format!("{}. {n}", i + 1));
            }
            for w in ws {
                doc.blank();
                wins(engine, doc, w, lang, false);
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
            examples(engine, doc, lang);
        }
    }
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

    #[test]
    fn a_wrong_group_is_not_called_a_prize() {
        let k = crate::knowledge::Knowledge::builtin().expect("built-in data loads");
        let engine = Engine::new(std::sync::Arc::new(k));
        let text = engine.ask("戚迎是保险组的吗").text;
        assert!(
            text.starts_with("不是。戚迎不在保险机构组的获奖名单中。"),
            "{text}"
        );
        assert!(text.contains("个人三等奖(银行机构组)"), "{text}");
        let text = engine.ask("兴业银行得了最佳人气奖吗").text;
        assert!(text.contains("没有获得最佳人气奖"), "{text}");
    }
}
