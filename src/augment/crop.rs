//! Random crop after zero padding (the CIFAR augmentation): the image shifts by up to `pad` pixels each way, the
//! uncovered border is black. Integer shifts, so pixels move without being resampled.

use rand::Rng;

pub fn pad_crop(img: &mut [u8], [c, h, w]: [usize; 3], pad: usize, rng: &mut impl Rng) {
    let p = pad as i64;
    let (dy, dx) = (rng.random_range(-p..=p) as isize, rng.random_range(-p..=p) as isize);
    shift(img, [c, h, w], dy, dx);
}

/// Moves the content so that output `(y, x)` reads input `(y + dy, x + dx)`, black outside.
pub fn shift(img: &mut [u8], [c, h, w]: [usize; 3], dy: isize, dx: isize) {
    let src = img.to_vec();
    for ch in 0..c {
        for y in 0..h {
            let sy = y as isize + dy;
            let row = &mut img[(ch * h + y) * w..][..w];
            if sy < 0 || sy >= h as isize {
                row.fill(0);
                continue;
            }
            let from = &src[(ch * h + sy as usize) * w..][..w];
            for (x, o) in row.iter_mut().enumerate() {
                let sx = x as isize + dx;
                *o = if sx < 0 || sx >= w as isize { 0 } else { from[sx as usize] };
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
            pad_crop(&mut out, [1, 4, 4], 1, &mut r);
            // Every non-zero pixel is one of the originals; zeros only come from the padding.
            assert!(out.iter().all(|&v| v == 0 || img.contains(&v)));
            seen_shift |= out.contains(&0);
        }
        assert!(seen_shift);
        let mut out = img.clone();
        pad_crop(&mut out, [1, 4, 4], 0, &mut r);
        assert_eq!(out, img, "no padding is the identity");
    }
}
