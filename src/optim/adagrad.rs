//! AdaGrad (Duchi et al. 2011): per-element rates shrink with the sum of squared gradients,
//! `g2 += dx^2; x -= lr * dx / (sqrt(g2) + eps)`. Steps decay towards zero over a long run, which is why
//! RMSProp leaks the sum. PyTorch's `Adagrad` (eps 1e-10).

use super::{Step, UpdateRule};
use crate::tensor::{Float, Tensor};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdaGrad {
    /// Default 1e-10 (PyTorch's).
    #[serde(default = "eps")]
    pub eps: f64,
}

fn eps() -> f64 {
    1e-10
}

impl Default for AdaGrad {
    fn default() -> Self {
        AdaGrad { eps: eps() }
    }
}

impl<T: Float> UpdateRule<T> for AdaGrad {
    fn slots(&self) -> &'static [&'static str] {
        &["grad_squared_sum"]
    }

    fn update(&self, x: &mut [T], g: &[T], s: &mut [Tensor<T>], h: &Step<T>) {
        let eps = T::c(self.eps);
        for ((x, &g), g2) in x.iter_mut().zip(g).zip(s[0].data_mut()) {
            *g2 += g * g;
            *x -= h.lr * g / (g2.sqrt() + eps);
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn matches_torch_optim() {
        super::super::check_against_torch("adagrad", "adagrad");
    }
}
