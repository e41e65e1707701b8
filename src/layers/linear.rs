//! FC: a fully connected layer, `y = x W^T + b` with `W` of shape `[out, in]` (PyTorch's layout).

use super::{expect_rank, join, Infer, Layer, Mode, Param, ParamKind, ParamVisitor};
use crate::init::Init;
use crate::kernels::gemm::{matmul, Mat};
use crate::kernels::threads;
use crate::tensor::{Float, Tensor};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinearConfig {
    pub in_features: usize,
    pub out_features: usize,
    /// Default true.
    pub bias: bool,
    /// Default He normal (fan_in = in_features), biases zero.
    pub init: Init,
}

impl LinearConfig {
    pub fn new(in_features: usize, out_features: usize) -> Self {
        LinearConfig { in_features, out_features, bias: true, init: Init::HeNormal }
    }
    pub fn init(mut self, i: Init) -> Self {
        self.init = i;
        self
    }
    pub fn bias(mut self, b: bool) -> Self {
        self.bias = b;
        self
    }
    pub fn build<T: Float>(&self, rng: &mut impl rand::Rng) -> Result<Linear<T>> {
        if self.in_features == 0 || self.out_features == 0 {
            return Err(Error::Config(format!("linear: feature counts must be positive, got {self:?}")));
        }
        let w = self.init.tensor(&[self.out_features, self.in_features], self.in_features, self.out_features, rng);
        Ok(Linear {
            cfg: self.clone(),
            weight: Param::new(w, ParamKind::Weight),
            bias: self.bias.then(|| Param::new(Tensor::zeros(&[self.out_features]), ParamKind::Bias)),
        })
    }
}

pub struct Linear<T: Float> {
    pub cfg: LinearConfig,
    pub weight: Param<T>,
    pub bias: Option<Param<T>>,
}

/// The same in every mode.
impl<T: Float> Infer<T> for Linear<T> {
    fn infer(&self, x: &Tensor<T>) -> Tensor<T> {
        let (b, fin, fout) = (x.batch(), self.cfg.in_features, self.cfg.out_features);
        let mut y = Tensor::uninit(&[b, fout]);
        if let Some(bias) = &self.bias {
            for row in y.data_mut().chunks_mut(fout) {
                row.copy_from_slice(bias.value.data());
            }
        }
        let w = Mat::new(self.weight.value.data(), fout, fin).t();
        matmul(Mat::new(x.data(), b, fin), w, y.data_mut(), self.bias.is_some(), threads());
        y
    }
}

impl<T: Float> Layer<T> for Linear<T> {
    fn describe(&self) -> String {
        format!("fc({}->{})", self.cfg.in_features, self.cfg.out_features)
    }

    fn output_shape(&self, x: &[usize]) -> Result<Vec<usize>> {
        expect_rank("fc", x, 2)?;
        if x[1] != self.cfg.in_features {
            return Err(Error::Shape(format!(
                "{} expects {} input features, got shape {x:?} (is a flatten missing, or the input size wrong?)",
                self.describe(),
                self.cfg.in_features
            )));
        }
        Ok(vec![x[0], self.cfg.out_features])
    }

    fn forward(&mut self, x: &Tensor<T>, _mode: Mode) -> Tensor<T> {
        self.infer(x)
    }
    fn as_infer(&self) -> Option<&dyn Infer<T>> {
        Some(self)
    }

    fn backward(&mut self, x: &Tensor<T>, _y: &Tensor<T>, dy: &Tensor<T>) -> Tensor<T> {
        let (b, fin, fout) = (x.batch(), self.cfg.in_features, self.cfg.out_features);
        let dym = Mat::new(dy.data(), b, fout);
        if !self.weight.frozen {
            // dW += dy^T x
            matmul(dym.t(), Mat::new(x.data(), b, fin), self.weight.grad.data_mut(), true, threads());
        }
        if let Some(p) = self.bias.as_mut().filter(|p| !p.frozen) {
            for row in dy.data().chunks(fout) {
                for (g, &d) in p.grad.data_mut().iter_mut().zip(row) {
                    *g += d;
                }
            }
        }
        let mut dx = Tensor::uninit(x.shape());
        matmul(dym, Mat::new(self.weight.value.data(), fout, fin), dx.data_mut(), false, threads());
        dx
    }

    fn macs(&self, x: &[usize]) -> u64 {
        (x[0] * self.cfg.in_features * self.cfg.out_features) as u64
    }

    fn visit_params(&mut self, prefix: &str, f: &mut ParamVisitor<'_, T>) {
        f(&join(prefix, "weight"), &mut self.weight);
        if let Some(b) = &mut self.bias {
            f(&join(prefix, "bias"), b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::gradcheck::{check_layer, random_input, Options};

    #[test]
    fn forward_by_hand() {
        let mut fc = LinearConfig::new(2, 2).build::<f64>(&mut crate::init::rng(0)).unwrap();
        fc.weight.value = Tensor::from_vec(&[2, 2], vec![1.0, 2.0, 3.0, 4.0]);
        fc.bias.as_mut().unwrap().value = Tensor::from_vec(&[2], vec![0.5, -0.5]);
        let y = fc.forward(&Tensor::from_vec(&[1, 2], vec![1.0, -1.0]), Mode::Train);
        assert_eq!(y.data(), &[-0.5, -1.5]);
    }

    #[test]
    fn gradcheck() {
        let mut fc = LinearConfig::new(7, 5).build::<f64>(&mut crate::init::rng(0)).unwrap();
        let rep = check_layer(&mut fc, &random_input(&[4, 7], 3), &Options::default());
        assert!(rep.judged_error() < 1e-6, "{rep}");
    }
}
