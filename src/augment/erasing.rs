//! Random erasing (Zhong et al. 2017) / cutout (DeVries and Taylor 2017): with probability `p`, a rectangle
//! covering a random fraction `area` of the image, with aspect ratio from `ratio` (log-uniform), is filled with
//! noise (random erasing) or mid-grey (cutout, `noise = false`).

use rand::Rng;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Erasing {
    #[serde(default = "d_p")]
    pub p: f64,
    #[serde(default = "d_area")]
    pub area: [f64; 2],
    #[serde(default = "d_ratio")]
    pub ratio: [f64; 2],
    #[serde(default = "d_noise")]
    pub noise: bool,
}

fn d_p() -> f64 {
    0.5
}
fn d_area() -> [f64; 2] {
    [0.02, 0.33]
}
fn d_ratio() -> [f64; 2] {
    [0.3, 3.3]
}
fn d_noise() -> bool {
    true
}

impl Erasing {
    pub fn validate(&self) -> Result<(), String> {
        let ok = (0.0..=1.0).contains(&self.p)
            && 0.0 < self.area[0]
            && self.area[0] <= self.area[1]
            && self.area[1] <= 1.0
            && 0.0 < self.ratio[0]
            && self.ratio[0] <= self.ratio[1];
        ok.then_some(()).ok_or_else(|| format!("augment.erasing = {self:?}: p in [0, 1], 0 < area <= 1, 0 < ratio"))
    }

    pub fn apply(&self, img: &mut [u8], [c, h, w]: [usize; 3], rng: &mut impl Rng) {
        if !rng.random_bool(self.p) {
            return;
        }
        for _ in 0..10 {
            let a = (h * w) as f64 * rng.random_range(self.area[0]..=self.area[1]);
            let r = rng.random_range(self.ratio[0].ln()..=self.ratio[1].ln()).exp();
            let (ew, eh) = ((a * r).sqrt().round() as usize, (a / r).sqrt().round() as usize);
            if ew == 0 || eh == 0 || ew > w || eh > h {
                continue;
            }
            let (x0, y0) = (rng.random_range(0..=w - ew), rng.random_range(0..=h - eh));
            for ch in 0..c {
                for y in y0..y0 + eh {
                    for v in &mut img[(ch * h + y) * w + x0..][..ew] {
                        *v = if self.noise { rng.random() } else { 128 };
                    }
                }
            }
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::rng;

    #[test]
    fn one_rectangle_of_the_right_size_is_filled() {
        let e = Erasing { p: 1.0, area: [0.25, 0.25], ratio: [1.0, 1.0], noise: false };
        let mut img = vec![7u8; 2 * 8 * 8];
        e.apply(&mut img, [2, 8, 8], &mut rng(2));
        // A 4x4 square of grey in each channel, in the same place.
        assert_eq!(img.iter().filter(|&&v| v == 128).count(), 2 * 16);
        assert_eq!(
            img[..64].iter().map(|&v| v == 128).collect::<Vec<_>>(),
            img[64..].iter().map(|&v| v == 128).collect::<Vec<_>>()
        );
        let mut kept = vec![7u8; 64];
        Erasing { p: 0.0, ..e }.apply(&mut kept, [1, 8, 8], &mut rng(2));
        assert_eq!(kept, vec![7u8; 64], "p = 0 is the identity");
    }
}
