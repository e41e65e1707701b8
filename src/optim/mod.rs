//! Optimizers over the parameter registry. Each file holds one update rule, a few lines long; `Optimizer` picks
//! one by name, applies it to every trainable parameter, and keeps its per-parameter state (named tensors, saved
//! in checkpoints). L-BFGS is a different kind of method (full-batch, with a line search) and lives beside them.

pub mod adagrad;
pub mod adam;
pub mod adamw;
pub mod clip;
pub mod lbfgs;
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    Sgd,
    #[default]
    Momentum,
    Nesterov,
    Adagrad,
    Rmsprop,
    Adam,
    Adamw,
    /// Full-batch only (see `lbfgs.rs`).
    Lbfgs,
}

pub const KINDS: &str = "sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw, lbfgs";

impl std::str::FromStr for OptimizerKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|_| Error::Unknown {
            kind: "optimizer",
            name: s.into(),
            known: KINDS.into(),
        })
    }
}

/// An optimizer's hyperparameters; the defaults are the lecture's (and PyTorch's).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimConfig {
    pub kind: OptimizerKind,
    pub lr: f64,
    /// rho of momentum and Nesterov (0.9).
    pub momentum: f64,
    /// PyTorch's `weight_decay`: adds `wd * W` to weights' gradients (an L2 penalty `wd/2 * sum W^2`);
    /// for AdamW, the decoupled decay `W -= lr * wd * W`. Biases and batch-norm parameters are not decayed.
    pub weight_decay: f64,
    /// Adam's betas (0.9, 0.999).
    pub beta1: f64,
    pub beta2: f64,
    /// RMSProp's decay rate (0.99).
    pub decay_rate: f64,
    /// Added to denominators; default 1e-8 (AdaGrad 1e-10).
    pub eps: Option<f64>,
}

impl OptimConfig {
    pub fn new(kind: OptimizerKind, lr: f64) -> Self {
        OptimConfig {
            kind,
            lr,
            momentum: 0.9,
            weight_decay: 0.0,
            beta1: 0.9,
            beta2: 0.999,
            decay_rate: 0.99,
            eps: None,
        }
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if !(self.lr >= 0.0 && self.lr.is_finite()) {
            return bad(format!("Invalid learning rate: {}", self.lr));
        }
        for (name, b) in
            [("momentum", self.momentum), ("beta1", self.beta1), ("beta2", self.beta2), ("decay_rate", self.decay_rate)]
        {
            if !(0.0..1.0).contains(&b) {
                return bad(format!("Invalid {name}: {b} (must be in [0, 1))"));
            }
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return bad(format!("Invalid weight decay: {}", self.weight_decay));
        }
        if self.eps.is_some_and(|e| !(e > 0.0)) {
            return bad(format!("Invalid eps: {:?} (must be > 0)", self.eps));
        }
        Ok(())
    }

    fn rule(&self) -> Result<Rule> {
        let eps = self.eps.unwrap_or(1e-8);
        let adam = Adam { beta1: self.beta1, beta2: self.beta2, eps };
        Ok(match self.kind {
            OptimizerKind::Sgd => Rule::Sgd(Sgd),
            OptimizerKind::Momentum => Rule::Momentum(Momentum { rho: self.momentum }),
            OptimizerKind::Nesterov => Rule::Nesterov(Nesterov { rho: self.momentum }),
            OptimizerKind::Adagrad => Rule::AdaGrad(AdaGrad { eps: self.eps.unwrap_or(1e-10) }),
            OptimizerKind::Rmsprop => Rule::RmsProp(RmsProp { decay: self.decay_rate, eps }),
            OptimizerKind::Adam => Rule::Adam(adam),
            OptimizerKind::Adamw => Rule::AdamW(AdamW { adam }),
            OptimizerKind::Lbfgs => {
                return Err(Error::Config(
                    "L-BFGS is a full-batch method: it has no per-step update rule (see optim::lbfgs)".into(),
                ))
            }
        })
    }
}

/// What one step of a rule needs besides the parameter: the rate, the weight decay (already zero for biases and
/// batch-norm parameters) and the step count (1 on the first step).
#[derive(Clone, Copy, Debug)]
pub struct Step<T> {
    pub lr: T,
    pub wd: T,
    pub t: u64,
}

enum Rule {
    Sgd(Sgd),
    Momentum(Momentum),
    Nesterov(Nesterov),
    AdaGrad(AdaGrad),
    RmsProp(RmsProp),
    Adam(Adam),
    AdamW(AdamW),
}

impl Rule {
    fn slots(&self) -> &'static [&'static str] {
        match self {
            Rule::Sgd(_) => Sgd::SLOTS,
            Rule::Momentum(_) => Momentum::SLOTS,
            Rule::Nesterov(_) => Nesterov::SLOTS,
            Rule::AdaGrad(_) => AdaGrad::SLOTS,
            Rule::RmsProp(_) => RmsProp::SLOTS,
            Rule::Adam(_) => Adam::SLOTS,
            Rule::AdamW(_) => AdamW::SLOTS,
        }
    }

    fn update<T: Float>(&self, x: &mut [T], dx: &[T], s: &mut [Tensor<T>], h: &Step<T>) {
        match self {
            Rule::Sgd(r) => r.update(x, dx, s, h),
            Rule::Momentum(r) => r.update(x, dx, s, h),
            Rule::Nesterov(r) => r.update(x, dx, s, h),
            Rule::AdaGrad(r) => r.update(x, dx, s, h),
            Rule::RmsProp(r) => r.update(x, dx, s, h),
            Rule::Adam(r) => r.update(x, dx, s, h),
            Rule::AdamW(r) => r.update(x, dx, s, h),
        }
    }
}

/// A first-order optimizer with its state.
pub struct Optimizer<T: Float> {
    pub cfg: OptimConfig,
    rule: Rule,
    /// Steps taken.
    pub t: u64,
    /// Per parameter, the rule's state tensors in the order of its slots.
    state: BTreeMap<String, Vec<Tensor<T>>>,
}

impl<T: Float> Optimizer<T> {
    pub fn new(cfg: OptimConfig) -> Result<Self> {
        cfg.validate()?;
        Ok(Optimizer { rule: cfg.rule()?, cfg, t: 0, state: BTreeMap::new() })
    }

    pub fn set_lr(&mut self, lr: f64) {
        self.cfg.lr = lr;
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
        let wd = if p.kind == ParamKind::Weight { self.cfg.weight_decay } else { 0.0 };
        let h = Step { lr: T::c(self.cfg.lr), wd: T::c(wd), t: self.t.max(1) };
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
                    "optimizer state '{k}' does not belong to {:?} (slots {slots:?}): was the run started with another optimizer?",
                    self.cfg.kind
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
pub(crate) fn check_against_torch(kind: OptimizerKind, name: &str) {
    let r = reference();
    let (pr, case) = (&r["problem"], &r["optimizers"][name]);
    let v = |j: &serde_json::Value| -> Vec<f64> { serde_json::from_value(j.clone()).unwrap() };
    let (a, b) = (v(&pr["a"]), v(&pr["b"]));
    let noise: Vec<Vec<f64>> = serde_json::from_value(pr["noise"].clone()).unwrap();
    let c = &case["config"];
    let f = |k: &str, d: f64| c.get(k).and_then(|x| x.as_f64()).unwrap_or(d);
    let mut cfg = OptimConfig::new(kind, f("lr", 0.0));
    cfg.momentum = f("momentum", 0.9);
    cfg.weight_decay = f("weight_decay", 0.0);
    cfg.beta1 = f("beta1", 0.9);
    cfg.beta2 = f("beta2", 0.999);
    cfg.decay_rate = f("decay_rate", 0.99);
    let mut opt = Optimizer::<f64>::new(cfg).unwrap();
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
        let mut opt = Optimizer::<f64>::new(OptimConfig::new(OptimizerKind::Adam, 0.1)).unwrap();
        let mut p = Param::new(Tensor::from_vec(&[2], vec![1.0, 2.0]), ParamKind::Weight);
        p.grad = Tensor::from_vec(&[2], vec![0.5, -0.5]);
        opt.begin_step();
        opt.update("conv.weight", &mut p);
        let st = opt.state();
        assert_eq!(st.keys().collect::<Vec<_>>(), ["m.conv.weight", "v.conv.weight"]);
        let mut other = Optimizer::<f64>::new(OptimConfig::new(OptimizerKind::Adam, 0.1)).unwrap();
        other.load_state(st.clone(), 1).unwrap();
        assert_eq!(other.state().len(), 2);
        let mut mom = Optimizer::<f64>::new(OptimConfig::new(OptimizerKind::Momentum, 0.1)).unwrap();
        let e = mom.load_state(st, 1).unwrap_err().to_string();
        assert!(e.contains("another optimizer"), "{e}");
        assert!("adamw".parse::<OptimizerKind>().is_ok() && "adamx".parse::<OptimizerKind>().is_err());
        assert!(Optimizer::<f32>::new(OptimConfig { momentum: 1.0, ..OptimConfig::new(OptimizerKind::Nesterov, 0.1) })
            .is_err());
    }

    #[test]
    fn frozen_parameters_and_biases() {
        // Frozen: untouched. Biases: no weight decay.
        let cfg = OptimConfig { weight_decay: 0.5, ..OptimConfig::new(OptimizerKind::Sgd, 0.1) };
        let mut opt = Optimizer::<f64>::new(cfg).unwrap();
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
