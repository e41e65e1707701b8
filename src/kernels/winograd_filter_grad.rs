//! The filter gradient of a 3x3 stride-1 "same" convolution through Winograd's F(2x2, 3x3), run backwards.
//!
//! The forward pass computes each 2x2 output block as `y = A^T [U .* V] A`, with `U = G g G^T` the transformed
//! kernel and `V = B^T d B` the transformed 4x4 input tile (`kernels/winograd.rs`). That map is linear in `U`, so
//! `dL/dU = (A dy A^T) .* V` summed over tiles, and `dL/dg = G^T (dL/dU) G`. Per tile position `e` (16 of them)
//! the sum over tiles is one product `dU_e (C x K) = V_e (C x tiles) . D_e^T (tiles x K)`, `D = A dy A^T`: 16
//! multiplies per 4 output pixels and channel pair where the direct kernel (`kernels/filter_grad.rs`) does 36.
//!
//! `V` comes from the forward's own input transform, and `D` from flat passes over the gradient's parity phases
//! (the same phase fill) in the same slots, both tile-contiguous: the products are dot products along the tiles,
//! a block of channel pairs in registers, summed across the vector's lanes once per group of images.

use super::winograd::{fill_phases, position_stride, row_stride, strided4, transform_input, Tiles};
use crate::tensor::Float;

/// Whether `accumulate` takes a conv of `c` to `k` channels: f32 (f64 gradient checks keep im2col), and at most
/// 64 x 128 channel pairs: the narrow convs and `small`'s 64 -> 128, whose backward then stays per slice (its
/// products over the batch through im2col took a third longer; `dU` is 512 KB there). Wider ones go batch-wide,
/// `layers/conv/batch_wide.rs`.
pub fn applies<T: Float>(c: usize, k: usize) -> bool {
    T::as_f32(&[]).is_some() && c * k <= MAX_CHANNEL_PAIRS
}

const MAX_CHANNEL_PAIRS: usize = 64 * 128;

/// Tile slots per group of images (at least one image). The products sum each block of channel pairs across the
/// vector's lanes once per group: with groups of about 40 slots (2 images on 8x8 maps) that took longer than the
/// products themselves. Each tile position's rows (`[C + K][t]`, 130 KB at 64 + 64 channels) stay in L2 while
/// the products reuse them. One Zen 3 core, 16 images, 64 -> 64 on 8x8: 256 slots 1.20 ms, 512 1.08 ms.
const GROUP_TILES: usize = 512;

/// Tiles per group are padded to a multiple of this (the widest vector), with zeros.
const LANES: usize = 16;

/// Adds the filter gradient of a slice of images to `dw`, laid out `[C][3][3][K]` (as `filter_grad::accumulate`
/// and the im2col path accumulate it). `x` is `[n][C][h][w]`, `dy` `[n][K][h][w]`; `applies::<f32>` must hold.
pub fn accumulate(x: &[f32], dy: &[f32], [c, h, w]: [usize; 3], k: usize, dw: &mut [f32]) {
    assert!(
        applies::<f32>(c, k) && dw.len() == c * 9 * k && x.len() % (c * h * w).max(1) == 0,
        "winograd_filter_grad does not apply to {c} -> {k} channels (see `applies`)"
    );
    let tl = Tiles::new(h, w);
    let n = x.len() / (c * h * w).max(1);
    let group = (GROUP_TILES / tl.slots).max(1);
    let t_max = (group.min(n) * tl.slots).next_multiple_of(LANES);
    let ts_max = row_stride(t_max);
    let (vs_max, ds_max) = (position_stride(c, ts_max, LANES), position_stride(k, ts_max, LANES));
    let pool = f32::pool();
    // The phases' borders stay zero: input and gradient planes are filled into the same buffer in turn.
    let mut phases = pool.take_zeroed(4 * tl.phase);
    let (mut tmp, mut v, mut d) = (pool.take(tl.tmp_len()), pool.take(16 * vs_max), pool.take(16 * ds_max));
    let mut du = pool.take_zeroed(16 * c * k);
    let bufs = Buffers { phases: &mut phases, tmp: &mut tmp, v: &mut v, d: &mut d, du: &mut du };
    super::arch().dispatch(Job { x, dy, chw: [c, h, w], k, tl, group, bufs, dw });
    [phases, tmp, v, d, du].into_iter().for_each(|b| pool.give(b));
}

/// The scratch of one call, from the tensor pool.
struct Buffers<'a> {
    phases: &'a mut [f32],
    tmp: &'a mut [f32],
    v: &'a mut [f32],
    d: &'a mut [f32],
    du: &'a mut [f32],
}

/// One call's work, compiled for the CPU's vector width.
struct Job<'a> {
    x: &'a [f32],
    dy: &'a [f32],
    chw: [usize; 3],
    k: usize,
    tl: Tiles,
    group: usize,
    bufs: Buffers<'a>,
    dw: &'a mut [f32],
}

impl pulp::WithSimd for Job<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let Job { x, dy, chw: [c, h, w], k, tl, group, bufs, dw } = self;
        let Buffers { phases, tmp, v, d, du } = bufs;
        let (n, plane) = (x.len() / (c * h * w).max(1), h * w);
        for first in (0..n).step_by(group) {
            let imgs = group.min(n - first);
            let (used, t) = (imgs * tl.slots, (imgs * tl.slots).next_multiple_of(LANES));
            let ts = row_stride(t);
            let (vs, ds) = (position_stride(c, ts, LANES), position_stride(k, ts, LANES));
            let (v, d) = (&mut v[..16 * vs], &mut d[..16 * ds]);
            for i in 0..imgs {
                for ci in 0..c {
                    fill_phases(&x[((first + i) * c + ci) * plane..][..plane], w, &tl, phases);
                    transform_input(phases, tmp, &tl, v, ci * ts + i * tl.slots, vs);
                }
                for ko in 0..k {
                    fill_phases(&dy[((first + i) * k + ko) * plane..][..plane], w, &tl, phases);
                    transform_grad(phases, &tl, d, ko * ts + i * tl.slots, ds);
                }
            }
            // The padding past the last tile adds nothing.
            let rows = |buf: &mut [f32], stride: usize, n: usize| {
                buf.chunks_exact_mut(stride)
                    .for_each(|pos| pos[..n * ts].chunks_exact_mut(ts).for_each(|row| row[used..t].fill(0.0)))
            };
            rows(v, vs, c);
            rows(d, ds, k);
            Products { v, d, du: &mut *du, c, k, t, ts, vs, ds }.with_simd(simd);
        }
        fold(du, c, k, dw);
    }
}

/// `A dy A^T` of every 2x2 block of one gradient plane, to `d[e * e_stride + at + slot]`. Along each axis the two
/// values `(p, q)` become `(p, p + q, p - q, -q)`. Each pass reads the four phases and writes two rows of the
/// result (8 of the 16 tile positions), so that nothing goes through a scratch row.
///
/// `q` is the plane as `winograd::fill_phases` leaves it: pixel `(2i + r, 2j + s)` is padded pixel
/// `(2i + r + 1, 2j + s + 1)`, so block `(r, s)` of tile slot `i * tw + j` sits in phase `(1 - r, 1 - s)` at the
/// same slot, one row (`tw`) further for `r = 1`. Where an odd size has no pixel, it reads the never-written
/// border: zero.
#[inline(always)]
fn transform_grad(q: &[f32], tl: &Tiles, d: &mut [f32], at: usize, e_stride: usize) {
    let n = tl.slots;
    let ph = |r: usize, s: usize| &q[(2 * (1 - r) + 1 - s) * tl.phase + r * tl.tw..][..n];
    let (p00, p01, p10, p11) = (ph(0, 0), ph(0, 1), ph(1, 0), ph(1, 1));
    for half in 0..2 {
        let (lo, hi) = d.split_at_mut((8 * half + 4) * e_stride);
        let ([d0, d1, d2, d3], [d4, d5, d6, d7]) =
            (strided4(lo, 8 * half * e_stride + at, e_stride, n), strided4(hi, at, e_stride, n));
        let n = d0.len();
        let (d1, d2, d3, d4, d5, d6, d7) =
            (&mut d1[..n], &mut d2[..n], &mut d3[..n], &mut d4[..n], &mut d5[..n], &mut d6[..n], &mut d7[..n]);
        let (p00, p01, p10, p11) = (&p00[..n], &p01[..n], &p10[..n], &p11[..n]);
        for j in 0..n {
            // Rows 0 and 1 of A dy (p0, p0 + p1), or rows 2 and 3 (p0 - p1, -p1), for both columns.
            let (a0, a1, b0, b1) = if half == 0 {
                (p00[j], p01[j], p00[j] + p10[j], p01[j] + p11[j])
            } else {
                (p00[j] - p10[j], p01[j] - p11[j], -p10[j], -p11[j])
            };
            (d0[j], d1[j], d2[j], d3[j]) = (a0, a0 + a1, a0 - a1, -a1);
            (d4[j], d5[j], d6[j], d7[j]) = (b0, b0 + b1, b0 - b1, -b1);
        }
    }
}

/// `dg = G^T dU G` for every channel pair, added to `dw` (`[C][3][3][K]`). Along each axis `G^T` takes the four
/// transformed values `m` to `(m0 + (m1 + m2) / 2, (m1 - m2) / 2, (m1 + m2) / 2 + m3)`: first along each row of
/// `dU` (kx), then down the columns (ky), each step over all K output channels at once.
#[inline(always)]
fn fold(du: &[f32], c: usize, k: usize, dw: &mut [f32]) {
    let (mut rows, mut tmp) = (vec![0f32; 12 * k], vec![0f32; 3 * k]);
    for (ci, dwc) in dw.chunks_exact_mut(9 * k).enumerate().take(c) {
        let m = |e: usize| &du[(e * c + ci) * k..][..k];
        for a in 0..4 {
            let [r0, r1, r2] = strided3(&mut rows, 3 * a * k, k);
            fold_step(r0, r1, r2, [m(4 * a), m(4 * a + 1), m(4 * a + 2), m(4 * a + 3)]);
        }
        for kx in 0..3 {
            let col = |a: usize| &rows[(3 * a + kx) * k..][..k];
            let [g0, g1, g2] = strided3(&mut tmp, 0, k);
            fold_step(g0, g1, g2, [col(0), col(1), col(2), col(3)]);
            for (ky, g) in tmp.chunks_exact(k).enumerate() {
                dwc[(3 * ky + kx) * k..][..k].iter_mut().zip(g).for_each(|(d, &v)| *d += v);
            }
        }
    }
}

/// `G^T` along one axis: `(m0 + (m1 + m2) / 2, (m1 - m2) / 2, (m1 + m2) / 2 + m3)`, element by element.
#[inline(always)]
fn fold_step(g0: &mut [f32], g1: &mut [f32], g2: &mut [f32], m: [&[f32]; 4]) {
    let n = g0.len();
    let (g1, g2, [m0, m1, m2, m3]) = (&mut g1[..n], &mut g2[..n], m.map(|s| &s[..n]));
    for j in 0..n {
        let (sum, diff) = (0.5 * (m1[j] + m2[j]), 0.5 * (m1[j] - m2[j]));
        (g0[j], g1[j], g2[j]) = (m0[j] + sum, diff, sum + m3[j]);
    }
}

/// Three consecutive slices of `len` values from `start`.
#[inline(always)]
fn strided3(v: &mut [f32], start: usize, len: usize) -> [&mut [f32]; 3] {
    let (a, rest) = v[start..].split_at_mut(len);
    let (b, c) = rest.split_at_mut(len);
    [a, b, &mut c[..len]]
}

/// The 16 products `dU_e += V_e . D_e^T` of one group of tiles.
struct Products<'a> {
    /// 16 positions `vs` apart, each `[C][t]`.
    v: &'a [f32],
    /// 16 positions `ds` apart, each `[K][t]`.
    d: &'a [f32],
    /// `[16][C][K]`.
    du: &'a mut [f32],
    c: usize,
    k: usize,
    t: usize,
    /// Strides of rows and of tile positions.
    ts: usize,
    vs: usize,
    ds: usize,
}

impl pulp::WithSimd for Products<'_> {
    type Output = ();

    /// A block of `I` input x `O` output channels stays in registers, one vector of lane sums each, with the `I`
    /// rows of `V` and one of `D` at a time: 3 x 4 (16 registers) with AVX2, 4 x 6 (29) where there are 32.
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        if S::F32_LANES >= 16 {
            blocks::<S, 4, 6>(simd, self)
        } else {
            blocks::<S, 3, 4>(simd, self)
        }
    }
}

/// Every tile position's product in blocks of `I x O` channels; the edges in smaller blocks.
#[inline(always)]
fn blocks<S: pulp::Simd, const I: usize, const O: usize>(simd: S, p: Products<'_>) {
    let Products { v, d, du, c, k, t, ts, vs, ds } = p;
    let (ci_full, k_full) = (c - c % I, k - k % O);
    for e in 0..16 {
        let (ve, de, due) = (&v[e * vs..][..c * ts], &d[e * ds..][..k * ts], &mut du[e * c * k..][..c * k]);
        let mut b = Block { ve, de, due, k, t, ts };
        for ci in (0..ci_full).step_by(I) {
            (0..k_full).step_by(O).for_each(|k0| b.run::<S, I, O>(simd, ci, k0));
            (k_full..k).for_each(|k0| b.run::<S, I, 1>(simd, ci, k0));
        }
        for ci in ci_full..c {
            (0..k_full).step_by(O).for_each(|k0| b.run::<S, 1, O>(simd, ci, k0));
            (k_full..k).for_each(|k0| b.run::<S, 1, 1>(simd, ci, k0));
        }
    }
}

/// Tile position `e`'s rows of `V` and `D` and its `C x K` block of `dU`.
struct Block<'a> {
    ve: &'a [f32],
    de: &'a [f32],
    due: &'a mut [f32],
    k: usize,
    /// Tile slots used, and the rows' stride.
    t: usize,
    ts: usize,
}

impl Block<'_> {
    #[inline(always)]
    fn run<S: pulp::Simd, const I: usize, const O: usize>(&mut self, simd: S, ci: usize, k0: usize) {
        let (t, ts, k) = (self.t, self.ts, self.k);
        let tv = t / S::F32_LANES;
        let (ve, de) = (self.ve, self.de);
        let xs: [&[S::f32s]; I] = std::array::from_fn(|i| &S::as_simd_f32s(&ve[(ci + i) * ts..][..t]).0[..tv]);
        let ds: [&[S::f32s]; O] = std::array::from_fn(|o| &S::as_simd_f32s(&de[(k0 + o) * ts..][..t]).0[..tv]);
        let mut acc = [[simd.splat_f32s(0.0); O]; I];
        for s in 0..tv {
            let x: [S::f32s; I] = std::array::from_fn(|i| xs[i][s]);
            for o in 0..O {
                let dv = ds[o][s];
                for i in 0..I {
                    acc[i][o] = simd.mul_add_e_f32s(x[i], dv, acc[i][o]);
                }
            }
        }
        for (i, row) in acc.iter().enumerate() {
            for (o, &a) in row.iter().enumerate() {
                self.due[(ci + i) * k + k0 + o] += simd.reduce_sum_f32s(a);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, in f64: `dW[k][c][ky][kx] = sum dY[k][oy][ox] x[c][oy + ky - 1][ox + kx - 1]`, laid out
    /// `[C][3][3][K]`.
    fn direct(x: &[f64], dy: &[f64], [c, h, w]: [usize; 3], k: usize) -> Vec<f64> {
        let n = x.len() / (c * h * w);
        let mut dw = vec![0.0; c * 9 * k];
        for (b, ko, ci, tap) in
            (0..n).flat_map(|b| (0..k).flat_map(move |ko| (0..c * 9).map(move |t| (b, ko, t / 9, t % 9))))
        {
            for (oy, ox) in (0..h).flat_map(|oy| (0..w).map(move |ox| (oy, ox))) {
                let (iy, ix) = (oy + tap / 3, ox + tap % 3);
                if (1..=h).contains(&iy) && (1..=w).contains(&ix) {
                    dw[(ci * 9 + tap) * k + ko] +=
                        dy[((b * k + ko) * h + oy) * w + ox] * x[((b * c + ci) * h + iy - 1) * w + ix - 1];
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
        // Odd and tiny planes, channel counts that take every block size (sixes and fours, then 4, 2, 1), groups
        // of several images (8x8 and smaller) and of one (the 32x32 plane at 64 + 16 channels), and a conv wider
        // than 64 x 64.
        let cases = [
            (2, 3, 16, 6, 6),
            (1, 5, 32, 5, 7),
            (2, 4, 10, 4, 4),
            (3, 2, 16, 1, 1),
            (2, 16, 48, 8, 8),
            (3, 7, 16, 7, 3),
            (2, 64, 16, 32, 32),
            (2, 32, 32, 16, 16),
            (2, 48, 128, 6, 6),
        ];
        for (n, c, k, h, w) in cases {
            let (x, dy) = (values(n * c * h * w, 1), values(n * k * h * w, 2));
            let f = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<f32>>();
            // dw starts at 1: the gradient is added to it.
            let mut dw = vec![1f32; c * 9 * k];
            accumulate(&f(&x), &f(&dy), [c, h, w], k, &mut dw);
            let want = direct(&x, &dy, [c, h, w], k);
            let scale = want.iter().fold(1.0, |m: f64, v| m.max(v.abs()));
            let worst = dw.iter().zip(&want).map(|(&a, b)| (a as f64 - 1.0 - b).abs()).fold(0.0, f64::max);
            assert!(worst < 2e-6 * scale, "{n}x{c}x{h}x{w} -> {k}: off by {worst} (largest {scale})");
        }
    }

    #[test]
    fn every_register_plan_equals_the_definition() {
        // The AVX-512 and AVX2 plans (4 x 6 and 3 x 4 channel pairs), with edges in both directions, run here with
        // one-lane vectors: the index arithmetic is the same at every width.
        let (c, k, t) = (11, 14, 37);
        let (v, d) = (values(16 * c * t, 3), values(16 * k * t, 4));
        let f = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<f32>>();
        let (vf, df) = (f(&v), f(&d));
        let want: Vec<f64> = (0..16 * c * k)
            .map(|i| {
                let (e, ci, kk) = (i / (c * k), i / k % c, i % k);
                (0..t).map(|s| v[(e * c + ci) * t + s] * d[(e * k + kk) * t + s]).sum()
            })
            .collect();
        type Plan = fn(pulp::Scalar, Products<'_>);
        let plans: [(&str, Plan); 2] =
            [("4 x 6", blocks::<pulp::Scalar, 4, 6>), ("3 x 4", blocks::<pulp::Scalar, 3, 4>)];
        for (name, plan) in plans {
            let mut du = vec![0f32; 16 * c * k];
            plan(pulp::Scalar::new(), Products { v: &vf, d: &df, du: &mut du, c, k, t, ts: t, vs: c * t, ds: k * t });
            let worst = du.iter().zip(&want).map(|(&a, b)| (a as f64 - b).abs()).fold(0.0, f64::max);
            assert!(worst < 1e-4, "{name}: off by {worst}");
        }
    }
}
