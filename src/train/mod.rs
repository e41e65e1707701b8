//! `convkit train`: real data in, a trained model, its metrics and checkpoints out.
//!
//! `train` reads as the outline of a run: prepare the run (folder, data, model), build the `Trainer`, hang the
//! callbacks on it, fit, touch the test split once, report. The steps live in `trainer.rs`, everything around
//! them in `callbacks/`.

pub mod callback;
pub mod callbacks;
pub mod checkpoint;
pub mod config;
pub mod run;
pub mod trainer;

pub use callback::{Callback, Callbacks, EpochLog, Progress, RunInfo};
pub use config::TrainConfig;
pub use trainer::{StepStats, TestSet, TrainData, Trainer};

use crate::evaluate::EvalReport;
use crate::Result;
use run::Run;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Default)]
pub struct TrainOptions {
    /// Continue the run in this folder from its `last` checkpoint.
    pub resume: Option<PathBuf>,
    /// The caller's callbacks (progress display, extra monitors), called after the run's own.
    pub callbacks: Callbacks,
    /// Run the lecture's sanity checks on the training data before the first step (their report goes to the
    /// callbacks in `RunInfo::sanity` and into the report; a FAIL does not stop the run).
    pub sanity: Option<crate::check::sanity::SanityOptions>,
    /// Sample the babysitting figures every this many steps into `RUN/monitor.jsonl` (and diagnose the run from
    /// them at the end); None: no monitor.
    pub monitor_every: Option<u64>,
    /// Score on validation only and never touch the test split (hyperparameter search trials): the report's test
    /// figures are then NaN.
    pub validation_only: bool,
    /// Check every layer's output and input gradient and every weight at every step, and stop at the first NaN or
    /// infinity, naming the layer (a debugging mode: it reads every activation).
    pub detect_anomaly: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct TrainReport {
    pub run_dir: PathBuf,
    pub model: String,
    pub data: String,
    pub epochs: usize,
    /// The epoch this run resumed after (None: a fresh run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumed_from: Option<usize>,
    pub train_images: usize,
    pub val_images: usize,
    pub test_images: usize,
    pub final_train_loss: f64,
    pub best_epoch: usize,
    pub best_val_accuracy: f64,
    /// Accuracy of the `best` checkpoint (by validation accuracy) on the test split, touched once at the end.
    pub test_accuracy: f64,
    pub test_loss: f64,
    /// With Polyak averaging: the averaged weights' last validation accuracy and their test accuracy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ema_val_accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ema_test_accuracy: Option<f64>,
    /// The sanity checks run before the first step, if asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sanity: Option<crate::check::sanity::SanityReport>,
    /// The run read in plain words (with a monitor): overfitting, a loss that exploded, layers that barely learn, ...
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diagnosis: Vec<String>,
    /// With a `[target]`: when validation accuracy first reached it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_to_target: Option<callbacks::time_to_target::TimeToTargetReport>,
    /// Set when early stopping ended the run before its last epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_early: Option<StoppedEarly>,
    /// The whole command: data loading, training, the test set and the report.
    pub wall_seconds: f64,
    /// Training alone: the model built (and initialised from data), then every epoch with its validation; what
    /// PyTorch scripts usually time, so the figure to set beside theirs.
    pub train_seconds: f64,
    #[serde(skip)]
    pub test: Option<EvalReport>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct StoppedEarly {
    pub after_epoch: usize,
    pub best_epoch: usize,
}

/// Trains as the recipe says; with `opts.resume`, continues that run from its `last` checkpoint.
pub fn train(cfg: TrainConfig, opts: TrainOptions) -> Result<TrainReport> {
    let started = Instant::now();
    let mut run = Run::prepare(cfg, opts.resume.as_deref())?;
    run.sanity = opts.sanity.and_then(|o| match run.sanity_checks(&o) {
        Ok(report) => Some(report),
        Err(e) => {
            tracing::warn!("sanity checks skipped: {e}");
            None
        }
    });
    let training = Instant::now();
    let mut trainer = run.trainer()?;
    let mut cbs = run.callbacks(&mut trainer, opts.callbacks, opts.monitor_every)?;
    if opts.detect_anomaly {
        // First, so that its precise message comes before the divergence guard's.
        cbs.0.insert(0, Box::new(callbacks::AnomalyDetector::default()));
    }
    let last = trainer.fit(&run.data, &run.info(), &mut cbs)?;
    let train_seconds = training.elapsed().as_secs_f64();
    let test = run.test_set(opts.validation_only)?;
    let mut report = run.report(&trainer, last.as_ref(), &test, started, train_seconds)?;
    cbs.train_end(&mut trainer, &test, &mut report)?;
    Ok(report)
}
