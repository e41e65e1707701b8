//! Cosine annealing (Loshchilov & Hutter 2017, one period): from `base` at `t = 0` down to `min_lr` at `t = total`,
//! `min + (base - min) * (1 + cos(pi t / total)) / 2` (PyTorch's `CosineAnnealingLR`, closed form).

pub fn lr(base: f64, t: f64, total: f64, min_lr: f64) -> f64 {
    let t = t.clamp(0.0, total);
    min_lr + (base - min_lr) * (1.0 + (std::f64::consts::PI * t / total).cos()) / 2.0
}
