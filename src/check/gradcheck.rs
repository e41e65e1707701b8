//! Gradient checking: analytic gradients against centred finite differences, in f64.
//!
//! For each parameter tensor (and the input) a subset of elements is perturbed by `±h`; the numerical derivative
//! `(L(w+h) - L(w-h)) / 2h` is compared with the analytic one by relative error `|a - n| / max(|a|, |n|)`.
//! ReLU, max pooling and Maxout have kinks: if a perturbation crosses one, the finite difference is wrong, not the
//! gradient. Such elements are detected (the step `h` and `h/2` disagree, which cannot happen where the loss is
//! smooth) and counted as skipped rather than reported as errors; layer tests use inputs far from any kink.

use crate::init::rng;
use crate::layers::{Layer, Mode};
use crate::loss::Loss;
use crate::tensor::Tensor;
use rand::Rng;
use serde::Serialize;
use std::fmt;

#[derive(Clone, Debug)]
pub struct Options {
    /// Finite-difference step; default 1e-5 (f64).
    pub h: f64,
    /// Elements checked per tensor; larger tensors get a random subset. Default 24.
    pub max_elements: usize,
    pub seed: u64,
    /// Train (batch statistics, dropout masks frozen) or eval mode.
    pub mode: Mode,
    /// Relative disagreement between the `h` and `h/2` differences above which an element straddles a kink
    /// (the step then shrinks; see `judge`).
    pub kink_tol: f64,
    /// Absolute agreement below which analytic and numerical values count as equal: the resolution of centred
    /// differences in f64 for losses of order one. Without it a gradient that vanishes by symmetry (a scale that a
    /// later batch norm removes) would report rounding noise as relative error. Default 1e-9.
    pub atol: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options { h: 1e-5, max_elements: 24, seed: 0, mode: Mode::Train, kink_tol: 1e-6, atol: 1e-9 }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct TensorReport {
    pub name: String,
    pub shape: Vec<usize>,
    pub checked: usize,
    /// The true `|a-n| / max(|a|,|n|)` over the checked elements, also where both are tiny.
    pub max_rel_error: f64,
    pub mean_rel_error: f64,
    /// The largest `|a-n|`.
    pub max_abs_error: f64,
    /// Elements whose values agree within `atol` (counted as agreeing, whatever their relative error).
    pub within_atol: usize,
    /// The largest relative error among elements that do not agree within `atol`: what decides pass or fail.
    pub judged_error: f64,
    pub kinks_skipped: usize,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub loss: f64,
    pub tensors: Vec<TensorReport>,
}

impl Report {
    /// The true largest relative error (reported).
    pub fn max_rel_error(&self) -> f64 {
        self.tensors.iter().map(|t| t.max_rel_error).fold(0.0, f64::max)
    }
    /// The largest relative error of elements that disagree by more than `atol` (decides).
    pub fn judged_error(&self) -> f64 {
        self.tensors.iter().map(|t| t.judged_error).fold(0.0, f64::max)
    }
    pub fn kinks_skipped(&self) -> usize {
        self.tensors.iter().map(|t| t.kinks_skipped).sum()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<40} {:>18} {:>7} {:>10} {:>10} {:>10} {:>6} {:>6}",
            "tensor", "shape", "checked", "max rel", "mean rel", "max abs", "<atol", "kinks"
        )?;
        for t in &self.tensors {
            let shape = format!("{:?}", t.shape);
            writeln!(
                f,
                "{:<40} {:>18} {:>7} {:>10.2e} {:>10.2e} {:>10.2e} {:>6} {:>6}",
                t.name,
                shape,
                t.checked,
                t.max_rel_error,
                t.mean_rel_error,
                t.max_abs_error,
                t.within_atol,
                t.kinks_skipped
            )?;
        }
        let within: usize = self.tensors.iter().map(|t| t.within_atol).sum();
        let checked: usize = self.tensors.iter().map(|t| t.checked).sum();
        write!(
            f,
            "max relative error {:.2e} over {} tensors; {within} of {checked} elements differ by less than the \
             absolute tolerance (column <atol: they pass whatever their relative error, which for a vanishing \
             gradient is rounding noise); the others' largest relative error, which decides: {:.2e}",
            self.max_rel_error(),
            self.tensors.len(),
            self.judged_error()
        )
    }
}

/// `|a - n| / max(|a|, |n|)`, zero when both are zero.
pub fn rel_error(a: f64, n: f64) -> f64 {
    let d = a.abs().max(n.abs());
    if d == 0.0 {
        0.0
    } else {
        (a - n).abs() / d
    }
}

/// Inputs for checking layers with kinks: magnitudes in [0.1, 1] (far from ReLU's 0) and all values distinct by
/// at least `0.9/len` (no ties for max pooling or Maxout), in a seeded random order with random signs.
pub fn random_input(shape: &[usize], seed: u64) -> Tensor<f64> {
    let n: usize = shape.iter().product();
    let mut r = rng(seed);
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, r.random_range(0..=i));
    }
    let data = order
        .iter()
        .map(|&k| {
            let mag = 0.1 + 0.9 * (k as f64 + 0.5) / n as f64;
            if r.random::<bool>() {
                mag
            } else {
                -mag
            }
        })
        .collect();
    Tensor::from_vec(shape, data)
}

/// Checks a layer (or block, or whole network) under the loss `L = sum(y * r)` for a fixed random `r`,
/// whose gradient `dL/dy = r` exercises every output.
pub fn check_layer(layer: &mut dyn Layer<f64>, x: &Tensor<f64>, opts: &Options) -> Report {
    let out_shape = layer.output_shape(x.shape()).expect("gradcheck input shape");
    let mut r = rng(opts.seed ^ 0x9e37);
    let proj = Tensor::from_fn(&out_shape, |_| r.random_range(-1.0..1.0));
    check_with_loss(layer, x, opts, &|y: &Tensor<f64>| {
        let l = y.data().iter().zip(proj.data()).map(|(a, b)| a * b).sum();
        (l, proj.clone())
    })
}

/// Checks a network under its classification loss with the given labels.
pub fn check_network(
    layer: &mut dyn Layer<f64>,
    x: &Tensor<f64>,
    labels: &[usize],
    loss: Loss,
    opts: &Options,
) -> Report {
    check_with_loss(layer, x, opts, &|y: &Tensor<f64>| {
        let out = loss.compute(y, labels);
        (out.loss, out.dscores)
    })
}

/// The general check: `loss` maps the layer's output to `(L, dL/dy)`.
pub fn check_with_loss(
    layer: &mut dyn Layer<f64>,
    x: &Tensor<f64>,
    opts: &Options,
    loss: &dyn Fn(&Tensor<f64>) -> (f64, Tensor<f64>),
) -> Report {
    layer.freeze_noise(true);
    // Analytic pass.
    layer.visit_params("", &mut |_, p| p.grad.data_mut().fill(0.0));
    let y = layer.forward(x, opts.mode);
    let (l0, dy) = loss(&y);
    let dx = layer.backward(x, &y, &dy);
    drop(y);
    let mut analytic: Vec<(String, Tensor<f64>)> = Vec::new();
    // A frozen parameter gets no gradient by design: there is nothing to check.
    layer.visit_params("", &mut |n, p| {
        if !p.frozen {
            analytic.push((n.to_string(), p.grad.clone()))
        }
    });

    let mut rng = rng(opts.seed);
    let mut report = Report { loss: l0, tensors: Vec::new() };
    let eval = |layer: &mut dyn Layer<f64>, x: &Tensor<f64>| loss(&layer.forward(x, opts.mode)).0;

    // Parameters.
    for (name, grad) in &analytic {
        let idx = pick(grad.len(), opts.max_elements, &mut rng);
        let set = |layer: &mut dyn Layer<f64>, i: usize, delta: f64| {
            layer.visit_params("", &mut |n, p| {
                if n == name {
                    p.value.data_mut()[i] += delta;
                }
            })
        };
        let mut errs = Vec::new();
        let mut kinks = 0;
        for &i in &idx {
            let diff = |layer: &mut dyn Layer<f64>, h: f64| {
                set(layer, i, h);
                let lp = eval(layer, x);
                set(layer, i, -2.0 * h);
                let lm = eval(layer, x);
                set(layer, i, h);
                (lp - lm) / (2.0 * h)
            };
            match judge(grad.data()[i], &mut |h| diff(layer, h), opts) {
                Some(e) => errs.push(e),
                None => kinks += 1,
            }
        }
        report.tensors.push(summarise(name, grad.shape(), &errs, kinks));
    }

    // The input.
    let mut xp = x.clone();
    let idx = pick(x.len(), opts.max_elements, &mut rng);
    let (mut errs, mut kinks) = (Vec::new(), 0);
    for &i in &idx {
        let orig = xp.data()[i];
        let mut diff = |h: f64| {
            xp.data_mut()[i] = orig + h;
            let lp = eval(layer, &xp);
            xp.data_mut()[i] = orig - h;
            let lm = eval(layer, &xp);
            xp.data_mut()[i] = orig;
            (lp - lm) / (2.0 * h)
        };
        match judge(dx.data()[i], &mut diff, opts) {
            Some(e) => errs.push(e),
            None => kinks += 1,
        }
    }
    report.tensors.push(summarise("input", x.shape(), &errs, kinks));
    layer.freeze_noise(false);
    report
}

/// One element's verdict: the analytic value against the numerical one.
#[derive(Clone, Copy, Debug)]
struct Verdict {
    rel: f64,
    abs: f64,
    within_atol: bool,
}

/// The analytic value against the centred difference, or `None` where the loss has a kink within every step
/// tried.
///
/// Where the `h` and `h/2` differences disagree, a kink lies within `h` of the point; the step shrinks tenfold
/// (twice at most: f64 still resolves gradients of 1e-3 at h = 1e-7) until two step sizes agree.
fn judge(a: f64, diff: &mut dyn FnMut(f64) -> f64, opts: &Options) -> Option<Verdict> {
    let verdict =
        |n: f64| Verdict { rel: rel_error(a, n), abs: (a - n).abs(), within_atol: (a - n).abs() <= opts.atol };
    let mut h = opts.h;
    let mut n1 = diff(h);
    if verdict(n1).within_atol || verdict(n1).rel < 1e-9 {
        return Some(verdict(n1));
    }
    for _ in 0..3 {
        let n2 = diff(h / 2.0);
        if rel_error(n1, n2) <= opts.kink_tol || (n1 - n2).abs() <= opts.atol {
            return Some(verdict(n1));
        }
        h /= 10.0;
        n1 = diff(h);
    }
    None
}

fn pick(len: usize, max: usize, rng: &mut impl Rng) -> Vec<usize> {
    if len <= max {
        (0..len).collect()
    } else {
        rand::seq::index::sample(rng, len, max).into_vec()
    }
}

fn summarise(name: &str, shape: &[usize], v: &[Verdict], kinks: usize) -> TensorReport {
    let max = |f: &dyn Fn(&Verdict) -> f64| v.iter().map(f).fold(0.0, f64::max);
    TensorReport {
        name: name.to_string(),
        shape: shape.to_vec(),
        checked: v.len(),
        max_rel_error: max(&|e| e.rel),
        mean_rel_error: if v.is_empty() { 0.0 } else { v.iter().map(|e| e.rel).sum::<f64>() / v.len() as f64 },
        max_abs_error: max(&|e| e.abs),
        within_atol: v.iter().filter(|e| e.within_atol).count(),
        judged_error: max(&|e| if e.within_atol { 0.0 } else { e.rel }),
        kinks_skipped: kinks,
    }
}

/// Checks a loss function's score gradient on every element; returns the max relative error.
pub fn check_loss(
    scores: &Tensor<f64>,
    labels: &[usize],
    f: impl Fn(&Tensor<f64>, &[usize]) -> crate::loss::LossOutput<f64>,
) -> f64 {
    let a = f(scores, labels).dscores;
    let h = 1e-5;
    let mut worst: f64 = 0.0;
    for i in 0..scores.len() {
        let mut s = scores.clone();
        s.data_mut()[i] += h;
        let lp = f(&s, labels).loss;
        s.data_mut()[i] -= 2.0 * h;
        let lm = f(&s, labels).loss;
        worst = worst.max(rel_error(a.data()[i], (lp - lm) / (2.0 * h)));
    }
    worst
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::{Mode, Relu};
    use crate::tensor::Tensor;

    /// A layer with a deliberately wrong backward must fail the check: the checker itself is tested.
    struct Broken;
    impl Layer<f64> for Broken {
        fn describe(&self) -> String {
            "broken".into()
        }
        fn output_shape(&self, x: &[usize]) -> crate::Result<Vec<usize>> {
            Ok(x.to_vec())
        }
        fn forward(&mut self, x: &Tensor<f64>, _m: Mode) -> Tensor<f64> {
            x.map(|v| v * v)
        }
        fn backward(&mut self, x: &Tensor<f64>, _y: &Tensor<f64>, dy: &Tensor<f64>) -> Tensor<f64> {
            // Should be 2x dy.
            let mut d = dy.clone();
            d.data_mut().iter_mut().zip(x.data()).for_each(|(g, &v)| *g *= 1.9 * v);
            d
        }
    }

    #[test]
    fn reports_the_true_relative_error_and_decides_with_the_tolerance() {
        // A tanh layer: analytic and numerical gradients differ by rounding, so the true relative error is small
        // but not zero; before, anything under the absolute tolerance was reported as exactly 0.
        let rep = check_layer(&mut crate::layers::Tanh, &random_input(&[2, 6], 1), &Options::default());
        assert!(rep.max_rel_error() > 0.0 && rep.max_rel_error() < 1e-6, "{rep}");
        let t = &rep.tensors[0];
        assert!(t.max_abs_error > 0.0 && t.judged_error <= t.max_rel_error, "{rep}");
        assert!(rep.to_string().contains("which decides"));
    }

    #[test]
    fn catches_a_wrong_backward() {
        let rep = check_layer(&mut Broken, &random_input(&[2, 5], 0), &Options::default());
        assert!(rep.max_rel_error() > 0.04, "{rep}");
    }

    #[test]
    fn shrinks_the_step_near_kinks_and_skips_at_them() {
        // 3e-6 and -4e-6 lie within h = 1e-5 of ReLU's kink: a smaller step resolves them.
        // 1e-9 lies within every step tried: counted as a kink, not reported as an error.
        let x = Tensor::from_vec(&[1, 4], vec![3e-6, -4e-6, 1e-9, -0.5]);
        let rep = check_layer(&mut Relu, &x, &Options::default());
        assert_eq!(rep.kinks_skipped(), 1, "{rep}");
        assert_eq!(rep.tensors[0].checked, 3);
        assert!(rep.max_rel_error() < 1e-9, "{rep}");
    }

    #[test]
    fn random_input_avoids_kinks_and_ties() {
        let x = random_input(&[3, 50], 1);
        assert!(x.data().iter().all(|v| v.abs() >= 0.1 && v.abs() <= 1.0));
        let mut v: Vec<f64> = x.data().iter().map(|v| v.abs()).collect();
        v.sort_by(f64::total_cmp);
        assert!(v.windows(2).all(|w| w[1] - w[0] > 0.005));
    }
}
