//! Zero padding with its own amount on each side. TensorFlow's "same" padding for a stride-2 convolution on an
//! even-sized input pads one row and column at the bottom and right only (Keras' `ZeroPadding2D(((0, 1), (0, 1)))`),
//! which a convolution's symmetric padding cannot express. Backward crops the gradient back.

use super::{expect_rank, Layer, Mode};
use crate::tensor::{Float, Tensor};
use crate::Result;
use rayon::prelude::*;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZeroPad2d {
    pub top: usize,
    pub bottom: usize,
    pub left: usize,
    pub right: usize,
}

impl ZeroPad2d {
    /// Keras' `correct_pad` for a stride-2 3x3 convolution on even sides: one row below, one column right.
    pub fn bottom_right() -> Self {
        ZeroPad2d { top: 0, bottom: 1, left: 0, right: 1 }
    }
}

impl<T: Float> Layer<T> for ZeroPad2d {
    fn describe(&self) -> String {
        format!("zeropad(t{} b{} l{} r{})", self.top, self.bottom, self.left, self.right)
    }
    fn output_shape(&self, x: &[usize]) -> Result<Vec<usize>> {
        expect_rank("zeropad", x, 4)?;
        Ok(vec![x[0], x[1], x[2] + self.top + self.bottom, x[3] + self.left + self.right])
    }
    fn forward(&mut self, x: &Tensor<T>, _mode: Mode) -> Tensor<T> {
        let s = x.shape();
        let (h, w) = (s[2], s[3]);
        let (ph, pw) = (h + self.top + self.bottom, w + self.left + self.right);
        let mut y = Tensor::uninit(&[s[0], s[1], ph, pw]);
        let (top, left) = (self.top, self.left);
        y.data_mut().par_chunks_mut(ph * pw).zip(x.data().par_chunks(h * w)).for_each(|(dst, src)| {
            // Zero only the border rows and columns; the interior is copied over.
            dst[..top * pw].fill(T::zero());
            dst[(top + h) * pw..].fill(T::zero());
            for r in 0..h {
                let row = &mut dst[(r + top) * pw..][..pw];
                row[..left].fill(T::zero());
                row[left..left + w].copy_from_slice(&src[r * w..][..w]);
                row[left + w..].fill(T::zero());
            }
        });
        y
    }
    fn backward(&mut self, x: &Tensor<T>, _y: &Tensor<T>, dy: &Tensor<T>) -> Tensor<T> {
        let s = x.shape();
        let (h, w) = (s[2], s[3]);
        let pw = w + self.left + self.right;
        let ph = h + self.top + self.bottom;
        let mut dx = Tensor::uninit(s);
        let (top, left) = (self.top, self.left);
        dx.data_mut().par_chunks_mut(h * w).zip(dy.data().par_chunks(ph * pw)).for_each(|(dst, src)| {
            for r in 0..h {
                dst[r * w..][..w].copy_from_slice(&src[(r + top) * pw + left..][..w]);
            }
        });
        dx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::gradcheck::{check_layer, random_input, Options};

    #[test]
    fn pads_bottom_right_and_gradchecks() {
        let x = Tensor::<f64>::from_vec(&[1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]);
        let y = ZeroPad2d::bottom_right().forward(&x, Mode::Train);
        assert_eq!(y.shape(), &[1, 1, 3, 3]);
        assert_eq!(y.data(), &[1.0, 2.0, 0.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0]);
        let mut pad = ZeroPad2d { top: 2, bottom: 1, left: 0, right: 3 };
        let rep = check_layer(&mut pad, &random_input(&[2, 3, 4, 5], 1), &Options::default());
        assert!(rep.judged_error() < 1e-8, "{rep}");
    }
}
