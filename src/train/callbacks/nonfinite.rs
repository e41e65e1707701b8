//! The divergence guard: a loss that is not a finite number stops the run with a message naming the step, and
//! weights that are no longer finite stop it before any checkpoint is written, so `best` and `last` always hold
//! finite weights.

use crate::train::callback::{Callback, EpochLog, Progress};
use crate::train::trainer::{StepStats, TrainData, Trainer};
use crate::{Error, Result};
use std::path::PathBuf;

pub struct NonFiniteGuard {
    /// The run's checkpoint folder, to say what is left intact.
    pub checkpoints: PathBuf,
}

impl NonFiniteGuard {
    fn intact(&self) -> String {
        if self.checkpoints.join("last").exists() {
            format!("The checkpoints of the last finished epoch are intact in {}", self.checkpoints.display())
        } else {
            "No checkpoint had been written yet.".into()
        }
    }
}

impl Callback for NonFiniteGuard {
    fn on_step_end(&mut self, _t: &mut Trainer, s: &StepStats, p: &Progress) -> Result<()> {
        if s.loss.is_finite() {
            return Ok(());
        }
        Err(Error::Diverged(format!(
            "the loss is {} at epoch {}, step {} of the epoch (learning rate {:e}). Lower the learning rate. {}",
            s.loss,
            p.epoch,
            p.done,
            s.lr,
            self.intact()
        )))
    }

    fn on_evaluate_end(&mut self, t: &mut Trainer, _d: &TrainData, log: &mut EpochLog) -> Result<()> {
        let mut first_bad = None;
        t.model.visit_params(&mut |name, p| {
            if first_bad.is_none() && p.value.data().iter().any(|v| !v.is_finite()) {
                first_bad = Some(name.to_string());
            }
        });
        match first_bad {
            None => Ok(()),
            Some(name) => Err(Error::Diverged(format!(
                "after epoch {} the weights of '{name}' are not finite (the loss stayed finite: {:.4}); nothing of \
                 this epoch was saved. Lower the learning rate or clip gradients (--clip-norm). {}",
                log.epoch,
                log.train_loss,
                self.intact()
            ))),
        }
    }
}
