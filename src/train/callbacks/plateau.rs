//! The reduce-on-plateau rule: after each validation, the scheduler hears the accuracy and may cut the rate.
//! Other schedules ignore it.

use crate::train::callback::{Callback, EpochLog};
use crate::train::trainer::{TrainData, Trainer};
use crate::Result;

pub struct PlateauRule;

impl Callback for PlateauRule {
    fn on_evaluate_end(&mut self, t: &mut Trainer, _d: &TrainData, log: &mut EpochLog) -> Result<()> {
        log.rate_cut = t.sched.end_epoch(log.val.accuracy);
        Ok(())
    }
}
