//! RandAugment (Cubuk et al. 2019): `n` operations drawn uniformly per image from a fixed list, all at one
//! magnitude `m` (0..30; torchvision's ranges at m = 30: rotate 30 degrees, shear 0.3, translate 45% of the size,
//! brightness / saturation / contrast / sharpness factor 1 +- 0.9, posterize to 4 bits, solarize at threshold 0),
//! plus equalize and autocontrast, which have no magnitude. Signed operations take a random sign. Sharpness and
//! equalize follow Pillow's `ImageEnhance.Sharpness` and `ImageOps.equalize`, as torchvision does; the test checks
//! them against Pillow's output (`reference/pil_randaugment.py`).

use super::colour_jitter::{brightness, contrast, saturation};
use super::warp::warp;
use rand::Rng;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandAugment {
    #[serde(default = "d_n")]
    pub n: usize,
    #[serde(default = "d_m")]
    pub magnitude: f64,
}

fn d_n() -> usize {
    2
}
fn d_m() -> f64 {
    9.0
}

pub const OPS: [&str; 14] = [
    "identity",
    "shear_x",
    "shear_y",
    "translate_x",
    "translate_y",
    "rotate",
    "brightness",
    "saturation",
    "contrast",
    "sharpness",
    "posterize",
    "solarize",
    "autocontrast",
    "equalize",
];

impl RandAugment {
    pub fn validate(&self) -> Result<(), String> {
        (self.n <= 10 && (0.0..=30.0).contains(&self.magnitude))
            .then_some(())
            .ok_or_else(|| format!("augment.randaugment = {self:?}: n in 0..=10, magnitude in [0, 30]"))
    }

    pub fn apply(&self, img: &mut [u8], shape: [usize; 3], rng: &mut impl Rng) {
        for _ in 0..self.n {
            let op = OPS[rng.random_range(0..OPS.len())];
            let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
            apply_op(img, shape, op, self.magnitude / 30.0, sign);
        }
    }
}

/// One operation at strength `f` in [0, 1] (of its range) and `sign`.
pub fn apply_op(img: &mut [u8], [c, h, w]: [usize; 3], op: &str, f: f64, sign: f64) {
    let shape = [c, h, w];
    let (cx, cy) = ((w as f32 - 1.0) / 2.0, (h as f32 - 1.0) / 2.0);
    let s = (sign * f) as f32;
    match op {
        "shear_x" => warp(img, shape, move |x, y| (x - 0.3 * s * (y - cy), y)),
        "shear_y" => warp(img, shape, move |x, y| (x, y - 0.3 * s * (x - cx))),
        "translate_x" => warp(img, shape, move |x, y| (x - 0.45 * s * w as f32, y)),
        "translate_y" => warp(img, shape, move |x, y| (x, y - 0.45 * s * h as f32)),
        "rotate" => {
            let p = super::affine::Params { tx: 0.0, ty: 0.0, degrees: 30.0 * sign * f, scale: 1.0, shear: 0.0 };
            super::affine::apply(img, shape, p)
        }
        "brightness" => brightness(img, 1.0 + 0.9 * sign * f),
        "saturation" => saturation(img, shape, 1.0 + 0.9 * sign * f),
        "contrast" => contrast(img, shape, 1.0 + 0.9 * sign * f),
        "sharpness" => sharpness(img, shape, 1.0 + 0.9 * sign * f),
        "posterize" => {
            let bits = 8 - (4.0 * f).round() as u32;
            let mask = !((1u16 << (8 - bits)) - 1) as u8;
            img.iter_mut().for_each(|v| *v &= mask);
        }
        "solarize" => {
            let t = (255.0 * (1.0 - f)).round() as u16;
            img.iter_mut().for_each(|v| *v = if *v as u16 >= t { 255 - *v } else { *v });
        }
        "autocontrast" => {
            for plane in img.chunks_mut(h * w) {
                let (lo, hi) = plane.iter().fold((255u8, 0u8), |(a, b), &v| (a.min(v), b.max(v)));
                if hi > lo {
                    let span = (hi - lo) as u32;
                    plane.iter_mut().for_each(|v| *v = (((*v - lo) as u32 * 255 + span / 2) / span) as u8);
                }
            }
        }
        "equalize" => img.chunks_mut(h * w).for_each(equalize),
        _ => {}
    }
}

/// Blends each plane with its smoothed self (3x3 kernel, centre weight 5 of 13; the border stays as it is):
/// `factor` 0 is the blur, 1 the image, above 1 sharpens.
pub fn sharpness(img: &mut [u8], [_, h, w]: [usize; 3], factor: f64) {
    if h < 3 || w < 3 {
        return;
    }
    let f = factor as f32;
    for plane in img.chunks_mut(h * w) {
        let src = plane.to_vec();
        for y in 1..h - 1 {
            for x in 1..w - 1 {
                let at = |dy: usize, dx: usize| src[(y + dy - 1) * w + x + dx - 1] as f32;
                let mut sum = 4.0 * at(1, 1);
                for (dy, dx) in (0..3).flat_map(|dy| [(dy, 0), (dy, 1), (dy, 2)]) {
                    sum += at(dy, dx);
                }
                let blur = (sum / 13.0).round();
                // Pillow's blend truncates (its filter rounds): matched, so the reference agrees exactly.
                plane[y * w + x] = (blur + f * (at(1, 1) - blur)).clamp(0.0, 255.0) as u8;
            }
        }
    }
}

/// Histogram equalization of one plane, Pillow's way: a lookup table from the cumulative histogram, in steps of
/// (pixels outside the top occupied bin) / 255; a plane with one level stays as it is.
pub fn equalize(plane: &mut [u8]) {
    let mut hist = [0usize; 256];
    plane.iter().for_each(|&v| hist[v as usize] += 1);
    let top = hist.iter().rev().find(|&&n| n > 0).copied().unwrap_or(0);
    let step = (plane.len() - top) / 255;
    if step == 0 {
        return;
    }
    let mut lut = [0u8; 256];
    let mut n = step / 2;
    for (level, count) in hist.iter().enumerate() {
        lut[level] = (n / step).min(255) as u8;
        n += count;
    }
    plane.iter_mut().for_each(|v| *v = lut[*v as usize]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_magnitude_zero_every_geometric_and_colour_operation_is_the_identity() {
        let img: Vec<u8> = (0..3 * 6 * 6).map(|v| (v * 11 % 256) as u8).collect();
        for op in OPS.iter().filter(|o| !["posterize", "solarize", "autocontrast", "equalize"].contains(o)) {
            let mut x = img.clone();
            apply_op(&mut x, [3, 6, 6], op, 0.0, 1.0);
            assert_eq!(x, img, "{op}");
        }
        let mut x = vec![0u8, 100, 200, 255];
        apply_op(&mut x, [1, 2, 2], "solarize", 0.5, 1.0);
        assert_eq!(x, vec![0, 100, 55, 0], "inverted from 128 up");
        let mut x = vec![50u8, 100, 150];
        apply_op(&mut x, [1, 1, 3], "autocontrast", 1.0, 1.0);
        assert_eq!(x, vec![0, 128, 255]);
        let mut x = vec![0xFFu8];
        apply_op(&mut x, [1, 1, 1], "posterize", 1.0, 1.0);
        assert_eq!(x, vec![0xF0]);
    }

    #[test]
    fn sharpness_and_equalize_match_pillow() {
        let r: serde_json::Value =
            serde_json::from_str(include_str!("../../reference/pil_randaugment.json")).expect("valid reference JSON");
        let bytes =
            |k: &str| -> Vec<u8> { r[k].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u8).collect() };
        let shape = [3, 7, 9];
        for (key, want) in [("image", "equalize"), ("low", "equalize_low")] {
            let mut x = bytes(key);
            x.chunks_mut(7 * 9).for_each(equalize);
            assert_eq!(x, bytes(want), "{want}");
        }
        for f in [0.1, 0.55, 1.0, 1.9] {
            let mut x = bytes("image");
            sharpness(&mut x, shape, f);
            let want = bytes(&format!("sharpness_{f:?}"));
            assert_eq!(x, want, "sharpness {f}");
        }
    }
}
