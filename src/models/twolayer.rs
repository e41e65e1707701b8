//! `twolayer`: the lecture's two-layer fully connected net, the one its babysitting walk-through trains on
//! CIFAR-10: flatten 3x32x32 to 3072, FC(3072->50), ReLU, FC(50->classes).

use super::BuildOptions;
use crate::init::rng;
use crate::layers::linear::LinearConfig;
use crate::layers::{Flatten, Relu};
use crate::net::Sequential;
use crate::tensor::Float;
use crate::Result;

/// The lecture's hidden size.
pub const HIDDEN: usize = 50;

pub fn build<T: Float>(o: &BuildOptions) -> Result<Sequential<T>> {
    with_hidden(o, HIDDEN)
}

/// The same net with another hidden size.
pub fn with_hidden<T: Float>(o: &BuildOptions, hidden: usize) -> Result<Sequential<T>> {
    let mut r = rng(o.seed);
    Ok(Sequential::new()
        .with("flatten", Flatten)
        .with("fc1", LinearConfig::new(3 * 32 * 32, hidden).build::<T>(&mut r)?)
        .with("relu", Relu)
        .with("fc2", LinearConfig::new(hidden, o.classes).build::<T>(&mut r)?))
}
