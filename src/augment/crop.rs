//! Random crop after padding (the CIFAR augmentation): the image shifts by up to `pad` pixels each way. The
//! uncovered border is black (zero padding, the ResNet paper's) or the image mirrored at its edge (reflect
//! padding, airbench's, which shows no artificial edge). Integer shifts, so pixels move without being resampled.

use rand::Rng;
use serde::{Deserialize, Serialize};

/// What fills the border a shift uncovers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Border {
    #[default]
    Zero,
    /// PyTorch's `reflect`: `-1` reads `1`, `n` reads `n - 2` (the edge pixel is not repeated).
    Reflect,
}

pub fn pad_crop(img: &mut [u8], shape: [usize; 3], pad: usize, border: Border, rng: &mut impl Rng) {
    let p = pad as i64;
    let (dy, dx) = (rng.random_range(-p..=p) as isize, rng.random_range(-p..=p) as isize);
    shift_with(img, shape, dy, dx, border);
}

/// Moves the content so that output `(y, x)` reads input `(y + dy, x + dx)`, black outside.
pub fn shift(img: &mut [u8], shape: [usize; 3], dy: isize, dx: isize) {
    shift_with(img, shape, dy, dx, Border::Zero)
}

/// The source index for `i` in `0..n`, or None for a black pixel.
fn source(i: isize, n: usize, border: Border) -> Option<usize> {
    let n = n as isize;
    match border {
        _ if (0..n).contains(&i) => Some(i as usize),
        Border::Zero => None,
        // Shifts stay below the image size, so one reflection is enough.
        Border::Reflect => Some((if i < 0 { -i } else { 2 * (n - 1) - i }).clamp(0, n - 1) as usize),
    }
}

/// `shift` with the given border.
pub fn shift_with(img: &mut [u8], [c, h, w]: [usize; 3], dy: isize, dx: isize, border: Border) {
    let src = img.to_vec();
    for ch in 0..c {
        for y in 0..h {
            let row = &mut img[(ch * h + y) * w..][..w];
            let Some(sy) = source(y as isize + dy, h, border) else {
                row.fill(0);
                continue;
            };
            let from = &src[(ch * h + sy) * w..][..w];
            for (x, o) in row.iter_mut().enumerate() {
                *o = source(x as isize + dx, w, border).map_or(0, |sx| from[sx]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::rng;

    #[test]
    fn crops_move_pixels_not_values() {
        let img: Vec<u8> = (1..=16).collect();
        let mut r = rng(3);
        let mut seen_shift = false;
        for _ in 0..50 {
            let mut out = img.clone();
            pad_crop(&mut out, [1, 4, 4], 1, Border::Zero, &mut r);
            // Every non-zero pixel is one of the originals; zeros only come from the padding.
            assert!(out.iter().all(|&v| v == 0 || img.contains(&v)));
            seen_shift |= out.contains(&0);
        }
        assert!(seen_shift);
        let mut out = img.clone();
        pad_crop(&mut out, [1, 4, 4], 0, Border::Zero, &mut r);
        assert_eq!(out, img, "no padding is the identity");
    }

    #[test]
    fn reflect_mirrors_at_the_edge_as_pytorch_pads() {
        // One row 1 2 3 4 5: F.pad(x, (2, 2), 'reflect') is 3 2 1 2 3 4 5 4 3.
        let img: Vec<u8> = vec![1, 2, 3, 4, 5];
        let mut left = img.clone();
        shift_with(&mut left, [1, 1, 5], 0, -2, Border::Reflect);
        assert_eq!(left, [3, 2, 1, 2, 3]);
        let mut right = img.clone();
        shift_with(&mut right, [1, 1, 5], 0, 2, Border::Reflect);
        assert_eq!(right, [3, 4, 5, 4, 3]);
        let col: Vec<u8> = vec![1, 2, 3];
        let mut down = col.clone();
        shift_with(&mut down, [1, 3, 1], 1, 0, Border::Reflect);
        assert_eq!(down, [2, 3, 2]);
    }
}
