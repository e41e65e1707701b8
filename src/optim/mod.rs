//! Optimizers over the parameter registry. Each file holds one update rule, a few lines long; `Optimizer` picks
//! one by name, applies it to every trainable parameter, and keeps its per-parameter state (named tensors, saved
//! in checkpoints). L-BFGS is a different kind of method (full-batch, with a line search) and lives beside them.

pub mod adagrad;
pub mod adam;
pub mod adamw;
pub mod clip;
pub mod lbfgs;
pub mod lookahead;
pub mod momentum;
pub mod nesterov;
pub mod polyak;
pub mod rmsprop;
pub mod sgd;

pub use adagrad::AdaGrad;
pub use adam::Adam;
pub use adamw::AdamW;
pub use momentum::Momentum;
pub use nesterov::Nesterov;
pub use rmsprop::RmsProp;
pub use sgd::Sgd;

use crate::layers::{Param, ParamKind};
use crate::models::Model;
use crate::tensor::{Float, Tensor};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An update rule, one per file: how one parameter moves given its gradient and its state.
pub trait UpdateRule<T: Float>: Send {
    /// Names of the state tensors kept per parameter (`velocity`, `m`, `v`, ...), saved in checkpoints.
    fn slots(&self) -> &'static [&'static str];
    /// One step. `g` already holds the coupled weight decay (`wd * x`), unless the rule decouples it.
    fn update(&self, x: &mut [T], g: &[T], state: &mut [Tensor<T>], h: &Step<T>);
    /// Rules that apply weight decay themselves, outside the gradient (AdamW), say so.
    fn decoupled_decay(&self) -> bool {
        false
    }
}

/// The recipe's `[optimizer]` table: `kind` and the rule's own hyperparameters, each with the lecture's (and
/// PyTorch's) default. The rate (`lr`) and `weight_decay` stay top-level: the schedule and every rule share them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OptimizerConfig {
    Sgd(Sgd),
    Momentum(Momentum),
    Nesterov(Nesterov),
    Adagrad(AdaGrad),
    Rmsprop(RmsProp),
    Adam(Adam),
    Adamw(AdamW),
    /// Full-batch only (see `lbfgs.rs`).
    Lbfgs(lbfgs::Lbfgs),
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig::Momentum(Momentum::default())
    }
}

impl OptimizerConfig {
    /// A rule by name with its default hyperparameters; an unknown name lists the known ones.
    pub fn named(kind: &str) -> Result<Self> {
        let table = toml::Table::from_iter([("kind".to_string(), toml::Value::String(kind.to_string()))]);
        table.try_into().map_err(|e: toml::de::Error| Error::Config(format!("optimizer: {}", e.message())))
    }

    /// The rule's name, as the recipe writes it (`momentum`, `adam`, ...).
    pub fn kind(&self) -> String {
        let v = serde_json::to_value(self).expect("optimizer config serialises");
        v["kind"].as_str().expect("tagged by kind").to_string()
    }

    /// The per-step rule: the registry, one line per optimizer. L-BFGS has none (it minimises per batch).
    pub fn rule<T: Float>(&self) -> Result<Box<dyn UpdateRule<T>>> {
        self.validate()?;
        Ok(match self {
            OptimizerConfig::Sgd(r) => Box::new(r.clone()),
            OptimizerConfig::Momentum(r) => Box::new(r.clone()),
            OptimizerConfig::Nesterov(r) => Box::new(r.clone()),
            OptimizerConfig::Adagrad(r) => Box::new(r.clone()),
            OptimizerConfig::Rmsprop(r) => Box::new(r.clone()),
            OptimizerConfig::Adam(r) => Box::new(r.clone()),
            OptimizerConfig::Adamw(r) => Box::new(r.clone()),
            OptimizerConfig::Lbfgs(_) => {
                return Err(Error::Config(
                    "L-BFGS is a full-batch method: it has no per-step update rule (see optim::lbfgs)".into(),
                ))
            }
        })
    }

    pub fn validate(&self) -> Result<()> {
        let fraction = |name: &str, b: f64| match (0.0..1.0).contains(&b) {
            true => Ok(()),
            false => Err(Error::Config(format!("Invalid optimizer.{name}: {b} (must be in [0, 1))"))),
        };
        let positive = |name: &str, e: f64| match e > 0.0 && e.is_finite() {
            true => Ok(()),
            false => Err(Error::Config(format!("Invalid optimizer.{name}: {e} (must be > 0)"))),
        };
        match self {
            OptimizerConfig::Momentum(Momentum { rho }) | OptimizerConfig::Nesterov(Nesterov { rho }) => {
                fraction("rho", *rho)
            }
            OptimizerConfig::Adagrad(r) => positive("eps", r.eps),
            OptimizerConfig::Rmsprop(r) => fraction("decay", r.decay).and(positive("eps", r.eps)),
            OptimizerConfig::Adam(a) | OptimizerConfig::Adamw(AdamW { adam: a }) => {
                fraction("beta1", a.beta1).and(fraction("beta2", a.beta2)).and(positive("eps", a.eps))
            }
            OptimizerConfig::Sgd(_) | OptimizerConfig::Lbfgs(_) => Ok(()),
        }
    }
}

/// What one step of a rule needs besides the parameter: the rate, the weight decay (zero for biases and
/// batch-norm parameters; only decoupling rules read it) and the step count (1 on the first step).
#[derive(Clone, Copy, Debug)]
pub struct Step<T> {
    pub lr: T,
    pub wd: T,
    pub t: u64,
}

/// A first-order optimizer with its state.
pub struct Optimizer<T: Float> {
    pub cfg: OptimizerConfig,
    pub lr: f64,
    /// PyTorch's `weight_decay`: `wd * W` joins the weights' gradient (an L2 penalty `wd/2 * sum W^2`), once,
    /// before any rule sees it; AdamW decays the weights directly instead. Biases and batch-norm parameters
    /// are not decayed.
    pub weight_decay: f64,
    rule: Box<dyn UpdateRule<T>>,
    /// Steps taken.
    pub t: u64,
    /// Per parameter, the rule's state tensors in the order of its slots.
    state: BTreeMap<String, Vec<Tensor<T>>>,
}

impl<T: Float> Optimizer<T> {
    pub fn new(cfg: &OptimizerConfig, lr: f64, weight_decay: f64) -> Result<Self> {
        if !(lr >= 0.0 && lr.is_finite()) {
            return Err(Error::Config(format!("Invalid learning rate: {lr}")));
        }
        if !(weight_decay >= 0.0 && weight_decay.is_finite()) {
            return Err(Error::Config(format!("Invalid weight decay: {weight_decay}")));
        }
        let rule = cfg.rule()?;
        Ok(Optimizer { cfg: cfg.clone(), lr, weight_decay, rule, t: 0, state: BTreeMap::new() })
    }

    pub fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// Updates every trainable parameter of the model from its gradient.
    pub fn step(&mut self, model: &mut Model<T>) {
        self.begin_step();
        model.visit_params(&mut |n, p| self.update(n, p));
    }

    /// Counts a step; then call `update` for each parameter (`step` does both).
    pub fn begin_step(&mut self) {
        self.t += 1;
    }

    /// One update of one named parameter; `begin_step` must have counted this step.
    pub fn update(&mut self, name: &str, p: &mut Param<T>) {
        if p.frozen {
            return;
        }
        let wd = if p.kind == ParamKind::Weight { T::c(self.weight_decay) } else { T::zero() };
        if wd != T::zero() && !self.rule.decoupled_decay() {
            // Coupled decay, once for every rule: the gradient becomes dx + wd*x (PyTorch's order).
            p.grad.data_mut().iter_mut().zip(p.value.data()).for_each(|(g, &x)| *g += wd * x);
        }
        let h = Step { lr: T::c(self.lr * p.lr_scale), wd, t: self.t.max(1) };
        // Look up before inserting: the name is allocated once per parameter, not once per step.
        if !self.state.contains_key(name) {
            let n = self.rule.slots().len();
            self.state.insert(name.to_string(), (0..n).map(|_| Tensor::zeros(p.value.shape())).collect());
        }
        let s = self.state.get_mut(name).expect("inserted above");
        self.rule.update(p.value.data_mut(), p.grad.data(), s, &h);
    }

    /// Named state tensors (`SLOT.PARAM`, e.g. `velocity.conv1.weight`) for a checkpoint.
    pub fn state(&self) -> BTreeMap<String, Tensor<T>> {
        let slots = self.rule.slots();
        let mut out = BTreeMap::new();
        for (p, ts) in &self.state {
            for (s, t) in slots.iter().zip(ts) {
                out.insert(format!("{s}.{p}"), t.clone());
            }
        }
        out
    }

    /// Restores `state()` output. Every parameter must have all of the rule's slots.
    pub fn load_state(&mut self, named: BTreeMap<String, Tensor<T>>, t: u64) -> Result<()> {
        let slots = self.rule.slots();
        let mut per: BTreeMap<String, Vec<Option<Tensor<T>>>> = BTreeMap::new();
        for (k, v) in named {
            let (slot, param) = k.split_once('.').unwrap_or((&k, ""));
            let Some(i) = slots.iter().position(|s| *s == slot) else {
                return Err(Error::Config(format!(
                    "optimizer state '{k}' does not belong to {} (slots {slots:?}): was the run started with another optimizer?",
                    self.cfg.kind()
                )));
            };
            per.entry(param.to_string()).or_insert_with(|| vec![None; slots.len()])[i] = Some(v);
        }
        self.state.clear();
        for (p, v) in per {
            let v: Option<Vec<_>> = v.into_iter().collect();
            let v = v.ok_or_else(|| Error::Config(format!("optimizer state of '{p}' is incomplete")))?;
            self.state.insert(p, v);
        }
        self.t = t;
        Ok(())
    }
}

/// The PyTorch reference numbers (reference/torch_optim.py).
#[cfg(test)]
pub(crate) fn reference() -> serde_json::Value {
    serde_json::from_str(include_str!("../../reference/torch_optim.json")).expect("valid reference JSON")
}

/// Runs the reference problem `name` (see reference/torch_optim.py) with our optimizer and compares every step's
/// parameters with torch.optim's to 1e-6 relative.
#[cfg(test)]
pub(crate) fn check_against_torch(kind: &str, name: &str) {
    let r = reference();
    let (pr, case) = (&r["problem"], &r["optimizers"][name]);
    let v = |j: &serde_json::Value| -> Vec<f64> { serde_json::from_value(j.clone()).unwrap() };
    let (a, b) = (v(&pr["a"]), v(&pr["b"]));
    let noise: Vec<Vec<f64>> = serde_json::from_value(pr["noise"].clone()).unwrap();
    let c = &case["config"];
    let f = |k: &str, d: f64| c.get(k).and_then(|x| x.as_f64()).unwrap_or(d);
    // The reference's torch names, as this rule's `[optimizer]` keys.
    let mut table = toml::Table::new();
    table.insert("kind".into(), kind.into());
    let keys: &[(&str, &str, f64)] = match kind {
        "momentum" | "nesterov" => &[("rho", "momentum", 0.9)],
        "rmsprop" => &[("decay", "decay_rate", 0.99)],
        "adam" | "adamw" => &[("beta1", "beta1", 0.9), ("beta2", "beta2", 0.999)],
        _ => &[],
    };
    for (ours, theirs, d) in keys {
        table.insert(ours.to_string(), f(theirs, *d).into());
    }
    let cfg: OptimizerConfig = table.try_into().unwrap();
    let mut opt = Optimizer::<f64>::new(&cfg, f("lr", 0.0), f("weight_decay", 0.0)).unwrap();
    let x0 = v(&pr["x0"]);
    let mut p = Param::new(Tensor::from_vec(&[2, 3], x0), ParamKind::Weight);
    let traj: Vec<Vec<f64>> = serde_json::from_value(case["trajectory"].clone()).unwrap();
    assert!(traj.len() >= 10);
    for (t, want) in traj.iter().enumerate() {
        let g: Vec<f64> = (0..6).map(|i| a[i] * p.value.data()[i] - b[i] + noise[t][i]).collect();
        p.grad = Tensor::from_vec(&[2, 3], g);
        opt.begin_step();
        opt.update("w", &mut p);
        for (i, (&got, &w)) in p.value.data().iter().zip(want).enumerate() {
            assert!((got - w).abs() <= 1e-6 * w.abs().max(1e-3), "{name} step {}: x[{i}] = {got}, torch {w}", t + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_names_slots() {
        let adam = OptimizerConfig::named("adam").unwrap();
        let mut opt = Optimizer::<f64>::new(&adam, 0.1, 0.0).unwrap();
        let mut p = Param::new(Tensor::from_vec(&[2], vec![1.0, 2.0]), ParamKind::Weight);
        p.grad = Tensor::from_vec(&[2], vec![0.5, -0.5]);
        opt.begin_step();
        opt.update("conv.weight", &mut p);
        let st = opt.state();
        assert_eq!(st.keys().collect::<Vec<_>>(), ["m.conv.weight", "v.conv.weight"]);
        let mut other = Optimizer::<f64>::new(&adam, 0.1, 0.0).unwrap();
        other.load_state(st.clone(), 1).unwrap();
        assert_eq!(other.state().len(), 2);
        let mut mom = Optimizer::<f64>::new(&OptimizerConfig::named("momentum").unwrap(), 0.1, 0.0).unwrap();
        let e = mom.load_state(st, 1).unwrap_err().to_string();
        assert!(e.contains("another optimizer"), "{e}");
        assert!(OptimizerConfig::named("adamw").is_ok());
        let e = OptimizerConfig::named("adamx").unwrap_err().to_string();
        assert!(e.contains("adamx") && e.contains("nesterov") && e.contains("lbfgs"), "names the known rules: {e}");
        assert_eq!(OptimizerConfig::named("rmsprop").unwrap().kind(), "rmsprop");
        let bad = OptimizerConfig::Nesterov(Nesterov { rho: 1.0 });
        assert!(Optimizer::<f32>::new(&bad, 0.1, 0.0).is_err());
        let table: OptimizerConfig = toml::from_str("kind = 'rmsprop'\ndecay = 0.9").unwrap();
        assert_eq!(table, OptimizerConfig::Rmsprop(RmsProp { decay: 0.9, eps: 1e-8 }));
        assert!(toml::from_str::<OptimizerConfig>("kind = 'adam'\nrho = 0.9").is_err(), "rho is not Adam's");
    }

    #[test]
    fn frozen_parameters_and_biases() {
        // Frozen: untouched. Biases: no weight decay.
        let mut opt = Optimizer::<f64>::new(&OptimizerConfig::named("sgd").unwrap(), 0.1, 0.5).unwrap();
        let mut w = Param::new(Tensor::from_vec(&[1], vec![1.0]), ParamKind::Weight);
        let mut b = Param::new(Tensor::from_vec(&[1], vec![1.0]), ParamKind::Bias);
        let mut fz = Param::new(Tensor::from_vec(&[1], vec![1.0]), ParamKind::Weight);
        fz.frozen = true;
        for p in [&mut w, &mut b, &mut fz] {
            p.grad = Tensor::from_vec(&[1], vec![1.0]);
        }
        opt.begin_step();
        opt.update("w", &mut w);
        opt.update("b", &mut b);
        opt.update("f", &mut fz);
        assert!((w.value.data()[0] - 0.85).abs() < 1e-12 && (b.value.data()[0] - 0.9).abs() < 1e-12);
        assert_eq!(fz.value.data()[0], 1.0);
    }
}
