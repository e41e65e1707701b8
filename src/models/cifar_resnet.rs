//! The CIFAR ResNets of He et al. 2015 (section 4.2): depth `6n + 2`. conv3x3(3->16)+BN+ReLU, three stages of
//! `n` basic blocks (16, 32, 64 channels; first block of a stage strides 1, 2, 2), global average pool,
//! linear(64->classes). `resnet8` (n=1) is the benchmark net; `resnet20/32/56` (n=3, 5, 9) are the paper's.
//! Where the shape changes the shortcut is a 1x1 conv + BN projection (the paper's option B; its CIFAR runs used
//! parameter-free zero padding, option A, which has 0.27M rather than 0.28M parameters for resnet20).
//! BN and the ReLU after it are fused into one layer.

use super::BuildOptions;
use crate::init::{rng, Rng64};
use crate::layers::batchnorm::BatchNormConfig;
use crate::layers::conv::Conv2dConfig;
use crate::layers::linear::LinearConfig;
use crate::layers::GlobalAvgPool;
use crate::net::{Residual, Sequential};
use crate::tensor::Float;
use crate::Result;

/// The basic block: conv3x3-BN-ReLU-conv3x3-BN, plus the shortcut, then ReLU.
pub fn basic_block<T: Float>(cin: usize, cout: usize, stride: usize, r: &mut Rng64) -> Result<Residual<T>> {
    let main = Sequential::new()
        .with("conv1", Conv2dConfig::new(cin, cout, 3).stride(stride).padding(1).bias(false).build(r)?)
        .with("bn1", BatchNormConfig::new(cout).relu().build())
        .with("conv2", Conv2dConfig::new(cout, cout, 3).padding(1).bias(false).build(r)?)
        .with("bn2", BatchNormConfig::new(cout).build());
    let shortcut = if cin != cout || stride != 1 {
        Some(
            Sequential::new()
                .with("conv", Conv2dConfig::new(cin, cout, 1).stride(stride).bias(false).build(r)?)
                .with("bn", BatchNormConfig::new(cout).build()),
        )
    } else {
        None
    };
    Ok(Residual::new(main, shortcut, true))
}

/// A CIFAR ResNet of the given depth (`6n + 2`).
pub fn build<T: Float>(depth: usize, o: &BuildOptions) -> Result<Sequential<T>> {
    if depth < 8 || (depth - 2) % 6 != 0 {
        return Err(crate::Error::Config(format!("CIFAR ResNet depth must be 6n+2 (8, 20, 32, 56, ...), got {depth}")));
    }
    let blocks = (depth - 2) / 6;
    let mut r = rng(o.seed);
    let mut net = Sequential::new();
    net.push("conv1", Conv2dConfig::new(3, 16, 3).padding(1).bias(false).build::<T>(&mut r)?);
    net.push("bn1", BatchNormConfig::new(16).relu().build::<T>());
    let mut cin = 16;
    for (i, (cout, stride)) in [(16, 1), (32, 2), (64, 2)].into_iter().enumerate() {
        let mut stage = Sequential::new();
        for b in 0..blocks {
            stage
                .push(format!("block{}", b + 1), basic_block::<T>(cin, cout, if b == 0 { stride } else { 1 }, &mut r)?);
            cin = cout;
        }
        net.push(format!("stage{}", i + 1), stage);
    }
    net.push("pool", GlobalAvgPool);
    net.push("fc", LinearConfig::new(64, o.classes).build::<T>(&mut r)?);
    Ok(net)
}
