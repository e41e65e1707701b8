//! Lookahead (Zhang, Lucas, Hinton & Ba 2019): keep a second, "slow" copy of the weights; every `k` steps of the
//! inner optimizer move it part of the way towards the "fast" weights, `slow += alpha * (fast - slow)`, and
//! restart the fast weights from it, `fast = slow`. The inner optimizer explores, the slow weights average out
//! its noise (an exponential average taken every k steps that also pulls the iterate back). airbench runs it with
//! an `alpha` that falls as training ends. Batch-norm running statistics move the same way, so the network stays
//! self-consistent.

use crate::models::Model;
use crate::tensor::{Float, Tensor};
use std::collections::BTreeMap;

pub struct Lookahead<T: Float> {
    /// The slow weights and buffers, by registry name.
    pub slow: BTreeMap<String, Tensor<T>>,
}

impl<T: Float> Lookahead<T> {
    /// Starts the slow weights at the model's current ones.
    pub fn new(model: &mut Model<T>) -> Self {
        let mut slow = BTreeMap::new();
        model.visit_state(&mut |n, t| {
            slow.insert(n.to_string(), t.clone());
        });
        Lookahead { slow }
    }

    /// `slow += alpha * (fast - slow)`, then `fast = slow`. `alpha = 1` keeps the fast weights, `alpha = 0` throws
    /// the last k steps away.
    pub fn sync(&mut self, model: &mut Model<T>, alpha: f64) {
        let a = T::c(alpha);
        let slow = &mut self.slow;
        let mut pull = |n: &str, fast: &mut Tensor<T>| {
            if let Some(s) = slow.get_mut(n) {
                for (s, f) in s.data_mut().iter_mut().zip(fast.data_mut()) {
                    *s = *s + a * (*f - *s);
                    *f = *s;
                }
            }
        };
        model.visit_state(&mut pull);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(m: &mut Model<f64>) -> f64 {
        let mut v = 0.0;
        m.visit_params(&mut |n, p| {
            if n == "conv1.weight" {
                v = p.value.data()[0];
            }
        });
        v
    }

    fn set_first(m: &mut Model<f64>, v: f64) {
        m.visit_params(&mut |n, p| {
            if n == "conv1.weight" {
                p.value.data_mut()[0] = v;
            }
        });
    }

    #[test]
    fn slow_weights_follow_the_formula_and_reset_the_fast_ones() {
        let mut m = crate::models::build::<f64>("lenet5", None, 0).unwrap();
        let x0 = first(&mut m);
        let mut la = Lookahead::new(&mut m);
        let mut slow = x0;
        for k in 1..=4 {
            // k inner steps moved the fast weight by +1 each time.
            let fast = first(&mut m) + 1.0;
            set_first(&mut m, fast);
            la.sync(&mut m, 0.5);
            slow += 0.5 * (slow + 1.0 - slow);
            assert!((first(&mut m) - slow).abs() < 1e-12, "sync {k}: the fast weights restart from the slow ones");
            assert!((la.slow["conv1.weight"].data()[0] - slow).abs() < 1e-12);
        }
        set_first(&mut m, 100.0);
        la.sync(&mut m, 1.0);
        assert_eq!(first(&mut m), 100.0, "alpha 1 keeps the fast weights");
        set_first(&mut m, -7.0);
        la.sync(&mut m, 0.0);
        assert_eq!(first(&mut m), 100.0, "alpha 0 goes back to the slow weights");
    }
}
