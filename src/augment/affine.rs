//! Random affine transform about the image's centre: translation (a fraction of the size), rotation and shear
//! (degrees), and scale, each drawn uniformly from its range; black where the source is off the image.

use super::warp::warp;
use rand::Rng;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Affine {
    /// Largest shift, as a fraction of width (x) and height (y).
    #[serde(default)]
    pub translate: f64,
    /// Largest rotation, degrees either way.
    #[serde(default)]
    pub rotate: f64,
    /// Zoom drawn from `[lo, hi]`.
    #[serde(default = "d_scale")]
    pub scale: [f64; 2],
    /// Largest horizontal shear, degrees either way.
    #[serde(default)]
    pub shear: f64,
}

fn d_scale() -> [f64; 2] {
    [1.0, 1.0]
}

/// One drawn transform.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Params {
    pub tx: f64,
    pub ty: f64,
    pub degrees: f64,
    pub scale: f64,
    pub shear: f64,
}

impl Affine {
    pub fn validate(&self) -> Result<(), String> {
        let [s0, s1] = self.scale;
        if !(s0 > 0.0 && s0 <= s1 && s1.is_finite()) {
            return Err(format!("augment.affine.scale = {:?}: needs 0 < lo <= hi", self.scale));
        }
        if !(0.0..=1.0).contains(&self.translate) || !(0.0..90.0).contains(&self.shear) || !self.rotate.is_finite() {
            return Err("augment.affine: translate must lie in [0, 1], shear in [0, 90) degrees".into());
        }
        Ok(())
    }

    pub fn draw(&self, [_, h, w]: [usize; 3], rng: &mut impl Rng) -> Params {
        let mut sym = |m: f64| if m > 0.0 { rng.random_range(-m..=m) } else { 0.0 };
        let (tx, ty) = (sym(self.translate) * w as f64, sym(self.translate) * h as f64);
        let (degrees, shear) = (sym(self.rotate), sym(self.shear));
        let scale =
            if self.scale[0] < self.scale[1] { rng.random_range(self.scale[0]..=self.scale[1]) } else { self.scale[0] };
        Params { tx, ty, degrees, scale, shear }
    }

    pub fn apply(&self, img: &mut [u8], shape: [usize; 3], rng: &mut impl Rng) {
        let p = self.draw(shape, rng);
        apply(img, shape, p);
    }
}

/// Output = T(centre + t) R(degrees) Shear(shear) S(scale) T(-centre) input; each output pixel reads the inverse.
pub fn apply(img: &mut [u8], [c, h, w]: [usize; 3], p: Params) {
    let (cx, cy) = ((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0);
    let (sin, cos) = p.degrees.to_radians().sin_cos();
    let k = p.shear.to_radians().tan();
    // Forward linear part M = R * [[1, k], [0, 1]] * s.
    let (a, b, cc, d) = (cos * p.scale, (cos * k - sin) * p.scale, sin * p.scale, (sin * k + cos) * p.scale);
    let det = a * d - b * cc;
    let (ia, ib, ic, id) = (d / det, -b / det, -cc / det, a / det);
    warp(img, [c, h, w], move |x, y| {
        let (u, v) = (x as f64 - cx - p.tx, y as f64 - cy - p.ty);
        ((ia * u + ib * v + cx) as f32, (ic * u + id * v + cy) as f32)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp() -> Vec<u8> {
        (0..3 * 9 * 9).map(|v| (v * 5 % 251) as u8).collect()
    }

    #[test]
    fn zero_settings_are_the_identity_and_whole_pixel_shifts_move_pixels() {
        let img = ramp();
        let mut same = img.clone();
        apply(&mut same, [3, 9, 9], Params { tx: 0.0, ty: 0.0, degrees: 0.0, scale: 1.0, shear: 0.0 });
        assert_eq!(same, img);
        let mut moved = img.clone();
        apply(&mut moved, [3, 9, 9], Params { tx: 2.0, ty: 1.0, degrees: 0.0, scale: 1.0, shear: 0.0 });
        assert_eq!(moved[9 + 2], img[0], "(row 1, column 2) holds the old (0, 0)");
        // A quarter turn about the centre: output (y, x) = input (x, 8 - y) for one sense of rotation.
        let mut turned = img.clone();
        apply(&mut turned, [3, 9, 9], Params { tx: 0.0, ty: 0.0, degrees: 90.0, scale: 1.0, shear: 0.0 });
        let quarter: Vec<u8> =
            (0..9).flat_map(|y| (0..9).map(move |x| (y, x))).map(|(y, x)| img[x * 9 + (8 - y)]).collect();
        let other: Vec<u8> =
            (0..9).flat_map(|y| (0..9).map(move |x| (y, x))).map(|(y, x)| img[(8 - x) * 9 + y]).collect();
        assert!(turned[..81] == quarter[..] || turned[..81] == other[..]);
    }
}
