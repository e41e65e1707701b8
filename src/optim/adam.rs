//! Adam (Kingma & Ba 2015) with bias correction, the lecture's form:
//! `m = b1*m + (1-b1)*dx; v = b2*v + (1-b2)*dx^2; x -= lr * (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps)`.
//! Momentum (`m`) plus RMSProp (`v`); the correction keeps the first steps from being tiny. PyTorch's `Adam`.

use super::{Step, UpdateRule};
use crate::tensor::{Float, Tensor};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Adam {
    /// Defaults 0.9, 0.999, 1e-8.
    #[serde(default = "beta1")]
    pub beta1: f64,
    #[serde(default = "beta2")]
    pub beta2: f64,
    #[serde(default = "eps")]
    pub eps: f64,
}

fn beta1() -> f64 {
    0.9
}
fn beta2() -> f64 {
    0.999
}
pub(crate) fn eps() -> f64 {
    1e-8
}

impl Default for Adam {
    fn default() -> Self {
        Adam { beta1: beta1(), beta2: beta2(), eps: eps() }
    }
}

impl<T: Float> UpdateRule<T> for Adam {
    fn slots(&self) -> &'static [&'static str] {
        &["m", "v"]
    }

    fn update(&self, x: &mut [T], g: &[T], s: &mut [Tensor<T>], h: &Step<T>) {
        let t = h.t.max(1) as i32;
        let (b1, b2, eps) = (T::c(self.beta1), T::c(self.beta2), T::c(self.eps));
        let (bc1, bc2) = (T::c(1.0 - self.beta1.powi(t)), T::c(1.0 - self.beta2.powi(t)));
        let [m, v] = s else { unreachable!("adam has two slots") };
        for (((x, &g), m), v) in x.iter_mut().zip(g).zip(m.data_mut()).zip(v.data_mut()) {
            *m = b1 * *m + (T::one() - b1) * g;
            *v = b2 * *v + (T::one() - b2) * g * g;
            *x -= h.lr * (*m / bc1) / ((*v / bc2).sqrt() + eps);
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn matches_torch_optim() {
        super::super::check_against_torch("adam", "adam");
        super::super::check_against_torch("adam", "adam_wd");
    }
}
