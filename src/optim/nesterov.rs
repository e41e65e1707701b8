//! Nesterov momentum in the lecture's change-of-variables form: the stored `x` is the look-ahead point
//! `x + rho*v`, so the gradient is taken where it is needed and no second evaluation is required:
//! `old_v = v; v = rho*v - lr*dx; x += -rho*old_v + (1 + rho)*v`.
//! With a constant rate this is exactly PyTorch's `SGD(momentum=rho, nesterov=True)`, whose buffer is `-v/lr`.

use super::{Step, UpdateRule};
use crate::tensor::{Float, Tensor};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nesterov {
    /// Default 0.9.
    #[serde(default = "super::momentum::rho")]
    pub rho: f64,
}

impl Default for Nesterov {
    fn default() -> Self {
        Nesterov { rho: super::momentum::rho() }
    }
}

impl<T: Float> UpdateRule<T> for Nesterov {
    fn slots(&self) -> &'static [&'static str] {
        &["velocity"]
    }

    fn update(&self, x: &mut [T], g: &[T], s: &mut [Tensor<T>], h: &Step<T>) {
        let rho = T::c(self.rho);
        for ((x, &g), v) in x.iter_mut().zip(g).zip(s[0].data_mut()) {
            let old_v = *v;
            *v = rho * *v - h.lr * g;
            *x += -rho * old_v + (T::one() + rho) * *v;
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn matches_torch_optim() {
        super::super::check_against_torch("nesterov", "nesterov");
        super::super::check_against_torch("nesterov", "nesterov_wd");
    }

    #[test]
    fn the_lecture_two_forms_agree() {
        // Form 1 takes the gradient at the look-ahead point: v = rho*v - lr*grad(x + rho*v); x += v.
        // Form 2 (this file) stores x~ = x + rho*v and needs only grad(x~). Same iterates, up to rounding.
        use crate::layers::{Param, ParamKind};
        use crate::optim::{Optimizer, OptimizerConfig};
        use crate::tensor::Tensor;
        let (rho, lr) = (0.9, 0.02);
        let a = [1.0, 10.0, 0.1, 3.0, 0.5, 30.0];
        let grad = |x: &[f64], t: usize| -> Vec<f64> {
            (0..6).map(|i| a[i] * x[i] - 0.1 * i as f64 + 0.3 * ((t * 7 + i) as f64).sin()).collect()
        };
        let (mut x, mut v) = (vec![0.5, -1.2, 2.0, 0.05, -0.3, 1.0], vec![0.0; 6]);
        let mut opt = Optimizer::<f64>::new(&OptimizerConfig::Nesterov(super::Nesterov { rho }), lr, 0.0).unwrap();
        let mut p = Param::new(Tensor::from_vec(&[6], x.clone()), ParamKind::Weight);
        for t in 0..30 {
            let ahead: Vec<f64> = x.iter().zip(&v).map(|(x, v)| x + rho * v).collect();
            let g = grad(&ahead, t);
            for i in 0..6 {
                v[i] = rho * v[i] - lr * g[i];
                x[i] += v[i];
            }
            p.grad = Tensor::from_vec(&[6], grad(p.value.data(), t));
            opt.begin_step();
            opt.update("w", &mut p);
            for i in 0..6 {
                let tilde = x[i] + rho * v[i];
                assert!((p.value.data()[i] - tilde).abs() < 1e-12, "step {t}: {} vs {tilde}", p.value.data()[i]);
            }
        }
    }
}
