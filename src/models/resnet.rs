//! ImageNet ResNets (He et al. 2015), torchvision's layout (stride on the 3x3 conv of a bottleneck, "v1.5"):
//! conv7x7/2 64 + BN + ReLU, max pool 3x3/2, four stages (64, 128, 256, 512 channels; strides 1, 2, 2, 2) of basic
//! blocks (`resnet18`, `resnet34`) or bottlenecks with expansion 4 (`resnet50`, `resnet101`, `resnet152`),
//! global average pool, FC. Projection shortcuts (1x1 conv + BN) where the shape changes.

use super::cifar_resnet::basic_block;
use super::BuildOptions;
use crate::init::{rng, Rng64};
use crate::layers::batchnorm::BatchNormConfig;
use crate::layers::conv::Conv2dConfig;
use crate::layers::linear::LinearConfig;
use crate::layers::{GlobalAvgPool, MaxPool2d};
use crate::net::{Residual, Sequential};
use crate::tensor::Float;
use crate::Result;

/// 1x1 reduce -> 3x3 -> 1x1 expand (x4), the block that makes 50+ layers affordable.
pub fn bottleneck<T: Float>(cin: usize, width: usize, stride: usize, r: &mut Rng64) -> Result<Residual<T>> {
    let cout = width * 4;
    let main = Sequential::new()
        .with("conv1", Conv2dConfig::new(cin, width, 1).bias(false).build(r)?)
        .with("bn1", BatchNormConfig::new(width).relu().build())
        .with("conv2", Conv2dConfig::new(width, width, 3).stride(stride).padding(1).bias(false).build(r)?)
        .with("bn2", BatchNormConfig::new(width).relu().build())
        .with("conv3", Conv2dConfig::new(width, cout, 1).bias(false).build(r)?)
        .with("bn3", BatchNormConfig::new(cout).build());
    let shortcut = (cin != cout || stride != 1).then(|| -> Result<Sequential<T>> {
        Ok(Sequential::new()
            .with("conv", Conv2dConfig::new(cin, cout, 1).stride(stride).bias(false).build(r)?)
            .with("bn", BatchNormConfig::new(cout).build()))
    });
    Ok(Residual::new(main, shortcut.transpose()?, true))
}

pub fn build<T: Float>(depth: usize, o: &BuildOptions) -> Result<Sequential<T>> {
    let (blocks, bottlenecks): ([usize; 4], bool) = match depth {
        18 => ([2, 2, 2, 2], false),
        34 => ([3, 4, 6, 3], false),
        50 => ([3, 4, 6, 3], true),
        101 => ([3, 4, 23, 3], true),
        152 => ([3, 8, 36, 3], true),
        d => return Err(crate::Error::Config(format!("no ImageNet ResNet of depth {d} (18, 34, 50, 101, 152)"))),
    };
    let mut r = rng(o.seed);
    let mut net = Sequential::new();
    net.push("conv1", Conv2dConfig::new(3, 64, 7).stride(2).padding(3).bias(false).build::<T>(&mut r)?);
    net.push("bn1", BatchNormConfig::new(64).relu().build::<T>());
    net.push("pool1", MaxPool2d::new(3, 2).padding(1));
    let mut cin = 64;
    for (s, (&n, width)) in blocks.iter().zip([64, 128, 256, 512]).enumerate() {
        let mut stage = Sequential::new();
        for b in 0..n {
            let stride = if b == 0 && s > 0 { 2 } else { 1 };
            if bottlenecks {
                stage.push(format!("block{}", b + 1), bottleneck::<T>(cin, width, stride, &mut r)?);
                cin = width * 4;
            } else {
                stage.push(format!("block{}", b + 1), basic_block::<T>(cin, width, stride, &mut r)?);
                cin = width;
            }
        }
        net.push(format!("stage{}", s + 1), stage);
    }
    net.push("pool", GlobalAvgPool);
    net.push("fc", LinearConfig::new(cin, o.classes).build::<T>(&mut r)?);
    Ok(net)
}
