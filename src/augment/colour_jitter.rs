//! Colour jitter, torchvision's `ColorJitter`: brightness, contrast, saturation and hue, each factor drawn
//! uniformly (brightness `b` from `[1 - B, 1 + B]`, ..., hue shift from `[-H, H]` of a turn), applied in a random
//! order. Brightness scales the pixels; contrast blends with the image's mean grey; saturation with each
//! pixel's grey; hue rotates the HSV hue. Greyscale images take brightness and contrast only.

use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColourJitter {
    #[serde(default)]
    pub brightness: f64,
    #[serde(default)]
    pub contrast: f64,
    #[serde(default)]
    pub saturation: f64,
    /// At most 0.5 (half a turn).
    #[serde(default)]
    pub hue: f64,
}

impl ColourJitter {
    pub fn validate(&self) -> Result<(), String> {
        let ok = [self.brightness, self.contrast, self.saturation].iter().all(|v| (0.0..=1.0).contains(v))
            && (0.0..=0.5).contains(&self.hue);
        ok.then_some(()).ok_or_else(|| {
            format!("augment.colour_jitter = {self:?}: brightness, contrast, saturation lie in [0, 1], hue in [0, 0.5]")
        })
    }

    pub fn apply(&self, img: &mut [u8], shape: [usize; 3], rng: &mut impl Rng) {
        let mut order = [0, 1, 2, 3];
        order.shuffle(rng);
        for op in order {
            let m = [self.brightness, self.contrast, self.saturation, self.hue][op];
            if m == 0.0 {
                continue;
            }
            match op {
                0 => brightness(img, rng.random_range(1.0 - m..=1.0 + m)),
                1 => contrast(img, shape, rng.random_range(1.0 - m..=1.0 + m)),
                2 => saturation(img, shape, rng.random_range(1.0 - m..=1.0 + m)),
                _ => hue(img, shape, rng.random_range(-m..=m)),
            }
        }
    }
}

fn to_u8(v: f64) -> u8 {
    v.round().clamp(0.0, 255.0) as u8
}

pub fn brightness(img: &mut [u8], f: f64) {
    img.iter_mut().for_each(|v| *v = to_u8(*v as f64 * f));
}

/// ITU-R 601 luma, as torchvision's `rgb_to_grayscale`.
fn grey(r: f64, g: f64, b: f64) -> f64 {
    0.299 * r + 0.587 * g + 0.114 * b
}

pub fn contrast(img: &mut [u8], [c, h, w]: [usize; 3], f: f64) {
    let n = h * w;
    let mean = if c == 3 {
        (0..n).map(|p| grey(img[p] as f64, img[n + p] as f64, img[2 * n + p] as f64)).sum::<f64>() / n as f64
    } else {
        img.iter().map(|&v| v as f64).sum::<f64>() / img.len() as f64
    };
    img.iter_mut().for_each(|v| *v = to_u8(f * *v as f64 + (1.0 - f) * mean));
}

pub fn saturation(img: &mut [u8], [c, h, w]: [usize; 3], f: f64) {
    if c != 3 {
        return;
    }
    let n = h * w;
    for p in 0..n {
        let g = grey(img[p] as f64, img[n + p] as f64, img[2 * n + p] as f64);
        for ch in 0..3 {
            let v = &mut img[ch * n + p];
            *v = to_u8(f * *v as f64 + (1.0 - f) * g);
        }
    }
}

/// Rotates each pixel's hue by `shift` turns (HSV, value and saturation kept).
pub fn hue(img: &mut [u8], [c, h, w]: [usize; 3], shift: f64) {
    if c != 3 {
        return;
    }
    let n = h * w;
    for p in 0..n {
        let rgb = [img[p], img[n + p], img[2 * n + p]].map(|v| v as f64 / 255.0);
        let (hh, s, v) = rgb_to_hsv(rgb);
        let out = hsv_to_rgb((hh + shift).rem_euclid(1.0), s, v);
        for ch in 0..3 {
            img[ch * n + p] = to_u8(out[ch] * 255.0);
        }
    }
}

fn rgb_to_hsv([r, g, b]: [f64; 3]) -> (f64, f64, f64) {
    let (max, min) = (r.max(g).max(b), r.min(g).min(b));
    let d = max - min;
    let h = if d == 0.0 {
        0.0
    } else if max == r {
        ((g - b) / d).rem_euclid(6.0) / 6.0
    } else if max == g {
        ((b - r) / d + 2.0) / 6.0
    } else {
        ((r - g) / d + 4.0) / 6.0
    };
    (h, if max == 0.0 { 0.0 } else { d / max }, max)
}

fn hsv_to_rgb(h: f64, s: f64, v: f64) -> [f64; 3] {
    let i = (h * 6.0).floor();
    let f = h * 6.0 - i;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    match i as i64 % 6 {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::rng;

    fn rgb() -> Vec<u8> {
        (0..3 * 4 * 4).map(|v| (v * 37 % 256) as u8).collect()
    }

    #[test]
    fn factors_of_one_and_zero_shift_are_the_identity() {
        let img = rgb();
        let mut x = img.clone();
        ColourJitter::default().apply(&mut x, [3, 4, 4], &mut rng(0));
        brightness(&mut x, 1.0);
        contrast(&mut x, [3, 4, 4], 1.0);
        saturation(&mut x, [3, 4, 4], 1.0);
        hue(&mut x, [3, 4, 4], 0.0);
        assert_eq!(x, img);
        // A full turn of hue is the identity too (up to rounding).
        hue(&mut x, [3, 4, 4], 1.0);
        assert!(x.iter().zip(&img).all(|(a, b)| (*a as i32 - *b as i32).abs() <= 1));
    }

    #[test]
    fn each_factor_does_what_it_says() {
        let mut x = vec![100u8, 200, 50];
        brightness(&mut x, 1.5);
        assert_eq!(x, vec![150, 255, 75], "scaled, clipped at 255");
        let mut g = rgb();
        saturation(&mut g, [3, 4, 4], 0.0);
        assert!((0..16).all(|p| g[p] == g[16 + p] && g[p] == g[32 + p]), "no saturation: grey");
        let mut flat = rgb();
        contrast(&mut flat, [3, 4, 4], 0.0);
        assert!(flat.iter().all(|&v| v == flat[0]), "no contrast: the mean grey everywhere");
        // Pure red turned a third of a turn is pure green.
        let mut red = vec![255u8, 0, 0];
        hue(&mut red, [3, 1, 1], 1.0 / 3.0);
        assert_eq!(red, vec![0, 255, 0]);
    }
}
