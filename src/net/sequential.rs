//! A sequence of named layers. It keeps the intermediate activations of the last forward for backward.

use crate::layers::{join, BufferVisitor, ChildVisitor, Layer, Mode, ParamVisitor, Walker};
use crate::tensor::{Float, Tensor};
use crate::Result;

pub struct Sequential<T: Float> {
    layers: Vec<(String, Box<dyn Layer<T>>)>,
    /// Outputs of layers `0..n-1` (the last output is returned to the caller, who hands it back in backward).
    pub(super) acts: Vec<Tensor<T>>,
}

impl<T: Float> Default for Sequential<T> {
    fn default() -> Self {
        Sequential { layers: Vec::new(), acts: Vec::new() }
    }
}

impl<T: Float> Sequential<T> {
    pub fn new() -> Self {
        Self::default()
    }
    /// Appends a layer under `name` (the parameter prefix: `conv1` gives `conv1.weight`).
    pub fn push(&mut self, name: impl Into<String>, layer: impl Layer<T> + 'static) -> &mut Self {
        self.layers.push((name.into(), Box::new(layer)));
        self
    }
    pub fn push_boxed(&mut self, name: impl Into<String>, layer: Box<dyn Layer<T>>) -> &mut Self {
        self.layers.push((name.into(), layer));
        self
    }
    pub fn with(mut self, name: impl Into<String>, layer: impl Layer<T> + 'static) -> Self {
        self.push(name, layer);
        self
    }
    pub fn len(&self) -> usize {
        self.layers.len()
    }
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
    pub fn layers(&self) -> impl Iterator<Item = (&str, &dyn Layer<T>)> {
        self.layers.iter().map(|(n, l)| (n.as_str(), l.as_ref()))
    }
    /// Runs the layers up to and including `last` (a top-level name, e.g. `pool`): the features a transfer
    /// learner takes from a trained network.
    pub fn forward_until(&mut self, x: &Tensor<T>, last: &str, mode: Mode) -> Result<Tensor<T>> {
        let Some(end) = self.layers.iter().position(|(n, _)| n == last) else {
            let names: Vec<&str> = self.layers.iter().map(|(n, _)| n.as_str()).collect();
            return Err(crate::Error::Config(format!(
                "no layer '{last}'; the top-level layers are {}",
                names.join(", ")
            )));
        };
        let mut y = x.clone();
        for (_, l) in &mut self.layers[..=end] {
            y = l.forward(&y, mode);
        }
        Ok(y)
    }
    pub fn layers_mut(&mut self) -> impl Iterator<Item = (&str, &mut Box<dyn Layer<T>>)> {
        self.layers.iter_mut().map(|(n, l)| (n.as_str(), l))
    }
}

impl<T: Float> Layer<T> for Sequential<T> {
    fn describe(&self) -> String {
        let parts: Vec<String> = self.layers.iter().map(|(_, l)| l.describe()).collect();
        parts.join(" -> ")
    }

    fn output_shape(&self, x: &[usize]) -> Result<Vec<usize>> {
        let mut s = x.to_vec();
        for (name, l) in &self.layers {
            s = l.output_shape(&s).map_err(|e| e.in_layer(name))?;
        }
        Ok(s)
    }

    fn forward(&mut self, x: &Tensor<T>, mode: Mode) -> Tensor<T> {
        self.acts.clear();
        let n = self.layers.len();
        if n == 0 {
            return x.clone();
        }
        if !mode.keeps_activations() {
            let mut y = self.layers[0].1.forward(x, mode);
            for (_, l) in &mut self.layers[1..] {
                y = l.forward(&y, mode);
            }
            return y;
        }
        for i in 0..n {
            let input = if i == 0 { x } else { &self.acts[i - 1] };
            let y = self.layers[i].1.forward(input, mode);
            if i + 1 == n {
                return y;
            }
            self.acts.push(y);
        }
        unreachable!()
    }

    fn backward(&mut self, x: &Tensor<T>, y: &Tensor<T>, dy: &Tensor<T>) -> Tensor<T> {
        let n = self.layers.len();
        if n == 0 {
            return dy.clone();
        }
        let mut grad: Option<Tensor<T>> = None;
        for i in (0..n).rev() {
            let input = if i == 0 { x } else { &self.acts[i - 1] };
            let output = if i + 1 == n { y } else { &self.acts[i] };
            let g = grad.as_ref().unwrap_or(dy);
            let dx = self.layers[i].1.backward(input, output, g);
            grad = Some(dx);
        }
        grad.expect("non-empty sequence")
    }

    fn macs(&self, x: &[usize]) -> u64 {
        let (mut s, mut total) = (x.to_vec(), 0);
        for (_, l) in &self.layers {
            total += l.macs(&s);
            s = l.output_shape(&s).unwrap_or_default();
        }
        total
    }

    fn visit_params(&mut self, prefix: &str, f: &mut ParamVisitor<'_, T>) {
        for (name, l) in &mut self.layers {
            l.visit_params(&join(prefix, name), f);
        }
    }
    fn visit_buffers(&mut self, prefix: &str, f: &mut BufferVisitor<'_, T>) {
        for (name, l) in &mut self.layers {
            l.visit_buffers(&join(prefix, name), f);
        }
    }
    fn freeze_noise(&mut self, frozen: bool) {
        for (_, l) in &mut self.layers {
            l.freeze_noise(frozen);
        }
    }
    fn skip_input_grad(&mut self, skip: bool) {
        if let Some((_, l)) = self.layers.first_mut() {
            l.skip_input_grad(skip);
        }
    }
    fn walk(&mut self, name: &str, input: &[usize], w: &mut dyn Walker) -> Vec<usize> {
        let mut s = input.to_vec();
        for (n, l) in &mut self.layers {
            s = l.walk(&join(name, n), &s, w);
        }
        s
    }

    fn visit_children(&mut self, prefix: &str, f: &mut ChildVisitor<'_, T>) {
        for (name, l) in &mut self.layers {
            let q = join(prefix, name);
            f(&q, l);
            l.visit_children(&q, f);
        }
    }
}
