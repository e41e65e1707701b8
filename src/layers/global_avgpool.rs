//! Global average pooling: `[B, C, H, W] -> [B, C]`, the mean of each feature map (GoogLeNet, ResNet heads).

use super::{expect_rank, Infer, Layer, Mode};
use crate::tensor::{Float, Tensor};
use crate::Result;

#[derive(Clone, Copy, Debug, Default)]
pub struct GlobalAvgPool;

/// The same in every mode.
impl<T: Float> Infer<T> for GlobalAvgPool {
    fn infer(&self, x: &Tensor<T>) -> Tensor<T> {
        let hw = x.shape()[2] * x.shape()[3];
        let inv = T::one() / T::c(hw as f64);
        let v: Vec<T> = x.data().chunks(hw).map(|p| p.iter().copied().sum::<T>() * inv).collect();
        Tensor::from_vec(&[x.shape()[0], x.shape()[1]], v)
    }
}

impl<T: Float> Layer<T> for GlobalAvgPool {
    fn describe(&self) -> String {
        "global avgpool".into()
    }
    fn output_shape(&self, x: &[usize]) -> Result<Vec<usize>> {
        expect_rank("global avgpool", x, 4)?;
        Ok(vec![x[0], x[1]])
    }
    fn forward(&mut self, x: &Tensor<T>, _mode: Mode) -> Tensor<T> {
        self.infer(x)
    }
    fn as_infer(&self) -> Option<&dyn Infer<T>> {
        Some(self)
    }
    fn backward(&mut self, x: &Tensor<T>, _y: &Tensor<T>, dy: &Tensor<T>) -> Tensor<T> {
        let hw = x.shape()[2] * x.shape()[3];
        let inv = T::one() / T::c(hw as f64);
        let mut dx = Tensor::uninit(x.shape());
        for (p, &d) in dx.data_mut().chunks_mut(hw).zip(dy.data()) {
            p.fill(d * inv);
        }
        dx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::gradcheck::{check_layer, random_input, Options};

    #[test]
    fn gradcheck_and_value() {
        let x = Tensor::<f64>::from_fn(&[1, 2, 2, 2], |i| i as f64);
        assert_eq!(GlobalAvgPool.forward(&x, Mode::Train).data(), &[1.5, 5.5]);
        let rep = check_layer(&mut GlobalAvgPool, &random_input(&[3, 4, 3, 5], 2), &Options::default());
        assert!(rep.judged_error() < 1e-6, "{rep}");
    }
}
