//! The font of the pictures: a subset of Noto Sans CJK SC shipped in
//! `data/fonts/` (see `make-subset.sh` there), compiled into the binary like
//! the built-in data, and parsed once on first use.

use ab_glyph::{Font, FontRef, GlyphId, PxScale, ScaleFont};
use std::sync::OnceLock;

/// The font file, as shipped.
pub const FONT_BYTES: &[u8] = include_bytes!("../../data/fonts/NotoSansCJKsc-Regular-subset.otf");

/// Where the font comes from, for logs and `tips-card --list`.
pub const FONT_NAME: &str = "Noto Sans CJK SC Regular (subset, SIL OFL 1.1)";

/// The parsed font. A broken file is a build defect, but it is still
/// reported as an error rather than a panic.
pub fn font() -> Result<&'static FontRef<'static>, String> {
    static FONT: OnceLock<Result<FontRef<'static>, String>> = OnceLock::new();
    FONT.get_or_init(|| {
        FontRef::try_from_slice(FONT_BYTES)
            .map_err(|e| format!("data/fonts/NotoSansCJKsc-Regular-subset.otf: {e}"))
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// A character needs no glyph: it only moves the pen or breaks the line.
pub fn is_layout_only(c: char) -> bool {
    c.is_whitespace() || c.is_control() || c == '\u{200B}' || c == '\u{FEFF}'
}

/// The glyph of a character, `None` if the font has none (it would be drawn
/// as an empty box).
pub fn glyph(font: &FontRef<'_>, c: char) -> Option<GlyphId> {
    let id = font.glyph_id(c);
    (id.0 != 0).then_some(id)
}

/// The characters of `text` that the font cannot draw, each once, in order.
pub fn missing(font: &FontRef<'_>, text: &str) -> Vec<char> {
    let mut out: Vec<char> = Vec::new();
    for c in text.chars() {
        if !is_layout_only(c) && glyph(font, c).is_none() && !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

/// The scale at which the font's em square is `em_px` pixels: ab_glyph
/// scales by ascent − descent, which for this font is 1.448 em.
pub fn scale_for_em(font: &FontRef<'_>, em_px: f32) -> PxScale {
    let upem = font.units_per_em().unwrap_or(1000.0);
    PxScale::from(em_px * font.height_unscaled() / upem)
}

/// The advance width of a character at a scale (0 for line breaks).
pub fn advance(font: &FontRef<'_>, scale: PxScale, c: char) -> f32 {
    if c == '\n' || c == '\r' || c == '\u{200B}' {
        return 0.0;
    }
    font.as_scaled(scale).h_advance(font.glyph_id(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_font_parses_and_has_the_common_han_set() {
        let f = font().expect("font");
        // A few GB2312 level 1 characters from its first and last rows, and
        // the full-width punctuation Chinese text uses.
        for c in "啊阿埃座做坐，。、：；！？“”（）《》—…0aZ".chars() {
            assert!(glyph(f, c).is_some(), "no glyph for {c}");
        }
        assert_eq!(missing(f, "한국어 a"), vec!['한', '국', '어']);
        assert!(f.glyph_count() > 3755, "{} glyphs", f.glyph_count());
    }

    #[test]
    fn em_scale_makes_a_han_character_one_em_wide() {
        let f = font().expect("font");
        let s = scale_for_em(f, 48.0);
        assert!((advance(f, s, '国') - 48.0).abs() < 0.01);
        assert!((advance(f, s, '，') - 48.0).abs() < 0.01);
    }
}
