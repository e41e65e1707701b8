//! `RUN/tb/`: the run's scalars and histograms as TensorBoard event files (`tensorboard --logdir RUN/tb`).
//! Per step: `step/loss`, `step/lr`. Per epoch (TensorBoard's step is then the epoch, as in metrics.csv): every
//! column of metrics.csv as `epoch/<column>`, and a histogram of each weight tensor as `weights/<name>`.
//! A resumed run rewrites the folder keeping what came before its checkpoint, as metrics.csv does.

use crate::tensorboard::{self, Event, EventWriter, Histogram};
use crate::train::callback::{Callback, EpochLog, Progress, RunInfo};
use crate::train::trainer::{StepStats, Trainer};
use crate::{Error, Result};
use std::path::PathBuf;

const BINS: usize = 30;

pub struct TensorBoard {
    dir: PathBuf,
    /// Resuming after (epoch, step): keep the events up to them.
    resume_after: Option<(usize, u64)>,
    out: Option<EventWriter>,
}

impl TensorBoard {
    pub fn new(dir: PathBuf, resume_after: Option<(usize, u64)>) -> Self {
        TensorBoard { dir, resume_after, out: None }
    }

    fn out(&mut self) -> Result<&mut EventWriter> {
        self.out.as_mut().ok_or_else(|| Error::Config("tensorboard: written to before the run began".into()))
    }
}

/// Whether an event belongs before the checkpoint at (epoch, step): per-step tags count steps, the rest epochs.
fn before(e: &Event, (epoch, step): (usize, u64)) -> bool {
    let per_step = e.summary.as_ref().is_some_and(|s| s.value.iter().any(|v| v.tag.starts_with("step/")));
    e.file_version.is_none() && e.step <= if per_step { step as i64 } else { epoch as i64 }
}

impl Callback for TensorBoard {
    fn on_train_begin(&mut self, _t: &mut Trainer, _run: &RunInfo) -> Result<()> {
        let old = tensorboard::files(&self.dir);
        let mut out = EventWriter::create(&self.dir)?;
        if let Some(at) = self.resume_after {
            for f in &old {
                for e in tensorboard::read(f)?.into_iter().filter(|e| before(e, at)) {
                    out.write(&e)?;
                }
            }
        }
        out.flush()?;
        // Only now, with what they held copied, the old files go (a fresh run starts an empty folder).
        for f in old {
            std::fs::remove_file(&f).map_err(|e| Error::file(&f, format!("cannot remove: {e}")))?;
        }
        self.out = Some(out);
        Ok(())
    }

    fn on_step_end(&mut self, t: &mut Trainer, s: &StepStats, _p: &Progress) -> Result<()> {
        let step = t.step;
        self.out()?.scalars(step, &[("step/loss", s.loss), ("step/lr", s.lr)])
    }

    fn on_epoch_end(&mut self, t: &mut Trainer, l: &EpochLog) -> Result<()> {
        let mut scalars = vec![
            ("epoch/step", l.step as f64),
            ("epoch/train_loss", l.train_loss),
            ("epoch/train_acc", l.train_accuracy),
            ("epoch/val_loss", l.val.loss),
            ("epoch/val_acc", l.val.accuracy),
            ("epoch/lr", l.lr),
            ("epoch/seconds", l.seconds),
        ];
        if let Some((loss, acc)) = l.ema_val {
            scalars.extend([("epoch/ema_val_loss", loss), ("epoch/ema_val_acc", acc)]);
        }
        let epoch = l.epoch as u64;
        self.out()?.scalars(epoch, &scalars)?;
        let mut hists = Vec::new();
        t.model.visit_params(&mut |name, p| {
            if p.kind == crate::layers::ParamKind::Weight {
                let v = p.value.data();
                hists.push((format!("weights/{name}"), Histogram::of(v.iter().map(|x| *x as f64), BINS)));
            }
        });
        for (tag, h) in hists {
            self.out()?.histogram(epoch, &tag, h)?;
        }
        self.out()?.flush()
    }
}
