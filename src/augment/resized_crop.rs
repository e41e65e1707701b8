//! Crops at a random scale, resized back to the input size.
//! - Random-resized crop (Inception / torchvision's `RandomResizedCrop`): a crop covering a random fraction of the
//!   image's area (`scale`) with a random aspect ratio (`ratio`, log-uniform), stretched to the full size.
//! - Scale jitter (the ResNet paper's): the image's short side resized to a random `L` in `[lo, hi]`, then a random
//!   crop of the input size. convkit's images are stored at the model's input size, which stands for the paper's
//!   224-pixel crop: `L = 256..480` zooms by `L / 224`.

use super::warp::warp;
use rand::Rng;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResizedCrop {
    /// Fraction of the image's area the crop covers, drawn uniformly.
    #[serde(default = "d_scale")]
    pub scale: [f64; 2],
    /// Width / height of the crop, drawn log-uniformly.
    #[serde(default = "d_ratio")]
    pub ratio: [f64; 2],
}

fn d_scale() -> [f64; 2] {
    [0.08, 1.0]
}
fn d_ratio() -> [f64; 2] {
    [3.0 / 4.0, 4.0 / 3.0]
}

impl ResizedCrop {
    pub fn validate(&self) -> Result<(), String> {
        let [s0, s1] = self.scale;
        let [r0, r1] = self.ratio;
        if !(s0 > 0.0 && s0 <= s1 && s1 <= 1.0) {
            return Err(format!("augment.resized_crop.scale = {:?}: needs 0 < lo <= hi <= 1", self.scale));
        }
        if !(r0 > 0.0 && r0 <= r1 && r1.is_finite()) {
            return Err(format!("augment.resized_crop.ratio = {:?}: needs 0 < lo <= hi", self.ratio));
        }
        Ok(())
    }

    /// The crop `(x0, y0, width, height)` in pixels: ten tries at a crop that fits, then the centre crop at the
    /// nearest allowed ratio, as torchvision does.
    pub fn window(&self, h: usize, w: usize, rng: &mut impl Rng) -> (f64, f64, f64, f64) {
        let area = (h * w) as f64;
        let (lr0, lr1) = (self.ratio[0].ln(), self.ratio[1].ln());
        for _ in 0..10 {
            let a = area * rng.random_range(self.scale[0]..=self.scale[1]);
            let r = rng.random_range(lr0..=lr1).exp();
            let (cw, ch) = ((a * r).sqrt(), (a / r).sqrt());
            if cw <= w as f64 && ch <= h as f64 {
                let x0 = rng.random_range(0.0..=w as f64 - cw);
                let y0 = rng.random_range(0.0..=h as f64 - ch);
                return (x0, y0, cw, ch);
            }
        }
        let r = (w as f64 / h as f64).clamp(self.ratio[0], self.ratio[1]);
        let (cw, ch) = if r * h as f64 <= w as f64 { (r * h as f64, h as f64) } else { (w as f64, w as f64 / r) };
        ((w as f64 - cw) / 2.0, (h as f64 - ch) / 2.0, cw, ch)
    }

    pub fn apply(&self, img: &mut [u8], shape: [usize; 3], rng: &mut impl Rng) {
        let (x0, y0, cw, ch) = self.window(shape[1], shape[2], rng);
        resize_window(img, shape, (x0, y0, cw, ch));
    }
}

/// Stretches the window `(x0, y0, width, height)` (pixel edges) over the whole image.
pub fn resize_window(img: &mut [u8], [c, h, w]: [usize; 3], (x0, y0, cw, ch): (f64, f64, f64, f64)) {
    let (sx, sy) = ((cw / w as f64) as f32, (ch / h as f64) as f32);
    let (x0, y0) = (x0 as f32, y0 as f32);
    warp(img, [c, h, w], move |x, y| (x0 + (x + 0.5) * sx - 0.5, y0 + (y + 0.5) * sy - 0.5));
}

/// The ResNet paper's scale augmentation: short side to `L`, a random crop of the input size.
pub fn scale_jitter(img: &mut [u8], [c, h, w]: [usize; 3], [lo, hi]: [usize; 2], rng: &mut impl Rng) {
    let zoom = rng.random_range(lo..=hi) as f64 / 224.0;
    let (cw, ch) = (w as f64 / zoom, h as f64 / zoom);
    let x0 = rng.random_range(0.0..=(w as f64 - cw).max(0.0));
    let y0 = rng.random_range(0.0..=(h as f64 - ch).max(0.0));
    resize_window(img, [c, h, w], (x0, y0, cw, ch));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::rng;

    #[test]
    fn windows_respect_scale_and_ratio_and_the_full_window_is_the_identity() {
        let rc = ResizedCrop { scale: [0.25, 0.5], ratio: [0.5, 2.0] };
        let mut r = rng(1);
        for _ in 0..200 {
            let (x0, y0, cw, ch) = rc.window(64, 64, &mut r);
            let frac = cw * ch / 4096.0;
            assert!((0.25 - 1e-9..=0.5 + 1e-9).contains(&frac), "{frac}");
            assert!((0.5 - 1e-9..=2.0 + 1e-9).contains(&(cw / ch)));
            assert!(x0 >= 0.0 && y0 >= 0.0 && x0 + cw <= 64.0 + 1e-9 && y0 + ch <= 64.0 + 1e-9);
        }
        let img: Vec<u8> = (0..3 * 8 * 8).map(|v| (v * 7 % 256) as u8).collect();
        let mut same = img.clone();
        ResizedCrop { scale: [1.0, 1.0], ratio: [1.0, 1.0] }.apply(&mut same, [3, 8, 8], &mut r);
        assert_eq!(same, img);
    }

    #[test]
    fn a_half_window_doubles_the_image() {
        // Left half of a 1x1x4 ramp stretched to 4 pixels: output x reads source (x + 0.5) / 2 - 0.5.
        let mut img = vec![0u8, 40, 80, 120];
        resize_window(&mut img, [1, 1, 4], (0.0, 0.0, 2.0, 1.0));
        assert_eq!(img, vec![0, 10, 30, 50]);
    }
}
