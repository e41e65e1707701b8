//! The training recipe: everything a run needs, loaded from TOML and overridden by flags. The resolved recipe is
//! written as `config.toml` into every run folder, and reproduces the run.

use crate::augment::Augment;
use crate::data::preprocess::PreprocessKind;
use crate::optim::OptimizerConfig;
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
    /// The update rule and its own hyperparameters: an `[optimizer]` table with `kind = "momentum" | "adam" | ...`
    /// (`optimizer = "adam"` for the defaults).
    #[serde(default)]
    pub optimizer: OptimizerConfig,
    /// The base learning rate (the schedule's starting or peak rate).
    #[serde(default = "d_lr")]
    pub lr: f64,
    /// PyTorch-style weight decay on weights (not biases or batch-norm parameters): `wd*W` joins the gradient;
    /// decoupled for AdamW.
    #[serde(default)]
    pub weight_decay: f64,
    /// Batch-norm parameters train at this multiple of the rate (airbench: 64, for its BN biases; they are not
    /// weight-decayed). 1 leaves them at the run's rate.
    #[serde(default = "d_one", skip_serializing_if = "is_one")]
    pub norm_lr_scale: f64,
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
    /// Polyak averaging: keep `x_avg = d*x_avg + (1-d)*x` after every step, evaluate it each epoch and save it as
    /// checkpoint `ema`. The lecture's decay is 0.995.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ema_decay: Option<f64>,
    /// Lookahead (Zhang et al. 2019) around the optimizer: a `[lookahead]` table with `k`, `alpha`, and
    /// optionally `ramp` and `start_epoch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookahead: Option<crate::train::callbacks::LookaheadConfig>,
    /// Initialise a first-layer conv from the training images' patch covariance and freeze it (airbench): a
    /// `[whitening]` table with `layer`, `images`, `eps`, `bias_epochs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whitening: Option<crate::init::whitening::WhiteningConfig>,
    #[serde(default)]
    pub seed: u64,
    /// Validation images carved from the training split; default 10% (5000 for CIFAR-10).
    #[serde(default)]
    pub val: Option<usize>,
    #[serde(default)]
    pub preprocess: PreprocessKind,
    #[serde(default)]
    pub augment: Augment,
    /// Label smoothing (Szegedy et al. 2016): targets `(1 - eps) y + eps / C`; 0 is off, 0.1 is usual.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub label_smoothing: f64,
    /// Only these classes of the data (by name, in this order): e.g. pretrain on CIFAR-10's first five classes and
    /// transfer to the other five.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<String>>,
    /// Train on a seeded random N of the training images (after the validation split): quick experiments, tests.
    #[serde(default)]
    pub limit: Option<usize>,
    /// Stop when validation stops improving: an `[early_stopping]` table with `patience`, and optionally
    /// `monitor` ("val_acc" or "val_loss"), `min_delta`, `restore_best`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stopping: Option<crate::train::callbacks::early_stopping::EarlyStoppingConfig>,
    /// Report when validation accuracy first reaches a value, and optionally stop there: a `[target]` table with
    /// `accuracy` (a fraction) and `stop`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<crate::train::callbacks::time_to_target::TargetConfig>,
    /// Start from pretrained weights and fine-tune: a `[transfer]` table with `from`, and optionally `layout`
    /// (torch, keras), `freeze` (all, until=LAYER, none), `head_lr`, `backbone_lr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<crate::transfer::finetune::TransferConfig>,
    /// Run folder; default `runs/<model>-<data kind>`.
    #[serde(default)]
    pub out: Option<PathBuf>,
}

fn d_one() -> f64 {
    1.0
}
fn is_one(x: &f64) -> bool {
    *x == 1.0
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
fn d_warmup_start() -> f64 {
    0.1
}

impl TrainConfig {
    pub fn from_file(path: &Path) -> Result<TrainConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
        Self::from_toml(&text).map_err(|e| Error::file(path, format!("invalid recipe: {e}")))
    }

    /// Parses a recipe; the older flat optimizer keys (`optimizer = "adam"`, `beta1 = ...`, `[lbfgs]`) are read
    /// into the `[optimizer]` table, so earlier recipes and run folders still load.
    pub fn from_toml(text: &str) -> Result<TrainConfig> {
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| Error::Config(e.to_string().trim().to_string()))?;
        migrate_optimizer(&mut table);
        table.try_into().map_err(|e: toml::de::Error| Error::Config(with_suggestion(&e.to_string())))
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
            // `optimizer=adam` then `optimizer.beta2=0.99`: the name must be a table before its keys are set.
            migrate_optimizer(&mut table);
        }
        table.try_into().map_err(|e: toml::de::Error| Error::Config(with_suggestion(&e.to_string())))
    }

    /// A recipe from flags alone: `--model` and `--data` are then required.
    pub fn from_file_or_flags(model: Option<&str>, data: Option<&str>) -> Result<TrainConfig> {
        match (model, data) {
            (Some(m), Some(d)) => {
                let text = format!("model = {m:?}\ndata = {d:?}\n");
                Self::from_toml(&text)
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
        self.optimizer.validate()?;
        if !(self.norm_lr_scale > 0.0 && self.norm_lr_scale.is_finite()) {
            return bad(format!("Invalid norm_lr_scale: {} (must be > 0; 1 is the run's rate)", self.norm_lr_scale));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return bad(format!("Invalid weight_decay: {} (must be >= 0)", self.weight_decay));
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
        self.augment.validate().map_err(Error::Config)?;
        if self.val == Some(0) {
            return bad("val = 0 leaves no validation images, and `best`, early stopping and the plateau rule are \
                        chosen on them: set val to a few thousand images (or leave it out: 10% of the training set)"
                .into());
        }
        if self.limit == Some(0) {
            return bad("limit = 0 leaves no training images: give a positive number, or leave it out for all".into());
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return bad(format!("Invalid label_smoothing: {} (must be in [0, 1), e.g. 0.1)", self.label_smoothing));
        }
        if self.augment.mixes() && matches!(self.optimizer, OptimizerConfig::Lbfgs(_)) {
            return bad("augment.mixup / augment.cutmix mix each batch differently; L-BFGS needs one fixed function: \
                        turn mixing off for it"
                .into());
        }
        if let Some(es) = &self.early_stopping {
            es.validate()?;
        }
        if let Some(t) = &self.target {
            t.validate()?;
        }
        if let Some(l) = &self.lookahead {
            l.validate().map_err(Error::Config)?;
        }
        if let Some(w) = &self.whitening {
            w.validate().map_err(Error::Config)?;
        }
        if let Some(t) = &self.transfer {
            t.validate(self.lr)?;
        }
        self.data.parse::<crate::data::DataSpec>()?;
        Ok(())
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

/// Rewrites the flat optimizer keys of earlier recipes into the `[optimizer]` table: `optimizer = "NAME"`
/// becomes `kind = "NAME"`, and `momentum`, `beta1`, `beta2`, `decay_rate`, `eps` and `[lbfgs]` move in when
/// the rule has them (and are dropped when it does not, as the old loader ignored them). With no optimizer
/// named, the old default, momentum, is meant.
fn migrate_optimizer(t: &mut toml::Table) {
    let legacy = ["momentum", "beta1", "beta2", "decay_rate", "eps", "lbfgs"];
    let mut o = match t.get("optimizer") {
        Some(toml::Value::String(k)) => toml::Table::from_iter([("kind".to_string(), toml::Value::String(k.clone()))]),
        Some(toml::Value::Table(o)) if legacy.iter().any(|k| t.contains_key(*k)) => o.clone(),
        None if legacy.iter().any(|k| t.contains_key(*k)) => {
            toml::Table::from_iter([("kind".into(), "momentum".into())])
        }
        _ => return,
    };
    let kind = o.get("kind").and_then(|k| k.as_str()).unwrap_or("momentum").to_string();
    let mut take = |from: &str, to: &str| {
        if let Some(v) = t.remove(from) {
            o.insert(to.to_string(), v);
        }
    };
    match kind.as_str() {
        "momentum" | "nesterov" => take("momentum", "rho"),
        "rmsprop" => {
            take("decay_rate", "decay");
            take("eps", "eps");
        }
        "adam" | "adamw" => ["beta1", "beta2", "eps"].iter().for_each(|k| take(k, k)),
        "adagrad" => take("eps", "eps"),
        _ => {}
    }
    if let (Some(toml::Value::Table(lb)), "lbfgs") = (t.remove("lbfgs"), kind.as_str()) {
        o.extend(lb);
    }
    legacy.iter().for_each(|k| drop(t.remove(*k)));
    t.insert("optimizer".into(), toml::Value::Table(o));
}

/// `key=value` from the command line: the value as a TOML literal (`0.1`, `[3, 5]`, `true`), else as a string.
pub fn parse_set(s: &str) -> Result<(String, toml::Value)> {
    let (k, v) = s.split_once('=').ok_or_else(|| {
        Error::Config(format!("--set '{s}' should look like key=value, e.g. lr=0.1 or schedule.gamma=0.5"))
    })?;
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
    let msg = msg.trim().replace('\n', " ");
    let msg = msg.as_str();
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
        let c = TrainConfig::from_toml(
            "model = 'lenet5'\ndata = 'mnist:x'\nlr = 0.1\nema_decay = 0.995\n[schedule]\nkind = 'step'\nmilestones = [3, 5]\n",
        )
        .unwrap();
        assert_eq!(c.epochs, 10);
        assert_eq!(TrainConfig::from_toml(&c.to_toml()).unwrap(), c);
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
        assert_eq!((o.lr, o.epochs, o.optimizer.kind().as_str()), (0.25, 3, "adam"));
        assert!(matches!(o.schedule, crate::schedule::Schedule::Step { .. }));
        let e = c.with_overrides(&[parse_set("learning_rat=0.1").unwrap()]).unwrap_err().to_string();
        assert!(
            e.contains("did you mean 'warmup_start'")
                || e.contains("did you mean 'lr'")
                || e.contains("'learning_rat'"),
            "{e}"
        );
        let e = c.with_overrides(&[parse_set("epohcs=3").unwrap()]).unwrap_err().to_string();
        assert!(e.contains("did you mean 'epochs'"), "{e}");
        assert!(parse_set("lr").is_err());
        // A rule's own key, through its table; another rule's key is refused.
        let o = c.with_overrides(&[parse_set("optimizer=nesterov").unwrap(), parse_set("optimizer.rho=0.95").unwrap()]);
        assert_eq!(o.unwrap().optimizer, OptimizerConfig::Nesterov(crate::optim::Nesterov { rho: 0.95 }));
        let e = c.with_overrides(&[parse_set("optimizer=adam").unwrap(), parse_set("optimizer.rho=0.9").unwrap()]);
        assert!(e.unwrap_err().to_string().contains("rho"));
        // The old flag, `--momentum`, still reaches the rule.
        let o = c.with_overrides(&[parse_set("momentum=0.5").unwrap()]).unwrap();
        assert_eq!(o.optimizer, OptimizerConfig::Momentum(crate::optim::Momentum { rho: 0.5 }));
    }

    #[test]
    fn impossible_settings_name_the_fix() {
        let base = |extra: &str| -> TrainConfig {
            toml::from_str(&format!("model = 'lenet5'\ndata = 'mnist:x'\n{extra}")).unwrap()
        };
        let e = base("val = 0").validate().unwrap_err().to_string();
        assert!(e.contains("val = 0") && e.contains("10%"), "{e}");
        let e = base("epochs = 1\nwarmup_epochs = 1.0").validate().unwrap_err().to_string();
        assert!(e.contains("--epochs 2") && e.contains("warmup_epochs=0"), "{e}");
        let e = base("label_smoothing = 1.5").validate().unwrap_err().to_string();
        assert!(e.contains("label_smoothing"), "{e}");
        let e = base("[optimizer]\nkind = 'lbfgs'\n[augment]\nmixup = 0.2").validate().unwrap_err().to_string();
        assert!(e.contains("L-BFGS"), "{e}");
    }

    #[test]
    fn earlier_flat_optimizer_keys_still_load() {
        let old = "model = 'lenet5'\ndata = 'mnist:x'\noptimizer = 'nesterov'\nmomentum = 0.8\nbeta1 = 0.9\nbeta2 = 0.999\ndecay_rate = 0.99\n";
        let c = TrainConfig::from_toml(old).unwrap();
        assert_eq!(c.optimizer, OptimizerConfig::Nesterov(crate::optim::Nesterov { rho: 0.8 }));
        let old = "model = 'x'\ndata = 'mnist:x'\noptimizer = 'lbfgs'\n[lbfgs]\nhistory = 5\nmax_iter = 20\ntol_grad = 1e-7\ntol_change = 1e-9\nline_search = 'backtracking'\n";
        match TrainConfig::from_toml(old).unwrap().optimizer {
            OptimizerConfig::Lbfgs(l) => assert_eq!((l.history, l.max_iter), (5, 20)),
            o => panic!("{o:?}"),
        }
        let plain = TrainConfig::from_toml("model = 'x'\ndata = 'mnist:x'\nmomentum = 0.5\nbeta1 = 0.8\n").unwrap();
        let rho = OptimizerConfig::Momentum(crate::optim::Momentum { rho: 0.5 });
        assert_eq!(plain.optimizer, rho, "no optimizer named: the old default, momentum");
    }
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}
