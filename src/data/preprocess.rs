//! Data preprocessing, as the lecture says: statistics from the training split only, saved with the model so
//! evaluation and prediction apply exactly the same transform.
//!
//! - `channel-norm` (default): subtract the per-channel mean, divide by the per-channel std (VGG/ResNet practice).
//! - `mean-image`: subtract the mean image (AlexNet practice).
//! - `zca`: whitening that keeps the image's layout, `W = U diag(1/sqrt(l + eps)) U^T` on mean-centred pixels.
//! - `pca`: PCA whitening, `W = diag(1/sqrt(l + eps)) U^T`: decorrelated components, no longer an image.
//! - `none`: pixels scaled to [0, 1].
//! - `tf`: pixels scaled to [-1, 1], as Keras' `preprocess_input` in mode "tf" (its MobileNetV2 weights expect it).

use super::Dataset;
use crate::kernels::gemm::{matmul, Mat};
use crate::tensor::Tensor;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PreprocessKind {
    #[default]
    ChannelNorm,
    MeanImage,
    Zca,
    Pca,
    None,
    Tf,
}

impl std::str::FromStr for PreprocessKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "channel-norm" => Self::ChannelNorm,
            "mean-image" => Self::MeanImage,
            "zca" => Self::Zca,
            "pca" => Self::Pca,
            "none" => Self::None,
            "tf" => Self::Tf,
            o => {
                return Err(Error::Unknown {
                    kind: "preprocessing",
                    name: o.into(),
                    known: "channel-norm, mean-image, zca, pca, none, tf".into(),
                })
            }
        })
    }
}

/// Regulariser added to the eigenvalues before whitening (pixels in [0, 1]).
pub const WHITEN_EPS: f64 = 1e-2;

#[derive(Clone, Debug)]
pub struct Preprocess {
    pub kind: PreprocessKind,
    /// `[C, H, W]`
    pub shape: [usize; 3],
    /// Per channel (`channel-norm`) or per pixel (`mean-image`, `zca`, `pca`).
    pub mean: Vec<f32>,
    /// Per channel (`channel-norm`).
    pub std: Vec<f32>,
    /// `D x D` whitening matrix, row-major (`zca`, `pca`).
    pub matrix: Vec<f32>,
}

impl Preprocess {
    /// Computes the statistics on (training) images.
    pub fn fit(kind: PreprocessKind, ds: &Dataset) -> Result<Preprocess> {
        let [c, h, w] = ds.shape;
        let (n, d, hw) = (ds.len(), ds.image_len(), h * w);
        if n == 0 {
            return Err(Error::Config("cannot compute preprocessing statistics on an empty dataset".into()));
        }
        let mut p = Preprocess { kind, shape: ds.shape, mean: Vec::new(), std: Vec::new(), matrix: Vec::new() };
        match kind {
            PreprocessKind::None | PreprocessKind::Tf => {}
            PreprocessKind::ChannelNorm => {
                let (mut s1, mut s2) = (vec![0f64; c], vec![0f64; c]);
                for i in 0..n {
                    for (ch, plane) in ds.image(i).chunks(hw).enumerate() {
                        for &v in plane {
                            let x = v as f64 / 255.0;
                            s1[ch] += x;
                            s2[ch] += x * x;
                        }
                    }
                }
                let cnt = (n * hw) as f64;
                p.mean = s1.iter().map(|s| (s / cnt) as f32).collect();
                p.std =
                    s1.iter().zip(&s2).map(|(a, b)| ((b / cnt - (a / cnt).powi(2)).max(1e-12)).sqrt() as f32).collect();
            }
            PreprocessKind::MeanImage | PreprocessKind::Zca | PreprocessKind::Pca => {
                let mut m = vec![0f64; d];
                for i in 0..n {
                    for (a, &v) in m.iter_mut().zip(ds.image(i)) {
                        *a += v as f64 / 255.0;
                    }
                }
                p.mean = m.iter().map(|v| (v / n as f64) as f32).collect();
                if kind != PreprocessKind::MeanImage {
                    p.matrix = whitening(ds, &p.mean, kind == PreprocessKind::Zca)?;
                }
            }
        }
        Ok(p)
    }

    /// Turns `B` raw images (`B x D` bytes) into the network's input tensor `[B, C, H, W]`.
    pub fn apply(&self, raw: &[u8], batch: usize) -> Tensor<f32> {
        let [c, h, w] = self.shape;
        let (d, hw) = (c * h * w, h * w);
        let mut x = Tensor::<f32>::uninit(&[batch, c, h, w]);
        for (o, &v) in x.data_mut().iter_mut().zip(raw) {
            *o = v as f32 * (1.0 / 255.0);
        }
        match self.kind {
            PreprocessKind::None => {}
            PreprocessKind::Tf => x.data_mut().iter_mut().for_each(|v| *v = *v * 2.0 - 1.0),
            PreprocessKind::ChannelNorm => {
                for img in x.data_mut().chunks_mut(d) {
                    for (ch, plane) in img.chunks_mut(hw).enumerate() {
                        let (m, inv) = (self.mean[ch], 1.0 / self.std[ch]);
                        plane.iter_mut().for_each(|v| *v = (*v - m) * inv);
                    }
                }
            }
            PreprocessKind::MeanImage | PreprocessKind::Zca | PreprocessKind::Pca => {
                for img in x.data_mut().chunks_mut(d) {
                    img.iter_mut().zip(&self.mean).for_each(|(v, m)| *v -= m);
                }
                if !self.matrix.is_empty() {
                    // x_white = W (x - mean), for every row: X W^T.
                    let mut y = Tensor::<f32>::uninit(&[batch, c, h, w]);
                    matmul(
                        Mat::new(x.data(), batch, d),
                        Mat::new(&self.matrix, d, d).t(),
                        y.data_mut(),
                        false,
                        crate::kernels::threads(),
                    );
                    return y;
                }
            }
        }
        x
    }

    /// Named tensors for the checkpoint (`preprocess.mean`, ...).
    pub fn tensors(&self) -> Vec<(String, Tensor<f32>)> {
        let mut v = Vec::new();
        for (name, data, shape) in
            [("mean", &self.mean, vec![self.mean.len()]), ("std", &self.std, vec![self.std.len()])]
        {
            if !data.is_empty() {
                v.push((format!("preprocess.{name}"), Tensor::from_vec(&shape, data.clone())));
            }
        }
        if !self.matrix.is_empty() {
            let d = self.shape.iter().product::<usize>();
            v.push(("preprocess.matrix".into(), Tensor::from_vec(&[d, d], self.matrix.clone())));
        }
        v
    }

    pub fn from_tensors(kind: PreprocessKind, shape: [usize; 3], get: &dyn Fn(&str) -> Option<Vec<f32>>) -> Preprocess {
        Preprocess {
            kind,
            shape,
            mean: get("preprocess.mean").unwrap_or_default(),
            std: get("preprocess.std").unwrap_or_default(),
            matrix: get("preprocess.matrix").unwrap_or_default(),
        }
    }
}

/// The whitening matrix from the covariance of mean-centred pixels (eigendecomposition in f64).
fn whitening(ds: &Dataset, mean: &[f32], zca: bool) -> Result<Vec<f32>> {
    let (n, d) = (ds.len(), ds.image_len());
    if d > 4096 {
        return Err(Error::Config(format!(
            "whitening {d}-dimensional images needs a {d}x{d} eigendecomposition; use channel-norm or smaller images"
        )));
    }
    // Covariance = Xc^T Xc / n, accumulated over chunks of images with the GEMM.
    let mut cov = vec![0f32; d * d];
    let chunk = 2048;
    let mut xc = vec![0f32; chunk * d];
    for start in (0..n).step_by(chunk) {
        let b = chunk.min(n - start);
        for i in 0..b {
            for ((o, &v), m) in xc[i * d..(i + 1) * d].iter_mut().zip(ds.image(start + i)).zip(mean) {
                *o = v as f32 / 255.0 - m;
            }
        }
        let xm = Mat::new(&xc[..b * d], b, d);
        matmul(xm.t(), xm, &mut cov, true, crate::kernels::threads());
    }
    let cov = nalgebra::DMatrix::<f64>::from_fn(d, d, |i, j| cov[i * d + j] as f64 / n as f64);
    let eig = nalgebra::SymmetricEigen::new(cov);
    let u = &eig.eigenvectors;
    let scale: Vec<f64> = eig.eigenvalues.iter().map(|l| 1.0 / (l.max(0.0) + WHITEN_EPS).sqrt()).collect();
    let mut w = vec![0f32; d * d];
    for i in 0..d {
        for j in 0..d {
            w[i * d + j] = if zca {
                // (U S U^T)[i][j]
                (0..d).map(|k| u[(i, k)] * scale[k] * u[(j, k)]).sum::<f64>() as f32
            } else {
                // (S U^T)[i][j]: component i
                (scale[i] * u[(j, i)]) as f32
            };
        }
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> Dataset {
        // 200 images of 2x2x2 with correlated channels.
        let mut images = Vec::new();
        for i in 0..200u32 {
            let a = (i * 37 % 200) as u8;
            let b = (i * 91 % 150) as u8;
            images.extend_from_slice(&[a, a / 2 + b / 3, b, a / 3, a, 255 - a, b / 2, a / 4 + 10]);
        }
        Dataset { shape: [2, 2, 2], images, labels: vec![0; 200], classes: vec!["x".into()], skipped: vec![] }
    }

    #[test]
    fn channel_norm_gives_zero_mean_unit_std() {
        let ds = toy();
        let p = Preprocess::fit(PreprocessKind::ChannelNorm, &ds).unwrap();
        let x = p.apply(&ds.images, ds.len());
        for ch in 0..2 {
            let v: Vec<f64> =
                (0..200).flat_map(|i| x.data()[i * 8 + ch * 4..i * 8 + ch * 4 + 4].to_vec()).map(f64::from).collect();
            let m = v.iter().sum::<f64>() / v.len() as f64;
            let s = (v.iter().map(|a| (a - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
            assert!(m.abs() < 1e-5 && (s - 1.0).abs() < 1e-4, "channel {ch}: mean {m} std {s}");
        }
    }

    #[test]
    fn pca_decorrelates_and_zca_is_its_rotation() {
        let ds = toy();
        let pca = Preprocess::fit(PreprocessKind::Pca, &ds).unwrap().apply(&ds.images, ds.len());
        let zca = Preprocess::fit(PreprocessKind::Zca, &ds).unwrap().apply(&ds.images, ds.len());
        // PCA whitening: output covariance diag(l / (l + eps)), so off-diagonals vanish and variances stay below 1.
        for i in 0..8 {
            for j in 0..8 {
                let c: f64 =
                    (0..200).map(|k| pca.data()[k * 8 + i] as f64 * pca.data()[k * 8 + j] as f64).sum::<f64>() / 200.0;
                if i != j {
                    assert!(c.abs() < 2e-3, "pca cov[{i}][{j}] = {c}");
                } else {
                    assert!(c < 1.0 + 1e-3, "pca var[{i}] = {c}");
                }
            }
        }
        // ZCA = U * PCA: a rotation, so every image keeps its norm.
        for k in 0..200 {
            let n = |x: &Tensor<f32>| x.data()[k * 8..(k + 1) * 8].iter().map(|v| (*v as f64).powi(2)).sum::<f64>();
            assert!((n(&pca) - n(&zca)).abs() < 1e-3 * (1.0 + n(&pca)), "image {k}");
        }
    }
}
