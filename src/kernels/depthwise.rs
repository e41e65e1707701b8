//! Depthwise convolution, one channel plane at a time (MobileNet's 3x3 depthwise layers): with one input channel
//! per output channel, im2col + GEMM turns each plane into a `[1, k*k] x [k*k, H*W]` product whose column buffer
//! costs more than the arithmetic. Here each kernel tap is one pass over the plane: `y[oy, :] += w * x[iy, ix..]`,
//! contiguous (and vectorised) when the stride is 1.

use super::im2col::Geometry;
use crate::tensor::Float;

/// The range of output positions `o` (of `n_out`) whose input `o * stride + tap - pad` lies in `0..n_in`.
fn valid(n_out: usize, n_in: usize, tap: usize, stride: usize, pad: usize) -> std::ops::Range<usize> {
    // o * s + tap >= pad  and  o * s + tap - pad < n_in.
    let lo = pad.saturating_sub(tap).div_ceil(stride);
    let hi = if n_in + pad > tap { (n_in + pad - tap).div_ceil(stride) } else { 0 };
    lo..hi.min(n_out).max(lo)
}

/// `y = conv(x, w)` for one plane (`y` overwritten; `w` is `kh * kw`).
pub fn forward<T: Float>(g: &Geometry, x: &[T], w: &[T], y: &mut [T]) {
    let (ho, wo) = g.out_hw();
    y[..ho * wo].fill(T::zero());
    for ky in 0..g.kh {
        let rows = valid(ho, g.h, ky, g.stride, g.pad);
        for kx in 0..g.kw {
            let cols = valid(wo, g.w, kx, g.stride, g.pad);
            let wv = w[ky * g.kw + kx];
            for oy in rows.clone() {
                let iy = oy * g.stride + ky - g.pad;
                let yrow = &mut y[oy * wo..][cols.clone()];
                let x0 = iy * g.w + cols.start * g.stride + kx - g.pad;
                let len = yrow.len();
                if g.stride == 1 {
                    for (o, &v) in yrow.iter_mut().zip(&x[x0..x0 + len]) {
                        *o += wv * v;
                    }
                } else {
                    for (j, o) in yrow.iter_mut().enumerate() {
                        *o += wv * x[x0 + j * g.stride];
                    }
                }
            }
        }
    }
}

/// For one plane: `dw += d(loss)/dw` and, when `dx` is given, `dx = d(loss)/dx` (overwritten).
pub fn backward<T: Float>(g: &Geometry, x: &[T], w: &[T], dy: &[T], dw: &mut [T], dx: Option<&mut [T]>) {
    let (ho, wo) = g.out_hw();
    let mut dx = dx;
    if let Some(d) = dx.as_deref_mut() {
        d[..g.h * g.w].fill(T::zero());
    }
    for ky in 0..g.kh {
        let rows = valid(ho, g.h, ky, g.stride, g.pad);
        for kx in 0..g.kw {
            let cols = valid(wo, g.w, kx, g.stride, g.pad);
            let wv = w[ky * g.kw + kx];
            let mut acc = T::zero();
            for oy in rows.clone() {
                let iy = oy * g.stride + ky - g.pad;
                let drow = &dy[oy * wo..][cols.clone()];
                let x0 = iy * g.w + cols.start * g.stride + kx - g.pad;
                if g.stride == 1 {
                    let xs = &x[x0..x0 + drow.len()];
                    acc += drow.iter().zip(xs).fold(T::zero(), |a, (&d, &v)| a + d * v);
                    if let Some(d) = dx.as_deref_mut() {
                        for (o, &gv) in d[x0..x0 + drow.len()].iter_mut().zip(drow) {
                            *o += wv * gv;
                        }
                    }
                } else {
                    for (j, &gv) in drow.iter().enumerate() {
                        acc += gv * x[x0 + j * g.stride];
                        if let Some(d) = dx.as_deref_mut() {
                            d[x0 + j * g.stride] += wv * gv;
                        }
                    }
                }
            }
            dw[ky * g.kw + kx] += acc;
        }
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
        for (h, w, k, stride, pad) in
            [(7, 5, 3, 1, 1), (8, 8, 3, 2, 0), (9, 6, 3, 2, 1), (5, 5, 5, 1, 2), (6, 7, 1, 2, 0)]
        {
            let g = Geometry { c: 1, h, w, kh: k, kw: k, stride, pad };
            let x: Vec<f64> = (0..h * w).map(|_| rand::Rng::random_range(&mut r, -1.0..1.0)).collect();
            let wk: Vec<f64> = (0..k * k).map(|_| rand::Rng::random_range(&mut r, -1.0..1.0)).collect();
            let (ho, wo) = g.out_hw();
            let mut y = vec![f64::NAN; ho * wo];
            forward(&g, &x, &wk, &mut y);
            let want = reference(&g, &x, &wk);
            assert!(y.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-12), "{h}x{w} k{k} s{stride} p{pad}");
        }
    }
}
