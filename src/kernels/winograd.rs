//! Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks",
//! 2016) for 3x3 stride-1 "same" convolutions: the narrow layers of the CIFAR ResNets, and wider ones on maps of 7x7
//! and up.
//!
//! Each 2x2 block of output comes from a 4x4 tile of input: `Y = A^T [ (G g G^T) .* (B^T d B) ] A`. Transformed,
//! the convolution is 16 independent matrix products, one per tile position `e`, of shape
//! `[tiles x C] x [C x K]`: 16 multiplies per 4 outputs and input channel instead of im2col's 36, and a transformed
//! input 4x the image instead of im2col's 9x. Images are taken a few at a time, so that the transformed input stays
//! in cache while the products read it.
//!
//! The input gradient of such a convolution is again one (with each kernel turned 180 degrees and the channel roles
//! swapped), so `input_grad_weights` serves backward with the same kernel.
//!
//! `Conv2d` uses it for the forward pass and the input gradient of 3x3 stride-1 convs (`WINOGRAD` in
//! `layers/conv.rs`; measured in ARCHITECTURE.md); the conv tests run both paths. Their filter gradient runs the
//! same transforms backwards (`kernels/winograd_filter_grad.rs`).

use super::gemm::{matmul_strided, Mat};
use crate::tensor::Float;

/// `G g G^T` of every 3x3 kernel of `w` (`[K][C][3][3]`), laid out `[16][C][K]`: tile position `e`'s `C x K`
/// matrix is contiguous. Output channels innermost, so that each of the 16 positions is written in order: the other
/// way round every write was to another cache line, and at 512 x 512 channels (16 MB) that took longer than
/// the convolution of 16 images. One input channel at a time, its K kernels turned tap-major first, so that every
/// step below is a pass over K values (vectorised): kernel by kernel this took a third of `resnet20`'s inference
/// when batches were split small.
pub fn weights<T: Float>(w: &[T], k: usize, c: usize) -> Vec<T> {
    let h = T::c(0.5);
    let mut u = vec![T::zero(); 16 * c * k];
    // g: this channel's taps, g[j] the K values of tap j; t = G g (4 x 3 rows of K values).
    let (mut g, mut t) = (vec![T::zero(); 9 * k], vec![T::zero(); 12 * k]);
    for ci in 0..c {
        for ko in 0..k {
            for (j, &v) in w[(ko * c + ci) * 9..][..9].iter().enumerate() {
                g[j * k + ko] = v;
            }
        }
        fn row<T>(m: &[T], k: usize, i: usize) -> &[T] {
            &m[i * k..][..k]
        }
        for j in 0..3 {
            combine(&mut t, [j, 3 + j, 6 + j, 9 + j], row(&g, k, j), row(&g, k, 3 + j), row(&g, k, 6 + j), h);
        }
        for r in 0..4 {
            let at = |s: usize| (r * 4 + s) * c + ci;
            combine(
                &mut u,
                [at(0), at(1), at(2), at(3)],
                row(&t, k, 3 * r),
                row(&t, k, 3 * r + 1),
                row(&t, k, 3 * r + 2),
                h,
            );
        }
    }
    u
}

/// One step of `G . G^T` over K values: `(a, h (a + b + d), h (a - b + d), d)` to rows `to` (of `k` values) of `m`.
#[inline(always)]
fn combine<T: Float>(m: &mut [T], to: [usize; 4], a: &[T], b: &[T], d: &[T], h: T) {
    let k = a.len();
    let (b, d) = (&b[..k], &d[..k]);
    m[to[0] * k..][..k].copy_from_slice(a);
    m[to[3] * k..][..k].copy_from_slice(d);
    for (o, ((&a, &b), &d)) in m[to[1] * k..][..k].iter_mut().zip(a.iter().zip(b).zip(d)) {
        *o = h * (a + b + d);
    }
    for (o, ((&a, &b), &d)) in m[to[2] * k..][..k].iter_mut().zip(a.iter().zip(b).zip(d)) {
        *o = h * (a - b + d);
    }
}

/// The transformed kernels of the convolution that maps `dY` (K channels) to `dX` (C channels): kernel `(c, k)`
/// is kernel `(k, c)` of `w` turned 180 degrees.
pub fn input_grad_weights<T: Float>(w: &[T], k: usize, c: usize) -> Vec<T> {
    let mut flipped = vec![T::zero(); w.len()];
    for ko in 0..k {
        for ci in 0..c {
            let src = &w[(ko * c + ci) * 9..][..9];
            let dst = &mut flipped[(ci * k + ko) * 9..][..9];
            for (i, d) in dst.iter_mut().enumerate() {
                *d = src[8 - i];
            }
        }
    }
    weights(&flipped, c, k)
}

/// Images per group: enough tiles for long products, few enough that the transformed input stays in cache (`V`
/// at most about 256 KB, and `M` as much: half of a Zen 3 core's L2; twice that was 5-20% slower there).
/// Wide convs' groups hold about 256 tile slots: 128 and 512 were slower on two Zen 3 cores (64 -> 256 on 15x15,
/// forward 188 and 195 ms against 157 for 512 images).
fn group_size(c: usize, k: usize, slots: usize) -> usize {
    if is_wide(c, k) {
        return (256 / slots.max(1)).max(1);
    }
    (4096 / (c.max(k) * slots).max(1)).max(1)
}

/// Channel pairs up to which a conv is narrow: its products go through the micro-kernel in small groups of
/// images. Wider ones (airbench's 64 -> 256 and 256 -> 256, resnet18's 128 and up) take groups of about 256 tile
/// slots and the `gemm` crate, whose packing then pays: the micro-kernel's small groups re-read all 16 `C x K`
/// matrices (4 MB at 256 x 256) for a few dozen tiles each, 3-5x slower than im2col there.
const NARROW_CHANNEL_PAIRS: usize = 64 * 64;

/// Whether a conv of `c` to `k` channels is wider than the micro-kernel's (`NARROW_CHANNEL_PAIRS`).
pub fn is_wide(c: usize, k: usize) -> bool {
    c * k > NARROW_CHANNEL_PAIRS
}

/// Where the tiles of one plane sit: tile `(i, j)` is slot `i * tw + j`, every slot a tile. (An earlier layout
/// gave each tile row a spare slot for the zero border, so that the column step needed no fix-up: 6%, 12.5% and
/// 25% more products on 32x32, 16x16 and 8x8 maps.)
#[derive(Clone, Copy)]
pub(super) struct Tiles {
    /// Tile columns.
    pub tw: usize,
    /// Slots (tiles) per plane.
    pub slots: usize,
    /// Elements per phase plane: `th + 1` rows of `tw`.
    pub phase: usize,
}

impl Tiles {
    pub fn new(h: usize, w: usize) -> Self {
        let (th, tw) = (h.div_ceil(2), w.div_ceil(2));
        Tiles { tw, slots: th * tw, phase: (th + 1) * tw }
    }

    /// Scratch for one plane's transforms: 8 rows of `slots` values with one more each side (input), or 12 rows
    /// (output).
    pub fn tmp_len(&self) -> usize {
        12 * (self.slots + 2)
    }
}

/// What happens to a conv's output before it is stored: `bias` (K values) added, then `skip` (a residual block's
/// shortcut, shaped as the output), then with `relu` negative values set to zero.
#[derive(Clone, Copy)]
pub struct Epilogue<'a, T> {
    pub bias: Option<&'a [T]>,
    pub skip: Option<&'a [T]>,
    pub relu: bool,
}

impl<T> Epilogue<'_, T> {
    /// The plain convolution.
    pub const NONE: Self = Epilogue { bias: None, skip: None, relu: false };
}

/// `y = conv3x3(x, u)` with stride 1 and zero padding 1 for a slice of images, then `after` applied: `x` is
/// `[n][C][h][w]`, `y` `[n][K][h][w]`, `u` from `weights`. Its scratch comes from the tensor pool, so a training
/// step reuses the previous step's.
pub fn conv<T: Float>(x: &[T], [c, h, w]: [usize; 3], u: &[T], k: usize, y: &mut [T], after: Epilogue<'_, T>) {
    let tl = Tiles::new(h, w);
    let n = x.len() / (c * h * w).max(1);
    let group = group_size(c, k, tl.slots);
    let step = slot_step();
    let t_max = (group.min(n) * tl.slots).next_multiple_of(step);
    let ts_max = row_stride(t_max);
    let (vs_max, ms_max) = (position_stride(c, ts_max, step), position_stride(k, ts_max, step));
    let pool = T::pool();
    // The phases' borders must be zero; the other buffers are written before they are read (the padding past a
    // group's last tile aside, which is never read back).
    let mut phases = pool.take_zeroed(4 * tl.phase);
    let (mut tmp, mut v, mut m) = (pool.take(tl.tmp_len()), pool.take(16 * vs_max), pool.take(16 * ms_max));
    super::simd(
        #[inline(always)]
        || {
            for first in (0..n).step_by(group) {
                let imgs = group.min(n - first);
                // Slots rounded up to whole vectors for the products.
                let t = (imgs * tl.slots).next_multiple_of(step);
                let ts = row_stride(t);
                let (vs, ms) = (position_stride(c, ts, step), position_stride(k, ts, step));
                for i in 0..imgs {
                    for ci in 0..c {
                        fill_phases(&x[((first + i) * c + ci) * h * w..][..h * w], w, &tl, &mut phases);
                        transform_input(&phases, &mut tmp, &tl, &mut v, ci * ts + i * tl.slots, vs);
                    }
                }
                products(&v, u, &mut m, [c, k, t], [ts, vs, ms]);
                for i in 0..imgs {
                    for ko in 0..k {
                        let plane = ((first + i) * k + ko) * h * w;
                        let out = &mut y[plane..][..h * w];
                        transform_output(&m, &mut tmp, &tl, ko * ts + i * tl.slots, ms, [h, w], out);
                        finish(out, after.bias.map(|b| b[ko]), after.skip.map(|s| &s[plane..][..h * w]), after.relu);
                    }
                }
            }
        },
    );
    [phases, tmp, v, m].into_iter().for_each(|b| pool.give(b));
}

/// Elements from one channel's row of tile slots to the next (`t` used): an odd number of 64-byte lines, so that
/// the products' 16-64 rows at a time fall in as many L1 sets. At 2 KB (two 32x32 images' 512 slots) they fell in
/// two sets and evicted each other: 16 -> 16 took 20% longer.
pub(super) fn row_stride(t: usize) -> usize {
    if (t / 16).is_multiple_of(2) {
        t + 16
    } else {
        t
    }
}

/// Elements from one tile position's rows (`rows x ts`) to the next: one `step` more than they take. The
/// transforms read or write four positions at once, which at multiples of 4 KB apart share L1 sets and stall on
/// false store-to-load dependencies.
pub(super) fn position_stride(rows: usize, ts: usize, step: usize) -> usize {
    rows * ts + step
}

/// Output channels go 8 at a time through the products' micro-kernel (6 and 4 with AVX2's 16 registers).
const OUTS: usize = 8;

/// Slots are padded to a multiple of this for the micro-kernel: two vectors of this CPU's lanes (16 with AVX2).
/// Padding to 32 everywhere made a 32x32 plane's 272 slots 288 on AVX2, 6% more products for nothing.
fn slot_step() -> usize {
    2 * super::f32_lanes()
}

/// The 16 products `M_e (K x t) = U_e^T (K x C) . V_e (C x t)`, one per tile position (`V_e` at `e * vs`, `M_e`
/// at `e * ms`, rows `ts` apart). With C and K of 16 to 64 these are short, thin products where a general GEMM
/// spends its time packing. In f32 with K a multiple of 8 a micro-kernel keeps a block of 8 (AVX2: 6 or 4)
/// channels x 2 vectors of `M_e` in registers and streams `C` through it, one broadcast multiply-add per element;
/// otherwise (f64, gradient checks) the `gemm` crate does them.
#[inline(always)]
fn products<T: Float>(v: &[T], u: &[T], m: &mut [T], [c, k, t]: [usize; 3], [ts, vs, ms]: [usize; 3]) {
    if k % OUTS == 0 && !is_wide(c, k) {
        if let (Some(v), Some(u), Some(m)) = (T::as_f32(v), T::as_f32(u), T::as_f32_mut(m)) {
            return super::arch().dispatch(Products { v, u, m, c, k, t, ts, vs, ms });
        }
    }
    products_gemm(v, u, m, [c, k, t], [ts, vs, ms]);
}

/// The 16 products through the `gemm` crate.
fn products_gemm<T: Float>(v: &[T], u: &[T], m: &mut [T], [c, k, t]: [usize; 3], [ts, vs, ms]: [usize; 3]) {
    for e in 0..16 {
        let (ve, ue, me) = (&v[e * vs..][..c * ts], &u[e * c * k..][..c * k], &mut m[e * ms..][..k * ts]);
        let ve = Mat { data: ve, rows: c, cols: t, rs: ts as isize, cs: 1 };
        matmul_strided(ve.t(), Mat::new(ue, c, k), me, 1, ts as isize, false, 1);
    }
}

struct Products<'a> {
    v: &'a [f32],
    u: &'a [f32],
    m: &'a mut [f32],
    c: usize,
    k: usize,
    t: usize,
    /// Strides of rows and of tile positions (multiples of the vector's lanes).
    ts: usize,
    vs: usize,
    ms: usize,
}

impl pulp::WithSimd for Products<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        products_blocks(simd, self, S::F32_LANES >= 16)
    }
}

/// A block of `O` output channels x 2 vectors stays in registers, with the 2 input vectors and a broadcast weight:
/// 8 channels (19 registers) where there are 32 (AVX-512, `wide`). Where there are 16 (AVX2), 8 would spill inside
/// the loop and 4 (11 registers) leaves the multiply-adds waiting on their 4-cycle latency with only 8 chains, so
/// K goes in blocks of 6 (15 registers, 12 chains) and as many blocks of 4 as `K = 6a + 4b` needs.
#[inline(always)]
fn products_blocks<S: pulp::Simd>(simd: S, p: Products<'_>, wide: bool) {
    let Products { v, u, m, c, k, t, ts, vs, ms } = p;
    // t is a multiple of two vectors (`slot_step`), so every row of V_e and M_e is a whole number of them.
    let lanes = S::F32_LANES;
    let (tv, ts, vs, ms) = (t / lanes, ts / lanes, vs / lanes, ms / lanes);
    let (vv, _) = S::as_simd_f32s(&v[..(15 * vs + c * ts) * lanes]);
    let (mm, _) = S::as_mut_simd_f32s(&mut m[..(15 * ms + k * ts) * lanes]);
    let fours = if wide { 0 } else { [0, 2, 1][(k % 6) / 2] };
    let sixes = if wide { 0 } else { (k - 4 * fours) / 6 };
    for e in 0..16 {
        let mut block = Block { vv, u, mm: &mut *mm, c, k, tv, ts, vs, ms, e };
        if wide {
            (0..k).step_by(OUTS).for_each(|k0| block.run::<S, OUTS>(simd, k0));
        } else {
            (0..sixes).for_each(|b| block.run::<S, 6>(simd, 6 * b));
            (0..fours).for_each(|b| block.run::<S, 4>(simd, 6 * sixes + 4 * b));
        }
    }
}

/// Tile position `e`'s product, output channels `k0..k0 + O` at a time.
struct Block<'a, V> {
    vv: &'a [V],
    u: &'a [f32],
    mm: &'a mut [V],
    c: usize,
    k: usize,
    tv: usize,
    /// Row and position strides, in vectors.
    ts: usize,
    vs: usize,
    ms: usize,
    e: usize,
}

impl<V: Copy> Block<'_, V> {
    #[inline(always)]
    fn run<S: pulp::Simd<f32s = V>, const O: usize>(&mut self, simd: S, k0: usize) {
        let Block { vv, u, c, k, tv, ts, vs, ms, e, .. } = *self;
        for j in (0..tv).step_by(2) {
            let mut acc = [[simd.splat_f32s(0.0); 2]; O];
            for ci in 0..c {
                let row = e * vs + ci * ts + j;
                let (x0, x1) = (vv[row], vv[row + 1]);
                let w: &[f32; O] = u[(e * c + ci) * k + k0..][..O].try_into().expect("O weights");
                for (a, &w) in acc.iter_mut().zip(w) {
                    let w = simd.splat_f32s(w);
                    a[0] = simd.mul_add_e_f32s(w, x0, a[0]);
                    a[1] = simd.mul_add_e_f32s(w, x1, a[1]);
                }
            }
            for (kk, a) in acc.iter().enumerate() {
                let out = e * ms + (k0 + kk) * ts + j;
                self.mm[out] = a[0];
                self.mm[out + 1] = a[1];
            }
        }
    }
}

/// Copies a plane into the four parity phases of its zero-bordered version, without the left and right border
/// columns: padded row `2a + py` (the plane's row `2a + py - 1`) goes to row `a` of phases `2 py` and `2 py + 1`;
/// the plane's odd columns `2j + 1` (padded `2j + 2`, even) to phase `2 py` at `j`, its even columns `2j` (padded
/// `2j + 1`, odd) to phase `2 py + 1` at `j`. The top and bottom border rows, and an odd width's last odd column,
/// stay zero. Not inlined, for the reason `interleave_rows` gives.
///
/// Row by row it also asks for the same row of the next plane in memory (the next channel's or image's, which
/// every caller reads next): a 32x32 plane is one 4 KB page, where the hardware prefetcher stops and starts over,
/// and two thirds of this copy's time went on its first load of each 64-byte line (Zen 5, `resnet20` training:
/// 15% of the step in this function, 6% with the hint; the step 8-10% faster on one core).
#[inline(never)]
pub(super) fn fill_phases<T: Float>(plane: &[T], w: usize, tl: &Tiles, phases: &mut [T]) {
    let next = plane.as_ptr().wrapping_add(plane.len());
    for (yy, row) in plane.chunks_exact(w).enumerate() {
        super::prefetch(next.wrapping_add(yy * w), w);
        let (py, a) = ((yy + 1) % 2, (yy + 1) / 2);
        let at = |px: usize| (2 * py + px) * tl.phase + a * tl.tw;
        let (lo, hi) = phases.split_at_mut(at(1));
        let (odd, even) = (&mut lo[at(0)..][..tl.tw], &mut hi[..tl.tw]);
        // Pairs of columns in one pass (the compiler de-interleaves them with shuffles); an odd width's last alone.
        let pairs = row.chunks_exact(2);
        if let [last] = pairs.remainder() {
            even[w / 2] = *last;
        }
        for ((p, e), o) in pairs.zip(even.iter_mut()).zip(odd.iter_mut()) {
            (*e, *o) = (p[0], p[1]);
        }
    }
}

/// `B^T d B` of every tile of a plane, written to `v[e * e_stride + at + slot]`. Tile `(i, j)` reads padded rows
/// `2i .. 2i + 3`, which are rows `i` and `i + 1` of the phases (`fill_phases`), and padded columns `2j .. 2j + 3`:
/// even-phase `j - 1`, odd-phase `j`, even `j`, odd `j + 1`. So each step is a flat pass over the plane's slots;
/// the column step's first and last tile of each row read a neighbouring row's value where the zero border
/// belongs, and are set again from the values they should have had.
#[inline(always)]
pub(super) fn transform_input<T: Float>(q: &[T], tmp: &mut [T], tl: &Tiles, v: &mut [T], at: usize, e_stride: usize) {
    let (n, tw) = (tl.slots, tl.tw);
    let ph = |py: usize, px: usize, shift: usize| &q[(2 * py + px) * tl.phase + shift..][..n];
    // B^T d (rows) for each column phase px: r0 = d0 - d2, r1 = d1 + d2, r2 = d2 - d1, r3 = d1 - d3. Row r of
    // phase px goes to tmp[(4 px + r) (n + 2) + 1], one value of room either side for the column step's shifts.
    let row = n + 2;
    for px in 0..2 {
        let (d0, d1, d2, d3) = (ph(0, px, 0), ph(1, px, 0), ph(0, px, tw), ph(1, px, tw));
        let [r0, r1, r2, r3] = strided4(tmp, 4 * px * row + 1, row, n);
        input_step(r0, r1, r2, r3, d0, d1, d2, d3);
    }
    // (. B) (columns) of each row r: x0 - x2, x1 + x2, x2 - x1, x1 - x3, with x0..x3 the even phase shifted back
    // one slot, the odd phase, the even phase, the odd phase shifted on one.
    for r in 0..4 {
        let (e, o) = (&tmp[r * row..][..row], &tmp[(4 + r) * row..][..row]);
        let [v0, v1, v2, v3] = strided4(v, r * 4 * e_stride + at, e_stride, n);
        input_step(v0, v1, v2, v3, &e[..n], &o[1..], &e[1..], &o[2..]);
        // The border: x0 = 0 in each row's first tile, x3 = 0 in its last.
        for i in 0..n / tw.max(1) {
            let (first, last) = (i * tw, i * tw + tw - 1);
            v0[first] = T::zero() - e[1 + first];
            v3[last] = o[1 + last];
        }
    }
}

/// One step of `B^T . B` along rows or columns: `(d0 - d2, d1 + d2, d2 - d1, d1 - d3)`, every input read once.
/// Its own function so that the eight slices are known not to overlap (no run-time checks before each pass).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn input_step<T: Float>(
    r0: &mut [T],
    r1: &mut [T],
    r2: &mut [T],
    r3: &mut [T],
    d0: &[T],
    d1: &[T],
    d2: &[T],
    d3: &[T],
) {
    let n = r0.len();
    let (r1, r2, r3, d0, d1, d2, d3) =
        (&mut r1[..n], &mut r2[..n], &mut r3[..n], &d0[..n], &d1[..n], &d2[..n], &d3[..n]);
    for j in 0..n {
        let (a, b, c, d) = (d0[j], d1[j], d2[j], d3[j]);
        (r0[j], r1[j], r2[j], r3[j]) = (a - c, b + c, c - b, b - d);
    }
}

/// One step of `A^T . A`: `(a + b + c, b - c - d)`, with the slices known not to overlap.
#[inline(always)]
fn output_step<T: Float>(s0: &mut [T], s1: &mut [T], a: &[T], b: &[T], c: &[T], d: &[T]) {
    let n = s0.len();
    let (s1, a, b, c, d) = (&mut s1[..n], &a[..n], &b[..n], &c[..n], &d[..n]);
    for j in 0..n {
        (s0[j], s1[j]) = (a[j] + b[j] + c[j], b[j] - c[j] - d[j]);
    }
}

/// Four slices of `len` values, `stride` apart from `start`: the four outputs of one pass.
#[inline(always)]
pub(super) fn strided4<T>(v: &mut [T], start: usize, stride: usize, len: usize) -> [&mut [T]; 4] {
    let (a, rest) = v[start..].split_at_mut(stride);
    let (b, rest) = rest.split_at_mut(stride);
    let (c, d) = rest.split_at_mut(stride);
    [&mut a[..len], &mut b[..len], &mut c[..len], &mut d[..len]]
}

/// `A^T m A` of every tile of one output plane: the 2x2 block of tile `(i, j)` goes to `(2i, 2j)`, dropping the
/// spare slots and, where `h` or `w` is odd, the last row or column.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn transform_output<T: Float>(
    m: &[T],
    tmp: &mut [T],
    tl: &Tiles,
    at: usize,
    e_stride: usize,
    [h, w]: [usize; 2],
    out: &mut [T],
) {
    let n = tl.slots;
    let g = |e: usize| &m[e * e_stride + at..][..n];
    // A^T m (rows), one pass per column x: s0 = m0 + m1 + m2 and s1 = m1 - m2 - m3, to s[x] and s[4 + x].
    let (s, y) = tmp[..12 * n].split_at_mut(8 * n);
    for x in 0..4 {
        let (a, b, c, d) = (g(x), g(4 + x), g(8 + x), g(12 + x));
        let (s0, s1) = s.split_at_mut(4 * n);
        output_step(&mut s0[x * n..][..n], &mut s1[x * n..][..n], a, b, c, d);
    }
    // (. A), one pass per output row r: even columns s0 + s1 + s2, odd s1 - s2 - s3, to y[2r] and y[2r + 1].
    for r in 0..2 {
        let col = |x: usize| &s[(4 * r + x) * n..][..n];
        let (a, b, c, d) = (col(0), col(1), col(2), col(3));
        let (even, odd) = y[2 * r * n..][..2 * n].split_at_mut(n);
        output_step(even, odd, a, b, c, d);
    }
    interleave_rows(y, tl, [h, w], out);
}

/// The output plane's rows from the even and odd columns `transform_output` leaves in `y`. Not inlined: as its
/// own function its arguments are known not to overlap, where inlined the compiler checked that before every row
/// (16 to 32 values, on 8x8 to 32x32 maps). It is then compiled for baseline x86-64 (SSE2 shuffles), which for a
/// copy costs less than those checks did. The next plane's lines are asked for as `fill_phases` asks for its input's:
/// the stores waited on them as its loads did (about 2% of `resnet20`'s training step on one Zen 5 core).
#[inline(never)]
fn interleave_rows<T: Float>(y: &[T], tl: &Tiles, [h, w]: [usize; 2], out: &mut [T]) {
    let n = tl.slots;
    let next = out.as_ptr().wrapping_add(h * w);
    for yy in 0..h {
        super::prefetch(next.wrapping_add(yy * w), w);
        let (i, r) = (yy / 2, yy % 2);
        let (even, odd) = (&y[2 * r * n + i * tl.tw..][..tl.tw], &y[(2 * r + 1) * n + i * tl.tw..][..tl.tw]);
        let row = &mut out[yy * w..][..w];
        // Indexed, with the lengths fixed up front, so that the compiler turns the interleave into vector shuffles
        // (the pairwise `chunks_exact_mut` loop stayed scalar: a tenth of `resnet20`'s step).
        let half = w / 2;
        let (pairs, (even, odd)) = (&mut row[..2 * half], (&even[..half], &odd[..half]));
        for j in 0..half {
            pairs[2 * j] = even[j];
            pairs[2 * j + 1] = odd[j];
        }
        if w % 2 == 1 {
            row[w - 1] = y[2 * r * n + i * tl.tw + half];
        }
    }
}

/// The epilogue on one output plane, while it is in cache: `relu?(out + bias + skip)`. The sum's ReLU keeps a NaN
/// as the residual block's own sum does (`max` would turn it into zero and hide a diverged run).
#[inline(always)]
fn finish<T: Float>(out: &mut [T], bias: Option<T>, skip: Option<&[T]>, relu: bool) {
    let (b, zero) = (bias.unwrap_or(T::zero()), T::zero());
    let keep_nan_relu = |v: T| if v < zero { zero } else { v };
    match (skip, relu) {
        (Some(s), true) => out.iter_mut().zip(s).for_each(|(o, &s)| *o = keep_nan_relu(*o + b + s)),
        (Some(s), false) => out.iter_mut().zip(s).for_each(|(o, &s)| *o = *o + b + s),
        (None, true) => out.iter_mut().for_each(|o| *o = (*o + b).max(zero)),
        (None, false) if bias.is_some() => out.iter_mut().for_each(|o| *o += b),
        (None, false) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition: `y[k][oy][ox] = sum_c sum_ky sum_kx w[k][c][ky][kx] x[c][oy + ky - 1][ox + kx - 1]`.
    fn direct(x: &[f64], [c, h, w]: [usize; 3], wt: &[f64], k: usize) -> Vec<f64> {
        let n = x.len() / (c * h * w);
        let mut y = vec![0.0; n * k * h * w];
        for b in 0..n {
            for ko in 0..k {
                for oy in 0..h {
                    for ox in 0..w {
                        let mut acc = 0.0;
                        for ci in 0..c {
                            for ky in 0..3 {
                                for kx in 0..3 {
                                    let (iy, ix) = (oy + ky, ox + kx);
                                    if (1..=h).contains(&iy) && (1..=w).contains(&ix) {
                                        acc += wt[((ko * c + ci) * 3 + ky) * 3 + kx]
                                            * x[((b * c + ci) * h + iy - 1) * w + ix - 1];
                                    }
                                }
                            }
                        }
                        y[((b * k + ko) * h + oy) * w + ox] = acc;
                    }
                }
            }
        }
        y
    }

    fn values(n: usize, seed: u64) -> Vec<f64> {
        (0..n).map(|i| (((i as u64 * 2654435761 + seed * 97) % 1000) as f64 / 500.0) - 1.0).collect()
    }

    #[test]
    fn equals_the_definition_for_even_odd_and_tiny_planes() {
        // The last is wide (more than 64 x 64 channels): groups of 12 images here, the last one short.
        for (n, c, k, h, w) in [
            (2, 3, 4, 6, 6),
            (1, 2, 3, 5, 7),
            (3, 4, 2, 1, 1),
            (2, 16, 16, 8, 8),
            (1, 1, 1, 3, 2),
            (3, 5, 8, 5, 7),
            (30, 72, 64, 7, 7),
        ] {
            let x = values(n * c * h * w, 1);
            let wt = values(k * c * 9, 2);
            let mut y = vec![f64::NAN; n * k * h * w];
            conv(&x, [c, h, w], &weights(&wt, k, c), k, &mut y, Epilogue::NONE);
            let want = direct(&x, [c, h, w], &wt, k);
            let worst = y.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            assert!(worst < 1e-12, "{n}x{c}x{h}x{w} -> {k}: off by {worst}");
            // With a bias and the ReLU.
            let (bias, mut r) = (values(k, 3), vec![0.0; y.len()]);
            conv(&x, [c, h, w], &weights(&wt, k, c), k, &mut r, Epilogue { bias: Some(&bias), skip: None, relu: true });
            for (plane, (got, want)) in r.chunks(h * w).zip(want.chunks(h * w)).enumerate() {
                let b = bias[plane % k];
                assert!(got.iter().zip(want).all(|(a, v)| (a - (v + b).max(0.0)).abs() < 1e-12), "{n}x{c}x{h}x{w}");
            }
            // A residual block's end: bias, the shortcut, then the ReLU.
            let skip = values(y.len(), 4);
            conv(
                &x,
                [c, h, w],
                &weights(&wt, k, c),
                k,
                &mut r,
                Epilogue { bias: Some(&bias), skip: Some(&skip), relu: true },
            );
            for (i, (got, want)) in r.iter().zip(&want).enumerate() {
                let expect = (want + bias[i / (h * w) % k] + skip[i]).max(0.0);
                assert!((got - expect).abs() < 1e-12, "{n}x{c}x{h}x{w} with a skip: {got} against {expect}");
            }
        }
    }

    #[test]
    fn the_f32_kernels_agree_with_the_definition() {
        // f32 with K a multiple of 8 takes the vector micro-kernel (a wide conv, the last, the `gemm` crate); the
        // reference is the f64 definition.
        for (n, c, k, h, w) in [(3, 16, 16, 8, 8), (2, 5, 8, 7, 9), (1, 32, 24, 4, 4), (3, 64, 80, 9, 9)] {
            let (x, wt) = (values(n * c * h * w, 6), values(k * c * 9, 7));
            let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let wf: Vec<f32> = wt.iter().map(|&v| v as f32).collect();
            let mut y = vec![f32::NAN; n * k * h * w];
            conv(&xf, [c, h, w], &weights(&wf, k, c), k, &mut y, Epilogue::NONE);
            let want = direct(&x, [c, h, w], &wt, k);
            let worst = y.iter().zip(&want).map(|(&a, b)| (a as f64 - b).abs()).fold(0.0, f64::max);
            assert!(worst < 1e-4, "{n}x{c}x{h}x{w} -> {k}: off by {worst}");
        }
    }

    #[test]
    fn both_register_plans_equal_the_general_products() {
        // The micro-kernel's blocks of 8 (AVX-512) and of 6 and 4 (AVX2) output channels, run here with one-lane
        // vectors (the index arithmetic is the same at every width), against the `gemm` crate's products; K of 8
        // to 32 takes every mix of sixes and fours.
        // Rows and positions strided as `conv` lays them out; the gaps are left untouched.
        let (c, t) = (5, 32);
        let ts = row_stride(t);
        let strides = |k: usize| [ts, position_stride(c, ts, 32), position_stride(k, ts, 32)];
        let blocks = |v: &[f32], u: &[f32], k: usize, wide: bool| -> Vec<f32> {
            let [ts, vs, ms] = strides(k);
            let mut m = vec![f32::NAN; 16 * ms];
            products_blocks(pulp::Scalar::new(), Products { v, u, m: &mut m, c, k, t, ts, vs, ms }, wide);
            m
        };
        for k in [8, 16, 24, 32] {
            // Two vectors of AVX-512's lanes: a whole number of micro-kernel steps at every width.
            let [_, vs, ms] = strides(k);
            let v: Vec<f32> = values(16 * vs, 8).iter().map(|&a| a as f32).collect();
            let u: Vec<f32> = values(16 * c * k, 9).iter().map(|&a| a as f32).collect();
            let mut want = vec![f32::NAN; 16 * ms];
            products_gemm(&v, &u, &mut want, [c, k, t], strides(k));
            for (plan, m) in [("8", blocks(&v, &u, k, true)), ("6 and 4", blocks(&v, &u, k, false))] {
                let used = |p: &[f32]| p[..k * ts].chunks(ts).flat_map(|row| row[..t].to_vec()).collect::<Vec<f32>>();
                let pairs = m.chunks(ms).zip(want.chunks(ms)).flat_map(|(a, b)| used(a).into_iter().zip(used(b)));
                let worst =
                    pairs.map(|(a, b)| (a - b).abs()).fold(0f32, |w, d| if d.is_nan() { f32::MAX } else { w.max(d) });
                assert!(worst < 1e-5, "K = {k}, blocks of {plan}: off by {worst}");
            }
        }
    }

    #[test]
    fn input_gradient_weights_give_the_transposed_convolution() {
        // <conv(x), dy> = <x, conv_T(dy)> for every x and dy: the adjoint identity.
        let (c, k, h, w) = (3, 5, 6, 5);
        let (x, dy, wt) = (values(c * h * w, 3), values(k * h * w, 4), values(k * c * 9, 5));
        let y = direct(&x, [c, h, w], &wt, k);
        let mut dx = vec![0.0; c * h * w];
        conv(&dy, [k, h, w], &input_grad_weights(&wt, k, c), c, &mut dx, Epilogue::NONE);
        let lhs: f64 = y.iter().zip(&dy).map(|(a, b)| a * b).sum();
        let rhs: f64 = x.iter().zip(&dx).map(|(a, b)| a * b).sum();
        assert!((lhs - rhs).abs() < 1e-10 * lhs.abs().max(1.0), "{lhs} vs {rhs}");
    }
}
