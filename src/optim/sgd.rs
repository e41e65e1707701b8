//! Vanilla SGD, the lecture's first update: `x -= lr * dx`.

use super::Step;
use crate::tensor::{Float, Tensor};

pub struct Sgd;

impl Sgd {
    pub const SLOTS: &'static [&'static str] = &[];

    pub fn update<T: Float>(&self, x: &mut [T], dx: &[T], _s: &mut [Tensor<T>], h: &Step<T>) {
        for (x, &dx) in x.iter_mut().zip(dx) {
            *x -= h.lr * (dx + h.wd * *x);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::optim::OptimizerKind;

    #[test]
    fn matches_torch_optim() {
        super::super::check_against_torch(OptimizerKind::Sgd, "sgd");
        super::super::check_against_torch(OptimizerKind::Sgd, "sgd_wd");
    }
}
