//! Checkpoints `best` (when validation accuracy improves) and `last` (every epoch, with the optimizer state and
//! whatever other callbacks keep in `Trainer::extra_state`), each written atomically.

use crate::data::preprocess::Preprocess;
use crate::schedule::Schedule;
use crate::train::callback::{Callback, EpochLog};
use crate::train::checkpoint::{self, Meta};
use crate::train::trainer::Trainer;
use crate::Result;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// What every checkpoint of a run says about it, besides the epoch's figures.
#[derive(Clone, Debug)]
pub struct RunMeta {
    pub model: String,
    pub classes: Vec<String>,
    pub input: [usize; 3],
    pub data: String,
    /// The data's absolute path when training (see `Meta::data_dir`).
    pub data_dir: Option<PathBuf>,
    pub seed: u64,
    /// The update rule's name (`momentum`, `adam`, ...).
    pub optimizer: String,
    pub prep: Arc<Preprocess>,
}

impl RunMeta {
    /// The metadata of a checkpoint taken now, after `log`'s epoch.
    pub fn meta(&self, t: &Trainer, log: &EpochLog) -> Meta {
        Meta {
            model: self.model.clone(),
            classes: self.classes.clone(),
            input: self.input,
            preprocess: self.prep.kind,
            epoch: log.epoch,
            step: log.step,
            val_accuracy: log.val.accuracy,
            best_val_accuracy: t.best.0,
            optimizer: self.optimizer.clone(),
            optimizer_t: t.optimizer().map_or(0, |o| o.t),
            plateau: matches!(t.sched.schedule, Schedule::Plateau { .. }).then(|| t.sched.plateau.clone()),
            data: self.data.clone(),
            data_dir: self.data_dir.clone(),
            seed: self.seed,
        }
    }
}

pub struct Checkpointer {
    pub dir: PathBuf,
    pub run: RunMeta,
}

impl Callback for Checkpointer {
    fn on_epoch_end(&mut self, t: &mut Trainer, log: &EpochLog) -> Result<()> {
        let meta = self.run.meta(t, log);
        let prep = &self.run.prep;
        if log.improved {
            checkpoint::save(&self.dir, "best", &mut t.model, &BTreeMap::new(), prep, &meta)?;
        }
        let mut state = t.optimizer().map(|o| o.state()).unwrap_or_default();
        state.extend(t.extra_state.iter().map(|(k, v)| (k.clone(), v.clone())));
        checkpoint::save(&self.dir, "last", &mut t.model, &state, prep, &meta)?;
        Ok(())
    }
}
