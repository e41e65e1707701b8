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

/// Softmax cross-entropy against soft targets (`[B, C]`, rows summing to one; mixup, cutmix, label smoothing):
/// `L_i = -sum_j t_ij log p_ij`, gradient `(p - t) / B`. `labels` (the dominant class of each row) count the
/// correct predictions.
pub fn softmax_cross_entropy_soft<T: Float>(
    scores: &Tensor<T>,
    targets: &Tensor<T>,
    labels: &[usize],
) -> LossOutput<T> {
    let (b, c) = (scores.batch(), scores.len() / scores.batch().max(1));
    assert_eq!(targets.shape(), &[b, c][..], "one target row per score row");
    let inv_b = T::one() / T::c(b as f64);
    let mut d = Tensor::uninit(scores.shape());
    let (mut loss, mut correct) = (T::zero(), 0);
    for (((row, drow), t), &y) in
        scores.data().chunks(c).zip(d.data_mut().chunks_mut(c)).zip(targets.data().chunks(c)).zip(labels)
    {
        let m = row.iter().fold(T::neg_infinity(), |a, &v| a.max(v));
        let mut z = T::zero();
        for (o, &s) in drow.iter_mut().zip(row) {
            *o = (s - m).exp();
            z += *o;
        }
        let log_z = z.ln();
        for ((o, &s), &tj) in drow.iter_mut().zip(row).zip(t) {
            loss += tj * (log_z - (s - m));
            *o = (*o / z - tj) * inv_b;
        }
        correct += usize::from(argmax(row) == y);
    }
    LossOutput { loss: loss * inv_b, dscores: d, correct }
}

/// Label smoothing (Szegedy et al. 2016): the one-hot target `y` becomes `(1 - eps) y + eps / C`; applied to soft
/// targets alike.
pub fn smooth<T: Float>(targets: &mut Tensor<T>, eps: f64) {
    let c = targets.len() / targets.batch().max(1);
    let (keep, add) = (T::c(1.0 - eps), T::c(eps / c as f64));
    targets.data_mut().iter_mut().for_each(|t| *t = keep * *t + add);
}

/// One-hot rows for `labels`.
pub fn one_hot<T: Float>(labels: &[usize], classes: usize) -> Tensor<T> {
    let mut t = Tensor::zeros(&[labels.len(), classes]);
    for (row, &y) in t.data_mut().chunks_mut(classes).zip(labels) {
        row[y] = T::one();
    }
    t
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
    fn soft_targets_mix_the_hard_losses_and_label_smoothing_follows_its_formula() {
        let s = Tensor::<f64>::from_vec(&[2, 3], vec![1.0, -2.0, 0.5, 0.3, 0.2, 3.0]);
        let hard = |labels: &[usize]| softmax_cross_entropy(&s, labels);
        // Mixup's loss is the mix of the two cross-entropies (per row: 0.3 of class 0 and 0.7 of class 2, ...).
        let t = Tensor::from_vec(&[2, 3], vec![0.3, 0.0, 0.7, 0.0, 1.0, 0.0]);
        let soft = softmax_cross_entropy_soft(&s, &t, &[2, 1]);
        let row = |i: usize, y: usize| {
            let r = &s.data()[i * 3..][..3];
            let z: f64 = r.iter().map(|v| v.exp()).sum();
            z.ln() - r[y]
        };
        let want = (0.3 * row(0, 0) + 0.7 * row(0, 2) + row(1, 1)) / 2.0;
        assert!((soft.loss - want).abs() < 1e-12);
        // One-hot targets give the hard loss and gradient exactly.
        let h = hard(&[2, 1]);
        let o = softmax_cross_entropy_soft(&s, &one_hot(&[2, 1], 3), &[2, 1]);
        assert!((o.loss - h.loss).abs() < 1e-12);
        assert!(o.dscores.data().iter().zip(h.dscores.data()).all(|(a, b)| (a - b).abs() < 1e-12));
        // Smoothing with eps: (1 - eps) * CE(y) + eps * mean_j CE(j).
        let mut sm = one_hot::<f64>(&[2, 1], 3);
        smooth(&mut sm, 0.1);
        let got = softmax_cross_entropy_soft(&s, &sm, &[2, 1]).loss;
        let want =
            (0..2).map(|i| 0.9 * row(i, [2, 1][i]) + 0.1 * (0..3).map(|j| row(i, j)).sum::<f64>() / 3.0).sum::<f64>()
                / 2.0;
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        // And its gradient against finite differences.
        let err = check_loss(&s, &[2, 1], |x, l| softmax_cross_entropy_soft(x, &sm, l));
        assert!(err < 1e-7, "relative error {err}");
    }

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
