//! SGD with momentum, the lecture's form: `v = rho*v + dx; x -= lr*v` (PyTorch's `SGD(momentum=rho)`).
//! With `rho = 0` this is plain SGD. L2 weight decay adds `wd * x` to the gradient of weights.

use crate::layers::{Param, ParamKind};
use crate::tensor::{Float, Tensor};
use crate::{Error, Result};
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
pub struct MomentumConfig {
    pub lr: f64,
    /// Default 0.9.
    pub rho: f64,
    /// L2 penalty on weights (not biases or batch-norm parameters). Default 0.
    pub weight_decay: f64,
}

impl MomentumConfig {
    pub fn new(lr: f64) -> Self {
        MomentumConfig { lr, rho: 0.9, weight_decay: 0.0 }
    }
    pub fn build<T: Float>(self) -> Result<Momentum<T>> {
        if !(self.lr >= 0.0 && self.lr.is_finite()) {
            return Err(Error::Config(format!("Invalid learning rate: {}", self.lr)));
        }
        if !(0.0..1.0).contains(&self.rho) {
            return Err(Error::Config(format!("Invalid momentum: {} (must be in [0, 1))", self.rho)));
        }
        if self.weight_decay < 0.0 {
            return Err(Error::Config(format!("Invalid weight decay: {}", self.weight_decay)));
        }
        Ok(Momentum { cfg: self, state: BTreeMap::new() })
    }
}

pub struct Momentum<T: Float> {
    pub cfg: MomentumConfig,
    /// `velocity.<param>`
    pub state: BTreeMap<String, Tensor<T>>,
}

impl<T: Float> Momentum<T> {
    /// One update of one named parameter; call for every parameter (e.g. from `Model::visit_params`).
    pub fn update(&mut self, name: &str, p: &mut Param<T>) {
        if p.frozen {
            return;
        }
        let (lr, rho) = (T::c(self.cfg.lr), T::c(self.cfg.rho));
        let wd = if p.kind == ParamKind::Weight { T::c(self.cfg.weight_decay) } else { T::zero() };
        let v = self.state.entry(format!("velocity.{name}")).or_insert_with(|| Tensor::zeros(p.value.shape()));
        for ((x, &dx), v) in p.value.data_mut().iter_mut().zip(p.grad.data()).zip(v.data_mut()) {
            *v = rho * *v + dx + wd * *x;
            *x -= lr * *v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_rule_by_hand() {
        let mut opt = MomentumConfig::new(0.1).build::<f64>().unwrap();
        let mut p = Param::new(Tensor::from_vec(&[1], vec![1.0]), ParamKind::Weight);
        p.grad = Tensor::from_vec(&[1], vec![2.0]);
        opt.update("w", &mut p); // v = 2, x = 1 - 0.2
        opt.update("w", &mut p); // v = 1.8 + 2 = 3.8, x = 0.8 - 0.38
        assert!((p.value.data()[0] - 0.42).abs() < 1e-12);
        assert!(MomentumConfig::new(-0.1).build::<f32>().is_err());
    }
}
