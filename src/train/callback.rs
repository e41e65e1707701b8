//! Callbacks: what a run does besides stepping, hung on the training loop's hooks (Keras / fastai / Lightning
//! style). A new monitor, report, stopping rule or checkpoint policy is a new callback, not a branch in the loop.
//!
//! Hooks run in the order the callbacks were given; each may read and change the `Trainer` (swap weights in and
//! out, cut the rate, ask to stop). An `Err` ends the run at once, with the checkpoints written so far intact.

use super::trainer::{StepStats, TestSet, TrainData, Trainer};
use super::TrainReport;
use crate::evaluate::EvalReport;
use crate::Result;
use std::path::PathBuf;
use std::time::Instant;

/// Running totals of the epoch in progress.
#[derive(Clone, Debug)]
pub struct Progress {
    pub epoch: usize,
    pub epochs: usize,
    /// Batches this epoch will have.
    pub batches: usize,
    pub done: usize,
    /// Sum over images of the loss (per-image mean loss times batch size).
    pub loss_sum: f64,
    pub correct: usize,
    pub seen: usize,
    /// The rate of the last step.
    pub lr: f64,
    pub started: Instant,
    /// Seconds the steps waited for batches.
    pub data_wait: f64,
}

impl Progress {
    pub fn new(epoch: usize, epochs: usize, batches: usize) -> Self {
        let started = Instant::now();
        Progress {
            epoch,
            epochs,
            batches,
            done: 0,
            loss_sum: 0.0,
            correct: 0,
            seen: 0,
            lr: f64::NAN,
            started,
            data_wait: 0.0,
        }
    }

    pub fn add(&mut self, s: &StepStats) {
        self.done += 1;
        self.loss_sum += s.loss * s.count as f64;
        self.correct += s.correct;
        self.seen += s.count;
        self.lr = s.lr;
    }

    pub fn loss(&self) -> f64 {
        self.loss_sum / self.seen.max(1) as f64
    }

    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.seen.max(1) as f64
    }

    pub fn images_per_second(&self) -> f64 {
        self.seen as f64 / self.started.elapsed().as_secs_f64()
    }
}

/// One finished epoch: what metrics.csv, checkpoints and the progress line report.
#[derive(Clone, Debug)]
pub struct EpochLog {
    pub epoch: usize,
    pub epochs: usize,
    /// Optimizer steps taken after this epoch.
    pub step: u64,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val: EvalReport,
    /// This epoch set a new best validation accuracy.
    pub improved: bool,
    pub lr: f64,
    pub seconds: f64,
    /// The Polyak average's validation (loss, accuracy), when averaging is on.
    pub ema_val: Option<(f64, f64)>,
    /// The plateau rule cut the rate after this epoch.
    pub rate_cut: bool,
    /// Seconds of the epoch's steps spent waiting for the loader.
    pub data_wait: f64,
}

impl EpochLog {
    pub fn new(p: &Progress, step: u64, val: EvalReport) -> Self {
        EpochLog {
            epoch: p.epoch,
            epochs: p.epochs,
            step,
            train_loss: p.loss(),
            train_accuracy: p.accuracy(),
            val,
            improved: false,
            lr: p.lr,
            seconds: 0.0,
            ema_val: None,
            rate_cut: false,
            data_wait: 0.0,
        }
    }
}

/// What a run is, for callbacks that describe it or need its folder.
#[derive(Clone, Debug)]
pub struct RunInfo {
    pub model: String,
    pub data: String,
    pub dir: PathBuf,
    pub train_images: usize,
    pub val_images: usize,
    pub classes: usize,
    pub epochs: usize,
    /// Epochs already done; `resumed` says whether they come from a checkpoint.
    pub start_epoch: usize,
    pub resumed: bool,
    /// The sanity checks' report, when they ran before the first step.
    pub sanity: Option<crate::check::sanity::SanityReport>,
}

/// The hooks. Every method has a default that does nothing.
pub trait Callback {
    fn on_train_begin(&mut self, _t: &mut Trainer, _run: &RunInfo) -> Result<()> {
        Ok(())
    }
    fn on_epoch_begin(&mut self, _t: &mut Trainer, _p: &Progress) -> Result<()> {
        Ok(())
    }
    fn on_step_end(&mut self, _t: &mut Trainer, _s: &StepStats, _p: &Progress) -> Result<()> {
        Ok(())
    }
    /// After validation, before `on_epoch_end`: callbacks that add figures to the epoch's log (Polyak's
    /// validation, the plateau rule's cut) do it here.
    fn on_evaluate_end(&mut self, _t: &mut Trainer, _data: &TrainData, _log: &mut EpochLog) -> Result<()> {
        Ok(())
    }
    fn on_epoch_end(&mut self, _t: &mut Trainer, _log: &EpochLog) -> Result<()> {
        Ok(())
    }
    /// After the test evaluation; the report may be completed (e.g. with the Polyak average's test accuracy).
    fn on_train_end(&mut self, _t: &mut Trainer, _test: &TestSet, _report: &mut TrainReport) -> Result<()> {
        Ok(())
    }
}

/// The callbacks of one run, called in order.
#[derive(Default)]
pub struct Callbacks(pub Vec<Box<dyn Callback>>);

impl Callbacks {
    pub fn push(&mut self, cb: impl Callback + 'static) {
        self.0.push(Box::new(cb));
    }
    pub fn train_begin(&mut self, t: &mut Trainer, run: &RunInfo) -> Result<()> {
        self.0.iter_mut().try_for_each(|c| c.on_train_begin(t, run))
    }
    pub fn epoch_begin(&mut self, t: &mut Trainer, p: &Progress) -> Result<()> {
        self.0.iter_mut().try_for_each(|c| c.on_epoch_begin(t, p))
    }
    pub fn step_end(&mut self, t: &mut Trainer, s: &StepStats, p: &Progress) -> Result<()> {
        self.0.iter_mut().try_for_each(|c| c.on_step_end(t, s, p))
    }
    pub fn evaluate_end(&mut self, t: &mut Trainer, data: &TrainData, log: &mut EpochLog) -> Result<()> {
        self.0.iter_mut().try_for_each(|c| c.on_evaluate_end(t, data, log))
    }
    pub fn epoch_end(&mut self, t: &mut Trainer, log: &EpochLog) -> Result<()> {
        self.0.iter_mut().try_for_each(|c| c.on_epoch_end(t, log))
    }
    pub fn train_end(&mut self, t: &mut Trainer, test: &TestSet, report: &mut TrainReport) -> Result<()> {
        self.0.iter_mut().try_for_each(|c| c.on_train_end(t, test, report))
    }
}
