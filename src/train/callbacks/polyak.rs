//! Polyak averaging as a callback: the average moves after every step, is evaluated on the validation split
//! after every epoch (swapped into the model, so no second network), saved as checkpoint `ema` and, as
//! `polyak.*` tensors, inside `last` so that a resumed run continues the same average.

use super::checkpointer::RunMeta;
use crate::evaluate::evaluate;
use crate::optim::polyak::Polyak;
use crate::train::callback::{Callback, EpochLog};
use crate::train::checkpoint::{self, Checkpoint};
use crate::train::trainer::{StepStats, TestSet, TrainData, Trainer};
use crate::train::TrainReport;
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub struct PolyakAveraging {
    pub ema: Polyak<f32>,
    pub dir: PathBuf,
    pub run: RunMeta,
    last_val: Option<(f64, f64)>,
}

impl PolyakAveraging {
    /// Starts the average at the model's weights, or continues the one saved in `resumed`'s optimizer state.
    pub fn new(t: &mut Trainer, decay: f64, dir: PathBuf, run: RunMeta, resumed: Option<&Checkpoint>) -> Result<Self> {
        let mut ema = Polyak::new(&mut t.model, decay);
        if let Some(ck) = resumed {
            let avg: BTreeMap<_, _> = ck
                .optimizer
                .iter()
                .filter_map(|(k, v)| k.strip_prefix("polyak.").map(|n| (n.to_string(), v.clone())))
                .collect();
            if avg.is_empty() {
                return Err(Error::file(
                    &ck.dir,
                    "this run has no Polyak average to resume: drop ema_decay or start afresh",
                ));
            }
            ema.avg = avg;
        }
        Ok(PolyakAveraging { ema, dir, run, last_val: None })
    }
}

impl Callback for PolyakAveraging {
    fn on_step_end(&mut self, t: &mut Trainer, s: &StepStats, _p: &crate::train::callback::Progress) -> Result<()> {
        if s.steps > 0 {
            self.ema.update(&mut t.model);
        }
        Ok(())
    }

    fn on_evaluate_end(&mut self, t: &mut Trainer, data: &TrainData, log: &mut EpochLog) -> Result<()> {
        self.ema.swap(&mut t.model);
        let e = evaluate(&mut t.model, &data.dataset, data.val.clone(), &data.prep, 256);
        self.ema.swap(&mut t.model);
        log.ema_val = Some((e.loss, e.accuracy));
        self.last_val = log.ema_val;
        t.extra_state = self.ema.avg.iter().map(|(k, v)| (format!("polyak.{k}"), v.clone())).collect();
        Ok(())
    }

    fn on_epoch_end(&mut self, t: &mut Trainer, log: &EpochLog) -> Result<()> {
        let Some((_, acc)) = log.ema_val else { return Ok(()) };
        let meta = checkpoint::Meta { val_accuracy: acc, ..self.run.meta(t, log) };
        self.ema.swap(&mut t.model);
        let saved = checkpoint::save(&self.dir, "ema", &mut t.model, &BTreeMap::new(), &self.run.prep, &meta);
        self.ema.swap(&mut t.model);
        saved.map(|_| ())
    }

    fn on_train_end(&mut self, _t: &mut Trainer, test: &TestSet, r: &mut TrainReport) -> Result<()> {
        let ck = Checkpoint::load(&self.dir.join("ema"))?;
        // A resumed run with nothing left to train: the average's validation figure comes from its checkpoint.
        r.ema_val_accuracy = Some(self.last_val.map_or(ck.meta.val_accuracy, |v| v.1));
        if !test.idx.is_empty() {
            r.ema_test_accuracy = Some(test.evaluate(&mut ck.model()?).accuracy);
        }
        Ok(())
    }
}
