//! Flatten: `[B, C, H, W] -> [B, C*H*W]`, between the conv stack and the FC layers.

use super::{Infer, Layer, Mode};
use crate::tensor::{Float, Tensor};
use crate::Result;

#[derive(Clone, Copy, Debug, Default)]
pub struct Flatten;

/// The same in every mode.
impl<T: Float> Infer<T> for Flatten {
    fn infer(&self, x: &Tensor<T>) -> Tensor<T> {
        x.clone().reshape(&[x.batch(), x.len() / x.batch().max(1)])
    }
}

impl<T: Float> Layer<T> for Flatten {
    fn describe(&self) -> String {
        "flatten".into()
    }
    fn output_shape(&self, x: &[usize]) -> Result<Vec<usize>> {
        Ok(vec![x[0], x[1..].iter().product()])
    }
    fn forward(&mut self, x: &Tensor<T>, _mode: Mode) -> Tensor<T> {
        self.infer(x)
    }
    fn as_infer(&self) -> Option<&dyn Infer<T>> {
        Some(self)
    }
    fn backward(&mut self, x: &Tensor<T>, _y: &Tensor<T>, dy: &Tensor<T>) -> Tensor<T> {
        dy.clone().reshape(x.shape())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::gradcheck::{check_layer, random_input, Options};

    #[test]
    fn gradcheck() {
        let x = random_input(&[2, 3, 2, 2], 0);
        assert_eq!(Flatten.forward(&x, Mode::Train).shape(), &[2, 12]);
        assert!(check_layer(&mut Flatten, &x, &Options::default()).judged_error() < 1e-6);
    }
}
