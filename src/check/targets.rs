//! The layers `convkit gradcheck --layer NAME` checks, each with an input shape that suits it.

use crate::layers::batchnorm::BatchNormConfig;
use crate::layers::conv::Conv2dConfig;
use crate::layers::linear::LinearConfig;
use crate::layers::{self, Layer};
use crate::{Error, Result};

pub const LAYERS: &str =
    "conv, depthwise, linear, maxpool, avgpool, global-avgpool, flatten, relu, leaky-relu, elu, gelu, \
                          sigmoid, tanh, relu6, maxout, batchnorm1d, batchnorm2d, dropout, lrn, scale";

/// A layer to check by name, and an input shape for `batch` images.
pub fn layer(name: &str, batch: usize) -> Result<(Box<dyn Layer<f64>>, Vec<usize>)> {
    let mut r = crate::init::rng(0);
    let img = vec![batch, 4, 7, 7];
    Ok(match name {
        "conv" => (Box::new(Conv2dConfig::new(4, 6, 3).stride(2).padding(1).build(&mut r)?), img),
        "depthwise" => (Box::new(Conv2dConfig::new(4, 4, 3).padding(1).groups(4).build(&mut r)?), img),
        "linear" => (Box::new(LinearConfig::new(10, 5).build(&mut r)?), vec![batch, 10]),
        "maxpool" => (Box::new(layers::MaxPool2d::new(3, 2).padding(1)), img),
        "avgpool" => (Box::new(layers::AvgPool2d::new(2, 2)), img),
        "global-avgpool" => (Box::new(layers::GlobalAvgPool), img),
        "flatten" => (Box::new(layers::Flatten), img),
        "relu" => (Box::new(layers::Relu), img),
        "leaky-relu" => (Box::new(layers::LeakyRelu::default()), img),
        "elu" => (Box::new(layers::Elu::default()), img),
        "gelu" => (Box::new(layers::Gelu), img),
        "scale" => (Box::new(layers::Scale(1.0 / 9.0)), img),
        "sigmoid" => (Box::new(layers::Sigmoid), img),
        "tanh" => (Box::new(layers::Tanh), img),
        "relu6" => (Box::new(layers::Relu6), img),
        "maxout" => (Box::new(layers::Maxout::new(2)), img),
        "batchnorm1d" => (Box::new(BatchNormConfig::new(10).build::<f64>()), vec![batch.max(2), 10]),
        "batchnorm2d" => (Box::new(BatchNormConfig::new(4).build::<f64>()), img),
        "dropout" => (Box::new(layers::Dropout::<f64>::new(0.5, 0)?), img),
        "lrn" => (Box::new(layers::LocalResponseNorm::<f64>::new(3, 0.5, 0.75, 1.0)), img),
        other => return Err(Error::Unknown { kind: "layer", name: other.into(), known: LAYERS.into() }),
    })
}
