//! GELU (Hendrycks & Gimpel 2016): `x * Phi(x)`, the input weighted by the probability that a standard normal
//! falls below it; a smooth ReLU. The exact (erf) form, PyTorch's `nn.GELU()` default. airbench uses it.

use super::{Layer, Mode};
use crate::kernels::elementwise::{map, map2};
use crate::tensor::{Float, Tensor};
use crate::Result;

#[derive(Clone, Copy, Debug, Default)]
pub struct Gelu;

/// `erf` at the element type's precision (f32 training should not pay for f64's).
fn erf<T: Float>(v: T) -> T {
    if std::mem::size_of::<T>() == 4 {
        T::c(libm::erff(v.to_f64() as f32) as f64)
    } else {
        T::c(libm::erf(v.to_f64()))
    }
}

/// The standard normal's CDF, `Phi(x) = (1 + erf(x / sqrt 2)) / 2`.
fn phi_cdf<T: Float>(v: T) -> T {
    T::c(0.5) * (T::one() + erf(v * T::c(std::f64::consts::FRAC_1_SQRT_2)))
}

impl<T: Float> Layer<T> for Gelu {
    fn describe(&self) -> String {
        "gelu".into()
    }
    fn output_shape(&self, x: &[usize]) -> Result<Vec<usize>> {
        Ok(x.to_vec())
    }
    fn forward(&mut self, x: &Tensor<T>, _mode: Mode) -> Tensor<T> {
        let mut y = Tensor::uninit(x.shape());
        map(x.data(), y.data_mut(), |v| v * phi_cdf(v));
        y
    }
    /// `d/dx [x Phi(x)] = Phi(x) + x phi(x)`, with `phi` the normal density.
    fn backward(&mut self, x: &Tensor<T>, _y: &Tensor<T>, dy: &Tensor<T>) -> Tensor<T> {
        let mut dx = Tensor::uninit(x.shape());
        let k = T::c(1.0 / (2.0 * std::f64::consts::PI).sqrt());
        map2(x.data(), dy.data(), dx.data_mut(), |v, g| g * (phi_cdf(v) + v * k * (T::c(-0.5) * v * v).exp()));
        dx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::gradcheck::{check_layer, random_input, Options};

    #[test]
    fn gradcheck() {
        let rep = check_layer(&mut Gelu, &random_input(&[2, 3, 4, 5], 7), &Options::default());
        assert!(rep.judged_error() < 1e-6, "{rep}");
    }

    /// torch.nn.GELU()(torch.tensor([-3, -1, -0.5, 0, 0.5, 1, 3], dtype=torch.float64)).
    #[test]
    fn values_match_pytorch() {
        let x = Tensor::<f64>::from_vec(&[1, 7], vec![-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0]);
        let y = Layer::<f64>::forward(&mut Gelu, &x, Mode::Train);
        let want = [
            -0.00404969409489031,
            -0.15865525393145702,
            -0.15426876936299344,
            0.0,
            0.34573123063700656,
            0.841344746068543,
            2.99595030590511,
        ];
        for (a, b) in y.data().iter().zip(&want) {
            assert!((a - b).abs() < 1e-12, "{:?} vs {want:?}", y.data());
        }
        let y32 = Layer::<f32>::forward(&mut Gelu, &x.cast::<f32>(), Mode::Train);
        for (a, b) in y32.data().iter().zip(&want) {
            assert!((*a as f64 - b).abs() < 1e-6, "f32: {:?}", y32.data());
        }
    }
}
