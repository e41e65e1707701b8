//! Vanilla SGD, the lecture's first update: `x -= lr * dx`.

use super::{Step, UpdateRule};
use crate::tensor::{Float, Tensor};
use serde::{Deserialize, Serialize};

/// No hyperparameters of its own.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sgd {}

impl<T: Float> UpdateRule<T> for Sgd {
    fn slots(&self) -> &'static [&'static str] {
        &[]
    }

    fn update(&self, x: &mut [T], g: &[T], _s: &mut [Tensor<T>], h: &Step<T>) {
        for (x, &g) in x.iter_mut().zip(g) {
            *x -= h.lr * g;
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn matches_torch_optim() {
        super::super::check_against_torch("sgd", "sgd");
        super::super::check_against_torch("sgd", "sgd_wd");
    }
}
