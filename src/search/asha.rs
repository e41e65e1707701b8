//! Asynchronous successive halving (ASHA, Li et al. 2018), as a stopping rule: at each rung (epoch `min * eta^k`)
//! a trial goes on only if its validation accuracy is in the top `1/eta` of every trial that reached that rung so
//! far. Hopeless settings stop after an epoch or two and the budget goes to the promising ones; no worker ever
//! waits for another, which is what makes it fit many workers.

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Asha {
    /// The first rung's epoch.
    pub min_epochs: usize,
    /// Keep the top 1/eta at each rung.
    pub eta: usize,
}

impl Default for Asha {
    fn default() -> Self {
        Asha { min_epochs: 1, eta: 3 }
    }
}

impl Asha {
    /// Whether `epoch` is a rung of a run of `epochs` (the last epoch is not: the trial is done anyway).
    pub fn is_rung(&self, epoch: usize, epochs: usize) -> bool {
        let mut r = self.min_epochs.max(1);
        while r < epochs {
            if r == epoch {
                return true;
            }
            r *= self.eta.max(2);
        }
        false
    }

    /// Whether a trial with `mine` at a rung where trials so far have `rung` (itself included) goes on.
    /// With fewer than `eta` trials at the rung there is no top 1/eta yet, and it goes on.
    pub fn promote(&self, mine: f64, rung: &[f64]) -> bool {
        let keep = rung.len() / self.eta.max(2);
        if keep == 0 {
            return true;
        }
        let mut sorted: Vec<f64> = rung.to_vec();
        sorted.sort_by(|a, b| b.total_cmp(a));
        mine >= sorted[keep - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rungs_grow_geometrically_and_skip_the_last_epoch() {
        let a = Asha { min_epochs: 1, eta: 3 };
        let rungs: Vec<usize> = (1..=10).filter(|&e| a.is_rung(e, 10)).collect();
        assert_eq!(rungs, [1, 3, 9]);
        assert!(!a.is_rung(3, 3));
    }

    #[test]
    fn only_the_top_third_goes_on() {
        let a = Asha::default();
        let rung = [0.1, 0.5, 0.6, 0.7, 0.8, 0.9];
        assert!(a.promote(0.9, &rung) && a.promote(0.8, &rung));
        assert!(!a.promote(0.7, &rung) && !a.promote(0.1, &rung));
        // Too few to judge: everyone goes on.
        assert!(a.promote(0.1, &[0.1, 0.9]));
    }
}
