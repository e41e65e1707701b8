//! Step decay: multiply the learning rate by `gamma` every `every` epochs, or at each milestone (PyTorch's `StepLR`
//! and `MultiStepLR`). A milestone `m` lowers the rate once `m` epochs are complete.

/// `base * gamma^k`, where `k` counts the drops that `epochs_done` whole epochs have passed.
pub fn lr(base: f64, t: f64, every: Option<usize>, milestones: &[usize], gamma: f64) -> f64 {
    let done = t.floor() as usize;
    let k = match every {
        Some(n) if n > 0 => done / n,
        _ => milestones.iter().filter(|&&m| done >= m).count(),
    };
    base * gamma.powi(k as i32)
}
