//! Tanh: zero-centred but still saturating; its gradient is `1 - y^2`.

use super::{Layer, Mode};
use crate::kernels::elementwise::{map, map2};
use crate::tensor::{Float, Tensor};
use crate::Result;

#[derive(Clone, Copy, Debug, Default)]
pub struct Tanh;

impl<T: Float> Layer<T> for Tanh {
    fn describe(&self) -> String {
        "tanh".into()
    }
    fn output_shape(&self, x: &[usize]) -> Result<Vec<usize>> {
        Ok(x.to_vec())
    }
    fn forward(&mut self, x: &Tensor<T>, _mode: Mode) -> Tensor<T> {
        let mut y = Tensor::uninit(x.shape());
        map(x.data(), y.data_mut(), |v| v.tanh());
        y
    }
    fn backward(&mut self, x: &Tensor<T>, y: &Tensor<T>, dy: &Tensor<T>) -> Tensor<T> {
        let _ = (x, y);
        let mut dx = Tensor::uninit(x.shape());
        map2(y.data(), dy.data(), dx.data_mut(), |y, d| d * (T::one() - y * y));
        dx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::gradcheck::{check_layer, random_input, Options};

    #[test]
    fn gradcheck() {
        let mut layer = Tanh;
        let rep = check_layer(&mut layer, &random_input(&[2, 3, 4, 5], 7), &Options::default());
        assert!(rep.judged_error() < 1e-6, "{rep}");
        assert_eq!(rep.kinks_skipped(), 0);
    }

    #[test]
    fn values() {
        let mut layer = Tanh;
        let x = Tensor::<f64>::from_vec(&[1, 4], vec![-2.0, -0.5, 0.5, 2.0]);
        let y = Layer::<f64>::forward(&mut layer, &x, Mode::Train);
        let want: Vec<f64> = [-2.0f64, -0.5, 0.5, 2.0].iter().map(|v| v.tanh()).collect();
        for (a, b) in y.data().iter().zip(&want) {
            assert!((a - b).abs() < 1e-12, "{:?} vs {want:?}", y.data());
        }
    }
}
