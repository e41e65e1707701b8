//! A pretrained network's activations at one layer, for every image of a split: computed once (eval mode, no
//! gradients), then cached in a safetensors file so that classifiers on top train in seconds.

use crate::data::preprocess::Preprocess;
use crate::data::Dataset;
use crate::models::Model;
use crate::tensor::Tensor;
use crate::train::checkpoint::{read_safetensors, write_safetensors};
use crate::{Error, Mode, Result};
use std::collections::HashMap;
use std::path::Path;

/// One row of `dim` numbers per image, and its label.
#[derive(Clone, Debug, PartialEq)]
pub struct Features {
    pub dim: usize,
    pub x: Vec<f32>,
    pub labels: Vec<usize>,
}

impl Features {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    pub fn row(&self, i: usize) -> &[f32] {
        &self.x[i * self.dim..][..self.dim]
    }
}

/// Runs every image of `ds` through `model` up to layer `at`, `batch` images at a time; `tick(images done)`.
pub fn extract(
    model: &mut Model<f32>,
    ds: &Dataset,
    prep: &Preprocess,
    at: &str,
    batch: usize,
    tick: &mut dyn FnMut(usize),
) -> Result<Features> {
    let d = ds.image_len();
    let (mut x, mut dim) = (Vec::new(), 0);
    for start in (0..ds.len()).step_by(batch.max(1)) {
        let b = batch.min(ds.len() - start);
        let input = prep.apply(&ds.images[start * d..(start + b) * d], b);
        let y = model.net.forward_until(&input, at, Mode::Infer)?;
        dim = y.len() / b;
        x.extend_from_slice(y.data());
        tick(start + b);
    }
    if x.iter().any(|v| !v.is_finite()) {
        return Err(Error::Config(format!("the features at '{at}' are not finite: are the weights damaged?")));
    }
    Ok(Features { dim, x, labels: ds.labels.iter().map(|&l| l as usize).collect() })
}

/// Writes named feature sets (`train`, `val`) with `key` (what produced them) in the metadata, atomically.
pub fn save(path: &Path, sets: &[(&str, &Features)], key: &str) -> Result<()> {
    let mut tensors = Vec::new();
    for (name, f) in sets {
        tensors.push((format!("{name}.x"), Tensor::from_vec(&[f.len(), f.dim], f.x.clone())));
        let labels: Vec<f32> = f.labels.iter().map(|&l| l as f32).collect();
        tensors.push((format!("{name}.labels"), Tensor::from_vec(&[f.len()], labels)));
    }
    let tmp = path.with_extension("tmp");
    write_safetensors(&tmp, &tensors, Some(HashMap::from([("source".to_string(), key.to_string())])))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::file(path, format!("cannot move into place: {e}")))
}

/// The cached sets `names` from `path`, if it exists and was made from the same `key`.
pub fn load_cached(path: &Path, names: &[&str], key: &str) -> Option<Vec<Features>> {
    let raw = std::fs::read(path).ok()?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&raw).ok()?;
    if meta.metadata().as_ref()?.get("source")? != key {
        return None;
    }
    let t = read_safetensors(path).ok()?;
    names.iter().map(|n| from_tensors(t.get(&format!("{n}.x"))?, t.get(&format!("{n}.labels"))?)).collect()
}

fn from_tensors(x: &Tensor<f32>, labels: &Tensor<f32>) -> Option<Features> {
    let &[n, dim] = x.shape() else { return None };
    (labels.len() == n).then(|| Features {
        dim,
        x: x.data().to_vec(),
        labels: labels.data().iter().map(|&l| l as usize).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_round_trips_and_is_keyed_by_its_source() {
        let f = Features { dim: 2, x: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], labels: vec![0, 1, 1] };
        let dir = std::env::temp_dir().join(format!("convkit-features-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("f.safetensors");
        save(&p, &[("train", &f), ("val", &f)], "weights A").unwrap();
        assert_eq!(load_cached(&p, &["train", "val"], "weights A"), Some(vec![f.clone(), f]));
        assert_eq!(load_cached(&p, &["train"], "weights B"), None);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
