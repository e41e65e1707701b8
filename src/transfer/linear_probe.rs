//! A linear classifier on frozen features (the lecture: "small dataset, similar to ImageNet: use a linear
//! classifier on the top layer"). Features are standardised with the training set's mean and std, then softmax
//! regression or a multiclass SVM with L2 weight decay is fitted full-batch by L-BFGS: no rate to tune, and it
//! converges in seconds on a few thousand rows.

use super::features::Features;
use crate::loss::Loss;
use crate::optim::lbfgs::{Lbfgs, LbfgsReport};
use crate::tensor::Tensor;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProbeConfig {
    pub loss: Loss,
    /// `lambda` in `loss + lambda/2 ||W||^2` (biases not decayed).
    pub l2: f64,
    pub max_iter: usize,
    /// Standardise features first (default). A head that will be fine-tuned is fitted on raw features instead:
    /// folding `1 / std` into its weights would make near-constant features carry huge weights, and dropout's
    /// noise on them would swamp the scores.
    pub standardise: bool,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig { loss: Loss::SoftmaxCrossEntropy, l2: 1e-2, max_iter: 300, standardise: true }
    }
}

/// The fitted classifier: `scores = W ((x - mean) / std) + b`.
#[derive(Clone, Debug, Serialize)]
pub struct Probe {
    pub classes: usize,
    pub dim: usize,
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    /// `[classes, dim]`, row-major.
    pub w: Vec<f64>,
    pub b: Vec<f64>,
}

/// Fits a probe on `train` (labels below `classes`).
pub fn fit(train: &Features, classes: usize, cfg: &ProbeConfig) -> Result<(Probe, LbfgsReport)> {
    if train.is_empty() || classes < 2 {
        return Err(Error::Config(format!("a linear probe needs images of 2 or more classes (got {classes})")));
    }
    if !(cfg.l2 >= 0.0 && cfg.l2.is_finite()) {
        return Err(Error::Config(format!("l2 = {} must be a finite number >= 0", cfg.l2)));
    }
    let (mean, std) =
        if cfg.standardise { standardisation(train) } else { (vec![0.0; train.dim], vec![1.0; train.dim]) };
    let mut probe = Probe { classes, dim: train.dim, mean, std, w: vec![], b: vec![] };
    let z = probe.standardise(train);
    let (n, d, c) = (train.len(), train.dim, classes);
    let mut theta = vec![0.0; c * d + c];
    let mut objective = |th: &[f64], g: &mut [f64]| -> f64 {
        let (w, b) = th.split_at(c * d);
        let scores = Tensor::from_vec(&[n, c], scores(&z, w, b, d, c));
        let out = cfg.loss.compute(&scores, &train.labels);
        g.fill(0.0);
        let (gw, gb) = g.split_at_mut(c * d);
        for (row, ds) in z.chunks(d).zip(out.dscores.data().chunks(c)) {
            for (k, &dk) in ds.iter().enumerate() {
                gb[k] += dk;
                gw[k * d..][..d].iter_mut().zip(row).for_each(|(g, &x)| *g += dk * x);
            }
        }
        gw.iter_mut().zip(w).for_each(|(g, &wv)| *g += cfg.l2 * wv);
        out.loss + 0.5 * cfg.l2 * w.iter().map(|v| v * v).sum::<f64>()
    };
    let report = Lbfgs { max_iter: cfg.max_iter, ..Default::default() }.minimize(&mut theta, &mut objective);
    probe.b = theta.split_off(c * d);
    probe.w = theta;
    Ok((probe, report))
}

/// The candidates `choose_l2` tries: log-spaced, as the lecture advises for regularization strengths.
pub const L2_GRID: [f64; 6] = [1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0];

/// One candidate's cross-validated figures.
#[derive(Clone, Debug, Serialize)]
pub struct Candidate {
    pub l2: f64,
    /// Mean held-out loss over the folds (the criterion: smoother than accuracy on small sets).
    pub loss: f64,
    pub accuracy: f64,
}

/// Picks `l2` by `folds`-fold cross-validation on the training features (never the test split): the candidate
/// with the lowest held-out loss. Rows go to folds round-robin after a seeded shuffle.
pub fn choose_l2(train: &Features, classes: usize, base: &ProbeConfig, folds: usize) -> Result<(f64, Vec<Candidate>)> {
    let loss = base.loss;
    let n = train.len();
    if folds < 2 || n < 2 * folds {
        return Err(Error::Config(format!("{folds}-fold cross-validation needs at least {} images", 2 * folds)));
    }
    let mut order: Vec<usize> = (0..n).collect();
    rand::seq::SliceRandom::shuffle(order.as_mut_slice(), &mut crate::init::rng(0));
    let mut out = Vec::new();
    for &l2 in &L2_GRID {
        let (mut loss_sum, mut right) = (0.0, 0);
        for k in 0..folds {
            let (held, kept): (Vec<(usize, usize)>, Vec<(usize, usize)>) =
                order.iter().copied().enumerate().partition(|(pos, _)| pos % folds == k);
            let (held, kept): (Vec<usize>, Vec<usize>) =
                (held.into_iter().map(|p| p.1).collect(), kept.into_iter().map(|p| p.1).collect());
            let (tr, va) = (rows(train, &kept), rows(train, &held));
            let (probe, _) = fit(&tr, classes, &ProbeConfig { l2, ..base.clone() })?;
            let s = scores(&probe.standardise(&va), &probe.w, &probe.b, probe.dim, classes);
            let o = loss.compute(&Tensor::from_vec(&[va.len(), classes], s), &va.labels);
            loss_sum += o.loss * va.len() as f64;
            right += o.correct;
        }
        out.push(Candidate { l2, loss: loss_sum / n as f64, accuracy: right as f64 / n as f64 });
    }
    let best = out.iter().min_by(|a, b| a.loss.total_cmp(&b.loss)).expect("a non-empty grid").l2;
    Ok((best, out))
}

fn rows(f: &Features, idx: &[usize]) -> Features {
    Features {
        dim: f.dim,
        x: idx.iter().flat_map(|&i| f.row(i).iter().copied()).collect(),
        labels: idx.iter().map(|&i| f.labels[i]).collect(),
    }
}

impl Probe {
    fn standardise(&self, f: &Features) -> Vec<f64> {
        f.x.chunks(f.dim.max(1))
            .flat_map(|row| row.iter().zip(&self.mean).zip(&self.std).map(|((&x, m), s)| (x as f64 - m) / s))
            .collect()
    }

    /// The same classifier on raw features: `W' = W / std`, `b' = b - W' mean` (row-major `[classes, dim]`).
    pub fn as_linear(&self) -> (Vec<f64>, Vec<f64>) {
        let d = self.dim;
        let w: Vec<f64> = self.w.iter().enumerate().map(|(i, v)| v / self.std[i % d]).collect();
        let b = (0..self.classes)
            .map(|k| self.b[k] - w[k * d..][..d].iter().zip(&self.mean).map(|(a, m)| a * m).sum::<f64>())
            .collect();
        (w, b)
    }

    /// Predicted class of each row.
    pub fn predict(&self, f: &Features) -> Vec<usize> {
        let s = scores(&self.standardise(f), &self.w, &self.b, self.dim, self.classes);
        s.chunks(self.classes).map(crate::loss::argmax).collect()
    }

    /// Share of rows predicted right.
    pub fn accuracy(&self, f: &Features) -> f64 {
        let right = self.predict(f).iter().zip(&f.labels).filter(|(p, l)| p == l).count();
        right as f64 / f.len().max(1) as f64
    }
}

fn standardisation(f: &Features) -> (Vec<f64>, Vec<f64>) {
    let n = f.len() as f64;
    let mut mean = vec![0.0; f.dim];
    let mut sq = vec![0.0; f.dim];
    for row in f.x.chunks(f.dim) {
        for ((m, s), &x) in mean.iter_mut().zip(sq.iter_mut()).zip(row) {
            *m += x as f64;
            *s += (x as f64) * (x as f64);
        }
    }
    mean.iter_mut().for_each(|m| *m /= n);
    // Constant features (dead ReLUs) get std 1, so they stay zero instead of dividing by zero.
    let std: Vec<f64> = sq
        .iter()
        .zip(&mean)
        .map(|(s, m)| (s / n - m * m).max(0.0).sqrt())
        .map(|s| if s > 1e-6 { s } else { 1.0 })
        .collect();
    (mean, std)
}

fn scores(z: &[f64], w: &[f64], b: &[f64], d: usize, c: usize) -> Vec<f64> {
    z.chunks(d)
        .flat_map(|row| (0..c).map(move |k| b[k] + w[k * d..][..d].iter().zip(row).map(|(a, x)| a * x).sum::<f64>()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two Gaussian blobs in 5 dimensions, 1 apart along the first axis, plus a constant feature.
    fn blobs(n: usize, seed: u64) -> Features {
        use rand_distr::{Distribution, Normal};
        let mut r = crate::init::rng(seed);
        let g = Normal::new(0.0f32, 0.3).unwrap();
        let mut x = Vec::new();
        let labels: Vec<usize> = (0..n).map(|i| i % 2).collect();
        for &l in &labels {
            x.push(l as f32 + g.sample(&mut r));
            x.extend((0..4).map(|_| g.sample(&mut r)));
            x.push(7.0);
        }
        Features { dim: 6, x, labels }
    }

    #[test]
    fn separates_blobs_and_the_gradient_is_the_formula() {
        let (train, test) = (blobs(200, 1), blobs(200, 2));
        for loss in [Loss::SoftmaxCrossEntropy, Loss::MulticlassSvm] {
            let (probe, rep) = fit(&train, 2, &ProbeConfig { loss, ..Default::default() }).unwrap();
            assert!(probe.accuracy(&test) > 0.9, "{loss:?}: {} ({rep:?})", probe.accuracy(&test));
            // At the optimum of a smooth objective the gradient vanishes; the weight on the class axis dominates.
            assert!(probe.w[0].abs() > 5.0 * probe.w[1..5].iter().fold(0f64, |m, v| m.max(v.abs())), "{:?}", probe.w);
        }
        let (probe, rep) = fit(&train, 2, &ProbeConfig::default()).unwrap();
        assert!(rep.grad_max < 1e-5, "{rep:?}");
        // As a plain linear layer on raw features it scores the same.
        let (w, b) = probe.as_linear();
        let z = probe.standardise(&test);
        let want = scores(&z, &probe.w, &probe.b, 6, 2);
        let raw: Vec<f64> = test.x.iter().map(|&v| v as f64).collect();
        let got = scores(&raw, &w, &b, 6, 2);
        assert!(want.iter().zip(&got).all(|(a, b)| (a - b).abs() < 1e-9 * a.abs().max(1.0)));
    }

    #[test]
    fn cross_validation_prefers_strong_decay_on_noise_and_weak_decay_on_signal() {
        // Labels independent of the features: any fit is overfitting, the strongest decay wins.
        let mut noise = blobs(60, 3);
        noise.labels = (0..60).map(|i| (i * 7 / 3) % 2).collect();
        noise.x.chunks_mut(6).for_each(|r| r[0] = 0.3 * r[1]);
        let (l2, c) = choose_l2(&noise, 2, &ProbeConfig::default(), 5).unwrap();
        assert_eq!(l2, 100.0, "{c:?}");
        let (l2, c) = choose_l2(&blobs(60, 4), 2, &ProbeConfig::default(), 5).unwrap();
        assert!(l2 <= 1.0, "{c:?}");
        assert!(choose_l2(&blobs(6, 1), 2, &ProbeConfig::default(), 5).is_err());
    }

    #[test]
    fn refuses_one_class_and_bad_l2() {
        let f = blobs(4, 1);
        assert!(fit(&f, 1, &ProbeConfig::default()).is_err());
        assert!(fit(&f, 2, &ProbeConfig { l2: f64::NAN, ..Default::default() }).is_err());
    }
}
