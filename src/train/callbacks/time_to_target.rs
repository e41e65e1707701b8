//! Time to target: the wall time at which validation accuracy first reached a given value, the figure speed-run
//! recipes are judged by (airbench's "94% on CIFAR-10 in N seconds"). With `stop`, the run ends there.
//! Measured from the first step of this process (a resumed run counts from its resume), validation included.

use crate::train::callback::{Callback, EpochLog, RunInfo};
use crate::train::trainer::{TestSet, Trainer};
use crate::train::TrainReport;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// The recipe's `[target]` table (`--target-acc`, `--stop-at-target`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// Validation accuracy, as a fraction (0.94 for 94%).
    pub accuracy: f64,
    /// End the run at the epoch that reaches it.
    #[serde(default)]
    pub stop: bool,
}

impl TargetConfig {
    pub fn validate(&self) -> Result<()> {
        if !(self.accuracy > 0.0 && self.accuracy <= 1.0) {
            return Err(Error::Config(format!(
                "target.accuracy = {}: a fraction in (0, 1], e.g. 0.94 for 94% validation accuracy",
                self.accuracy
            )));
        }
        Ok(())
    }
}

/// What `report.json` says of the target.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimeToTargetReport {
    pub target: f64,
    /// The first epoch whose validation accuracy reached the target, and the seconds it took; None if none did.
    pub reached: Option<Reached>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Reached {
    pub epoch: usize,
    pub seconds: f64,
    pub val_accuracy: f64,
}

pub struct TimeToTarget {
    cfg: TargetConfig,
    started: Instant,
    reached: Option<Reached>,
}

impl TimeToTarget {
    pub fn new(cfg: TargetConfig) -> Self {
        TimeToTarget { cfg, started: Instant::now(), reached: None }
    }
}

impl Callback for TimeToTarget {
    fn on_train_begin(&mut self, _t: &mut Trainer, _run: &RunInfo) -> Result<()> {
        self.started = Instant::now();
        Ok(())
    }

    fn on_epoch_end(&mut self, t: &mut Trainer, log: &EpochLog) -> Result<()> {
        if self.reached.is_some() || log.val.accuracy < self.cfg.accuracy {
            return Ok(());
        }
        let r =
            Reached { epoch: log.epoch, seconds: self.started.elapsed().as_secs_f64(), val_accuracy: log.val.accuracy };
        self.reached = Some(r);
        if self.cfg.stop && log.epoch < log.epochs {
            t.request_stop(format!(
                "validation accuracy {:.2}% reached the target {:.2}% at epoch {} ({:.0} s)",
                100.0 * r.val_accuracy,
                100.0 * self.cfg.accuracy,
                r.epoch,
                r.seconds
            ));
        }
        Ok(())
    }

    fn on_train_end(&mut self, _t: &mut Trainer, _test: &TestSet, r: &mut TrainReport) -> Result<()> {
        r.time_to_target = Some(TimeToTargetReport { target: self.cfg.accuracy, reached: self.reached });
        Ok(())
    }
}
