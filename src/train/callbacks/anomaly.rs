//! `--detect-anomaly`: stop at the first step where a NaN or infinity appears, naming the layer that made it (its
//! forward output or its input gradient) or, if every layer's values stayed finite, the first weight the update made
//! non-finite. The divergence guard only sees the loss after the step and the weights after the epoch.

use crate::net::anomaly::{self, Watch};
use crate::train::callback::{Callback, EpochLog, Progress, RunInfo};
use crate::train::trainer::{StepStats, TrainData, Trainer};
use crate::{Error, Result};
use std::sync::Arc;

#[derive(Default)]
pub struct AnomalyDetector {
    watch: Arc<Watch>,
}

impl Callback for AnomalyDetector {
    fn on_train_begin(&mut self, t: &mut Trainer, _run: &RunInfo) -> Result<()> {
        anomaly::attach(&mut t.model.net, &self.watch);
        Ok(())
    }

    fn on_epoch_begin(&mut self, _t: &mut Trainer, _p: &Progress) -> Result<()> {
        self.watch.take();
        Ok(())
    }

    fn on_step_end(&mut self, t: &mut Trainer, s: &StepStats, p: &Progress) -> Result<()> {
        let at = format!("epoch {}, step {} of the epoch (learning rate {:e})", p.epoch, p.done, s.lr);
        if let Some(what) = self.watch.take() {
            return Err(Error::Diverged(format!("anomaly at {at}: the first NaN or infinity is in {what}")));
        }
        let mut weight = None;
        t.model.visit_params(&mut |name, w| {
            if weight.is_none() && w.value.data().iter().any(|v| !v.is_finite()) {
                weight = Some(name.to_string());
            }
        });
        match weight {
            Some(name) => Err(Error::Diverged(format!(
                "anomaly at {at}: every layer's values were finite, but the update made weight '{name}' non-finite; \
                 lower the learning rate or clip gradients (--clip-norm)"
            ))),
            None => Ok(()),
        }
    }

    fn on_evaluate_end(&mut self, _t: &mut Trainer, _d: &TrainData, _log: &mut EpochLog) -> Result<()> {
        // Validation's forward passes are not steps: a non-finite value there shows in the epoch's figures.
        self.watch.take();
        Ok(())
    }
}
