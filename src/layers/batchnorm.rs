//! BATCH NORM (Ioffe & Szegedy 2015): normalise each channel to zero mean and unit variance over the batch
//! (and the spatial positions, for 2-d inputs), then scale by `gamma` and shift by `beta`.
//! Training uses the batch's statistics and updates running averages; evaluation uses the running averages,
//! so a single test image gets a deterministic answer.

use super::{join, BufferVisitor, ChannelAffine, Infer, Layer, Mode, Param, ParamKind, ParamVisitor};
use crate::kernels::{reduce, simd};
use crate::tensor::{bcs, Float, Tensor};
use crate::{Error, Result};
use rayon::prelude::*;

#[derive(Clone, Debug)]
pub struct BatchNormConfig {
    pub num_features: usize,
    /// Default 1e-5.
    pub eps: f64,
    /// Weight of the new batch in the running averages; default 0.1 (PyTorch).
    pub momentum: f64,
    /// Apply ReLU to the output in the same pass (the BN-ReLU pair of every ResNet block); default false.
    pub relu: bool,
    /// The fused ReLU's ceiling: 6 for MobileNet's ReLU6, infinity (the default) for a plain ReLU.
    pub relu_cap: f64,
}

impl BatchNormConfig {
    pub fn new(num_features: usize) -> Self {
        BatchNormConfig { num_features, eps: 1e-5, momentum: 0.1, relu: false, relu_cap: f64::INFINITY }
    }
    /// Fuses a following ReLU: one pass over memory instead of two, forward and backward.
    pub fn relu(mut self) -> Self {
        self.relu = true;
        self
    }
    /// Fuses a following ReLU6, `min(max(0, x), 6)` (MobileNet's BN-ReLU6 pairs).
    pub fn relu6(mut self) -> Self {
        self.relu = true;
        self.relu_cap = 6.0;
        self
    }
    pub fn build<T: Float>(&self) -> BatchNorm<T> {
        let c = self.num_features;
        BatchNorm {
            cfg: self.clone(),
            gamma: Param::new(Tensor::full(&[c], T::one()), ParamKind::Norm),
            beta: Param::new(Tensor::zeros(&[c]), ParamKind::Norm),
            running_mean: Tensor::zeros(&[c]),
            running_var: Tensor::full(&[c], T::one()),
            mean: vec![T::zero(); c],
            invstd: vec![T::zero(); c],
            last_mode: Mode::Train,
        }
    }
}

/// Works on `[B, C]` (1-d) and `[B, C, H, W]` (2-d) inputs alike.
pub struct BatchNorm<T: Float> {
    pub cfg: BatchNormConfig,
    pub gamma: Param<T>,
    pub beta: Param<T>,
    pub running_mean: Tensor<T>,
    pub running_var: Tensor<T>,
    /// Statistics the last forward normalised with (batch or running), for backward.
    mean: Vec<T>,
    invstd: Vec<T>,
    last_mode: Mode,
}

/// Planes per rayon task, so that each task has a few thousand values to work on.
fn plane_batch(s: usize) -> usize {
    (4096 / s.max(1)).max(1)
}

impl<T: Float> BatchNorm<T> {
    /// `lanes`: sum in 16 lanes (see `backward`): with the ReLU6 gate in any type, without a gate in f32 under `simd`.
    fn backward_gated(
        &mut self,
        x: &Tensor<T>,
        y: &Tensor<T>,
        dy: &Tensor<T>,
        gate: impl Fn(T, T) -> T + Sync + Send + Copy,
        lanes: bool,
    ) -> Tensor<T> {
        let (b, c, s) = bcs(x.shape());
        let (mean, invstd) = (&self.mean, &self.invstd);
        let relu = self.cfg.relu;
        // Per channel: sum(dy) and sum(dy * xhat).
        let sums: Vec<(T, T)> = (0..c)
            .into_par_iter()
            .map(|ch| {
                let (mut sd, mut sdx) = (T::zero(), T::zero());
                let mu = mean[ch];
                for i in 0..b {
                    let off = (i * c + ch) * s;
                    let (dyp, xp) = (&dy.data()[off..off + s], &x.data()[off..off + s]);
                    if relu && lanes {
                        let yp = &y.data()[off..off + s];
                        let [a, b] = reduce::sums([dyp, xp, yp], |[d, v, yv]| {
                            let g = gate(d, yv);
                            [g, g * (v - mu)]
                        });
                        sd += a;
                        sdx += b;
                    } else if relu {
                        for ((&d, &v), &yv) in dyp.iter().zip(xp).zip(&y.data()[off..off + s]) {
                            let d = gate(d, yv);
                            sd += d;
                            sdx += d * (v - mu);
                        }
                    } else if lanes {
                        // Without the fused ReLU, y is not needed: one stream less to read.
                        let [a, b] = simd(
                            #[inline(always)]
                            || reduce::sums([dyp, xp], |[d, v]| [d, d * (v - mu)]),
                        );
                        sd += a;
                        sdx += b;
                    } else {
                        for (&d, &v) in dyp.iter().zip(xp) {
                            sd += d;
                            sdx += d * (v - mu);
                        }
                    }
                }
                (sd, sdx * invstd[ch])
            })
            .collect();
        for (ch, &(sd, sdx)) in sums.iter().enumerate() {
            if !self.gamma.frozen {
                self.gamma.grad.data_mut()[ch] += sdx;
            }
            if !self.beta.frozen {
                self.beta.grad.data_mut()[ch] += sd;
            }
        }
        let gamma = self.gamma.value.data();
        let train = self.last_mode == Mode::Train;
        let n = T::c((b * s) as f64);
        let mut dx = Tensor::uninit(x.shape());
        dx.data_mut()
            .par_chunks_mut(s)
            .zip(x.data().par_chunks(s))
            .zip(dy.data().par_chunks(s))
            .zip(y.data().par_chunks(s))
            .enumerate()
            .with_min_len(plane_batch(s))
            .for_each(|(i, (((dxp, xp), dyp), yp))| {
                let ch = i % c;
                let k = gamma[ch] * invstd[ch];
                if train {
                    // dx = gamma*invstd/N * (N dy - sum(dy) - xhat * sum(dy xhat)), as k dy + cx x + c0.
                    let (sd, sdx) = sums[ch];
                    let (mu, is) = (mean[ch], invstd[ch]);
                    let cx = -k * is * sdx / n;
                    let c0 = -k * sd / n;
                    if relu {
                        for (((o, &v), &d), &yv) in dxp.iter_mut().zip(xp).zip(dyp).zip(yp) {
                            *o = k * gate(d, yv) + cx * (v - mu) + c0;
                        }
                    } else {
                        for ((o, &v), &d) in dxp.iter_mut().zip(xp).zip(dyp) {
                            *o = k * d + cx * (v - mu) + c0;
                        }
                    }
                } else {
                    for ((o, &d), &yv) in dxp.iter_mut().zip(dyp).zip(yp) {
                        *o = k * gate(d, yv);
                    }
                }
            });
        dx
    }

    /// `1 / sqrt(running_var + eps)` per channel: what evaluation normalises with.
    fn running_invstd(&self) -> Vec<T> {
        let eps = T::c(self.cfg.eps);
        self.running_var.data().iter().map(|&v| T::one() / (v + eps).sqrt()).collect()
    }

    /// `gamma (x - mean) invstd + beta` per channel, then the fused ReLU (or ReLU6).
    fn normalise(&self, x: &Tensor<T>, mean: &[T], invstd: &[T]) -> Tensor<T> {
        let (_, c, s) = bcs(x.shape());
        let (gamma, beta) = (self.gamma.value.data(), self.beta.value.data());
        let (relu, cap) = (self.cfg.relu, T::c(self.cfg.relu_cap));
        let capped = self.cfg.relu_cap.is_finite();
        let mut y = Tensor::uninit(x.shape());
        y.data_mut().par_chunks_mut(s).zip(x.data().par_chunks(s)).enumerate().with_min_len(plane_batch(s)).for_each(
            |(i, (yp, xp))| {
                let ch = i % c;
                let scale = gamma[ch] * invstd[ch];
                let shift = beta[ch] - mean[ch] * scale;
                if relu && capped {
                    for (o, &v) in yp.iter_mut().zip(xp) {
                        *o = (v * scale + shift).max(T::zero()).min(cap);
                    }
                } else if relu {
                    for (o, &v) in yp.iter_mut().zip(xp) {
                        *o = (v * scale + shift).max(T::zero());
                    }
                } else {
                    for (o, &v) in yp.iter_mut().zip(xp) {
                        *o = v * scale + shift;
                    }
                }
            },
        );
        y
    }
}

/// Inference normalises with the running statistics, as `forward` does outside training.
impl<T: Float> Infer<T> for BatchNorm<T> {
    fn infer(&self, x: &Tensor<T>) -> Tensor<T> {
        self.normalise(x, self.running_mean.data(), &self.running_invstd())
    }
}

impl<T: Float> Layer<T> for BatchNorm<T> {
    fn describe(&self) -> String {
        let act = match (self.cfg.relu, self.cfg.relu_cap.is_finite()) {
            (false, _) => String::new(),
            (true, false) => "+relu".into(),
            (true, true) => format!("+relu{}", self.cfg.relu_cap),
        };
        format!("batchnorm({}){act}", self.cfg.num_features)
    }

    fn output_shape(&self, x: &[usize]) -> Result<Vec<usize>> {
        if !(x.len() == 2 || x.len() == 4) || x[1] != self.cfg.num_features {
            return Err(Error::Shape(format!(
                "{} expects [B, {}] or [B, {}, H, W], got {x:?}",
                self.describe(),
                self.cfg.num_features,
                self.cfg.num_features
            )));
        }
        Ok(x.to_vec())
    }

    fn inference_affine(&self) -> Option<ChannelAffine<T>> {
        // A ReLU6's ceiling has no place in a conv's epilogue.
        if self.cfg.relu_cap.is_finite() {
            return None;
        }
        let eps = T::c(self.cfg.eps);
        let (mean, var) = (self.running_mean.data(), self.running_var.data());
        let scale: Vec<T> = self.gamma.value.data().iter().zip(var).map(|(&g, &v)| g / (v + eps).sqrt()).collect();
        let shift = self.beta.value.data().iter().zip(mean).zip(&scale).map(|((&b, &m), &s)| b - m * s).collect();
        Some(ChannelAffine { scale, shift, relu: self.cfg.relu })
    }

    fn forward(&mut self, x: &Tensor<T>, mode: Mode) -> Tensor<T> {
        let (b, c, s) = bcs(x.shape());
        let eps = T::c(self.cfg.eps);
        // A frozen batch norm (fine-tuning: gamma and beta both frozen) keeps its pretrained statistics. A fixed
        // scale alone (airbench's gamma = 1, beta learned) still normalises with the batch's.
        let mode = if self.gamma.frozen && self.beta.frozen { Mode::Eval } else { mode };
        self.last_mode = mode;
        if mode == Mode::Train {
            // Per-channel mean and (biased) variance in one pass: shifted sums (shift = the channel's first value)
            // in f64, so large means do not cancel catastrophically. (Sequential sums: the gradient checks of
            // whole blocks sit at the noise floor of their finite differences, and summing in lanes instead moves
            // that noise across the checks' threshold. So f64, the checks' type, sums in sequence; f32 training
            // in lanes, which vectorise.)
            let lanes = T::as_f32(&[]).is_some();
            let stats: Vec<(T, T)> = (0..c)
                .into_par_iter()
                .map(|ch| {
                    let shift = x.data()[ch * s];
                    let (mut s1, mut s2) = (0f64, 0f64);
                    for i in 0..b {
                        let xp = &x.data()[(i * c + ch) * s..][..s];
                        let [p1, p2] = if lanes {
                            simd(
                                #[inline(always)]
                                || reduce::sums([xp], |[v]| [v - shift, (v - shift) * (v - shift)]),
                            )
                        } else {
                            let sums = |[p1, p2]: [T; 2], &v: &T| [p1 + (v - shift), p2 + (v - shift) * (v - shift)];
                            xp.iter().fold([T::zero(); 2], sums)
                        };
                        s1 += p1.to_f64();
                        s2 += p2.to_f64();
                    }
                    let nn = (b * s) as f64;
                    let m1 = s1 / nn;
                    (T::c(m1 + shift.to_f64()), T::c((s2 / nn - m1 * m1).max(0.0)))
                })
                .collect();
            let m = T::c(self.cfg.momentum);
            // Running variance is unbiased (n / (n-1)), as in PyTorch.
            let unbias = if b * s > 1 { T::c((b * s) as f64 / (b * s - 1) as f64) } else { T::one() };
            for (ch, &(mean, var)) in stats.iter().enumerate() {
                self.mean[ch] = mean;
                self.invstd[ch] = T::one() / (var + eps).sqrt();
                let rm = &mut self.running_mean.data_mut()[ch];
                *rm = (T::one() - m) * *rm + m * mean;
                let rv = &mut self.running_var.data_mut()[ch];
                *rv = (T::one() - m) * *rv + m * var * unbias;
            }
        } else {
            self.mean.copy_from_slice(self.running_mean.data());
            self.invstd = self.running_invstd();
        }
        self.normalise(x, &self.mean, &self.invstd)
    }

    fn as_infer(&self) -> Option<&dyn Infer<T>> {
        Some(self)
    }

    fn backward(&mut self, x: &Tensor<T>, y: &Tensor<T>, dy: &Tensor<T>) -> Tensor<T> {
        // With the fused ReLU, the gradient reaching the normalisation is dy where the output is positive (and, for
        // ReLU6, below 6). Two monomorphised copies: a per-element check of the cap cost plain ReLU 20% of resnet8's
        // training step.
        // The ReLU6 gate's sums run in 16 lanes: sequentially, its two comparisons made batch norm's backward 3x its
        // forward in MobileNetV2. So do the sums without a gate in f32 (under `simd`): sequentially they took twice
        // as long on 8x8 maps (`resnet20`'s 64 channels, Zen 5, `bench --profile`); 32x32 maps wait on memory
        // either way. The ReLU gate's stay sequential: in lanes, plain-ReLU `resnet8`'s batch norm backward took 2.5
        // times as long (Zen 3), and on the Zen 5 no less time, whether the gate read `y` or recomputed its input.
        let cap = T::c(self.cfg.relu_cap);
        if self.cfg.relu && self.cfg.relu_cap.is_finite() {
            let relu6 = move |d: T, y: T| if y <= T::zero() || y >= cap { T::zero() } else { d };
            self.backward_gated(x, y, dy, relu6, true)
        } else if self.cfg.relu {
            self.backward_gated(x, y, dy, |d: T, y: T| if y <= T::zero() { T::zero() } else { d }, false)
        } else {
            // f32 in lanes; f64 (the gradient checks) in sequence, as the forward's statistics.
            self.backward_gated(x, y, dy, |d: T, _| d, T::as_f32(&[]).is_some())
        }
    }
    fn visit_params(&mut self, prefix: &str, f: &mut ParamVisitor<'_, T>) {
        f(&join(prefix, "weight"), &mut self.gamma);
        f(&join(prefix, "bias"), &mut self.beta);
    }

    fn visit_buffers(&mut self, prefix: &str, f: &mut BufferVisitor<'_, T>) {
        f(&join(prefix, "running_mean"), &mut self.running_mean);
        f(&join(prefix, "running_var"), &mut self.running_var);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::gradcheck::{check_layer, random_input, Options};

    fn bn_with_affine(c: usize) -> BatchNorm<f64> {
        let mut bn = BatchNormConfig::new(c).build::<f64>();
        bn.gamma.value = Tensor::from_fn(&[c], |i| 0.5 + i as f64 * 0.3);
        bn.beta.value = Tensor::from_fn(&[c], |i| i as f64 * 0.2 - 0.1);
        bn
    }

    #[test]
    fn train_mode_normalises_the_batch() {
        let mut bn = BatchNormConfig::new(2).build::<f64>();
        let x = Tensor::from_fn(&[4, 2, 3, 3], |i| (i as f64 * 0.7).sin() * 3.0 + 5.0);
        let y = bn.forward(&x, Mode::Train);
        for ch in 0..2 {
            let vals: Vec<f64> = (0..4).flat_map(|b| y.data()[(b * 2 + ch) * 9..][..9].to_vec()).collect();
            let m = vals.iter().sum::<f64>() / 36.0;
            let v = vals.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / 36.0;
            assert!(m.abs() < 1e-12 && (v - 1.0).abs() < 1e-4, "mean {m} var {v}");
        }
    }

    #[test]
    fn a_fixed_scale_still_normalises_with_the_batch_and_a_frozen_norm_does_not() {
        let x = Tensor::from_fn(&[4, 2, 3, 3], |i| (i as f64 * 0.7).sin() * 3.0 + 5.0);
        let mut fixed = BatchNormConfig::new(2).build::<f64>();
        fixed.gamma.frozen = true;
        let mut plain = BatchNormConfig::new(2).build::<f64>();
        assert_eq!(fixed.forward(&x, Mode::Train).data(), plain.forward(&x, Mode::Train).data(), "airbench's BN");
        let rep = check_layer(&mut fixed, &random_input(&[3, 2, 3, 3], 4), &Options::default());
        assert!(rep.judged_error() < 1e-6, "{rep}");
        let mut frozen = BatchNormConfig::new(2).build::<f64>();
        (frozen.gamma.frozen, frozen.beta.frozen) = (true, true);
        let y = frozen.forward(&x, Mode::Train);
        // Running statistics (0, 1): the input passes through (up to eps).
        assert!(y.data().iter().zip(x.data()).all(|(a, b)| (a - b).abs() < 1e-4), "fine-tuning's frozen BN");
    }

    #[test]
    fn eval_mode_uses_running_statistics() {
        let mut bn = BatchNormConfig::new(1).build::<f64>();
        bn.running_mean = Tensor::from_vec(&[1], vec![2.0]);
        bn.running_var = Tensor::from_vec(&[1], vec![4.0 - 1e-5]);
        let x = Tensor::from_vec(&[3, 1], vec![2.0, 4.0, 6.0]);
        // (x - 2) / 2, independent of the batch's own statistics.
        let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12);
        assert!(close(bn.forward(&x, Mode::Eval).data(), &[0.0, 1.0, 2.0]));
        // And one sample alone gives the same answer as inside the batch.
        assert!(close(bn.forward(&Tensor::from_vec(&[1, 1], vec![4.0]), Mode::Eval).data(), &[1.0]));
        // Training updates the running averages with momentum 0.1 (unbiased variance: 4 for 2,4,6).
        bn.forward(&x, Mode::Train);
        assert!((bn.running_mean.data()[0] - (0.9 * 2.0 + 0.1 * 4.0)).abs() < 1e-12);
        assert!((bn.running_var.data()[0] - (0.9 * (4.0 - 1e-5) + 0.1 * 4.0)).abs() < 1e-12);
    }

    #[test]
    fn fused_relu_equals_bn_then_relu() {
        let x = random_input(&[3, 2, 3, 3], 4);
        let mut plain = bn_with_affine(2);
        let mut fused = bn_with_affine(2);
        fused.cfg.relu = true;
        let want = plain.forward(&x, Mode::Train).map(|v| v.max(0.0));
        assert_eq!(fused.forward(&x, Mode::Train).data(), want.data());
        for mode in [Mode::Train, Mode::Eval] {
            let rep = check_layer(&mut fused, &x, &Options { mode, ..Options::default() });
            assert!(rep.judged_error() < 1e-6, "{mode:?}\n{rep}");
        }
    }

    #[test]
    fn fused_relu6_equals_bn_then_relu6() {
        // Scaled up so that outputs fall on both sides of both kinks (0 and 6).
        let x = random_input(&[3, 2, 3, 3], 5).map(|v| v * 4.0);
        let mut plain = bn_with_affine(2);
        let mut fused = bn_with_affine(2);
        for bn in [&mut plain, &mut fused] {
            bn.gamma.value = Tensor::from_vec(&[2], vec![5.0, 3.0]);
            bn.beta.value = Tensor::from_vec(&[2], vec![2.0, 1.0]);
        }
        fused.cfg = fused.cfg.clone().relu6();
        let want = plain.forward(&x, Mode::Train).map(|v| v.clamp(0.0, 6.0));
        assert!(want.data().iter().any(|&v| v == 6.0) && want.data().iter().any(|&v| v == 0.0));
        assert_eq!(fused.forward(&x, Mode::Train).data(), want.data());
        for mode in [Mode::Train, Mode::Eval] {
            let rep = check_layer(&mut fused, &x, &Options { mode, ..Options::default() });
            assert!(rep.judged_error() < 1e-6, "{mode:?}\n{rep}");
        }
    }

    #[test]
    fn gradcheck_train_and_eval_1d_and_2d() {
        for shape in [vec![5, 3], vec![3, 3, 4, 4]] {
            for mode in [Mode::Train, Mode::Eval] {
                let mut bn = bn_with_affine(3);
                bn.running_mean = Tensor::from_vec(&[3], vec![0.1, -0.2, 0.3]);
                bn.running_var = Tensor::from_vec(&[3], vec![0.5, 1.5, 2.0]);
                let opts = Options { mode, ..Options::default() };
                let rep = check_layer(&mut bn, &random_input(&shape, 9), &opts);
                assert!(rep.judged_error() < 1e-6, "{shape:?} {mode:?}\n{rep}");
            }
        }
    }
}
