//! `small` (each conv with its ReLU fused): conv3x3(3->32,pad1) ReLU maxpool2, conv3x3(32->64,pad1) ReLU maxpool2, conv3x3(64->128,pad1) ReLU
//! maxpool2, flatten, linear(2048->classes). The benchmark net of the engine issue.

use super::BuildOptions;
use crate::init::rng;
use crate::layers::conv::Conv2dConfig;
use crate::layers::linear::LinearConfig;
use crate::layers::{Flatten, MaxPool2d};
use crate::net::Sequential;
use crate::tensor::Float;
use crate::Result;

pub fn build<T: Float>(o: &BuildOptions) -> Result<Sequential<T>> {
    let mut r = rng(o.seed);
    let mut net = Sequential::new();
    let mut cin = 3;
    for (i, cout) in [32, 64, 128].into_iter().enumerate() {
        net.push(format!("conv{}", i + 1), Conv2dConfig::new(cin, cout, 3).padding(1).relu().build::<T>(&mut r)?);
        net.push(format!("pool{}", i + 1), MaxPool2d::new(2, 2));
        cin = cout;
    }
    net.push("flatten", Flatten);
    net.push("fc", LinearConfig::new(128 * 4 * 4, o.classes).build::<T>(&mut r)?);
    Ok(net)
}
