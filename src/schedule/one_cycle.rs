//! One-cycle (Smith & Topin 2018): over the first `pct_start` of training the rate rises from `base / div_factor`
//! to `base`, then anneals to `base / div_factor / final_div_factor`, both halves along a cosine or, with
//! `anneal_strategy = "linear"`, along straight lines (the triangle airbench uses). Counted in optimizer steps
//! exactly as PyTorch's `OneCycleLR` (two phases), so the two agree step by step.

use serde::{Deserialize, Serialize};

/// PyTorch's `anneal_strategy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Anneal {
    #[default]
    Cos,
    Linear,
}

pub fn lr(
    base: f64,
    step: f64,
    total_steps: f64,
    pct_start: f64,
    div_factor: f64,
    final_div_factor: f64,
    anneal: Anneal,
) -> f64 {
    let initial = base / div_factor;
    let last = initial / final_div_factor;
    let go = |from: f64, to: f64, pct: f64| match anneal {
        Anneal::Cos => to + (from - to) / 2.0 * ((std::f64::consts::PI * pct).cos() + 1.0),
        Anneal::Linear => from + (to - from) * pct,
    };
    let peak = pct_start * total_steps - 1.0;
    if step <= peak {
        go(initial, base, if peak > 0.0 { step / peak } else { 1.0 })
    } else {
        let end = total_steps - 1.0;
        go(base, last, ((step - peak) / (end - peak)).min(1.0))
    }
}
