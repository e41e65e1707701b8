//! Minibatches: a seeded shuffle every epoch, augmentation (each batch's images in parallel) and preprocessing on
//! a background thread so that they overlap compute. Deterministic for a given seed: an image's augmentation draws
//! from `(seed, epoch, image)`, a batch's mixing from `(seed, epoch, batch index)`, never from thread timing.

use super::preprocess::Preprocess;
use super::Dataset;
use crate::augment::{self, Augment};
use crate::init::rng;
use crate::tensor::Tensor;
use rand::seq::SliceRandom;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

#[derive(Clone)]
pub struct Batch {
    pub x: Tensor<f32>,
    pub labels: Vec<usize>,
    /// Soft targets `[B, classes]` when the batch was mixed (mixup, cutmix); `labels` then hold each row's own
    /// class.
    pub targets: Option<Tensor<f32>>,
}

impl Batch {
    pub fn new(x: Tensor<f32>, labels: Vec<usize>) -> Batch {
        Batch { x, labels, targets: None }
    }
}

#[derive(Clone, Debug)]
pub struct LoaderConfig {
    pub batch_size: usize,
    pub shuffle: bool,
    pub augment: Augment,
    pub seed: u64,
}

/// The batches of one epoch, produced ahead on a background thread.
pub struct Batches {
    rx: Receiver<Batch>,
    handle: Option<JoinHandle<()>>,
    pub len: usize,
}

impl Iterator for Batches {
    type Item = Batch;
    fn next(&mut self) -> Option<Batch> {
        self.rx.recv().ok()
    }
}

impl Drop for Batches {
    fn drop(&mut self) {
        // Unblock and join the producer (it stops when the receiver is gone).
        let (_tx, rx) = sync_channel(0);
        drop(std::mem::replace(&mut self.rx, rx));
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

pub fn number_of_batches(n: usize, batch: usize, training: bool) -> usize {
    // Training drops a trailing batch of one image: batch norm cannot normalise a single sample.
    let full = n / batch;
    let rest = n % batch;
    full + usize::from(rest > 1 || (rest == 1 && !training))
}

/// Starts producing epoch `epoch` of `ds` (the order of `indices`, shuffled when configured).
pub fn epoch(
    ds: Arc<Dataset>,
    indices: Arc<Vec<usize>>,
    prep: Arc<Preprocess>,
    cfg: &LoaderConfig,
    epoch: usize,
) -> Batches {
    let training = cfg.shuffle;
    let nb = number_of_batches(indices.len(), cfg.batch_size, training);
    let (tx, rx) = sync_channel(2);
    let cfg = cfg.clone();
    let handle = std::thread::spawn(move || {
        let mut order: Vec<usize> = indices.to_vec();
        if cfg.shuffle {
            order.shuffle(&mut rng(cfg.seed ^ (epoch as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)));
        }
        let d = ds.image_len();
        for b in 0..nb {
            let idx = &order[b * cfg.batch_size..((b + 1) * cfg.batch_size).min(order.len())];
            let mut raw = vec![0u8; idx.len() * d];
            fill(&ds, idx, &cfg, epoch, &mut raw);
            let labels: Vec<usize> = idx.iter().map(|&i| ds.labels[i] as usize).collect();
            let mut batch = Batch::new(prep.apply(&raw, idx.len()), labels);
            if cfg.augment.mixes() {
                let mut r = rng(cfg.seed ^ ((epoch as u64) << 32) ^ (b as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
                let (k, a) = (ds.classes.len(), &cfg.augment);
                batch.targets = Some(augment::mix::mix(&mut batch.x, &batch.labels, k, a.mixup, a.cutmix, &mut r));
            }
            if tx.send(batch).is_err() {
                return;
            }
        }
    });
    Batches { rx, handle: Some(handle), len: nb }
}

/// Copies (and augments, in parallel, each image with its own generator) the images `idx` into `raw`.
fn fill(ds: &Dataset, idx: &[usize], cfg: &LoaderConfig, epoch: usize, raw: &mut [u8]) {
    let d = ds.image_len();
    if cfg.augment.is_identity() {
        for (k, &i) in idx.iter().enumerate() {
            raw[k * d..(k + 1) * d].copy_from_slice(ds.image(i));
        }
        return;
    }
    use rayon::prelude::*;
    raw.par_chunks_mut(d).zip(idx.par_iter()).for_each(|(out, &i)| {
        out.copy_from_slice(ds.image(i));
        cfg.augment.apply_for(out, ds.shape, cfg.seed, epoch, i);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::preprocess::PreprocessKind;

    fn toy(n: usize) -> Dataset {
        Dataset {
            shape: [1, 2, 2],
            images: (0..n * 4).map(|i| (i % 251) as u8).collect(),
            labels: (0..n).map(|i| (i % 3) as u16).collect(),
            classes: vec!["a".into(), "b".into(), "c".into()],
            skipped: vec![],
        }
    }

    #[test]
    fn every_image_once_per_epoch_and_deterministic() {
        let ds = Arc::new(toy(103));
        let prep = Arc::new(Preprocess::fit(PreprocessKind::None, &ds).unwrap());
        let idx = Arc::new((0..103).collect::<Vec<_>>());
        let cfg = LoaderConfig {
            batch_size: 10,
            shuffle: true,
            augment: Augment { crop_pad: 1, hflip: true, ..Default::default() },
            seed: 5,
        };
        let run = |e| {
            epoch(ds.clone(), idx.clone(), prep.clone(), &cfg, e)
                .map(|b| (b.labels, b.x.data().to_vec()))
                .collect::<Vec<_>>()
        };
        let a = run(0);
        assert_eq!(a.len(), 11);
        assert_eq!(a.iter().map(|(l, _)| l.len()).sum::<usize>(), 103);
        assert_eq!(a, run(0), "same seed and epoch, same batches");
        assert_ne!(a, run(1), "a new epoch reshuffles");
    }

    #[test]
    fn training_drops_a_lone_last_image() {
        assert_eq!(number_of_batches(101, 10, true), 10);
        assert_eq!(number_of_batches(101, 10, false), 11);
        assert_eq!(number_of_batches(102, 10, true), 11);
    }
}
