//! Activation statistics per layer, as a value (like the profiler): the `Probe` is a hook around every leaf layer
//! (`hook.rs`) that records, at each forward pass, its output's mean and std, the fraction of exact zeros,
//! and the fraction of dead units (channels, or features, that are zero for every image of the batch: ReLUs that
//! never fire).

use super::hook::{Hook, Site};
use crate::layers::{Layer, Mode};
use crate::tensor::{Float, Tensor};
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

/// Mean, std, zero fraction and dead-unit fraction of `[B, C, ...]` (units are the C axis).
pub fn measure<T: Float>(y: &Tensor<T>) -> (f64, f64, f64, f64) {
    let v = y.data();
    let n = v.len().max(1) as f64;
    let f = |x: &T| <T as Float>::to_f64(*x);
    let mean = v.iter().map(f).sum::<f64>() / n;
    let var = v.iter().map(|x| (f(x) - mean).powi(2)).sum::<f64>() / n;
    let zeros = v.iter().filter(|x| **x == T::zero()).count() as f64 / n;
    let s = y.shape();
    let (b, c) = (s[0].max(1), s.get(1).copied().unwrap_or(1).max(1));
    let per = v.len() / (b * c).max(1);
    let dead = (0..c)
        .filter(|&ch| (0..b).all(|i| v[(i * c + ch) * per..(i * c + ch + 1) * per].iter().all(|x| *x == T::zero())))
        .count() as f64
        / c as f64;
    (mean, var.sqrt(), zeros, dead)
}

/// `bins` equal-width counts of `y`'s finite values over their range, with the range.
pub fn histogram<T: Float>(y: &Tensor<T>, bins: usize) -> (f64, f64, Vec<u32>) {
    let f = |x: &T| <T as Float>::to_f64(*x);
    let finite = || y.data().iter().map(f).filter(|v| v.is_finite());
    let (lo, hi) = finite().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    let mut counts = vec![0u32; bins.max(1)];
    if lo > hi {
        return (0.0, 0.0, counts);
    }
    let width = ((hi - lo) / counts.len() as f64).max(f64::MIN_POSITIVE);
    let last = counts.len() - 1;
    for v in finite() {
        counts[(((v - lo) / width) as usize).min(last)] += 1;
    }
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
}
