//! NORM: local response normalisation across channels (AlexNet, 2012), as PyTorch defines it:
//! `y_c = x_c / (k + alpha/n * sum_{c' in window(c)} x_c'^2)^beta`, window `[c - n/2, c + (n-1)/2]`.
//! AlexNet used n=5, alpha=1e-4, beta=0.75, k=2. Later work found it adds little; it is here for AlexNet.

use super::{Layer, Mode};
use crate::tensor::{Float, Tensor};
use crate::Result;
use rayon::prelude::*;

#[derive(Clone, Debug)]
pub struct LocalResponseNorm<T: Float> {
    pub size: usize,
    pub alpha: f64,
    pub beta: f64,
    pub k: f64,
    /// The denominator base `k + alpha/n * sum x^2` from the last forward.
    scale: Vec<T>,
}

impl<T: Float> LocalResponseNorm<T> {
    pub fn new(size: usize, alpha: f64, beta: f64, k: f64) -> Self {
        LocalResponseNorm { size, alpha, beta, k, scale: Vec::new() }
    }
    /// AlexNet's constants.
    pub fn alexnet() -> Self {
        Self::new(5, 1e-4, 0.75, 2.0)
    }
    fn window(&self, c: usize, channels: usize) -> (usize, usize) {
        (c.saturating_sub(self.size / 2), (c + (self.size - 1) / 2 + 1).min(channels))
    }
}

impl<T: Float> Layer<T> for LocalResponseNorm<T> {
    fn describe(&self) -> String {
        format!("norm(lrn {})", self.size)
    }
    fn output_shape(&self, x: &[usize]) -> Result<Vec<usize>> {
        super::expect_rank("norm", x, 4)?;
        Ok(x.to_vec())
    }
    fn forward(&mut self, x: &Tensor<T>, _mode: Mode) -> Tensor<T> {
        let (c, s) = (x.shape()[1], x.shape()[2] * x.shape()[3]);
        let (k, an, beta) = (T::c(self.k), T::c(self.alpha / self.size as f64), T::c(self.beta));
        self.scale.resize(x.len(), T::zero());
        let me = LocalResponseNorm::<T>::new(self.size, self.alpha, self.beta, self.k);
        let mut y = Tensor::uninit(x.shape());
        y.data_mut()
            .par_chunks_mut(c * s)
            .zip(self.scale.par_chunks_mut(c * s))
            .zip(x.data().par_chunks(c * s))
            .for_each(|((yi, si), xi)| {
                for ch in 0..c {
                    let (lo, hi) = me.window(ch, c);
                    for p in 0..s {
                        let sum: T = (lo..hi).map(|j| xi[j * s + p] * xi[j * s + p]).sum();
                        let sc = k + an * sum;
                        si[ch * s + p] = sc;
                        yi[ch * s + p] = xi[ch * s + p] * sc.powf(-beta);
                    }
                }
            });
        y
    }
    fn backward(&mut self, x: &Tensor<T>, _y: &Tensor<T>, dy: &Tensor<T>) -> Tensor<T> {
        let (c, s) = (x.shape()[1], x.shape()[2] * x.shape()[3]);
        let (an, beta) = (T::c(self.alpha / self.size as f64), T::c(self.beta));
        let size = self.size;
        let mut dx = Tensor::uninit(x.shape());
        dx.data_mut()
            .par_chunks_mut(c * s)
            .zip(self.scale.par_chunks(c * s))
            .zip(x.data().par_chunks(c * s))
            .zip(dy.data().par_chunks(c * s))
            .for_each(|(((dxi, si), xi), dyi)| {
                for j in 0..c {
                    // Channels c whose window contains j: j - (n-1)/2 <= c <= j + n/2.
                    let (lo, hi) = (j.saturating_sub((size - 1) / 2), (j + size / 2 + 1).min(c));
                    for p in 0..s {
                        let at = j * s + p;
                        let cross: T = (lo..hi)
                            .map(|cc| dyi[cc * s + p] * xi[cc * s + p] * si[cc * s + p].powf(-beta - T::one()))
                            .sum();
                        dxi[at] = dyi[at] * si[at].powf(-beta) - T::c(2.0) * an * beta * xi[at] * cross;
                    }
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
    fn forward_by_hand() {
        // One pixel, 3 channels, n=3: the middle channel's window is all three.
        let x = Tensor::<f64>::from_vec(&[1, 3, 1, 1], vec![1.0, 2.0, 3.0]);
        let mut lrn = LocalResponseNorm::new(3, 0.3, 0.75, 2.0);
        let y = lrn.forward(&x, Mode::Train);
        let want = 2.0 / (2.0 + 0.1 * 14.0f64).powf(0.75);
        assert!((y.data()[1] - want).abs() < 1e-12);
        // The first channel's window is channels 0 and 1.
        assert!((y.data()[0] - 1.0 / (2.0 + 0.1 * 5.0f64).powf(0.75)).abs() < 1e-12);
    }

    #[test]
    fn gradcheck() {
        for size in [5, 4] {
            // A large alpha makes the cross-channel terms matter.
            let mut lrn = LocalResponseNorm::<f64>::new(size, 0.5, 0.75, 1.0);
            let rep = check_layer(&mut lrn, &random_input(&[2, 7, 3, 3], 5), &Options::default());
            assert!(rep.judged_error() < 1e-6, "{rep}");
        }
    }
}
