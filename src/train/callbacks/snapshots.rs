//! Snapshot ensembles (Huang et al. 2017, "Train 1, get M for free"): with a cyclic schedule (SGDR), the weights
//! at the end of each cycle sit in a different low-rate minimum. Each is saved as `checkpoints/snapshot-EEE`, and
//! `convkit ensemble --snapshots RUN` averages them.

use super::RunMeta;
use crate::schedule::{sgdr, Schedule};
use crate::train::callback::{Callback, EpochLog};
use crate::train::checkpoint;
use crate::train::trainer::Trainer;
use crate::Result;
use std::collections::BTreeMap;
use std::path::PathBuf;

pub struct Snapshots {
    pub dir: PathBuf,
    pub run: RunMeta,
    /// The run's warm-up, after which the cycles start.
    pub warmup_epochs: f64,
}

/// The name of the snapshot taken after `epoch`.
pub fn name(epoch: usize) -> String {
    format!("snapshot-{epoch:03}")
}

/// Whether an SGDR cycle ends exactly at the end of `epoch` (cycles counted after the warm-up).
pub fn cycle_ends(schedule: &Schedule, warmup_epochs: f64, epoch: usize) -> bool {
    let Schedule::Sgdr { period, mult, .. } = schedule else { return false };
    let t = epoch as f64 - warmup_epochs;
    if t <= 0.0 {
        return false;
    }
    let (_, into, _) = sgdr::period_at(t, *period, *mult);
    into.abs() < 1e-9
}

impl Callback for Snapshots {
    fn on_epoch_end(&mut self, t: &mut Trainer, log: &EpochLog) -> Result<()> {
        if cycle_ends(&t.sched.schedule, self.warmup_epochs, log.epoch) {
            let meta = self.run.meta(t, log);
            checkpoint::save(&self.dir, &name(log.epoch), &mut t.model, &BTreeMap::new(), &self.run.prep, &meta)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_end_where_sgdr_restarts() {
        let s = Schedule::Sgdr { period: 5.0, mult: 1.0, min_lr: 0.0 };
        let ends: Vec<usize> = (1..=15).filter(|&e| cycle_ends(&s, 0.0, e)).collect();
        assert_eq!(ends, [5, 10, 15]);
        let doubling = Schedule::Sgdr { period: 2.0, mult: 2.0, min_lr: 0.0 };
        let ends: Vec<usize> = (1..=15).filter(|&e| cycle_ends(&doubling, 1.0, e)).collect();
        assert_eq!(ends, [3, 7, 15]);
        assert!(!cycle_ends(&Schedule::Constant, 0.0, 5));
    }
}
