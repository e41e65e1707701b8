//! Weight initialisation, as in the lecture: small random numbers, Xavier/Glorot, He/Kaiming; identity (Dirac)
//! kernels; and, from data, a whitening first layer (`whitening`).

pub mod whitening;

use crate::tensor::{Float, Tensor};
use rand::Rng;
use rand_distr::{Distribution, Normal, Uniform};
use serde::{Deserialize, Serialize};

/// How to fill a weight tensor. `fan_in` / `fan_out` are `channels x kernel area` as in PyTorch.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Init {
    /// `N(0, std^2)`; the lecture's "small random numbers" uses std 0.01, which starves deep nets.
    SmallRandom {
        std: f64,
    },
    /// Glorot & Bengio 2010: `std = sqrt(2 / (fan_in + fan_out))`.
    XavierNormal,
    /// `U(-a, a)`, `a = sqrt(6 / (fan_in + fan_out))`.
    XavierUniform,
    /// He et al. 2015, for ReLU nets: `std = sqrt(2 / fan_in)`. The default for conv and linear weights.
    HeNormal,
    /// `U(-a, a)`, `a = sqrt(6 / fan_in)`.
    HeUniform,
    /// PyTorch's default for conv and linear layers: `U(-a, a)`, `a = 1 / sqrt(fan_in)`.
    TorchDefault,
    Zeros,
    Constant {
        value: f64,
    },
}

impl Default for Init {
    fn default() -> Self {
        Init::HeNormal
    }
}

impl Init {
    pub fn small_random() -> Self {
        Init::SmallRandom { std: 0.01 }
    }

    pub fn tensor<T: Float>(&self, shape: &[usize], fan_in: usize, fan_out: usize, rng: &mut impl Rng) -> Tensor<T> {
        let (fi, fo) = (fan_in.max(1) as f64, fan_out.max(1) as f64);
        let normal = |std: f64, rng: &mut dyn rand::RngCore| {
            let d = Normal::new(0.0, std).expect("std is finite and non-negative");
            Tensor::from_fn(shape, |_| T::c(d.sample(rng)))
        };
        let uniform = |a: f64, rng: &mut dyn rand::RngCore| {
            let d = Uniform::new_inclusive(-a, a).expect("bound is finite");
            Tensor::from_fn(shape, |_| T::c(d.sample(rng)))
        };
        match *self {
            Init::SmallRandom { std } => normal(std, rng),
            Init::XavierNormal => normal((2.0 / (fi + fo)).sqrt(), rng),
            Init::XavierUniform => uniform((6.0 / (fi + fo)).sqrt(), rng),
            Init::HeNormal => normal((2.0 / fi).sqrt(), rng),
            Init::HeUniform => uniform((6.0 / fi).sqrt(), rng),
            Init::TorchDefault => uniform(1.0 / fi.sqrt(), rng),
            Init::Zeros => Tensor::zeros(shape),
            Init::Constant { value } => Tensor::full(shape, T::c(value)),
        }
    }
}

/// Turns the first `min(out, in)` filters of a conv weight `[out, in, k, k]` into identity kernels (PyTorch's
/// `dirac_` on `w[:in]`): filter `o` passes channel `o` through its centre tap. The block then starts close to
/// the identity map, an implicit residual (airbench); the remaining filters keep their random values.
pub fn dirac<T: Float>(w: &mut Tensor<T>) {
    let &[o, i, kh, kw] = w.shape() else { return };
    let centre = (kh / 2) * kw + kw / 2;
    for (f, filter) in w.data_mut().chunks_mut(i * kh * kw).take(o.min(i)).enumerate() {
        filter.fill(T::zero());
        filter[f * kh * kw + centre] = T::one();
    }
}

/// The seeded generator used everywhere (stable across platforms and crate versions).
pub type Rng64 = rand_chacha::ChaCha8Rng;

pub fn rng(seed: u64) -> Rng64 {
    use rand::SeedableRng;
    Rng64::seed_from_u64(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn std_of(t: &Tensor<f64>) -> f64 {
        let n = t.len() as f64;
        let m = t.sum() / n;
        (t.data().iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n).sqrt()
    }

    #[test]
    fn scales_follow_the_formulas() {
        let mut r = rng(1);
        let (fi, fo) = (64 * 9, 128 * 9);
        let shape = [128, 64, 3, 3];
        let he = Init::HeNormal.tensor::<f64>(&shape, fi, fo, &mut r);
        assert!((std_of(&he) / (2.0 / fi as f64).sqrt() - 1.0).abs() < 0.02);
        let xu = Init::XavierUniform.tensor::<f64>(&shape, fi, fo, &mut r);
        let a = (6.0 / (fi + fo) as f64).sqrt();
        assert!(xu.max_abs() <= a && xu.max_abs() > 0.99 * a);
        // Uniform(-a, a) has std a/sqrt(3).
        assert!((std_of(&xu) / (a / 3f64.sqrt()) - 1.0).abs() < 0.02);
        let sr = Init::small_random().tensor::<f64>(&shape, fi, fo, &mut r);
        assert!((std_of(&sr) / 0.01 - 1.0).abs() < 0.02);
        assert_eq!(Init::Constant { value: 1.0 }.tensor::<f64>(&[3], 1, 1, &mut r).data(), &[1.0; 3]);
        let td = Init::TorchDefault.tensor::<f64>(&shape, fi, fo, &mut r);
        let a = 1.0 / (fi as f64).sqrt();
        assert!(td.max_abs() <= a && td.max_abs() > 0.99 * a);
    }

    #[test]
    fn dirac_filters_pass_their_channel_through() {
        use crate::layers::{conv::Conv2dConfig, Layer, Mode};
        let mut conv = Conv2dConfig::new(3, 5, 3).padding(1).bias(false).build::<f64>(&mut rng(2)).unwrap();
        dirac(&mut conv.weight.value);
        let x = crate::check::gradcheck::random_input(&[2, 3, 4, 4], 1);
        let y = conv.forward(&x, Mode::Train);
        let plane = 16;
        for b in 0..2 {
            for c in 0..3 {
                let (got, want) =
                    (&y.data()[(b * 5 + c) * plane..][..plane], &x.data()[(b * 3 + c) * plane..][..plane]);
                assert!(got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-12), "image {b}, channel {c}");
            }
        }
        let rest = &conv.weight.value.data()[3 * 27..];
        assert!(rest.iter().any(|&v| v != 0.0), "filters past the input channels keep their random values");
    }
}
