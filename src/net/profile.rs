//! Per-layer timing (`convkit bench --profile`) as a value, not a global switch: `attach` wraps every leaf
//! layer of a network in a `Timed` layer that adds its forward and backward seconds to a shared `Profiler`.

use crate::layers::{BufferVisitor, Layer, Mode, ParamVisitor};
use crate::tensor::{Float, Tensor};
use crate::Result;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Seconds of forward and backward, and forward calls, by layer description.
#[derive(Default)]
pub struct Profiler {
    times: Mutex<BTreeMap<String, (f64, f64, usize)>>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LayerTime {
    pub layer: String,
    pub forward: f64,
    pub backward: f64,
    pub calls: usize,
}

impl Profiler {
    fn add(&self, key: &str, seconds: f64, backward: bool) {
        let mut m = self.times.lock().unwrap_or_else(|e| e.into_inner());
        let e = m.entry(key.to_string()).or_default();
        if backward {
            e.1 += seconds;
        } else {
            e.0 += seconds;
            e.2 += 1;
        }
    }

    /// Every layer's totals, slowest first; resets the counters.
    pub fn take(&self) -> Vec<LayerTime> {
        let mut m = self.times.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<LayerTime> = std::mem::take(&mut *m)
            .into_iter()
            .map(|(layer, (forward, backward, calls))| LayerTime { layer, forward, backward, calls })
            .collect();
        v.sort_by(|a, b| (b.forward + b.backward).total_cmp(&(a.forward + a.backward)));
        v
    }
}

/// Wraps every leaf layer under `net` so that it reports its time to `profiler`.
pub fn attach<T: Float>(net: &mut dyn Layer<T>, profiler: &Arc<Profiler>) {
    super::wrap_leaves(net, &mut |_, inner| {
        let key = inner.describe();
        Box::new(Timed { inner, key, profiler: profiler.clone() })
    });
}

/// A layer that times the one it wraps.
struct Timed<T: Float> {
    inner: Box<dyn Layer<T>>,
    key: String,
    profiler: Arc<Profiler>,
}

impl<T: Float> Layer<T> for Timed<T> {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        self.inner.output_shape(input)
    }
    fn forward(&mut self, x: &Tensor<T>, mode: Mode) -> Tensor<T> {
        let t = Instant::now();
        let y = self.inner.forward(x, mode);
        self.profiler.add(&self.key, t.elapsed().as_secs_f64(), false);
        y
    }
    fn backward(&mut self, x: &Tensor<T>, y: &Tensor<T>, dy: &Tensor<T>) -> Tensor<T> {
        let t = Instant::now();
        let dx = self.inner.backward(x, y, dy);
        self.profiler.add(&self.key, t.elapsed().as_secs_f64(), true);
        dx
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
