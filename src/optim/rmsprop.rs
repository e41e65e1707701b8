//! RMSProp (Tieleman & Hinton 2012), the lecture's "leaky AdaGrad":
//! `g2 = decay*g2 + (1-decay)*dx^2; x -= lr * dx / (sqrt(g2) + eps)`. PyTorch's `RMSprop` (alpha = decay).

use super::{Step, UpdateRule};
use crate::tensor::{Float, Tensor};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RmsProp {
    /// How much of the running mean of squares survives each step; default 0.99.
    #[serde(default = "decay")]
    pub decay: f64,
    /// Default 1e-8.
    #[serde(default = "super::adam::eps")]
    pub eps: f64,
}

fn decay() -> f64 {
    0.99
}

impl Default for RmsProp {
    fn default() -> Self {
        RmsProp { decay: decay(), eps: super::adam::eps() }
    }
}

impl<T: Float> UpdateRule<T> for RmsProp {
    fn slots(&self) -> &'static [&'static str] {
        &["grad_squared"]
    }

    fn update(&self, x: &mut [T], g: &[T], s: &mut [Tensor<T>], h: &Step<T>) {
        let (d, eps) = (T::c(self.decay), T::c(self.eps));
        for ((x, &g), g2) in x.iter_mut().zip(g).zip(s[0].data_mut()) {
            *g2 = d * *g2 + (T::one() - d) * g * g;
            *x -= h.lr * g / (g2.sqrt() + eps);
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn matches_torch_optim() {
        super::super::check_against_torch("rmsprop", "rmsprop");
        super::super::check_against_torch("rmsprop", "rmsprop_09");
    }
}
