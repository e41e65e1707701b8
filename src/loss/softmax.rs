//! Softmax cross-entropy: `L_i = -log(e^{s_y} / sum_j e^{s_j})`. At initialisation with small weights every class
//! is equally likely and the loss is `ln(C)` (2.303 for 10 classes): the lecture's first sanity check.

use super::{argmax, LossOutput};
use crate::tensor::{Float, Tensor};

pub fn softmax_cross_entropy<T: Float>(scores: &Tensor<T>, labels: &[usize]) -> LossOutput<T> {
    let (b, c) = (scores.batch(), scores.len() / scores.batch().max(1));
    assert_eq!(labels.len(), b, "one label per row");
    let inv_b = T::one() / T::c(b as f64);
    let mut d = Tensor::uninit(scores.shape());
    let (mut loss, mut correct) = (T::zero(), 0);
    for ((row, drow), &y) in scores.data().chunks(c).zip(d.data_mut().chunks_mut(c)).zip(labels) {
        assert!(y < c, "label {y} out of range for {c} classes");
        // Shift by the max for numerical stability.
        let m = row.iter().fold(T::neg_infinity(), |a, &v| a.max(v));
        let mut z = T::zero();
        for (o, &s) in drow.iter_mut().zip(row) {
            *o = (s - m).exp();
            z += *o;
        }
        loss += z.ln() - (row[y] - m);
        for o in drow.iter_mut() {
            *o = *o / z * inv_b;
        }
        drow[y] -= inv_b;
        correct += usize::from(argmax(row) == y);
    }
    LossOutput { loss: loss * inv_b, dscores: d, correct }
}

/// Adds the softmax probabilities of one row of scores to `out` (in f64; `out` is not cleared, so views can be
/// summed into it without a buffer per row).
pub fn add_softmax(row: &[f32], out: &mut [f64]) {
    let m = row.iter().fold(f32::NEG_INFINITY, |a, &s| a.max(s));
    let mut z = 0f64;
    for &s in row {
        z += ((s - m) as f64).exp();
    }
    for (o, &s) in out.iter_mut().zip(row) {
        *o += ((s - m) as f64).exp() / z;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::gradcheck::check_loss;

    #[test]
    fn probabilities_agree_with_the_loss() {
        let s = Tensor::<f32>::from_vec(&[1, 4], vec![2.0, -1.0, 0.5, 30.0]);
        let mut p = [1.0f64; 4];
        add_softmax(s.data(), &mut p);
        assert!((p.iter().sum::<f64>() - 5.0).abs() < 1e-12, "adds, summing to one: {p:?}");
        let loss = softmax_cross_entropy(&s, &[2]).loss as f64;
        assert!((-(p[2] - 1.0).ln() - loss).abs() < 1e-4 * loss, "{p:?} vs {loss}");
    }

    #[test]
    fn uniform_scores_give_ln_c() {
        let s = Tensor::<f64>::zeros(&[4, 10]);
        let out = softmax_cross_entropy(&s, &[0, 3, 9, 1]);
        assert!((out.loss - 10f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn value_by_hand_and_gradcheck() {
        let s = Tensor::<f64>::from_vec(&[1, 3], vec![3.2, 5.1, -1.7]); // the lecture's cat scores
        let out = softmax_cross_entropy(&s, &[0]);
        assert!((out.loss - 2.0404).abs() < 1e-3, "{}", out.loss);
        let s = Tensor::<f64>::from_fn(&[5, 4], |i| ((i * 13 % 7) as f64 - 3.0) * 0.7);
        let err = check_loss(&s, &[0, 1, 2, 3, 1], softmax_cross_entropy);
        assert!(err < 1e-6, "{err}");
    }
}
