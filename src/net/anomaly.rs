//! Anomaly detection (PyTorch's `detect_anomaly`): a hook around every leaf layer (`hook.rs`) that traces the
//! first NaN or infinity of a step to the layer that made it: the forward output of a layer whose input was
//! finite, or the input gradient of a layer whose output gradient was finite. It reads every value of every
//! layer's output and gradient, so it costs a pass over the activations: a debugging mode, off by default.

use super::hook::{Hook, Site};
use crate::layers::{Layer, Mode};
use crate::tensor::{Float, Tensor};
use std::sync::{Arc, Mutex};

/// The first anomaly seen since the last `take`.
#[derive(Default)]
pub struct Watch {
    first: Mutex<Option<String>>,
}

impl Watch {
    pub fn take(&self) -> Option<String> {
        self.first.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
    fn report(&self, what: impl FnOnce() -> String) {
        let mut f = self.first.lock().unwrap_or_else(|e| e.into_inner());
        if f.is_none() {
            *f = Some(what());
        }
    }
}

pub fn attach<T: Float>(net: &mut dyn Layer<T>, watch: &Arc<Watch>) {
    super::hook::attach(net, watch);
}

/// Where the first non-finite value of `t` is, as "NaN at element i" (None: all finite).
fn first_bad<T: Float>(t: &Tensor<T>) -> Option<String> {
    let (i, v) = t.data().iter().enumerate().find(|(_, v)| !<T as Float>::to_f64(**v).is_finite())?;
    Some(format!("{} at element {i} of {:?}", <T as Float>::to_f64(*v), t.shape()))
}

impl<T: Float> Hook<T> for Watch {
    fn forward(&self, at: Site<'_, T>, x: &Tensor<T>, mode: Mode) -> Tensor<T> {
        let y = at.layer.forward(x, mode);
        if let Some(bad) = first_bad(&y).filter(|_| first_bad(x).is_none()) {
            self.report(|| {
                format!("the forward output of '{}' ({}): {bad}, from a finite input", at.name, at.describe)
            });
        }
        y
    }
    fn backward(&self, at: Site<'_, T>, x: &Tensor<T>, y: &Tensor<T>, dy: &Tensor<T>) -> Tensor<T> {
        let dx = at.layer.backward(x, y, dy);
        if let Some(bad) = first_bad(&dx).filter(|_| first_bad(dy).is_none()) {
            self.report(|| {
                format!("the input gradient of '{}' ({}): {bad}, from a finite output gradient", at.name, at.describe)
            });
        }
        dx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::Layer;

    #[test]
    fn names_the_layer_that_made_the_first_nan() {
        let mut model = crate::models::build::<f64>("lenet5", None, 0).unwrap();
        let watch = Arc::new(Watch::default());
        attach(&mut model.net, &watch);
        let x = crate::check::gradcheck::random_input(&model.batch_shape(2), 1);
        let plain = crate::models::build::<f64>("lenet5", None, 0).unwrap().forward(&x, Mode::Eval);
        assert_eq!(model.forward(&x, Mode::Eval).data(), plain.data(), "watching changes nothing");
        assert!(watch.take().is_none());
        // Poison one weight of fc1: its output is the first non-finite one, not conv1's or fc3's.
        model.net.visit_params("", &mut |n, p| {
            if n == "fc1.weight" {
                p.value.data_mut()[0] = f64::INFINITY;
            }
        });
        model.forward(&x, Mode::Eval);
        let w = watch.take().unwrap();
        assert!(w.contains("'fc1'") && w.contains("forward output"), "{w}");
    }
}
