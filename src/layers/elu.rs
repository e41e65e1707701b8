//! ELU (Clevert et al. 2015): `x` for x > 0, `alpha (e^x - 1)` otherwise; default alpha 1.

use super::{Layer, Mode};
use crate::kernels::elementwise::map;
use crate::tensor::{Float, Tensor};
use crate::Result;

#[derive(Clone, Copy, Debug)]
pub struct Elu {
    pub alpha: f64,
}

impl Default for Elu {
    fn default() -> Self {
        Elu { alpha: 1.0 }
    }
}

impl<T: Float> Layer<T> for Elu {
    fn describe(&self) -> String {
        format!("elu({})", self.alpha)
    }
    fn output_shape(&self, x: &[usize]) -> Result<Vec<usize>> {
        Ok(x.to_vec())
    }
    fn forward(&mut self, x: &Tensor<T>, _mode: Mode) -> Tensor<T> {
        let mut y = Tensor::uninit(x.shape());
        let a = T::c(self.alpha);
        map(x.data(), y.data_mut(), |v| if v > T::zero() { v } else { a * (v.exp() - T::one()) });
        y
    }
    fn backward(&mut self, x: &Tensor<T>, y: &Tensor<T>, dy: &Tensor<T>) -> Tensor<T> {
        let _ = (x, y);
        let mut dx = Tensor::uninit(x.shape());
        // For x <= 0 the derivative alpha e^x equals y + alpha.
        let a = T::c(self.alpha);
        let (xd, yd, dyd) = (x.data(), y.data(), dy.data());
        for (i, o) in dx.data_mut().iter_mut().enumerate() {
            *o = if xd[i] > T::zero() { dyd[i] } else { dyd[i] * (yd[i] + a) };
        }
        dx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::gradcheck::{check_layer, random_input, Options};

    #[test]
    fn gradcheck() {
        let mut layer = Elu { alpha: 1.0 };
        let rep = check_layer(&mut layer, &random_input(&[2, 3, 4, 5], 7), &Options::default());
        assert!(rep.judged_error() < 1e-6, "{rep}");
        assert_eq!(rep.kinks_skipped(), 0);
    }

    #[test]
    fn values() {
        let mut layer = Elu { alpha: 1.0 };
        let x = Tensor::<f64>::from_vec(&[1, 4], vec![-2.0, -0.5, 0.5, 2.0]);
        let y = Layer::<f64>::forward(&mut layer, &x, Mode::Train);
        let want: Vec<f64> = vec![(-2f64).exp() - 1.0, (-0.5f64).exp() - 1.0, 0.5, 2.0];
        for (a, b) in y.data().iter().zip(&want) {
            assert!((a - b).abs() < 1e-12, "{:?} vs {want:?}", y.data());
        }
    }
}
