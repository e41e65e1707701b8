//! `resnet8`: conv3x3(3->16)+BN+ReLU (BN and ReLU fused in one layer, as in every block), three stages of one basic block (16, 32, 64 channels; strides 1, 2, 2;
//! 1x1 conv + BN projection where the shape changes), global average pool, linear(64->classes).

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
pub fn basic_block<T: Float>(
    cin: usize,
    cout: usize,
    stride: usize,
    r: &mut Rng64,
) -> Result<Residual<T>> {
    let main = Sequential::new()
        .with(
            "conv1",
            Conv2dConfig::new(cin, cout, 3)
                .stride(stride)
                .padding(1)
                .bias(false)
                .build(r)?,
        )
        .with("bn1", BatchNormConfig::new(cout).relu().build())
        .with(
            "conv2",
            Conv2dConfig::new(cout, cout, 3)
                .padding(1)
                .bias(false)
                .build(r)?,
        )
        .with("bn2", BatchNormConfig::new(cout).build());
    let shortcut = if cin != cout || stride != 1 {
        Some(
            Sequential::new()
                .with(
                    "conv",
                    Conv2dConfig::new(cin, cout, 1)
                        .stride(stride)
                        .bias(false)
                        .build(r)?,
                )
                .with("bn", BatchNormConfig::new(cout).build()),
        )
    } else {
        None
    };
    Ok(Residual::new(main, shortcut, true))
}

pub fn build<T: Float>(o: &BuildOptions) -> Result<Sequential<T>> {
    let mut r = rng(o.seed);
    let mut net = Sequential::new();
    net.push(
        "conv1",
        Conv2dConfig::new(3, 16, 3)
            .padding(1)
            .bias(false)
            .build::<T>(&mut r)?,
    );
    net.push("bn1", BatchNormConfig::new(16).relu().build::<T>());
    let mut cin = 16;
    for (i, (cout, stride)) in [(16, 1), (32, 2), (64, 2)].into_iter().enumerate() {
        net.push(
            format!("stage{}", i + 1),
            Sequential::new().with("block1", basic_block::<T>(cin, cout, stride, &mut r)?),
        );
        cin = cout;
    }
    net.push("pool", GlobalAvgPool);
    net.push("fc", LinearConfig::new(64, o.classes).build::<T>(&mut r)?);
    Ok(net)
}
