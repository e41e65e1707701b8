//! Optimizers over the parameter registry. Each file holds one update rule; `Optimizer` picks one by name and
//! exposes its state (named tensors) for checkpoints.

pub mod adam;
pub mod momentum;

pub use adam::{Adam, AdamConfig};
pub use momentum::{Momentum, MomentumConfig};

use crate::models::Model;
use crate::tensor::{Float, Tensor};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// Plain SGD: `x -= lr * dx`.
    Sgd,
    /// SGD with momentum (rho 0.9 by default).
    #[default]
    Momentum,
    Adam,
}

impl std::str::FromStr for OptimizerKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "sgd" => Ok(Self::Sgd),
            "momentum" => Ok(Self::Momentum),
            "adam" => Ok(Self::Adam),
            o => Err(Error::Unknown { kind: "optimizer", name: o.into(), known: "sgd, momentum, adam".into() }),
        }
    }
}

pub enum Optimizer<T: Float> {
    Momentum(Momentum<T>),
    Adam(Adam<T>),
}

impl<T: Float> Optimizer<T> {
    pub fn new(kind: OptimizerKind, lr: f64, momentum: f64, weight_decay: f64) -> Result<Self> {
        Ok(match kind {
            OptimizerKind::Sgd => Optimizer::Momentum(MomentumConfig { lr, rho: 0.0, weight_decay }.build()?),
            OptimizerKind::Momentum => Optimizer::Momentum(MomentumConfig { lr, rho: momentum, weight_decay }.build()?),
            OptimizerKind::Adam => Optimizer::Adam(AdamConfig { weight_decay, ..AdamConfig::new(lr) }.build()?),
        })
    }

    pub fn set_lr(&mut self, lr: f64) {
        match self {
            Optimizer::Momentum(o) => o.cfg.lr = lr,
            Optimizer::Adam(o) => o.cfg.lr = lr,
        }
    }

    /// Updates every parameter of the model from its gradient.
    pub fn step(&mut self, model: &mut Model<T>) {
        match self {
            Optimizer::Momentum(o) => model.visit_params(&mut |n, p| o.update(n, p)),
            Optimizer::Adam(o) => {
                o.begin_step();
                model.visit_params(&mut |n, p| o.update(n, p))
            }
        }
    }

    /// Named state tensors (and the step count) for a checkpoint.
    pub fn state(&self) -> (&BTreeMap<String, Tensor<T>>, u64) {
        match self {
            Optimizer::Momentum(o) => (&o.state, 0),
            Optimizer::Adam(o) => (&o.state, o.t),
        }
    }

    pub fn load_state(&mut self, state: BTreeMap<String, Tensor<T>>, t: u64) {
        match self {
            Optimizer::Momentum(o) => o.state = state,
            Optimizer::Adam(o) => {
                o.state = state;
                o.t = t;
            }
        }
    }
}
