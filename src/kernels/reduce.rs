//! Sums over a plane in independent lanes (batch norm's backward behind a ReLU6, a depthwise kernel's weight
//! gradient and bias).
//!
//! A single running float sum is one dependency chain that the compiler may not reorder (float addition is not
//! associative), so it retires one add per add-latency and never vectorises. Sixteen accumulators let it do both.
//! The result differs from the sequential sum only by rounding, and is the same on every run and thread count.

use crate::tensor::Float;

const LANES: usize = 16;

/// `sum_i f(a_i, b_i, ...)` for `K` equal-length slices and `M` sums at once: `f` maps one element of each slice to
/// its `M` terms.
#[inline(always)]
pub fn sums<T: Float, const K: usize, const M: usize>(xs: [&[T]; K], f: impl Fn([T; K]) -> [T; M]) -> [T; M] {
    let n = xs[0].len();
    assert!(xs.iter().all(|x| x.len() == n), "lane sums over slices of different lengths");
    let mut acc = [[T::zero(); LANES]; M];
    let full = n - n % LANES;
    for start in (0..full).step_by(LANES) {
        let chunk: [&[T; LANES]; K] = std::array::from_fn(|k| xs[k][start..start + LANES].try_into().unwrap());
        for l in 0..LANES {
            let terms = f(std::array::from_fn(|k| chunk[k][l]));
            for m in 0..M {
                acc[m][l] += terms[m];
            }
        }
    }
    let mut out = [T::zero(); M];
    for i in full..n {
        let terms = f(std::array::from_fn(|k| xs[k][i]));
        for m in 0..M {
            out[m] += terms[m];
        }
    }
    for m in 0..M {
        out[m] += fold_lanes(acc[m]);
    }
    out
}

/// `sum_i a_i * b_i`
#[inline(always)]
pub fn dot<T: Float>(a: &[T], b: &[T]) -> T {
    sums([a, b], |[x, y]| [x * y])[0]
}

/// `sum_i a_i`
#[inline(always)]
pub fn sum<T: Float>(a: &[T]) -> T {
    sums([a], |[x]| [x])[0]
}

/// Pairwise, so the lanes' order is fixed.
#[inline(always)]
fn fold_lanes<T: Float>(mut a: [T; LANES]) -> T {
    let mut width = LANES / 2;
    while width > 0 {
        for l in 0..width {
            a[l] = a[l] + a[l + width];
        }
        width /= 2;
    }
    a[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_sequential_sums_for_every_length() {
        for n in [0, 1, 15, 16, 17, 100, 333] {
            let a: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
            let b: Vec<f64> = (0..n).map(|i| (i as f64 * 0.11).cos()).collect();
            let close = |x: f64, y: f64| (x - y).abs() < 1e-12;
            assert!(close(sum(&a), a.iter().sum()), "sum, n={n}");
            assert!(close(dot(&a, &b), a.iter().zip(&b).map(|(x, y)| x * y).sum()), "dot, n={n}");
            let [s1, s2] = sums([&a], |[x]| [x - 1.0, (x - 1.0) * (x - 1.0)]);
            assert!(close(s1, a.iter().map(|x| x - 1.0).sum()) && close(s2, a.iter().map(|x| (x - 1.0).powi(2)).sum()));
        }
    }
}
