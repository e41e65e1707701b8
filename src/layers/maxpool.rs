//! MAX POOL: the maximum over each `kernel x kernel` window; the gradient goes to the winner only.

use super::{expect_rank, Layer, Mode};
use crate::tensor::{Float, Tensor};
use crate::{Error, Result};
use rayon::prelude::*;

#[derive(Clone, Debug)]
pub struct MaxPool2d {
    pub kernel: usize,
    /// Default: equal to the kernel (non-overlapping windows).
    pub stride: usize,
    /// Padding counts as minus infinity (never wins). Default 0.
    pub padding: usize,
    /// Round the output size up (PyTorch's `ceil_mode`, GoogLeNet): the last window may hang over the edge.
    pub ceil_mode: bool,
    /// Input index (within its plane) of each output's maximum, from the last forward.
    argmax: Vec<u32>,
}

impl MaxPool2d {
    pub fn new(kernel: usize, stride: usize) -> Self {
        MaxPool2d { kernel, stride, padding: 0, ceil_mode: false, argmax: Vec::new() }
    }
    pub fn padding(mut self, p: usize) -> Self {
        self.padding = p;
        self
    }
    pub fn ceil_mode(mut self) -> Self {
        self.ceil_mode = true;
        self
    }
}

/// Output size of a pooling window sweep; shared with average pooling.
/// With `ceil`, PyTorch's rule: round up, but the last window must start inside the (left-padded) input.
pub(crate) fn pool_out(len: usize, k: usize, s: usize, p: usize, ceil: bool) -> usize {
    let span = len + 2 * p - k;
    if !ceil {
        return span / s + 1;
    }
    let mut out = span.div_ceil(s) + 1;
    if (out - 1) * s >= len + p {
        out -= 1;
    }
    out
}

pub(crate) fn check_pool(name: &str, x: &[usize], k: usize, s: usize, p: usize, ceil: bool) -> Result<Vec<usize>> {
    expect_rank(name, x, 4)?;
    if k == 0 || s == 0 || 2 * p > k {
        return Err(Error::Config(format!(
            "{name}: need kernel > 0, stride > 0, padding <= kernel/2 (got {k}, {s}, {p})"
        )));
    }
    if x[2] + 2 * p < k || x[3] + 2 * p < k {
        return Err(Error::Shape(format!("{name} {k}x{k}: input {x:?} is smaller than the window")));
    }
    Ok(vec![x[0], x[1], pool_out(x[2], k, s, p, ceil), pool_out(x[3], k, s, p, ceil)])
}

/// The common 2x2, stride-2 case (VGG, the benchmark nets): no window bounds to compute.
fn pool2x2<T: Float>(xp: &[T], w: usize, ho: usize, wo: usize, yp: &mut [T], ap: &mut [u32]) {
    for oh in 0..ho {
        let (r0, r1) = (&xp[2 * oh * w..][..w], &xp[(2 * oh + 1) * w..][..w]);
        let (yr, ar) = (&mut yp[oh * wo..][..wo], &mut ap[oh * wo..][..wo]);
        for ow in 0..wo {
            let c = 2 * ow;
            let (mut best, mut bi) = (r0[c], 2 * oh * w + c);
            keep_larger(&mut best, &mut bi, r0[c + 1], 2 * oh * w + c + 1);
            keep_larger(&mut best, &mut bi, r1[c], (2 * oh + 1) * w + c);
            keep_larger(&mut best, &mut bi, r1[c + 1], (2 * oh + 1) * w + c + 1);
            yr[ow] = best;
            ar[ow] = bi as u32;
        }
    }
}

/// `(best, at) = (v, i)` if `v > best`, as selects rather than a branch: which value of a window is largest is
/// a coin toss on real data, and mispredicted branches made `resnet18`'s 3x3 stem pool 6% of its training step.
#[inline(always)]
fn keep_larger<T: Float>(best: &mut T, at: &mut usize, v: T, i: usize) {
    let larger = v > *best;
    *best = if larger { v } else { *best };
    *at = if larger { i } else { *at };
}

#[allow(clippy::too_many_arguments)]
fn pool_any<T: Float>(
    xp: &[T],
    h: usize,
    w: usize,
    ho: usize,
    wo: usize,
    k: usize,
    s: usize,
    p: isize,
    yp: &mut [T],
    ap: &mut [u32],
) {
    for oh in 0..ho {
        let h0 = (oh * s) as isize - p;
        let (hs, he) = (h0.max(0) as usize, ((h0 + k as isize) as usize).min(h));
        for ow in 0..wo {
            let w0 = (ow * s) as isize - p;
            let (ws, we) = (w0.max(0) as usize, ((w0 + k as isize) as usize).min(w));
            let (mut best, mut bi) = (T::neg_infinity(), hs * w + ws);
            for ih in hs..he {
                for iw in ws..we {
                    keep_larger(&mut best, &mut bi, xp[ih * w + iw], ih * w + iw);
                }
            }
            yp[oh * wo + ow] = best;
            ap[oh * wo + ow] = bi as u32;
        }
    }
}

impl<T: Float> Layer<T> for MaxPool2d {
    fn describe(&self) -> String {
        format!("maxpool{k}x{k}/{}{}", self.stride, if self.ceil_mode { " ceil" } else { "" }, k = self.kernel)
    }

    fn output_shape(&self, x: &[usize]) -> Result<Vec<usize>> {
        check_pool("maxpool", x, self.kernel, self.stride, self.padding, self.ceil_mode)
    }

    fn forward(&mut self, x: &Tensor<T>, _mode: Mode) -> Tensor<T> {
        let os = <Self as Layer<T>>::output_shape(self, x.shape()).expect("maxpool input shape");
        let (h, w, ho, wo) = (x.shape()[2], x.shape()[3], os[2], os[3]);
        let (k, s, p) = (self.kernel, self.stride, self.padding as isize);
        let mut y = Tensor::uninit(&os);
        self.argmax.resize(y.len(), 0);
        // Whole planes per task, several planes at once: one 16x16 plane is too little work for a task.
        let planes_per_task = (4096 / (h * w).max(1)).max(1);
        // Floor-mode 2x2 windows never hang over the edge, odd sizes included (airbench's 31 -> 15).
        let fast = k == 2 && s == 2 && p == 0 && (!self.ceil_mode || (h % 2 == 0 && w % 2 == 0));
        y.data_mut()
            .par_chunks_mut(ho * wo * planes_per_task)
            .zip(self.argmax.par_chunks_mut(ho * wo * planes_per_task))
            .zip(x.data().par_chunks(h * w * planes_per_task))
            .for_each(|((yc, ac), xc)| {
                for ((yp, ap), xp) in yc.chunks_mut(ho * wo).zip(ac.chunks_mut(ho * wo)).zip(xc.chunks(h * w)) {
                    if fast {
                        pool2x2(xp, w, ho, wo, yp, ap);
                    } else {
                        pool_any(xp, h, w, ho, wo, k, s, p, yp, ap);
                    }
                }
            });
        y
    }

    fn backward(&mut self, x: &Tensor<T>, y: &Tensor<T>, dy: &Tensor<T>) -> Tensor<T> {
        let (hw, ohw) = (x.shape()[2] * x.shape()[3], y.shape()[2] * y.shape()[3]);
        let per = (4096 / hw.max(1)).max(1);
        // Each task zeroes its own planes just before scattering into them: in parallel, and while they are in
        // cache (a zeroed tensor is one serial pass over the whole input gradient first).
        let mut dx = Tensor::uninit(x.shape());
        dx.data_mut()
            .par_chunks_mut(hw * per)
            .zip(self.argmax.par_chunks(ohw * per))
            .zip(dy.data().par_chunks(ohw * per))
            .for_each(|((dxc, ac), dyc)| {
                for ((dxp, ap), dyp) in dxc.chunks_mut(hw).zip(ac.chunks(ohw)).zip(dyc.chunks(ohw)) {
                    dxp.fill(T::zero());
                    for (&i, &d) in ap.iter().zip(dyp) {
                        dxp[i as usize] += d;
                    }
                }
            });
        dx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::gradcheck::{check_layer, random_input, Options};

    #[test]
    fn forward_by_hand() {
        let x = Tensor::<f64>::from_fn(&[1, 1, 4, 4], |i| i as f64);
        let y = MaxPool2d::new(2, 2).forward(&x, Mode::Train);
        assert_eq!(y.data(), &[5.0, 7.0, 13.0, 15.0]);
        let y = MaxPool2d::new(3, 2).padding(1).forward(&x, Mode::Train);
        assert_eq!(y.data(), &[5.0, 7.0, 13.0, 15.0]);
        // ceil_mode: 112 -> 56 with 3x3/2 (GoogLeNet), where floor gives 55; 5 -> 3 with a clipped last window.
        assert_eq!(pool_out(112, 3, 2, 0, true), 56);
        assert_eq!(pool_out(112, 3, 2, 0, false), 55);
        let x5 = Tensor::<f64>::from_fn(&[1, 1, 5, 5], |i| i as f64);
        let y = MaxPool2d::new(2, 2).ceil_mode().forward(&x5, Mode::Train);
        assert_eq!(y.data(), &[6.0, 8.0, 9.0, 16.0, 18.0, 19.0, 21.0, 23.0, 24.0]);
        // Floor mode on an odd size drops the last row and column (the 2x2 fast path).
        assert_eq!(MaxPool2d::new(2, 2).forward(&x5, Mode::Train).data(), &[6.0, 8.0, 16.0, 18.0]);
    }

    #[test]
    fn gradcheck() {
        // Inputs are distinct by far more than the finite-difference step, so no window changes its winner.
        for (k, s, p, ceil) in [(2, 2, 0, false), (3, 2, 1, false), (3, 1, 1, false), (3, 2, 0, true), (2, 2, 0, true)]
        {
            let mut pool = MaxPool2d::new(k, s).padding(p);
            pool.ceil_mode = ceil;
            let rep = check_layer(&mut pool, &random_input(&[2, 3, 6, 7], 4), &Options::default());
            assert!(rep.judged_error() < 1e-6, "{rep}");
            assert_eq!(rep.kinks_skipped(), 0);
        }
    }

    /// The input gradient comes from the buffer pool unzeroed: every plane is cleared before the scatter, odd sizes'
    /// uncovered last row and column included. Stale NaN buffers of the right size wait in the pool.
    #[test]
    fn backward_clears_a_reused_buffer() {
        let x = random_input(&[2, 3, 31, 31], 6);
        for _ in 0..4 {
            f64::pool().give(vec![f64::NAN; x.len()]);
        }
        for (k, s) in [(2, 2), (3, 2)] {
            let mut pool = MaxPool2d::new(k, s);
            let y = pool.forward(&x, Mode::Train);
            let dx = pool.backward(&x, &y, &Tensor::full(y.shape(), 1.0));
            assert!(dx.data().iter().all(|v| v.is_finite()), "{k}x{k}/{s}: stale values left in dx");
            assert_eq!(dx.data().iter().sum::<f64>(), y.len() as f64);
        }
    }
}
