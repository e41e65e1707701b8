//! A first layer initialised by whitening (airbench, after Coates & Ng's patch whitening): a `k x k` conv whose
//! filters are the eigenvectors of the training images' `k x k` patch covariance, each scaled by
//! `1 / sqrt(eigenvalue + eps)`, and each also negated, so `2 C k^2` filters. Its outputs are decorrelated,
//! unit-variance patch components (in both signs, so a following ReLU-like activation loses nothing). The filters
//! are computed once from data and then frozen: the layer is preprocessing the network carries with it.

use crate::data::preprocess::Preprocess;
use crate::data::Dataset;
use crate::layers::Param;
use crate::models::Model;
use crate::tensor::Tensor;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// The recipe's `[whitening]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhiteningConfig {
    /// The conv layer to initialise (its parameter `LAYER.weight`); airbench's is `whiten`.
    #[serde(default = "d_layer")]
    pub layer: String,
    /// Training images the covariance is estimated on (airbench: 5000).
    #[serde(default = "d_images")]
    pub images: usize,
    /// Added to each eigenvalue, so that the smallest components are not blown up (airbench: 5e-4).
    #[serde(default = "d_eps")]
    pub eps: f64,
    /// Epochs the layer's bias is trained for before it is frozen too (airbench: 3); absent, it trains throughout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias_epochs: Option<usize>,
}

fn d_layer() -> String {
    "whiten".into()
}
fn d_images() -> usize {
    5000
}
fn d_eps() -> f64 {
    5e-4
}

impl Default for WhiteningConfig {
    fn default() -> Self {
        WhiteningConfig { layer: d_layer(), images: d_images(), eps: d_eps(), bias_epochs: None }
    }
}

impl WhiteningConfig {
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.images == 0 {
            return Err("whitening.images = 0: the covariance needs images (airbench uses 5000)".into());
        }
        if !(self.eps > 0.0 && self.eps.is_finite()) {
            return Err(format!("whitening.eps = {}: must be > 0 (airbench: 5e-4)", self.eps));
        }
        Ok(())
    }

    /// Computes the filters from the first `images` of `train` (preprocessed as the model will see them) and
    /// writes them into the layer's weight, which is then frozen.
    pub fn apply(&self, model: &mut Model<f32>, ds: &Dataset, train: &[usize], prep: &Preprocess) -> Result<()> {
        let name = format!("{}.weight", self.layer);
        let mut shape = None;
        model.visit_params(&mut |n, p| {
            if n == name {
                shape = Some(p.value.shape().to_vec());
            }
        });
        let Some(shape) = shape else {
            return Err(Error::Config(format!(
                "whitening.layer = {:?}: model {} has no parameter {name}",
                self.layer, model.name
            )));
        };
        let c = ds.shape[0];
        let k = shape[2];
        if shape.len() != 4 || shape[1] != c || shape[3] != k || shape[0] != 2 * c * k * k {
            return Err(Error::Config(format!(
                "whitening.layer = {:?}: its weight is {shape:?}, a whitening conv needs [2*C*k*k, C, k, k] = \
                 [{}, {c}, {k}, {k}] (C = {c} image channels)",
                self.layer,
                2 * c * k * k
            )));
        }
        let idx: Vec<usize> = train.iter().copied().take(self.images).collect();
        let raw: Vec<u8> = idx.iter().flat_map(|&i| ds.image(i).iter().copied()).collect();
        let w = filters(&prep.apply(&raw, idx.len()), k, self.eps);
        model.visit_params(&mut |n, p: &mut Param<f32>| {
            if n == name {
                p.value = w.clone();
                p.frozen = true;
            }
        });
        Ok(())
    }
}

/// The `k x k` patch covariance of `x` (`[N, C, H, W]`, every stride-1 patch inside the image), uncentred as
/// airbench computes it, `C k^2` square, row-major, in the conv weight's `(channel, row, column)` order.
pub fn patch_covariance(x: &Tensor<f32>, k: usize) -> Vec<f64> {
    let &[n, c, h, w] = x.shape() else { panic!("patch_covariance takes [N, C, H, W], got {:?}", x.shape()) };
    let d = c * k * k;
    let mut cov = vec![0f64; d * d];
    let mut p = vec![0f64; d];
    let (ho, wo) = (h + 1 - k, w + 1 - k);
    for img in x.data().chunks(c * h * w).take(n) {
        for (y, xx) in (0..ho).flat_map(|y| (0..wo).map(move |xx| (y, xx))) {
            for (j, v) in p.iter_mut().enumerate() {
                let (ch, dy, dx) = (j / (k * k), (j / k) % k, j % k);
                *v = img[(ch * h + y + dy) * w + xx + dx] as f64;
            }
            for (a, &pa) in p.iter().enumerate() {
                for (b, &pb) in p.iter().enumerate().skip(a) {
                    cov[a * d + b] += pa * pb;
                }
            }
        }
    }
    let count = (n * ho * wo).max(1) as f64;
    for a in 0..d {
        for b in a..d {
            cov[a * d + b] /= count;
            cov[b * d + a] = cov[a * d + b];
        }
    }
    cov
}

/// The whitening filters `[2 C k^2, C, k, k]`: eigenvectors by decreasing eigenvalue, scaled by
/// `1 / sqrt(eigenvalue + eps)`, then the same filters negated.
pub fn filters(x: &Tensor<f32>, k: usize, eps: f64) -> Tensor<f32> {
    let c = x.shape()[1];
    let d = c * k * k;
    let cov = patch_covariance(x, k);
    let eig = nalgebra::SymmetricEigen::new(nalgebra::DMatrix::from_row_slice(d, d, &cov));
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    let mut w = Vec::with_capacity(2 * d * d);
    for sign in [1.0, -1.0] {
        for &i in &order {
            let s = sign / (eig.eigenvalues[i].max(0.0) + eps).sqrt();
            w.extend(eig.eigenvectors.column(i).iter().map(|&v| (v * s) as f32));
        }
    }
    Tensor::from_vec(&[2 * d, c, k, k], w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::{conv::Conv2dConfig, Layer, Mode};
    use rand_distr::{Distribution, StandardNormal};

    /// Correlated images: each pixel mixes its neighbours and the other channels.
    fn images(n: usize) -> Tensor<f32> {
        let mut r = crate::init::rng(4);
        let (c, s) = (3, 9);
        let noise: Vec<f32> = (0..n * c * s * s).map(|_| StandardNormal.sample(&mut r)).collect();
        Tensor::from_fn(&[n, c, s, s], |i| {
            let (x, rest) = (i % s, i / s);
            let (y, ch, img) = (rest % s, (rest / s) % c, rest / (s * c));
            let at = |ch: usize, y: usize, x: usize| noise[((img * c + ch) * s + y) * s + x];
            at(ch, y, x) + 0.8 * at(ch, y, (x + 1) % s) + 0.5 * at((ch + 1) % c, y, x) + 0.3 * at(ch, (y + 1) % s, x)
        })
    }

    #[test]
    fn whitened_patches_are_decorrelated_with_unit_variance() {
        let (x, k, eps) = (images(200), 2, 1e-6);
        let w = filters(&x, k, eps);
        assert_eq!(w.shape(), &[24, 3, 2, 2]);
        let mut conv = Conv2dConfig::new(3, 24, 2).bias(false).build::<f32>(&mut crate::init::rng(0)).unwrap();
        conv.weight.value = w;
        let y = conv.forward(&x, Mode::Infer);
        // The outputs' second moments over every position: identity on the first 12 channels, minus the
        // identity between a channel and its negation.
        let (n, ch, hw) = (200, 24, 8 * 8);
        let m = |a: usize, b: usize| {
            let mut s = 0f64;
            for img in 0..n {
                for p in 0..hw {
                    s += y.data()[(img * ch + a) * hw + p] as f64 * y.data()[(img * ch + b) * hw + p] as f64;
                }
            }
            s / (n * hw) as f64
        };
        for a in 0..12 {
            assert!((m(a, a) - 1.0).abs() < 1e-3, "channel {a}: variance {}", m(a, a));
            assert!((m(a, a + 12) + 1.0).abs() < 1e-3, "channel {a} and its negation");
            for b in a + 1..12 {
                assert!(m(a, b).abs() < 1e-3, "channels {a}, {b}: {}", m(a, b));
            }
        }
    }

    #[test]
    fn covariance_is_the_mean_outer_product_of_patches() {
        // One 1x2x2 image, k = 2: a single patch (1, 2, 3, 4).
        let x = Tensor::from_vec(&[1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]);
        let cov = patch_covariance(&x, 2);
        let p = [1.0, 2.0, 3.0, 4.0];
        for a in 0..4 {
            for b in 0..4 {
                assert_eq!(cov[a * 4 + b], p[a] * p[b]);
            }
        }
    }
}
