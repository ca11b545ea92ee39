//! A palette canvas: every pixel is an index into a small palette of solid
//! colours and, for each ink (a foreground colour on a known background),
//! `LEVELS` anti-aliasing steps between the two. Text pictures need few
//! colours, and an indexed PNG of them is a third the size of RGB.

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};

/// Anti-aliasing steps of an ink, both ends included.
pub const LEVELS: usize = 16;

pub type Rgb = [u8; 3];

/// A solid colour of the palette.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Solid(u8);

/// A foreground colour drawn over one background colour: level 0 is the
/// background, level `LEVELS - 1` the foreground (both solids), the levels
/// between are blends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ink {
    /// Palette index of level 1.
    first: u8,
    bg: Solid,
    fg: Solid,
}

impl Ink {
    fn index(self, level: u8) -> u8 {
        match level as usize {
            0 => self.bg.0,
            l if l >= LEVELS - 1 => self.fg.0,
            l => self.first + l as u8 - 1,
        }
    }

    /// The level a pixel shows of this ink, `None` for another colour.
    fn level_of(self, index: u8) -> Option<u8> {
        if index == self.bg.0 {
            Some(0)
        } else if index == self.fg.0 {
            Some(LEVELS as u8 - 1)
        } else if (self.first..self.first + LEVELS as u8 - 2).contains(&index) {
            Some(index - self.first + 1)
        } else {
            None
        }
    }
}

#[derive(Debug, Default)]
pub struct Palette {
    colors: Vec<Rgb>,
}

impl Palette {
    pub fn solid(&mut self, c: Rgb) -> Solid {
        self.colors.push(c);
        Solid((self.colors.len() - 1) as u8)
    }

    pub fn ink(&mut self, bg: Solid, fg: Solid) -> Ink {
        let b = self.colors[bg.0 as usize];
        let f = self.colors[fg.0 as usize];
        let first = self.colors.len() as u8;
        for level in 1..LEVELS - 1 {
            let a = level as f32 / (LEVELS - 1) as f32;
            // Blend in linear light so thin strokes keep their weight.
            let mix = |f: u8, b: u8| {
                let lin = |v: u8| (v as f32 / 255.0).powf(2.2);
                let v = lin(f) * a + lin(b) * (1.0 - a);
                (v.powf(1.0 / 2.2) * 255.0).round() as u8
            };
            self.colors
                .push([mix(f[0], b[0]), mix(f[1], b[1]), mix(f[2], b[2])]);
        }
        debug_assert!(self.colors.len() <= 256, "palette overflow");
        Ink { first, bg, fg }
    }

    /// The PLTE chunk.
    pub fn bytes(&self) -> Vec<u8> {
        self.colors.iter().flatten().copied().collect()
    }
}

/// A horizontal strip of the picture: rows `top..top + rows` of a
/// `width`-pixel-wide image. Drawing is clipped to the strip, so a picture
/// is drawn strip by strip into one small buffer and streamed into the PNG
/// encoder; rendering never holds the whole image.
pub struct Canvas {
    pub width: u32,
    top: i64,
    rows: u32,
    pub pixels: Vec<u8>,
}

impl Canvas {
    /// A strip buffer of at most `rows` rows.
    pub fn new(width: u32, rows: u32) -> Self {
        Canvas {
            width,
            top: 0,
            rows,
            pixels: vec![0; width as usize * rows as usize],
        }
    }

    /// Move to rows `top..top + rows`, cleared to `bg`.
    pub fn reset(&mut self, top: u32, rows: u32, bg: Solid) {
        self.top = i64::from(top);
        self.rows = rows;
        self.pixels.clear();
        self.pixels
            .resize(self.width as usize * rows as usize, bg.0);
    }

    /// Whether image rows `from..to` touch this strip.
    pub fn touches(&self, from: f32, to: f32) -> bool {
        (to as i64) >= self.top && (from as i64) < self.top + i64::from(self.rows)
    }

    /// Fill image rows `y..y + h` across the whole width.
    pub fn fill_rows(&mut self, y: u32, h: u32, c: Solid) {
        let from = (i64::from(y) - self.top).clamp(0, i64::from(self.rows)) as usize;
        let to = (i64::from(y + h) - self.top).clamp(0, i64::from(self.rows)) as usize;
        let w = self.width as usize;
        self.pixels[from * w..to * w].fill(c.0);
    }

    /// Cover one pixel (image coordinates) with `ink` at coverage `c`
    /// (0..=1). Where glyphs overlap the darker step wins; a pixel of another
    /// colour is only taken over by more than half coverage.
    fn cover(&mut self, x: i64, y: i64, c: f32, ink: Ink) {
        let y = y - self.top;
        if x < 0 || y < 0 || x >= i64::from(self.width) || y >= i64::from(self.rows) {
            return;
        }
        let level = (c.clamp(0.0, 1.0) * (LEVELS - 1) as f32).round() as u8;
        if level == 0 {
            return;
        }
        let p = &mut self.pixels[y as usize * self.width as usize + x as usize];
        match ink.level_of(*p) {
            Some(old) if old < level => *p = ink.index(level),
            Some(_) => {}
            None if level as usize > LEVELS / 2 => *p = ink.index(level),
            None => {}
        }
    }

    /// An anti-aliased disc.
    pub fn fill_circle(&mut self, cx: f32, cy: f32, r: f32, ink: Ink) {
        let (x0, x1) = ((cx - r - 1.0).floor() as i64, (cx + r + 1.0).ceil() as i64);
        let y0 = ((cy - r - 1.0).floor() as i64).max(self.top);
        let y1 = ((cy + r + 1.0).ceil() as i64).min(self.top + i64::from(self.rows));
        for y in y0..=y1 {
            for x in x0..=x1 {
                let dx = x as f32 + 0.5 - cx;
                let dy = y as f32 + 0.5 - cy;
                let d = (dx * dx + dy * dy).sqrt();
                self.cover(x, y, r - d + 0.5, ink);
            }
        }
    }

    /// Draw `text` with its baseline at `y`, starting at `x`. Characters
    /// without a glyph are never passed here (the card checks coverage
    /// first).
    pub fn text(
        &mut self,
        font: &FontRef<'_>,
        scale: PxScale,
        x: f32,
        y: f32,
        text: &str,
        ink: Ink,
    ) {
        let scaled = font.as_scaled(scale);
        let mut pen = x;
        for c in text.chars() {
            let advance = super::font::advance(font, scale, c);
            if !super::font::is_layout_only(c) {
                let glyph = font
                    .glyph_id(c)
                    .with_scale_and_position(scale, point(pen, y));
                if let Some(outline) = scaled.outline_glyph(glyph) {
                    let b = outline.px_bounds();
                    if self.touches(b.min.y, b.max.y) {
                        let (bx, by) = (b.min.x as i64, b.min.y as i64);
                        outline.draw(|gx, gy, c| {
                            self.cover(bx + i64::from(gx), by + i64::from(gy), c, ink)
                        });
                    }
                }
            }
            pen += advance;
        }
    }
}
