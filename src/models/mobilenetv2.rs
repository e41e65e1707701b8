//! MobileNetV2 (Sandler et al. 2018), width 1.0, torchvision's layout: conv3x3/2 32, 17 inverted residual blocks
//! (expand 1x1 -> depthwise 3x3 -> linear 1x1 projection, with a residual where the shape allows), conv1x1 1280,
//! global average pool, dropout 0.2, FC. 3,504,872 parameters at 1000 classes.
//!
//! The Keras variant (`keras.applications.MobileNetV2`, for its pretrained weights) is the same graph with
//! TensorFlow's "same" padding on stride-2 convolutions (one extra row and column at the bottom and right, not one
//! on every side: sides must be multiples of 32), batch-norm epsilon 1e-3, and dropout 0.3 before the classifier.

use super::BuildOptions;
use crate::init::{rng, Rng64};
use crate::layers::batchnorm::BatchNormConfig;
use crate::layers::conv::Conv2dConfig;
use crate::layers::linear::LinearConfig;
use crate::layers::{Dropout, GlobalAvgPool, ZeroPad2d};
use crate::net::{Residual, Sequential};
use crate::tensor::Float;
use crate::Result;

/// Where the two variants differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    Torchvision,
    Keras,
}

impl Variant {
    fn bn_eps(self) -> f64 {
        if self == Variant::Keras {
            1e-3
        } else {
            1e-5
        }
    }
}

/// BN (eps by variant, momentum 0.1), with ReLU6 fused into the same pass when `act`.
fn bn_act<T: Float>(seq: Sequential<T>, name: &str, c: usize, act: bool, v: Variant) -> Sequential<T> {
    let bn = BatchNormConfig { eps: v.bn_eps(), ..BatchNormConfig::new(c) };
    let bn = if act { bn.relu6() } else { bn };
    seq.with(format!("{name}.bn"), bn.build::<T>())
}

/// The inverted residual block: the block is the layer in the middle of a thin-wide-thin sandwich.
/// Returned boxed: a residual when stride 1 and shapes match, a plain sequence otherwise.
pub fn inverted_residual<T: Float>(
    cin: usize,
    cout: usize,
    stride: usize,
    expand: usize,
    v: Variant,
    r: &mut Rng64,
) -> Result<Box<dyn crate::layers::Layer<T>>> {
    let hidden = cin * expand;
    let mut main = Sequential::new();
    if expand != 1 {
        main = main.with("expand.conv", Conv2dConfig::new(cin, hidden, 1).bias(false).build::<T>(r)?);
        main = bn_act(main, "expand", hidden, true, v);
    }
    let pad = padded(&mut main, "dw", stride, v);
    main = main.with(
        "dw.conv",
        Conv2dConfig::new(hidden, hidden, 3).stride(stride).padding(pad).groups(hidden).bias(false).build::<T>(r)?,
    );
    main = bn_act(main, "dw", hidden, true, v);
    main = main.with("project.conv", Conv2dConfig::new(hidden, cout, 1).bias(false).build::<T>(r)?);
    main = bn_act(main, "project", cout, false, v);
    Ok(if stride == 1 && cin == cout { Box::new(Residual::new(main, None, false)) } else { Box::new(main) })
}

/// The 3x3 convolution's own padding; the Keras variant puts a bottom-right pad layer before a stride-2 one.
fn padded<T: Float>(seq: &mut Sequential<T>, name: &str, stride: usize, v: Variant) -> usize {
    if stride == 2 && v == Variant::Keras {
        seq.push(format!("{name}.pad"), ZeroPad2d::bottom_right());
        0
    } else {
        1
    }
}

pub fn build<T: Float>(o: &BuildOptions, v: Variant) -> Result<Sequential<T>> {
    let mut r = rng(o.seed);
    let mut net = Sequential::new();
    let pad = padded(&mut net, "conv1", 2, v);
    net = net.with("conv1.conv", Conv2dConfig::new(3, 32, 3).stride(2).padding(pad).bias(false).build::<T>(&mut r)?);
    net = bn_act(net, "conv1", 32, true, v);
    // (expansion t, channels c, repeats n, first stride s), the paper's table 2.
    let settings =
        [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];
    let (mut cin, mut k) = (32, 0);
    for (t, c, n, s) in settings {
        for i in 0..n {
            k += 1;
            net.push_boxed(
                format!("block{k}"),
                inverted_residual::<T>(cin, c, if i == 0 { s } else { 1 }, t, v, &mut r)?,
            );
            cin = c;
        }
    }
    net = net.with("conv2.conv", Conv2dConfig::new(cin, 1280, 1).bias(false).build::<T>(&mut r)?);
    net = bn_act(net, "conv2", 1280, true, v);
    net.push("pool", GlobalAvgPool);
    let keep = if v == Variant::Keras { 0.7 } else { 0.8 };
    net.push("dropout", Dropout::<T>::new(keep, o.seed)?);
    net.push("fc", LinearConfig::new(1280, o.classes).build::<T>(&mut r)?);
    Ok(net)
}
