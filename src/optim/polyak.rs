//! Polyak averaging, as the lecture writes it: keep a moving average of the parameters during training,
//! `x_test = decay*x_test + (1-decay)*x` after every step (decay 0.995), and evaluate with the average: it sits
//! nearer the bottom of the valley than the last iterate, which keeps bouncing around it.
//! Batch-norm running statistics are averaged the same way, so the averaged network is self-consistent.

use crate::models::Model;
use crate::tensor::{Float, Tensor};
use std::collections::BTreeMap;

pub struct Polyak<T: Float> {
    pub decay: f64,
    /// The averaged parameters and buffers, by registry name.
    pub avg: BTreeMap<String, Tensor<T>>,
}

impl<T: Float> Polyak<T> {
    /// Starts the average at the model's current weights.
    pub fn new(model: &mut Model<T>, decay: f64) -> Self {
        let mut avg = BTreeMap::new();
        model.visit_state(&mut |n, t| {
            avg.insert(n.to_string(), t.clone());
        });
        Polyak { decay, avg }
    }

    /// One averaging step; call after each optimizer step.
    pub fn update(&mut self, model: &mut Model<T>) {
        let (d, e) = (T::c(self.decay), T::c(1.0 - self.decay));
        let avg = &mut self.avg;
        let mut mix = |n: &str, x: &mut Tensor<T>| {
            if let Some(a) = avg.get_mut(n) {
                a.data_mut().iter_mut().zip(x.data()).for_each(|(a, &x)| *a = d * *a + e * x);
            }
        };
        model.visit_state(&mut mix);
    }

    /// Exchanges the model's weights with the average (call twice to restore): evaluating the averaged model
    /// needs no second copy of the network.
    pub fn swap(&mut self, model: &mut Model<T>) {
        let avg = &mut self.avg;
        let mut sw = |n: &str, x: &mut Tensor<T>| {
            if let Some(a) = avg.get_mut(n) {
                std::mem::swap(a, x);
            }
        };
        model.visit_state(&mut sw);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_follows_the_formula_and_swaps_back() {
        let mut m = crate::models::build::<f64>("lenet5", None, 0).unwrap();
        let mut ema = Polyak::new(&mut m, 0.9);
        let first = |m: &mut Model<f64>| {
            let mut v = 0.0;
            m.visit_params(&mut |n, p| {
                if n == "conv1.weight" {
                    v = p.value.data()[0];
                }
            });
            v
        };
        let x0 = first(&mut m);
        let mut want = x0;
        for k in 1..=5 {
            // Move the weight by hand, as an optimizer step would.
            m.visit_params(&mut |n, p| {
                if n == "conv1.weight" {
                    p.value.data_mut()[0] = x0 + k as f64;
                }
            });
            ema.update(&mut m);
            want = 0.9 * want + 0.1 * (x0 + k as f64);
        }
        assert!((ema.avg["conv1.weight"].data()[0] - want).abs() < 1e-12);
        ema.swap(&mut m);
        assert!((first(&mut m) - want).abs() < 1e-12, "the model now holds the average");
        ema.swap(&mut m);
        assert_eq!(first(&mut m), x0 + 5.0, "and gets its own weights back");
    }
}
