//! VGG (Simonyan & Zisserman 2014): stacks of 3x3 convs (stride 1, pad 1) and 2x2 max pools, then
//! FC 4096, FC 4096, FC 1000. The lecture's VGG16 has 138M parameters and ~24M activations per image.
//! With batch norm (`vgg16_bn`, ...) each conv is followed by BN (torchvision keeps the conv bias there too).

use super::BuildOptions;
use crate::init::rng;
use crate::layers::batchnorm::BatchNormConfig;
use crate::layers::conv::Conv2dConfig;
use crate::layers::linear::LinearConfig;
use crate::layers::{Dropout, Flatten, MaxPool2d, Relu};
use crate::net::Sequential;
use crate::tensor::Float;
use crate::Result;

/// Convs per stage (channels 64, 128, 256, 512, 512).
fn stages(depth: usize) -> [usize; 5] {
    match depth {
        11 => [1, 1, 2, 2, 2],
        13 => [2, 2, 2, 2, 2],
        16 => [2, 2, 3, 3, 3],
        _ => [2, 2, 4, 4, 4],
    }
}

pub fn build<T: Float>(depth: usize, bn: bool, o: &BuildOptions) -> Result<Sequential<T>> {
    let mut r = rng(o.seed);
    let mut net = Sequential::new();
    let mut cin = 3;
    for (s, (&n, cout)) in stages(depth).iter().zip([64, 128, 256, 512, 512]).enumerate() {
        for i in 0..n {
            let name = format!("conv{}_{}", s + 1, i + 1);
            if bn {
                net.push(name.clone(), Conv2dConfig::new(cin, cout, 3).padding(1).build::<T>(&mut r)?);
                net.push(format!("bn{}_{}", s + 1, i + 1), BatchNormConfig::new(cout).relu().build::<T>());
            } else {
                net.push(name, Conv2dConfig::new(cin, cout, 3).padding(1).relu().build::<T>(&mut r)?);
            }
            cin = cout;
        }
        net.push(format!("pool{}", s + 1), MaxPool2d::new(2, 2));
    }
    net.push("flatten", Flatten);
    net.push("fc6", LinearConfig::new(512 * 7 * 7, 4096).build::<T>(&mut r)?);
    net.push("relu6", Relu);
    net.push("dropout6", Dropout::<T>::new(0.5, o.seed ^ 6)?);
    net.push("fc7", LinearConfig::new(4096, 4096).build::<T>(&mut r)?);
    net.push("relu7", Relu);
    net.push("dropout7", Dropout::<T>::new(0.5, o.seed ^ 7)?);
    net.push("fc8", LinearConfig::new(4096, o.classes).build::<T>(&mut r)?);
    Ok(net)
}
