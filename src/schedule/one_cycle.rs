//! One-cycle (Smith & Topin 2018): over the first `pct_start` of training the rate rises from `base / div_factor`
//! to `base`, then anneals to `base / div_factor / final_div_factor`, both halves along a cosine. Counted in
//! optimizer steps exactly as PyTorch's `OneCycleLR` (two phases, cosine annealing), so the two agree step by step.

pub fn lr(base: f64, step: f64, total_steps: f64, pct_start: f64, div_factor: f64, final_div_factor: f64) -> f64 {
    let initial = base / div_factor;
    let last = initial / final_div_factor;
    let cos = |from: f64, to: f64, pct: f64| to + (from - to) / 2.0 * ((std::f64::consts::PI * pct).cos() + 1.0);
    let peak = pct_start * total_steps - 1.0;
    if step <= peak {
        cos(initial, base, if peak > 0.0 { step / peak } else { 1.0 })
    } else {
        let end = total_steps - 1.0;
        cos(base, last, ((step - peak) / (end - peak)).min(1.0))
    }
}
