//! AdaGrad (Duchi et al. 2011): per-element rates shrink with the sum of squared gradients,
//! `g2 += dx^2; x -= lr * dx / (sqrt(g2) + eps)`. Steps decay towards zero over a long run, which is why
//! RMSProp leaks the sum. PyTorch's `Adagrad` (eps 1e-10).

use super::Step;
use crate::tensor::{Float, Tensor};

pub struct AdaGrad {
    /// Default 1e-10 (PyTorch's).
    pub eps: f64,
}

impl AdaGrad {
    pub const SLOTS: &'static [&'static str] = &["grad_squared_sum"];

    pub fn update<T: Float>(&self, x: &mut [T], dx: &[T], s: &mut [Tensor<T>], h: &Step<T>) {
        let eps = T::c(self.eps);
        for ((x, &dx), g2) in x.iter_mut().zip(dx).zip(s[0].data_mut()) {
            let g = dx + h.wd * *x;
            *g2 += g * g;
            *x -= h.lr * g / (g2.sqrt() + eps);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::optim::OptimizerKind;

    #[test]
    fn matches_torch_optim() {
        super::super::check_against_torch(OptimizerKind::Adagrad, "adagrad");
    }
}
