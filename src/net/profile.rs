//! Per-layer timing (`convkit bench --profile`) as a value, not a global switch: the `Profiler` is a hook around
//! every leaf layer (`hook.rs`) that adds up each layer's forward and backward seconds.

use super::hook::{Hook, Site};
use crate::layers::{Layer, Mode};
use crate::tensor::{Float, Tensor};
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
    super::hook::attach(net, profiler);
}

/// Times each layer's passes, keyed by its description (every 3x3 conv of a width together).
impl<T: Float> Hook<T> for Profiler {
    fn forward(&self, at: Site<'_, T>, x: &Tensor<T>, mode: Mode) -> Tensor<T> {
        let t = Instant::now();
        let y = at.layer.forward(x, mode);
        self.add(at.describe, t.elapsed().as_secs_f64(), false);
        y
    }
    fn backward(&self, at: Site<'_, T>, x: &Tensor<T>, y: &Tensor<T>, dy: &Tensor<T>) -> Tensor<T> {
        let t = Instant::now();
        let dx = at.layer.backward(x, y, dy);
        self.add(at.describe, t.elapsed().as_secs_f64(), true);
        dx
    }
}
