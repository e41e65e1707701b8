//! Will a batch fit? An estimate from the model's accounting (activations kept for the backward pass, their
//! gradients, the weights with their gradients and two optimizer buffers), checked against the memory the system
//! says is available, so that an absurd batch is an error naming the size that fits, not an allocation abort.

use crate::models::Model;
use crate::{Error, Result};

/// Bytes a training step at `batch` needs, about.
pub fn training_bytes(model: &mut Model<f32>, batch: usize) -> Result<u64> {
    let input = model.input;
    let s = crate::summary::summarize(model, input, 1)?;
    Ok(s.forward_backward_bytes_per_image as u64 * batch as u64 + 4 * 4 * s.params as u64)
}

/// Linux's `MemAvailable` in bytes, when it can be read.
pub fn available_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb * 1024)
}

/// An error when a training step at `batch` would need more than the available memory; `what` names the setting.
pub fn check_batch(model: &mut Model<f32>, batch: usize, what: &str) -> Result<()> {
    let (Some(avail), need) = (available_bytes(), training_bytes(model, batch)?) else { return Ok(()) };
    if need <= avail {
        return Ok(());
    }
    let per_image = (training_bytes(model, 1)? - training_bytes(model, 0)?).max(1);
    let fits = (avail.saturating_sub(training_bytes(model, 0)?) / per_image).max(1);
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    Err(Error::Config(format!(
        "{what} {batch}: a training step of {} needs about {:.1} GiB, and {:.1} GiB is available; \
         at most about {fits} fits",
        model.name,
        gib(need),
        gib(avail)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absurd_batch_is_refused_naming_what_fits() {
        let mut m = crate::models::build::<f32>("lenet5", None, 0).unwrap();
        assert!(check_batch(&mut m, 64, "batch_size").is_ok());
        if available_bytes().is_some() {
            let e = check_batch(&mut m, 1 << 40, "--batch").unwrap_err().to_string();
            assert!(e.contains("--batch") && e.contains("at most about"), "{e}");
        }
    }
}
