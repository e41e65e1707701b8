//! ReLU: `max(0, x)`. The gradient passes where the output is positive (the kink at 0 is checked away from).

use super::{Infer, Layer, Mode};
use crate::kernels::elementwise::{map, map2};
use crate::tensor::{Float, Tensor};
use crate::Result;

#[derive(Clone, Copy, Debug, Default)]
pub struct Relu;

/// The same in every mode.
impl<T: Float> Infer<T> for Relu {
    fn infer(&self, x: &Tensor<T>) -> Tensor<T> {
        let mut y = Tensor::uninit(x.shape());
        map(x.data(), y.data_mut(), |v| v.max(T::zero()));
        y
    }
}

impl<T: Float> Layer<T> for Relu {
    fn describe(&self) -> String {
        "relu".into()
    }
    fn output_shape(&self, x: &[usize]) -> Result<Vec<usize>> {
        Ok(x.to_vec())
    }
    fn forward(&mut self, x: &Tensor<T>, _mode: Mode) -> Tensor<T> {
        self.infer(x)
    }
    fn as_infer(&self) -> Option<&dyn Infer<T>> {
        Some(self)
    }
    fn backward(&mut self, x: &Tensor<T>, y: &Tensor<T>, dy: &Tensor<T>) -> Tensor<T> {
        let _ = (x, y);
        let mut dx = Tensor::uninit(x.shape());
        map2(y.data(), dy.data(), dx.data_mut(), |y, d| if y > T::zero() { d } else { T::zero() });
        dx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::gradcheck::{check_layer, random_input, Options};

    #[test]
    fn gradcheck() {
        let mut layer = Relu;
        let rep = check_layer(&mut layer, &random_input(&[2, 3, 4, 5], 7), &Options::default());
        assert!(rep.judged_error() < 1e-6, "{rep}");
        assert_eq!(rep.kinks_skipped(), 0);
    }

    #[test]
    fn values() {
        let mut layer = Relu;
        let x = Tensor::<f64>::from_vec(&[1, 4], vec![-2.0, -0.5, 0.5, 2.0]);
        let y = Layer::<f64>::forward(&mut layer, &x, Mode::Train);
        let want: Vec<f64> = vec![0.0, 0.0, 0.5, 2.0];
        for (a, b) in y.data().iter().zip(&want) {
            assert!((a - b).abs() < 1e-12, "{:?} vs {want:?}", y.data());
        }
    }
}
