//! Reduce on plateau, the AlexNet practice: divide the rate by 10 (`factor`) when the validation accuracy has not
//! improved (by more than a relative `threshold`) for `patience` epochs; then wait `cooldown` epochs before
//! counting again. Mirrors PyTorch's `ReduceLROnPlateau(mode="max", threshold_mode="rel")`.

use serde::{Deserialize, Serialize};

/// What the plateau rule remembers between epochs (saved in checkpoints so a resumed run continues it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlateauState {
    /// Multiplier on the base rate, the product of the reductions so far.
    pub scale: f64,
    pub best: f64,
    pub bad_epochs: usize,
    pub cooldown_left: usize,
}

impl Default for PlateauState {
    fn default() -> Self {
        PlateauState { scale: 1.0, best: f64::NEG_INFINITY, bad_epochs: 0, cooldown_left: 0 }
    }
}

impl PlateauState {
    /// Records one epoch's validation accuracy; returns true if the rate was reduced.
    pub fn observe(
        &mut self,
        acc: f64,
        factor: f64,
        patience: usize,
        threshold: f64,
        cooldown: usize,
        min_scale: f64,
    ) -> bool {
        if acc > self.best * (1.0 + threshold) {
            self.best = acc;
            self.bad_epochs = 0;
        } else {
            self.bad_epochs += 1;
        }
        if self.cooldown_left > 0 {
            self.cooldown_left -= 1;
            self.bad_epochs = 0;
        }
        if self.bad_epochs > patience {
            let new = (self.scale * factor).max(min_scale);
            let reduced = self.scale - new > 1e-12 * self.scale;
            self.scale = new;
            self.cooldown_left = cooldown;
            self.bad_epochs = 0;
            return reduced;
        }
        false
    }
}
