//! Models registered by name (as in timm): a constructor, a default input size, a class count.

pub mod airbench;
pub mod alexnet;
pub mod cifar_resnet;
pub mod googlenet;
pub mod lenet5;
pub mod mobilenetv2;
pub mod resnet;
pub mod small;
pub mod twolayer;
pub mod vgg;

use crate::layers::{Layer, Mode, Param};
use crate::net::{depth_first, Sequential};
use crate::tensor::{Float, Tensor};
use crate::{Error, Result};

/// A network plus what is needed to use it: its input size and class count.
pub struct Model<T: Float> {
    pub name: String,
    /// `[C, H, W]`
    pub input: [usize; 3],
    pub classes: usize,
    pub net: Sequential<T>,
}

/// What the registry knows about a model before building it.
pub struct ModelInfo {
    pub name: &'static str,
    pub description: &'static str,
    pub input: [usize; 3],
    pub classes: usize,
}

pub struct BuildOptions {
    pub classes: usize,
    pub seed: u64,
}

type Builder<T> = fn(&BuildOptions) -> Result<Sequential<T>>;

fn info(name: &'static str, description: &'static str, input: [usize; 3]) -> ModelInfo {
    ModelInfo { name, description, input, classes: 10 }
}

/// An ImageNet model: 1000 classes.
fn imagenet(name: &'static str, description: &'static str, side: usize) -> ModelInfo {
    ModelInfo { name, description, input: [3, side, side], classes: 1000 }
}

fn registry<T: Float>() -> Vec<(ModelInfo, Builder<T>)> {
    vec![
        (
            info("lenet5", "LeNet-5: CONV-POOL-CONV-POOL-FC-FC-FC with ReLU, for 28x28 grey digits", [1, 28, 28]),
            lenet5::build::<T>,
        ),
        (
            info(
                "twolayer",
                "The lecture's two-layer net: FC(3072->50)-ReLU-FC(50->10) on 3x32x32 images",
                [3, 32, 32],
            ),
            twolayer::build::<T>,
        ),
        (
            info(
                "small",
                "3 x (conv3x3-ReLU-maxpool2), 32/64/128 channels, FC 2048->10: the benchmark net",
                [3, 32, 32],
            ),
            small::build::<T>,
        ),
        (
            info(
                "resnet8",
                "CIFAR ResNet, 1 basic block per stage (16/32/64 channels): the benchmark net",
                [3, 32, 32],
            ),
            |o| cifar_resnet::build::<T>(8, o),
        ),
        (
            info("resnet20", "CIFAR ResNet-20 (He et al. 2015), 3 blocks per stage, 0.27M parameters", [3, 32, 32]),
            |o| cifar_resnet::build::<T>(20, o),
        ),
        (
            info(
                "airbench",
                "airbench's 94% CIFAR-10 net: frozen 2x2 whitening conv, 3 conv groups (64/256/256) with GELU",
                [3, 32, 32],
            ),
            airbench::build::<T>,
        ),
        (info("resnet32", "CIFAR ResNet-32, 5 blocks per stage", [3, 32, 32]), |o| cifar_resnet::build::<T>(32, o)),
        (info("resnet56", "CIFAR ResNet-56, 9 blocks per stage", [3, 32, 32]), |o| cifar_resnet::build::<T>(56, o)),
        (
            imagenet("alexnet", "AlexNet, the lecture's one-tower version (CONV1 96 11x11/4 ... FC8 1000)", 227),
            alexnet::alexnet::<T>,
        ),
        (imagenet("zfnet", "ZFNet: AlexNet with CONV1 7x7/2 and CONV3-5 512/1024/512", 224), alexnet::zfnet::<T>),
        (imagenet("vgg11", "VGG-11 (config A)", 224), |o| vgg::build::<T>(11, false, o)),
        (imagenet("vgg13", "VGG-13 (config B)", 224), |o| vgg::build::<T>(13, false, o)),
        (imagenet("vgg16", "VGG-16 (config D): 138M parameters", 224), |o| vgg::build::<T>(16, false, o)),
        (imagenet("vgg19", "VGG-19 (config E)", 224), |o| vgg::build::<T>(19, false, o)),
        (imagenet("vgg11_bn", "VGG-11 with batch norm", 224), |o| vgg::build::<T>(11, true, o)),
        (imagenet("vgg13_bn", "VGG-13 with batch norm", 224), |o| vgg::build::<T>(13, true, o)),
        (imagenet("vgg16_bn", "VGG-16 with batch norm", 224), |o| vgg::build::<T>(16, true, o)),
        (imagenet("vgg19_bn", "VGG-19 with batch norm", 224), |o| vgg::build::<T>(19, true, o)),
        (imagenet("googlenet", "GoogLeNet / Inception v1, torchvision's variant (BN, no auxiliary heads)", 224), |o| {
            googlenet::build::<T>(googlenet::Variant { batch_norm: true, k5: 3 }, o)
        }),
        (imagenet("googlenet_paper", "GoogLeNet as in the paper's table 1 (no BN, 5x5 branches, LRN)", 224), |o| {
            googlenet::build::<T>(googlenet::Variant { batch_norm: false, k5: 5 }, o)
        }),
        (imagenet("resnet18", "ResNet-18: basic blocks [2, 2, 2, 2]", 224), |o| resnet::build::<T>(18, o)),
        (imagenet("resnet34", "ResNet-34: basic blocks [3, 4, 6, 3]", 224), |o| resnet::build::<T>(34, o)),
        (imagenet("resnet50", "ResNet-50: bottlenecks [3, 4, 6, 3]", 224), |o| resnet::build::<T>(50, o)),
        (imagenet("resnet101", "ResNet-101: bottlenecks [3, 4, 23, 3]", 224), |o| resnet::build::<T>(101, o)),
        (imagenet("resnet152", "ResNet-152: bottlenecks [3, 8, 36, 3]", 224), |o| resnet::build::<T>(152, o)),
        (imagenet("mobilenetv2", "MobileNetV2, width 1.0: inverted residuals with depthwise convs", 224), |o| {
            mobilenetv2::build::<T>(o, mobilenetv2::Variant::Torchvision)
        }),
        (
            imagenet(
                "mobilenetv2_keras",
                "MobileNetV2 as keras.applications builds it (TF 'same' padding, BN eps 1e-3), for Keras weights",
                160,
            ),
            |o| mobilenetv2::build::<T>(o, mobilenetv2::Variant::Keras),
        ),
    ]
}

/// Every registered model, in registry order.
pub fn list() -> Vec<ModelInfo> {
    registry::<f32>().into_iter().map(|(i, _)| i).collect()
}

/// A registered model's description, or an error listing the known names.
pub fn lookup(name: &str) -> Result<ModelInfo> {
    list().into_iter().find(|i| i.name == name).ok_or_else(|| Error::Unknown {
        kind: "model",
        name: name.to_string(),
        known: list().iter().map(|i| i.name).collect::<Vec<_>>().join(", "),
    })
}

/// Builds a registered model by name, with its default class count unless `classes` is given.
pub fn build<T: Float>(name: &str, classes: Option<usize>, seed: u64) -> Result<Model<T>> {
    let reg = registry::<T>();
    let Some((info, builder)) = reg.into_iter().find(|(i, _)| i.name == name) else {
        let known = list().iter().map(|i| i.name).collect::<Vec<_>>().join(", ");
        return Err(Error::Unknown { kind: "model", name: name.to_string(), known });
    };
    let classes = classes.unwrap_or(info.classes);
    let net = builder(&BuildOptions { classes, seed })?;
    let model = Model { name: name.to_string(), input: info.input, classes, net };
    model.net.output_shape(&model.batch_shape(1))?;
    Ok(model)
}

/// A registered model with shapes and no weights (`tensor::shapes_only`): for tables of parameters, memory and
/// FLOPs, which follow from shapes alone. It cannot run.
pub fn build_shapes(name: &str, classes: Option<usize>) -> Result<Model<f32>> {
    crate::tensor::shapes_only(|| build::<f32>(name, classes, 0))
}

impl<T: Float> Model<T> {
    pub fn batch_shape(&self, batch: usize) -> Vec<usize> {
        vec![batch, self.input[0], self.input[1], self.input[2]]
    }
    /// The forward pass; inference runs depth first where it pays (`net/depth_first.rs`).
    pub fn forward(&mut self, x: &Tensor<T>, mode: Mode) -> Tensor<T> {
        if mode == Mode::Infer {
            if let Some(slice) = self.depth_first_slice(x.shape()) {
                let net = self.net.as_infer().expect("depth_first_slice checked it");
                return depth_first::infer(net, x, slice);
            }
        }
        self.net.forward(x, mode)
    }

    /// Images per slice for depth-first inference of a batch of shape `x`, where the network allows it.
    pub(crate) fn depth_first_slice(&mut self, x: &[usize]) -> Option<usize> {
        self.net.as_infer()?;
        let mut one = x.to_vec();
        one[0] = 1;
        let mut largest = depth_first::LargestActivation(0);
        self.net.walk("", &one, &mut largest);
        depth_first::slice_images::<T>(x[0], largest.0, crate::kernels::threads())
    }
    /// Backpropagates `dscores` through the network, accumulating parameter gradients.
    pub fn backward(&mut self, x: &Tensor<T>, scores: &Tensor<T>, dscores: &Tensor<T>) -> Tensor<T> {
        self.net.backward(x, scores, dscores)
    }
    pub fn visit_params(&mut self, f: &mut dyn FnMut(&str, &mut Param<T>)) {
        self.net.visit_params("", f)
    }
    /// Visits every tensor that makes up the model's state, parameter values then buffers (batch-norm running
    /// statistics), by registry name: what averaging, Lookahead and checkpoints copy.
    pub fn visit_state(&mut self, f: &mut dyn FnMut(&str, &mut Tensor<T>)) {
        self.net.visit_params("", &mut |n, p| f(n, &mut p.value));
        self.net.visit_buffers("", &mut |n, t| f(n, t));
    }
    pub fn zero_grad(&mut self) {
        self.visit_params(&mut |_, p| p.grad.data_mut().fill(T::zero()));
    }
    pub fn num_params(&mut self) -> usize {
        let mut n = 0;
        self.visit_params(&mut |_, p| n += p.value.len());
        n
    }
    /// A training-mode forward whose only purpose is to update batch-norm running statistics.
    pub fn net_forward_for_stats(&mut self, x: &Tensor<T>) {
        self.net.forward(x, Mode::Train);
    }
    /// Training never needs the gradient of the images themselves: skip the first layer's input gradient.
    pub fn for_training(mut self) -> Self {
        self.net.skip_input_grad(true);
        self
    }
}
