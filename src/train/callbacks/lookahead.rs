//! Lookahead as a callback: after every `k`-th optimizer step, sync the slow and fast weights
//! (`optim::lookahead`). At the end of each epoch the model is set to the slow weights, so that what is validated
//! and checkpointed is the slow model, and a resumed run starts its slow copy from the checkpoint exactly.
//!
//! `alpha` is Zhang et al.'s step towards the fast weights (their default 0.5). With `ramp = p > 0`, airbench's
//! schedule: the step starts at 1 (plain training) and falls as `1 - (1 - alpha) (t / T)^p` towards `alpha` at
//! the last step `T`, so the run moves fast early and averages strongly at the end.

use crate::optim::lookahead::Lookahead;
use crate::train::callback::{Callback, Progress};
use crate::train::trainer::{StepStats, Trainer};
use crate::Result;
use serde::{Deserialize, Serialize};

/// The recipe's `[lookahead]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LookaheadConfig {
    /// Inner steps between syncs (Zhang et al.: 5 to 10; airbench 5).
    #[serde(default = "d_k")]
    pub k: u64,
    /// How far the slow weights move towards the fast ones at each sync (Zhang et al.: 0.5; airbench ends at
    /// 1 - 0.95^5 = 0.226).
    #[serde(default = "d_alpha")]
    pub alpha: f64,
    /// 0: constant alpha. p > 0: alpha falls from 1 to `alpha` as `(t / T)^p` (airbench: 3).
    #[serde(default)]
    pub ramp: f64,
    /// The first epoch (counting from 1) with syncs; airbench starts in its fourth.
    #[serde(default = "d_start")]
    pub start_epoch: usize,
}

fn d_k() -> u64 {
    5
}
fn d_alpha() -> f64 {
    0.5
}
fn d_start() -> usize {
    1
}

impl LookaheadConfig {
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.k == 0 {
            return Err("lookahead.k = 0: sync every k >= 1 steps (Zhang et al.: 5)".into());
        }
        if !(self.alpha > 0.0 && self.alpha <= 1.0) {
            return Err(format!("lookahead.alpha = {}: must be in (0, 1] (Zhang et al.: 0.5)", self.alpha));
        }
        if !(self.ramp >= 0.0 && self.ramp.is_finite()) {
            return Err(format!("lookahead.ramp = {}: 0 (constant alpha) or a power > 0 (airbench: 3)", self.ramp));
        }
        Ok(())
    }

    /// The sync's alpha at step `t` of `total`.
    pub fn alpha_at(&self, t: u64, total: u64) -> f64 {
        if self.ramp == 0.0 {
            return self.alpha;
        }
        let frac = (t as f64 / total.max(1) as f64).min(1.0);
        1.0 - (1.0 - self.alpha) * frac.powf(self.ramp)
    }
}

pub struct LookaheadSync {
    pub cfg: LookaheadConfig,
    state: Option<Lookahead<f32>>,
}

impl LookaheadSync {
    pub fn new(cfg: LookaheadConfig) -> Self {
        LookaheadSync { cfg, state: None }
    }
}

impl Callback for LookaheadSync {
    /// The slow weights start from the model at the beginning of an epoch, where a resumed run starts too.
    fn on_epoch_begin(&mut self, t: &mut Trainer, p: &Progress) -> Result<()> {
        if p.epoch >= self.cfg.start_epoch && self.state.is_none() {
            self.state = Some(Lookahead::new(&mut t.model));
        }
        Ok(())
    }

    fn on_step_end(&mut self, t: &mut Trainer, s: &StepStats, p: &Progress) -> Result<()> {
        let Some(la) = &mut self.state else { return Ok(()) };
        if s.steps == 0 {
            return Ok(());
        }
        if t.step % self.cfg.k == 0 {
            let alpha = self.cfg.alpha_at(t.step, t.steps_per_epoch * t.epochs as u64);
            la.sync(&mut t.model, alpha);
        }
        if p.done == p.batches {
            // Epoch end: the model becomes the slow weights (airbench's final sync with alpha 0).
            la.sync(&mut t.model, 0.0);
        }
        Ok(())
    }
}
