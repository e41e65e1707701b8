//! Leaky ReLU: `max(slope*x, x)`. Default slope 0.01 (PyTorch); the lecture draws it with 0.1.

use super::{Layer, Mode};
use crate::kernels::elementwise::{map, map2};
use crate::tensor::{Float, Tensor};
use crate::Result;

#[derive(Clone, Copy, Debug)]
pub struct LeakyRelu {
    pub slope: f64,
}

impl Default for LeakyRelu {
    fn default() -> Self {
        LeakyRelu { slope: 0.01 }
    }
}

impl<T: Float> Layer<T> for LeakyRelu {
    fn describe(&self) -> String {
        format!("leaky_relu({})", self.slope)
    }
    fn output_shape(&self, x: &[usize]) -> Result<Vec<usize>> {
        Ok(x.to_vec())
    }
    fn forward(&mut self, x: &Tensor<T>, _mode: Mode) -> Tensor<T> {
        let mut y = Tensor::uninit(x.shape());
        let s = T::c(self.slope);
        map(x.data(), y.data_mut(), |v| if v > T::zero() { v } else { s * v });
        y
    }
    fn backward(&mut self, x: &Tensor<T>, y: &Tensor<T>, dy: &Tensor<T>) -> Tensor<T> {
        let _ = (x, y);
        let mut dx = Tensor::uninit(x.shape());
        let s = T::c(self.slope);
        map2(x.data(), dy.data(), dx.data_mut(), |x, d| if x > T::zero() { d } else { s * d });
        dx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::gradcheck::{check_layer, random_input, Options};

    #[test]
    fn gradcheck() {
        let mut layer = LeakyRelu { slope: 0.1 };
        let rep = check_layer(&mut layer, &random_input(&[2, 3, 4, 5], 7), &Options::default());
        assert!(rep.judged_error() < 1e-6, "{rep}");
        assert_eq!(rep.kinks_skipped(), 0);
    }

    #[test]
    fn values() {
        let mut layer = LeakyRelu { slope: 0.1 };
        let x = Tensor::<f64>::from_vec(&[1, 4], vec![-2.0, -0.5, 0.5, 2.0]);
        let y = Layer::<f64>::forward(&mut layer, &x, Mode::Train);
        let want: Vec<f64> = vec![-0.2, -0.05, 0.5, 2.0];
        for (a, b) in y.data().iter().zip(&want) {
            assert!((a - b).abs() < 1e-12, "{:?} vs {want:?}", y.data());
        }
    }
}
