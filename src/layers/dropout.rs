//! DROPOUT, inverted (the lecture's form): at training time keep each unit with probability `p` and divide the
//! survivors by `p`, so test time is the identity and needs no rescaling.
//!
//! Note: `p` here is the probability of *keeping* a unit, as in the lecture; PyTorch's `p` is `1 - p` of ours.

use super::{Layer, Mode};
use crate::init::{rng, Rng64};
use crate::tensor::{Float, Tensor};
use crate::{Error, Result};
use rand::Rng;

pub struct Dropout<T: Float> {
    pub p_keep: f64,
    rng: Rng64,
    /// 0 or 1/p per element, from the last training forward.
    mask: Vec<T>,
    frozen: bool,
    last_mode: Mode,
}

impl<T: Float> Dropout<T> {
    pub fn new(p_keep: f64, seed: u64) -> Result<Self> {
        if !(p_keep > 0.0 && p_keep <= 1.0) {
            return Err(Error::Config(format!("dropout: keep probability must be in (0, 1], got {p_keep}")));
        }
        Ok(Dropout { p_keep, rng: rng(seed), mask: Vec::new(), frozen: false, last_mode: Mode::Train })
    }
}

impl<T: Float> Layer<T> for Dropout<T> {
    fn describe(&self) -> String {
        format!("dropout(keep {})", self.p_keep)
    }
    fn output_shape(&self, x: &[usize]) -> Result<Vec<usize>> {
        Ok(x.to_vec())
    }
    fn forward(&mut self, x: &Tensor<T>, mode: Mode) -> Tensor<T> {
        self.last_mode = mode;
        if !mode.is_train() {
            return x.clone();
        }
        if !(self.frozen && self.mask.len() == x.len()) {
            let scale = T::c(1.0 / self.p_keep);
            let p = self.p_keep;
            self.mask.clear();
            let rng = &mut self.rng;
            self.mask.extend((0..x.len()).map(|_| if rng.random::<f64>() < p { scale } else { T::zero() }));
        }
        let mut y = Tensor::uninit(x.shape());
        crate::kernels::elementwise::map2(x.data(), &self.mask, y.data_mut(), |a, m| a * m);
        y
    }
    fn backward(&mut self, x: &Tensor<T>, _y: &Tensor<T>, dy: &Tensor<T>) -> Tensor<T> {
        if !self.last_mode.is_train() {
            return dy.clone();
        }
        let mut dx = Tensor::uninit(x.shape());
        crate::kernels::elementwise::map2(dy.data(), &self.mask, dx.data_mut(), |d, m| d * m);
        dx
    }
    fn freeze_noise(&mut self, frozen: bool) {
        self.frozen = frozen;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::gradcheck::{check_layer, random_input, Options};

    #[test]
    fn training_expectation_equals_test_output() {
        let x = Tensor::<f64>::from_fn(&[1, 200_000], |i| 1.0 + (i % 7) as f64);
        let mut d = Dropout::<f64>::new(0.5, 3).unwrap();
        let yt = d.forward(&x, Mode::Eval);
        assert_eq!(yt.data(), x.data(), "test time is the identity");
        let ytrain = d.forward(&x, Mode::Train);
        let kept = ytrain.data().iter().filter(|&&v| v != 0.0).count() as f64 / x.len() as f64;
        assert!((kept - 0.5).abs() < 0.005, "kept fraction {kept}");
        // Survivors are scaled by 1/p, so E[train output] = test output.
        let ratio = ytrain.sum() / yt.sum();
        assert!((ratio - 1.0).abs() < 0.01, "E[train]/test = {ratio}");
        assert!(ytrain.data().iter().zip(x.data()).all(|(&y, &v)| y == 0.0 || y == 2.0 * v));
    }

    #[test]
    fn rejects_bad_probability() {
        assert!(Dropout::<f32>::new(0.0, 0).is_err());
        assert!(Dropout::<f32>::new(1.5, 0).is_err());
    }

    #[test]
    fn gradcheck_train_and_eval() {
        for mode in [Mode::Train, Mode::Eval] {
            let mut d = Dropout::<f64>::new(0.6, 1).unwrap();
            let rep = check_layer(&mut d, &random_input(&[4, 10], 2), &Options { mode, ..Options::default() });
            assert!(rep.judged_error() < 1e-6, "{rep}");
        }
    }
}
