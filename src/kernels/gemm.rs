//! Matrix multiply through the pure-Rust `gemm` crate (f32 and f64, any strides).

use crate::tensor::Float;

/// A matrix view: a slice with row and column strides, so transposes cost nothing.
#[derive(Clone, Copy)]
pub struct Mat<'a, T> {
    pub data: &'a [T],
    pub rows: usize,
    pub cols: usize,
    pub rs: isize,
    pub cs: isize,
}

impl<'a, T> Mat<'a, T> {
    /// A row-major `rows x cols` matrix.
    pub fn new(data: &'a [T], rows: usize, cols: usize) -> Self {
        debug_assert!(data.len() >= rows * cols);
        Mat { data, rows, cols, rs: cols as isize, cs: 1 }
    }
    /// The transpose, as a view.
    pub fn t(self) -> Self {
        Mat { data: self.data, rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs }
    }
}

/// `c = a * b` (or `c += a * b` when `accumulate`), `c` row-major `a.rows x b.cols`.
/// `threads > 1` lets the GEMM split itself; the conv layers instead split the batch and pass 1.
pub fn matmul<T: Float>(a: Mat<T>, b: Mat<T>, c: &mut [T], accumulate: bool, threads: usize) {
    let n = b.cols;
    matmul_strided(a, b, c, n as isize, 1, accumulate, threads)
}

/// `matmul` into a destination with its own strides (`c_rs = 1, c_cs = rows` writes the transpose).
/// The `gemm` crate skips packing an operand that is already contiguous along its inner loop, so the choice of
/// destination layout decides which operand gets copied: the conv layers pick the one that spares the big one.
pub fn matmul_strided<T: Float>(
    a: Mat<T>,
    b: Mat<T>,
    c: &mut [T],
    c_rs: isize,
    c_cs: isize,
    accumulate: bool,
    threads: usize,
) {
    assert_eq!(a.cols, b.rows, "matmul inner dimensions differ");
    let (m, n, k) = (a.rows, b.cols, a.cols);
    assert!(c_rs > 0 && c_cs > 0 && c.len() as isize >= (m as isize - 1) * c_rs + (n as isize - 1) * c_cs + 1);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    c[i * c_rs as usize + j * c_cs as usize] = T::zero();
                }
            }
        }
        return;
    }
    let par = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    // SAFETY: the asserts above bound every index the strides reach; `gemm` only supports f32/f64 here,
    // which is what `Float` is implemented for.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            c_cs,
            c_rs,
            accumulate,
            a.data.as_ptr(),
            a.cs,
            a.rs,
            b.data.as_ptr(),
            b.cs,
            b.rs,
            T::one(),
            T::one(),
            false,
            false,
            false,
            par,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    #[test]
    fn matches_naive_with_transposes() {
        let (m, k, n) = (7, 13, 5);
        let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.11).cos()).collect();
        let want = naive(&a, &b, m, k, n);
        let mut c = vec![0.0; m * n];
        matmul(Mat::new(&a, m, k), Mat::new(&b, k, n), &mut c, false, 1);
        for (x, y) in c.iter().zip(&want) {
            assert!((x - y).abs() < 1e-12);
        }
        // (b^T a^T)^T = a b: exercise transposed views.
        let at: Vec<f64> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
        let mut c2 = vec![1.0; m * n];
        matmul(Mat::new(&at, k, m).t(), Mat::new(&b, k, n), &mut c2, true, 2);
        for (x, y) in c2.iter().zip(&want) {
            assert!((x - 1.0 - y).abs() < 1e-12);
        }
        // Column-major destination: c3[j*m + i] = (ab)[i][j].
        let mut c3 = vec![0.0; m * n];
        matmul_strided(Mat::new(&a, m, k), Mat::new(&b, k, n), &mut c3, 1, m as isize, false, 1);
        for i in 0..m {
            for j in 0..n {
                assert!((c3[j * m + i] - want[i * n + j]).abs() < 1e-12);
            }
        }
    }
}
