//! Live monitoring, the lecture's babysitting figures, sampled every `every` steps and appended to
//! `RUN/monitor.jsonl` (one JSON object a line): the loss (raw and smoothed), the rate, the global gradient norm,
//! each weight's update/weight ratio `||lr * dW|| / ||W||` (the lecture wants about 1e-3), and each layer's
//! activation mean, std, zeros and dead units on that step's batch (through a probe that measures only then).

use crate::layers::ParamKind;
use crate::net::probe::{self, ActivationStats, Probe};
use crate::train::callback::{Callback, EpochLog, Progress, RunInfo};
use crate::train::trainer::{StepStats, TestSet, Trainer};
use crate::train::TrainReport;
use crate::{Error, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

/// How much of the smoothed loss survives each sample.
const SMOOTHING: f64 = 0.9;

#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    pub step: u64,
    pub epoch: usize,
    pub loss: f64,
    pub loss_smooth: f64,
    pub lr: f64,
    pub grad_norm: f64,
    /// `||lr * dW|| / ||W||` per weight tensor.
    pub update_ratio: BTreeMap<String, f64>,
    pub activations: Vec<ActivationStats>,
}

pub struct Monitor {
    pub every: u64,
    path: PathBuf,
    probe: Arc<Probe>,
    smooth: Option<f64>,
    /// Every sample and epoch of this run (the diagnosis reads them at the end).
    pub samples: Vec<Sample>,
    pub epochs: Vec<EpochLog>,
}

impl Monitor {
    /// Samples every `every` steps (at least 1) into `path`, rewritten from the start (`resume_after`: keeps the
    /// lines of steps up to that one).
    pub fn new(path: PathBuf, every: u64, resume_after: Option<u64>) -> Result<Self> {
        let keep = match resume_after {
            Some(step) => std::fs::read_to_string(&path)
                .unwrap_or_default()
                .lines()
                .filter(|l| {
                    serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| v["step"].as_u64() <= Some(step))
                })
                .map(|l| format!("{l}\n"))
                .collect(),
            None => String::new(),
        };
        std::fs::write(&path, keep).map_err(|e| Error::file(&path, format!("cannot write: {e}")))?;
        let probe = Arc::new(Probe::default());
        probe.set_active(false);
        Ok(Monitor { every: every.max(1), path, probe, smooth: None, samples: Vec::new(), epochs: Vec::new() })
    }

    fn sample(&mut self, t: &mut Trainer, s: &StepStats, p: &Progress) -> Result<()> {
        let (mut sq, mut ratio) = (0f64, BTreeMap::new());
        t.model.visit_params(&mut |name, prm| {
            let g2: f64 = prm.grad.data().iter().map(|g| (*g as f64).powi(2)).sum();
            sq += g2;
            if prm.kind == ParamKind::Weight && !prm.frozen {
                let w2: f64 = prm.value.data().iter().map(|w| (*w as f64).powi(2)).sum();
                ratio.insert(name.to_string(), s.lr * g2.sqrt() / w2.sqrt().max(1e-30));
            }
        });
        let loss_smooth = match self.smooth {
            Some(m) if s.loss.is_finite() => SMOOTHING * m + (1.0 - SMOOTHING) * s.loss,
            _ => s.loss,
        };
        self.smooth = Some(loss_smooth);
        let activations = self.probe.take();
        let sample = Sample {
            step: t.step,
            epoch: p.epoch,
            loss: s.loss,
            loss_smooth,
            lr: s.lr,
            grad_norm: sq.sqrt(),
            update_ratio: ratio,
            activations,
        };
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|e| Error::file(&self.path, format!("cannot append: {e}")))?;
        writeln!(f, "{}", serde_json::to_string(&sample).expect("sample serialises"))
            .map_err(|e| Error::file(&self.path, format!("cannot append: {e}")))?;
        self.samples.push(sample);
        Ok(())
    }
}

impl Callback for Monitor {
    fn on_train_begin(&mut self, t: &mut Trainer, _run: &RunInfo) -> Result<()> {
        probe::attach(&mut t.model.net, &self.probe);
        Ok(())
    }

    fn on_epoch_begin(&mut self, t: &mut Trainer, _p: &Progress) -> Result<()> {
        self.probe.set_active(t.step % self.every == 0);
        Ok(())
    }

    fn on_step_end(&mut self, t: &mut Trainer, s: &StepStats, p: &Progress) -> Result<()> {
        // A step is sampled when the count of steps before it is a multiple of `every`; the probe was switched
        // on for its forward pass. It stays off through validation (after an epoch's last step).
        if (t.step - s.steps) % self.every == 0 {
            self.sample(t, s, p)?;
        }
        self.probe.take();
        self.probe.set_active(t.step % self.every == 0 && p.done < p.batches);
        Ok(())
    }

    fn on_epoch_end(&mut self, _t: &mut Trainer, log: &EpochLog) -> Result<()> {
        self.epochs.push(log.clone());
        Ok(())
    }

    fn on_train_end(&mut self, _t: &mut Trainer, _test: &TestSet, r: &mut TrainReport) -> Result<()> {
        r.diagnosis = crate::check::diagnose::diagnose(&self.epochs, &self.samples);
        Ok(())
    }
}
