//! Regularization as loss terms, the lecture's list: L2 `lambda2 * sum W^2`, L1 `lambda1 * sum |W|`, and elastic
//! net, both at once (`beta*W^2 + |W|` with `lambda1 = lambda`, `lambda2 = beta*lambda`). Applied to weights only:
//! biases and batch-norm parameters are left free, as the lecture advises. The term is added to the reported loss
//! and its gradient (`2*lambda2*W + lambda1*sign(W)`) to the weights' gradients before the update.
//! (The optimizers' `weight_decay` is PyTorch's coupled L2, `wd = 2*lambda2`, kept for recipes written that way.)

use crate::layers::ParamKind;
use crate::models::Model;
use crate::tensor::Float;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Penalty {
    pub l1: f64,
    pub l2: f64,
}

impl Penalty {
    pub fn is_zero(&self) -> bool {
        self.l1 == 0.0 && self.l2 == 0.0
    }

    /// Adds the penalty's gradient to every trainable weight's gradient; returns the penalty (for the loss).
    pub fn apply<T: Float>(&self, model: &mut Model<T>) -> f64 {
        if self.is_zero() {
            return 0.0;
        }
        let (l1, l2) = (T::c(self.l1), T::c(2.0 * self.l2));
        let mut loss = 0.0;
        model.visit_params(&mut |_, p| {
            if p.kind != ParamKind::Weight || p.frozen {
                return;
            }
            let (mut a1, mut a2) = (0f64, 0f64);
            for (g, &w) in p.grad.data_mut().iter_mut().zip(p.value.data()) {
                let wf = w.to_f64();
                a1 += wf.abs();
                a2 += wf * wf;
                // sign(0) = 0: the subgradient that leaves exact zeros alone.
                let s = if w > T::zero() {
                    T::one()
                } else if w < T::zero() {
                    -T::one()
                } else {
                    T::zero()
                };
                *g += l2 * w + l1 * s;
            }
            loss += self.l1 * a1 + self.l2 * a2;
        });
        loss
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradient_matches_finite_differences_and_skips_biases() {
        let mut m = crate::models::build::<f64>("lenet5", None, 3).unwrap();
        let pen = Penalty { l1: 0.003, l2: 0.02 }; // elastic net
        m.zero_grad();
        let p0 = pen.apply(&mut m);
        let mut grads = Vec::new();
        m.visit_params(&mut |n, p| grads.push((n.to_string(), p.kind, p.grad.data()[..3].to_vec())));
        for (name, kind, g) in grads {
            if kind != ParamKind::Weight {
                assert!(g.iter().all(|&v| v == 0.0), "{name}: biases are not penalised");
                continue;
            }
            for (i, &gi) in g.iter().enumerate() {
                let h = 1e-6;
                let mut loss_at = |d: f64| {
                    m.visit_params(&mut |n, p| {
                        if n == name {
                            p.value.data_mut()[i] += d;
                        }
                    });
                    m.zero_grad();
                    pen.apply(&mut m)
                };
                let (up, down) = (loss_at(h), loss_at(-2.0 * h));
                loss_at(h);
                let num = (up - down) / (2.0 * h);
                assert!((num - gi).abs() < 1e-6 * gi.abs().max(1e-3), "{name}[{i}]: {num} vs {gi}");
            }
        }
        // The value: l1 * sum|W| + l2 * sum W^2 over weights.
        let (mut a1, mut a2) = (0.0, 0.0);
        m.visit_params(&mut |_, p| {
            if p.kind == ParamKind::Weight {
                a1 += p.value.data().iter().map(|v| v.abs()).sum::<f64>();
                a2 += p.value.data().iter().map(|v| v * v).sum::<f64>();
            }
        });
        assert!((p0 - (0.003 * a1 + 0.02 * a2)).abs() < 1e-9 * p0);
    }
}
