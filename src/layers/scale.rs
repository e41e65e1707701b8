//! A constant factor, `y = s * x`: airbench scales its logits by 1/9 so that the output layer starts with small,
//! confident-enough scores without giving the linear layer a different rate.

use super::{Layer, Mode};
use crate::kernels::elementwise::map;
use crate::tensor::{Float, Tensor};
use crate::Result;

#[derive(Clone, Copy, Debug)]
pub struct Scale(pub f64);

impl<T: Float> Layer<T> for Scale {
    fn describe(&self) -> String {
        format!("scale({})", self.0)
    }
    fn output_shape(&self, x: &[usize]) -> Result<Vec<usize>> {
        Ok(x.to_vec())
    }
    fn forward(&mut self, x: &Tensor<T>, _mode: Mode) -> Tensor<T> {
        let mut y = Tensor::uninit(x.shape());
        let s = T::c(self.0);
        map(x.data(), y.data_mut(), |v| s * v);
        y
    }
    fn backward(&mut self, x: &Tensor<T>, _y: &Tensor<T>, dy: &Tensor<T>) -> Tensor<T> {
        let mut dx = Tensor::uninit(x.shape());
        let s = T::c(self.0);
        map(dy.data(), dx.data_mut(), |g| s * g);
        dx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::gradcheck::{check_layer, random_input, Options};

    #[test]
    fn gradcheck() {
        let rep = check_layer(&mut Scale(1.0 / 9.0), &random_input(&[2, 5], 3), &Options::default());
        assert!(rep.judged_error() < 1e-6, "{rep}");
    }
}
