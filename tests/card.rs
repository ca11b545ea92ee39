//! Large-print tips pictures (`src/card/`): the PNG as a viewer decodes it,
//! the shipped font against every character the data can put on a card,
//! line breaking on the real tips, the fallback for text the font cannot
//! draw, cache keys, and the `tips-card` command.

use ab_glyph::{Font, FontRef};
use reportbot::card::{self, CardError, Catalog, render_topic};
use reportbot::engine::{Engine, Lang, Reply};
use reportbot::knowledge::Knowledge;
use std::sync::{Arc, Mutex};

fn builtin() -> Knowledge {
    Knowledge::builtin().expect("built-in data loads")
}

/// The overview (`None`) and every topic.
fn every_card(k: &Knowledge) -> Vec<Option<String>> {
    std::iter::once(None)
        .chain(card::topic_ids(k).into_iter().map(Some))
        .collect()
}

/// A decoded picture as RGB rows.
struct Picture {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl Picture {
    fn decode(png_bytes: &[u8]) -> (Picture, png::ColorType) {
        let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        decoder.set_transformations(png::Transformations::EXPAND);
        let mut reader = decoder.read_info().expect("a PNG header");
        let color = reader.info().color_type;
        let mut buf = vec![0; reader.output_buffer_size().expect("size")];
        let frame = reader.next_frame(&mut buf).expect("the image data decodes");
        assert_eq!(frame.color_type, png::ColorType::Rgb, "expanded to RGB");
        buf.truncate(frame.buffer_size());
        (
            Picture {
                width: frame.width as usize,
                height: frame.height as usize,
                rgb: buf,
            },
            color,
        )
    }

    fn at(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }
}

fn luminance([r, g, b]: [u8; 3]) -> f64 {
    let lin = |v: u8| {
        let v = v as f64 / 255.0;
        if v <= 0.04045 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)
}

/// WCAG contrast ratio of two colours.
fn contrast(a: [u8; 3], b: [u8; 3]) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

#[test]
fn every_card_is_a_1080_px_png_under_300_kb() {
    let k = builtin();
    for topic in every_card(&k) {
        for lang in [Lang::Zh, Lang::En] {
            let c = render_topic(&k, topic.as_deref(), lang).expect("renders");
            let name = format!("{topic:?} {lang:?}");
            assert!(c.png.len() < 300 * 1024, "{name}: {} bytes", c.png.len());
            let (pic, color) = Picture::decode(&c.png);
            assert_eq!(color, png::ColorType::Indexed, "{name}");
            assert_eq!((pic.width, pic.height), (1080, c.height as usize), "{name}");
            assert!(
                (900..=4000).contains(&pic.height),
                "{name}: {} px high",
                pic.height
            );
            // Dark title band on top, light source box at the bottom, white
            // between; text in each with a high contrast.
            let band = pic.at(4, 4);
            let page = pic.at(4, pic.height / 2);
            let footer = pic.at(4, pic.height - 4);
            assert_eq!(page, [255, 255, 255], "{name}: page is white");
            assert!(
                contrast(band, [255, 255, 255]) >= 7.0,
                "{name}: band {band:?}"
            );
            assert!(luminance(footer) > 0.8, "{name}: footer {footer:?}");
            // The darkest colour on the white page (every other pixel).
            let darkest = (0..pic.height)
                .step_by(2)
                .filter(|&y| pic.at(4, y) == [255, 255, 255])
                .flat_map(|y| (5..pic.width).step_by(2).map(move |x| (x, y)))
                .map(|(x, y)| pic.at(x, y))
                .min_by(|a, b| luminance(*a).total_cmp(&luminance(*b)))
                .expect("pixels");
            assert!(
                contrast(darkest, page) >= 15.0,
                "{name}: body text {darkest:?} on white"
            );
            assert!(!c.caption.is_empty() && c.key.as_str().starts_with("tips-card/v"));
        }
    }
}

#[test]
fn body_text_is_at_least_44_px_high_on_the_picture() {
    // Measured on the decoded picture: in the tips column, each line of text
    // is a band of rows holding text pixels; a 44 px Chinese font's
    // characters are at least 0.8 em = 35 px tall.
    let k = builtin();
    for (topic, lang) in [(Some("courier"), Lang::Zh), (None, Lang::Zh)] {
        let c = render_topic(&k, topic, lang).expect("renders");
        let (pic, _) = Picture::decode(&c.png);
        let is_text = |x: usize, y: usize| luminance(pic.at(x, y)) < 0.05;
        let mut bands: Vec<usize> = Vec::new();
        let mut run = 0usize;
        for y in 0..pic.height {
            // Rows of the white page only (not the band or the source box).
            let on_page = pic.at(2, y) == [255, 255, 255];
            if on_page && (170..1000).any(|x| is_text(x, y)) {
                run += 1;
            } else if run > 0 {
                bands.push(run);
                run = 0;
            }
        }
        let tips = card::tips(&k, topic).expect("tips").len();
        assert!(bands.len() >= tips * 2, "{topic:?}: {bands:?}");
        bands.sort_unstable();
        let median = bands[bands.len() / 2];
        assert!(
            median >= 35,
            "{topic:?}: text lines are {median} px high: {bands:?}"
        );
    }
}

/// Closing marks no line may start with, opening marks no line may end
/// with (written out here, independently of the line breaker).
const CLOSING: &[char] = &[
    '。', '，', '、', '：', '；', '！', '？', '）', '」', '』', '】', '》', '〉', '”', '’', ',',
    '.', ':', ';', '!', '?', ')',
];
const OPENING: &[char] = &['（', '「', '『', '【', '《', '〈', '“', '‘', '('];

#[test]
fn lines_never_start_with_closing_or_end_with_opening_punctuation() {
    let k = builtin();
    let mut lines_checked = 0;
    for topic in every_card(&k) {
        for lang in [Lang::Zh, Lang::En] {
            let blocks = card::text_blocks(&k, topic.as_deref(), lang).expect("lays out");
            for block in &blocks {
                for (i, line) in block.iter().enumerate() {
                    lines_checked += 1;
                    let first = line.chars().next().expect("no empty line");
                    let last = line.chars().last().expect("no empty line");
                    assert!(
                        i == 0 || !CLOSING.contains(&first),
                        "{topic:?} {lang:?}: line starts with {first}: {block:#?}"
                    );
                    assert!(
                        i + 1 == block.len() || !OPENING.contains(&last),
                        "{topic:?} {lang:?}: line ends with {last}: {block:#?}"
                    );
                }
                if lang == Lang::En {
                    // No English word is split across lines.
                    let joined = block.join(" ");
                    for word in joined.split_whitespace() {
                        assert!(
                            block
                                .iter()
                                .any(|l| l.split_whitespace().any(|w| w == word)),
                            "{topic:?}: {word:?} is split: {block:#?}"
                        );
                    }
                }
            }
        }
    }
    assert!(lines_checked > 200, "{lines_checked} lines");
}

#[test]
fn every_tip_is_on_its_card_whole_and_in_order() {
    let k = builtin();
    for topic in every_card(&k) {
        let tips = card::tips(&k, topic.as_deref()).expect("tips");
        let blocks = card::text_blocks(&k, topic.as_deref(), Lang::En).expect("lays out");
        // kicker, title, the tips, the source
        assert_eq!(blocks.len(), 2 + tips.len() + 1, "{topic:?}");
        for (tip, block) in tips.iter().zip(&blocks[2..]) {
            // Lines end at spaces (dropped) or between Chinese characters.
            let squeeze = |s: &str| s.replace(' ', "");
            assert_eq!(squeeze(&block.concat()), squeeze(&tip.en), "{topic:?}");
        }
        let blocks = card::text_blocks(&k, topic.as_deref(), Lang::Zh).expect("lays out");
        for (tip, block) in tips.iter().zip(&blocks[2..]) {
            // Only ASCII punctuation next to Chinese is made full-width.
            let drawn: String = block.concat();
            let narrow: String = drawn
                .chars()
                .map(|c| match c {
                    '，' => ',',
                    '：' => ':',
                    '；' => ';',
                    '！' => '!',
                    '？' => '?',
                    '（' => '(',
                    '）' => ')',
                    c => c,
                })
                .collect();
            assert_eq!(narrow, tip.zh.replace(' ', ""), "{topic:?}");
        }
    }
}

#[test]
fn cards_show_the_same_tips_as_the_tips_answer() {
    let k = Arc::new(builtin());
    let engine = Engine::new(k.clone());
    for topic in every_card(&k) {
        let Reply::Tips { tips, .. } = engine.answer_tips(topic.as_deref(), Lang::Zh).reply else {
            panic!("{topic:?}: not a tips answer");
        };
        let answered: Vec<&str> = tips
            .iter()
            .map(|(r, t)| k.reports[*r].antifraud.tips[*t].id.as_str())
            .collect();
        let drawn: Vec<&str> = card::tips(&k, topic.as_deref())
            .expect("tips")
            .iter()
            .map(|t| t.id.as_str())
            .collect();
        assert_eq!(drawn, answered, "{topic:?}");
    }
}

/// Every character that built-in data can put on a card has a glyph in the
/// font file as shipped (read from disk here, not through the card module).
#[test]
fn no_tofu_every_character_of_the_data_has_a_glyph_in_the_shipped_font() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/fonts/NotoSansCJKsc-Regular-subset.otf"
    );
    let bytes = std::fs::read(path).expect("the font is shipped");
    assert!(
        bytes.len() < 2 * 1024 * 1024,
        "the font subset is {} bytes",
        bytes.len()
    );
    let font = FontRef::try_from_slice(&bytes).expect("the font parses");
    let k = builtin();
    let mut texts: Vec<String> = Vec::new();
    for r in &k.reports {
        let af = &r.antifraud;
        texts.extend(af.source_zh.iter().chain(&af.source_en).cloned());
        for t in &af.topics {
            texts.push(t.name_zh.clone());
            texts.push(t.name_en.clone());
        }
        for t in &af.tips {
            texts.push(t.zh.clone());
            texts.push(t.en.clone());
        }
        texts.extend(r.texts.kind_zh.iter().chain(&r.texts.kind_en).cloned());
        texts.push(r.meta.title.clone());
    }
    // The card's own words and the full-width punctuation it sets.
    texts.push("防骗提示 Anti-fraud tips 帮长辈防范诈骗的提示 出处 0123456789".into());
    texts.push("，：；！？（）“”".into());
    let mut missing: Vec<String> = Vec::new();
    let mut checked = 0;
    for text in &texts {
        for c in text.chars().filter(|c| !c.is_whitespace()) {
            checked += 1;
            if font.glyph_id(c).0 == 0 {
                missing.push(format!("{c} (U+{:04X}) in {text:?}", c as u32));
            }
        }
    }
    assert!(missing.is_empty(), "no glyph for: {missing:#?}");
    assert!(checked > 2000, "{checked} characters checked");
    // And the catalog agrees: every card of the built-in data can be drawn.
    let catalog = Catalog::check(&k);
    for e in catalog.entries() {
        assert!(
            e.problem.is_none(),
            "{:?} {:?}: {:?}",
            e.topic,
            e.lang,
            e.problem
        );
    }
    assert_eq!(catalog.entries().len(), 2 * every_card(&k).len());
}

/// A `tracing` writer that keeps what is logged.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_tip_the_font_cannot_draw_is_sent_as_text_with_a_warning() {
    let mut k = builtin();
    let tip = k.reports[0]
        .antifraud
        .tips
        .iter_mut()
        .find(|t| t.topic == "courier")
        .expect("a courier tip");
    tip.zh.push_str("한국");
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let catalog = tracing::subscriber::with_default(subscriber, || Catalog::check(&k));

    assert!(!catalog.can_draw(Some("courier"), Lang::Zh));
    assert!(catalog.key(Some("courier"), Lang::Zh).is_none());
    // The English card and the other topics are unaffected.
    assert!(catalog.can_draw(Some("courier"), Lang::En));
    assert!(catalog.can_draw(Some("verification_code"), Lang::Zh));
    // The overview starts with that tip, so it is text-only too.
    assert!(!catalog.can_draw(None, Lang::Zh));

    let logged = String::from_utf8(log.0.lock().expect("lock").clone()).expect("utf-8");
    assert!(logged.contains("WARN"), "{logged}");
    assert!(
        logged.contains("courier") && logged.contains("U+D55C"),
        "{logged}"
    );

    // Rendering refuses rather than draw empty boxes, and says what is missing.
    let err = render_topic(&k, Some("courier"), Lang::Zh).expect_err("must not draw");
    match &err {
        CardError::Undrawable { missing, place } => {
            assert_eq!(missing, &vec!['한', '국']);
            assert!(place.contains("tip 1"), "{place}");
        }
        other => panic!("unexpected error {other}"),
    }
    assert!(err.to_string().contains("'한' (U+D55C)"), "{err}");
}

#[test]
fn the_cache_key_changes_with_what_is_drawn_and_only_then() {
    let k = builtin();
    let key = |k: &Knowledge, topic: Option<&str>, lang| card::card_key(k, topic, lang).unwrap();
    let courier = key(&k, Some("courier"), Lang::Zh);
    assert!(
        courier.as_str().starts_with("tips-card/v1/courier/zh/"),
        "{courier}"
    );
    // Stable: the same data gives the same key, and the rendered card says so.
    assert_eq!(courier, key(&builtin(), Some("courier"), Lang::Zh));
    assert_eq!(
        courier,
        render_topic(&k, Some("courier"), Lang::Zh).unwrap().key
    );
    assert_ne!(courier, key(&k, Some("courier"), Lang::En));
    assert_ne!(courier, key(&k, None, Lang::Zh));
    // Another report's data changes only the keys of the cards it changes.
    let mut changed = builtin();
    let tip = changed.reports[0]
        .antifraud
        .tips
        .iter_mut()
        .find(|t| t.topic == "courier")
        .unwrap();
    tip.zh.push('。');
    assert_ne!(courier, key(&changed, Some("courier"), Lang::Zh));
    assert_eq!(
        key(&k, Some("card_lending"), Lang::Zh),
        key(&changed, Some("card_lending"), Lang::Zh)
    );
    let catalog = Catalog::check(&k);
    assert_eq!(catalog.key(Some("courier"), Lang::Zh), Some(&courier));
}

#[test]
fn topics_are_found_by_id_name_or_word() {
    let k = builtin();
    let id = |w: &str| card::find_topic(&k, w).map(|t| t.id.as_str());
    assert_eq!(id("courier"), Some("courier"));
    assert_eq!(id("验证码"), Some("verification_code"));
    assert_eq!(
        id("驗證碼"),
        Some("verification_code"),
        "traditional characters"
    );
    assert_eq!(id("泄露短信验证码"), Some("verification_code"));
    assert_eq!(id("屏幕共享"), Some("screen_sharing"));
    assert_eq!(id("Parcel"), Some("courier"));
    assert_eq!(id("天气"), None);
    let err = render_topic(&k, Some("nope"), Lang::Zh).unwrap_err();
    assert!(matches!(err, CardError::UnknownTopic(..)), "{err}");
    assert!(err.to_string().contains("courier"), "{err}");
}

fn reportbot(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_reportbot"))
        .args(args)
        .env_remove("REPORTBOT_DATA")
        .env_remove("REPORTBOT_CONFIG")
        .output()
        .expect("run reportbot")
}

#[test]
fn tips_card_command_writes_the_picture() {
    let dir = tempfile::tempdir().unwrap();
    let zh = dir.path().join("card.png");
    let run = reportbot(&["tips-card", "验证码", "--out", zh.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("1080×") && stdout.contains("tips-card/v1/verification_code/zh/"),
        "{stdout}"
    );
    let (pic, _) = Picture::decode(&std::fs::read(&zh).unwrap());
    assert_eq!(pic.width, 1080);

    let en = dir.path().join("card-en.png");
    let run = reportbot(&[
        "tips-card",
        "courier",
        "--lang",
        "en",
        "--out",
        en.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let bytes = std::fs::read(&en).unwrap();
    assert_eq!(
        bytes,
        render_topic(&builtin(), Some("courier"), Lang::En)
            .unwrap()
            .png,
        "the command draws what the library draws"
    );

    // The overview, to stdout.
    let run = reportbot(&["tips-card", "--out", "-"]);
    assert!(run.status.success());
    assert!(run.stdout.starts_with(b"\x89PNG\r\n\x1a\n"));
}

#[test]
fn tips_card_command_explains_bad_input_and_lists_cards() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.png");
    let run = reportbot(&["tips-card", "天气", "--out", out.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no anti-fraud topic \"天气\"") && stderr.contains("courier"),
        "{stderr}"
    );
    assert!(!out.exists());

    let run = reportbot(&["tips-card", "courier", "--lang", "fr"]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("expected zh or en"));

    let run = reportbot(&["tips-card", "--list"]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}");
    let k = builtin();
    for id in card::topic_ids(&k) {
        for lang in ["zh", "en"] {
            assert!(
                stdout.lines().any(|l| l.starts_with(&id)
                    && l.contains(&format!(" {lang}  ok  tips-card/v1/{id}/{lang}/"))),
                "{id} {lang}: {stdout}"
            );
        }
    }
}
