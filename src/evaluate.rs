//! Accuracy, per-class accuracy and the confusion matrix of a model on a dataset, from one view of each image or
//! averaged over the image and its mirror (the lecture's test-time augmentation: average the predictions of a
//! fixed set of transformed copies).

use crate::augment::tta::View;
use crate::data::loader::{self, LoaderConfig};
use crate::data::preprocess::Preprocess;
use crate::data::Dataset;
use crate::models::Model;
use crate::Mode;
use serde::Serialize;
use std::sync::Arc;

#[derive(Clone, Debug, Serialize)]
pub struct ClassAccuracy {
    pub class: String,
    pub accuracy: f64,
    pub count: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct EvalReport {
    pub count: usize,
    pub loss: f64,
    pub accuracy: f64,
    pub per_class: Vec<ClassAccuracy>,
    /// `confusion[true][predicted]`
    pub confusion: Vec<Vec<usize>>,
}

impl EvalReport {
    /// No images evaluated (a split withheld on purpose): NaN figures.
    pub fn withheld() -> EvalReport {
        EvalReport { count: 0, loss: f64::NAN, accuracy: f64::NAN, per_class: Vec::new(), confusion: Vec::new() }
    }
}

pub use crate::augment::tta::TestViews;

pub fn evaluate(
    model: &mut Model<f32>,
    ds: &Arc<Dataset>,
    indices: Arc<Vec<usize>>,
    prep: &Arc<Preprocess>,
    batch_size: usize,
) -> EvalReport {
    evaluate_views(model, ds, indices, prep, batch_size, TestViews::Single, 0)
}

pub fn evaluate_views(
    model: &mut Model<f32>,
    ds: &Arc<Dataset>,
    indices: Arc<Vec<usize>>,
    prep: &Arc<Preprocess>,
    batch_size: usize,
    views: TestViews,
    pad: usize,
) -> EvalReport {
    let (probs, labels) = probabilities(model, ds, indices, prep, batch_size, views, pad);
    report(&probs, &labels, &ds.classes)
}

/// Softmax outputs averaged over the views, one row of `C` per image in `indices` order, and the labels.
pub fn probabilities(
    model: &mut Model<f32>,
    ds: &Arc<Dataset>,
    indices: Arc<Vec<usize>>,
    prep: &Arc<Preprocess>,
    batch_size: usize,
    views: TestViews,
    pad: usize,
) -> (Vec<f64>, Vec<usize>) {
    // Evaluation's batch shapes are not training's: neither phase keeps the other's free buffers.
    crate::tensor::release_pools();
    let k = ds.classes.len();
    // Views are made from the raw bytes, not the preprocessed tensor: a mean image or ZCA is not symmetric.
    let views = crate::augment::tta::views(views, ds.shape, pad);
    let plain = |v: &View| View { weight: 1.0, ..*v } == View::default();
    let sets: Vec<(Arc<Dataset>, f64)> = views
        .iter()
        .map(|v| (if plain(v) { ds.clone() } else { Arc::new(viewed(ds, &indices, *v)) }, v.weight))
        .collect();
    let cfg = LoaderConfig { batch_size, shuffle: false, augment: Default::default(), seed: 0 };
    let mut probs = vec![0f64; indices.len() * k];
    let mut view_probs = vec![0f64; k];
    let mut labels = Vec::with_capacity(indices.len());
    for (v, (set, weight)) in sets.iter().enumerate() {
        let mut row0 = 0;
        for b in loader::epoch(set.clone(), indices.clone(), prep.clone(), &cfg, 0) {
            let y = model.forward(&b.x, Mode::Infer);
            let c = y.len() / b.labels.len();
            for (i, row) in y.data().chunks(c).enumerate() {
                view_probs.fill(0.0);
                crate::loss::add_softmax(row, &mut view_probs);
                let out = &mut probs[(row0 + i) * k..][..k];
                out.iter_mut().zip(&view_probs).for_each(|(o, p)| *o += weight * p);
            }
            row0 += b.labels.len();
            if v == 0 {
                labels.extend(b.labels);
            }
        }
    }
    let total: f64 = sets.iter().map(|s| s.1).sum();
    probs.iter_mut().for_each(|p| *p /= total);
    crate::tensor::release_pools();
    (probs, labels)
}

/// Accuracy, loss (the mean negative log of the true class's probability), per-class accuracy and confusion
/// matrix from probability rows.
pub fn report(probs: &[f64], labels: &[usize], classes: &[String]) -> EvalReport {
    let k = classes.len();
    let mut confusion = vec![vec![0usize; k]; k];
    let mut loss_sum = 0f64;
    for (row, &t) in probs.chunks(k).zip(labels) {
        let p = crate::loss::argmax(row);
        confusion[t][p.min(k - 1)] += 1;
        loss_sum -= row[t].max(1e-300).ln();
    }
    let count = labels.len();
    let correct: usize = (0..k).map(|i| confusion[i][i]).sum();
    let per_class = (0..k)
        .map(|i| {
            let n: usize = confusion[i].iter().sum();
            ClassAccuracy {
                class: classes[i].clone(),
                accuracy: if n == 0 { 0.0 } else { confusion[i][i] as f64 / n as f64 },
                count: n,
            }
        })
        .collect();
    EvalReport {
        count,
        loss: if count == 0 { 0.0 } else { loss_sum / count as f64 },
        accuracy: if count == 0 { 0.0 } else { correct as f64 / count as f64 },
        per_class,
        confusion,
    }
}

/// A copy of `ds` with the images at `indices` seen through view `v` (the others are not read).
fn viewed(ds: &Dataset, indices: &[usize], v: crate::augment::tta::View) -> Dataset {
    use rayon::prelude::*;
    let mut m = ds.clone();
    let mut take = vec![false; ds.len()];
    indices.iter().for_each(|&i| take[i] = true);
    m.images
        .par_chunks_mut(ds.image_len())
        .zip(take.par_iter())
        .filter(|(_, t)| **t)
        .for_each(|(img, _)| v.apply(img, ds.shape));
    m
}

/// A copy of `ds` with every image mirrored left-right.
#[cfg(test)]
fn mirrored(ds: &Dataset) -> Dataset {
    let v = crate::augment::tta::View { mirror: true, ..Default::default() };
    viewed(ds, &(0..ds.len()).collect::<Vec<_>>(), v)
}

/// Which images of a dataset to evaluate on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum EvalSplit {
    /// The test split (touch it once, at the end).
    #[default]
    Test,
    /// The validation images the run carved from the training split (same seed and size).
    Val,
    /// The whole training split (validation images included).
    Train,
}

/// Evaluates a checkpoint on a split of its own data (or of `data`, `KIND:PATH`). The validation split is the
/// one the run used: its `config.toml` (two folders up from the checkpoint) gives the size and seed.
pub fn evaluate_checkpoint(
    ck: &crate::train::checkpoint::Checkpoint,
    data: Option<&str>,
    split: EvalSplit,
    views: TestViews,
) -> crate::Result<(EvalReport, crate::data::DataSpec)> {
    let (ds, spec) = load_for(ck, data, split)?;
    let idx = split_indices(ck, &spec, split, ds.len())?;
    let mut model = ck.model()?;
    let prep = Arc::new(ck.preprocess());
    let pad = run_config(ck).map_or(0, |c| c.augment.crop_pad);
    Ok((evaluate_views(&mut model, &ds, Arc::new(idx), &prep, 256, views, pad), spec))
}

/// A split of the checkpoint's data (or of `data`, `KIND:PATH`) at its input size, labelled in its class order;
/// data of another shape or class set is refused.
pub fn load_for(
    ck: &crate::train::checkpoint::Checkpoint,
    data: Option<&str>,
    split: EvalSplit,
) -> crate::Result<(Arc<Dataset>, crate::data::DataSpec)> {
    use crate::data::{DataSpec, Split};
    let mut spec: DataSpec = data.unwrap_or(&ck.meta.data).parse()?;
    // The run's own data, named by a path relative to where it was trained: found where it was then.
    if let (None, false, Some(dir)) = (data, spec.path.exists(), ck.meta.data_dir.as_ref().filter(|d| d.exists())) {
        spec.path = dir.clone();
    }
    let [_, h, w] = ck.meta.input;
    let which = if split == EvalSplit::Test { Split::Test } else { Split::Train };
    let mut ds = spec.load(which, Some([h, w]))?;
    if ds.shape != ck.meta.input {
        return Err(crate::Error::Config(format!(
            "{spec} has {:?} (C, H, W) images but {} was trained on {:?}: give it data of that kind",
            ds.shape, ck.meta.model, ck.meta.input
        )));
    }
    // A run trained on some of the data's classes is scored on those.
    if let Some(names) = run_config(ck).and_then(|c| c.classes) {
        ds = ds.only_classes(&names)?;
    }
    ds.relabel(&ck.meta.classes, &format!("{spec}"))?;
    Ok((Arc::new(ds), spec))
}

/// The images of `split`: all of them, or the run's own validation images (its config.toml gives the size and
/// seed).
pub fn split_indices(
    ck: &crate::train::checkpoint::Checkpoint,
    spec: &crate::data::DataSpec,
    split: EvalSplit,
    n: usize,
) -> crate::Result<Vec<usize>> {
    if split != EvalSplit::Val {
        return Ok((0..n).collect());
    }
    let path = run_config_path(ck).filter(|p| p.exists()).ok_or_else(|| {
        crate::Error::file(&ck.dir, "--split val needs the run's config.toml two folders up (RUN/checkpoints/NAME)")
    })?;
    let cfg = crate::train::TrainConfig::from_file(&path)?;
    Ok(crate::train::run::split_indices(&cfg, spec, n).1)
}

/// The recipe of the run a checkpoint belongs to (`RUN/checkpoints/NAME`), when it is there.
pub fn run_config(ck: &crate::train::checkpoint::Checkpoint) -> Option<crate::train::TrainConfig> {
    crate::train::TrainConfig::from_file(&run_config_path(ck)?).ok()
}

/// `RUN/config.toml` for a checkpoint at `RUN/checkpoints/NAME`.
fn run_config_path(ck: &crate::train::checkpoint::Checkpoint) -> Option<std::path::PathBuf> {
    Some(ck.dir.parent()?.parent()?.join("config.toml"))
}

impl std::fmt::Display for EvalReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "accuracy {:.2}% ({} images), loss {:.4}", 100.0 * self.accuracy, self.count, self.loss)?;
        writeln!(f, "per class:")?;
        for c in &self.per_class {
            writeln!(f, "  {:<14} {:>6.2}%  ({} images)", c.class, 100.0 * c.accuracy, c.count)?;
        }
        writeln!(f, "confusion matrix (rows: true class, columns: predicted class):")?;
        // Column headers: class names cut to fit the cell.
        let width = self.confusion.iter().flatten().max().map_or(1, |m| m.to_string().len()).max(4) + 1;
        let head: String = self.per_class.iter().map(|c| format!("{:>width$}", cut(&c.class, width - 1))).collect();
        writeln!(f, "  {:<14}{head}", "true \\ pred")?;
        for (i, row) in self.confusion.iter().enumerate() {
            let cells: String = row.iter().map(|v| format!("{v:>width$}")).collect();
            writeln!(f, "  {:<14}{cells}", cut(&self.per_class[i].class, 14))?;
        }
        Ok(())
    }
}

fn cut(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::preprocess::PreprocessKind;

    /// Grey `side x side` images, ten classes, labels cycling through them.
    fn dataset(side: usize, images: Vec<u8>) -> Arc<Dataset> {
        let n = images.len() / (side * side);
        Arc::new(Dataset {
            shape: [1, side, side],
            images,
            labels: (0..n).map(|i| (i % 10) as u16).collect(),
            classes: (0..10).map(|c| c.to_string()).collect(),
            skipped: vec![],
        })
    }

    #[test]
    fn mirror_reverses_each_row() {
        let ds = dataset(4, (0..32).collect());
        let m = mirrored(&ds);
        assert_eq!(&m.images[..8], &[3, 2, 1, 0, 7, 6, 5, 4]);
        assert_eq!(mirrored(&m).images, ds.images);
    }

    #[test]
    fn flip_averages_the_two_views() {
        let mut model = crate::models::build::<f32>("lenet5", Some(10), 7).unwrap();
        let n = 12;
        let mut r = crate::init::rng(1);
        let images: Vec<u8> = (0..n * 784).map(|_| rand::Rng::random::<u8>(&mut r)).collect();
        let ds = dataset(28, images);
        let prep = Arc::new(Preprocess::fit(PreprocessKind::ChannelNorm, &ds).unwrap());
        let idx = Arc::new((0..n).collect::<Vec<_>>());
        let probs = |model: &mut Model<f32>, set: &Arc<Dataset>| -> Vec<f64> {
            let cfg = LoaderConfig { batch_size: 5, shuffle: false, augment: Default::default(), seed: 0 };
            let mut out = vec![];
            for b in loader::epoch(set.clone(), idx.clone(), prep.clone(), &cfg, 0) {
                let y = model.forward(&b.x, Mode::Eval);
                for row in y.data().chunks(10) {
                    let mut p = [0f64; 10];
                    crate::loss::add_softmax(row, &mut p);
                    out.extend(p);
                }
            }
            out
        };
        let (a, b) = (probs(&mut model, &ds), probs(&mut model, &Arc::new(mirrored(&ds))));
        assert!(a.iter().zip(&b).any(|(x, y)| (x - y).abs() > 1e-4), "the mirror is a different view");
        let want: f64 = (0..n).map(|i| -((a[i * 10 + i % 10] + b[i * 10 + i % 10]) / 2.0).ln()).sum::<f64>() / n as f64;
        let single = evaluate_views(&mut model, &ds, idx.clone(), &prep, 5, TestViews::Single, 0);
        let flip = evaluate_views(&mut model, &ds, idx.clone(), &prep, 5, TestViews::Flip, 0);
        assert!((flip.loss - want).abs() < 1e-9 * want.max(1.0), "{} vs {want}", flip.loss);
        let want_single: f64 = (0..n).map(|i| -a[i * 10 + i % 10].ln()).sum::<f64>() / n as f64;
        assert!((single.loss - want_single).abs() < 1e-9 * want_single.max(1.0));
        assert_eq!(flip.count, n);
    }

    #[test]
    fn flip_changes_nothing_on_symmetric_images() {
        let mut model = crate::models::build::<f32>("lenet5", Some(10), 3).unwrap();
        let n = 8;
        let mut images = vec![0u8; n * 784];
        for (i, px) in images.iter_mut().enumerate() {
            let x = i % 28;
            *px = ((x.min(27 - x) * 9 + i / 784 * 17) % 256) as u8;
        }
        let ds = dataset(28, images);
        let prep = Arc::new(Preprocess::fit(PreprocessKind::MeanImage, &ds).unwrap());
        let idx = Arc::new((0..n).collect::<Vec<_>>());
        let single = evaluate_views(&mut model, &ds, idx.clone(), &prep, 3, TestViews::Single, 0);
        let flip = evaluate_views(&mut model, &ds, idx, &prep, 3, TestViews::Flip, 0);
        assert_eq!(single.confusion, flip.confusion);
        assert!((single.loss - flip.loss).abs() < 1e-9);
    }
}

#[cfg(test)]
mod tta_tests {
    use super::*;
    use crate::data::preprocess::PreprocessKind;
    use crate::layers::global_avgpool::GlobalAvgPool;
    use crate::layers::linear::LinearConfig;
    use crate::net::Sequential;

    #[test]
    fn every_view_kind_equals_one_view_on_a_model_blind_to_shifts_and_mirrors() {
        // Mean brightness -> linear scores: shifting a blob inside a black frame, or mirroring it, changes nothing.
        let lin = LinearConfig::new(1, 10).build::<f32>(&mut crate::init::rng(1)).unwrap();
        let net = Sequential::new().with("gap", GlobalAvgPool).with("fc", lin);
        let mut model = Model { name: "gap".into(), input: [1, 16, 16], classes: 10, net };
        let n = 6;
        let mut images = vec![0u8; n * 256];
        for (i, img) in images.chunks_mut(256).enumerate() {
            for y in 5..11 {
                for x in 6..10 {
                    img[y * 16 + x] = (40 * i + 7 * x + y) as u8;
                }
            }
        }
        let ds = Arc::new(Dataset {
            shape: [1, 16, 16],
            images,
            labels: (0..n).map(|i| (i % 10) as u16).collect(),
            classes: (0..10).map(|c| c.to_string()).collect(),
            skipped: vec![],
        });
        let prep = Arc::new(Preprocess::fit(PreprocessKind::None, &ds).unwrap());
        let idx = Arc::new((0..n).collect::<Vec<_>>());
        let one = evaluate_views(&mut model, &ds, idx.clone(), &prep, 4, TestViews::Single, 0);
        for kind in [TestViews::Flip, TestViews::TenCrop] {
            let many = evaluate_views(&mut model, &ds, idx.clone(), &prep, 4, kind, 4);
            assert_eq!(one.confusion, many.confusion, "{kind:?}");
            assert!((one.loss - many.loss).abs() < 1e-6, "{kind:?}: {} vs {}", one.loss, many.loss);
        }
    }
}
