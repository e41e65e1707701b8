//! The residual block (He et al. 2015): `y = relu(F(x) + shortcut(x))`, where the shortcut is the identity or,
//! when the shape changes, a projection (1x1 conv + batch norm). The addition routes the gradient unchanged to
//! both paths, which is why deep ResNets train.

use super::Sequential;
use crate::layers::{join, BufferVisitor, ChildVisitor, Infer, Layer, Mode, ParamVisitor, Walker};
use crate::tensor::{Float, Tensor};
use crate::{Error, Result};

pub struct Residual<T: Float> {
    pub main: Sequential<T>,
    /// `None` is the identity shortcut.
    pub shortcut: Option<Sequential<T>>,
    /// ReLU after the sum (basic and bottleneck blocks); MobileNetV2's inverted residual has none.
    pub relu: bool,
    main_out: Option<Tensor<T>>,
    short_out: Option<Tensor<T>>,
}

impl<T: Float> Residual<T> {
    pub fn new(main: Sequential<T>, shortcut: Option<Sequential<T>>, relu: bool) -> Self {
        Residual { main, shortcut, relu, main_out: None, short_out: None }
    }
}

/// The block's sum `a + skip`, then with `relu` the ReLU.
pub(crate) fn add<T: Float>(a: &Tensor<T>, skip: &Tensor<T>, relu: bool) -> Tensor<T> {
    let mut y = Tensor::uninit(a.shape());
    crate::kernels::elementwise::map2(a.data(), skip.data(), y.data_mut(), |p, q| {
        let v = p + q;
        if relu && v < T::zero() {
            T::zero()
        } else {
            v
        }
    });
    y
}

/// Inference, where the main path and the shortcut both have one.
impl<T: Float> Infer<T> for Residual<T> {
    fn infer(&self, x: &Tensor<T>) -> Tensor<T> {
        let shortcut = |sc: &Sequential<T>| sc.as_infer().expect("Residual::as_infer checked the shortcut").infer(x);
        let s = self.shortcut.as_ref().map(shortcut);
        self.main.shared_then_add(x, Some((s.as_ref().unwrap_or(x), self.relu)))
    }
}

impl<T: Float> Layer<T> for Residual<T> {
    fn describe(&self) -> String {
        let sc = if self.shortcut.is_some() { "projection" } else { "identity" };
        format!("residual[{}] + {sc}{}", self.main.describe(), if self.relu { " -> relu" } else { "" })
    }

    fn output_shape(&self, x: &[usize]) -> Result<Vec<usize>> {
        let a = self.main.output_shape(x)?;
        let b = match &self.shortcut {
            Some(s) => s.output_shape(x).map_err(|e| e.in_layer("shortcut"))?,
            None => x.to_vec(),
        };
        if a != b {
            return Err(Error::Shape(format!(
                "residual: main path gives {a:?} but shortcut gives {b:?}; add a projection"
            )));
        }
        Ok(a)
    }

    fn forward(&mut self, x: &Tensor<T>, mode: Mode) -> Tensor<T> {
        if !mode.keeps_activations() {
            // Inference: the main path's last conv adds the shortcut in its own output pass where it can.
            let s = self.shortcut.as_mut().map(|sc| sc.forward(x, mode));
            (self.main_out, self.short_out) = (None, None);
            return self.main.infer_then_add(x, Some((s.as_ref().unwrap_or(x), self.relu)));
        }
        let a = self.main.forward(x, mode);
        let s = self.shortcut.as_mut().map(|sc| sc.forward(x, mode));
        let y = add(&a, s.as_ref().unwrap_or(x), self.relu);
        (self.main_out, self.short_out) = (Some(a), s);
        y
    }

    fn backward(&mut self, x: &Tensor<T>, y: &Tensor<T>, dy: &Tensor<T>) -> Tensor<T> {
        let dsum = if self.relu {
            let mut d = Tensor::uninit(dy.shape());
            crate::kernels::elementwise::map2(y.data(), dy.data(), d.data_mut(), |y, g| {
                if y > T::zero() {
                    g
                } else {
                    T::zero()
                }
            });
            d
        } else {
            dy.clone()
        };
        let a = self.main_out.take().expect("residual backward before forward");
        let mut dx = self.main.backward(x, &a, &dsum);
        match (&mut self.shortcut, self.short_out.take()) {
            (Some(sc), Some(s)) => dx.add_assign(&sc.backward(x, &s, &dsum)),
            _ => dx.add_assign(&dsum),
        }
        dx
    }

    fn macs(&self, x: &[usize]) -> u64 {
        self.main.macs(x) + self.shortcut.as_ref().map_or(0, |s| s.macs(x))
    }

    fn as_infer(&self) -> Option<&dyn Infer<T>> {
        let shortcut = self.shortcut.as_ref().is_none_or(|s| s.as_infer().is_some());
        (self.main.as_infer().is_some() && shortcut).then_some(self as &dyn Infer<T>)
    }

    fn visit_params(&mut self, prefix: &str, f: &mut ParamVisitor<'_, T>) {
        self.main.visit_params(prefix, f);
        if let Some(s) = &mut self.shortcut {
            s.visit_params(&join(prefix, "shortcut"), f);
        }
    }
    fn visit_buffers(&mut self, prefix: &str, f: &mut BufferVisitor<'_, T>) {
        self.main.visit_buffers(prefix, f);
        if let Some(s) = &mut self.shortcut {
            s.visit_buffers(&join(prefix, "shortcut"), f);
        }
    }
    fn freeze_noise(&mut self, frozen: bool) {
        self.main.freeze_noise(frozen);
        if let Some(s) = &mut self.shortcut {
            s.freeze_noise(frozen);
        }
    }
    fn walk(&mut self, name: &str, input: &[usize], w: &mut dyn Walker) -> Vec<usize> {
        let out = self.main.walk(name, input, w);
        if let Some(s) = &mut self.shortcut {
            s.walk(&join(name, "shortcut"), input, w);
        }
        w.join(&join(name, "add"), if self.relu { "residual add + relu" } else { "residual add" }, &out);
        out
    }
    fn visit_children(&mut self, prefix: &str, f: &mut ChildVisitor<'_, T>) {
        self.main.visit_children(prefix, f);
        if let Some(s) = &mut self.shortcut {
            s.visit_children(&join(prefix, "shortcut"), f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::gradcheck::{check_layer, random_input, Options};
    use crate::init::rng;
    use crate::layers::batchnorm::BatchNormConfig;
    use crate::layers::conv::Conv2dConfig;
    use crate::layers::Relu;

    fn block(cin: usize, cout: usize, stride: usize, r: &mut crate::init::Rng64) -> Residual<f64> {
        let main = Sequential::new()
            .with("conv1", Conv2dConfig::new(cin, cout, 3).stride(stride).padding(1).bias(false).build(r).unwrap())
            .with("bn1", BatchNormConfig::new(cout).build())
            .with("relu", Relu)
            .with("conv2", Conv2dConfig::new(cout, cout, 3).padding(1).bias(false).build(r).unwrap())
            .with("bn2", BatchNormConfig::new(cout).build());
        let shortcut = (cin != cout || stride != 1).then(|| {
            Sequential::new()
                .with("conv", Conv2dConfig::new(cin, cout, 1).stride(stride).bias(false).build(r).unwrap())
                .with("bn", BatchNormConfig::new(cout).build())
        });
        Residual::new(main, shortcut, true)
    }

    #[test]
    fn gradcheck_identity_and_projection_blocks() {
        let mut r = rng(3);
        for (cin, cout, stride) in [(3, 3, 1), (2, 4, 2)] {
            let mut b = block(cin, cout, stride, &mut r);
            for mode in [Mode::Train, Mode::Eval] {
                let opts = Options { mode, ..Options::default() };
                let rep = check_layer(&mut b, &random_input(&[2, cin, 6, 6], 1), &opts);
                // ReLUs inside a block can sit near their kink for some perturbation; those are skipped and counted.
                assert!(rep.judged_error() < 1e-5, "{mode:?}\n{rep}");
            }
        }
    }

    #[test]
    fn inference_computes_what_evaluation_does_and_keeps_no_activations() {
        for (cin, cout, stride) in [(2, 4, 2), (4, 4, 1)] {
            let mut b = block(cin, cout, stride, &mut rng(0));
            let x = random_input(&[2, cin, 6, 6], 1);
            b.forward(&x, Mode::Train);
            let eval = b.forward(&x, Mode::Eval);
            assert!(b.main_out.is_some() && !b.main.acts.is_empty(), "evaluation keeps what backward needs");
            // Inference folds each batch norm into the conv before it, and the sum and its ReLU into conv2's output
            // pass: the same function, rounded differently.
            let infer = b.forward(&x, Mode::Infer);
            let worst = infer.data().iter().zip(eval.data()).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            assert!(worst < 1e-12, "{cin}->{cout}: off by {worst}");
            assert!(b.main_out.is_none() && b.short_out.is_none() && b.main.acts.is_empty());
            // conv2 (3x3, stride 1: Winograd) did take the sum.
            let bn2 = b.main.layers_mut().find(|(n, _)| *n == "bn2").and_then(|(_, l)| l.inference_affine());
            let (_, conv2) = b.main.layers_mut().find(|(n, _)| *n == "conv2").expect("conv2");
            let (a, skip) = (random_input(&[2, cout, 6 / stride, 6 / stride], 2), &infer);
            assert!(conv2.forward_folded_skip(&a, &bn2.expect("bn2 folds"), skip, true).is_some(), "not fused");
        }
    }

    #[test]
    fn names_follow_the_structure() {
        let mut b = block(2, 4, 2, &mut rng(0));
        let mut names = Vec::new();
        b.visit_params("stage2.block1", &mut |n, _| names.push(n.to_string()));
        assert_eq!(names[0], "stage2.block1.conv1.weight");
        assert!(names.contains(&"stage2.block1.shortcut.conv.weight".to_string()));
        assert!(names.contains(&"stage2.block1.bn2.bias".to_string()));
    }
}
