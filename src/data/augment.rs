//! The two standard CIFAR augmentations: random crop after zero padding, and random horizontal flip.
//! (The full set, colour jitter, PCA colour, scale, affine, is its own piece of work.)

use rand::Rng;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Augment {
    /// Zero padding on each side before a random crop back to the original size; 0 disables. CIFAR uses 4.
    #[serde(default)]
    pub crop_pad: usize,
    /// Mirror left-right with probability 1/2.
    #[serde(default)]
    pub hflip: bool,
}

impl Augment {
    pub fn is_identity(&self) -> bool {
        self.crop_pad == 0 && !self.hflip
    }

    /// Augments one `C x H x W` byte image into `out`.
    pub fn apply(&self, img: &[u8], shape: [usize; 3], out: &mut [u8], rng: &mut impl Rng) {
        let [c, h, w] = shape;
        let p = self.crop_pad as i64;
        let (dy, dx) =
            if p > 0 { (rng.random_range(-p..=p) as isize, rng.random_range(-p..=p) as isize) } else { (0, 0) };
        let flip = self.hflip && rng.random::<bool>();
        for ch in 0..c {
            for y in 0..h {
                let sy = y as isize + dy;
                let row = &mut out[(ch * h + y) * w..][..w];
                if sy < 0 || sy >= h as isize {
                    row.fill(0);
                    continue;
                }
                let src = &img[(ch * h + sy as usize) * w..][..w];
                for (x, o) in row.iter_mut().enumerate() {
                    let xx = if flip { w - 1 - x } else { x } as isize + dx;
                    *o = if xx < 0 || xx >= w as isize { 0 } else { src[xx as usize] };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::rng;

    #[test]
    fn crop_and_flip_move_pixels_not_values() {
        let img: Vec<u8> = (1..=16).collect();
        let aug = Augment { crop_pad: 1, hflip: true };
        let mut r = rng(3);
        let mut seen_shift = false;
        for _ in 0..50 {
            let mut out = vec![0u8; 16];
            aug.apply(&img, [1, 4, 4], &mut out, &mut r);
            // Every non-zero pixel is one of the originals; zeros only come from the padding.
            assert!(out.iter().all(|&v| v == 0 || img.contains(&v)));
            seen_shift |= out.contains(&0);
        }
        assert!(seen_shift);
        let mut out = vec![0u8; 16];
        Augment::default().apply(&img, [1, 4, 4], &mut out, &mut r);
        assert_eq!(out, img, "no augmentation is the identity");
    }
}
