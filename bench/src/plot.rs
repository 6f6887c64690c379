//! A log-log line chart written as a PNG with no font, system library or plotting
//! crate: pixels in memory, the public-domain 8×8 bitmap font of `font8x8`, and the
//! pure-Rust `png` encoder.

use anyhow::Context;

pub type Rgb = [u8; 3];

pub const WHITE: Rgb = [255, 255, 255];
pub const BLACK: Rgb = [20, 20, 20];
pub const GREY: Rgb = [120, 120, 120];
pub const LIGHT: Rgb = [225, 225, 225];
pub const FAINT: Rgb = [242, 242, 242];

/// One line of the chart.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub color: Rgb,
    pub dashed: bool,
    /// (x, y), both > 0 (the axes are logarithmic).
    pub points: Vec<(f64, f64)>,
}

#[derive(Debug, Clone)]
pub struct Chart {
    pub title: String,
    pub subtitle: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
}

pub struct Canvas {
    pub w: usize,
    pub h: usize,
    px: Vec<u8>,
}

impl Canvas {
    pub fn new(w: usize, h: usize, bg: Rgb) -> Self {
        Self {
            w,
            h,
            px: bg.iter().copied().cycle().take(w * h * 3).collect(),
        }
    }

    pub fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            let i = (y as usize * self.w + x as usize) * 3;
            self.px[i..i + 3].copy_from_slice(&c);
        }
    }

    pub fn get(&self, x: usize, y: usize) -> Rgb {
        let i = (y * self.w + x) * 3;
        [self.px[i], self.px[i + 1], self.px[i + 2]]
    }

    pub fn rect(&mut self, x: i64, y: i64, w: i64, h: i64, c: Rgb) {
        for yy in y..y + h {
            for xx in x..x + w {
                self.set(xx, yy, c);
            }
        }
    }

    /// A line `thick` pixels wide; dashed lines alternate 8 pixels on, 6 off.
    pub fn line(&mut self, (x0, y0): (f64, f64), (x1, y1): (f64, f64), c: Rgb, thick: i64, dashed: bool) {
        let len = ((x1 - x0).powi(2) + (y1 - y0).powi(2)).sqrt();
        let steps = len.ceil().max(1.0) as i64;
        let r = thick / 2;
        for i in 0..=steps {
            if dashed && (i % 14) >= 8 {
                continue;
            }
            let t = i as f64 / steps as f64;
            let (x, y) = ((x0 + (x1 - x0) * t).round() as i64, (y0 + (y1 - y0) * t).round() as i64);
            self.rect(x - r, y - r, thick, thick, c);
        }
    }

    fn glyph(c: char) -> [u8; 8] {
        let i = c as usize;
        if i < 128 {
            font8x8::legacy::BASIC_LEGACY[i]
        } else {
            font8x8::legacy::BASIC_LEGACY[b'?' as usize]
        }
    }

    /// Text with its top-left corner at (x, y), each font pixel `scale`² pixels.
    pub fn text(&mut self, x: i64, y: i64, s: &str, c: Rgb, scale: i64) {
        for (n, ch) in s.chars().enumerate() {
            let g = Self::glyph(ch);
            for (row, bits) in g.iter().enumerate() {
                for col in 0..8 {
                    if bits >> col & 1 == 1 {
                        self.rect(x + (n as i64 * 8 + col) * scale, y + row as i64 * scale, scale, scale, c);
                    }
                }
            }
        }
    }

    /// Text read bottom to top, its baseline on the left at x, starting at y (bottom).
    pub fn text_up(&mut self, x: i64, y: i64, s: &str, c: Rgb, scale: i64) {
        for (n, ch) in s.chars().enumerate() {
            let g = Self::glyph(ch);
            for (row, bits) in g.iter().enumerate() {
                for col in 0..8 {
                    if bits >> col & 1 == 1 {
                        let (gx, gy) = (n as i64 * 8 + col, row as i64);
                        self.rect(x + gy * scale, y - gx * scale, scale, scale, c);
                    }
                }
            }
        }
    }

    pub fn text_width(s: &str, scale: i64) -> i64 {
        s.chars().count() as i64 * 8 * scale
    }

    pub fn write_png(&self, path: &std::path::Path) -> anyhow::Result<()> {
        let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut enc = png::Encoder::new(std::io::BufWriter::new(file), self.w as u32, self.h as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header()?;
        w.write_image_data(&self.px)?;
        w.finish()?;
        Ok(())
    }
}

/// A decade's label: 0.01, 0.1, 1, 10, 100, 1k, 10k, ...
fn decade_label(k: i32) -> String {
    match k {
        k if k < 0 => format!("{:.*}", (-k) as usize, 10f64.powi(k)),
        k if k >= 3 => format!("{}k", 10i64.pow((k - 3) as u32)),
        k => 10i64.pow(k as u32).to_string(),
    }
}

fn decades(values: impl Iterator<Item = f64>) -> (i32, i32) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| *v > 0.0 && v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0, 1);
    }
    let (a, b) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    (a, if b > a { b } else { a + 1 })
}

/// Draws `chart` on a `w`×`h` canvas with logarithmic axes.
pub fn render(chart: &Chart, w: usize, h: usize) -> Canvas {
    let mut c = Canvas::new(w, h, WHITE);
    // The legend takes a column on the right, clear of the data.
    let legend_w = chart.series.iter().map(|s| Canvas::text_width(&s.label, 2)).max().unwrap_or(0) + 90;
    let (left, right, top, bottom) = (110i64, 30i64 + legend_w, 86i64, 80i64);
    let (pw, ph) = (w as i64 - left - right, h as i64 - top - bottom);
    let pts = || chart.series.iter().flat_map(|s| s.points.iter().copied());
    let (x0, x1) = decades(pts().map(|p| p.0));
    let (y0, y1) = decades(pts().map(|p| p.1));
    let sx = |x: f64| left as f64 + (x.log10() - f64::from(x0)) / f64::from(x1 - x0) * pw as f64;
    let sy = |y: f64| (top + ph) as f64 - (y.log10() - f64::from(y0)) / f64::from(y1 - y0) * ph as f64;

    // Grid: a line at each decade, faint ones at 2..9.
    for k in x0..=x1 {
        for m in 1..10 {
            let v = f64::from(m) * 10f64.powi(k);
            if k == x1 && m > 1 {
                break;
            }
            let x = sx(v);
            c.line(
                (x, top as f64),
                (x, (top + ph) as f64),
                if m == 1 { LIGHT } else { FAINT },
                1,
                false,
            );
        }
        let label = decade_label(k);
        c.text(
            sx(10f64.powi(k)) as i64 - Canvas::text_width(&label, 2) / 2,
            top + ph + 10,
            &label,
            BLACK,
            2,
        );
    }
    for k in y0..=y1 {
        for m in 1..10 {
            let v = f64::from(m) * 10f64.powi(k);
            if k == y1 && m > 1 {
                break;
            }
            let y = sy(v);
            c.line(
                (left as f64, y),
                ((left + pw) as f64, y),
                if m == 1 { LIGHT } else { FAINT },
                1,
                false,
            );
        }
        let label = decade_label(k);
        c.text(
            left - 10 - Canvas::text_width(&label, 2),
            sy(10f64.powi(k)) as i64 - 8,
            &label,
            BLACK,
            2,
        );
    }
    // Frame.
    c.line((left as f64, top as f64), (left as f64, (top + ph) as f64), GREY, 2, false);
    c.line(
        (left as f64, (top + ph) as f64),
        ((left + pw) as f64, (top + ph) as f64),
        GREY,
        2,
        false,
    );

    // Series: lines and square markers.
    for s in &chart.series {
        let p: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter(|p| p.0 > 0.0 && p.1 > 0.0)
            .map(|&(x, y)| (sx(x), sy(y)))
            .collect();
        for pair in p.windows(2) {
            c.line(pair[0], pair[1], s.color, 3, s.dashed);
        }
        for &(x, y) in &p {
            c.rect(x as i64 - 4, y as i64 - 4, 9, 9, s.color);
        }
    }

    // Titles and axis labels.
    c.text((w as i64 - Canvas::text_width(&chart.title, 2)) / 2, 14, &chart.title, BLACK, 2);
    c.text(
        (w as i64 - Canvas::text_width(&chart.subtitle, 1)) / 2,
        40,
        &chart.subtitle,
        GREY,
        1,
    );
    c.text(
        left + (pw - Canvas::text_width(&chart.x_label, 2)) / 2,
        h as i64 - 34,
        &chart.x_label,
        BLACK,
        2,
    );
    c.text_up(14, top + (ph + Canvas::text_width(&chart.y_label, 2)) / 2, &chart.y_label, BLACK, 2);

    // Legend, right of the plot.
    let (lx, mut ly) = (left + pw + 40, top + 12);
    for s in &chart.series {
        c.line(
            (lx as f64, (ly + 7) as f64),
            ((lx + 44) as f64, (ly + 7) as f64),
            s.color,
            3,
            s.dashed,
        );
        c.text(lx + 54, ly, &s.label, BLACK, 2);
        ly += 24;
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_lines_and_labels_and_writes_a_png() {
        let chart = Chart {
            title: "t".into(),
            subtitle: "s".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            series: vec![Series {
                label: "a".into(),
                color: [200, 0, 0],
                dashed: false,
                points: vec![(1.0, 0.2), (100.0, 3.0), (10_000.0, 80.0)],
            }],
        };
        let canvas = render(&chart, 400, 300);
        let red = (0..canvas.h)
            .flat_map(|y| (0..canvas.w).map(move |x| (x, y)))
            .filter(|&(x, y)| canvas.get(x, y) == [200, 0, 0])
            .count();
        assert!(red > 200, "the series is drawn: {red} pixels");
        let path = std::env::temp_dir().join(format!("bench-plot-{}.png", std::process::id()));
        canvas.write_png(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        let _ = std::fs::remove_file(path);
        assert_eq!(decade_label(-1), "0.1");
        assert_eq!(decade_label(4), "10k");
    }
}
