//! Learning-rate schedules, one file each, as the lecture lists them: step decay, exponential, 1/t, cosine, SGDR
//! (cosine with warm restarts), one-cycle, reduce-on-plateau, and a linear warm-up before any of them.
//!
//! Time is counted in epochs, fractionally: the rate is recomputed before every optimizer step, so cosine-like
//! schedules are smooth. Step decay and plateau change only between epochs, as their definitions say.

pub mod cosine;
pub mod exponential;
pub mod inverse_time;
pub mod one_cycle;
pub mod plateau;
pub mod sgdr;
pub mod step;
pub mod warmup;

pub use plateau::PlateauState;

use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// A schedule and its parameters, as written in a recipe's `[schedule]` table (`kind = "cosine"`) or on the
/// command line (`--schedule sgdr:period=10,mult=2`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Schedule {
    /// The base rate throughout.
    Constant,
    /// Multiply by `gamma` every `every` epochs, or after each of `milestones` (epochs completed).
    Step {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        every: Option<usize>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        milestones: Vec<usize>,
        #[serde(default = "d_gamma")]
        gamma: f64,
    },
    /// `lr * e^(-k t)`.
    Exponential { k: f64 },
    /// `lr / (1 + k t)`.
    InverseTime { k: f64 },
    /// One cosine from `lr` to `min_lr` over the run (after any warm-up).
    Cosine {
        #[serde(default)]
        min_lr: f64,
    },
    /// Cosine with warm restarts: periods of `period`, `period*mult`, ... epochs.
    Sgdr {
        period: f64,
        #[serde(default = "d_one")]
        mult: f64,
        #[serde(default)]
        min_lr: f64,
    },
    /// Up from `lr/div_factor` to `lr` over `pct_start` of the run, then down to `lr/div_factor/final_div_factor`.
    OneCycle {
        #[serde(default = "d_pct")]
        pct_start: f64,
        #[serde(default = "d_div")]
        div_factor: f64,
        #[serde(default = "d_final_div")]
        final_div_factor: f64,
        /// Both halves along a cosine (`cos`, the default) or straight lines (`linear`: a triangle, as airbench).
        #[serde(default)]
        anneal_strategy: one_cycle::Anneal,
    },
    /// Divide by `1/factor` when validation accuracy stalls for `patience` epochs.
    Plateau {
        #[serde(default = "d_gamma")]
        factor: f64,
        #[serde(default = "d_patience")]
        patience: usize,
        #[serde(default = "d_threshold")]
        threshold: f64,
        #[serde(default)]
        cooldown: usize,
        #[serde(default)]
        min_lr: f64,
    },
}

fn d_gamma() -> f64 {
    0.1
}
fn d_one() -> f64 {
    1.0
}
fn d_pct() -> f64 {
    0.3
}
fn d_div() -> f64 {
    25.0
}
fn d_final_div() -> f64 {
    1e4
}
fn d_patience() -> usize {
    5
}
fn d_threshold() -> f64 {
    1e-4
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule::Constant
    }
}

pub const KINDS: &str = "constant, step, exponential, inverse-time, cosine, sgdr, one-cycle, plateau";

impl std::str::FromStr for Schedule {
    type Err = Error;
    /// `KIND[:key=value,...]`, e.g. `cosine`, `step:milestones=[30,60],gamma=0.1`, `sgdr:period=10,mult=2`.
    fn from_str(s: &str) -> Result<Self> {
        let (kind, params) = s.split_once(':').unwrap_or((s, ""));
        let mut toml = format!("kind = {kind:?}\n");
        let mut depth = 0;
        let mut item = String::new();
        for ch in params.chars().chain(std::iter::once(',')) {
            match ch {
                '[' => depth += 1,
                ']' => depth -= 1,
                _ => {}
            }
            if ch == ',' && depth == 0 {
                if !item.trim().is_empty() {
                    let (k, v) = item.split_once('=').ok_or_else(|| {
                        Error::Config(format!("bad schedule '{s}': parameter '{item}' needs a value (key=value)"))
                    })?;
                    toml += &format!("{} = {}\n", k.trim(), v.trim());
                }
                item.clear();
            } else {
                item.push(ch);
            }
        }
        toml::from_str(&toml).map_err(|e| {
            Error::Config(format!(
                "bad schedule '{s}': {}. Kinds: {KINDS}; e.g. --schedule sgdr:period=10,mult=2",
                e.message()
            ))
        })
    }
}

/// Where training stands when the rate is asked for.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// Optimizer steps already taken.
    pub step: u64,
    pub steps_per_epoch: u64,
    /// Epochs the run will last.
    pub epochs: usize,
}

impl Clock {
    /// Epochs elapsed, fractional.
    pub fn t(&self) -> f64 {
        self.step as f64 / self.steps_per_epoch.max(1) as f64
    }
}

/// A schedule with its warm-up and its state: the learning rate for every step of a run.
#[derive(Clone, Debug)]
pub struct Scheduler {
    pub base: f64,
    pub schedule: Schedule,
    /// Epochs of linear warm-up (0: none), from `warmup_start * base`.
    pub warmup_epochs: f64,
    pub warmup_start: f64,
    pub plateau: PlateauState,
}

impl Scheduler {
    pub fn new(base: f64, schedule: Schedule, warmup_epochs: f64, warmup_start: f64) -> Self {
        Scheduler { base, schedule, warmup_epochs, warmup_start, plateau: PlateauState::default() }
    }

    /// Checks the parameters against the run's length.
    pub fn validate(&self, epochs: usize) -> Result<()> {
        let bad = |m: String| Err(Error::Config(format!("schedule: {m}")));
        let pos = |x: f64| x > 0.0 && x.is_finite();
        if !(self.warmup_epochs >= 0.0 && self.warmup_epochs < epochs as f64) {
            return bad(format!(
                "warmup_epochs {} must be below the run's {epochs} epochs: train longer (--epochs {}) or shorten \
                 the warm-up (--set warmup_epochs=0)",
                self.warmup_epochs,
                self.warmup_epochs.floor() as usize + 1
            ));
        }
        if !(0.0..=1.0).contains(&self.warmup_start) {
            return bad(format!("warmup_start {} must be a fraction in [0, 1]", self.warmup_start));
        }
        match &self.schedule {
            Schedule::Step { every, milestones, gamma } => {
                if every.is_none() && milestones.is_empty() {
                    return bad("step needs `every = N` or `milestones = [...]`".into());
                }
                if every == &Some(0) {
                    return bad("step's every must be at least 1".into());
                }
                if !(pos(*gamma) && *gamma <= 1.0) {
                    return bad(format!("gamma {gamma} must be in (0, 1]"));
                }
            }
            Schedule::Exponential { k } | Schedule::InverseTime { k } if !(*k >= 0.0 && k.is_finite()) => {
                return bad(format!("k {k} must be >= 0"))
            }
            Schedule::Cosine { min_lr } | Schedule::Sgdr { min_lr, .. } if *min_lr < 0.0 || *min_lr > self.base => {
                return bad(format!("min_lr {min_lr} must be in [0, lr = {}]", self.base))
            }
            _ => {}
        }
        match &self.schedule {
            Schedule::Sgdr { period, mult, .. } if !(pos(*period) && *mult >= 1.0) => {
                bad(format!("sgdr needs period > 0 and mult >= 1 (got {period}, {mult})"))
            }
            Schedule::OneCycle { pct_start, div_factor, final_div_factor, .. }
                if !((0.0..1.0).contains(pct_start) && *div_factor >= 1.0 && *final_div_factor >= 1.0) =>
            {
                bad("one-cycle needs pct_start in [0, 1), div_factor >= 1, final_div_factor >= 1".into())
            }
            Schedule::Plateau { factor, .. } if !(*factor > 0.0 && *factor < 1.0) => {
                bad(format!("plateau's factor {factor} must be in (0, 1)"))
            }
            _ => Ok(()),
        }
    }

    /// The learning rate for the step about to be taken.
    pub fn lr(&self, c: &Clock) -> f64 {
        let (t, w) = (c.t(), self.warmup_epochs);
        if w > 0.0 && t < w {
            return self.base * warmup::factor(t, w, self.warmup_start);
        }
        // The main schedule starts when the warm-up ends and fills the rest of the run.
        let t = t - w;
        let total = c.epochs as f64 - w;
        let spe = c.steps_per_epoch.max(1) as f64;
        let b = self.base;
        match &self.schedule {
            Schedule::Constant => b,
            Schedule::Step { every, milestones, gamma } => step::lr(b, t, *every, milestones, *gamma),
            Schedule::Exponential { k } => exponential::lr(b, t, *k),
            Schedule::InverseTime { k } => inverse_time::lr(b, t, *k),
            Schedule::Cosine { min_lr } => cosine::lr(b, t, total, *min_lr),
            Schedule::Sgdr { period, mult, min_lr } => sgdr::lr(b, t, *period, *mult, *min_lr),
            Schedule::OneCycle { pct_start, div_factor, final_div_factor, anneal_strategy } => {
                let (step, steps) = ((t * spe).round(), total * spe);
                one_cycle::lr(b, step, steps, *pct_start, *div_factor, *final_div_factor, *anneal_strategy)
            }
            Schedule::Plateau { min_lr, .. } => (b * self.plateau.scale).max(*min_lr),
        }
    }

    /// Called after each epoch's validation; only the plateau schedule listens. Returns true if it cut the rate.
    pub fn end_epoch(&mut self, val_accuracy: f64) -> bool {
        if let Schedule::Plateau { factor, patience, threshold, cooldown, min_lr } = &self.schedule {
            let min_scale = min_lr / self.base;
            return self.plateau.observe(val_accuracy, *factor, *patience, *threshold, *cooldown, min_scale);
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &Scheduler, step: u64, spe: u64, epochs: usize) -> f64 {
        s.lr(&Clock { step, steps_per_epoch: spe, epochs })
    }

    #[test]
    fn matches_torch_schedulers_epoch_by_epoch() {
        let r = crate::optim::reference();
        let cases = r["schedules"].as_object().unwrap();
        assert!(cases.len() >= 9);
        for (name, c) in cases {
            let spec: Schedule = c["spec"].as_str().unwrap().parse().unwrap();
            let n = c["n"].as_u64().unwrap() as usize;
            let epochs = c.get("epochs").and_then(|e| e.as_u64()).unwrap_or(n as u64) as usize;
            let mut s = Scheduler::new(
                0.1,
                spec,
                c.get("warmup_epochs").and_then(|v| v.as_f64()).unwrap_or(0.0),
                c.get("warmup_start").and_then(|v| v.as_f64()).unwrap_or(0.1),
            );
            s.validate(epochs).unwrap();
            let want: Vec<f64> = serde_json::from_value(c["lr"].clone()).unwrap();
            let metric: Option<Vec<f64>> = c.get("metric").map(|m| serde_json::from_value(m.clone()).unwrap());
            for (e, w) in want.iter().enumerate() {
                let got = at(&s, e as u64, 1, epochs);
                assert!((got - w).abs() <= 1e-9 * w.abs().max(1e-6), "{name} epoch {e}: {got} vs torch {w}");
                if let Some(m) = &metric {
                    s.end_epoch(m[e]);
                }
            }
        }
    }

    #[test]
    fn formulas_between_epochs() {
        // Exponential and 1/t follow the lecture's continuous formulas within an epoch.
        let s = Scheduler::new(0.5, "exponential:k=0.2".parse().unwrap(), 0.0, 0.1);
        assert!((at(&s, 25, 10, 10) - 0.5 * (-0.2f64 * 2.5).exp()).abs() < 1e-15);
        let s = Scheduler::new(0.5, "inverse-time:k=0.4".parse().unwrap(), 0.0, 0.1);
        assert!((at(&s, 25, 10, 10) - 0.5 / (1.0 + 0.4 * 2.5)).abs() < 1e-15);
        // Cosine is smooth across steps and reaches min_lr at the end.
        let s = Scheduler::new(0.1, "cosine:min_lr=0.01".parse().unwrap(), 0.0, 0.1);
        assert!((at(&s, 50, 10, 10) - 0.055).abs() < 1e-12 && (at(&s, 100, 10, 10) - 0.01).abs() < 1e-12);
        // Step decay only changes at epoch boundaries.
        let s = Scheduler::new(0.1, "step:every=2,gamma=0.5".parse().unwrap(), 0.0, 0.1);
        assert_eq!((at(&s, 19, 10, 10), at(&s, 20, 10, 10)), (0.1, 0.05));
        // Warm-up is linear in steps, then hands over at its end.
        let s = Scheduler::new(0.1, Schedule::Constant, 1.0, 0.0);
        assert!((at(&s, 5, 10, 10) - 0.05).abs() < 1e-15 && at(&s, 10, 10, 10) == 0.1);
        // SGDR restarts at the top of each period: 0, 3, 9 with period 3, mult 2.
        let s = Scheduler::new(0.1, "sgdr:period=3,mult=2".parse().unwrap(), 0.0, 0.1);
        for restart in [0, 30, 90] {
            assert!((at(&s, restart, 10, 40) - 0.1).abs() < 1e-12, "restart at step {restart}");
        }
        assert!(at(&s, 89, 10, 40) < 0.001);
    }

    #[test]
    fn parses_cli_specs_and_rejects_bad_ones() {
        assert_eq!(
            "step:milestones=[30,60],gamma=0.2".parse::<Schedule>().unwrap(),
            Schedule::Step { every: None, milestones: vec![30, 60], gamma: 0.2 }
        );
        assert_eq!("cosine".parse::<Schedule>().unwrap(), Schedule::Cosine { min_lr: 0.0 });
        for bad in ["cosinus", "sgdr:periode=3", "step:every", "sgdr"] {
            let e = bad.parse::<Schedule>().unwrap_err().to_string();
            assert!(e.contains("bad schedule"), "{bad}: {e}");
        }
        let v = |s: &str, epochs| Scheduler::new(0.1, s.parse().unwrap(), 0.0, 0.1).validate(epochs);
        assert!(v("step:gamma=0.5", 10).is_err(), "step needs every or milestones");
        assert!(v("sgdr:period=0", 10).is_err() && v("plateau:factor=2", 10).is_err());
        assert!(
            Scheduler::new(0.1, Schedule::Constant, 10.0, 0.1).validate(10).is_err(),
            "warm-up longer than the run"
        );
    }
}
