//! The training recipe: everything a run needs, loaded from TOML and overridden by flags. The resolved recipe is
//! written as `config.toml` into every run folder, and reproduces the run.

use crate::data::augment::Augment;
use crate::data::preprocess::PreprocessKind;
use crate::optim::{OptimConfig, OptimizerKind};
use crate::regularize::Penalty;
use crate::schedule::{Schedule, Scheduler};
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
    /// The base learning rate (the schedule's starting or peak rate).
    #[serde(default = "d_lr")]
    pub lr: f64,
    /// rho of momentum and Nesterov.
    #[serde(default = "d_momentum")]
    pub momentum: f64,
    /// Adam / AdamW betas.
    #[serde(default = "d_momentum")]
    pub beta1: f64,
    #[serde(default = "d_beta2")]
    pub beta2: f64,
    /// RMSProp's decay rate.
    #[serde(default = "d_decay_rate")]
    pub decay_rate: f64,
    /// Denominator guard of AdaGrad / RMSProp / Adam (default 1e-10 for AdaGrad, else 1e-8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eps: Option<f64>,
    /// PyTorch-style weight decay on weights (not biases or batch-norm parameters): `wd*W` joins the gradient;
    /// decoupled for AdamW.
    #[serde(default)]
    pub weight_decay: f64,
    /// The lecture's L2 term `l2 * sum W^2` in the loss (so `weight_decay = 2*l2`).
    #[serde(default)]
    pub l2: f64,
    /// L1 term `l1 * sum |W|`; with `l2` too, elastic net.
    #[serde(default)]
    pub l1: f64,
    /// Clip gradients to this global L2 norm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_norm: Option<f64>,
    /// Clamp each gradient element to [-v, v].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_value: Option<f64>,
    /// The learning-rate schedule, a `[schedule]` table with `kind = "step" | "cosine" | ...`.
    #[serde(default)]
    pub schedule: Schedule,
    /// Epochs of linear warm-up before the schedule (fractions allowed).
    #[serde(default)]
    pub warmup_epochs: f64,
    /// Warm-up starts at this fraction of `lr`.
    #[serde(default = "d_warmup_start")]
    pub warmup_start: f64,
    /// L-BFGS settings (history, max_iter per epoch, line_search), with `optimizer = "lbfgs"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lbfgs: Option<crate::optim::lbfgs::Lbfgs>,
    /// Polyak averaging: keep `x_avg = d*x_avg + (1-d)*x` after every step, evaluate it each epoch and save it as
    /// checkpoint `ema`. The lecture's decay is 0.995.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ema_decay: Option<f64>,
    #[serde(default)]
    pub seed: u64,
    /// Validation images carved from the training split; default 10% (5000 for CIFAR-10).
    #[serde(default)]
    pub val: Option<usize>,
    #[serde(default)]
    pub preprocess: PreprocessKind,
    #[serde(default)]
    pub augment: Augment,
    /// Train on a seeded random N of the training images (after the validation split): quick experiments, tests.
    #[serde(default)]
    pub limit: Option<usize>,
    /// Stop when validation stops improving: an `[early_stopping]` table with `patience`, and optionally
    /// `monitor` ("val_acc" or "val_loss"), `min_delta`, `restore_best`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stopping: Option<crate::train::callbacks::early_stopping::EarlyStoppingConfig>,
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
fn d_beta2() -> f64 {
    0.999
}
fn d_decay_rate() -> f64 {
    0.99
}
fn d_warmup_start() -> f64 {
    0.1
}

impl TrainConfig {
    pub fn from_file(path: &Path) -> Result<TrainConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
        toml::from_str(&text).map_err(|e| Error::file(path, format!("invalid recipe: {}", with_suggestion(&e.to_string()))))
    }

    /// The recipe with `key = value` overrides applied, in order. Keys are the recipe's (dotted for tables:
    /// `schedule.gamma`, `early_stopping.patience`); an unknown key is an error naming the closest valid one.
    pub fn with_overrides(&self, sets: &[(String, toml::Value)]) -> Result<TrainConfig> {
        let mut table = toml::Table::try_from(self).expect("config serialises");
        for (key, value) in sets {
            let mut path: Vec<&str> = key.split('.').collect();
            let last = path.pop().expect("split yields one part at least");
            let mut t = &mut table;
            for p in path {
                let entry = t.entry(p.to_string()).or_insert_with(|| toml::Value::Table(Default::default()));
                t = entry.as_table_mut().ok_or_else(|| Error::Config(format!("'{p}' in '{key}' is not a table")))?;
            }
            t.insert(last.to_string(), value.clone());
        }
        table.try_into().map_err(|e: toml::de::Error| Error::Config(with_suggestion(&e.to_string())))
    }

    /// The recipe's tables and keys, for `--set`'s help.
    pub fn keys() -> Vec<String> {
        let msg = toml::from_str::<TrainConfig>("model = 'x'\ndata = 'x'\nzzz = 0").unwrap_err().to_string();
        expected_keys(&msg)
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
        if self.optimizer != OptimizerKind::Lbfgs {
            self.optim().validate()?;
        }
        for (name, v) in [("l1", self.l1), ("l2", self.l2)] {
            if !(v >= 0.0 && v.is_finite()) {
                return bad(format!("Invalid {name} penalty: {v} (must be >= 0)"));
            }
        }
        for (name, v) in [("clip_norm", self.clip_norm), ("clip_value", self.clip_value)] {
            if v.is_some_and(|v| !(v > 0.0 && v.is_finite())) {
                return bad(format!("Invalid {name}: {v:?} (must be > 0)"));
            }
        }
        if self.ema_decay.is_some_and(|d| !(0.0..1.0).contains(&d)) {
            return bad(format!("Invalid ema_decay: {:?} (must be in [0, 1), e.g. 0.995)", self.ema_decay));
        }
        self.scheduler().validate(self.epochs)?;
        if let Some(es) = &self.early_stopping {
            es.validate()?;
        }
        self.data.parse::<crate::data::DataSpec>()?;
        Ok(())
    }

    pub fn optim(&self) -> OptimConfig {
        OptimConfig {
            kind: self.optimizer,
            lr: self.lr,
            momentum: self.momentum,
            weight_decay: self.weight_decay,
            beta1: self.beta1,
            beta2: self.beta2,
            decay_rate: self.decay_rate,
            eps: self.eps,
        }
    }

    pub fn scheduler(&self) -> Scheduler {
        Scheduler::new(self.lr, self.schedule.clone(), self.warmup_epochs, self.warmup_start)
    }

    pub fn penalty(&self) -> Penalty {
        Penalty { l1: self.l1, l2: self.l2 }
    }

    pub fn default_out(&self) -> PathBuf {
        let kind = self.data.split(':').next().unwrap_or("data");
        PathBuf::from("runs").join(format!("{}-{}", self.model, kind))
    }
}

/// `key=value` from the command line: the value as a TOML literal (`0.1`, `[3, 5]`, `true`), else as a string.
pub fn parse_set(s: &str) -> Result<(String, toml::Value)> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| Error::Config(format!("--set '{s}' should look like key=value, e.g. lr=0.1 or schedule.gamma=0.5")))?;
    let literal = toml::from_str::<toml::Table>(&format!("v = {v}")).ok().and_then(|mut t| t.remove("v"));
    Ok((k.trim().to_string(), literal.unwrap_or_else(|| toml::Value::String(v.to_string()))))
}

/// The valid keys a serde "unknown field `x`, expected one of `a`, `b`" message lists.
fn expected_keys(msg: &str) -> Vec<String> {
    let Some((_, list)) = msg.split_once("expected one of ") else { return Vec::new() };
    list.split(',').map(|k| k.trim().trim_matches(|c: char| c == '`' || c.is_whitespace()).to_string()).collect()
}

/// Adds "did you mean `lr`?" to an unknown-key message.
fn with_suggestion(msg: &str) -> String {
    let unknown = msg.split_once("unknown field `").and_then(|(_, r)| r.split_once('`')).map(|(k, _)| k);
    let best = unknown.and_then(|u| {
        expected_keys(msg).into_iter().min_by_key(|k| strsim::levenshtein(u, k)).map(|k| (u.to_string(), k))
    });
    match best {
        Some((u, k)) => format!("unknown key '{u}': did you mean '{k}'? ({})", msg.trim()),
        None => msg.trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipe_round_trips_and_steps() {
        let c: TrainConfig = toml::from_str(
            "model = 'lenet5'\ndata = 'mnist:x'\nlr = 0.1\nema_decay = 0.995\n[schedule]\nkind = 'step'\nmilestones = [3, 5]\n",
        )
        .unwrap();
        assert_eq!(c.epochs, 10);
        assert_eq!(toml::from_str::<TrainConfig>(&c.to_toml()).unwrap(), c);
        let lr = |e: u64| c.scheduler().lr(&crate::schedule::Clock { step: e, steps_per_epoch: 1, epochs: 10 });
        assert!((lr(2) - 0.1).abs() < 1e-12 && (lr(3) - 0.01).abs() < 1e-12 && (lr(5) - 0.001).abs() < 1e-12);
        assert!(c.validate().is_ok());
        assert!(TrainConfig { ema_decay: Some(1.5), ..c.clone() }.validate().is_err());
        assert!(TrainConfig { l1: -1.0, ..c.clone() }.validate().is_err());
        assert!(
            toml::from_str::<TrainConfig>("model = 'x'\ndata = 'mnist:x'\nlearning_rate = 1").is_err(),
            "typos are errors"
        );
        assert!(TrainConfig { batch_size: 1, ..c.clone() }.validate().is_err());
        assert!(TrainConfig { data: "nope".into(), ..c }.validate().is_err());
    }

    #[test]
    fn overrides_apply_in_order_and_unknown_keys_name_the_closest() {
        let c: TrainConfig = toml::from_str("model = 'lenet5'\ndata = 'mnist:x'\n").unwrap();
        let sets: Vec<_> =
            ["lr=0.5", "epochs=3", "schedule.kind=step", "schedule.milestones=[2]", "optimizer=adam", "lr=0.25"]
                .iter()
                .map(|s| parse_set(s).unwrap())
                .collect();
        let o = c.with_overrides(&sets).unwrap();
        assert_eq!((o.lr, o.epochs, o.optimizer), (0.25, 3, crate::optim::OptimizerKind::Adam));
        assert!(matches!(o.schedule, crate::schedule::Schedule::Step { .. }));
        let e = c.with_overrides(&[parse_set("learning_rat=0.1").unwrap()]).unwrap_err().to_string();
        assert!(e.contains("did you mean 'warmup_start'") || e.contains("did you mean 'lr'") || e.contains("'learning_rat'"), "{e}");
        let e = c.with_overrides(&[parse_set("epohcs=3").unwrap()]).unwrap_err().to_string();
        assert!(e.contains("did you mean 'epochs'"), "{e}");
        assert!(TrainConfig::keys().contains(&"early_stopping".to_string()));
        assert!(parse_set("lr").is_err());
    }
}
