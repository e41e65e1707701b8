//! `alexnet` (Krizhevsky et al. 2012), the lecture's one-tower version: 227x227 input,
//! CONV1 96 11x11/4 -> [55x55x96], MAX POOL1 3x3/2 -> [27x27x96], NORM1, CONV2 256 5x5 pad 2 -> [27x27x256],
//! MAX POOL2 -> [13x13x256], NORM2, CONV3 384, CONV4 384, CONV5 256 (3x3 pad 1) -> [13x13x256],
//! MAX POOL3 -> [6x6x256], FC6 4096, FC7 4096, FC8 1000, dropout 0.5 before FC6 and FC7.
//!
//! `zfnet` (Zeiler & Fergus 2013): AlexNet with CONV1 7x7/2, CONV2 stride 2, and CONV3-5 of 512, 1024, 512 filters.

use super::BuildOptions;
use crate::init::rng;
use crate::layers::conv::Conv2dConfig;
use crate::layers::linear::LinearConfig;
use crate::layers::{Dropout, Flatten, LocalResponseNorm, MaxPool2d, Relu};
use crate::net::Sequential;
use crate::tensor::Float;
use crate::Result;

struct Spec {
    conv1: (usize, usize, usize), // kernel, stride, padding
    conv2_stride: usize,
    widths: [usize; 5],
}

fn build_with<T: Float>(s: Spec, o: &BuildOptions) -> Result<Sequential<T>> {
    let mut r = rng(o.seed);
    let [c1, c2, c3, c4, c5] = s.widths;
    let (k1, s1, p1) = s.conv1;
    Ok(Sequential::new()
        .with("conv1", Conv2dConfig::new(3, c1, k1).stride(s1).padding(p1).relu().build::<T>(&mut r)?)
        .with("pool1", MaxPool2d::new(3, 2))
        .with("norm1", LocalResponseNorm::<T>::alexnet())
        .with("conv2", Conv2dConfig::new(c1, c2, 5).stride(s.conv2_stride).padding(2).relu().build::<T>(&mut r)?)
        .with("pool2", MaxPool2d::new(3, 2))
        .with("norm2", LocalResponseNorm::<T>::alexnet())
        .with("conv3", Conv2dConfig::new(c2, c3, 3).padding(1).relu().build::<T>(&mut r)?)
        .with("conv4", Conv2dConfig::new(c3, c4, 3).padding(1).relu().build::<T>(&mut r)?)
        .with("conv5", Conv2dConfig::new(c4, c5, 3).padding(1).relu().build::<T>(&mut r)?)
        .with("pool3", MaxPool2d::new(3, 2))
        .with("flatten", Flatten)
        .with("dropout6", Dropout::<T>::new(0.5, o.seed ^ 6)?)
        .with("fc6", LinearConfig::new(c5 * 6 * 6, 4096).build::<T>(&mut r)?)
        .with("relu6", Relu)
        .with("dropout7", Dropout::<T>::new(0.5, o.seed ^ 7)?)
        .with("fc7", LinearConfig::new(4096, 4096).build::<T>(&mut r)?)
        .with("relu7", Relu)
        .with("fc8", LinearConfig::new(4096, o.classes).build::<T>(&mut r)?))
}

pub fn alexnet<T: Float>(o: &BuildOptions) -> Result<Sequential<T>> {
    build_with(Spec { conv1: (11, 4, 0), conv2_stride: 1, widths: [96, 256, 384, 384, 256] }, o)
}

/// 224x224 input: CONV1 7x7/2 pad 1 -> 110x110, POOL -> 55, CONV2 5x5/2 pad 2 -> 28, POOL -> 13, ..., POOL3 -> 6.
pub fn zfnet<T: Float>(o: &BuildOptions) -> Result<Sequential<T>> {
    build_with(Spec { conv1: (7, 2, 1), conv2_stride: 2, widths: [96, 256, 512, 1024, 512] }, o)
}
