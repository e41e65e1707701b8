//! The `Trainer`: one training step (zero the gradients, forward, loss, backward, regularize, clip, update), an
//! epoch loop, and evaluation. Everything else a run does (metrics, checkpoints, Polyak averaging, the plateau
//! rule, early stopping, the divergence guard, progress) is a `Callback` (`callback.rs`), as in Keras or fastai.

use super::callback::{Callbacks, EpochLog, Progress, RunInfo};
use crate::data::loader::{self, Batch, LoaderConfig};
use crate::data::preprocess::Preprocess;
use crate::data::Dataset;
use crate::evaluate::{evaluate, EvalReport};
use crate::loss::softmax_cross_entropy;
use crate::models::Model;
use crate::optim::lbfgs::Lbfgs;
use crate::optim::{clip, Optimizer};
use crate::regularize::Penalty;
use crate::schedule::{Clock, Scheduler};
use crate::tensor::Tensor;
use crate::{Mode, Result};
use std::collections::BTreeMap;
use std::sync::Arc;

/// How the parameters move: a first-order rule step by step, or full-batch L-BFGS (one minimisation per batch).
pub enum Method {
    FirstOrder(Optimizer<f32>),
    Lbfgs(Lbfgs),
}

/// Gradient clipping after backward (and after the penalty's gradients): by value first, then by global norm.
#[derive(Clone, Copy, Debug, Default)]
pub struct Clip {
    pub value: Option<f64>,
    pub norm: Option<f64>,
}

/// What one step did.
#[derive(Clone, Copy, Debug)]
pub struct StepStats {
    /// Data loss plus the L1/L2 penalty.
    pub loss: f64,
    pub correct: usize,
    pub count: usize,
    pub lr: f64,
    /// Optimizer steps this call took (L-BFGS: its iterations).
    pub steps: u64,
}

/// The training set, the validation indices and how batches are made.
pub struct TrainData {
    pub dataset: Arc<Dataset>,
    pub train: Arc<Vec<usize>>,
    pub val: Arc<Vec<usize>>,
    pub prep: Arc<Preprocess>,
    pub loader: LoaderConfig,
}

/// The test split, touched once at the end of a run.
pub struct TestSet {
    pub dataset: Arc<Dataset>,
    pub idx: Arc<Vec<usize>>,
    pub prep: Arc<Preprocess>,
}

impl TestSet {
    pub fn evaluate(&self, model: &mut Model<f32>) -> EvalReport {
        evaluate(model, &self.dataset, self.idx.clone(), &self.prep, 256)
    }
}

pub struct Trainer {
    pub model: Model<f32>,
    pub method: Method,
    pub sched: Scheduler,
    pub penalty: Penalty,
    pub clip: Clip,
    /// Label smoothing's epsilon (0: hard targets).
    pub label_smoothing: f64,
    /// Optimizer steps taken so far (the schedule's clock).
    pub step: u64,
    pub steps_per_epoch: u64,
    /// Epochs the run lasts (the schedule's horizon).
    pub epochs: usize,
    /// Best validation accuracy so far and its epoch (0: none yet).
    pub best: (f64, usize),
    /// Named tensors that callbacks keep with the optimizer state in checkpoint `last` (e.g. `polyak.*`).
    pub extra_state: BTreeMap<String, Tensor<f32>>,
    stop: Option<String>,
    /// The batch shape whose buffers the tensor pool holds (`pool_for`).
    pool_shape: Option<Vec<usize>>,
}

/// The tensor pool's limit while training: all of a step's free buffers are kept for the next step. airbench at
/// batch 1024 has 2.5 GB of them; under the default 1 GiB the rest went back to the system and came back as fresh
/// pages, whose faults cost 10% of its step (sys time 7.0 -> 2.7 s over a `bench` run). airbench's recipe peaks at
/// 3.00 GB resident with it (3.16 under the 1 GiB limit).
const TRAINING_POOL_BYTES: usize = 8 << 30;

/// A finished trainer puts the pool's default limit back (an ensemble or a search trains one after another).
impl Drop for Trainer {
    fn drop(&mut self) {
        if self.pool_shape.is_some() {
            crate::tensor::set_pool_limit(crate::tensor::POOL_MAX_BYTES);
            crate::tensor::release_pools();
        }
    }
}

impl Trainer {
    pub fn new(model: Model<f32>, method: Method, sched: Scheduler, epochs: usize) -> Self {
        Trainer {
            model,
            method,
            sched,
            penalty: Penalty::default(),
            clip: Clip::default(),
            label_smoothing: 0.0,
            step: 0,
            steps_per_epoch: 1,
            epochs,
            best: (-1.0, 0),
            extra_state: BTreeMap::new(),
            stop: None,
            pool_shape: None,
        }
    }

    /// The first-order optimizer, if that is the method (its state goes into checkpoints).
    pub fn optimizer(&self) -> Option<&Optimizer<f32>> {
        match &self.method {
            Method::FirstOrder(o) => Some(o),
            Method::Lbfgs(_) => None,
        }
    }

    /// Asks the epoch loop to stop after the current step (early stopping, a target reached, ...).
    pub fn request_stop(&mut self, reason: impl Into<String>) {
        self.stop.get_or_insert(reason.into());
    }

    pub fn stop_reason(&self) -> Option<&str> {
        self.stop.as_deref()
    }

    /// The rate the next step will use.
    pub fn lr(&self) -> f64 {
        match self.method {
            Method::Lbfgs(_) => self.sched.base,
            Method::FirstOrder(_) => {
                self.sched.lr(&Clock { step: self.step, steps_per_epoch: self.steps_per_epoch, epochs: self.epochs })
            }
        }
    }

    /// Zeroes the gradients, runs forward and backward, adds the penalty. Returns (loss, number right).
    pub fn loss_and_grad(&mut self, x: &Tensor<f32>, labels: &[usize]) -> (f64, usize) {
        self.loss_and_grad_soft(x, labels, None)
    }

    /// The same against soft targets when the batch has them (mixed) or label smoothing is on.
    pub fn loss_and_grad_soft(
        &mut self,
        x: &Tensor<f32>,
        labels: &[usize],
        targets: Option<&Tensor<f32>>,
    ) -> (f64, usize) {
        self.model.zero_grad();
        let y = self.model.forward(x, Mode::Train);
        let out = if targets.is_none() && self.label_smoothing == 0.0 {
            softmax_cross_entropy(&y, labels)
        } else {
            let classes = y.len() / labels.len().max(1);
            let mut t = targets.cloned().unwrap_or_else(|| crate::loss::one_hot(labels, classes));
            crate::loss::smooth(&mut t, self.label_smoothing);
            crate::loss::softmax_cross_entropy_soft(&y, &t, labels)
        };
        self.model.backward(x, &y, &out.dscores);
        (out.loss as f64 + self.penalty.apply(&mut self.model), out.correct)
    }

    /// One step on one batch. A step whose loss is not finite leaves the weights as they were (the divergence
    /// guard then stops the run).
    pub fn step(&mut self, b: &Batch) -> StepStats {
        if matches!(self.method, Method::Lbfgs(_)) {
            return self.lbfgs_step(b);
        }
        self.pool_for(b.x.shape());
        let lr = self.lr();
        let (loss, correct) = self.loss_and_grad_soft(&b.x, &b.labels, b.targets.as_ref());
        let stats = StepStats { loss, correct, count: b.labels.len(), lr, steps: 1 };
        if !loss.is_finite() {
            return StepStats { steps: 0, ..stats };
        }
        if let Some(v) = self.clip.value {
            clip::by_value(&mut self.model, v);
        }
        if let Some(n) = self.clip.norm {
            clip::by_norm(&mut self.model, n);
        }
        if let Method::FirstOrder(opt) = &mut self.method {
            opt.set_lr(lr);
            opt.step(&mut self.model);
        }
        self.step += 1;
        stats
    }

    /// Lets the tensor pool keep a whole step's buffers. Only one batch shape's at a time: a new shape (the last,
    /// partial batch; the first step) first hands the old shape's back, so the two sets never add up.
    fn pool_for(&mut self, shape: &[usize]) {
        if self.pool_shape.as_deref() != Some(shape) {
            crate::tensor::release_pools();
            crate::tensor::set_pool_limit(TRAINING_POOL_BYTES);
            self.pool_shape = Some(shape.to_vec());
        }
    }

    /// Full-batch L-BFGS over all trainable parameters, with `loss_and_grad` as its closure.
    fn lbfgs_step(&mut self, b: &Batch) -> StepStats {
        let Method::Lbfgs(lb) = &self.method else { unreachable!("called for L-BFGS only") };
        let lb = lb.clone();
        let mut w = flat(&mut self.model, false);
        let mut f = |wt: &[f64], g: &mut [f64]| {
            unflatten(&mut self.model, wt);
            let (loss, _) = self.loss_and_grad(&b.x, &b.labels);
            g.copy_from_slice(&flat(&mut self.model, true));
            loss
        };
        let rep = lb.minimize(&mut w, &mut f);
        unflatten(&mut self.model, &w);
        let y = self.model.forward(&b.x, Mode::Infer);
        let correct = softmax_cross_entropy(&y, &b.labels).correct;
        self.step += rep.iterations as u64;
        StepStats { loss: rep.loss, correct, count: b.labels.len(), lr: self.sched.base, steps: rep.iterations as u64 }
    }

    pub fn evaluate(&mut self, data: &TrainData) -> EvalReport {
        evaluate(&mut self.model, &data.dataset, data.val.clone(), &data.prep, 256)
    }

    /// Trains epochs `run.start_epoch+1 ..= self.epochs`, calling the callbacks at every hook. Stops early when a
    /// callback asks; returns the last epoch's log (None if nothing was left to train).
    pub fn fit(&mut self, data: &TrainData, run: &RunInfo, cbs: &mut Callbacks) -> Result<Option<EpochLog>> {
        self.steps_per_epoch = data.train.len().div_ceil(data.loader.batch_size) as u64;
        cbs.train_begin(self, run)?;
        let mut last = None;
        for epoch in run.start_epoch + 1..=self.epochs {
            let log = self.epoch(data, epoch, cbs)?;
            last = Some(log);
            if self.stop.is_some() {
                break;
            }
        }
        Ok(last)
    }

    /// One epoch: the steps, then validation, then the epoch-end callbacks.
    fn epoch(&mut self, data: &TrainData, epoch: usize, cbs: &mut Callbacks) -> Result<EpochLog> {
        let batches = loader::epoch(data.dataset.clone(), data.train.clone(), data.prep.clone(), &data.loader, epoch);
        let mut p = Progress::new(epoch, self.epochs, batches.len);
        cbs.epoch_begin(self, &p)?;
        let mut batches = batches;
        loop {
            // Time spent waiting for the loader: near zero when augmentation keeps up with training.
            let wait = std::time::Instant::now();
            let Some(b) = batches.next() else { break };
            p.data_wait += wait.elapsed().as_secs_f64();
            let s = self.step(&b);
            p.add(&s);
            cbs.step_end(self, &s, &p)?;
            if self.stop.is_some() {
                break;
            }
        }
        let val = self.evaluate(data);
        let mut log = EpochLog::new(&p, self.step, val);
        log.data_wait = p.data_wait;
        if log.val.accuracy > self.best.0 {
            self.best = (log.val.accuracy, epoch);
            log.improved = true;
        }
        cbs.evaluate_end(self, data, &mut log)?;
        log.seconds = p.started.elapsed().as_secs_f64();
        cbs.epoch_end(self, &log)?;
        Ok(log)
    }
}

/// Trainable parameters (or their gradients) as one f64 vector, in registry order.
fn flat(model: &mut Model<f32>, grad: bool) -> Vec<f64> {
    let mut out = Vec::new();
    model.visit_params(&mut |_, p| {
        if !p.frozen {
            out.extend((if grad { &p.grad } else { &p.value }).data().iter().map(|&v| v as f64));
        }
    });
    out
}

fn unflatten(model: &mut Model<f32>, w: &[f64]) {
    let mut i = 0;
    model.visit_params(&mut |_, p| {
        if !p.frozen {
            for v in p.value.data_mut() {
                *v = w[i] as f32;
                i += 1;
            }
        }
    });
}
