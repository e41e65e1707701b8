//! im2col / col2im for one image: the lowering that turns a convolution into one GEMM.
//!
//! `cols` is `[C*kh*kw, Ho*Wo]`, row `(c*kh + i)*kw + j` holding input pixel `(c, oh*s - p + i, ow*s - p + j)`
//! for every output position (zero outside the image).

use crate::tensor::Float;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Geometry {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: usize,
}

impl Geometry {
    pub fn out_hw(&self) -> (usize, usize) {
        (
            (self.h + 2 * self.pad - self.kh) / self.stride + 1,
            (self.w + 2 * self.pad - self.kw) / self.stride + 1,
        )
    }
    /// A 1x1, stride-1, unpadded conv needs no lowering: the image already is the column matrix.
    pub fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == 1 && self.pad == 0
    }
    /// Output columns `[lo, hi)` whose input column `ow*s - p + j` lies inside the image.
    fn valid_ow(&self, j: usize, wo: usize) -> (usize, usize) {
        let (s, p) = (self.stride, self.pad);
        // ow*s + j >= p  and  ow*s + j < w + p
        let lo = if j >= p { 0 } else { (p - j).div_ceil(s) };
        let hi = if self.w + p > j {
            ((self.w + p - j).div_ceil(s)).min(wo)
        } else {
            0
        };
        (lo.min(hi), hi)
    }
}

pub fn im2col<T: Float>(g: &Geometry, img: &[T], cols: &mut [T]) {
    let (ho, wo) = g.out_hw();
    let n = ho * wo;
    let (s, p) = (g.stride, g.pad);
    let zero = T::zero();
    for c in 0..g.c {
        let plane = &img[c * g.h * g.w..(c + 1) * g.h * g.w];
        for i in 0..g.kh {
            // Output rows whose input row lies inside the image: oh*s + i - p in [0, h).
            let oh_lo = (if i >= p { 0 } else { (p - i).div_ceil(s) }).min(ho);
            let oh_hi = (if g.h + p > i {
                (g.h + p - i).div_ceil(s).min(ho)
            } else {
                0
            })
            .max(oh_lo);
            for j in 0..g.kw {
                let row = &mut cols[((c * g.kh + i) * g.kw + j) * n..][..n];
                let (lo, hi) = g.valid_ow(j, wo);
                // Rows of the output that fall in the top and bottom padding are all zeros.
                for v in &mut row[..oh_lo * wo] {
                    *v = zero;
                }
                for v in &mut row[oh_hi * wo..] {
                    *v = zero;
                }
                if s == 1 && wo == g.w {
                    // "Same" stride-1 conv: this tap's row is the plane shifted by a constant offset. Copy it in
                    // one go, then zero the border columns that wrapped around from the neighbouring image row.
                    let delta = (i as isize - p as isize) * g.w as isize + j as isize - p as isize;
                    let (start, end) = ((oh_lo * wo) as isize, (oh_hi * wo) as isize);
                    let lo_clip = (-(start + delta)).max(0);
                    let hi_clip = (end + delta - plane.len() as isize).max(0);
                    let (a, b) = (start + lo_clip, end - hi_clip);
                    if a < b {
                        let (a, b) = (a as usize, b as usize);
                        row[a..b].copy_from_slice(
                            &plane[(a as isize + delta) as usize..(b as isize + delta) as usize],
                        );
                    }
                    for oh in oh_lo..oh_hi {
                        let out = &mut row[oh * wo..(oh + 1) * wo];
                        for v in &mut out[..lo] {
                            *v = zero;
                        }
                        for v in &mut out[hi..] {
                            *v = zero;
                        }
                    }
                    continue;
                }
                for oh in oh_lo..oh_hi {
                    let out = &mut row[oh * wo..(oh + 1) * wo];
                    let src = &plane[(oh * s + i - p) * g.w..][..g.w];
                    // Short rows (8 to 32 values) in hot loops: plain loops, not memset/memcpy calls.
                    for v in &mut out[..lo] {
                        *v = zero;
                    }
                    for v in &mut out[hi..] {
                        *v = zero;
                    }
                    if s == 1 {
                        let start = lo + j - p;
                        for (o, &x) in out[lo..hi].iter_mut().zip(&src[start..start + (hi - lo)]) {
                            *o = x;
                        }
                    } else {
                        for (ow, o) in out[lo..hi].iter_mut().enumerate() {
                            *o = src[(lo + ow) * s + j - p];
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of `im2col`: adds every column entry back onto the pixel it came from. `img` is overwritten.
pub fn col2im<T: Float>(g: &Geometry, cols: &[T], img: &mut [T]) {
    let (ho, wo) = g.out_hw();
    let n = ho * wo;
    let (s, p) = (g.stride, g.pad);
    img[..g.c * g.h * g.w].fill(T::zero());
    for c in 0..g.c {
        let plane = &mut img[c * g.h * g.w..(c + 1) * g.h * g.w];
        for i in 0..g.kh {
            let oh_lo = (if i >= p { 0 } else { (p - i).div_ceil(s) }).min(ho);
            let oh_hi = (if g.h + p > i {
                (g.h + p - i).div_ceil(s).min(ho)
            } else {
                0
            })
            .max(oh_lo);
            for j in 0..g.kw {
                let row = &cols[((c * g.kh + i) * g.kw + j) * n..][..n];
                let (lo, hi) = g.valid_ow(j, wo);
                for oh in oh_lo..oh_hi {
                    let dst = &mut plane[(oh * s + i - p) * g.w..][..g.w];
                    let src = &row[oh * wo..(oh + 1) * wo];
                    if s == 1 {
                        let start = lo + j - p;
                        for (d, &v) in dst[start..start + (hi - lo)].iter_mut().zip(&src[lo..hi]) {
                            *d += v;
                        }
                    } else {
                        for ow in lo..hi {
                            dst[ow * s + j - p] += src[ow];
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// im2col and col2im are adjoint: <im2col(x), y> == <x, col2im(y)> for all x, y.
    #[test]
    fn col2im_is_adjoint_of_im2col() {
        for &(h, w, k, s, p) in &[
            (5, 6, 3, 1, 1),
            (6, 4, 5, 1, 2),
            (1, 3, 3, 1, 1),
            (7, 7, 3, 2, 1),
            (6, 5, 2, 2, 0),
            (9, 8, 5, 3, 2),
            (4, 4, 1, 1, 0),
            (11, 11, 11, 4, 0),
        ] {
            let g = Geometry {
                c: 2,
                h,
                w,
                kh: k,
                kw: k,
                stride: s,
                pad: p,
            };
            let (ho, wo) = g.out_hw();
            let ncols = 2 * k * k * ho * wo;
            let x: Vec<f64> = (0..2 * h * w)
                .map(|i| ((i * 7 % 13) as f64) - 6.0)
                .collect();
            let y: Vec<f64> = (0..ncols).map(|i| ((i * 5 % 11) as f64) - 5.0).collect();
            let mut cols = vec![0.0; ncols];
            im2col(&g, &x, &mut cols);
            let mut back = vec![0.0; 2 * h * w];
            col2im(&g, &y, &mut back);
            let lhs: f64 = cols.iter().zip(&y).map(|(a, b)| a * b).sum();
            let rhs: f64 = x.iter().zip(&back).map(|(a, b)| a * b).sum();
            assert_eq!(lhs, rhs, "geometry {g:?}");
            // And one entry by hand: the centre tap of output (0,0) is input (0*s - p + k/2).
            let (ih, iw) = ((k / 2) as isize - p as isize, (k / 2) as isize - p as isize);
            let row = (k / 2) * k + k / 2;
            let want = if ih >= 0 && iw >= 0 {
                x[ih as usize * w + iw as usize]
            } else {
                0.0
            };
            assert_eq!(cols[row * ho * wo], want);
        }
    }
}
