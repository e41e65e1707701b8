//! Sigmoid: `1 / (1 + e^-x)`. Saturates and is not zero-centred, as the lecture warns; its gradient is `y (1 - y)`.

use super::{Layer, Mode};
use crate::kernels::elementwise::{map, map2};
use crate::tensor::{Float, Tensor};
use crate::Result;

#[derive(Clone, Copy, Debug, Default)]
pub struct Sigmoid;

impl<T: Float> Layer<T> for Sigmoid {
    fn describe(&self) -> String {
        "sigmoid".into()
    }
    fn output_shape(&self, x: &[usize]) -> Result<Vec<usize>> {
        Ok(x.to_vec())
    }
    fn forward(&mut self, x: &Tensor<T>, _mode: Mode) -> Tensor<T> {
        let mut y = Tensor::uninit(x.shape());
        map(x.data(), y.data_mut(), |v| T::one() / (T::one() + (-v).exp()));
        y
    }
    fn backward(&mut self, x: &Tensor<T>, y: &Tensor<T>, dy: &Tensor<T>) -> Tensor<T> {
        let _ = (x, y);
        let mut dx = Tensor::uninit(x.shape());
        map2(y.data(), dy.data(), dx.data_mut(), |y, d| d * y * (T::one() - y));
        dx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::gradcheck::{check_layer, random_input, Options};

    #[test]
    fn gradcheck() {
        let mut layer = Sigmoid;
        let rep = check_layer(&mut layer, &random_input(&[2, 3, 4, 5], 7), &Options::default());
        assert!(rep.judged_error() < 1e-6, "{rep}");
        assert_eq!(rep.kinks_skipped(), 0);
    }

    #[test]
    fn values() {
        let mut layer = Sigmoid;
        let x = Tensor::<f64>::from_vec(&[1, 4], vec![-2.0, -0.5, 0.5, 2.0]);
        let y = Layer::<f64>::forward(&mut layer, &x, Mode::Train);
        let want: Vec<f64> = [-2.0f64, -0.5, 0.5, 2.0].iter().map(|v| 1.0 / (1.0 + (-v).exp())).collect();
        for (a, b) in y.data().iter().zip(&want) {
            assert!((a - b).abs() < 1e-12, "{:?} vs {want:?}", y.data());
        }
    }
}
