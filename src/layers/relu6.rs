//! ReLU6: `min(max(0, x), 6)` (MobileNet). Two kinks, at 0 and 6; the gradient passes strictly between them.

use super::{Layer, Mode};
use crate::kernels::elementwise::{map, map2};
use crate::tensor::{Float, Tensor};
use crate::Result;

#[derive(Clone, Copy, Debug, Default)]
pub struct Relu6;

impl<T: Float> Layer<T> for Relu6 {
    fn describe(&self) -> String {
        "relu6".into()
    }
    fn output_shape(&self, x: &[usize]) -> Result<Vec<usize>> {
        Ok(x.to_vec())
    }
    fn forward(&mut self, x: &Tensor<T>, _mode: Mode) -> Tensor<T> {
        let six = T::c(6.0);
        let mut y = Tensor::uninit(x.shape());
        map(x.data(), y.data_mut(), |v| v.max(T::zero()).min(six));
        y
    }
    fn backward(&mut self, x: &Tensor<T>, _y: &Tensor<T>, dy: &Tensor<T>) -> Tensor<T> {
        let six = T::c(6.0);
        let mut dx = Tensor::uninit(x.shape());
        map2(x.data(), dy.data(), dx.data_mut(), |x, d| if x > T::zero() && x < six { d } else { T::zero() });
        dx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::gradcheck::{check_layer, random_input, Options};

    #[test]
    fn values_and_gradcheck() {
        let x = Tensor::<f64>::from_vec(&[1, 4], vec![-1.0, 3.0, 6.5, 0.5]);
        assert_eq!(Relu6.forward(&x, Mode::Train).data(), &[0.0, 3.0, 6.0, 0.5]);
        // Inputs spread over both kinks (scaled to +-8), none within the step of 0 or 6.
        let x = random_input(&[2, 3, 4, 4], 3).map(|v| v * 8.0 + if (v * 8.0 - 6.0).abs() < 0.1 { 0.2 } else { 0.0 });
        let rep = check_layer(&mut Relu6, &x, &Options::default());
        assert!(rep.judged_error() < 1e-6 && rep.kinks_skipped() == 0, "{rep}");
    }
}
