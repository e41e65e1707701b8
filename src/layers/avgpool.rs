//! AVG POOL: the mean over each window (padding counts as zeros in the mean, PyTorch's default).

use super::maxpool::check_pool;
use super::{Layer, Mode};
use crate::tensor::{Float, Tensor};
use crate::Result;
use rayon::prelude::*;

#[derive(Clone, Debug)]
pub struct AvgPool2d {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

impl AvgPool2d {
    pub fn new(kernel: usize, stride: usize) -> Self {
        AvgPool2d { kernel, stride, padding: 0 }
    }
    pub fn padding(mut self, p: usize) -> Self {
        self.padding = p;
        self
    }

    /// Calls `f(output index, input index)` for every (output, input) pair of a plane.
    fn windows(&self, h: usize, w: usize, ho: usize, wo: usize, mut f: impl FnMut(usize, usize)) {
        let (k, s, p) = (self.kernel as isize, self.stride as isize, self.padding as isize);
        for oh in 0..ho {
            for ow in 0..wo {
                let (h0, w0) = (oh as isize * s - p, ow as isize * s - p);
                for ih in h0.max(0)..(h0 + k).min(h as isize) {
                    for iw in w0.max(0)..(w0 + k).min(w as isize) {
                        f(oh * wo + ow, ih as usize * w + iw as usize);
                    }
                }
            }
        }
    }
}

impl<T: Float> Layer<T> for AvgPool2d {
    fn describe(&self) -> String {
        format!("avgpool{k}x{k}/{}", self.stride, k = self.kernel)
    }
    fn output_shape(&self, x: &[usize]) -> Result<Vec<usize>> {
        check_pool("avgpool", x, self.kernel, self.stride, self.padding, false)
    }
    fn forward(&mut self, x: &Tensor<T>, _mode: Mode) -> Tensor<T> {
        let os = <Self as Layer<T>>::output_shape(self, x.shape()).expect("avgpool input shape");
        let (h, w, ho, wo) = (x.shape()[2], x.shape()[3], os[2], os[3]);
        let scale = T::one() / T::c((self.kernel * self.kernel) as f64);
        // Zeroed plane by plane inside the tasks, as maxpool's backward does: in parallel and while in cache.
        let mut y = Tensor::uninit(&os);
        let me = &*self;
        y.data_mut().par_chunks_mut(ho * wo).zip(x.data().par_chunks(h * w)).for_each(|(yp, xp)| {
            yp.fill(T::zero());
            me.windows(h, w, ho, wo, |o, i| yp[o] += xp[i] * scale);
        });
        y
    }
    fn backward(&mut self, x: &Tensor<T>, y: &Tensor<T>, dy: &Tensor<T>) -> Tensor<T> {
        let (h, w, ho, wo) = (x.shape()[2], x.shape()[3], y.shape()[2], y.shape()[3]);
        let scale = T::one() / T::c((self.kernel * self.kernel) as f64);
        let mut dx = Tensor::uninit(x.shape());
        let me = &*self;
        dx.data_mut().par_chunks_mut(h * w).zip(dy.data().par_chunks(ho * wo)).for_each(|(dxp, dyp)| {
            dxp.fill(T::zero());
            me.windows(h, w, ho, wo, |o, i| dxp[i] += dyp[o] * scale);
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
        let x = Tensor::<f64>::from_fn(&[1, 1, 2, 2], |i| i as f64);
        assert_eq!(AvgPool2d::new(2, 2).forward(&x, Mode::Train).data(), &[1.5]);
        // Padded 3x3 window at the corner sees 4 real pixels out of 9.
        let y = AvgPool2d::new(3, 1).padding(1).forward(&x, Mode::Train);
        assert!((y.data()[0] - 6.0 / 9.0).abs() < 1e-15);
    }

    #[test]
    fn gradcheck() {
        let mut pool = AvgPool2d::new(3, 2).padding(1);
        let rep = check_layer(&mut pool, &random_input(&[2, 2, 5, 6], 1), &Options::default());
        assert!(rep.judged_error() < 1e-6, "{rep}");
    }

    /// Output and input gradient come from the buffer pool unzeroed; stale NaN buffers of their sizes wait there.
    #[test]
    fn clears_reused_buffers() {
        let x = random_input(&[2, 3, 64, 64], 7);
        let mut pool = AvgPool2d::new(2, 2);
        for n in [x.len(), x.len() / 4] {
            f64::pool().give(vec![f64::NAN; n]);
        }
        let y = pool.forward(&x, Mode::Train);
        let dx = pool.backward(&x, &y, &Tensor::full(y.shape(), 1.0));
        assert!(y.data().iter().chain(dx.data()).all(|v| v.is_finite()), "stale values left");
        assert!((dx.data().iter().sum::<f64>() - y.len() as f64).abs() < 1e-9);
    }
}
