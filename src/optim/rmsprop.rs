//! RMSProp (Tieleman & Hinton 2012), the lecture's "leaky AdaGrad":
//! `g2 = decay*g2 + (1-decay)*dx^2; x -= lr * dx / (sqrt(g2) + eps)`. PyTorch's `RMSprop` (alpha = decay).

use super::Step;
use crate::tensor::{Float, Tensor};

pub struct RmsProp {
    /// Default 0.99.
    pub decay: f64,
    /// Default 1e-8.
    pub eps: f64,
}

impl RmsProp {
    pub const SLOTS: &'static [&'static str] = &["grad_squared"];

    pub fn update<T: Float>(&self, x: &mut [T], dx: &[T], s: &mut [Tensor<T>], h: &Step<T>) {
        let (d, eps) = (T::c(self.decay), T::c(self.eps));
        for ((x, &dx), g2) in x.iter_mut().zip(dx).zip(s[0].data_mut()) {
            let g = dx + h.wd * *x;
            *g2 = d * *g2 + (T::one() - d) * g * g;
            *x -= h.lr * g / (g2.sqrt() + eps);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::optim::OptimizerKind;

    #[test]
    fn matches_torch_optim() {
        super::super::check_against_torch(OptimizerKind::Rmsprop, "rmsprop");
        super::super::check_against_torch(OptimizerKind::Rmsprop, "rmsprop_09");
    }
}
