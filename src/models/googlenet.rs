//! GoogLeNet / Inception v1 (Szegedy et al. 2014), without the auxiliary classifiers.
//!
//! `googlenet` is torchvision's variant: every conv is conv (no bias) + BN + ReLU, and the "5x5" branch of each
//! Inception module uses a 3x3 kernel (a long-standing quirk kept for weight compatibility): 6,624,904 parameters.
//! `googlenet_paper` follows the paper's table 1: convs with biases and ReLU, no BN, true 5x5 branches, LRN after
//! the first two stages: 6,998,552 parameters (the paper rounds to "6.8M" for its own count).

use super::BuildOptions;
use crate::init::{rng, Rng64};
use crate::layers::batchnorm::BatchNormConfig;
use crate::layers::conv::Conv2dConfig;
use crate::layers::linear::LinearConfig;
use crate::layers::{Dropout, GlobalAvgPool, Layer, LocalResponseNorm, MaxPool2d};
use crate::net::{Concat, Sequential};
use crate::tensor::Float;
use crate::Result;

#[derive(Clone, Copy)]
pub struct Variant {
    pub batch_norm: bool,
    /// Kernel of the third branch: 3 (torchvision) or 5 (paper).
    pub k5: usize,
}

/// conv + BN + ReLU (torchvision's BasicConv2d) or conv + ReLU (paper).
fn conv<T: Float>(
    v: Variant,
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    r: &mut Rng64,
) -> Result<Sequential<T>> {
    let c = Conv2dConfig::new(cin, cout, k).stride(stride).padding(k / 2);
    Ok(if v.batch_norm {
        Sequential::new()
            .with("conv", c.bias(false).build::<T>(r)?)
            .with("bn", BatchNormConfig { eps: 1e-3, ..BatchNormConfig::new(cout) }.relu().build::<T>())
    } else {
        Sequential::new().with("conv", c.relu().build::<T>(r)?)
    })
}

/// The Inception module: 1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 | 3x3 max pool -> 1x1, concatenated on channels.
#[allow(clippy::too_many_arguments)]
pub fn inception<T: Float>(
    v: Variant,
    cin: usize,
    c1: usize,
    r3: usize,
    c3: usize,
    r5: usize,
    c5: usize,
    pool_proj: usize,
    r: &mut Rng64,
) -> Result<Concat<T>> {
    let join = |a: Sequential<T>, b: Sequential<T>| Sequential::new().with("reduce", a).with("conv", b);
    Ok(Concat::new(vec![
        ("branch1".into(), conv(v, cin, c1, 1, 1, r)?),
        ("branch2".into(), join(conv(v, cin, r3, 1, 1, r)?, conv(v, r3, c3, 3, 1, r)?)),
        ("branch3".into(), join(conv(v, cin, r5, 1, 1, r)?, conv(v, r5, c5, v.k5, 1, r)?)),
        (
            "branch4".into(),
            Sequential::new()
                .with("pool", MaxPool2d::new(3, 1).padding(1).ceil_mode())
                .with("proj", conv(v, cin, pool_proj, 1, 1, r)?),
        ),
    ]))
}

pub fn build<T: Float>(v: Variant, o: &BuildOptions) -> Result<Sequential<T>> {
    let mut r = rng(o.seed);
    let r = &mut r;
    let mut net = Sequential::new();
    net.push("conv1", conv::<T>(v, 3, 64, 7, 2, r)?);
    net.push("pool1", MaxPool2d::new(3, 2).ceil_mode());
    if !v.batch_norm {
        net.push("norm1", LocalResponseNorm::<T>::new(5, 1e-4, 0.75, 1.0));
    }
    net.push("conv2", conv::<T>(v, 64, 64, 1, 1, r)?);
    net.push("conv3", conv::<T>(v, 64, 192, 3, 1, r)?);
    if !v.batch_norm {
        net.push("norm2", LocalResponseNorm::<T>::new(5, 1e-4, 0.75, 1.0));
    }
    net.push("pool2", MaxPool2d::new(3, 2).ceil_mode());
    let blocks: [(&str, [usize; 7]); 9] = [
        ("inception3a", [192, 64, 96, 128, 16, 32, 32]),
        ("inception3b", [256, 128, 128, 192, 32, 96, 64]),
        ("inception4a", [480, 192, 96, 208, 16, 48, 64]),
        ("inception4b", [512, 160, 112, 224, 24, 64, 64]),
        ("inception4c", [512, 128, 128, 256, 24, 64, 64]),
        ("inception4d", [512, 112, 144, 288, 32, 64, 64]),
        ("inception4e", [528, 256, 160, 320, 32, 128, 128]),
        ("inception5a", [832, 256, 160, 320, 32, 128, 128]),
        ("inception5b", [832, 384, 192, 384, 48, 128, 128]),
    ];
    for (name, [cin, c1, r3, c3, r5, c5, pp]) in blocks {
        net.push(name, inception::<T>(v, cin, c1, r3, c3, r5, c5, pp, r)?);
        match name {
            "inception3b" => net.push("pool3", MaxPool2d::new(3, 2).ceil_mode()),
            "inception4e" => net.push("pool4", MaxPool2d::new(if v.batch_norm { 2 } else { 3 }, 2).ceil_mode()),
            _ => &mut net,
        };
    }
    net.push("pool5", GlobalAvgPool);
    net.push("dropout", Dropout::<T>::new(if v.batch_norm { 0.8 } else { 0.6 }, o.seed)?);
    net.push("fc", LinearConfig::new(1024, o.classes).build::<T>(r)?);
    let _ = net.output_shape(&[1, 3, 224, 224])?;
    Ok(net)
}
