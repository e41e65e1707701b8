//! `convkit bench`: training and inference throughput on synthetic 3x32x32 input, timed like
//! `bench/pytorch_ref.py` (3 warm-up steps, then `steps` timed steps, median of `runs` runs).

use crate::data::loader::Batch;
use crate::init::rng;
use crate::layers::{Layer, Mode};
use crate::models;
use crate::net::profile::{self, LayerTime, Profiler};
use crate::optim::{Optimizer, OptimizerConfig};
use crate::schedule::{Schedule, Scheduler};
use crate::tensor::Tensor;
use crate::train::trainer::{Method, Trainer};
use crate::Result;
use rand::Rng;
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;

#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub net: String,
    pub batch: usize,
    pub threads: usize,
    pub warmup: usize,
    pub steps: usize,
    pub runs: usize,
    /// Time every layer too (forward and backward), reported in `BenchResult::profile`.
    pub profile: bool,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions { net: "small".into(), batch: 128, threads: 2, warmup: 3, steps: 20, runs: 5, profile: false }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct BenchResult {
    pub net: String,
    pub batch: usize,
    pub threads: usize,
    /// Forward multiply-adds x 2, per image.
    pub mflop_per_image_forward: f64,
    /// Median over runs.
    pub train_img_per_s: f64,
    pub infer_img_per_s: f64,
    pub train_runs: Vec<f64>,
    pub infer_runs: Vec<f64>,
    /// Training counted as 3x the forward FLOPs (forward, input gradient, weight gradient).
    pub train_gflop_per_s: f64,
    /// With `profile`: time per layer over all runs, slowest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<Vec<LayerTime>>,
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

pub fn run(o: &BenchOptions) -> Result<BenchResult> {
    if o.batch == 0 || o.steps == 0 || o.runs == 0 {
        return Err(crate::Error::Config(format!(
            "--batch {}, --steps {}, --runs {}: each must be at least 1",
            o.batch, o.steps, o.runs
        )));
    }
    crate::memory::check_batch(&mut models::build_shapes(&o.net, Some(10))?, o.batch, "--batch")?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(o.threads.max(1))
        .build()
        .map_err(|e| crate::Error::Config(format!("cannot start {} threads: {e}", o.threads)))?;
    pool.install(|| run_in_pool(o))
}

fn run_in_pool(o: &BenchOptions) -> Result<BenchResult> {
    let mut model = models::build::<f32>(&o.net, Some(10), 0)?.for_training();
    let profiler = Arc::new(Profiler::default());
    if o.profile {
        profile::attach(&mut model.net, &profiler);
    }
    let shape = model.batch_shape(o.batch);
    let mut r = rng(1);
    let x = Tensor::<f32>::from_fn(&shape, |_| r.random_range(-1.0..1.0));
    let labels: Vec<usize> = (0..o.batch).map(|_| r.random_range(0..10)).collect();
    let batch = Batch::new(x, labels);
    let opt = Optimizer::<f32>::new(&OptimizerConfig::default(), 0.01, 0.0)?;
    let sched = Scheduler::new(0.01, Schedule::Constant, 0.0, 0.1);
    let mut t = Trainer::new(model, Method::FirstOrder(opt), sched, 1);
    // `runs` runs of `warmup` untimed then `steps` timed calls: images per second of each run.
    let timed_runs = |t: &mut Trainer, f: &mut dyn FnMut(&mut Trainer)| -> Vec<f64> {
        (0..o.runs)
            .map(|_| {
                (0..o.warmup).for_each(|_| f(t));
                let start = Instant::now();
                (0..o.steps).for_each(|_| f(t));
                (o.batch * o.steps) as f64 / start.elapsed().as_secs_f64()
            })
            .collect()
    };
    let train_runs = timed_runs(&mut t, &mut |t| {
        t.step(&batch);
    });
    let infer_runs = timed_runs(&mut t, &mut |t| {
        std::hint::black_box(t.model.forward(&batch.x, Mode::Infer));
    });
    let model = &t.model;
    let mflop = 2.0 * model.net.macs(&model.batch_shape(1)) as f64 / 1e6;
    let train = median(&train_runs);
    Ok(BenchResult {
        net: o.net.clone(),
        batch: o.batch,
        threads: o.threads,
        mflop_per_image_forward: mflop,
        train_img_per_s: train,
        infer_img_per_s: median(&infer_runs),
        train_runs,
        infer_runs,
        train_gflop_per_s: train * 3.0 * mflop / 1e3,
        profile: o.profile.then(|| profiler.take()),
    })
}
