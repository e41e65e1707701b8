//! Batch-level mixing with soft labels. Mixup (Zhang et al. 2018): `x = l x_i + (1 - l) x_j`, target
//! `l y_i + (1 - l) y_j`, `l ~ Beta(alpha, alpha)`. CutMix (Yun et al. 2019): a box of `x_j` pasted into `x_i`,
//! the target mixed by the box's share of the area. `j` is a random pairing within the batch. With both on, each
//! batch uses one of them, chosen with probability 1/2 (as timm does). The soft-label loss is
//! `loss::softmax_cross_entropy_soft`.

use crate::tensor::Tensor;
use rand::seq::SliceRandom;
use rand::Rng;
use rand_distr::{Beta, Distribution};

/// Mixes a batch `x` (`[B, C, H, W]`) in place and returns the targets, `[B, classes]`.
pub fn mix(
    x: &mut Tensor<f32>,
    labels: &[usize],
    classes: usize,
    mixup: Option<f64>,
    cutmix: Option<f64>,
    rng: &mut impl Rng,
) -> Tensor<f32> {
    let b = labels.len();
    let mut pair: Vec<usize> = (0..b).collect();
    pair.shuffle(rng);
    let use_cutmix = match (mixup, cutmix) {
        (Some(_), Some(_)) => rng.random::<bool>(),
        (None, Some(_)) => true,
        _ => false,
    };
    let alpha = if use_cutmix { cutmix } else { mixup }.unwrap_or(1.0);
    let lam = Beta::new(alpha, alpha).map_or(1.0, |d| d.sample(rng));
    let lam = if use_cutmix { cut(x, &pair, lam, rng) } else { blend(x, &pair, lam) };
    let mut t = Tensor::zeros(&[b, classes]);
    for (i, row) in t.data_mut().chunks_mut(classes).enumerate() {
        row[labels[i]] += lam as f32;
        row[labels[pair[i]]] += (1.0 - lam) as f32;
    }
    t
}

fn blend(x: &mut Tensor<f32>, pair: &[usize], lam: f64) -> f64 {
    let n = x.len() / pair.len();
    let src = x.data().to_vec();
    let l = lam as f32;
    for (i, row) in x.data_mut().chunks_mut(n).enumerate() {
        for (o, &s) in row.iter_mut().zip(&src[pair[i] * n..][..n]) {
            *o = l * *o + (1.0 - l) * s;
        }
    }
    lam
}

/// Pastes a box of `1 - lam` of the area (clipped at the edges) from each pair; returns the share kept.
fn cut(x: &mut Tensor<f32>, pair: &[usize], lam: f64, rng: &mut impl Rng) -> f64 {
    let s = x.shape().to_vec();
    let (c, h, w) = (s[1], s[2], s[3]);
    let r = (1.0 - lam).sqrt();
    let (bh, bw) = ((h as f64 * r) as usize, (w as f64 * r) as usize);
    let (cy, cx) = (rng.random_range(0..h), rng.random_range(0..w));
    let (y0, y1) = (cy.saturating_sub(bh / 2), (cy + bh / 2).min(h));
    let (x0, x1) = (cx.saturating_sub(bw / 2), (cx + bw / 2).min(w));
    let src = x.data().to_vec();
    let n = c * h * w;
    for (i, img) in x.data_mut().chunks_mut(n).enumerate() {
        for ch in 0..c {
            for y in y0..y1 {
                let at = (ch * h + y) * w;
                img[at + x0..at + x1].copy_from_slice(&src[pair[i] * n + at + x0..pair[i] * n + at + x1]);
            }
        }
    }
    1.0 - ((y1 - y0) * (x1 - x0)) as f64 / (h * w) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::rng;

    #[test]
    fn targets_sum_to_one_and_match_the_mix() {
        let x0 = Tensor::from_vec(&[4, 1, 2, 2], (0..16).map(|v| v as f32).collect());
        let labels = [0, 1, 2, 1];
        for (mixup, cutmix) in [(Some(0.4), None), (None, Some(1.0))] {
            let mut x = x0.clone();
            let t = mix(&mut x, &labels, 3, mixup, cutmix, &mut rng(3));
            for row in t.data().chunks(3) {
                assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
            }
            // Image i is lam * own + (1 - lam) * partner, pixel by pixel (mixup) or box by box (cutmix): its mean
            // is the mix of the two means with the target's weights, since every image here is a constant ramp
            // shifted by 4 per image.
            for i in 0..4 {
                let mean = |v: &[f32]| v.iter().sum::<f32>() / 4.0;
                let own = mean(&x0.data()[i * 4..][..4]);
                let got = mean(&x.data()[i * 4..][..4]);
                let w_own = t.data()[i * 3 + labels[i]];
                // The partner's mean follows from the mix; it must be one of the batch's images.
                if w_own < 1.0 - 1e-6 {
                    let partner = (got - w_own * own) / (1.0 - w_own);
                    let ok = (0..4).any(|j| (mean(&x0.data()[j * 4..][..4]) - partner).abs() < 1e-3);
                    assert!(ok || labels.iter().filter(|&&l| l == labels[i]).count() > 1, "image {i}: {partner}");
                }
            }
        }
    }
}
