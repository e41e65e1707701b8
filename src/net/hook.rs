//! A hook around every leaf layer, without the layers knowing: `attach` wraps each leaf in a `Hooked` layer that
//! hands its forward and backward passes to a shared `Hook`, which runs them and observes (the profiler times
//! them, the activation probe measures outputs, anomaly detection looks for the first NaN). Everything else is
//! passed straight through, so names, parameters and checkpoints are unchanged.

use crate::layers::{BufferVisitor, Layer, Mode, ParamVisitor};
use crate::tensor::{Float, Tensor};
use crate::Result;
use std::sync::Arc;

/// The wrapped layer, as a hook sees it.
pub struct Site<'a, T: Float> {
    /// The qualified name, e.g. `stage2.block1.conv1`.
    pub name: &'a str,
    /// The layer's description, e.g. `conv(16->32, 3x3, stride 2)`.
    pub describe: &'a str,
    pub layer: &'a mut dyn Layer<T>,
}

pub trait Hook<T: Float>: Send + Sync + 'static {
    fn forward(&self, at: Site<'_, T>, x: &Tensor<T>, mode: Mode) -> Tensor<T> {
        at.layer.forward(x, mode)
    }
    fn backward(&self, at: Site<'_, T>, x: &Tensor<T>, y: &Tensor<T>, dy: &Tensor<T>) -> Tensor<T> {
        at.layer.backward(x, y, dy)
    }
}

/// Wraps every leaf layer under `net` in `hook`.
pub fn attach<T: Float, H: Hook<T>>(net: &mut dyn Layer<T>, hook: &Arc<H>) {
    super::wrap_leaves(net, &mut |name, inner| {
        let describe = inner.describe();
        Box::new(Hooked { inner, name: name.to_string(), describe, hook: hook.clone() })
    });
}

struct Hooked<T: Float, H> {
    inner: Box<dyn Layer<T>>,
    name: String,
    describe: String,
    hook: Arc<H>,
}

impl<T: Float, H: Hook<T>> Layer<T> for Hooked<T, H> {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        self.inner.output_shape(input)
    }
    fn forward(&mut self, x: &Tensor<T>, mode: Mode) -> Tensor<T> {
        let at = Site { name: &self.name, describe: &self.describe, layer: self.inner.as_mut() };
        self.hook.forward(at, x, mode)
    }
    fn backward(&mut self, x: &Tensor<T>, y: &Tensor<T>, dy: &Tensor<T>) -> Tensor<T> {
        let at = Site { name: &self.name, describe: &self.describe, layer: self.inner.as_mut() };
        self.hook.backward(at, x, y, dy)
    }
    fn visit_params(&mut self, prefix: &str, f: &mut ParamVisitor<'_, T>) {
        self.inner.visit_params(prefix, f)
    }
    fn visit_buffers(&mut self, prefix: &str, f: &mut BufferVisitor<'_, T>) {
        self.inner.visit_buffers(prefix, f)
    }
    fn freeze_noise(&mut self, frozen: bool) {
        self.inner.freeze_noise(frozen)
    }
    fn skip_input_grad(&mut self, skip: bool) {
        self.inner.skip_input_grad(skip)
    }
    fn macs(&self, input: &[usize]) -> u64 {
        self.inner.macs(input)
    }
}
