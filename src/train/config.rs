//! The training recipe: everything a run needs, loaded from TOML and overridden by flags. The resolved recipe is
//! written as `config.toml` into every run folder, and reproduces the run.

use crate::data::augment::Augment;
use crate::data::preprocess::PreprocessKind;
use crate::optim::OptimizerKind;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// A registered model (`convkit models`).
    pub model: String,
    /// `KIND:PATH`: mnist, fashion-mnist, cifar10-bin or folder.
    pub data: String,
    #[serde(default = "d_epochs")]
    pub epochs: usize,
    #[serde(default = "d_batch")]
    pub batch_size: usize,
    #[serde(default)]
    pub optimizer: OptimizerKind,
    #[serde(default = "d_lr")]
    pub lr: f64,
    /// Momentum's rho.
    #[serde(default = "d_momentum")]
    pub momentum: f64,
    /// L2 penalty on weights (not biases or batch-norm parameters).
    #[serde(default)]
    pub weight_decay: f64,
    /// Step decay: multiply the learning rate by `lr_gamma` at each of these epochs (1-based, the epoch that
    /// starts with the lower rate).
    #[serde(default)]
    pub lr_milestones: Vec<usize>,
    #[serde(default = "d_gamma")]
    pub lr_gamma: f64,
    #[serde(default)]
    pub seed: u64,
    /// Validation images carved from the training split; default 10% (5000 for CIFAR-10).
    #[serde(default)]
    pub val: Option<usize>,
    #[serde(default)]
    pub preprocess: PreprocessKind,
    #[serde(default)]
    pub augment: Augment,
    /// Train on only the first N training images (after the validation split): quick experiments and tests.
    #[serde(default)]
    pub limit: Option<usize>,
    /// Run folder; default `runs/<model>-<data kind>`.
    #[serde(default)]
    pub out: Option<PathBuf>,
}

fn d_epochs() -> usize {
    10
}
fn d_batch() -> usize {
    128
}
fn d_lr() -> f64 {
    0.01
}
fn d_momentum() -> f64 {
    0.9
}
fn d_gamma() -> f64 {
    0.1
}

impl TrainConfig {
    pub fn from_file(path: &Path) -> Result<TrainConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
        toml::from_str(&text).map_err(|e| Error::file(path, format!("invalid recipe: {e}")))
    }

    /// A recipe from flags alone: `--model` and `--data` are then required.
    pub fn from_file_or_flags(model: Option<&str>, data: Option<&str>) -> Result<TrainConfig> {
        match (model, data) {
            (Some(m), Some(d)) => {
                let text = format!("model = {m:?}\ndata = {d:?}\n");
                toml::from_str(&text).map_err(|e| Error::Config(format!("{e}")))
            }
            _ => Err(Error::Config(
                "give a recipe (--config recipes/lenet5-mnist.toml) or both --model and --data".into(),
            )),
        }
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serialises")
    }

    /// Checks what can be checked before any data is read.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if self.epochs == 0 {
            return bad("epochs must be at least 1".into());
        }
        if self.batch_size < 2 {
            return bad(format!("batch_size {} is too small: batch norm needs at least 2 images", self.batch_size));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad(format!("Invalid learning rate: {}", self.lr));
        }
        if !(self.lr_gamma > 0.0 && self.lr_gamma <= 1.0) {
            return bad(format!("lr_gamma {} must be in (0, 1]", self.lr_gamma));
        }
        if self.weight_decay < 0.0 || !self.weight_decay.is_finite() {
            return bad(format!("Invalid weight decay: {}", self.weight_decay));
        }
        self.data.parse::<crate::data::DataSpec>()?;
        Ok(())
    }

    /// The step-decay learning rate for epoch `e` (1-based).
    pub fn lr_at(&self, e: usize) -> f64 {
        self.lr * self.lr_gamma.powi(self.lr_milestones.iter().filter(|&&m| e >= m).count() as i32)
    }

    pub fn default_out(&self) -> PathBuf {
        let kind = self.data.split(':').next().unwrap_or("data");
        PathBuf::from("runs").join(format!("{}-{}", self.model, kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipe_round_trips_and_steps() {
        let c: TrainConfig =
            toml::from_str("model = 'lenet5'\ndata = 'mnist:x'\nlr = 0.1\nlr_milestones = [3, 5]\n").unwrap();
        assert_eq!(c.epochs, 10);
        assert_eq!(toml::from_str::<TrainConfig>(&c.to_toml()).unwrap(), c);
        assert!(
            (c.lr_at(2) - 0.1).abs() < 1e-12 && (c.lr_at(3) - 0.01).abs() < 1e-12 && (c.lr_at(5) - 0.001).abs() < 1e-12
        );
        assert!(
            toml::from_str::<TrainConfig>("model = 'x'\ndata = 'mnist:x'\nlearning_rate = 1").is_err(),
            "typos are errors"
        );
        assert!(TrainConfig { batch_size: 1, ..c.clone() }.validate().is_err());
        assert!(TrainConfig { data: "nope".into(), ..c }.validate().is_err());
    }
}
