//! `lenet5` (LeCun et al. 1998), as the lecture draws it: CONV-POOL-CONV-POOL-FC-FC(-FC), with today's ReLU and
//! max pooling. For 28x28 input the first conv pads by 2, as LeNet's 32x32 input did implicitly:
//! conv5x5(1->6, p2) ReLU maxpool2, conv5x5(6->16) ReLU maxpool2, fc(400->120) ReLU, fc(120->84) ReLU, fc(84->classes).

use super::BuildOptions;
use crate::init::rng;
use crate::layers::conv::Conv2dConfig;
use crate::layers::linear::LinearConfig;
use crate::layers::{Flatten, MaxPool2d, Relu};
use crate::net::Sequential;
use crate::tensor::Float;
use crate::Result;

pub fn build<T: Float>(o: &BuildOptions) -> Result<Sequential<T>> {
    let mut r = rng(o.seed);
    Ok(Sequential::new()
        .with("conv1", Conv2dConfig::new(1, 6, 5).padding(2).relu().build::<T>(&mut r)?)
        .with("pool1", MaxPool2d::new(2, 2))
        .with("conv2", Conv2dConfig::new(6, 16, 5).relu().build::<T>(&mut r)?)
        .with("pool2", MaxPool2d::new(2, 2))
        .with("flatten", Flatten)
        .with("fc1", LinearConfig::new(16 * 5 * 5, 120).build::<T>(&mut r)?)
        .with("relu1", Relu)
        .with("fc2", LinearConfig::new(120, 84).build::<T>(&mut r)?)
        .with("relu2", Relu)
        .with("fc3", LinearConfig::new(84, o.classes).build::<T>(&mut r)?))
}
