//! 1/t decay, the lecture's `a = a0 / (1 + k t)` with `t` in epochs.

pub fn lr(base: f64, t: f64, k: f64) -> f64 {
    base / (1.0 + k * t)
}
