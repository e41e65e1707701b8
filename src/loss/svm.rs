//! Multiclass SVM (hinge) loss, margin 1: `L_i = sum_{j != y} max(0, s_j - s_y + 1)`.

use super::{argmax, LossOutput};
use crate::tensor::{Float, Tensor};

pub fn multiclass_svm<T: Float>(scores: &Tensor<T>, labels: &[usize]) -> LossOutput<T> {
    let (b, c) = (scores.batch(), scores.len() / scores.batch().max(1));
    assert_eq!(labels.len(), b, "one label per row");
    let inv_b = T::one() / T::c(b as f64);
    let mut d = Tensor::zeros(scores.shape());
    let (mut loss, mut correct) = (T::zero(), 0);
    for ((row, drow), &y) in scores.data().chunks(c).zip(d.data_mut().chunks_mut(c)).zip(labels) {
        assert!(y < c, "label {y} out of range for {c} classes");
        for j in 0..c {
            if j == y {
                continue;
            }
            let margin = row[j] - row[y] + T::one();
            if margin > T::zero() {
                loss += margin;
                drow[j] += inv_b;
                drow[y] -= inv_b;
            }
        }
        correct += usize::from(argmax(row) == y);
    }
    LossOutput { loss: loss * inv_b, dscores: d, correct }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::gradcheck::check_loss;

    #[test]
    fn lecture_example() {
        // cs231n: cat 3.2 car 5.1 frog -1.7 with label cat -> max(0, 5.1-3.2+1) + max(0, -1.7-3.2+1) = 2.9
        let s = Tensor::<f64>::from_vec(&[1, 3], vec![3.2, 5.1, -1.7]);
        assert!((multiclass_svm(&s, &[0]).loss - 2.9).abs() < 1e-12);
    }

    #[test]
    fn gradcheck_away_from_the_hinge() {
        // Scores on a 0.37 grid: no margin lands within the finite-difference step of zero.
        let s = Tensor::<f64>::from_fn(&[6, 5], |i| ((i * 7 % 11) as f64) * 0.37 - 2.0);
        let err = check_loss(&s, &[0, 1, 2, 3, 4, 0], multiclass_svm);
        assert!(err < 1e-6, "{err}");
    }
}
