//! AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay. The decay shrinks the weights directly,
//! `x -= lr*wd*x`, instead of entering the gradient, where Adam's per-element scaling would distort it.
//! PyTorch's `AdamW`.

use super::Step;
use crate::tensor::{Float, Tensor};

pub struct AdamW {
    pub adam: super::Adam,
}

impl AdamW {
    pub const SLOTS: &'static [&'static str] = &["m", "v"];

    pub fn update<T: Float>(&self, x: &mut [T], dx: &[T], s: &mut [Tensor<T>], h: &Step<T>) {
        let shrink = T::one() - h.lr * h.wd;
        x.iter_mut().for_each(|x| *x *= shrink);
        self.adam.update(x, dx, s, &Step { wd: T::zero(), ..*h });
    }
}

#[cfg(test)]
mod tests {
    use crate::optim::OptimizerKind;

    #[test]
    fn matches_torch_optim() {
        super::super::check_against_torch(OptimizerKind::Adamw, "adamw");
    }
}
