//! Layers: each file holds one layer's config, its `forward`, its analytic `backward`, and its gradient-check test.
//!
//! The contract (as in llm.c): the network owns the activations and hands each layer its input `x` and output `y`
//! again in `backward`, so layers cache only what they cannot recompute cheaply (max-pool argmax, batch-norm
//! statistics, dropout masks). Parameter gradients accumulate with `+=`: a layer never assumes one call per step.

pub mod avgpool;
pub mod batchnorm;
pub mod conv;
pub mod dropout;
pub mod elu;
pub mod flatten;
pub mod gelu;
pub mod global_avgpool;
pub mod leaky_relu;
pub mod linear;
pub mod lrn;
pub mod maxout;
pub mod maxpool;
pub mod relu;
pub mod relu6;
pub mod scale;
pub mod sigmoid;
pub mod tanh;
pub mod zero_pad;

pub use avgpool::AvgPool2d;
pub use batchnorm::BatchNorm;
pub use conv::Conv2d;
pub use dropout::Dropout;
pub use elu::Elu;
pub use flatten::Flatten;
pub use gelu::Gelu;
pub use global_avgpool::GlobalAvgPool;
pub use leaky_relu::LeakyRelu;
pub use linear::Linear;
pub use lrn::LocalResponseNorm;
pub use maxout::Maxout;
pub use maxpool::MaxPool2d;
pub use relu::Relu;
pub use relu6::Relu6;
pub use scale::Scale;
pub use sigmoid::Sigmoid;
pub use tanh::Tanh;
pub use zero_pad::ZeroPad2d;

use crate::tensor::{Float, Tensor};
use crate::Result;

/// Training uses batch statistics and random masks; evaluation uses running statistics and no noise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Train,
    /// Evaluation that may still be followed by `backward` (gradient checks of the evaluation path, saliency).
    Eval,
    /// Evaluation with no `backward` to follow (PyTorch's `no_grad`): containers keep no activations, so each
    /// layer's output goes back to the pool as soon as the next layer has read it. What scoring and prediction use.
    Infer,
}

impl Mode {
    pub fn is_train(self) -> bool {
        self == Mode::Train
    }
    /// Whether containers keep each layer's input and output for `backward`.
    pub fn keeps_activations(self) -> bool {
        self != Mode::Infer
    }
}

/// What a parameter is, so that weight decay can skip biases and batch-norm parameters (the lecture's default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    Weight,
    Bias,
    Norm,
}

/// A learnable tensor and its gradient.
pub struct Param<T: Float> {
    pub value: Tensor<T>,
    pub grad: Tensor<T>,
    pub kind: ParamKind,
    /// Frozen parameters (transfer learning) get no gradient and no update.
    pub frozen: bool,
    /// This parameter's rate as a multiple of the run's (fine-tuning: a smaller rate for the backbone).
    pub lr_scale: f64,
}

impl<T: Float> Param<T> {
    pub fn new(value: Tensor<T>, kind: ParamKind) -> Self {
        let grad = Tensor::zeros(value.shape());
        Param { value, grad, kind, frozen: false, lr_scale: 1.0 }
    }
}

/// Visits `(qualified name, parameter)` pairs, e.g. `("stage2.block1.conv1.weight", p)`.
pub type ParamVisitor<'a, T> = dyn FnMut(&str, &mut Param<T>) + 'a;
/// Visits `(qualified name, buffer)` pairs for state that is saved but not learned (batch-norm running stats).
pub type BufferVisitor<'a, T> = dyn FnMut(&str, &mut Tensor<T>) + 'a;

/// One leaf layer as a walk meets it (`Layer::walk`).
pub struct Leaf<'a> {
    pub name: &'a str,
    /// `describe()`, e.g. `conv3x3(3->32, s1, p1)`.
    pub layer: String,
    pub input: &'a [usize],
    pub output: &'a [usize],
    pub params: usize,
    pub bias_params: usize,
    /// Multiply-adds of the forward pass for `input` (all images).
    pub macs: u64,
}

/// What a walk over a network reports to.
pub trait Walker {
    fn leaf(&mut self, leaf: &Leaf<'_>);
    /// Where a container joins paths: `residual add`, `filter concatenation`, ...
    fn join(&mut self, _name: &str, _what: &str, _output: &[usize]) {}
}

/// Visits `(qualified name, boxed layer)` pairs inside containers.
pub type ChildVisitor<'a, T> = dyn FnMut(&str, &mut Box<dyn Layer<T>>) + 'a;

pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// A per-channel affine map `y = scale x + shift`, then a ReLU if `relu`: what batch norm is at inference, with its
/// running statistics, so that the conv before it can absorb it (`Sequential` folds such pairs in `Mode::Infer`).
#[derive(Clone, Debug)]
pub struct ChannelAffine<T> {
    pub scale: Vec<T>,
    pub shift: Vec<T>,
    pub relu: bool,
}

/// One layer (or a block of layers: containers implement this too).
pub trait Layer<T: Float>: Send + Sync {
    /// A short description in the lecture's notation, e.g. `conv3x3(3->32, s1, p1)`.
    fn describe(&self) -> String;
    /// The output shape for an input shape, or a clear error if the input cannot go through this layer.
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>>;
    fn forward(&mut self, x: &Tensor<T>, mode: Mode) -> Tensor<T>;
    /// Given the `x` and `y` of the last forward and `dy = dL/dy`, accumulates parameter gradients and returns `dL/dx`.
    fn backward(&mut self, x: &Tensor<T>, y: &Tensor<T>, dy: &Tensor<T>) -> Tensor<T>;
    fn visit_params(&mut self, _prefix: &str, _f: &mut ParamVisitor<'_, T>) {}
    fn visit_buffers(&mut self, _prefix: &str, _f: &mut BufferVisitor<'_, T>) {}
    /// Keep random masks fixed across forward calls (gradient checking re-runs forward many times).
    fn freeze_noise(&mut self, _frozen: bool) {}
    /// This layer's input needs no gradient (the first layer of a network): skip computing it.
    fn skip_input_grad(&mut self, _skip: bool) {}
    /// Multiply-adds of one forward pass for this input shape (all images), for FLOP accounting.
    fn macs(&self, _input: &[usize]) -> u64 {
        0
    }
    /// Walks the network in data-flow order for an input shape and returns the output shape: a leaf reports
    /// itself, a container walks its children and reports its joins. Reports (summaries, FLOP counts) are
    /// walkers; layers know nothing of them.
    fn walk(&mut self, name: &str, input: &[usize], w: &mut dyn Walker) -> Vec<usize> {
        let output = self.output_shape(input).unwrap_or_default();
        let (mut params, mut bias_params) = (0, 0);
        self.visit_params("", &mut |_, p| {
            params += p.value.numel();
            if p.kind == ParamKind::Bias {
                bias_params += p.value.numel();
            }
        });
        let layer = self.describe();
        w.leaf(&Leaf { name, layer, input, output: &output, params, bias_params, macs: self.macs(input) });
        output
    }
    /// Visits the layers inside a container, depth first, with qualified names, each as the box that holds it
    /// (so a visitor may wrap it, as the profiler does); leaves visit nothing.
    fn visit_children(&mut self, _prefix: &str, _f: &mut ChildVisitor<'_, T>) {}
    /// This layer at inference as a per-channel affine map (batch norm), for folding into the layer before it;
    /// `None`, the default, for every other layer.
    fn inference_affine(&self) -> Option<ChannelAffine<T>> {
        None
    }
    /// The `Mode::Infer` forward pass followed by `after`, folded into this layer's weights (a conv before its
    /// batch norm: one pass over the activations instead of two), or `None` where this layer cannot (the default).
    fn forward_folded(&self, _x: &Tensor<T>, _after: &ChannelAffine<T>) -> Option<Tensor<T>> {
        None
    }
    /// `forward_folded`, then a residual block's sum: `skip` added and, with `relu`, the ReLU, in the same pass
    /// over the output; `None` where this layer cannot (the default).
    fn forward_folded_skip(
        &self,
        _x: &Tensor<T>,
        _after: &ChannelAffine<T>,
        _skip: &Tensor<T>,
        _relu: bool,
    ) -> Option<Tensor<T>> {
        None
    }
    /// This layer's inference through a shared reference, where it has one (`None`, the default, where it does
    /// not): `Model::forward` then runs a batch depth first (`net/depth_first.rs`).
    fn as_infer(&self) -> Option<&dyn Infer<T>> {
        None
    }
}

/// A layer's `forward(x, Mode::Infer)` through a shared reference: it changes nothing in the layer, so that
/// several threads can run slices of one batch through the same layers at once.
pub trait Infer<T: Float>: Sync {
    fn infer(&self, x: &Tensor<T>) -> Tensor<T>;
}

/// Checks that an activation tensor has the expected rank, naming the layer in the error.
pub(crate) fn expect_rank(layer: &str, input: &[usize], rank: usize) -> Result<()> {
    if input.len() != rank {
        return Err(crate::Error::Shape(format!(
            "{layer} expects a {rank}-d input ({}), got shape {input:?}",
            if rank == 4 { "batch, channels, height, width" } else { "batch, features" }
        )));
    }
    Ok(())
}
