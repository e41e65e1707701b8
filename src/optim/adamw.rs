//! AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay. The decay shrinks the weights directly,
//! `x -= lr*wd*x`, instead of entering the gradient, where Adam's per-element scaling would distort it.
//! PyTorch's `AdamW`.

use super::{Step, UpdateRule};
use crate::tensor::{Float, Tensor};
use serde::{Deserialize, Serialize};

/// Adam's hyperparameters (`beta1`, `beta2`, `eps`), in the same table.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AdamW {
    #[serde(flatten)]
    pub adam: super::Adam,
}

impl<T: Float> UpdateRule<T> for AdamW {
    fn slots(&self) -> &'static [&'static str] {
        &["m", "v"]
    }

    fn update(&self, x: &mut [T], g: &[T], s: &mut [Tensor<T>], h: &Step<T>) {
        let shrink = T::one() - h.lr * h.wd;
        x.iter_mut().for_each(|x| *x *= shrink);
        self.adam.update(x, g, s, h);
    }

    fn decoupled_decay(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn matches_torch_optim() {
        super::super::check_against_torch("adamw", "adamw");
    }
}
