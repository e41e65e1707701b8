//! SGD with momentum, the lecture's form: `v = rho*v + dx; x -= lr*v` (PyTorch's `SGD(momentum=rho)`).
//! The velocity builds up along directions the gradient keeps pointing to, and damps the ones it flips.

use super::Step;
use crate::tensor::{Float, Tensor};

pub struct Momentum {
    /// Default 0.9.
    pub rho: f64,
}

impl Momentum {
    pub const SLOTS: &'static [&'static str] = &["velocity"];

    pub fn update<T: Float>(&self, x: &mut [T], dx: &[T], s: &mut [Tensor<T>], h: &Step<T>) {
        let rho = T::c(self.rho);
        for ((x, &dx), v) in x.iter_mut().zip(dx).zip(s[0].data_mut()) {
            *v = rho * *v + dx + h.wd * *x;
            *x -= h.lr * *v;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::optim::OptimizerKind;

    #[test]
    fn matches_torch_optim() {
        super::super::check_against_torch(OptimizerKind::Momentum, "momentum");
        super::super::check_against_torch(OptimizerKind::Momentum, "momentum_wd");
    }
}
