//! The filter gradient of a 3x3 convolution (any stride and zero padding), computed directly:
//! `dW[k][c][ky][kx] = sum over images and output pixels of dY[k][oy][ox] x[c][s oy + ky - p][s ox + kx - p]`.
//!
//! im2col + GEMM writes every input pixel out 9 times, then the GEMM packs those columns again, for products only
//! 16-64 channels wide: about half the machine's peak on the CIFAR ResNets. Here the output gradient is turned
//! pixel-major once (each pixel's K channels one vector), the input gets its zero border once, and a block of
//! `vectors x 9 taps` accumulators stays in registers while every pixel adds `dY[pixel] * x[tap]`, the input value
//! broadcast: one multiply-add per K/lanes and tap, nothing written until the channel is done.

use super::im2col::Geometry;
use crate::tensor::Float;

/// Whether `accumulate` takes this convolution: 3x3, f32 (f64 gradient checks keep im2col), output channels in
/// whole vectors of every width (16 covers AVX-512's 16 lanes and AVX2's 8), and a gradient that stays in L2:
/// every image reads and writes all of it, which at 512 x 512 channels (9 MB) on 7x7 maps made `resnet18`'s
/// backward there 1.24 times as slow as im2col's GEMM over stacked images.
pub fn applies<T: Float>(g: &Geometry, k: usize) -> bool {
    g.kh == 3 && g.kw == 3 && T::as_f32(&[]).is_some() && k % 16 == 0 && g.c * k <= MAX_CHANNEL_PAIRS
}

/// 32 x 32 channels. On one Zen 3 core (AVX2: one vector of K x 9 taps in registers), 128-256 images, against
/// im2col's GEMM: 16 -> 16 on 32x32 backward 19.4 against 24.0 ms, 32 -> 32 on 16x16 level, and slower from there
/// (64 -> 64 on 15x15 120 against 111 ms, 24 -> 64 on 31x31 188 against 160, 64 -> 256 on 15x15 547 against 408).
const MAX_CHANNEL_PAIRS: usize = 32 * 32;

/// Adds the filter gradient of a slice of images to `dw`, laid out `[C][3][3][K]` (the transpose of the weights,
/// as the im2col path accumulates it). `x` is `[n][C][h][w]`, `dy` `[n][K][ho][wo]`; `applies::<f32>` must hold.
pub fn accumulate(x: &[f32], dy: &[f32], g: &Geometry, k: usize, dw: &mut [f32]) {
    assert!(
        applies::<f32>(g, k) && dw.len() == g.c * 9 * k,
        "filter_grad does not apply to {g:?} -> {k} channels (see `applies`)"
    );
    let (c, (ho, wo)) = (g.c, g.out_hw());
    let (plane, out_plane, pw) = (g.h * g.w, ho * wo, g.w + 2 * g.pad);
    let padded = (g.h + 2 * g.pad) * pw;
    let pool = f32::pool();
    // The border stays zero; the interior is rewritten for every image.
    let (mut xp, mut dyt) = (pool.take_zeroed(c * padded), pool.take(out_plane * k));
    for (xi, dyi) in x.chunks_exact(c * plane).zip(dy.chunks_exact(k * out_plane)) {
        for (src, dst) in xi.chunks_exact(plane).zip(xp.chunks_exact_mut(padded)) {
            for (row, out) in src.chunks_exact(g.w).zip(dst[g.pad * pw..].chunks_exact_mut(pw)) {
                out[g.pad..][..g.w].copy_from_slice(row);
            }
        }
        for (ko, plane_k) in dyi.chunks_exact(out_plane).enumerate() {
            for (p, &v) in plane_k.iter().enumerate() {
                dyt[p * k + ko] = v;
            }
        }
        super::arch().dispatch(Image {
            xp: &xp,
            dyt: &dyt,
            pw,
            padded,
            out: [ho, wo],
            stride: g.stride,
            k,
            dw: &mut *dw,
        });
    }
    pool.give(xp);
    pool.give(dyt);
}

/// One image's share, its input bordered and its output gradient pixel-major.
struct Image<'a> {
    xp: &'a [f32],
    dyt: &'a [f32],
    /// Padded row length and plane size.
    pw: usize,
    padded: usize,
    out: [usize; 2],
    stride: usize,
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
    let Image { xp, dyt, pw, padded, out: [h, w], stride, k, dw } = im;
    let kv = k / S::F32_LANES;
    let (dyv, _) = S::as_simd_f32s(dyt);
    let (dwv, _) = S::as_mut_simd_f32s(dw);
    for k0 in (0..kv).step_by(V) {
        for (ci, xc) in xp.chunks_exact(padded).enumerate() {
            let mut acc = [[simd.splat_f32s(0.0); 9]; V];
            for oy in 0..h {
                // The three input rows under output row oy.
                let rows: [&[f32]; 3] = std::array::from_fn(|ky| &xc[(stride * oy + ky) * pw..][..pw]);
                let d_row = &dyv[oy * w * kv..][..w * kv];
                for ox in 0..w {
                    let d: [S::f32s; V] = std::array::from_fn(|v| d_row[ox * kv + k0 + v]);
                    for (tap, row) in (0..9).map(|t| (t, rows[t / 3])) {
                        let x = simd.splat_f32s(row[stride * ox + tap % 3]);
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
    fn direct(x: &[f64], dy: &[f64], g: &Geometry, k: usize) -> Vec<f64> {
        let ((ho, wo), c) = (g.out_hw(), g.c);
        let n = x.len() / (c * g.h * g.w);
        let mut dw = vec![0.0; c * 9 * k];
        for (b, ko, ci, tap) in
            (0..n).flat_map(|b| (0..k).flat_map(move |ko| (0..c * 9).map(move |t| (b, ko, t / 9, t % 9))))
        {
            for (oy, ox) in (0..ho).flat_map(|oy| (0..wo).map(move |ox| (oy, ox))) {
                let (iy, ix) = (g.stride * oy + tap / 3, g.stride * ox + tap % 3);
                if (g.pad..g.h + g.pad).contains(&iy) && (g.pad..g.w + g.pad).contains(&ix) {
                    dw[(ci * 9 + tap) * k + ko] += dy[((b * k + ko) * ho + oy) * wo + ox]
                        * x[((b * c + ci) * g.h + iy - g.pad) * g.w + ix - g.pad];
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
        // K of one vector and of two (both register blocks on AVX-512), odd and tiny planes, stride 2, no padding.
        let cases = [(2, 3, 16, 6, 6, 1, 1), (1, 5, 32, 5, 7, 1, 1), (3, 2, 64, 1, 1, 1, 1), (2, 16, 48, 8, 8, 1, 1)];
        for (n, c, k, h, w, stride, pad) in cases.into_iter().chain([(2, 3, 32, 7, 6, 2, 1), (1, 4, 16, 6, 5, 1, 0)]) {
            let g = Geometry { c, h, w, kh: 3, kw: 3, stride, pad };
            let (ho, wo) = g.out_hw();
            let (x, dy) = (values(n * c * h * w, 1), values(n * k * ho * wo, 2));
            let f = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<f32>>();
            // dw starts at 1: the gradient is added to it.
            let mut dw = vec![1f32; c * 9 * k];
            accumulate(&f(&x), &f(&dy), &g, k, &mut dw);
            let want = direct(&x, &dy, &g, k);
            let worst = dw.iter().zip(&want).map(|(&a, b)| (a as f64 - 1.0 - b).abs()).fold(0.0, f64::max);
            assert!(worst < 1e-4, "{g:?} x {n} -> {k}: off by {worst}");
        }
    }
}
