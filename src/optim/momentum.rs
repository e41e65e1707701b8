//! SGD with momentum, the lecture's form: `v = rho*v + dx; x -= lr*v` (PyTorch's `SGD(momentum=rho)`).
//! The velocity builds up along directions the gradient keeps pointing to, and damps the ones it flips.

use super::{Step, UpdateRule};
use crate::tensor::{Float, Tensor};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Momentum {
    /// The velocity's friction; default 0.9.
    #[serde(default = "rho")]
    pub rho: f64,
}

pub(crate) fn rho() -> f64 {
    0.9
}

impl Default for Momentum {
    fn default() -> Self {
        Momentum { rho: rho() }
    }
}

impl<T: Float> UpdateRule<T> for Momentum {
    fn slots(&self) -> &'static [&'static str] {
        &["velocity"]
    }

    fn update(&self, x: &mut [T], g: &[T], s: &mut [Tensor<T>], h: &Step<T>) {
        let rho = T::c(self.rho);
        for ((x, &g), v) in x.iter_mut().zip(g).zip(s[0].data_mut()) {
            *v = rho * *v + g;
            *x -= h.lr * *v;
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn matches_torch_optim() {
        super::super::check_against_torch("momentum", "momentum");
        super::super::check_against_torch("momentum", "momentum_wd");
    }
}
