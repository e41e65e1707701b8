//! Exponential decay, the lecture's `a = a0 * e^(-k t)` with `t` in epochs (PyTorch's `ExponentialLR` with
//! `gamma = e^-k`, evaluated between epochs too).

pub fn lr(base: f64, t: f64, k: f64) -> f64 {
    base * (-k * t).exp()
}
