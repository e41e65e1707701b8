//! CONV: 2-D convolution (square kernel, stride, zero padding, groups incl. depthwise), lowered to GEMM.
//!
//! Each core takes a contiguous slice of the batch and runs single-threaded GEMMs on one image's column matrix
//! at a time: the columns stay in L2, which measured 2-4x faster per core than one whole-batch GEMM
//! (PERF-NOTES.md). Buffers come from the tensor pool, so steady-state training allocates nothing here.

use super::{expect_rank, join, ChannelAffine, Infer, Layer, Mode, Param, ParamKind, ParamVisitor};
use crate::init::Init;
use crate::kernels::gemm::{matmul, matmul_strided, Mat};
use crate::kernels::im2col::{col2im, col2im_pitched, im2col, im2col_pitched, Geometry};
use crate::kernels::threads;
use crate::kernels::{depthwise, filter_grad, reduce, simd, strided_conv, winograd, winograd_filter_grad};
use crate::tensor::{Float, Tensor};
use crate::{Error, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

mod batch_wide;

/// Whether 3x3 stride-1 convolutions go through Winograd's F(2x2, 3x3) (`kernels/winograd.rs`) for their forward
/// pass and their input gradient (measured in ARCHITECTURE.md, "Winograd"). Tests run both paths.
const WINOGRAD: bool = true;

/// Convs wider than Winograd's micro-kernel (`winograd::is_wide`) take Winograd only where its transformed filter
/// (16 C K values, made at every call and packed for every group of tiles: 1.8x the filter) is small against the work:
/// up to 256 x 256 channels, maps of at least 7x7 and a call of at least 2048 tiles. Measured on two Zen 3 cores,
/// forward: 512 images, 256 -> 256 on 7x7 179 against 216 ms for im2col, 64 -> 256 on 15x15 157 against 213; 16
/// images, 128 -> 128 on 28x28 14.7 against 23.4 ms, but 512 -> 512 on 7x7 (320 tiles) 50 against 24; on 3x3 maps
/// (airbench's last conv) the 2x2 tiles cover 4x4 and im2col was 1.5x faster (one core).
const WINOGRAD_WIDE_MAX_CHANNEL_PAIRS: usize = 256 * 256;
const WINOGRAD_WIDE_MIN_SIDE: usize = 7;
const WINOGRAD_WIDE_MIN_TILES: usize = 2048;

/// Columns per GEMM below which images are stacked side by side into one product. Small output maps (airbench's
/// 7x7 and 3x3, the ResNets' 8x8) make per-image products short, and dW's then re-reads and re-writes its whole
/// accumulator (2.4 MB at 256 x 256 channels) for a few dozen columns per image.
const STACK_COLUMNS: usize = 256;

/// A conv's backward products span the batch (`conv/batch_wide.rs`) when a core's slice of the batch has fewer
/// output columns than this many times its output channels. resnet18 at batch 16 (Zen 3, 2 threads, 3 alternating
/// rounds) trains at 11.9 img/s with it, 9.1 without; 16 rather than 1 also takes the 128- and 256-channel layers
/// on 28x28 and 14x14 (their backward 20-25% faster in one profile). Winograd's layers (up to 64 x 64 channels)
/// stay per slice: their backward measured 35% slower batch-wide on resnet20.
const BATCH_WIDE: usize = 16;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conv2dConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: usize,
    /// Default 1.
    pub stride: usize,
    /// Zero padding on every side; default 0.
    pub padding: usize,
    /// Default 1; `groups == in_channels == out_channels` is a depthwise convolution.
    pub groups: usize,
    /// Default true; convs followed by batch norm usually drop it.
    pub bias: bool,
    /// Default He normal (fan_in = in_channels/groups * kernel^2), biases zero.
    pub init: Init,
    /// Apply ReLU to the output while it is still in cache (CONV-RELU in one layer); default false.
    #[serde(default)]
    pub relu: bool,
}

impl Conv2dConfig {
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize) -> Self {
        Conv2dConfig {
            in_channels,
            out_channels,
            kernel,
            stride: 1,
            padding: 0,
            groups: 1,
            bias: true,
            init: Init::HeNormal,
            relu: false,
        }
    }
    /// Fuses the ReLU that follows this conv.
    pub fn relu(mut self) -> Self {
        self.relu = true;
        self
    }
    pub fn stride(mut self, s: usize) -> Self {
        self.stride = s;
        self
    }
    pub fn padding(mut self, p: usize) -> Self {
        self.padding = p;
        self
    }
    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }
    pub fn bias(mut self, b: bool) -> Self {
        self.bias = b;
        self
    }
    pub fn init(mut self, i: Init) -> Self {
        self.init = i;
        self
    }

    pub fn build<T: Float>(&self, rng: &mut impl rand::Rng) -> Result<Conv2d<T>> {
        let c = self;
        if c.kernel == 0 || c.stride == 0 || c.groups == 0 {
            return Err(Error::Config(format!("conv: kernel, stride and groups must be positive, got {c:?}")));
        }
        if c.in_channels % c.groups != 0 || c.out_channels % c.groups != 0 {
            return Err(Error::Config(format!(
                "conv: groups={} must divide in_channels={} and out_channels={}",
                c.groups, c.in_channels, c.out_channels
            )));
        }
        let cin_g = c.in_channels / c.groups;
        let area = c.kernel * c.kernel;
        let shape = [c.out_channels, cin_g, c.kernel, c.kernel];
        let weight =
            Param::new(c.init.tensor(&shape, cin_g * area, c.out_channels / c.groups * area, rng), ParamKind::Weight);
        let bias = c.bias.then(|| Param::new(Tensor::zeros(&[c.out_channels]), ParamKind::Bias));
        Ok(Conv2d {
            cfg: c.clone(),
            weight,
            bias,
            skip_dx: false,
            winograd: WINOGRAD,
            stack_columns: STACK_COLUMNS,
            batch_wide: BATCH_WIDE,
            direct_dw: true,
            direct_strided: true,
        })
    }
}

pub struct Conv2d<T: Float> {
    pub cfg: Conv2dConfig,
    /// `[out_channels, in_channels/groups, k, k]`, PyTorch's layout.
    pub weight: Param<T>,
    pub bias: Option<Param<T>>,
    skip_dx: bool,
    /// Take the Winograd path where the geometry allows (`WINOGRAD` by default; tests run both).
    winograd: bool,
    /// `STACK_COLUMNS` by default; tests also run 0 (never stack).
    stack_columns: usize,
    /// `BATCH_WIDE` by default; tests run 0 (never) and a large value (always, where the geometry allows).
    batch_wide: usize,
    /// dW of 3x3 convs without im2col where a kernel applies (f32): `kernels::winograd_filter_grad` where Winograd
    /// runs the forward pass, else `kernels::filter_grad` (K a multiple of 16, a gradient that fits L2); tests turn
    /// it off to compare with im2col.
    direct_dw: bool,
    /// The forward pass of 3x3 stride-2 convs through `kernels::strided_conv` where it applies (f32); tests turn it
    /// off to compare with im2col.
    direct_strided: bool,
}

/// The gradient through a fused ReLU: `dy` where the output `y` is positive, else zero, written to `out`.
fn relu_gate<'a, T: Float>(dy: &[T], y: &[T], out: &'a mut [T]) -> &'a [T] {
    for ((o, &d), &v) in out.iter_mut().zip(dy).zip(y) {
        *o = if v > T::zero() { d } else { T::zero() };
    }
    out
}

/// Images per task: a few tasks per core, so a core slowed by a neighbour does not hold up the step.
fn batch_chunk(b: usize) -> usize {
    b.div_ceil(4 * threads()).max(1)
}

impl<T: Float> Conv2d<T> {
    /// One input channel per output channel: the plane-by-plane kernel, not im2col + GEMM.
    fn is_depthwise(&self) -> bool {
        let c = &self.cfg;
        c.groups > 1 && c.groups == c.in_channels && c.groups == c.out_channels
    }

    fn forward_depthwise(&self, x: &Tensor<T>, oshape: &[usize]) -> Tensor<T> {
        let g = Geometry { c: 1, ..self.geometry(x.shape()) };
        let c = self.cfg.in_channels;
        let (w, bias, relu) = (self.weight.value.data(), self.bias.as_ref().map(|p| p.value.data()), self.cfg.relu);
        let k = g.kh * g.kw;
        let mut y = Tensor::uninit(oshape);
        let per_out = oshape[2] * oshape[3];
        y.data_mut().par_chunks_mut(per_out).zip(x.data().par_chunks(g.h * g.w)).enumerate().for_each_init(
            Vec::new,
            |scratch, (i, (yp, xp))| {
                let ch = i % c;
                simd(|| depthwise::forward(&g, xp, &w[ch * k..][..k], yp, scratch));
                if let Some(b) = bias {
                    yp.iter_mut().for_each(|v| *v += b[ch]);
                }
                if relu {
                    yp.iter_mut().for_each(|v| *v = v.max(T::zero()));
                }
            },
        );
        y
    }

    fn backward_depthwise(&mut self, x: &Tensor<T>, y: &Tensor<T>, dy: &Tensor<T>) -> Tensor<T> {
        let g = Geometry { c: 1, ..self.geometry(x.shape()) };
        let c = self.cfg.in_channels;
        let k = g.kh * g.kw;
        let per_out = dy.shape()[2] * dy.shape()[3];
        let (relu, skip_dx, has_bias) = (self.cfg.relu, self.skip_dx, self.bias.is_some());
        let w = self.weight.value.data();
        // Every plane of dx is overwritten.
        let mut dx = Tensor::uninit(if skip_dx { &[0] } else { x.shape() });
        let planes = x.len() / (g.h * g.w);
        // Each plane's dW (k values) and db, summed per channel after.
        let mut partial = vec![T::zero(); planes * (k + 1)];
        let dx_planes: Vec<Option<&mut [T]>> = if skip_dx {
            (0..planes).map(|_| None).collect()
        } else {
            dx.data_mut().chunks_mut(g.h * g.w).map(Some).collect()
        };
        partial.par_chunks_mut(k + 1).zip(dx_planes).enumerate().for_each_init(
            Vec::new,
            |scratch, (i, (part, dxp))| {
                let ch = i % c;
                let (xp, dyp, yp) = (
                    &x.data()[i * g.h * g.w..][..g.h * g.w],
                    &dy.data()[i * per_out..][..per_out],
                    &y.data()[i * per_out..][..per_out],
                );
                let gated: Vec<T>;
                let dyp = if relu {
                    gated = dyp.iter().zip(yp).map(|(&d, &v)| if v > T::zero() { d } else { T::zero() }).collect();
                    &gated[..]
                } else {
                    dyp
                };
                let (dw, db) = part.split_at_mut(k);
                simd(|| depthwise::backward(&g, xp, &w[ch * k..][..k], dyp, dw, dxp, scratch));
                if has_bias {
                    db[0] = reduce::sum(dyp);
                }
            },
        );
        let frozen_w = self.weight.frozen;
        for (i, part) in partial.chunks(k + 1).enumerate() {
            let ch = i % c;
            if !frozen_w {
                for (a, &v) in self.weight.grad.data_mut()[ch * k..][..k].iter_mut().zip(&part[..k]) {
                    *a += v;
                }
            }
            if let Some(b) = self.bias.as_mut().filter(|p| !p.frozen) {
                b.grad.data_mut()[ch] += part[k];
            }
        }
        if skip_dx {
            Tensor::zeros(x.shape())
        } else {
            dx
        }
    }

    /// A 3x3 stride-1 "same" convolution without groups: Winograd's F(2x2, 3x3) computes its forward pass (a bias
    /// is added in the output transform), its input gradient and, where `winograd_filter_grad::applies` (up to
    /// 64 x 128 channels), its filter gradient. `x` is the input's shape, `[n, c, h, w]`.
    fn has_winograd_geometry(&self, x: &[usize]) -> bool {
        let c = &self.cfg;
        let [n, _, h, w] = x[..] else { return false };
        let wide_pays = || {
            c.in_channels * c.out_channels <= WINOGRAD_WIDE_MAX_CHANNEL_PAIRS
                && h.min(w) >= WINOGRAD_WIDE_MIN_SIDE
                && n * h.div_ceil(2) * w.div_ceil(2) >= WINOGRAD_WIDE_MIN_TILES
        };
        self.winograd
            && c.kernel == 3
            && c.stride == 1
            && c.padding == 1
            && c.groups == 1
            && (!winograd::is_wide(c.in_channels, c.out_channels) || wide_pays())
    }

    /// The forward pass through Winograd's kernel; with `skip`, a residual block's sum (`skip` added after the
    /// bias, then this conv's ReLU) in the same pass.
    fn forward_winograd(&self, x: &Tensor<T>, oshape: &[usize], skip: Option<&Tensor<T>>) -> Tensor<T> {
        let (cin, cout, hw) = (self.cfg.in_channels, self.cfg.out_channels, [x.shape()[2], x.shape()[3]]);
        let u = winograd::weights(self.weight.value.data(), cout, cin);
        let bias = self.bias.as_ref().map(|b| b.value.data());
        let (per_in, per_out) = (cin * hw[0] * hw[1], cout * hw[0] * hw[1]);
        let chunk = batch_chunk(x.batch());
        let mut y = Tensor::uninit(oshape);
        y.data_mut().par_chunks_mut(chunk * per_out).zip(x.data().par_chunks(chunk * per_in)).enumerate().for_each(
            |(i, (yc, xc))| {
                let skip = skip.map(|s| &s.data()[i * chunk * per_out..][..yc.len()]);
                let after = winograd::Epilogue { bias, skip, relu: self.cfg.relu };
                winograd::conv(xc, [cin, hw[0], hw[1]], &u, cout, yc, after)
            },
        );
        y
    }

    /// A 3x3 stride-2 conv with padding 1 and no groups whose forward pass `kernels::strided_conv` takes.
    fn takes_direct_strided(&self, x: &[usize]) -> bool {
        let c = &self.cfg;
        self.direct_strided
            && (c.kernel, c.stride, c.padding, c.groups) == (3, 2, 1, 1)
            && strided_conv::applies::<T>(c.out_channels, [x[2], x[3]])
    }

    /// The forward pass through `kernels::strided_conv`, a slice of the batch per task.
    fn forward_strided(&self, x: &Tensor<T>, oshape: &[usize]) -> Tensor<T> {
        let (cin, cout, hw) = (self.cfg.in_channels, self.cfg.out_channels, [x.shape()[2], x.shape()[3]]);
        fn as32<T: Float>(t: &Tensor<T>) -> &[f32] {
            T::as_f32(t.data()).expect("strided_conv applies to f32 only")
        }
        let wt = strided_conv::weights(as32(&self.weight.value), cout, cin);
        let bias = self.bias.as_ref().map(|b| as32(&b.value));
        let (per_in, per_out) = (cin * hw[0] * hw[1], cout * oshape[2] * oshape[3]);
        let chunk = batch_chunk(x.batch());
        let mut y = Tensor::uninit(oshape);
        let y32 = T::as_f32_mut(y.data_mut()).expect("f32");
        y32.par_chunks_mut(chunk * per_out)
            .zip(as32(x).par_chunks(chunk * per_in))
            .for_each(|(yc, xc)| strided_conv::conv(xc, [cin, hw[0], hw[1]], &wt, cout, yc, bias, self.cfg.relu));
        y
    }

    /// How many images share one GEMM: 1, or enough for `STACK_COLUMNS` columns when the maps are small.
    fn images_per_gemm(&self, g: &Geometry, n: usize) -> usize {
        if self.cfg.groups == 1 && g.stacks() && n < self.stack_columns {
            self.stack_columns.div_ceil(n)
        } else {
            1
        }
    }

    /// The forward pass of a slice of images, `stack` at a time: their column matrices side by side, one GEMM,
    /// then each image's output rows copied out of the product (with the bias and the fused ReLU).
    fn forward_stacked(&self, g: &Geometry, xc: &[T], yc: &mut [T], n: usize, stack: usize) {
        let (cout, kdim) = (self.cfg.out_channels, g.c * g.kh * g.kw);
        let (per_in, per_out) = (g.c * g.h * g.w, cout * n);
        let (w, bias, relu) = (self.weight.value.data(), self.bias.as_ref().map(|p| p.value.data()), self.cfg.relu);
        let pool = T::pool();
        let (mut cols, mut prod) = (pool.take(kdim * stack * n), pool.take(cout * stack * n));
        for (ys, xs) in yc.chunks_mut(stack * per_out).zip(xc.chunks(stack * per_in)) {
            let pitch = xs.len() / per_in * n;
            for (j, xi) in xs.chunks(per_in).enumerate() {
                im2col_pitched(g, xi, &mut cols[j * n..], pitch);
            }
            matmul(Mat::new(w, cout, kdim), Mat::new(&cols, kdim, pitch), &mut prod, false, 1);
            for (j, yi) in ys.chunks_mut(per_out).enumerate() {
                for (co, row) in yi.chunks_mut(n).enumerate() {
                    let b = bias.map_or(T::zero(), |b| b[co]);
                    for (o, &v) in row.iter_mut().zip(&prod[co * pitch + j * n..][..n]) {
                        *o = if relu { (v + b).max(T::zero()) } else { v + b };
                    }
                }
            }
        }
        pool.give(cols);
        pool.give(prod);
    }

    /// The backward pass of a slice of images, `stack` at a time: their output gradients side by side (through
    /// the fused ReLU's gate), then one GEMM each for dW (accumulated transposed, as in `backward`) and, unless
    /// Winograd computed it already, dX's columns.
    #[allow(clippy::too_many_arguments)]
    fn backward_stacked(
        &self,
        g: &Geometry,
        [xc, dyc, yc]: [&[T]; 3],
        dxc: &mut [T],
        dw: &mut [T],
        db: &mut [T],
        n: usize,
        stack: usize,
        want_dx: bool,
    ) {
        let (cout, kdim) = (self.cfg.out_channels, g.c * g.kh * g.kw);
        let (per_in, per_out) = (g.c * g.h * g.w, cout * n);
        let w = self.weight.value.data();
        let pool = T::pool();
        let (mut cols, mut dys) = (pool.take(kdim * stack * n), pool.take(cout * stack * n));
        let images = xc.len() / per_in;
        for first in (0..images).step_by(stack) {
            let m = stack.min(images - first);
            let pitch = m * n;
            for j in 0..m {
                let at = (first + j) * per_out;
                for co in 0..cout {
                    let (dst, d) = (&mut dys[co * pitch + j * n..][..n], &dyc[at + co * n..][..n]);
                    if self.cfg.relu {
                        relu_gate(d, &yc[at + co * n..][..n], dst);
                    } else {
                        dst.copy_from_slice(d);
                    }
                }
            }
            for (d, row) in db.iter_mut().zip(dys.chunks(pitch)) {
                *d += row.iter().copied().sum::<T>();
            }
            let dy_mat = Mat::new(&dys, cout, pitch);
            if !dw.is_empty() {
                for j in 0..m {
                    im2col_pitched(g, &xc[(first + j) * per_in..][..per_in], &mut cols[j * n..], pitch);
                }
                matmul_strided(dy_mat, Mat::new(&cols, kdim, pitch).t(), dw, 1, cout as isize, true, 1);
            }
            if want_dx {
                matmul(Mat::new(w, cout, kdim).t(), dy_mat, &mut cols, false, 1);
                for j in 0..m {
                    col2im_pitched(g, &cols[j * n..], &mut dxc[(first + j) * per_in..][..per_in], pitch);
                }
            }
        }
        pool.give(cols);
        pool.give(dys);
    }

    fn geometry(&self, x: &[usize]) -> Geometry {
        let c = &self.cfg;
        Geometry {
            c: c.in_channels / c.groups,
            h: x[2],
            w: x[3],
            kh: c.kernel,
            kw: c.kernel,
            stride: c.stride,
            pad: c.padding,
        }
    }

    /// This conv followed by `after`: each output channel's kernel times its scale, its bias
    /// `scale * bias + shift`, and `after`'s ReLU fused. A layer of its own, so this one's parameters stay as
    /// they are (training may go on after an evaluation).
    fn folded(&self, after: &ChannelAffine<T>) -> Conv2d<T> {
        let per_kernel = self.weight.value.len() / self.cfg.out_channels;
        let mut w = self.weight.value.clone();
        for (kernel, &s) in w.data_mut().chunks_mut(per_kernel).zip(&after.scale) {
            kernel.iter_mut().for_each(|v| *v *= s);
        }
        let own = self.bias.as_ref().map(|b| b.value.data());
        let b: Vec<T> = (after.scale.iter().zip(&after.shift).enumerate())
            .map(|(ch, (&s, &t))| own.map_or(T::zero(), |b| b[ch]) * s + t)
            .collect();
        Conv2d {
            cfg: Conv2dConfig { relu: after.relu, bias: true, ..self.cfg.clone() },
            weight: Param::new(w, ParamKind::Weight),
            bias: Some(Param::new(Tensor::from_vec(&[b.len()], b), ParamKind::Bias)),
            ..*self
        }
    }
}

/// The forward pass: the same in every mode (a conv keeps nothing for backward).
impl<T: Float> Infer<T> for Conv2d<T> {
    fn infer(&self, x: &Tensor<T>) -> Tensor<T> {
        let oshape = self.output_shape(x.shape()).expect("conv input shape (checked when the network was built)");
        if self.is_depthwise() {
            return self.forward_depthwise(x, &oshape);
        }
        if self.has_winograd_geometry(x.shape()) {
            return self.forward_winograd(x, &oshape, None);
        }
        if self.takes_direct_strided(x.shape()) {
            return self.forward_strided(x, &oshape);
        }
        let g = self.geometry(x.shape());
        let (b, groups) = (x.batch(), self.cfg.groups);
        let cout_g = self.cfg.out_channels / groups;
        let n = oshape[2] * oshape[3];
        let kdim = g.c * g.kh * g.kw;
        let (per_in, per_out) = (x.len() / b.max(1), oshape[1] * n);
        let chunk = batch_chunk(b);
        let w = self.weight.value.data();
        let bias = self.bias.as_ref().map(|p| p.value.data());
        let relu = self.cfg.relu;
        let mut y = Tensor::uninit(&oshape);
        let stack = self.images_per_gemm(&g, n);
        y.data_mut().par_chunks_mut(chunk * per_out).zip(x.data().par_chunks(chunk * per_in)).for_each(|(yc, xc)| {
            if stack > 1 {
                return self.forward_stacked(&g, xc, yc, n, stack);
            }
            let mut cols = if g.is_pointwise() { Vec::new() } else { T::pool().take(g.buffer_len()) };
            for (yi, xi) in yc.chunks_mut(per_out).zip(xc.chunks(per_in)) {
                for grp in 0..groups {
                    let xg = &xi[grp * g.c * g.h * g.w..][..g.c * g.h * g.w];
                    let src: &[T] = if g.is_pointwise() {
                        xg
                    } else {
                        im2col(&g, xg, &mut cols);
                        &cols
                    };
                    let yg = &mut yi[grp * cout_g * n..][..cout_g * n];
                    if let Some(bias) = bias {
                        for (row, &bv) in yg.chunks_mut(n).zip(&bias[grp * cout_g..]) {
                            row.fill(bv);
                        }
                    }
                    let wg = &w[grp * cout_g * kdim..][..cout_g * kdim];
                    matmul(Mat::new(wg, cout_g, kdim), Mat::new(src, kdim, n), yg, bias.is_some(), 1);
                }
                if relu {
                    for v in yi.iter_mut() {
                        *v = v.max(T::zero());
                    }
                }
            }
            T::pool().give(cols);
        });
        y
    }
}

impl<T: Float> Layer<T> for Conv2d<T> {
    fn describe(&self) -> String {
        let c = &self.cfg;
        let g = if c.groups == 1 {
            String::new()
        } else if c.groups == c.in_channels {
            ", depthwise".into()
        } else {
            format!(", groups {}", c.groups)
        };
        let r = if c.relu { "+relu" } else { "" };
        format!("conv{k}x{k}({}->{}, s{}, p{}{g}){r}", c.in_channels, c.out_channels, c.stride, c.padding, k = c.kernel)
    }

    fn output_shape(&self, x: &[usize]) -> Result<Vec<usize>> {
        expect_rank("conv", x, 4)?;
        let c = &self.cfg;
        if x[1] != c.in_channels {
            return Err(Error::Shape(format!(
                "{} expects {} input channels, got shape {x:?}",
                self.describe(),
                c.in_channels
            )));
        }
        if x[2] + 2 * c.padding < c.kernel || x[3] + 2 * c.padding < c.kernel {
            return Err(Error::Shape(format!("{}: input {x:?} is smaller than the kernel", self.describe())));
        }
        let (ho, wo) = self.geometry(x).out_hw();
        Ok(vec![x[0], c.out_channels, ho, wo])
    }

    fn forward_folded(&self, x: &Tensor<T>, after: &ChannelAffine<T>) -> Option<Tensor<T>> {
        // A ReLU of its own already stands between this conv and `after`.
        if self.cfg.relu || after.scale.len() != self.cfg.out_channels {
            return None;
        }
        Some(self.folded(after).infer(x))
    }

    fn forward_folded_skip(
        &self,
        x: &Tensor<T>,
        after: &ChannelAffine<T>,
        skip: &Tensor<T>,
        relu: bool,
    ) -> Option<Tensor<T>> {
        // Only Winograd's output transform takes the sum; the ReLU has to come after it.
        let oshape = self.output_shape(x.shape()).ok()?;
        let fits = !self.cfg.relu && !after.relu && after.scale.len() == self.cfg.out_channels;
        if !fits || skip.shape() != oshape || !self.has_winograd_geometry(x.shape()) {
            return None;
        }
        let mut folded = self.folded(after);
        folded.cfg.relu = relu;
        Some(folded.forward_winograd(x, &oshape, Some(skip)))
    }

    fn forward(&mut self, x: &Tensor<T>, _mode: Mode) -> Tensor<T> {
        self.infer(x)
    }

    fn as_infer(&self) -> Option<&dyn Infer<T>> {
        Some(self)
    }

    fn backward(&mut self, x: &Tensor<T>, y: &Tensor<T>, dy: &Tensor<T>) -> Tensor<T> {
        if self.is_depthwise() {
            return self.backward_depthwise(x, y, dy);
        }
        let g = self.geometry(x.shape());
        let (b, groups) = (x.batch(), self.cfg.groups);
        let cout = self.cfg.out_channels;
        let cout_g = cout / groups;
        let n = dy.shape()[2] * dy.shape()[3];
        let kdim = g.c * g.kh * g.kw;
        let (per_in, per_out) = (x.len() / b.max(1), cout * n);
        let chunk = batch_chunk(b);
        let w = self.weight.value.data();
        let (want_dw, want_db) = (!self.weight.frozen, self.bias.as_ref().is_some_and(|p| !p.frozen));
        let skip_dx = self.skip_dx;
        let relu = self.cfg.relu;
        let mut dx = if skip_dx { Tensor::zeros(x.shape()) } else { Tensor::uninit(x.shape()) };
        if self.is_batch_wide(x.shape(), &g, n, chunk) {
            self.backward_batch_wide(&g, [x, dy, y], &mut dx);
            return dx;
        }
        // dX of a Winograd conv is itself one, a chunk of images at a time. dW comes from `winograd_filter_grad` or
        // `filter_grad` where they apply, else from im2col.
        let wino_geometry = self.has_winograd_geometry(x.shape());
        let wino = wino_geometry && !skip_dx;
        let u_dx = if wino { winograd::input_grad_weights(w, cout, g.c) } else { Vec::new() };
        // Where Winograd computes the forward pass, its transforms give dW in 4/9 of the direct kernel's multiplies.
        let wino_dw = self.direct_dw && want_dw && wino_geometry && winograd_filter_grad::applies::<T>(g.c, cout);
        let direct_dw = wino_dw || (self.direct_dw && want_dw && groups == 1 && filter_grad::applies::<T>(&g, cout));
        let stack = self.images_per_gemm(&g, n);
        // Each slice of the batch accumulates its own dW and db; they are summed after.
        let partials: Vec<(Vec<T>, Vec<T>)> = dx
            .data_mut()
            .par_chunks_mut(chunk * per_in)
            .zip(x.data().par_chunks(chunk * per_in))
            .zip(dy.data().par_chunks(chunk * per_out))
            .zip(y.data().par_chunks(chunk * per_out))
            .map(|(((dxc, xc), dyc), yc)| {
                let mut dw = if want_dw { T::pool().take_zeroed(w.len()) } else { Vec::new() };
                let mut db = vec![T::zero(); if want_db { cout } else { 0 }];
                // What is left for im2col after the kernels that take the slice whole.
                let (im2col_dw, im2col_dx) = (want_dw && !direct_dw, !skip_dx && !wino);
                let whole = wino || direct_dw || !(im2col_dw || im2col_dx);
                // Through a fused ReLU, the output gradient is gated once for the whole slice when those kernels
                // take it.
                let mut all = if relu && whole { T::pool().take(dyc.len()) } else { Vec::new() };
                let dy_all = if all.is_empty() { dyc } else { relu_gate(dyc, yc, &mut all) };
                if wino {
                    // dX of the whole slice at once, so that the products see many tiles.
                    winograd::conv(dy_all, [cout, g.h, g.w], &u_dx, g.c, dxc, winograd::Epilogue::NONE);
                }
                if direct_dw {
                    let f32s = (T::as_f32(xc), T::as_f32(dy_all), T::as_f32_mut(&mut dw));
                    let (Some(x32), Some(dy32), Some(dw32)) = f32s else {
                        unreachable!("the direct dW kernels apply to f32 only")
                    };
                    if wino_dw {
                        winograd_filter_grad::accumulate(x32, dy32, [g.c, g.h, g.w], cout, dw32);
                    } else {
                        filter_grad::accumulate(x32, dy32, &g, cout, dw32);
                    }
                }
                if !(im2col_dw || im2col_dx) {
                    // Only db is left: each channel's sum of the (gated) output gradient.
                    if want_db {
                        for (plane, rows) in dy_all.chunks(n).enumerate() {
                            db[plane % cout] += rows.iter().copied().sum::<T>();
                        }
                    }
                    T::pool().give(all);
                    return (dw, db);
                }
                T::pool().give(all);
                if stack > 1 {
                    let dw_here = if im2col_dw { &mut dw[..] } else { &mut [] };
                    self.backward_stacked(&g, [xc, dyc, yc], dxc, dw_here, &mut db, n, stack, im2col_dx);
                    return (dw, db);
                }
                let mut cols = if g.is_pointwise() { Vec::new() } else { T::pool().take(g.buffer_len()) };
                let mut gated = if relu { T::pool().take(per_out) } else { Vec::new() };
                for (((dxi, xi), dyi), yi) in
                    dxc.chunks_mut(per_in).zip(xc.chunks(per_in)).zip(dyc.chunks(per_out)).zip(yc.chunks(per_out))
                {
                    let dyi = if relu { relu_gate(dyi, yi, &mut gated) } else { dyi };
                    for grp in 0..groups {
                        let in_len = g.c * g.h * g.w;
                        let dyg = &dyi[grp * cout_g * n..][..cout_g * n];
                        if want_db {
                            for (d, row) in db[grp * cout_g..].iter_mut().zip(dyg.chunks(n)) {
                                *d += row.iter().copied().sum::<T>();
                            }
                        }
                        if im2col_dw {
                            let xg = &xi[grp * in_len..][..in_len];
                            let src: &[T] = if g.is_pointwise() {
                                xg
                            } else {
                                im2col(&g, xg, &mut cols);
                                &cols
                            };
                            // dW_g += dY_g . cols^T, accumulated transposed ([kdim x cout_g], column-major view)
                            // so that the GEMM reads the big column matrix in place instead of repacking it.
                            let dwg = &mut dw[grp * cout_g * kdim..][..cout_g * kdim];
                            matmul_strided(
                                Mat::new(dyg, cout_g, n),
                                Mat::new(src, kdim, n).t(),
                                dwg,
                                1,
                                cout_g as isize,
                                true,
                                1,
                            );
                        }
                        if im2col_dx {
                            // dcols = W_g^T . dY_g, then fold the columns back onto the image.
                            let wg = Mat::new(&w[grp * cout_g * kdim..][..cout_g * kdim], cout_g, kdim).t();
                            let dxg = &mut dxi[grp * in_len..][..in_len];
                            if g.is_pointwise() {
                                matmul(wg, Mat::new(dyg, cout_g, n), dxg, false, 1);
                            } else {
                                matmul(wg, Mat::new(dyg, cout_g, n), &mut cols, false, 1);
                                col2im(&g, &mut cols, dxg);
                            }
                        }
                    }
                }
                T::pool().give(cols);
                T::pool().give(gated);
                (dw, db)
            })
            .collect();
        for (dw, db) in partials {
            if want_dw {
                // Undo the per-group transpose of the accumulator.
                let grad = self.weight.grad.data_mut();
                for grp in 0..groups {
                    let off = grp * cout_g * kdim;
                    for co in 0..cout_g {
                        for kk in 0..kdim {
                            grad[off + co * kdim + kk] += dw[off + kk * cout_g + co];
                        }
                    }
                }
                T::pool().give(dw);
            }
            if let Some(p) = self.bias.as_mut().filter(|_| want_db) {
                for (a, &d) in p.grad.data_mut().iter_mut().zip(&db) {
                    *a += d;
                }
            }
        }
        dx
    }

    fn visit_params(&mut self, prefix: &str, f: &mut ParamVisitor<'_, T>) {
        f(&join(prefix, "weight"), &mut self.weight);
        if let Some(b) = &mut self.bias {
            f(&join(prefix, "bias"), b);
        }
    }

    fn skip_input_grad(&mut self, skip: bool) {
        self.skip_dx = skip;
    }

    fn macs(&self, x: &[usize]) -> u64 {
        let o = self.output_shape(x).unwrap_or_default();
        let per_out = (self.cfg.in_channels / self.cfg.groups * self.cfg.kernel * self.cfg.kernel) as u64;
        o.iter().product::<usize>() as u64 * per_out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::gradcheck::{check_layer, Options};
    use crate::init::rng;

    /// Direct (seven nested loops) convolution: the reference the GEMM path must match.
    fn reference(x: &Tensor<f64>, conv: &Conv2d<f64>) -> Vec<f64> {
        let c = &conv.cfg;
        let s = conv.output_shape(x.shape()).unwrap();
        let (cin_g, cout_g) = (c.in_channels / c.groups, c.out_channels / c.groups);
        let (h, w) = (x.shape()[2] as isize, x.shape()[3] as isize);
        let mut out = vec![0.0; s.iter().product()];
        let wt = conv.weight.value.data();
        let mut idx = 0;
        for b in 0..s[0] {
            for co in 0..s[1] {
                let grp = co / cout_g;
                for oh in 0..s[2] {
                    for ow in 0..s[3] {
                        let mut acc = conv.bias.as_ref().map_or(0.0, |p| p.value.data()[co]);
                        for ci in 0..cin_g {
                            for i in 0..c.kernel {
                                for j in 0..c.kernel {
                                    let ih = (oh * c.stride + i) as isize - c.padding as isize;
                                    let iw = (ow * c.stride + j) as isize - c.padding as isize;
                                    if ih >= 0 && iw >= 0 && ih < h && iw < w {
                                        let xi = ((b * c.in_channels + grp * cin_g + ci) as isize * h + ih) * w + iw;
                                        acc += x.data()[xi as usize]
                                            * wt[((co * cin_g + ci) * c.kernel + i) * c.kernel + j];
                                    }
                                }
                            }
                        }
                        out[idx] = acc;
                        idx += 1;
                    }
                }
            }
        }
        out
    }

    fn configs() -> Vec<Conv2dConfig> {
        vec![
            Conv2dConfig::new(3, 4, 3).padding(1),
            Conv2dConfig::new(2, 3, 3).stride(2).padding(1),
            Conv2dConfig::new(4, 6, 1).bias(false),
            Conv2dConfig::new(4, 6, 3).groups(2).padding(1),
            Conv2dConfig::new(4, 4, 3).groups(4).stride(2).padding(1),
            Conv2dConfig::new(3, 2, 5).stride(3).padding(2),
            Conv2dConfig::new(3, 5, 3),
            Conv2dConfig::new(2, 3, 5).padding(1),
            Conv2dConfig::new(3, 4, 3).padding(1).relu(),
            // Winograd's geometry (3x3, stride 1, padding 1, no bias), with and without the fused ReLU.
            Conv2dConfig::new(3, 4, 3).padding(1).bias(false),
            Conv2dConfig::new(4, 3, 3).padding(1).bias(false).relu(),
            // The depthwise kernel: stride 1 with a fused ReLU, and a large stride without padding.
            Conv2dConfig::new(3, 3, 3).groups(3).padding(1).bias(false).relu(),
            Conv2dConfig::new(2, 2, 5).groups(2).stride(3),
        ]
    }

    /// The code paths a configuration can take: Winograd or im2col, images stacked into one GEMM or not (the
    /// test inputs' 7x6 maps are small enough to stack), products over the batch or per slice.
    #[derive(Clone, Copy, Debug)]
    struct Path {
        winograd: bool,
        stacked: bool,
        batch_wide: bool,
    }

    impl Path {
        fn apply(self, conv: &mut Conv2d<f64>) {
            conv.winograd = self.winograd;
            conv.stack_columns = if self.stacked { STACK_COLUMNS } else { 0 };
            conv.batch_wide = if self.batch_wide { 1 << 20 } else { 0 };
        }
    }

    fn paths() -> Vec<(Conv2dConfig, Path)> {
        let flags = [(false, false), (false, true), (true, false), (true, true)];
        let all =
            flags.map(|(winograd, stacked)| [false, true].map(|batch_wide| Path { winograd, stacked, batch_wide }));
        configs().into_iter().flat_map(|c| all.into_iter().flatten().map(move |p| (c.clone(), p))).collect()
    }

    #[test]
    fn forward_matches_direct_convolution() {
        let mut r = rng(0);
        for (cfg, path) in paths() {
            let mut conv = cfg.build::<f64>(&mut r).unwrap();
            path.apply(&mut conv);
            if let Some(b) = &mut conv.bias {
                b.value = Tensor::from_fn(&[cfg.out_channels], |i| i as f64 * 0.1 - 0.2);
            }
            let x = Tensor::from_fn(&[3, cfg.in_channels, 7, 6], |i| ((i * 37 % 101) as f64 / 50.0) - 1.0);
            let y = conv.forward(&x, Mode::Train);
            let mut want = reference(&x, &conv);
            if cfg.relu {
                want.iter_mut().for_each(|v| *v = v.max(0.0));
            }
            let err = y.data().iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            assert!(err < 1e-12, "{cfg:?} ({path:?}): max error {err}");
        }
    }

    #[test]
    fn gradcheck_every_configuration() {
        let mut r = rng(1);
        for (cfg, path) in paths() {
            let mut conv = cfg.build::<f64>(&mut r).unwrap();
            path.apply(&mut conv);
            let x = crate::check::gradcheck::random_input(&[2, cfg.in_channels, 7, 6], 2);
            let rep = check_layer(&mut conv, &x, &Options::default());
            assert!(rep.judged_error() < 1e-6, "{cfg:?} ({path:?})\n{rep}");
            // A fused ReLU can put a pre-activation within h of zero; the checker skips and counts those.
            assert!(rep.kinks_skipped() <= usize::from(cfg.relu) * 3, "{rep}");
        }
    }

    /// In f32 a 3x3 conv's dW comes from `kernels::winograd_filter_grad` where Winograd runs the forward pass (any
    /// output channels, with or without a bias) and from `kernels::filter_grad` for other geometries with output
    /// channels a multiple of 16; im2col's GEMM is the reference: Winograd-shaped, with the fused ReLU, strided
    /// (stacked images and not), with a bias.
    #[test]
    fn the_direct_filter_gradient_equals_im2col_in_f32() {
        let configs = [
            Conv2dConfig::new(5, 16, 3).padding(1).bias(false),
            Conv2dConfig::new(3, 32, 3).padding(1).bias(false).relu(),
            Conv2dConfig::new(6, 24, 3).padding(1).relu(),
            Conv2dConfig::new(4, 16, 3).padding(1).stride(2).relu(),
            Conv2dConfig::new(2, 16, 3).stride(2).bias(false),
        ];
        // Each config on two sizes; then a wide conv that Winograd takes (2304 tiles), its dX through the `gemm`
        // crate's products and its dW through Winograd per slice rather than over the batch.
        let sized = configs.into_iter().flat_map(|c| [9, 34].map(|h| (c.clone(), [6, c.in_channels, h, h - 1])));
        let wide = (Conv2dConfig::new(48, 96, 3).padding(1).relu(), [16, 48, 24, 23]);
        for (cfg, shape) in sized.chain([wide]) {
            let (size, x) = (shape[2], Tensor::from_fn(&shape, |i| ((i * 37 % 101) as f32 / 50.0) - 1.0));
            let grads = |direct_dw| {
                let mut conv = cfg.build::<f32>(&mut rng(4)).unwrap();
                conv.direct_dw = direct_dw;
                if cfg.in_channels == 48 {
                    let g = conv.geometry(x.shape());
                    assert!(conv.has_winograd_geometry(x.shape()) && !conv.is_batch_wide(x.shape(), &g, 24 * 23, 2));
                }
                let y = conv.forward(&x, Mode::Train);
                let dy = Tensor::from_fn(y.shape(), |i| ((i * 17 % 23) as f32 / 11.0) - 1.0);
                let dx = conv.backward(&x, &y, &dy);
                let db = conv.bias.as_ref().map(|b| b.grad.data().to_vec()).unwrap_or_default();
                [conv.weight.grad.data().to_vec(), dx.data().to_vec(), db]
            };
            let (direct, im2col) = (grads(true), grads(false));
            for (what, (a, b)) in ["dW", "dx", "db"].iter().zip(direct.iter().zip(&im2col)) {
                // Relative to the largest value: sums of thousands of f32 terms, in another order.
                let scale = b.iter().fold(1f32, |m, v| m.max(v.abs()));
                let err = a.iter().zip(b).map(|(p, q)| (p - q).abs()).fold(0.0, f32::max) / scale;
                assert!(err < 1e-5, "{cfg:?} on {size}: {what} differs by {err} of the largest");
            }
        }
    }

    /// The stride-2 kernel gives im2col's forward pass in f32: the ResNets' downsampling shapes, with a bias and a
    /// fused ReLU (as an inference fold makes them), an odd input size, and K not a multiple of the register block.
    #[test]
    fn the_direct_strided_forward_equals_im2col_in_f32() {
        let cases = [
            (Conv2dConfig::new(16, 32, 3).stride(2).padding(1).bias(false), [5, 16, 32, 32]),
            (Conv2dConfig::new(32, 64, 3).stride(2).padding(1).relu(), [3, 32, 32, 31]),
            (Conv2dConfig::new(3, 10, 3).stride(2).padding(1).relu(), [2, 3, 64, 63]),
        ];
        for (cfg, shape) in cases {
            let x = Tensor::from_fn(&shape, |i| ((i * 37 % 101) as f32 / 50.0) - 1.0);
            let run = |direct| {
                let mut conv = cfg.build::<f32>(&mut rng(6)).unwrap();
                if let Some(b) = conv.bias.as_mut() {
                    b.value = Tensor::from_fn(&[cfg.out_channels], |i| i as f32 / 7.0 - 0.5);
                }
                conv.direct_strided = direct;
                assert_eq!(conv.takes_direct_strided(&shape), direct, "{cfg:?} on {shape:?}");
                conv.forward(&x, Mode::Infer)
            };
            let (direct, im2col) = (run(true), run(false));
            let scale = im2col.data().iter().fold(1f32, |m, v| m.max(v.abs()));
            let err = direct.data().iter().zip(im2col.data()).map(|(p, q)| (p - q).abs()).fold(0f32, |m, d| {
                if d.is_nan() {
                    f32::MAX
                } else {
                    m.max(d)
                }
            });
            assert!(err < 1e-5 * scale, "{cfg:?} on {shape:?}: differs by {err} (largest {scale})");
        }
    }

    /// Stacks of several images (3 per GEMM here, the last stack short) give the unstacked path's output and
    /// gradients. One thread, so that each slice of the batch holds several stacks.
    #[test]
    fn stacking_images_changes_nothing() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        for (cfg, winograd) in configs().into_iter().flat_map(|c| [(c.clone(), false), (c, true)]) {
            let x = crate::check::gradcheck::random_input(&[16, cfg.in_channels, 7, 6], 3);
            let run = |stack_columns| {
                let mut conv = cfg.build::<f64>(&mut rng(2)).unwrap();
                (conv.winograd, conv.stack_columns, conv.batch_wide) = (winograd, stack_columns, 0);
                let y = conv.forward(&x, Mode::Train);
                let dy = Tensor::from_fn(y.shape(), |i| ((i * 17 % 23) as f64 / 11.0) - 1.0);
                let dx = conv.backward(&x, &y, &dy);
                let db = conv.bias.as_ref().map(|b| b.grad.data().to_vec()).unwrap_or_default();
                [y.data().to_vec(), dx.data().to_vec(), conv.weight.grad.data().to_vec(), db]
            };
            let (plain, stacked) = pool.install(|| (run(0), run(100)));
            for (what, (a, b)) in ["y", "dx", "dW", "db"].iter().zip(plain.iter().zip(&stacked)) {
                let err = a.iter().zip(b).map(|(p, q)| (p - q).abs()).fold(0.0, f64::max);
                assert!(err < 1e-12, "{cfg:?} (winograd {winograd}): {what} differs by {err}");
            }
        }
    }

    /// Products over the whole batch (24 images of 7x6 per product here, so the last one short) give the slice
    /// plan's output and gradients, with a frozen filter and a skipped input gradient too.
    #[test]
    fn batch_wide_products_change_nothing() {
        for cfg in configs() {
            let x = crate::check::gradcheck::random_input(&[30, cfg.in_channels, 7, 6], 5);
            let run = |batch_wide, frozen, skip_dx| {
                let mut conv = cfg.build::<f64>(&mut rng(3)).unwrap();
                (conv.winograd, conv.batch_wide, conv.weight.frozen) = (false, batch_wide, frozen);
                conv.skip_input_grad(skip_dx);
                let y = conv.forward(&x, Mode::Train);
                let dy = Tensor::from_fn(y.shape(), |i| ((i * 17 % 23) as f64 / 11.0) - 1.0);
                let dx = conv.backward(&x, &y, &dy);
                let db = conv.bias.as_ref().map(|b| b.grad.data().to_vec()).unwrap_or_default();
                [y.data().to_vec(), dx.data().to_vec(), conv.weight.grad.data().to_vec(), db]
            };
            for (frozen, skip_dx) in [(false, false), (true, false), (false, true)] {
                let (slices, wide) = (run(0, frozen, skip_dx), run(1 << 20, frozen, skip_dx));
                for (what, (a, b)) in ["y", "dx", "dW", "db"].iter().zip(slices.iter().zip(&wide)) {
                    let err = a.iter().zip(b).map(|(p, q)| (p - q).abs()).fold(0.0, f64::max);
                    assert!(err < 1e-12, "{cfg:?} (frozen {frozen}, skip dx {skip_dx}): {what} differs by {err}");
                }
            }
        }
    }

    /// A conv wider than Winograd's narrow kernels takes Winograd on maps from 7x7 in calls of 2048 tiles or more
    /// (its backward then over the batch where the slice plan would be short) and im2col otherwise; either way it
    /// gives im2col's output and gradients.
    #[test]
    fn wide_convs_take_winograd_on_large_enough_calls() {
        let cfg = Conv2dConfig::new(72, 64, 3).padding(1).bias(false).relu();
        for (n, side, batch_wide, wino) in
            [(128, 7, 0, true), (128, 7, 1 << 20, true), (127, 7, 0, false), (512, 3, 0, false)]
        {
            let x = crate::check::gradcheck::random_input(&[n, 72, side, side], 6);
            let run = |winograd| {
                let mut conv = cfg.build::<f64>(&mut rng(5)).unwrap();
                (conv.winograd, conv.batch_wide) = (winograd, batch_wide);
                assert_eq!(conv.has_winograd_geometry(x.shape()), winograd && wino);
                let y = conv.forward(&x, Mode::Train);
                let dy = Tensor::from_fn(y.shape(), |i| ((i * 17 % 23) as f64 / 11.0) - 1.0);
                let dx = conv.backward(&x, &y, &dy);
                [y.data().to_vec(), dx.data().to_vec(), conv.weight.grad.data().to_vec()]
            };
            let (im2col, winograd) = (run(false), run(true));
            for (what, (a, b)) in ["y", "dx", "dW"].iter().zip(im2col.iter().zip(&winograd)) {
                let err = a.iter().zip(b).map(|(p, q)| (p - q).abs()).fold(0.0, f64::max);
                assert!(err < 1e-10, "{n} x {side}x{side} (batch-wide {batch_wide}): {what} differs by {err}");
            }
        }
    }
}
