//! The filter gradient of a 3x3 stride-1 "same" convolution, computed directly:
//! `dW[k][c][ky][kx] = sum over images and pixels of dY[k][oy][ox] x[c][oy + ky - 1][ox + kx - 1]`.
//!
//! im2col + GEMM writes every input pixel out 9 times, then the GEMM packs those columns again, for products only
//! 16-64 channels wide: about half the machine's peak on the CIFAR ResNets. Here the output gradient is turned
//! pixel-major once (each pixel's K channels one vector), the input gets its zero border once, and a block of
//! `vectors x 9 taps` accumulators stays in registers while every pixel adds `dY[pixel] * x[tap]`, the input value
//! broadcast: one multiply-add per K/lanes and tap, nothing written until the channel is done.

use crate::tensor::Float;

/// Whether `accumulate` takes this convolution: f32 (f64 gradient checks keep im2col) and output channels in
/// whole vectors of every width (16 covers AVX-512's 16 lanes and AVX2's 8).
pub fn applies<T: Float>(k: usize) -> bool {
    T::as_f32(&[]).is_some() && k % 16 == 0
}

/// Adds the filter gradient of a slice of images to `dw`, laid out `[C][3][3][K]` (the transpose of the weights,
/// as the im2col path accumulates it). `x` is `[n][C][h][w]`, `dy` `[n][K][h][w]`; `applies::<f32>(k)` must hold.
pub fn accumulate(x: &[f32], dy: &[f32], [c, h, w]: [usize; 3], k: usize, dw: &mut [f32]) {
    assert!(k % 16 == 0 && dw.len() == c * 9 * k, "filter_grad: K = {k} is not a multiple of 16");
    let (plane, padded) = (h * w, (h + 2) * (w + 2));
    let pool = f32::pool();
    // The border stays zero; the interior is rewritten for every image.
    let (mut xp, mut dyt) = (pool.take_zeroed(c * padded), pool.take(plane * k));
    for (xi, dyi) in x.chunks_exact(c * plane).zip(dy.chunks_exact(k * plane)) {
        for (src, dst) in xi.chunks_exact(plane).zip(xp.chunks_exact_mut(padded)) {
            for (row, out) in src.chunks_exact(w).zip(dst[w + 2..].chunks_exact_mut(w + 2)) {
                out[1..=w].copy_from_slice(row);
            }
        }
        for (ko, plane_k) in dyi.chunks_exact(plane).enumerate() {
            for (p, &v) in plane_k.iter().enumerate() {
                dyt[p * k + ko] = v;
            }
        }
        super::arch().dispatch(Image { xp: &xp, dyt: &dyt, h, w, k, dw: &mut *dw });
    }
    pool.give(xp);
    pool.give(dyt);
}

/// One image's share, its input bordered and its output gradient pixel-major.
struct Image<'a> {
    xp: &'a [f32],
    dyt: &'a [f32],
    h: usize,
    w: usize,
    k: usize,
    dw: &'a mut [f32],
}

impl pulp::WithSimd for Image<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        // 2 vectors of K x 9 taps (18 accumulators) where there are 32 registers and K allows, else 1 (9).
        let kv = self.k / S::F32_LANES;
        if S::F32_LANES >= 16 && kv % 2 == 0 {
            block::<S, 2>(simd, self)
        } else {
            block::<S, 1>(simd, self)
        }
    }
}

#[inline(always)]
fn block<S: pulp::Simd, const V: usize>(simd: S, im: Image<'_>) {
    let Image { xp, dyt, h, w, k, dw } = im;
    let (pw, kv) = (w + 2, k / S::F32_LANES);
    let (dyv, _) = S::as_simd_f32s(dyt);
    let (dwv, _) = S::as_mut_simd_f32s(dw);
    for k0 in (0..kv).step_by(V) {
        for (ci, xc) in xp.chunks_exact((h + 2) * pw).enumerate() {
            let mut acc = [[simd.splat_f32s(0.0); 9]; V];
            for oy in 0..h {
                // The three input rows under output row oy, cut to one length so that every index is in bounds.
                let rows: [&[f32]; 3] = std::array::from_fn(|ky| &xc[(oy + ky) * pw..][..pw]);
                let d_row = &dyv[oy * w * kv..][..w * kv];
                for ox in 0..w {
                    let d: [S::f32s; V] = std::array::from_fn(|v| d_row[ox * kv + k0 + v]);
                    for (tap, row) in (0..9).map(|t| (t, rows[t / 3])) {
                        let x = simd.splat_f32s(row[ox + tap % 3]);
                        for v in 0..V {
                            acc[v][tap] = simd.mul_add_e_f32s(d[v], x, acc[v][tap]);
                        }
                    }
                }
            }
            for (v, taps) in acc.iter().enumerate() {
                for (tap, &a) in taps.iter().enumerate() {
                    let at = (ci * 9 + tap) * kv + k0 + v;
                    dwv[at] = simd.add_f32s(dwv[at], a);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, in f64.
    fn direct(x: &[f64], dy: &[f64], [c, h, w]: [usize; 3], k: usize) -> Vec<f64> {
        let n = x.len() / (c * h * w);
        let mut dw = vec![0.0; c * 9 * k];
        for b in 0..n {
            for (ko, ci, ky, kx) in
                (0..k).flat_map(|a| (0..c).flat_map(move |b| (0..9).map(move |t| (a, b, t / 3, t % 3))))
            {
                for oy in 0..h {
                    for ox in 0..w {
                        let (iy, ix) = (oy + ky, ox + kx);
                        if (1..=h).contains(&iy) && (1..=w).contains(&ix) {
                            dw[((ci * 3 + ky) * 3 + kx) * k + ko] +=
                                dy[((b * k + ko) * h + oy) * w + ox] * x[((b * c + ci) * h + iy - 1) * w + ix - 1];
                        }
                    }
                }
            }
        }
        dw
    }

    fn values(n: usize, seed: u64) -> Vec<f64> {
        (0..n).map(|i| (((i as u64 * 2654435761 + seed * 97) % 1000) as f64 / 500.0) - 1.0).collect()
    }

    #[test]
    fn equals_the_definition_and_accumulates() {
        // K of one vector and of two (both register blocks on AVX-512), odd and tiny planes.
        for (n, c, k, h, w) in [(2, 3, 16, 6, 6), (1, 5, 32, 5, 7), (3, 2, 64, 1, 1), (2, 16, 48, 8, 8)] {
            let (x, dy) = (values(n * c * h * w, 1), values(n * k * h * w, 2));
            let f = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<f32>>();
            // dw starts at 1: the gradient is added to it.
            let mut dw = vec![1f32; c * 9 * k];
            accumulate(&f(&x), &f(&dy), [c, h, w], k, &mut dw);
            let want = direct(&x, &dy, [c, h, w], k);
            let worst = dw.iter().zip(&want).map(|(&a, b)| (a as f64 - 1.0 - b).abs()).fold(0.0, f64::max);
            assert!(worst < 1e-4, "{n}x{c}x{h}x{w} -> {k}: off by {worst}");
        }
    }
}
