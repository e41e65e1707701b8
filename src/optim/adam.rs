//! Adam (Kingma & Ba 2015) with bias correction, the lecture's form:
//! `m = b1*m + (1-b1)*dx; v = b2*v + (1-b2)*dx^2; x -= lr * (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps)`.
//! Momentum (`m`) plus RMSProp (`v`); the correction keeps the first steps from being tiny. PyTorch's `Adam`.

use super::Step;
use crate::tensor::{Float, Tensor};

pub struct Adam {
    /// Defaults 0.9, 0.999, 1e-8.
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

impl Adam {
    pub const SLOTS: &'static [&'static str] = &["m", "v"];

    pub fn update<T: Float>(&self, x: &mut [T], dx: &[T], s: &mut [Tensor<T>], h: &Step<T>) {
        let t = h.t.max(1) as i32;
        let (b1, b2, eps) = (T::c(self.beta1), T::c(self.beta2), T::c(self.eps));
        let (bc1, bc2) = (T::c(1.0 - self.beta1.powi(t)), T::c(1.0 - self.beta2.powi(t)));
        let [m, v] = s else { unreachable!("adam has two slots") };
        for (((x, &dx), m), v) in x.iter_mut().zip(dx).zip(m.data_mut()).zip(v.data_mut()) {
            let g = dx + h.wd * *x;
            *m = b1 * *m + (T::one() - b1) * g;
            *v = b2 * *v + (T::one() - b2) * g * g;
            *x -= h.lr * (*m / bc1) / ((*v / bc2).sqrt() + eps);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::optim::OptimizerKind;

    #[test]
    fn matches_torch_optim() {
        super::super::check_against_torch(OptimizerKind::Adam, "adam");
        super::super::check_against_torch(OptimizerKind::Adam, "adam_wd");
    }
}
