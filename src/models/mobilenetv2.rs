//! MobileNetV2 (Sandler et al. 2018), width 1.0, torchvision's layout: conv3x3/2 32, 17 inverted residual blocks
//! (expand 1x1 -> depthwise 3x3 -> linear 1x1 projection, with a residual where the shape allows), conv1x1 1280,
//! global average pool, dropout 0.2, FC. 3,504,872 parameters at 1000 classes.

use super::BuildOptions;
use crate::init::{rng, Rng64};
use crate::layers::batchnorm::BatchNormConfig;
use crate::layers::conv::Conv2dConfig;
use crate::layers::linear::LinearConfig;
use crate::layers::{Dropout, GlobalAvgPool, Relu6};
use crate::net::{Residual, Sequential};
use crate::tensor::Float;
use crate::Result;

/// BN for MobileNetV2 (torchvision's eps 1e-5, momentum 0.1) followed by ReLU6 when `act`.
fn bn_act<T: Float>(seq: Sequential<T>, name: &str, c: usize, act: bool) -> Sequential<T> {
    let seq = seq.with(format!("{name}.bn"), BatchNormConfig::new(c).build::<T>());
    if act {
        seq.with(format!("{name}.relu6"), Relu6)
    } else {
        seq
    }
}

/// The inverted residual block: the block is the layer in the middle of a thin-wide-thin sandwich.
/// Returned boxed: a residual when stride 1 and shapes match, a plain sequence otherwise.
pub fn inverted_residual<T: Float>(
    cin: usize,
    cout: usize,
    stride: usize,
    expand: usize,
    r: &mut Rng64,
) -> Result<Box<dyn crate::layers::Layer<T>>> {
    let hidden = cin * expand;
    let mut main = Sequential::new();
    if expand != 1 {
        main = main.with("expand.conv", Conv2dConfig::new(cin, hidden, 1).bias(false).build::<T>(r)?);
        main = bn_act(main, "expand", hidden, true);
    }
    main = main.with(
        "dw.conv",
        Conv2dConfig::new(hidden, hidden, 3).stride(stride).padding(1).groups(hidden).bias(false).build::<T>(r)?,
    );
    main = bn_act(main, "dw", hidden, true);
    main = main.with("project.conv", Conv2dConfig::new(hidden, cout, 1).bias(false).build::<T>(r)?);
    main = bn_act(main, "project", cout, false);
    Ok(if stride == 1 && cin == cout { Box::new(Residual::new(main, None, false)) } else { Box::new(main) })
}

pub fn build<T: Float>(o: &BuildOptions) -> Result<Sequential<T>> {
    let mut r = rng(o.seed);
    let mut net = Sequential::new()
        .with("conv1.conv", Conv2dConfig::new(3, 32, 3).stride(2).padding(1).bias(false).build::<T>(&mut r)?);
    net = bn_act(net, "conv1", 32, true);
    // (expansion t, channels c, repeats n, first stride s), the paper's table 2.
    let settings =
        [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];
    let (mut cin, mut k) = (32, 0);
    for (t, c, n, s) in settings {
        for i in 0..n {
            k += 1;
            net.push_boxed(format!("block{k}"), inverted_residual::<T>(cin, c, if i == 0 { s } else { 1 }, t, &mut r)?);
            cin = c;
        }
    }
    net = net.with("conv2.conv", Conv2dConfig::new(cin, 1280, 1).bias(false).build::<T>(&mut r)?);
    net = bn_act(net, "conv2", 1280, true);
    net.push("pool", GlobalAvgPool);
    net.push("dropout", Dropout::<T>::new(0.8, o.seed)?);
    net.push("fc", LinearConfig::new(1280, o.classes).build::<T>(&mut r)?);
    Ok(net)
}
