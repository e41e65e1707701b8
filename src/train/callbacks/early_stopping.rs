//! Early stopping: stop when the monitored validation figure has not improved by more than `min_delta` for
//! `patience` epochs, and put back the weights of the best epoch (Keras' `EarlyStopping(restore_best_weights)`).
//! With the defaults (validation accuracy, min_delta 0) the restored weights are those of checkpoint `best`.

use crate::tensor::Tensor;
use crate::train::callback::{Callback, EpochLog};
use crate::train::trainer::{TestSet, Trainer};
use crate::train::TrainReport;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// The validation figure watched.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Higher is better.
    #[default]
    ValAcc,
    /// Lower is better.
    ValLoss,
}

/// The recipe's `[early_stopping]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStoppingConfig {
    #[serde(default)]
    pub monitor: Metric,
    /// Epochs without improvement before stopping.
    pub patience: usize,
    /// An improvement must beat the best so far by more than this.
    #[serde(default)]
    pub min_delta: f64,
    /// Put back the best epoch's weights when stopping (default true).
    #[serde(default = "yes")]
    pub restore_best: bool,
}

fn yes() -> bool {
    true
}

impl EarlyStoppingConfig {
    pub fn validate(&self) -> Result<()> {
        if self.patience == 0 || !(self.min_delta >= 0.0 && self.min_delta.is_finite()) {
            return Err(Error::Config(format!(
                "early_stopping needs patience >= 1 and min_delta >= 0 (got {} and {})",
                self.patience, self.min_delta
            )));
        }
        Ok(())
    }
}

pub struct EarlyStopping {
    cfg: EarlyStoppingConfig,
    best: Option<(f64, usize)>,
    /// Parameters and buffers at the best epoch, by registry name.
    weights: Vec<(String, Tensor<f32>)>,
    stopped: Option<(usize, usize)>,
}

impl EarlyStopping {
    pub fn new(cfg: EarlyStoppingConfig) -> Self {
        EarlyStopping { cfg, best: None, weights: Vec::new(), stopped: None }
    }

    /// `(stopped after epoch, best epoch)` once it has stopped the run.
    pub fn stopped(&self) -> Option<(usize, usize)> {
        self.stopped
    }

    /// The monitored figure, signed so that higher is better.
    fn score(&self, log: &EpochLog) -> f64 {
        match self.cfg.monitor {
            Metric::ValAcc => log.val.accuracy,
            Metric::ValLoss => -log.val.loss,
        }
    }
}

impl Callback for EarlyStopping {
    fn on_epoch_end(&mut self, t: &mut Trainer, log: &EpochLog) -> Result<()> {
        let s = self.score(log);
        if self.best.is_none_or(|(b, _)| s > b + self.cfg.min_delta) {
            self.best = Some((s, log.epoch));
            if self.cfg.restore_best {
                self.weights = crate::train::checkpoint::model_tensors(&mut t.model);
            }
            return Ok(());
        }
        let (_, best_epoch) = self.best.expect("set on the first epoch");
        if log.epoch - best_epoch >= self.cfg.patience {
            if self.cfg.restore_best {
                let named = self.weights.iter().cloned().collect();
                crate::train::checkpoint::load_into(&mut t.model, &named, std::path::Path::new("best epoch"))?;
            }
            self.stopped = Some((log.epoch, best_epoch));
            t.request_stop(format!(
                "early stopping: no improvement of {:?} by more than {} for {} epochs (best at epoch {best_epoch})",
                self.cfg.monitor, self.cfg.min_delta, self.cfg.patience
            ));
        }
        Ok(())
    }

    fn on_train_end(&mut self, _t: &mut Trainer, _test: &TestSet, r: &mut TrainReport) -> Result<()> {
        r.stopped_early =
            self.stopped.map(|(after, best)| super::super::StoppedEarly { after_epoch: after, best_epoch: best });
        Ok(())
    }
}
