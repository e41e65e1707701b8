//! MAXOUT (Goodfellow et al. 2013): the maximum of `k` linear pieces. Put after a conv or linear layer with
//! `k * C` outputs; output channel `c` is `max_j x[c*k + j]`. Generalises ReLU and Leaky ReLU, at k times the
//! parameters.

use super::{Layer, Mode};
use crate::tensor::{bcs, Float, Tensor};
use crate::{Error, Result};

#[derive(Clone, Debug)]
pub struct Maxout {
    pub pieces: usize,
    argmax: Vec<u32>,
}

impl Maxout {
    pub fn new(pieces: usize) -> Self {
        Maxout { pieces, argmax: Vec::new() }
    }
}

impl<T: Float> Layer<T> for Maxout {
    fn describe(&self) -> String {
        format!("maxout(k={})", self.pieces)
    }
    fn output_shape(&self, x: &[usize]) -> Result<Vec<usize>> {
        if x.len() < 2 || self.pieces == 0 || x[1] % self.pieces != 0 {
            return Err(Error::Shape(format!(
                "maxout with {} pieces needs channels divisible by it, got {x:?}",
                self.pieces
            )));
        }
        let mut s = x.to_vec();
        s[1] /= self.pieces;
        Ok(s)
    }
    fn forward(&mut self, x: &Tensor<T>, _mode: Mode) -> Tensor<T> {
        let os = <Self as Layer<T>>::output_shape(self, x.shape()).expect("maxout input shape");
        let (b, c, s) = bcs(&os);
        let k = self.pieces;
        let mut y = Tensor::uninit(&os);
        self.argmax.resize(y.len(), 0);
        for i in 0..b {
            for ch in 0..c {
                for p in 0..s {
                    let o = (i * c + ch) * s + p;
                    let (mut best, mut bi) = (T::neg_infinity(), 0);
                    for j in 0..k {
                        let at = (i * c * k + ch * k + j) * s + p;
                        if x.data()[at] > best {
                            best = x.data()[at];
                            bi = at;
                        }
                    }
                    y.data_mut()[o] = best;
                    self.argmax[o] = bi as u32;
                }
            }
        }
        y
    }
    fn backward(&mut self, x: &Tensor<T>, _y: &Tensor<T>, dy: &Tensor<T>) -> Tensor<T> {
        let mut dx = Tensor::zeros(x.shape());
        for (&i, &d) in self.argmax.iter().zip(dy.data()) {
            dx.data_mut()[i as usize] += d;
        }
        dx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::gradcheck::{check_layer, random_input, Options};

    #[test]
    fn forward_by_hand() {
        let x = Tensor::<f64>::from_vec(&[1, 4], vec![1.0, -3.0, 0.5, 2.0]);
        assert_eq!(Maxout::new(2).forward(&x, Mode::Train).data(), &[1.0, 2.0]);
    }

    #[test]
    fn gradcheck_1d_and_2d() {
        for shape in [vec![3, 6], vec![2, 6, 3, 3]] {
            let mut m = Maxout::new(3);
            let rep = check_layer(&mut m, &random_input(&shape, 8), &Options::default());
            assert!(rep.judged_error() < 1e-6, "{rep}");
            assert_eq!(rep.kinks_skipped(), 0);
        }
    }
}
