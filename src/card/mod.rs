//! Large-print pictures of anti-fraud tips ("大字图片"), for families to
//! forward to elderly relatives.
//!
//! A card is a PNG, 1080 px wide: the topic's name as the title on a dark
//! band, one tip per numbered block in 48 px text, and the tips' source line
//! from the data at the bottom. Chinese or English ([`Lang`]).
//!
//! - [`render_topic`] draws one card; [`Card::key`] names it by topic,
//!   language and a hash of everything drawn, so a transport can upload a
//!   picture once per topic and data version and reuse Telegram's `file_id`.
//! - [`Catalog::check`] runs once per data load: it checks every character
//!   of every card against the font and logs a warning for a card that
//!   cannot be drawn (the transport then sends the tips as text) — a picture
//!   with empty boxes is never made.
//!
//! Layout: [`wrap`] breaks lines (UAX #14), [`canvas`] draws into an indexed
//! image, [`font`] is the shipped font. Which tips a card shows mirrors the
//! engine's `/tips` answer (a test compares them).

pub mod canvas;
pub mod font;
mod punct;
pub mod wrap;

use crate::engine::Lang;
use crate::engine::normalize::normalize_word;
use crate::knowledge::{Knowledge, Tip, Topic};
use ab_glyph::FontRef;
use canvas::{Canvas, Ink, Palette, Solid};
use std::fmt;

/// Width of every card, in pixels.
pub const WIDTH: u32 = 1080;
/// Font sizes (em, in pixels). Body text of a large-print card is ≥ 44 px.
pub const TITLE_PX: f32 = 64.0;
pub const BODY_PX: f32 = 48.0;
pub const SMALL_PX: f32 = 44.0;
/// Bump when the look of a card changes, so cached uploads are redone.
pub const LAYOUT_VERSION: u32 = 1;

const MARGIN: f32 = 72.0;
const BADGE: f32 = 64.0;
const BADGE_GAP: f32 = 28.0;
/// Noto Sans CJK's ideographic em box reaches 0.88 em above the baseline.
const EM_ASCENT: f32 = 0.88;
/// Its Latin capitals are 0.733 em high (to centre digits in a badge).
const CAP_HEIGHT: f32 = 0.733;

/// Why a card cannot be drawn.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    #[error("no anti-fraud topic {0:?} (known: {1})")]
    UnknownTopic(String, String),
    #[error("anti-fraud topic {0:?} has no tips")]
    NoTips(String),
    /// Some text has characters the font has no glyph for.
    #[error("the font cannot draw {} in {place}", Missing(.missing))]
    Undrawable { place: String, missing: Vec<char> },
    #[error("font: {0}")]
    Font(String),
    #[error("PNG encoding: {0}")]
    Encode(String),
}

struct Missing<'a>(&'a [char]);

impl fmt::Display for Missing<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "'{c}' (U+{:04X})", *c as u32)?;
        }
        Ok(())
    }
}

/// Names a card by what it shows: the same key means the same picture.
/// Stable across runs and releases (FNV-1a of the drawn text, the font and
/// [`LAYOUT_VERSION`]), e.g. `tips-card/v1/courier/zh/3f2a…`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CardKey(String);

impl CardKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CardKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A rendered card.
#[derive(Debug, Clone)]
pub struct Card {
    /// The PNG file.
    pub png: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub key: CardKey,
    /// A short caption for the photo, e.g. `防骗提示:冒充快递“双倍赔付”`.
    pub caption: String,
}

/// What a card says, in one language.
#[derive(Debug, Clone, PartialEq)]
struct Content {
    kicker: String,
    title: String,
    tips: Vec<String>,
    /// Source lines, one per report the tips come from.
    sources: Vec<String>,
}

impl Content {
    fn caption(&self) -> String {
        if self.kicker.is_ascii() {
            format!("{}: {}", self.kicker, self.title)
        } else {
            punct::chinese(&format!("{}:{}", self.kicker, self.title))
        }
    }

    /// Every string drawn, with a name for error messages.
    fn parts(&self) -> Vec<(String, &str)> {
        let mut out = vec![
            ("the kicker".to_string(), self.kicker.as_str()),
            ("the title".to_string(), self.title.as_str()),
        ];
        for (i, t) in self.tips.iter().enumerate() {
            out.push((format!("tip {}", i + 1), t.as_str()));
        }
        for s in &self.sources {
            out.push(("the source line".to_string(), s.as_str()));
        }
        out
    }
}

fn lang_code(lang: Lang) -> &'static str {
    match lang {
        Lang::Zh => "zh",
        Lang::En => "en",
    }
}

/// Topic ids of every report, newest report first, each once.
pub fn topic_ids(k: &Knowledge) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for t in k.reports.iter().flat_map(|r| &r.antifraud.topics) {
        if !ids.contains(&t.id) {
            ids.push(t.id.clone());
        }
    }
    ids
}

/// The topic a word names: its id, its name, or the longest of its keywords
/// that the word contains (`验证码`, `courier`).
pub fn find_topic<'k>(k: &'k Knowledge, word: &str) -> Option<&'k Topic> {
    let topics = || k.reports.iter().flat_map(|r| &r.antifraud.topics);
    let id = word.trim().to_lowercase();
    // Read as the engine reads a question: traditional characters,
    // full-width forms and case do not matter (`tips 驗證碼`).
    let w = normalize_word(word);
    let same = |s: &str| normalize_word(s) == w;
    topics()
        .find(|t| t.id == id || same(&t.name_zh) || same(&t.name_en))
        .or_else(|| {
            topics()
                .filter_map(|t| {
                    t.keywords
                        .iter()
                        .map(|kw| normalize_word(kw))
                        .filter(|kw| !kw.is_empty() && w.contains(kw.as_str()))
                        .map(|kw| kw.chars().count())
                        .max()
                        .map(|n| (t, n))
                })
                .max_by_key(|(_, n)| *n)
                .map(|(t, _)| t)
        })
}

/// A card's topic (`None`: the overview) and its tips, each with the index
/// of its report.
type Selection<'k> = (Option<&'k Topic>, Vec<(usize, &'k Tip)>);

/// The tips a card shows, as the engine's `/tips` answer picks them: all tips
/// of the topic, merged over reports without repeating a text; without a
/// topic, the first tip of every prevention topic.
fn select<'k>(k: &'k Knowledge, topic: Option<&str>) -> Result<Selection<'k>, CardError> {
    let found = match topic {
        Some(id) => Some(
            k.reports
                .iter()
                .flat_map(|r| &r.antifraud.topics)
                .find(|t| t.id == id)
                .ok_or_else(|| CardError::UnknownTopic(id.to_string(), topic_ids(k).join(", ")))?,
        ),
        None => None,
    };
    let mut tips: Vec<(usize, &Tip)> = Vec::new();
    for (ri, r) in k.reports.iter().enumerate() {
        let is_after = |id: &str| r.antifraud.topics.iter().any(|t| t.id == id && t.after);
        for t in &r.antifraud.tips {
            if tips.iter().any(|(_, x)| x.zh == t.zh) {
                continue;
            }
            let take = match topic {
                Some(id) => t.topic == id,
                None => !is_after(&t.topic) && !tips.iter().any(|(_, x)| x.topic == t.topic),
            };
            if take {
                tips.push((ri, t));
            }
        }
    }
    if tips.is_empty() {
        return Err(CardError::NoTips(topic.unwrap_or("*").to_string()));
    }
    Ok((found, tips))
}

/// The tips a card shows (the same as the `/tips` answer), in order.
pub fn tips<'k>(k: &'k Knowledge, topic: Option<&str>) -> Result<Vec<&'k Tip>, CardError> {
    Ok(select(k, topic)?.1.into_iter().map(|(_, t)| t).collect())
}

fn content(k: &Knowledge, topic: Option<&str>, lang: Lang) -> Result<Content, CardError> {
    let (found, tips) = select(k, topic)?;
    let zh = lang == Lang::Zh;
    let kicker = if zh {
        "防骗提示"
    } else {
        "Anti-fraud tips"
    }
    .to_string();
    let title = match (found, zh) {
        (Some(t), true) => t.name_zh.clone(),
        (Some(t), false) => t.name_en.clone(),
        (None, true) => "帮长辈防范诈骗的提示".to_string(),
        (None, false) => "Tips to protect elderly relatives from scams".to_string(),
    };
    let mut sources: Vec<String> = Vec::new();
    let mut reports: Vec<usize> = tips.iter().map(|(r, _)| *r).collect();
    reports.dedup();
    for ri in reports {
        let r = &k.reports[ri];
        let line = if zh {
            &r.antifraud.source_zh
        } else {
            &r.antifraud.source_en
        };
        let kind = if zh {
            &r.texts.kind_zh
        } else {
            &r.texts.kind_en
        };
        let origin = match (kind, zh) {
            (Some(kind), true) => format!("出处:{kind}({})", r.meta.published),
            (Some(kind), false) => format!("{kind}, {}", r.meta.published),
            (None, true) => format!("出处:《{}》({})", r.meta.title, r.meta.published),
            (None, false) => format!("“{}”, {}", r.meta.title, r.meta.published),
        };
        let text = match line {
            Some(l) => format!("{l}\n{origin}"),
            None => origin,
        };
        if !sources.contains(&text) {
            sources.push(text);
        }
    }
    let print = |s: &str| if zh { punct::chinese(s) } else { s.to_string() };
    Ok(Content {
        kicker,
        title: print(&title),
        tips: tips
            .iter()
            .map(|(_, t)| if zh { print(&t.zh) } else { t.en.clone() })
            .collect(),
        sources: sources.iter().map(|s| print(s)).collect(),
    })
}

/// FNV-1a, 64 bit: small, stable across releases and platforms.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        for x in b {
            self.0 ^= u64::from(*x);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        // A separator that UTF-8 text never contains.
        self.0 ^= 0xff;
        self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        self
    }
}

fn font_digest() -> u64 {
    static DIGEST: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *DIGEST.get_or_init(|| Fnv::new().bytes(font::FONT_BYTES).0)
}

fn key_of(topic: Option<&str>, lang: Lang, c: &Content) -> CardKey {
    let mut h = Fnv::new();
    h.bytes(&LAYOUT_VERSION.to_le_bytes())
        .bytes(&font_digest().to_le_bytes())
        .bytes(lang_code(lang).as_bytes());
    for (_, text) in c.parts() {
        h.bytes(text.as_bytes());
    }
    CardKey(format!(
        "tips-card/v{LAYOUT_VERSION}/{}/{}/{:016x}",
        topic.unwrap_or("-"),
        lang_code(lang),
        h.0
    ))
}

/// Characters of `c` the font cannot draw, as an error naming where.
fn coverage(
    f: &FontRef<'_>,
    c: &Content,
    topic: Option<&str>,
    lang: Lang,
) -> Result<(), CardError> {
    for (place, text) in c.parts() {
        let missing = font::missing(f, text);
        if !missing.is_empty() {
            return Err(CardError::Undrawable {
                place: format!(
                    "{place} of topic {} ({})",
                    topic.unwrap_or("*"),
                    lang_code(lang)
                ),
                missing,
            });
        }
    }
    Ok(())
}

/// The key of a card without drawing it (to look up a cached upload).
pub fn card_key(k: &Knowledge, topic: Option<&str>, lang: Lang) -> Result<CardKey, CardError> {
    Ok(key_of(topic, lang, &content(k, topic, lang)?))
}

/// The short caption a card is sent with, without drawing it (a picture
/// sent again by its `file_id` still needs its caption).
pub fn caption(k: &Knowledge, topic: Option<&str>, lang: Lang) -> Result<String, CardError> {
    Ok(content(k, topic, lang)?.caption())
}

/// Draw the card of a topic (`None`: the overview that `/tips` shows, one
/// tip of every scam). Fails, drawing nothing, if the font lacks a character.
pub fn render_topic(k: &Knowledge, topic: Option<&str>, lang: Lang) -> Result<Card, CardError> {
    let f = font::font().map_err(CardError::Font)?;
    let c = content(k, topic, lang)?;
    coverage(f, &c, topic, lang)?;
    let numbers: Vec<String> = (1..=c.tips.len()).map(|n| n.to_string()).collect();
    let drawing = layout(f, &c, &numbers);
    let png = drawing
        .png(f)
        .map_err(|e| CardError::Encode(e.to_string()))?;
    Ok(Card {
        png,
        width: WIDTH,
        height: drawing.height,
        key: key_of(topic, lang, &c),
        caption: c.caption(),
    })
}

/// What a card says, line by line as drawn: one list of lines per block
/// (the kicker, the title, each tip, each source). For tests, logs and a
/// text alternative; no font coverage check.
pub fn text_blocks(
    k: &Knowledge,
    topic: Option<&str>,
    lang: Lang,
) -> Result<Vec<Vec<String>>, CardError> {
    let f = font::font().map_err(CardError::Font)?;
    let c = content(k, topic, lang)?;
    let numbers: Vec<String> = (1..=c.tips.len()).map(|n| n.to_string()).collect();
    let drawing = layout(f, &c, &numbers);
    Ok(drawing
        .blocks
        .iter()
        .map(|b| b.iter().map(|l| l.to_string()).collect())
        .collect())
}

/// One card the data offers: its key, and why it cannot be drawn, if so.
#[derive(Debug, Clone)]
pub struct Entry {
    /// `None`: the overview card.
    pub topic: Option<String>,
    pub lang: Lang,
    pub key: Option<CardKey>,
    pub problem: Option<CardError>,
}

/// Every card of a knowledge base, checked against the font: build it once
/// per data load, ask it whether to offer a picture.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    entries: Vec<Entry>,
}

impl Catalog {
    /// Check every character of every card (overview and each topic, both
    /// languages); log a warning for each card that cannot be drawn.
    pub fn check(k: &Knowledge) -> Catalog {
        let f = font::font();
        let mut entries = Vec::new();
        let topics: Vec<Option<String>> = std::iter::once(None)
            .chain(topic_ids(k).into_iter().map(Some))
            .collect();
        for topic in topics {
            for lang in [Lang::Zh, Lang::En] {
                let t = topic.as_deref();
                let (key, problem) = match (&f, content(k, t, lang)) {
                    (Err(e), _) => (None, Some(CardError::Font(e.clone()))),
                    (Ok(_), Err(e)) => (None, Some(e)),
                    (Ok(f), Ok(c)) => (Some(key_of(t, lang, &c)), coverage(f, &c, t, lang).err()),
                };
                if let Some(p) = &problem {
                    tracing::warn!(
                        topic = t.unwrap_or("*"),
                        lang = lang_code(lang),
                        "no large-print picture, the tips go out as text: {p}"
                    );
                }
                entries.push(Entry {
                    topic: topic.clone(),
                    lang,
                    key,
                    problem,
                });
            }
        }
        Catalog { entries }
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn entry(&self, topic: Option<&str>, lang: Lang) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.topic.as_deref() == topic && e.lang == lang)
    }

    /// Whether to offer the picture of a topic (`None`: the overview).
    pub fn can_draw(&self, topic: Option<&str>, lang: Lang) -> bool {
        self.entry(topic, lang)
            .is_some_and(|e| e.problem.is_none() && e.key.is_some())
    }

    /// The cache key of a drawable card.
    pub fn key(&self, topic: Option<&str>, lang: Lang) -> Option<&CardKey> {
        self.entry(topic, lang)
            .filter(|e| e.problem.is_none())
            .and_then(|e| e.key.as_ref())
    }
}

/// Colours: near-black on white for the tips (contrast 18.9:1), white and
/// yellow on dark blue for the title (11.7:1 and 9.3:1), near-black on light
/// grey for the source (14:1).
struct Colors {
    palette: Palette,
    white: Solid,
    band: Solid,
    rule: Solid,
    footer: Solid,
    body: Ink,
    title: Ink,
    kicker: Ink,
    badge: Ink,
    digit: Ink,
    source: Ink,
}

fn colors() -> Colors {
    let mut p = Palette::default();
    let white = p.solid([0xff, 0xff, 0xff]);
    let ink = p.solid([0x11, 0x11, 0x11]);
    let band = p.solid([0x0b, 0x3a, 0x82]);
    let yellow = p.solid([0xff, 0xd5, 0x4a]);
    let rule = p.solid([0xc4, 0xcb, 0xd6]);
    let footer = p.solid([0xee, 0xf1, 0xf5]);
    let footer_text = p.solid([0x22, 0x22, 0x22]);
    Colors {
        body: p.ink(white, ink),
        title: p.ink(band, white),
        kicker: p.ink(band, yellow),
        badge: p.ink(white, band),
        digit: p.ink(band, white),
        source: p.ink(footer, footer_text),
        palette: p,
        white,
        band,
        rule,
        footer,
    }
}

enum Op<'a> {
    Rect {
        y: f32,
        h: f32,
        solid: Solid,
    },
    Text {
        x: f32,
        baseline: f32,
        px: f32,
        text: &'a str,
        ink: Ink,
    },
    Circle {
        cx: f32,
        cy: f32,
        r: f32,
        ink: Ink,
    },
}

/// Lays a card out top to bottom as drawing operations.
struct Layout<'f, 'a> {
    font: &'f FontRef<'f>,
    ops: Vec<Op<'a>>,
    y: f32,
    /// The lines of each block of text, as drawn.
    blocks: Vec<Vec<&'a str>>,
}

impl<'a> Layout<'_, 'a> {
    /// `text` wrapped from `x` to the right margin, lines `lh` apart.
    fn lines(&mut self, text: &'a str, x: f32, px: f32, lh: f32, ink: Ink) {
        let f = self.font;
        let scale = font::scale_for_em(f, px);
        let max = WIDTH as f32 - MARGIN - x;
        let mut block = Vec::new();
        for l in wrap::wrap(text, max, |ch| font::advance(f, scale, ch)) {
            block.push(l.text);
            // The em box centred in the line box.
            let baseline = self.y + (lh - px) / 2.0 + EM_ASCENT * px;
            self.ops.push(Op::Text {
                x,
                baseline,
                px,
                text: l.text,
                ink,
            });
            self.y += lh;
        }
        self.blocks.push(block);
    }

    /// A full-width background from `top` to the current position, drawn
    /// under what was laid out since `first_op`.
    fn background(&mut self, first_op: usize, top: f32, solid: Solid) {
        let h = self.y - top;
        self.ops.insert(first_op, Op::Rect { y: top, h, solid });
    }
}

fn layout<'a>(f: &FontRef<'_>, c: &'a Content, numbers: &'a [String]) -> Drawing<'a> {
    let col = colors();
    let mut l = Layout {
        font: f,
        ops: Vec::new(),
        y: 0.0,
        blocks: Vec::new(),
    };

    // The title on a dark band.
    l.y += 52.0;
    l.lines(&c.kicker, MARGIN, SMALL_PX, SMALL_PX * 1.4, col.kicker);
    l.y += 8.0;
    l.lines(&c.title, MARGIN, TITLE_PX, TITLE_PX * 1.3, col.title);
    l.y += 44.0;
    l.background(0, 0.0, col.band);

    // One numbered block per tip.
    l.y += 48.0;
    let lh = BODY_PX * 1.5;
    let digit_scale = font::scale_for_em(f, SMALL_PX);
    for (i, tip) in c.tips.iter().enumerate() {
        if i > 0 {
            l.y += 34.0;
            l.ops.push(Op::Rect {
                y: l.y,
                h: 2.0,
                solid: col.rule,
            });
            l.y += 2.0 + 34.0;
        }
        let cy = l.y + lh / 2.0;
        l.ops.push(Op::Circle {
            cx: MARGIN + BADGE / 2.0,
            cy,
            r: BADGE / 2.0,
            ink: col.badge,
        });
        let number = numbers[i].as_str();
        let w: f32 = number
            .chars()
            .map(|ch| font::advance(f, digit_scale, ch))
            .sum();
        l.ops.push(Op::Text {
            x: MARGIN + (BADGE - w) / 2.0,
            baseline: cy + CAP_HEIGHT * SMALL_PX / 2.0,
            px: SMALL_PX,
            text: number,
            ink: col.digit,
        });
        l.lines(tip, MARGIN + BADGE + BADGE_GAP, BODY_PX, lh, col.body);
    }
    l.y += 56.0;

    // Where the tips come from, on light grey.
    let (top, first) = (l.y, l.ops.len());
    l.y += 40.0;
    for s in &c.sources {
        l.lines(s, MARGIN, SMALL_PX, SMALL_PX * 1.45, col.source);
    }
    l.y += 40.0;
    l.background(first, top, col.footer);

    Drawing {
        ops: l.ops,
        height: l.y.ceil() as u32,
        colors: col,
        blocks: l.blocks,
    }
}

/// A laid-out card, ready to draw.
struct Drawing<'a> {
    ops: Vec<Op<'a>>,
    height: u32,
    colors: Colors,
    blocks: Vec<Vec<&'a str>>,
}

/// Rows drawn at a time: a 1080 × 96 strip (100 KB) instead of the whole
/// picture (up to 3 MB), so memory stays flat however many cards are drawn.
const STRIP_ROWS: u32 = 96;

impl Drawing<'_> {
    /// Draw strip by strip into an indexed PNG.
    fn png(&self, f: &FontRef<'_>) -> Result<Vec<u8>, png::EncodingError> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, WIDTH, self.height);
        enc.set_color(png::ColorType::Indexed);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_palette(self.colors.palette.bytes());
        // fdeflate with adaptive filtering: for these pictures a quarter of
        // the time of zlib level 1, and smaller (measured in the bench).
        enc.set_deflate_compression(png::DeflateCompression::FdeflateUltraFast);
        enc.set_filter(png::Filter::Adaptive);
        let mut writer = enc.write_header()?;
        let mut stream = writer.stream_writer_with_size(64 * 1024)?;
        let mut canvas = Canvas::new(WIDTH, STRIP_ROWS);
        let mut top = 0;
        while top < self.height {
            let rows = STRIP_ROWS.min(self.height - top);
            canvas.reset(top, rows, self.colors.white);
            for op in &self.ops {
                match *op {
                    Op::Rect { y, h, solid } => {
                        canvas.fill_rows(y.round() as u32, h.round() as u32, solid)
                    }
                    Op::Text {
                        x,
                        baseline,
                        px,
                        text,
                        ink,
                    } => {
                        if canvas.touches(baseline - 1.2 * px, baseline + 0.4 * px) {
                            canvas.text(f, font::scale_for_em(f, px), x, baseline, text, ink);
                        }
                    }
                    Op::Circle { cx, cy, r, ink } => {
                        if canvas.touches(cy - r - 1.0, cy + r + 1.0) {
                            canvas.fill_circle(cx, cy, r, ink)
                        }
                    }
                }
            }
            std::io::Write::write_all(&mut stream, &canvas.pixels)?;
            top += rows;
        }
        stream.finish()?;
        writer.finish()?;
        Ok(out)
    }
}
