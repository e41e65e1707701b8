//! Adam (Kingma & Ba 2014) with bias correction, the lecture's form:
//! `m = b1*m + (1-b1)*dx; v = b2*v + (1-b2)*dx^2; x -= lr * (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps)`.
//! L2 weight decay adds `wd * x` to the gradient of weights (PyTorch's `Adam(weight_decay=...)`).

use crate::layers::{Param, ParamKind};
use crate::tensor::{Float, Tensor};
use crate::{Error, Result};
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
pub struct AdamConfig {
    pub lr: f64,
    /// Default 0.9.
    pub beta1: f64,
    /// Default 0.999.
    pub beta2: f64,
    /// Default 1e-8.
    pub eps: f64,
    pub weight_decay: f64,
}

impl AdamConfig {
    pub fn new(lr: f64) -> Self {
        AdamConfig { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 }
    }
    pub fn build<T: Float>(self) -> Result<Adam<T>> {
        if !(self.lr >= 0.0 && self.lr.is_finite()) {
            return Err(Error::Config(format!("Invalid learning rate: {}", self.lr)));
        }
        for (name, b) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(Error::Config(format!("Invalid {name}: {b} (must be in [0, 1))")));
            }
        }
        if !(self.eps > 0.0) || self.weight_decay < 0.0 {
            return Err(Error::Config(format!("Invalid eps {} or weight decay {}", self.eps, self.weight_decay)));
        }
        Ok(Adam { cfg: self, t: 0, state: BTreeMap::new() })
    }
}

pub struct Adam<T: Float> {
    pub cfg: AdamConfig,
    /// Steps taken (the `t` of the bias correction).
    pub t: u64,
    /// `m.<param>` and `v.<param>`.
    pub state: BTreeMap<String, Tensor<T>>,
}

impl<T: Float> Adam<T> {
    /// Call once per step, before the parameter updates.
    pub fn begin_step(&mut self) {
        self.t += 1;
    }

    pub fn update(&mut self, name: &str, p: &mut Param<T>) {
        if p.frozen {
            return;
        }
        let c = &self.cfg;
        let t = self.t.max(1) as i32;
        let (b1, b2) = (T::c(c.beta1), T::c(c.beta2));
        let (bc1, bc2) = (T::c(1.0 - c.beta1.powi(t)), T::c(1.0 - c.beta2.powi(t)));
        let (lr, eps) = (T::c(c.lr), T::c(c.eps));
        let wd = if p.kind == ParamKind::Weight { T::c(c.weight_decay) } else { T::zero() };
        let shape = p.value.shape().to_vec();
        let mut m = self.state.remove(&format!("m.{name}")).unwrap_or_else(|| Tensor::zeros(&shape));
        let mut v = self.state.remove(&format!("v.{name}")).unwrap_or_else(|| Tensor::zeros(&shape));
        for (((x, &g), m), v) in p.value.data_mut().iter_mut().zip(p.grad.data()).zip(m.data_mut()).zip(v.data_mut()) {
            let g = g + wd * *x;
            *m = b1 * *m + (T::one() - b1) * g;
            *v = b2 * *v + (T::one() - b2) * g * g;
            *x -= lr * (*m / bc1) / ((*v / bc2).sqrt() + eps);
        }
        self.state.insert(format!("m.{name}"), m);
        self.state.insert(format!("v.{name}"), v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_step_moves_by_lr_times_sign() {
        // With bias correction the first step is lr * g / (|g| + eps) ~ lr * sign(g).
        let mut opt = AdamConfig::new(0.1).build::<f64>().unwrap();
        let mut p = Param::new(Tensor::from_vec(&[2], vec![1.0, 1.0]), ParamKind::Weight);
        p.grad = Tensor::from_vec(&[2], vec![3.0, -0.5]);
        opt.begin_step();
        opt.update("w", &mut p);
        assert!((p.value.data()[0] - 0.9).abs() < 1e-7 && (p.value.data()[1] - 1.1).abs() < 1e-7);
        assert!(
            AdamConfig::new(0.1).build::<f32>().is_ok()
                && AdamConfig { beta1: 1.0, ..AdamConfig::new(0.1) }.build::<f32>().is_err()
        );
    }
}
