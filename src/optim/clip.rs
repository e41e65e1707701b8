//! Gradient clipping, applied after backward and before the update: by global norm (rescale every gradient so
//! that the norm over all of them is at most `max_norm`, PyTorch's `clip_grad_norm_`) or by value (clamp each
//! element to `[-v, v]`, `clip_grad_value_`). Frozen parameters are left out.

use crate::models::Model;
use crate::tensor::Float;

/// Scales the gradients to global L2 norm `max_norm` if they exceed it; returns the norm before clipping.
pub fn by_norm<T: Float>(model: &mut Model<T>, max_norm: f64) -> f64 {
    let mut sq = 0f64;
    model.visit_params(&mut |_, p| {
        if !p.frozen {
            sq += p.grad.data().iter().map(|&g| g.to_f64().powi(2)).sum::<f64>();
        }
    });
    let norm = sq.sqrt();
    // PyTorch's form: coefficient max_norm / (norm + 1e-6), applied only when below 1.
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        let c = T::c(coef);
        model.visit_params(&mut |_, p| {
            if !p.frozen {
                p.grad.data_mut().iter_mut().for_each(|g| *g *= c);
            }
        });
    }
    norm
}

/// Clamps every gradient element to `[-v, v]`.
pub fn by_value<T: Float>(model: &mut Model<T>, v: f64) {
    let (lo, hi) = (T::c(-v), T::c(v));
    model.visit_params(&mut |_, p| {
        if !p.frozen {
            p.grad.data_mut().iter_mut().for_each(|g| *g = g.max(lo).min(hi));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grads(m: &mut Model<f64>) -> Vec<f64> {
        let mut v = Vec::new();
        m.visit_params(&mut |_, p| v.extend_from_slice(p.grad.data()));
        v
    }

    #[test]
    fn norm_and_value_clipping() {
        let mut m = crate::models::build::<f64>("lenet5", None, 0).unwrap();
        let mut k = 0.0;
        m.visit_params(&mut |_, p| {
            p.grad.data_mut().iter_mut().for_each(|g| {
                k += 1.0;
                *g = (k * 0.37f64).sin();
            })
        });
        let before = grads(&mut m);
        let norm = before.iter().map(|g| g * g).sum::<f64>().sqrt();
        assert!((by_norm(&mut m, 2.0 * norm) - norm).abs() < 1e-9 * norm);
        assert_eq!(grads(&mut m), before, "under the limit: untouched");
        by_norm(&mut m, 1.5);
        let after = grads(&mut m);
        let n2 = after.iter().map(|g| g * g).sum::<f64>().sqrt();
        assert!((n2 - 1.5).abs() < 1e-5, "rescaled to the limit: {n2}");
        assert!(
            after.iter().zip(&before).all(|(a, b)| (a / b - 1.5 / (norm + 1e-6)).abs() < 1e-9 || *b == 0.0),
            "direction kept"
        );
        by_value(&mut m, 0.001);
        assert!(grads(&mut m).iter().all(|g| g.abs() <= 0.001));
    }
}
