//! AlexNet's PCA colour augmentation (Krizhevsky et al. 2012, section 4.1): the eigenvectors `p_i` and
//! eigenvalues `l_i` of the 3x3 covariance of the training set's RGB pixel values (in [0, 1]); every image gets the
//! same offset on all its pixels, `[p1 p2 p3][a1 l1, a2 l2, a3 l3]^T` with `a_i ~ N(0, std)` drawn per image
//! (AlexNet: std 0.1).

use crate::data::Dataset;
use nalgebra::{Matrix3, SymmetricEigen};
use rand::Rng;
use rand_distr::{Distribution, Normal};

/// Images read to estimate the covariance, spread over the training set.
const SAMPLE: usize = 2000;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PcaBasis {
    /// Columns are the principal directions, in [0, 1] RGB units.
    pub vectors: [[f64; 3]; 3],
    pub values: [f64; 3],
}

/// The principal colour directions of the images `idx` of `ds` (RGB only).
pub fn fit(ds: &Dataset, idx: &[usize]) -> Option<PcaBasis> {
    let [c, h, w] = ds.shape;
    if c != 3 || idx.is_empty() {
        return None;
    }
    let (n, stride) = (h * w, idx.len().div_ceil(SAMPLE).max(1));
    let (mut sum, mut outer, mut count) = ([0f64; 3], [[0f64; 3]; 3], 0f64);
    for &i in idx.iter().step_by(stride) {
        let img = ds.image(i);
        for p in 0..n {
            let v = [img[p], img[n + p], img[2 * n + p]].map(|x| x as f64 / 255.0);
            for a in 0..3 {
                sum[a] += v[a];
                for b in 0..3 {
                    outer[a][b] += v[a] * v[b];
                }
            }
            count += 1.0;
        }
    }
    let cov = Matrix3::from_fn(|a, b| outer[a][b] / count - sum[a] * sum[b] / (count * count));
    let e = SymmetricEigen::new(cov);
    Some(PcaBasis {
        vectors: [0, 1, 2].map(|r| [0, 1, 2].map(|k| e.eigenvectors[(r, k)])),
        values: [0, 1, 2].map(|k| e.eigenvalues[k].max(0.0)),
    })
}

impl PcaBasis {
    /// The RGB offset (in [0, 1] units) for weights `a`.
    pub fn offset(&self, a: [f64; 3]) -> [f64; 3] {
        [0, 1, 2].map(|r| (0..3).map(|k| self.vectors[r][k] * a[k] * self.values[k]).sum())
    }
}

pub fn apply(img: &mut [u8], [c, h, w]: [usize; 3], basis: &PcaBasis, std: f64, rng: &mut impl Rng) {
    if c != 3 || std <= 0.0 {
        return;
    }
    let normal = Normal::new(0.0, std).expect("std > 0");
    let a = [0; 3].map(|_| normal.sample(rng));
    let off = basis.offset(a);
    for (ch, plane) in img.chunks_mut(h * w).enumerate() {
        let d = off[ch] * 255.0;
        plane.iter_mut().for_each(|v| *v = (*v as f64 + d).round().clamp(0.0, 255.0) as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::rng;

    /// Pixels varying mostly along (1, 1, 0)/sqrt(2), a little along blue.
    fn data() -> Dataset {
        let mut r = rng(4);
        let mut images = Vec::new();
        for _ in 0..50 {
            let (t, b): (f64, f64) = (r.random_range(-60.0..60.0), r.random_range(-5.0..5.0));
            for v in [128.0 + t, 128.0 + t, 128.0 + b] {
                images.extend(std::iter::repeat_n(v as u8, 4));
            }
        }
        Dataset { shape: [3, 2, 2], images, labels: vec![0; 50], classes: vec!["x".into()], skipped: vec![] }
    }

    #[test]
    fn offsets_lie_along_the_principal_directions_with_the_configured_scale() {
        let ds = data();
        let b = fit(&ds, &(0..50).collect::<Vec<_>>()).unwrap();
        let top = (0..3).max_by(|&i, &j| b.values[i].total_cmp(&b.values[j])).unwrap();
        let v = [0, 1, 2].map(|r| b.vectors[r][top]);
        assert!((v[0].abs() - 0.5f64.sqrt()).abs() < 0.02 && (v[1] - v[0]).abs() < 0.02 && v[2].abs() < 0.05, "{v:?}");
        // Projecting the offsets back on each direction gives a_i * l_i: their spread over draws is std * l_i.
        let (std, mut r) = (0.1, rng(9));
        let normal = Normal::new(0.0, std).unwrap();
        let draws: Vec<[f64; 3]> = (0..4000).map(|_| [0; 3].map(|_| normal.sample(&mut r))).collect();
        // (Red minus green never varies here: that direction's eigenvalue is 0 and so is its offset.)
        for k in (0..3).filter(|&k| b.values[k] > 1e-6) {
            let proj: Vec<f64> = draws
                .iter()
                .map(|a| {
                    let o = b.offset(*a);
                    (0..3).map(|r| o[r] * b.vectors[r][k]).sum::<f64>() / b.values[k].max(1e-12)
                })
                .collect();
            let sd = (proj.iter().map(|x| x * x).sum::<f64>() / proj.len() as f64).sqrt();
            assert!((sd - std).abs() < 0.01, "direction {k}: spread {sd}");
        }
        // On an image: every pixel moves by the same offset.
        let mut img = vec![100u8; 12];
        apply(&mut img, [3, 2, 2], &b, 0.5, &mut rng(1));
        assert!(img.chunks(4).all(|p| p.iter().all(|&x| x == p[0])));
        assert_ne!(img, vec![100u8; 12]);
    }
}
