//! `convkit augment`: what a recipe's augmentation does, as a picture. One row per image: the original, a gap,
//! then `n` augmented draws (or the test-time views), each scaled up so small images stay readable.

use super::tta::View;
use super::Augment;
use crate::data::Dataset;
use image::{Rgb, RgbImage};

/// Pixels between tiles, and the gap after the original.
const PAD: u32 = 4;

/// The grid for images `rows` of `ds`: the original, then either `n` draws of `aug` (epochs 1..=n) or `views`.
pub fn grid(ds: &Dataset, rows: &[usize], aug: &Augment, n: usize, views: Option<&[View]>, seed: u64) -> RgbImage {
    let [_, h, w] = ds.shape;
    let zoom = (96 / h.max(w)).max(1) as u32;
    let (th, tw) = (h as u32 * zoom, w as u32 * zoom);
    let cols = 1 + views.map_or(n, |v| v.len()) as u32;
    let mut out =
        RgbImage::from_pixel(cols * (tw + PAD) + 3 * PAD, rows.len() as u32 * (th + PAD) + PAD, Rgb([255; 3]));
    for (r, &i) in rows.iter().enumerate() {
        for col in 0..cols {
            let mut img = ds.image(i).to_vec();
            match (col, views) {
                (0, _) => {}
                (c, Some(v)) => v[c as usize - 1].apply(&mut img, ds.shape),
                (c, None) => aug.apply_for(&mut img, ds.shape, seed, c as usize, i),
            }
            let x0 = PAD + col * (tw + PAD) + if col > 0 { 2 * PAD } else { 0 };
            let y0 = PAD + r as u32 * (th + PAD);
            paste(&mut out, &img, ds.shape, zoom, x0, y0);
        }
    }
    out
}

/// Draws a `C x H x W` byte image at `(x0, y0)`, each pixel a `zoom x zoom` block.
fn paste(out: &mut RgbImage, img: &[u8], [c, h, w]: [usize; 3], zoom: u32, x0: u32, y0: u32) {
    for y in 0..h {
        for x in 0..w {
            let px = |ch: usize| img[(ch.min(c - 1) * h + y) * w + x];
            let rgb = Rgb([px(0), px(1), px(2)]);
            for dy in 0..zoom {
                for dx in 0..zoom {
                    out.put_pixel(x0 + x as u32 * zoom + dx, y0 + y as u32 * zoom + dy, rgb);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_column_is_the_original_and_the_draws_differ() {
        let ds = Dataset {
            shape: [3, 8, 8],
            images: (0..2 * 192).map(|v| (v * 13 % 256) as u8).collect(),
            labels: vec![0, 1],
            classes: vec!["a".into(), "b".into()],
            skipped: vec![],
        };
        let aug = Augment { hflip: true, crop_pad: 2, ..Default::default() };
        let g = grid(&ds, &[0, 1], &aug, 4, None, 0);
        assert_eq!(g.dimensions(), (5 * (96 + PAD) + 3 * PAD, 2 * (96 + PAD) + PAD));
        // Top-left pixel of the original tile is image 0's first pixel.
        let want = [0, 1, 2].map(|ch| ds.images[ch * 64]);
        assert_eq!(g.get_pixel(PAD, PAD).0, want);
        let tile = |col: u32| {
            let x0 = PAD + col * (96 + PAD) + 2 * PAD;
            (0..96)
                .flat_map(|y| (0..96).map(move |x| (x, y)))
                .map(|(x, y)| g.get_pixel(x0 + x, PAD + y).0)
                .collect::<Vec<_>>()
        };
        assert!((1..4).any(|c| tile(c) != tile(c + 1)), "different draws");
    }
}
