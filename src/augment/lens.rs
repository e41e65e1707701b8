//! Lens distortion, radial: output pixel at normalised radius `r` (1 at the middle of an edge) reads the source
//! at `r (1 + k r^2)`. `k > 0` pulls the edges in (barrel), `k < 0` pushes them out (pincushion); `k` is drawn
//! uniformly from the range.

use super::warp::warp;
use rand::Rng;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lens {
    pub k: [f64; 2],
}

impl Lens {
    pub fn validate(&self) -> Result<(), String> {
        let [a, b] = self.k;
        if !(a <= b && a > -1.0 && b < 1.0) {
            return Err(format!("augment.lens.k = {:?}: needs -1 < lo <= hi < 1", self.k));
        }
        Ok(())
    }

    pub fn apply(&self, img: &mut [u8], shape: [usize; 3], rng: &mut impl Rng) {
        let k = if self.k[0] < self.k[1] { rng.random_range(self.k[0]..=self.k[1]) } else { self.k[0] };
        apply(img, shape, k);
    }
}

pub fn apply(img: &mut [u8], [c, h, w]: [usize; 3], k: f64) {
    if k == 0.0 {
        return;
    }
    let (cx, cy) = ((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0);
    let norm = cx.max(cy).max(0.5);
    warp(img, [c, h, w], move |x, y| {
        let (u, v) = ((x as f64 - cx) / norm, (y as f64 - cy) / norm);
        let f = 1.0 + k * (u * u + v * v);
        ((cx + u * f * norm) as f32, (cy + v * f * norm) as f32)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_centre_stays_and_barrel_pulls_the_edges_in() {
        // A bright square border around a dark 21x21 image: barrel distortion moves the border inward on the axes.
        let n = 21;
        let img: Vec<u8> = (0..n * n)
            .map(|i| if i / n == 0 || i % n == 0 || i / n == n - 1 || i % n == n - 1 { 200 } else { 50 })
            .collect();
        let mut barrel = img.clone();
        apply(&mut barrel, [1, n, n], 0.3);
        assert_eq!(barrel[10 * n + 10], 50, "the centre does not move");
        assert_eq!(barrel[10 * n], 0, "the left edge's middle reads beyond the image: black");
        let mut pin = img.clone();
        apply(&mut pin, [1, n, n], -0.3);
        // Pincushion: the corners read from well inside the image (dark).
        assert_eq!(pin[0], 50);
        let mut same = img.clone();
        apply(&mut same, [1, n, n], 0.0);
        assert_eq!(same, img);
    }
}
