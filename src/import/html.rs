//! A saved news page (HTML) → the article's text, one line per block.
//!
//! The page is parsed with `scraper` (html5ever, the browsers' HTML5
//! algorithm: unclosed `<p>`, implied `<tbody>`, entities and broken markup
//! come out as a browser shows them). Then:
//!
//! - the article is the `<article>` or `<main>` element, or the element whose
//!   id or class says it holds the content (`content`, `article`,
//!   `TRS_Editor`, `detail` …) with the most Chinese text; failing those, the
//!   `<body>` without its `<header>` and `<footer>`;
//! - scripts, styles, forms, navigation, sidebars, share bars and the like are
//!   left out (by tag, and by id/class words such as `nav`, `menu`, `share`);
//! - every block (`<p>`, `<div>`, `<li>`, `<h1>` …) and every `<br>` starts a
//!   new line; runs of spaces (and `&nbsp;`) become one space, as a browser
//!   shows them; `<pre>` keeps its lines and spaces;
//! - a data table (one without tables inside) becomes one line per `<tr>`,
//!   its cells separated by a tab; a cell merged over several rows
//!   (`rowspan`) is written on each of them, as it reads on the page, so each
//!   line names everything its row says. Each such line also carries its cells
//!   for [`super::table`];
//! - the page's `<h1>` (or its `<title>`) is the first line when the article
//!   does not start with it.
//!
//! Nothing else is added: every character of the result is text of the page.
//! This text is the report's stored source (`sources/<name>.txt`), so the
//! loader checks award rows against exactly what the importer read; the page
//! itself is kept beside it (`sources/<name>.html`).

use scraper::{ElementRef, Html, Node};

/// One line of the article: its text, and its cells when it is a table row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HtmlLine {
    pub text: String,
    pub cells: Option<Vec<String>>,
}

/// Tags whose content is never article text.
const SKIP_TAGS: &[&str] = &[
    "script", "style", "noscript", "template", "nav", "aside", "form", "iframe", "svg", "button",
    "select", "textarea", "object", "canvas", "video", "audio", "head", "title", "map",
];

/// id/class words of page furniture.
const SKIP_MARKERS: &[&str] = &[
    "nav",
    "menu",
    "breadcrumb",
    "crumb",
    "share",
    "sidebar",
    "side-bar",
    "related",
    "comment",
    "copyright",
    "toolbar",
    "pagination",
    "pager",
    "login",
    "search",
    "qrcode",
];

/// id/class words of the article body.
const CONTENT_MARKERS: &[&str] = &[
    "article",
    "content",
    "trs_editor",
    "detail",
    "main-text",
    "maintext",
    "news_text",
    "newstext",
    "zoom",
    "post",
    "entry",
];

const BLOCK_TAGS: &[&str] = &[
    "address",
    "article",
    "blockquote",
    "center",
    "dd",
    "details",
    "dialog",
    "dir",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hgroup",
    "hr",
    "li",
    "main",
    "menu",
    "ol",
    "p",
    "section",
    "summary",
    "ul",
    "caption",
    "body",
    "html",
    "tr",
    "td",
    "th",
    "tbody",
    "thead",
    "tfoot",
    "table",
];

/// Does it look like an HTML document (not plain text that mentions a tag)?
pub(crate) fn looks_like_html(text: &str) -> bool {
    let head: String = text
        .trim_start_matches('\u{feff}')
        .trim_start()
        .chars()
        .take(512)
        .collect::<String>()
        .to_ascii_lowercase();
    head.starts_with("<!doctype html")
        || head.starts_with("<html")
        || head.starts_with("<!--") && head.contains("<html")
        || head.starts_with("<?xml") && head.contains("<html")
}

fn marker_words(el: &ElementRef<'_>) -> String {
    let e = el.value();
    let mut s = e.id().unwrap_or_default().to_ascii_lowercase();
    for c in e.classes() {
        s.push(' ');
        s.push_str(&c.to_ascii_lowercase());
    }
    s
}

fn has_marker(words: &str, markers: &[&str]) -> bool {
    words
        .split([' ', '_', '-'])
        .filter(|w| !w.is_empty())
        .any(|w| markers.contains(&w))
        || markers
            .iter()
            .filter(|m| m.contains(['_', '-']))
            .any(|m| words.contains(*m))
}

fn skipped(el: &ElementRef<'_>, root_is_body: bool) -> bool {
    let name = el.value().name();
    if SKIP_TAGS.contains(&name) {
        return true;
    }
    if root_is_body && matches!(name, "header" | "footer") {
        return true;
    }
    let words = marker_words(el);
    has_marker(&words, SKIP_MARKERS)
        || (root_is_body && has_marker(&words, &["header", "footer", "foot", "top", "bottom"]))
}

fn cjk_count(el: &ElementRef<'_>) -> usize {
    el.text()
        .flat_map(str::chars)
        .filter(|c| crate::engine::normalize::is_cjk(*c))
        .count()
}

/// The element holding the article, and whether it is the whole body.
fn article_root<'a>(doc: &'a Html) -> (ElementRef<'a>, bool) {
    let root = doc.root_element();
    let body = root
        .descendent_elements()
        .find(|e| e.value().name() == "body")
        .unwrap_or(root);
    let mut best: Option<(usize, ElementRef<'a>)> = None;
    for el in body.descendent_elements() {
        let name = el.value().name();
        let candidate = matches!(name, "article" | "main")
            || (matches!(name, "div" | "section" | "td")
                && has_marker(&marker_words(&el), CONTENT_MARKERS)
                && !skipped(&el, false));
        if !candidate {
            continue;
        }
        let n = cjk_count(&el);
        if n > best.as_ref().map_or(0, |(m, _)| *m) {
            best = Some((n, el));
        }
    }
    match best {
        // Content of some substance (not an empty `<main>`).
        Some((n, el)) if n >= 20 => (el, false),
        _ => (body, true),
    }
}

fn title_of(doc: &Html, root: &ElementRef<'_>) -> Option<String> {
    let in_root = root
        .descendent_elements()
        .find(|e| e.value().name() == "h1");
    let any = || {
        doc.root_element()
            .descendent_elements()
            .find(|e| e.value().name() == "h1")
    };
    if let Some(h1) = in_root.or_else(any) {
        let t = collapse(&h1.text().collect::<String>());
        if !t.is_empty() {
            return Some(t);
        }
    }
    let title = doc
        .root_element()
        .descendent_elements()
        .find(|e| e.value().name() == "title")?;
    let t = collapse(&title.text().collect::<String>());
    // `标题 - 浙江日报`, `标题_新闻中心`, `标题|网站`.
    let cut = [" - ", "_", "|", " — ", "——"]
        .iter()
        .filter_map(|s| t.find(s))
        .min()
        .unwrap_or(t.len());
    let t = t[..cut].trim().to_string();
    (!t.is_empty()).then_some(t)
}

/// Runs of whitespace (and no-break spaces) as one space, trimmed; the
/// full-width space U+3000 is a character of the text and stays.
fn collapse(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars() {
        if c.is_ascii_whitespace() || c == '\u{a0}' {
            space = true;
        } else {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.push(c);
        }
    }
    out
}

struct Walker {
    lines: Vec<HtmlLine>,
    current: String,
    root_is_body: bool,
}

impl Walker {
    fn flush(&mut self) {
        let text = collapse(&self.current);
        self.current.clear();
        let text = text.trim_matches('\u{3000}').to_string();
        if !text.is_empty() {
            self.lines.push(HtmlLine { text, cells: None });
        }
    }

    fn walk(&mut self, el: ElementRef<'_>) {
        for child in el.children() {
            match child.value() {
                Node::Text(t) => self.current.push_str(t),
                Node::Element(_) => {
                    let Some(e) = ElementRef::wrap(child) else {
                        continue;
                    };
                    if skipped(&e, self.root_is_body) {
                        continue;
                    }
                    let name = e.value().name();
                    match name {
                        "br" => self.flush(),
                        "pre" => {
                            self.flush();
                            let text: String = e.text().collect();
                            for l in text.lines() {
                                let l = l.trim_end().trim_start_matches('\n');
                                if !l.trim().is_empty() {
                                    self.lines.push(HtmlLine {
                                        text: l.to_string(),
                                        cells: None,
                                    });
                                }
                            }
                        }
                        "table" if !has_table_inside(&e) => {
                            self.flush();
                            self.table(e);
                        }
                        _ if BLOCK_TAGS.contains(&name) => {
                            self.flush();
                            self.walk(e);
                            self.flush();
                        }
                        _ => self.walk(e),
                    }
                }
                _ => {}
            }
        }
    }

    /// One line per row; merged cells repeated where they apply.
    fn table(&mut self, table: ElementRef<'_>) {
        // (column, rows left, text) of cells merged downwards.
        let mut pending: Vec<(usize, usize, String)> = Vec::new();
        let mut caption = None;
        let rows: Vec<ElementRef<'_>> = table
            .descendent_elements()
            .filter(|e| {
                if e.value().name() == "caption" {
                    caption = Some(cell_text(e));
                }
                e.value().name() == "tr"
            })
            .collect();
        if let Some(c) = caption.filter(|c| !c.is_empty()) {
            self.lines.push(HtmlLine {
                text: collapse(&c.replace('\n', " ")),
                cells: None,
            });
        }
        for tr in rows {
            // (text, written on this line)
            let mut grid: Vec<Option<(String, bool)>> = Vec::new();
            for (col, left, text) in pending.iter_mut() {
                if *left > 0 {
                    if grid.len() <= *col {
                        grid.resize(*col + 1, None);
                    }
                    grid[*col] = Some((text.clone(), true));
                    *left -= 1;
                }
            }
            pending.retain(|(_, left, _)| *left > 0);
            let mut col = 0;
            for cell in tr
                .child_elements()
                .filter(|c| matches!(c.value().name(), "td" | "th"))
            {
                while grid.get(col).is_some_and(Option::is_some) {
                    col += 1;
                }
                let text = cell_text(&cell);
                let span = |a: &str| {
                    cell.value()
                        .attr(a)
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(1)
                        .clamp(1, 100)
                };
                let (colspan, rowspan) = (span("colspan"), span("rowspan"));
                for k in 0..colspan {
                    if grid.len() <= col + k {
                        grid.resize(col + k + 1, None);
                    }
                    grid[col + k] = Some((text.clone(), k == 0));
                    if rowspan > 1 {
                        pending.push((col + k, rowspan - 1, text.clone()));
                    }
                }
                col += colspan;
            }
            let cells: Vec<String> = grid
                .iter()
                .map(|c| c.as_ref().map(|(t, _)| t.clone()).unwrap_or_default())
                .collect();
            let text: Vec<String> = grid
                .iter()
                .filter_map(|c| c.as_ref())
                .filter(|(t, written)| *written && !t.is_empty())
                .map(|(t, _)| t.replace('\n', " "))
                .collect();
            let text = text.join("\t");
            if text.trim().is_empty() {
                continue;
            }
            self.lines.push(HtmlLine {
                text,
                cells: Some(cells),
            });
        }
    }
}

fn has_table_inside(table: &ElementRef<'_>) -> bool {
    table
        .descendent_elements()
        .skip(1)
        .any(|e| e.value().name() == "table")
}

/// A cell's text; its line breaks (`<br>`, paragraphs) become `\n`.
fn cell_text(cell: &ElementRef<'_>) -> String {
    let mut w = Walker {
        lines: Vec::new(),
        current: String::new(),
        root_is_body: false,
    };
    w.walk(*cell);
    w.flush();
    w.lines
        .into_iter()
        .map(|l| l.text)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The article's lines (the title first).
pub(crate) fn extract(html: &str) -> Vec<HtmlLine> {
    let doc = Html::parse_document(html);
    let (root, root_is_body) = article_root(&doc);
    let mut w = Walker {
        lines: Vec::new(),
        current: String::new(),
        root_is_body,
    };
    w.walk(root);
    w.flush();
    let mut lines = w.lines;
    if let Some(title) = title_of(&doc, &root)
        && lines.first().is_none_or(|l| l.text != title)
    {
        lines.insert(
            0,
            HtmlLine {
                text: title,
                cells: None,
            },
        );
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(html: &str) -> Vec<String> {
        extract(html).into_iter().map(|l| l.text).collect()
    }

    #[test]
    fn article_blocks_and_breaks() {
        let html = r#"<!DOCTYPE html><html><head><title>大赛举办 - 某某网</title>
<script>var x = "<p>不是正文</p>";</script></head><body>
<div class="nav"><a href="/">首页</a> | <a href="/news">新闻</a></div>
<div class="article-content"><h1>2023某某大赛顺利举办</h1>
<p>11月21日，2023某某大赛在杭州举行。本次大赛有很多人参加了。</p>
<p><strong>获奖名单</strong></p>
<p>团体一等奖（银行机构组）<br>浙商银行&nbsp;&nbsp;数智先锋队<br/>杭州银行 &ldquo;杭银数据&rdquo;队</p>
<ul><li>最佳人气奖</li></ul>
</div><div id="footer">版权所有 © 某某网</div></body></html>"#;
        assert_eq!(
            texts(html),
            [
                "2023某某大赛顺利举办",
                "11月21日，2023某某大赛在杭州举行。本次大赛有很多人参加了。",
                "获奖名单",
                "团体一等奖（银行机构组）",
                "浙商银行 数智先锋队",
                "杭州银行 “杭银数据”队",
                "最佳人气奖",
            ]
        );
    }

    #[test]
    fn merged_cells_are_written_on_each_row() {
        let html = r#"<html><body><div class="content"><p>这是一篇有足够多中文的正文，用来找到文章主体。获奖名单如下：</p>
<table><tr><th>奖项</th><th>单位</th><th>团队/个人</th></tr>
<tr><td rowspan="2">团体一等奖</td><td>浙商银行</td><td>数智先锋队</td></tr>
<tr><td>杭州银行</td><td>杭银数据队</td></tr>
<tr><td colspan="3">保险机构组</td></tr>
</table></div></body></html>"#;
        let lines = extract(html);
        let rows: Vec<(&str, Option<Vec<String>>)> = lines
            .iter()
            .map(|l| (l.text.as_str(), l.cells.clone()))
            .skip(1)
            .collect();
        assert_eq!(rows[0].0, "奖项\t单位\t团队/个人");
        assert_eq!(rows[1].0, "团体一等奖\t浙商银行\t数智先锋队");
        assert_eq!(rows[2].0, "团体一等奖\t杭州银行\t杭银数据队");
        assert_eq!(
            rows[2].1.as_deref(),
            Some(
                &[
                    "团体一等奖".to_string(),
                    "杭州银行".into(),
                    "杭银数据队".into()
                ][..]
            )
        );
        assert_eq!(rows[3].0, "保险机构组");
    }

    #[test]
    fn html_is_recognised() {
        assert!(looks_like_html("<!DOCTYPE html>\n<html>"));
        assert!(looks_like_html("\u{feff}  <HTML lang=zh>"));
        assert!(!looks_like_html("2022浙江…大赛\n荣誉榜\n<p>"));
    }
}
