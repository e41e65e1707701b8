//! airbench (K. Jordan, "94% on CIFAR-10 in 3.29 seconds on a single GPU", 2024), the network of its 94% recipe:
//!
//! - `whiten`: a 2x2 conv, 3 -> 24 channels with bias, no padding (32x32 -> 31x31), initialised from data by
//!   `init::whitening` and frozen, then GELU;
//! - three conv groups of widths 64, 256, 256, each conv3x3 -> maxpool 2 -> BN -> GELU -> conv3x3 -> BN -> GELU
//!   (31 -> 15 -> 7 -> 3);
//! - maxpool 3 (3x3 -> 1x1), a linear layer 256 -> classes without bias, and a factor 1/9 on the scores.
//!
//! Its choices, each from the lecture's toolbox: convs start as identity maps on their first `C_in` filters
//! (`init::dirac`, an implicit residual) over PyTorch's default uniform init; batch norm without a learned scale
//! (gamma stays 1; only beta trains), `eps` 1e-12 and running averages that weight each new batch by 0.4.
//! 1.97M parameters; about 0.12 GMAC forward per image.

use super::BuildOptions;
use crate::init::{dirac, rng, Init, Rng64};
use crate::layers::batchnorm::BatchNormConfig;
use crate::layers::conv::Conv2dConfig;
use crate::layers::linear::LinearConfig;
use crate::layers::{Flatten, Gelu, MaxPool2d, Scale};
use crate::net::Sequential;
use crate::tensor::Float;
use crate::Result;

const WIDTHS: [usize; 3] = [64, 256, 256];

/// A 3x3 'same' conv without bias whose first `cin` filters are identity kernels.
fn conv<T: Float>(cin: usize, cout: usize, r: &mut Rng64) -> Result<crate::layers::Conv2d<T>> {
    let mut c = Conv2dConfig::new(cin, cout, 3).padding(1).bias(false).init(Init::TorchDefault).build::<T>(r)?;
    dirac(&mut c.weight.value);
    Ok(c)
}

/// Batch norm with gamma fixed at 1, `eps` 1e-12, new-batch weight 0.4.
fn norm<T: Float>(c: usize) -> crate::layers::BatchNorm<T> {
    let mut bn = BatchNormConfig { eps: 1e-12, momentum: 0.4, ..BatchNormConfig::new(c) }.build::<T>();
    bn.gamma.frozen = true;
    bn
}

fn group<T: Float>(cin: usize, cout: usize, r: &mut Rng64) -> Result<Sequential<T>> {
    Ok(Sequential::new()
        .with("conv1", conv::<T>(cin, cout, r)?)
        .with("pool", MaxPool2d::new(2, 2))
        .with("norm1", norm::<T>(cout))
        .with("act1", Gelu)
        .with("conv2", conv::<T>(cout, cout, r)?)
        .with("norm2", norm::<T>(cout))
        .with("act2", Gelu))
}

pub fn build<T: Float>(o: &BuildOptions) -> Result<Sequential<T>> {
    let mut r = rng(o.seed);
    let whiten = 2 * 3 * 2 * 2;
    let mut net = Sequential::new()
        .with("whiten", Conv2dConfig::new(3, whiten, 2).init(Init::TorchDefault).build::<T>(&mut r)?)
        .with("whiten_act", Gelu);
    let mut cin = whiten;
    for (i, &w) in WIDTHS.iter().enumerate() {
        net.push(format!("block{}", i + 1), group::<T>(cin, w, &mut r)?);
        cin = w;
    }
    net.push("pool", MaxPool2d::new(3, 3));
    net.push("flatten", Flatten);
    net.push("fc", LinearConfig::new(cin, o.classes).bias(false).init(Init::TorchDefault).build::<T>(&mut r)?);
    net.push("scale", Scale(1.0 / 9.0));
    Ok(net)
}
