//! Linear warm-up: for the first `epochs`, scale the rate from `start` (a fraction of the base rate) up to 1,
//! before the main schedule begins (PyTorch's `LinearLR` followed by the schedule, as in `SequentialLR`).
//! Large batches and Adam-free deep nets diverge without it (Goyal et al. 2017).

/// The warm-up's multiplier at `t` epochs, `t < epochs`.
pub fn factor(t: f64, epochs: f64, start: f64) -> f64 {
    start + (1.0 - start) * (t / epochs).clamp(0.0, 1.0)
}
