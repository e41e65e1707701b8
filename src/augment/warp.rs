//! The geometric transforms' common step: each output pixel reads its pre-image in the source, bilinearly
//! (imageproc's `warp_into_with`, one channel plane at a time). The source is padded by one replicated pixel so
//! that the last row and column interpolate instead of falling outside; beyond that the fill is black.

use image::{GrayImage, Luma};
use imageproc::geometric_transformations::{warp_into_with, Interpolation};

/// Warps every plane of a `C x H x W` byte image: `pre(x, y)` is the source point (pixel centres at integers)
/// whose value lands on output pixel `(x, y)`.
pub fn warp(img: &mut [u8], [c, h, w]: [usize; 3], pre: impl Fn(f32, f32) -> (f32, f32) + Send + Sync) {
    for plane in img.chunks_mut(h * w).take(c) {
        let padded = GrayImage::from_fn(w as u32 + 2, h as u32 + 2, |x, y| {
            let sx = (x as usize).saturating_sub(1).min(w - 1);
            let sy = (y as usize).saturating_sub(1).min(h - 1);
            Luma([plane[sy * w + sx]])
        });
        let mut out = GrayImage::new(w as u32, h as u32);
        let map = |x: f32, y: f32| {
            let (sx, sy) = pre(x, y);
            (sx + 1.0, sy + 1.0)
        };
        warp_into_with(&padded, map, Interpolation::Bilinear, Luma([0]), &mut out);
        plane.copy_from_slice(out.as_raw());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_map_keeps_every_pixel_and_a_shift_moves_them() {
        let img: Vec<u8> = (0..2 * 3 * 4).map(|v| (v * 10) as u8).collect();
        let mut same = img.clone();
        warp(&mut same, [2, 3, 4], |x, y| (x, y));
        assert_eq!(same, img, "edges included");
        let mut shifted = img.clone();
        warp(&mut shifted, [2, 3, 4], |x, y| (x - 1.0, y));
        // Column 0 reads x = -1: the replicated edge; column 1 reads the old column 0.
        assert_eq!(&shifted[..4], &[0, 0, 10, 20]);
        let mut gone = img.clone();
        warp(&mut gone, [2, 3, 4], |x, y| (x + 10.0, y));
        assert!(gone.iter().all(|&v| v == 0), "outside the image: black");
    }
}
