//! SGDR, cosine annealing with warm restarts (Loshchilov & Hutter 2017): the first period lasts `period` epochs,
//! each next one `mult` times longer; each restarts at `base` and anneals to `min_lr` (PyTorch's
//! `CosineAnnealingWarmRestarts`). Snapshot ensembles take a model at the end of each period.

/// Where `t` falls: (index of the period, time into it, its length), all in epochs.
pub fn period_at(t: f64, period: f64, mult: f64) -> (usize, f64, f64) {
    if mult == 1.0 {
        let i = (t / period).floor();
        return (i as usize, t - i * period, period);
    }
    // Periods start at period * (mult^i - 1) / (mult - 1).
    let mut i = ((t / period * (mult - 1.0) + 1.0).ln() / mult.ln()).floor();
    // Guard the floor against rounding right at a restart.
    let start = |i: f64| period * (mult.powf(i) - 1.0) / (mult - 1.0);
    if start(i + 1.0) <= t {
        i += 1.0;
    } else if start(i) > t {
        i -= 1.0;
    }
    (i as usize, t - start(i), period * mult.powf(i))
}

pub fn lr(base: f64, t: f64, period: f64, mult: f64, min_lr: f64) -> f64 {
    let (_, cur, len) = period_at(t, period, mult);
    min_lr + (base - min_lr) * (1.0 + (std::f64::consts::PI * cur / len).cos()) / 2.0
}
