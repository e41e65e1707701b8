//! A sequence of named layers. It keeps the intermediate activations of the last forward for backward.

use crate::layers::{join, BufferVisitor, ChildVisitor, Infer, Layer, Mode, ParamVisitor, Walker};
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
    /// The forward pass in `Mode::Infer`: no activations kept, and each conv followed by a batch norm computed as
    /// one conv with the batch norm folded into its weights (one pass over the activations instead of two).
    fn infer_all(&mut self, x: &Tensor<T>) -> Tensor<T> {
        self.infer_then_add(x, None)
    }

    /// `infer_all`, then with `skip` a residual block's sum: `skip` added and, with its flag, the ReLU. Where the
    /// sequence ends in a conv and its batch norm, the conv's output pass does the sum too.
    pub(crate) fn infer_then_add(&mut self, x: &Tensor<T>, mut skip: Option<(&Tensor<T>, bool)>) -> Tensor<T> {
        self.acts.clear();
        if self.as_infer().is_some() {
            return self.shared_then_add(x, skip);
        }
        // A layer without a shared inference (a hooked one) runs through `forward`.
        let (mut y, mut i) = (None, 0);
        while i < self.layers.len() {
            let input = y.as_ref().unwrap_or(x);
            let folded = fold_step(&self.layers, i, input, &mut skip);
            i += if folded.is_some() { 2 } else { 1 };
            y = Some(folded.unwrap_or_else(|| self.layers[i - 1].1.forward(input, Mode::Infer)));
        }
        with_sum(y.expect("non-empty sequence"), skip)
    }

    /// `infer_then_add` through a shared reference, where every layer has `Layer::as_infer`.
    pub(crate) fn shared_then_add(&self, x: &Tensor<T>, mut skip: Option<(&Tensor<T>, bool)>) -> Tensor<T> {
        let (mut y, mut i) = (None, 0);
        while i < self.layers.len() {
            let input = y.as_ref().unwrap_or(x);
            let folded = fold_step(&self.layers, i, input, &mut skip);
            i += if folded.is_some() { 2 } else { 1 };
            let shared = || self.layers[i - 1].1.as_infer().expect("as_infer checked every layer");
            y = Some(folded.unwrap_or_else(|| shared().infer(input)));
        }
        with_sum(y.expect("non-empty sequence"), skip)
    }

    pub fn layers_mut(&mut self) -> impl Iterator<Item = (&str, &mut Box<dyn Layer<T>>)> {
        self.layers.iter_mut().map(|(n, l)| (n.as_str(), l))
    }
}

/// Layer `i` in inference where it folds with the batch norm after it (and, as the last pair of a residual
/// block's main path, with the block's sum, which then takes `skip`): its output, or `None` where it does not fold.
fn fold_step<T: Float>(
    layers: &[(String, Box<dyn Layer<T>>)],
    i: usize,
    input: &Tensor<T>,
    skip: &mut Option<(&Tensor<T>, bool)>,
) -> Option<Tensor<T>> {
    let after = layers.get(i + 1).and_then(|(_, next)| next.inference_affine())?;
    let layer = &layers[i].1;
    if let Some((s, relu)) = *skip {
        let summed = (i + 2 == layers.len()).then(|| layer.forward_folded_skip(input, &after, s, relu)).flatten();
        if summed.is_some() {
            *skip = None;
            return summed;
        }
    }
    layer.forward_folded(input, &after)
}

/// `y`, plus the residual sum where `skip` is still to be added.
fn with_sum<T: Float>(y: Tensor<T>, skip: Option<(&Tensor<T>, bool)>) -> Tensor<T> {
    match skip {
        Some((s, relu)) => super::residual::add(&y, s, relu),
        None => y,
    }
}

/// Inference of a sequence whose every layer has one: `Sequential::shared_then_add` without a sum.
impl<T: Float> Infer<T> for Sequential<T> {
    fn infer(&self, x: &Tensor<T>) -> Tensor<T> {
        if self.layers.is_empty() {
            return x.clone();
        }
        self.shared_then_add(x, None)
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
            return self.infer_all(x);
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

    fn as_infer(&self) -> Option<&dyn Infer<T>> {
        self.layers.iter().all(|(_, l)| l.as_infer().is_some()).then_some(self as &dyn Infer<T>)
    }

    fn visit_children(&mut self, prefix: &str, f: &mut ChildVisitor<'_, T>) {
        for (name, l) in &mut self.layers {
            let q = join(prefix, name);
            f(&q, l);
            l.visit_children(&q, f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::rng;
    use crate::layers::batchnorm::{BatchNorm, BatchNormConfig};
    use crate::layers::conv::Conv2dConfig;

    /// A batch norm with statistics and parameters far from the identity, as after training.
    fn trained_bn(c: usize, relu: bool) -> BatchNorm<f64> {
        let cfg = BatchNormConfig::new(c);
        let mut bn = if relu { cfg.relu() } else { cfg }.build::<f64>();
        bn.gamma.value = Tensor::from_fn(&[c], |i| 0.5 + i as f64 * 0.3);
        bn.beta.value = Tensor::from_fn(&[c], |i| i as f64 * 0.2 - 0.3);
        bn.running_mean = Tensor::from_fn(&[c], |i| (i as f64 * 0.9).sin());
        bn.running_var = Tensor::from_fn(&[c], |i| 0.2 + i as f64 * 0.4);
        bn
    }

    #[test]
    fn inference_folds_batch_norm_into_the_conv_before_it_and_gives_the_same_output() {
        // Winograd's geometry (3x3, stride 1), strided im2col, pointwise, depthwise, a conv with a bias; each
        // followed by a batch norm with and without its ReLU. `Eval` keeps activations and folds nothing: the
        // reference.
        let convs = [
            Conv2dConfig::new(3, 8, 3).padding(1).bias(false),
            Conv2dConfig::new(3, 8, 3).padding(1).stride(2).bias(false),
            Conv2dConfig::new(3, 8, 1).bias(false),
            Conv2dConfig::new(3, 3, 3).padding(1).groups(3).bias(false),
            Conv2dConfig::new(3, 8, 3).padding(1),
        ];
        for (i, cfg) in convs.iter().enumerate() {
            for relu in [false, true] {
                let k = cfg.out_channels;
                let mut net = Sequential::new()
                    .with("conv", cfg.build::<f64>(&mut rng(i as u64)).unwrap())
                    .with("bn", trained_bn(k, relu))
                    .with("conv2", Conv2dConfig::new(k, 4, 3).padding(1).build::<f64>(&mut rng(9)).unwrap());
                let x = Tensor::from_fn(&[2, 3, 7, 6], |j| (j as f64 * 0.37).sin());
                let want = net.forward(&x, Mode::Eval);
                let conv_before = net.forward_until(&x, "conv", Mode::Eval).unwrap();
                let got = net.forward(&x, Mode::Infer);
                let worst = got.data().iter().zip(want.data()).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
                assert!(worst < 1e-12, "{cfg:?} relu {relu}: off by {worst}");
                // The pair was folded, and the conv's own parameters are as they were.
                let (bn, conv) = (net.layers[1].1.inference_affine().unwrap(), &mut net.layers[0].1);
                assert!(conv.forward_folded(&x, &bn).is_some(), "{cfg:?} was not folded");
                assert_eq!(conv.forward(&x, Mode::Eval).data(), conv_before.data());
            }
        }
    }

    #[test]
    fn a_conv_with_its_own_relu_or_a_relu6_batch_norm_is_not_folded() {
        let conv = Conv2dConfig::new(2, 4, 3).padding(1).relu().build::<f64>(&mut rng(0)).unwrap();
        let x = Tensor::from_fn(&[1, 2, 5, 5], |j| (j as f64).cos());
        assert!(conv.forward_folded(&x, &trained_bn(4, false).inference_affine().unwrap()).is_none());
        assert!(BatchNormConfig::new(4).relu6().build::<f64>().inference_affine().is_none());
    }
}
