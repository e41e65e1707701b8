//! Optimizers over the parameter registry. Each file holds one update rule.

pub mod momentum;

pub use momentum::Momentum;
