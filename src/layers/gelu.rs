//! GELU (Hendrycks & Gimpel 2016): `x * Phi(x)`, the input weighted by the probability that a standard normal
//! falls below it; a smooth ReLU. The exact (erf) form, PyTorch's `nn.GELU()` default. airbench uses it.
//! In f32 (training) `erf` and `exp` are branch-free approximations that the compiler vectorises, within 5e-7 of
//! libm's (libm's scalar calls took 14% of an airbench training step); f64 (gradient checks) uses libm.

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

/// erf for f32: XLA's / Eigen's rational approximation on [-4, 4] (erf is +-1 in f32 beyond), within 5e-7 in f32.
#[inline(always)]
fn erf_f32(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10_f32;
    for c in [2.770_681_4e-8, -2.101_024e-6, -5.692_506_4e-5, -7.349_906_3e-4, -2.954_600e-3, -1.609_603_3e-2] {
        p = p * x2 + c;
    }
    let mut q = -1.456_607_2e-5_f32;
    for c in [-2.133_740_6e-4, -1.682_827e-3, -7.373_329e-3, -1.426_474e-2] {
        q = q * x2 + c;
    }
    x * p / q
}

/// `e^y` for f32 `y <= 0`: `e^y = 2^n e^r` with `n = round(y / ln 2)` (built in the exponent bits) and
/// `r = y - n ln 2` in [-0.35, 0.35] (Cody and Waite's two-part ln 2 keeps `r` exact), `e^r` by a degree-6 Taylor
/// polynomial. Relative error 3e-7 down to e^-87; below that it stays near 2^-126.
#[inline(always)]
fn exp_neg_f32(y: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Round to nearest by adding and removing 1.5 * 2^23 (plain adds vectorise; `round` is a libm call).
    const MAGIC: f32 = 12_582_912.0;
    let y = y.max(-87.3);
    let shifted = (y * std::f32::consts::LOG2_E).max(-126.0) + MAGIC;
    let n = shifted - MAGIC;
    let r = (y - n * LN2_HI) - n * LN2_LO;
    let mut p = 1.0 / 720.0_f32;
    for c in [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = p * r + c;
    }
    // `shifted`'s low mantissa bits hold n itself (its last place is 1): integer arithmetic on them gives 2^n's
    // exponent bits. `n as i32` would do too, but its saturation check kept the loop from vectorising (2x slower).
    let exponent = shifted.to_bits().wrapping_sub(MAGIC.to_bits()).wrapping_add(127);
    f32::from_bits(exponent << 23) * p
}

const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

fn forward_f32(x: &[f32], y: &mut [f32]) {
    map(x, y, |v| 0.5 * v * (1.0 + erf_f32(v * std::f32::consts::FRAC_1_SQRT_2)));
}

fn backward_f32(x: &[f32], dy: &[f32], dx: &mut [f32]) {
    // A constant, not a captured variable: read through a reference, the compiler could not rule out that the
    // output aliases it, and left the loop scalar (12 ns per element instead of ~1.5).
    const K: f32 = FRAC_1_SQRT_2PI as f32;
    map2(x, dy, dx, |v, g| {
        let cdf = 0.5 * (1.0 + erf_f32(v * std::f32::consts::FRAC_1_SQRT_2));
        g * (cdf + v * K * exp_neg_f32(-0.5 * v * v))
    });
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
        match (T::as_f32(x.data()), T::as_f32_mut(y.data_mut())) {
            (Some(xs), Some(ys)) => forward_f32(xs, ys),
            _ => map(x.data(), y.data_mut(), |v| v * phi_cdf(v)),
        }
        y
    }
    /// `d/dx [x Phi(x)] = Phi(x) + x phi(x)`, with `phi` the normal density.
    fn backward(&mut self, x: &Tensor<T>, _y: &Tensor<T>, dy: &Tensor<T>) -> Tensor<T> {
        let mut dx = Tensor::uninit(x.shape());
        if let (Some(xs), Some(gs), Some(out)) =
            (T::as_f32(x.data()), T::as_f32(dy.data()), T::as_f32_mut(dx.data_mut()))
        {
            backward_f32(xs, gs, out);
            return dx;
        }
        let k = T::c(FRAC_1_SQRT_2PI);
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

    #[test]
    fn f32_approximations_are_close_to_libm() {
        for i in -9000..=9000 {
            let v = i as f32 / 1000.0;
            let (e, want) = (erf_f32(v) as f64, libm::erf(v as f64));
            assert!((e - want).abs() < 5e-7, "erf({v}) = {e}, libm {want}");
            let y = v * 10.0;
            if (-87.0..=0.0).contains(&y) {
                let (x, want) = (exp_neg_f32(y) as f64, libm::exp(y as f64));
                assert!((x - want).abs() <= 3e-7 * want, "exp({y}) = {x}, libm {want}");
            }
        }
        assert!(exp_neg_f32(-200.0) < 1e-37);
    }

    #[test]
    fn f32_backward_agrees_with_the_f64_formula() {
        let x = random_input(&[2, 3, 4, 5], 9).map(|v| v * 3.0);
        let dy = random_input(&[2, 3, 4, 5], 10);
        let want = Layer::<f64>::backward(&mut Gelu, &x, &x, &dy);
        let got = Layer::<f32>::backward(&mut Gelu, &x.cast(), &x.cast(), &dy.cast());
        for (g, w) in got.data().iter().zip(want.data()) {
            assert!((*g as f64 - w).abs() < 1e-6, "{g} vs {w}");
        }
    }
}
