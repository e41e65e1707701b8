//! Activation statistics per layer, as a value (like the profiler): the `Probe` is a hook around every leaf layer
//! (`hook.rs`) that records, at each forward pass, its output's mean and std, the fraction of exact zeros,
//! and the fraction of dead units (channels, or features, that are zero for every image of the batch: ReLUs that
//! never fire).

use super::hook::{Hook, Site};
use crate::layers::{Layer, Mode};
use crate::tensor::{Float, Tensor};
use rayon::prelude::*;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug, Serialize)]
pub struct ActivationStats {
    /// The layer's qualified name, e.g. `stage2.block1.bn1`.
    pub name: String,
    pub layer: String,
    pub mean: f64,
    pub std: f64,
    pub zero_fraction: f64,
    pub dead_fraction: f64,
    /// `HISTOGRAM_BINS` equal-width counts of the output's values over `[lo, hi]`.
    pub lo: f64,
    pub hi: f64,
    pub histogram: Vec<u32>,
}

pub const HISTOGRAM_BINS: usize = 30;

/// The statistics of the forward passes since the last `take`, in the order the layers ran. Measuring can be
/// paused (`set_active(false)`): a paused probe costs one atomic load per layer and forward pass.
pub struct Probe {
    log: Mutex<Vec<ActivationStats>>,
    active: AtomicBool,
}

impl Default for Probe {
    fn default() -> Self {
        Probe { log: Mutex::new(Vec::new()), active: AtomicBool::new(true) }
    }
}

impl Probe {
    pub fn take(&self) -> Vec<ActivationStats> {
        std::mem::take(&mut *self.log.lock().unwrap_or_else(|e| e.into_inner()))
    }
    pub fn set_active(&self, on: bool) {
        self.active.store(on, Ordering::Relaxed);
    }
}

/// Wraps every leaf layer under `net` so that its outputs are measured into `probe`.
pub fn attach<T: Float>(net: &mut dyn Layer<T>, probe: &Arc<Probe>) {
    super::hook::attach(net, probe);
}

/// One plane's figures (an image's channel, or its feature), merged by Chan et al.'s rule so that the spread is
/// exact to rounding whatever the order.
#[derive(Clone, Copy, Default)]
struct Moments {
    n: f64,
    sum: f64,
    m2: f64,
    zeros: usize,
}

impl Moments {
    /// Two passes over one plane, which stays in cache: its sum, then the squares about its mean.
    fn of<T: Float>(v: &[T]) -> Self {
        let f = |x: &T| <T as Float>::to_f64(*x);
        let (n, sum) = (v.len() as f64, v.iter().map(f).sum::<f64>());
        let m2 = v.iter().map(|x| (f(x) - sum / n).powi(2)).sum::<f64>();
        Moments { n, sum, m2, zeros: v.iter().filter(|x| **x == T::zero()).count() }
    }

    fn merge(a: Self, b: Self) -> Self {
        if a.n == 0.0 || b.n == 0.0 {
            return if a.n == 0.0 { b } else { a };
        }
        let (n, d) = (a.n + b.n, b.sum / b.n - a.sum / a.n);
        Moments { n, sum: a.sum + b.sum, m2: a.m2 + b.m2 + d * d * a.n * b.n / n, zeros: a.zeros + b.zeros }
    }
}

/// Mean, std, zero fraction and dead-unit fraction of `[B, C, ...]` (units are the C axis). The planes are measured
/// in parallel: the monitor's sampled steps measure every layer's output, over a gigabyte at airbench's batch of 1024.
pub fn measure<T: Float>(y: &Tensor<T>) -> (f64, f64, f64, f64) {
    let v = y.data();
    if v.is_empty() {
        return (0.0, 0.0, 0.0, 0.0);
    }
    let s = y.shape();
    let (b, c) = (s[0].max(1), s.get(1).copied().unwrap_or(1).max(1));
    let per = (v.len() / (b * c)).max(1);
    let planes: Vec<Moments> = v.par_chunks(per).map(Moments::of).collect();
    let all = planes.iter().fold(Moments::default(), |a, p| Moments::merge(a, *p));
    let dead = (0..c).filter(|&ch| (0..b).all(|i| planes[i * c + ch].zeros == per)).count() as f64 / c as f64;
    (all.sum / all.n, (all.m2 / all.n).sqrt(), all.zeros as f64 / all.n, dead)
}

fn finite<T: Float>(c: &[T]) -> impl Iterator<Item = f64> + '_ {
    c.iter().map(|x| <T as Float>::to_f64(*x)).filter(|v| v.is_finite())
}

/// `bins` equal-width counts of `y`'s finite values over their range, with the range.
pub fn histogram<T: Float>(y: &Tensor<T>, bins: usize) -> (f64, f64, Vec<u32>) {
    let range = |(a, b): (f64, f64), v: f64| (a.min(v), b.max(v));
    let chunks = || y.data().par_chunks(1 << 16);
    let (lo, hi) = chunks()
        .map(|c| finite(c).fold((f64::INFINITY, f64::NEG_INFINITY), range))
        .reduce(|| (f64::INFINITY, f64::NEG_INFINITY), |a, b| (a.0.min(b.0), a.1.max(b.1)));
    let bins = bins.max(1);
    if lo > hi {
        return (0.0, 0.0, vec![0; bins]);
    }
    let width = ((hi - lo) / bins as f64).max(f64::MIN_POSITIVE);
    let counts = chunks()
        .map(|c| {
            let mut counts = vec![0u32; bins];
            for v in finite(c) {
                counts[(((v - lo) / width) as usize).min(bins - 1)] += 1;
            }
            counts
        })
        .reduce(|| vec![0; bins], |a, b| a.iter().zip(&b).map(|(x, y)| x + y).collect());
    (lo, hi, counts)
}

impl<T: Float> Hook<T> for Probe {
    fn forward(&self, at: Site<'_, T>, x: &Tensor<T>, mode: Mode) -> Tensor<T> {
        let y = at.layer.forward(x, mode);
        if !self.active.load(Ordering::Relaxed) {
            return y;
        }
        let (mean, std, zero_fraction, dead_fraction) = measure(&y);
        let (lo, hi, histogram) = histogram(&y, HISTOGRAM_BINS);
        let s = ActivationStats {
            name: at.name.to_string(),
            layer: at.describe.to_string(),
            mean,
            std,
            zero_fraction,
            dead_fraction,
            lo,
            hi,
            histogram,
        };
        self.log.lock().unwrap_or_else(|e| e.into_inner()).push(s);
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_every_leaf_in_order_and_finds_dead_units() {
        let mut model = crate::models::build::<f64>("lenet5", None, 0).unwrap();
        let probe = Arc::new(Probe::default());
        attach(&mut model.net, &probe);
        let x = crate::check::gradcheck::random_input(&model.batch_shape(3), 1);
        let plain = crate::models::build::<f64>("lenet5", None, 0).unwrap().forward(&x, Mode::Eval);
        assert_eq!(model.forward(&x, Mode::Eval).data(), plain.data(), "probing changes no output");
        let s = probe.take();
        let names: Vec<&str> = s.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["conv1", "pool1", "conv2", "pool2", "flatten", "fc1", "relu1", "fc2", "relu2", "fc3"]);
        assert!(s[0].zero_fraction > 0.2 && s[0].zero_fraction < 0.8, "conv1 has a fused ReLU");
        assert_eq!(s[9].zero_fraction, 0.0);
        assert!(probe.take().is_empty(), "take empties the log");
        // Channel 1 is zero in every image: dead; channel 0 fires somewhere.
        let y = Tensor::from_vec(&[2, 2, 1, 2], vec![0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        let (mean, _, zeros, dead) = measure(&y);
        assert_eq!((mean, zeros, dead), (0.125, 7.0 / 8.0, 0.5));
        // Seven zeros in the first of two bins over [0, 1], the one in the last; NaN is left out.
        assert_eq!(histogram(&y, 2), (0.0, 1.0, vec![7, 1]));
        let z = Tensor::from_vec(&[1, 3], vec![f64::NAN, 2.0, 2.0]);
        assert_eq!(histogram(&z, 3), (2.0, 2.0, vec![2, 0, 0]));
    }

    #[test]
    fn parallel_figures_equal_their_definitions() {
        // Over 65,536 values (several histogram chunks), with a dead channel and zeros scattered elsewhere.
        let (b, c, hw) = (2, 3, 120 * 120);
        let x = crate::check::gradcheck::random_input(&[b, c, 120, 120], 7);
        let mut v: Vec<f32> = x.data().iter().map(|&a| if a < -0.5 { 0.0 } else { a as f32 + 3.0 }).collect();
        for i in 0..b {
            v[(i * c + 1) * hw..][..hw].fill(0.0);
        }
        let y = Tensor::from_vec(&[b, c, 120, 120], v.clone());
        let n = v.len() as f64;
        let mean = v.iter().map(|&a| a as f64).sum::<f64>() / n;
        let std = (v.iter().map(|&a| (a as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
        let zeros = v.iter().filter(|&&a| a == 0.0).count() as f64 / n;
        let (m, s, z, dead) = measure(&y);
        assert!((m - mean).abs() < 1e-12 * mean.abs() && (s - std).abs() < 1e-12 * std, "{m} {mean} {s} {std}");
        assert_eq!((z, dead), (zeros, 1.0 / 3.0));
        let (lo, hi) = (0.0, v.iter().fold(0f64, |a, &x| a.max(x as f64)));
        let mut counts = vec![0u32; 30];
        for &a in &v {
            counts[((a as f64 - lo) / ((hi - lo) / 30.0)).min(29.0) as usize] += 1;
        }
        assert_eq!(histogram(&y, 30), (lo, hi, counts));
    }
}
