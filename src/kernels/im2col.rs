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
        ((self.h + 2 * self.pad - self.kh) / self.stride + 1, (self.w + 2 * self.pad - self.kw) / self.stride + 1)
    }
    /// Elements the column buffer needs: the `[C*kh*kw, Ho*Wo]` matrix, plus one input plane of scratch for
    /// strided convs (the stride phases, see `split_phases`).
    pub fn buffer_len(&self) -> usize {
        let (ho, wo) = self.out_hw();
        self.c * self.kh * self.kw * ho * wo + if self.uses_phases() { self.h * self.w } else { 0 }
    }
    /// Strided kernels wider than 1x1 read every stride phase: split the plane once. A strided 1x1 conv reads
    /// one phase only, which a direct gather does for a quarter of the work.
    fn uses_phases(&self) -> bool {
        self.stride > 1 && (self.kh > 1 || self.kw > 1)
    }
    /// Whether several images' column matrices can sit side by side (`im2col_pitched`): strided kernels need
    /// scratch past the matrix, and pointwise convs use the image itself.
    pub fn stacks(&self) -> bool {
        !self.uses_phases() && !self.is_pointwise()
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
        let hi = if self.w + p > j { ((self.w + p - j).div_ceil(s)).min(wo) } else { 0 };
        (lo.min(hi), hi)
    }
}

pub fn im2col<T: Float>(g: &Geometry, img: &[T], cols: &mut [T]) {
    if g.uses_phases() {
        return im2col_strided(g, img, cols);
    }
    let (ho, wo) = g.out_hw();
    im2col_pitched(g, img, cols, ho * wo)
}

/// `im2col` with the matrix's rows `pitch` apart: several images' matrices can then sit side by side, image `j`'s
/// from column `j * Ho*Wo` of a `[C*kh*kw, pitch]` matrix (pass `&mut cols[j * Ho*Wo..]`). Not for
/// strided kernels, whose scratch follows the matrix.
pub fn im2col_pitched<T: Float>(g: &Geometry, img: &[T], cols: &mut [T], pitch: usize) {
    debug_assert!(!g.uses_phases());
    let (ho, wo) = g.out_hw();
    let n = ho * wo;
    let (s, p) = (g.stride, g.pad);
    let zero = T::zero();
    for c in 0..g.c {
        let plane = &img[c * g.h * g.w..(c + 1) * g.h * g.w];
        for i in 0..g.kh {
            // Output rows whose input row lies inside the image: oh*s + i - p in [0, h).
            let oh_lo = (if i >= p { 0 } else { (p - i).div_ceil(s) }).min(ho);
            let oh_hi = (if g.h + p > i { (g.h + p - i).div_ceil(s).min(ho) } else { 0 }).max(oh_lo);
            for j in 0..g.kw {
                let row = &mut cols[((c * g.kh + i) * g.kw + j) * pitch..][..n];
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
                        row[a..b].copy_from_slice(&plane[(a as isize + delta) as usize..(b as isize + delta) as usize]);
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
/// `cols` must hold `g.buffer_len()` elements; past the matrix it is scratch.
pub fn col2im<T: Float>(g: &Geometry, cols: &mut [T], img: &mut [T]) {
    if g.uses_phases() {
        return col2im_strided(g, cols, img);
    }
    let (ho, wo) = g.out_hw();
    col2im_pitched(g, cols, img, ho * wo)
}

/// The adjoint of `im2col_pitched`.
pub fn col2im_pitched<T: Float>(g: &Geometry, cols: &[T], img: &mut [T], pitch: usize) {
    debug_assert!(!g.uses_phases());
    let (ho, wo) = g.out_hw();
    let (s, p) = (g.stride, g.pad);
    img[..g.c * g.h * g.w].fill(T::zero());
    for c in 0..g.c {
        let plane = &mut img[c * g.h * g.w..(c + 1) * g.h * g.w];
        for i in 0..g.kh {
            let oh_lo = (if i >= p { 0 } else { (p - i).div_ceil(s) }).min(ho);
            let oh_hi = (if g.h + p > i { (g.h + p - i).div_ceil(s).min(ho) } else { 0 }).max(oh_lo);
            for j in 0..g.kw {
                let row = &cols[((c * g.kh + i) * g.kw + j) * pitch..][..ho * wo];
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

// Strided convolutions: each input plane is first split into its `s x s` stride phases
// (`P[ph][pw][a][b] = x[a*s + ph][b*s + pw]`). Tap `(i, j)` then reads phase `((i-p) mod s, (j-p) mod s)` at a
// constant offset, so the copies are contiguous rows instead of a scalar gather per element.

fn phase_len(len: usize, s: usize, ph: usize) -> usize {
    if len > ph {
        (len - ph).div_ceil(s)
    } else {
        0
    }
}

/// Start of phase `(ph, pw)` in the split plane, and its `(rows, cols)`.
fn phase_at(g: &Geometry, ph: usize, pw: usize) -> (usize, usize, usize) {
    let s = g.stride;
    let rows_before: usize = (0..ph).map(|q| phase_len(g.h, s, q)).sum();
    let cols_before: usize = (0..pw).map(|q| phase_len(g.w, s, q)).sum();
    let (hp, wp) = (phase_len(g.h, s, ph), phase_len(g.w, s, pw));
    (rows_before * g.w + hp * cols_before, hp, wp)
}

/// For tap offset `i - p`: which phase, and the shift within it.
fn tap_phase(i: usize, p: usize, s: usize) -> (usize, isize) {
    let d = i as isize - p as isize;
    (d.rem_euclid(s as isize) as usize, d.div_euclid(s as isize))
}

/// Calls `f(plane index, split index)` for every pixel: where it sits in the plane and in its stride phase.
fn for_each_phase_pixel(g: &Geometry, mut f: impl FnMut(usize, usize)) {
    let s = g.stride;
    for ph in 0..s {
        for pw in 0..s {
            let (off, hp, wp) = phase_at(g, ph, pw);
            for a in 0..hp {
                for b in 0..wp {
                    f((a * s + ph) * g.w + b * s + pw, off + a * wp + b);
                }
            }
        }
    }
}

fn split_phases<T: Float>(g: &Geometry, plane: &[T], out: &mut [T]) {
    for_each_phase_pixel(g, |p, q| out[q] = plane[p]);
}

fn merge_phases<T: Float>(g: &Geometry, split: &[T], plane: &mut [T]) {
    for_each_phase_pixel(g, |p, q| plane[p] = split[q]);
}

/// Output columns `[lo, hi)` of a row whose phase row has `wp` entries, read at shift `db`.
fn shifted_range(wo: usize, wp: usize, db: isize) -> (usize, usize) {
    let lo = (-db).max(0) as usize;
    let hi = (wp as isize - db).clamp(0, wo as isize) as usize;
    (lo.min(hi), hi)
}

fn im2col_strided<T: Float>(g: &Geometry, img: &[T], cols: &mut [T]) {
    let (ho, wo) = g.out_hw();
    let n = ho * wo;
    let (main, scratch) = cols.split_at_mut(g.c * g.kh * g.kw * n);
    let zero = T::zero();
    for c in 0..g.c {
        split_phases(g, &img[c * g.h * g.w..(c + 1) * g.h * g.w], scratch);
        for i in 0..g.kh {
            let (ph, da) = tap_phase(i, g.pad, g.stride);
            for j in 0..g.kw {
                let (pw, db) = tap_phase(j, g.pad, g.stride);
                let (off, hp, wp) = phase_at(g, ph, pw);
                let (lo, hi) = shifted_range(wo, wp, db);
                let row = &mut main[((c * g.kh + i) * g.kw + j) * n..][..n];
                for oh in 0..ho {
                    let out = &mut row[oh * wo..(oh + 1) * wo];
                    let a = oh as isize + da;
                    if a < 0 || a >= hp as isize || lo == hi {
                        out.iter_mut().for_each(|v| *v = zero);
                        continue;
                    }
                    let src = &scratch[off + a as usize * wp..][..wp];
                    out[..lo].iter_mut().for_each(|v| *v = zero);
                    out[hi..].iter_mut().for_each(|v| *v = zero);
                    let start = (lo as isize + db) as usize;
                    for (o, &x) in out[lo..hi].iter_mut().zip(&src[start..]) {
                        *o = x;
                    }
                }
            }
        }
    }
}

fn col2im_strided<T: Float>(g: &Geometry, cols: &mut [T], img: &mut [T]) {
    let (ho, wo) = g.out_hw();
    let n = ho * wo;
    let (main, scratch) = cols.split_at_mut(g.c * g.kh * g.kw * n);
    let scratch = &mut scratch[..g.h * g.w];
    for c in 0..g.c {
        scratch.fill(T::zero());
        for i in 0..g.kh {
            let (ph, da) = tap_phase(i, g.pad, g.stride);
            for j in 0..g.kw {
                let (pw, db) = tap_phase(j, g.pad, g.stride);
                let (off, hp, wp) = phase_at(g, ph, pw);
                let (lo, hi) = shifted_range(wo, wp, db);
                let row = &main[((c * g.kh + i) * g.kw + j) * n..][..n];
                for oh in 0..ho {
                    let a = oh as isize + da;
                    if a < 0 || a >= hp as isize || lo == hi {
                        continue;
                    }
                    let dst = &mut scratch[off + a as usize * wp..][..wp];
                    let start = (lo as isize + db) as usize;
                    for (d, &v) in dst[start..].iter_mut().zip(&row[oh * wo + lo..oh * wo + hi]) {
                        *d += v;
                    }
                }
            }
        }
        merge_phases(g, scratch, &mut img[c * g.h * g.w..(c + 1) * g.h * g.w]);
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
            let g = Geometry { c: 2, h, w, kh: k, kw: k, stride: s, pad: p };
            let (ho, wo) = g.out_hw();
            let ncols = 2 * k * k * ho * wo;
            let x: Vec<f64> = (0..2 * h * w).map(|i| ((i * 7 % 13) as f64) - 6.0).collect();
            let y: Vec<f64> = (0..ncols).map(|i| ((i * 5 % 11) as f64) - 5.0).collect();
            let mut cols = vec![0.0; g.buffer_len()];
            im2col(&g, &x, &mut cols);
            let mut ybuf = y.clone();
            ybuf.resize(g.buffer_len(), 0.0);
            let mut back = vec![0.0; 2 * h * w];
            col2im(&g, &mut ybuf, &mut back);
            let lhs: f64 = cols[..ncols].iter().zip(&y).map(|(a, b)| a * b).sum();
            let rhs: f64 = x.iter().zip(&back).map(|(a, b)| a * b).sum();
            assert_eq!(lhs, rhs, "geometry {g:?}");
            // And one entry by hand: the centre tap of output (0,0) is input (0*s - p + k/2).
            let (ih, iw) = ((k / 2) as isize - p as isize, (k / 2) as isize - p as isize);
            let row = (k / 2) * k + k / 2;
            let want = if ih >= 0 && iw >= 0 { x[ih as usize * w + iw as usize] } else { 0.0 };
            assert_eq!(cols[row * ho * wo], want);
        }
    }
}
