//! Depthwise convolution, one channel plane at a time (MobileNet's 3x3 depthwise layers): with one input channel
//! per output channel, im2col + GEMM turns each plane into a `[1, k*k] x [k*k, H*W]` product whose column buffer
//! costs more than the arithmetic.
//!
//! Each plane is first copied into a small scratch with its zero border, split into its `stride x stride` phases
//! (`Padded`). Then, with the output laid out at the scratch's row pitch, every kernel tap is one contiguous pass
//! over the whole plane: long loops that vectorise even for MobileNet's 5x5 and 10x10 planes, at any stride, with
//! no edge cases. The few extra columns this computes per row are dropped when the output is copied out.

use super::im2col::Geometry;
use super::reduce;
use crate::tensor::Float;

/// The range of output positions `o` (of `n_out`) whose input `o * stride + tap - pad` lies in `0..n_in`.
fn valid(n_out: usize, n_in: usize, tap: usize, stride: usize, pad: usize) -> std::ops::Range<usize> {
    // o * s + tap >= pad  and  o * s + tap - pad < n_in.
    let lo = pad.saturating_sub(tap).div_ceil(stride);
    let hi = if n_in + pad > tap { (n_in + pad - tap).div_ceil(stride) } else { 0 };
    lo..hi.min(n_out).max(lo)
}

/// A plane with its zero border, split into `stride * stride` phase images of `rows x width`: padded pixel
/// `(r * s + py, j * s + px)` is at `((py * s + px) * rows + r) * width + j`. Output pixel `(oy, ox)` is laid out at
/// `oy * width + ox`; tap `(ky, kx)` then reads `tap(ky, kx) + oy * width + ox`.
struct Padded {
    rows: usize,
    width: usize,
    stride: usize,
    /// Output rows and columns.
    ho: usize,
    wo: usize,
}

impl Padded {
    fn new(g: &Geometry) -> Self {
        let (ho, wo) = g.out_hw();
        let s = g.stride;
        Padded { rows: ho + (g.kh - 1) / s, width: wo + (g.kw - 1) / s, stride: s, ho, wo }
    }
    fn len(&self) -> usize {
        self.stride * self.stride * self.rows * self.width
    }
    /// Output values at the scratch's pitch, up to the last row's last real column.
    fn flat(&self) -> usize {
        (self.ho - 1) * self.width + self.wo
    }
    /// Where tap `(ky, kx)` reads output pixel 0's input.
    fn tap(&self, ky: usize, kx: usize) -> usize {
        let s = self.stride;
        (((ky % s) * s + kx % s) * self.rows + ky / s) * self.width + kx / s
    }
    /// Copies plane `x` in, zero where a tap reads padding.
    fn fill<T: Float>(&self, g: &Geometry, x: &[T], out: &mut [T]) {
        let s = self.stride;
        for (i, row) in out[..self.len()].chunks_exact_mut(self.width).enumerate() {
            let (phase, r) = (i / self.rows, i % self.rows);
            let (py, px) = (phase / s, phase % s);
            let Some(iy) = (r * s + py).checked_sub(g.pad).filter(|&iy| iy < g.h) else {
                row.fill(T::zero());
                continue;
            };
            let xrow = &x[iy * g.w..][..g.w];
            let js = valid(self.width, g.w, px, s, g.pad);
            row[..js.start].fill(T::zero());
            row[js.end..].fill(T::zero());
            let x0 = js.start * s + px - g.pad;
            if s == 1 {
                row[js.clone()].copy_from_slice(&xrow[x0..x0 + js.len()]);
            } else {
                for (d, &v) in row[js].iter_mut().zip(xrow[x0..].iter().step_by(s)) {
                    *d = v;
                }
            }
        }
    }
    /// The inverse of `fill` for gradients: input pixel `(iy, ix)` takes padded `(iy + pad, ix + pad)`; pixels no tap
    /// reads get zero.
    fn crop<T: Float>(&self, g: &Geometry, padded: &[T], dx: &mut [T]) {
        let s = self.stride;
        for (iy, dxrow) in dx[..g.h * g.w].chunks_exact_mut(g.w).enumerate() {
            let (py, r) = ((iy + g.pad) % s, (iy + g.pad) / s);
            if r >= self.rows || s > 1 {
                dxrow.fill(T::zero());
            }
            if r >= self.rows {
                continue;
            }
            for px in 0..s {
                let row = &padded[((py * s + px) * self.rows + r) * self.width..][..self.width];
                let js = valid(self.width, g.w, px, s, g.pad);
                let x0 = js.start * s + px - g.pad;
                if s == 1 {
                    // Every column is some tap's: the row is copied whole.
                    dxrow.copy_from_slice(&row[js]);
                } else {
                    for (d, &v) in dxrow[x0..].iter_mut().step_by(s).zip(&row[js]) {
                        *d = v;
                    }
                }
            }
        }
    }
}

/// Scratch (values) one plane needs: the padded input, its gradient and the output at the scratch's pitch.
fn scratch_len(pad: &Padded) -> usize {
    2 * pad.len() + pad.ho * pad.width
}

/// `y = conv(x, w)` for one plane (`y` overwritten; `w` is `kh * kw`).
pub fn forward<T: Float>(g: &Geometry, x: &[T], w: &[T], y: &mut [T], scratch: &mut Vec<T>) {
    let pad = Padded::new(g);
    scratch.resize(scratch_len(&pad), T::zero());
    let (xs, rest) = scratch.split_at_mut(pad.len());
    let ys = &mut rest[pad.len()..][..pad.flat()];
    pad.fill(g, x, xs);
    ys.fill(T::zero());
    let n = ys.len();
    for ky in 0..g.kh {
        let wrow = &w[ky * g.kw..][..g.kw];
        if g.kw == 3 {
            // MobileNet's case: three taps per pass.
            let (a, b, c) = (&xs[pad.tap(ky, 0)..][..n], &xs[pad.tap(ky, 1)..][..n], &xs[pad.tap(ky, 2)..][..n]);
            let (w0, w1, w2) = (wrow[0], wrow[1], wrow[2]);
            for (((o, &a), &b), &c) in ys.iter_mut().zip(a).zip(b).zip(c) {
                *o += w0 * a + w1 * b + w2 * c;
            }
        } else {
            for (kx, &wv) in wrow.iter().enumerate() {
                for (o, &v) in ys.iter_mut().zip(&xs[pad.tap(ky, kx)..][..n]) {
                    *o += wv * v;
                }
            }
        }
    }
    for (oy, yrow) in y[..pad.ho * pad.wo].chunks_exact_mut(pad.wo).enumerate() {
        yrow.copy_from_slice(&ys[oy * pad.width..][..pad.wo]);
    }
}

/// For one plane: `dw += d(loss)/dw` and, when `dx` is given, `dx = d(loss)/dx` (overwritten).
pub fn backward<T: Float>(
    g: &Geometry,
    x: &[T],
    w: &[T],
    dy: &[T],
    dw: &mut [T],
    dx: Option<&mut [T]>,
    scratch: &mut Vec<T>,
) {
    let pad = Padded::new(g);
    scratch.resize(scratch_len(&pad), T::zero());
    let (xs, rest) = scratch.split_at_mut(pad.len());
    let (dxs, dys) = rest.split_at_mut(pad.len());
    let dys = &mut dys[..pad.flat()];
    pad.fill(g, x, xs);
    // dy at the scratch's pitch, zero in the extra columns so that they add nothing.
    dys.fill(T::zero());
    for (oy, drow) in dy[..pad.ho * pad.wo].chunks_exact(pad.wo).enumerate() {
        dys[oy * pad.width..][..pad.wo].copy_from_slice(drow);
    }
    let n = dys.len();
    for ky in 0..g.kh {
        for kx in 0..g.kw {
            dw[ky * g.kw + kx] += reduce::dot(dys, &xs[pad.tap(ky, kx)..][..n]);
        }
    }
    if let Some(dx) = dx {
        dxs.fill(T::zero());
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                let wv = w[ky * g.kw + kx];
                for (o, &d) in dxs[pad.tap(ky, kx)..][..n].iter_mut().zip(&*dys) {
                    *o += wv * d;
                }
            }
        }
        pad.crop(g, dxs, dx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::im2col::im2col;

    /// The same plane through im2col: `y = w . cols`.
    fn reference(g: &Geometry, x: &[f64], w: &[f64]) -> Vec<f64> {
        let (ho, wo) = g.out_hw();
        let mut cols = vec![0.0; g.buffer_len()];
        im2col(g, x, &mut cols);
        (0..ho * wo).map(|p| (0..g.kh * g.kw).map(|t| w[t] * cols[t * ho * wo + p]).sum()).collect()
    }

    #[test]
    fn matches_im2col_for_strides_paddings_and_odd_sizes() {
        let mut r = crate::init::rng(3);
        for (h, w, k, stride, pad) in [
            (7, 5, 3, 1, 1),
            (8, 8, 3, 2, 0),
            (9, 6, 3, 2, 1),
            (5, 5, 5, 1, 2),
            (6, 7, 1, 2, 0),
            (10, 10, 3, 3, 1),
            (4, 9, 3, 2, 2),
        ] {
            let g = Geometry { c: 1, h, w, kh: k, kw: k, stride, pad };
            let x: Vec<f64> = (0..h * w).map(|_| rand::Rng::random_range(&mut r, -1.0..1.0)).collect();
            let wk: Vec<f64> = (0..k * k).map(|_| rand::Rng::random_range(&mut r, -1.0..1.0)).collect();
            let (ho, wo) = g.out_hw();
            let mut y = vec![f64::NAN; ho * wo];
            forward(&g, &x, &wk, &mut y, &mut Vec::new());
            let want = reference(&g, &x, &wk);
            assert!(y.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-12), "{h}x{w} k{k} s{stride} p{pad}");
        }
    }

    /// Backward against the definition: every (output, tap) pair adds `dy * x` to dW and `w * dy` to dx.
    #[test]
    fn backward_matches_the_definition() {
        let mut r = crate::init::rng(4);
        for (h, w, k, stride, pad) in
            [(7, 5, 3, 1, 1), (8, 8, 3, 2, 0), (9, 6, 3, 2, 1), (5, 5, 5, 1, 2), (10, 10, 3, 3, 1)]
        {
            let g = Geometry { c: 1, h, w, kh: k, kw: k, stride, pad };
            let (ho, wo) = g.out_hw();
            let mut rand =
                |n: usize| -> Vec<f64> { (0..n).map(|_| rand::Rng::random_range(&mut r, -1.0..1.0)).collect() };
            let (x, wk, dy) = (rand(h * w), rand(k * k), rand(ho * wo));
            let (mut want_dw, mut want_dx) = (vec![0.5; k * k], vec![0.0; h * w]);
            for (oy, ox, ky, kx) in every_tap(ho, wo, k) {
                let (iy, ix) = ((oy * stride + ky) as isize - pad as isize, (ox * stride + kx) as isize - pad as isize);
                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                    let (i, o) = (iy as usize * w + ix as usize, oy * wo + ox);
                    want_dw[ky * k + kx] += dy[o] * x[i];
                    want_dx[i] += wk[ky * k + kx] * dy[o];
                }
            }
            let (mut dw, mut dx) = (vec![0.5; k * k], vec![f64::NAN; h * w]);
            backward(&g, &x, &wk, &dy, &mut dw, Some(&mut dx), &mut Vec::new());
            let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12);
            assert!(close(&dw, &want_dw) && close(&dx, &want_dx), "{h}x{w} k{k} s{stride} p{pad}");
        }
    }

    fn every_tap(ho: usize, wo: usize, k: usize) -> impl Iterator<Item = (usize, usize, usize, usize)> {
        (0..ho).flat_map(move |oy| {
            (0..wo).flat_map(move |ox| (0..k).flat_map(move |ky| (0..k).map(move |kx| (oy, ox, ky, kx))))
        })
    }
}
