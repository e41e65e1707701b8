//! The forward pass of a 3x3 stride-2 "same" convolution (padding 1) without im2col: the downsampling convs of
//! the CIFAR ResNets (16 -> 32 on 32x32, 32 -> 64 on 16x16). im2col copies each input pixel into 9 / 4 places
//! of a column matrix and a GEMM reads them back; here each input plane is split once into its four (row,
//! column) parity phases, the odd ones with a leading zero row or column for the border, so that every tap of
//! every output row is one contiguous vector load: output `(i, j)`'s tap `(ky, kx)` reads input row `2i + ky - 1`
//! (even phase row `i` for `ky = 1`, odd phase row `i` or `i + 1` for `ky = 0` or `2`), and likewise for columns.
//! A block of output channels x 2 vectors of output pixels stays in registers while C x 9 taps stream through,
//! one broadcast weight per output channel and tap.

use crate::tensor::Float;

/// Whether `conv` takes a stride-2 3x3 conv with padding 1 to `k` channels on `h x w` planes: f32, K even, and
/// output rows a whole number of this CPU's vectors.
pub fn applies<T: Float>(k: usize, [_, w]: [usize; 2]) -> bool {
    T::as_f32(&[]).is_some() && k.is_multiple_of(2) && w.div_ceil(2).is_multiple_of(super::f32_lanes())
}

/// The weights as `conv` reads them: `[C][9][K]`, the output channels of one tap contiguous.
pub fn weights(w: &[f32], k: usize, c: usize) -> Vec<f32> {
    let mut out = vec![0f32; c * 9 * k];
    for ko in 0..k {
        for ci in 0..c {
            for tap in 0..9 {
                out[(ci * 9 + tap) * k + ko] = w[(ko * c + ci) * 9 + tap];
            }
        }
    }
    out
}

/// `y = relu?(conv3x3_stride2(x) + bias)` for a slice of images: `x` `[n][C][h][w]`, `y` `[n][K][oh][ow]` with
/// `oh = ceil(h / 2)`, `wt` from `weights`. `applies` must hold.
pub fn conv(x: &[f32], [c, h, w]: [usize; 3], wt: &[f32], k: usize, y: &mut [f32], bias: Option<&[f32]>, relu: bool) {
    let (oh, ow) = (h.div_ceil(2), w.div_ceil(2));
    assert!(applies::<f32>(k, [h, w]) && wt.len() == 9 * c * k, "strided_conv does not take {c} -> {k} on {h}x{w}");
    let pitch = ow + 1;
    let plane = (oh + 1) * pitch;
    let n = x.len() / (c * h * w).max(1);
    let pool = f32::pool();
    // Positions no input pixel lands on (the leading border, an odd size's last row or column) stay zero.
    let mut phases = pool.take_zeroed(4 * c * plane);
    // Each (channel, tap)'s offset into the phases: the kernel loops over all C x 9 of them at once (a loop over
    // the 9 taps inside one over channels was unrolled, its 18 loads hoisted, and the accumulators spilled: 1.6x
    // slower).
    let taps: Vec<usize> = (0..9 * c)
        .map(|r| {
            let (ci, t) = (r / 9, r % 9);
            let ((py, dy), (px, dx)) = (TAP[t / 3], TAP[t % 3]);
            4 * ci * plane + (2 * py + px) * plane + dy * pitch + dx
        })
        .collect();
    for i in 0..n {
        for ci in 0..c {
            fill(&x[(i * c + ci) * h * w..][..h * w], w, pitch, &mut phases[4 * ci * plane..][..4 * plane]);
        }
        let out = &mut y[i * k * oh * ow..][..k * oh * ow];
        let mut job = Job { q: &phases, wt, taps: &taps, out, c, k, oh, ow, pitch, plane, bias, relu };
        super::arch().dispatch(&mut job);
    }
    pool.give(phases);
}

/// One plane into its phases, each `(oh + 1) x pitch`: phase `2 * (row parity) + column parity`; input row `r`
/// goes to row `r / 2` of the even-row phases, or `r / 2 + 1` of the odd ones (row 0 is the border); columns
/// likewise.
fn fill(p: &[f32], w: usize, pitch: usize, q: &mut [f32]) {
    let plane = q.len() / 4;
    for (r, row) in p.chunks_exact(w).enumerate() {
        let (py, a) = (r % 2, r / 2 + r % 2);
        let (lo, hi) = q.split_at_mut((2 * py + 1) * plane);
        // Even columns to column b of the even phase, odd ones to b + 1 of the odd phase (its column 0 the border).
        let (even, odd) = (&mut lo[2 * py * plane + a * pitch..][..w / 2 + w % 2], &mut hi[a * pitch + 1..][..w / 2]);
        let pairs = row.chunks_exact(2);
        if let [last] = pairs.remainder() {
            even[w / 2] = *last;
        }
        for ((pair, e), o) in pairs.zip(even.iter_mut()).zip(odd.iter_mut()) {
            (*e, *o) = (pair[0], pair[1]);
        }
    }
}

/// Where tap `t` (0..3 along one axis) reads: (parity, offset into the phase).
const TAP: [(usize, usize); 3] = [(1, 0), (0, 0), (1, 1)];

struct Job<'a> {
    q: &'a [f32],
    wt: &'a [f32],
    taps: &'a [usize],
    out: &'a mut [f32],
    c: usize,
    k: usize,
    oh: usize,
    ow: usize,
    pitch: usize,
    plane: usize,
    bias: Option<&'a [f32]>,
    relu: bool,
}

impl pulp::WithSimd for &mut Job<'_> {
    type Output = ();

    /// 6 (AVX2) or 8 (32 registers) output channels x 2 vectors in registers; K's remainder in blocks of 4 or 2.
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let wide = S::F32_LANES >= 16;
        let main = if wide { 8 } else { 6 };
        let full = self.k / main * main;
        let mut k0 = 0;
        while k0 < full {
            if wide {
                self.block::<S, 8>(simd, k0);
            } else {
                self.block::<S, 6>(simd, k0);
            }
            k0 += main;
        }
        while k0 + 4 <= self.k {
            self.block::<S, 4>(simd, k0);
            k0 += 4;
        }
        while k0 < self.k {
            self.block::<S, 2>(simd, k0);
            k0 += 2;
        }
    }
}

impl Job<'_> {
    /// Output channels `k0..k0 + O`, every output pixel, two vectors at a time (along a row, or across two rows
    /// where a row is one vector; an odd last vector is computed twice).
    #[inline(always)]
    fn block<S: pulp::Simd, const O: usize>(&mut self, simd: S, k0: usize) {
        let Job { q, wt, taps, c, k, oh, ow, pitch, plane, bias, relu, .. } = *self;
        let l = S::F32_LANES;
        // Every read below stays inside channel `c - 1`'s phases (rows up to `oh`, columns up to `ow + 1 = pitch`)
        // and the weights' `9 C` rows of K.
        assert!(q.len() >= 4 * c * plane && wt.len() >= 9 * c * k && taps.len() == 9 * c);
        assert!(pitch == ow + 1 && ow % l == 0 && k0 + O <= k);
        // SAFETY: `at + l <= q.len()` for every offset `load` is given (see above).
        let load = |at: usize| unsafe { (q.as_ptr().add(at) as *const S::f32s).read_unaligned() };
        let (per_row, vectors) = (ow / l, oh * ow / l);
        let start = |v: usize| (v / per_row, v % per_row * l);
        for v in (0..vectors).step_by(2) {
            let ((i0, j0), (i1, j1)) = (start(v), start((v + 1).min(vectors - 1)));
            let mut acc = [[simd.splat_f32s(0.0); 2]; O];
            let (p0, p1) = (i0 * pitch + j0, i1 * pitch + j1);
            for (r, &tap) in taps.iter().enumerate() {
                let (x0, x1) = (load(tap + p0), load(tap + p1));
                let at = r * k + k0;
                for (o, a) in acc.iter_mut().enumerate() {
                    // SAFETY: `at + o < 9 * c * k` (k0 + O <= k).
                    let wv = simd.splat_f32s(unsafe { *wt.get_unchecked(at + o) });
                    a[0] = simd.mul_add_e_f32s(wv, x0, a[0]);
                    a[1] = simd.mul_add_e_f32s(wv, x1, a[1]);
                }
            }
            for (o, a) in acc.iter().enumerate() {
                let b = simd.splat_f32s(bias.map_or(0.0, |b| b[k0 + o]));
                for (v, (i, j)) in a.iter().zip([(i0, j0), (i1, j1)]) {
                    let mut v = simd.add_f32s(*v, b);
                    if relu {
                        v = simd.max_f32s(v, simd.splat_f32s(0.0));
                    }
                    let at = ((k0 + o) * oh + i) * ow + j;
                    S::as_mut_simd_f32s(&mut self.out[at..at + l]).0[0] = v;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, in f64.
    fn direct(x: &[f64], [c, h, w]: [usize; 3], wt: &[f64], k: usize) -> Vec<f64> {
        let (oh, ow) = (h.div_ceil(2), w.div_ceil(2));
        let n = x.len() / (c * h * w);
        let mut y = vec![0.0; n * k * oh * ow];
        for (b, ko, i, j) in (0..n)
            .flat_map(|b| (0..k).flat_map(move |ko| (0..oh).flat_map(move |i| (0..ow).map(move |j| (b, ko, i, j)))))
        {
            let mut acc = 0.0;
            for ci in 0..c {
                for ky in 0..3 {
                    for kx in 0..3 {
                        let (r, s) = ((2 * i + ky) as isize - 1, (2 * j + kx) as isize - 1);
                        if r >= 0 && s >= 0 && (r as usize) < h && (s as usize) < w {
                            acc += wt[(ko * c + ci) * 9 + ky * 3 + kx]
                                * x[((b * c + ci) * h + r as usize) * w + s as usize];
                        }
                    }
                }
            }
            y[((b * k + ko) * oh + i) * ow + j] = acc;
        }
        y
    }

    #[test]
    fn equals_the_definition() {
        let values = |n: usize, seed: usize| (0..n).map(move |i| ((i * 7919 + seed * 31) % 1000) as f64 / 500.0 - 1.0);
        let l = crate::kernels::f32_lanes();
        // Rows of two vectors and more, rows of one (two rows a block), odd input sizes, K of every block mix.
        for (n, c, k, h, w) in [(2, 3, 32, 4 * l, 4 * l), (1, 5, 14, 2 * l, 2 * l), (2, 4, 10, 4 * l - 1, 8 * l - 1)] {
            assert!(applies::<f32>(k, [h, w]));
            let (x, wt): (Vec<f64>, Vec<f64>) = (values(n * c * h * w, 1).collect(), values(k * c * 9, 2).collect());
            let bias: Vec<f32> = values(k, 3).map(|v| v as f32).collect();
            let f = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<f32>>();
            let want = direct(&x, [c, h, w], &wt, k);
            for relu in [false, true] {
                let mut y = vec![f32::NAN; want.len()];
                conv(&f(&x), [c, h, w], &weights(&f(&wt), k, c), k, &mut y, Some(&bias), relu);
                let plane = want.len() / (n * k);
                for (at, (&got, &want)) in y.iter().zip(&want).enumerate() {
                    let want = want + bias[at / plane % k] as f64;
                    let want = if relu { want.max(0.0) } else { want };
                    assert!((got as f64 - want).abs() < 1e-5, "{n}x{c}x{h}x{w} -> {k}, relu {relu}: {got} vs {want}");
                }
            }
        }
    }
}
