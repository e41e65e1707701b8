//! Pretrained weights from other frameworks' safetensors files, loaded into a registered model by a name map.
//!
//! Two layouts:
//! - `torch`: PyTorch / timm state dicts (convs OIHW, linear `[out, in]`, `running_mean` / `running_var`), which is
//!   convkit's own layout; names are convkit's, or renamed by prefix (`features.0.0` -> `conv1.conv`).
//! - `keras`: Keras 3 weights (conv kernels HWIO, depthwise `(kh, kw, in, 1)`, dense `(in, out)`, batch norm
//!   `gamma` / `beta` / `moving_mean` / `moving_variance`), for models with a Keras name map (`mobilenetv2_keras`).
//!
//! Loading reports what was loaded, missing, unexpected and mismatched in shape, as PyTorch's
//! `load_state_dict(strict=False)` does; a mismatched classifier is how a new head for new classes starts.

use crate::models::Model;
use crate::tensor::Tensor;
use crate::train::checkpoint::read_safetensors;
use crate::{Error, Result};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    Torch,
    Keras,
}

/// What a load did, tensor by tensor (convkit's names, except `unexpected`, which are the file's).
#[derive(Clone, Debug, Default, Serialize)]
pub struct LoadReport {
    pub loaded: Vec<String>,
    pub missing: Vec<String>,
    pub unexpected: Vec<String>,
    /// `(name, the file's shape after the layout change, the model's shape)`
    pub mismatched: Vec<(String, Vec<usize>, Vec<usize>)>,
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "loaded {} tensors; missing {}, unexpected {}, mismatched in shape {}",
            self.loaded.len(),
            self.missing.len(),
            self.unexpected.len(),
            self.mismatched.len()
        )?;
        let list = |f: &mut std::fmt::Formatter<'_>, what: &str, names: &[String]| -> std::fmt::Result {
            if names.is_empty() {
                return Ok(());
            }
            let shown: Vec<&str> = names.iter().take(6).map(String::as_str).collect();
            let more = if names.len() > 6 { format!(" and {} more", names.len() - 6) } else { String::new() };
            writeln!(f, "  {what}: {}{more}", shown.join(", "))
        };
        list(f, "missing (left as initialised)", &self.missing)?;
        list(f, "unexpected (ignored)", &self.unexpected)?;
        for (n, file, model) in &self.mismatched {
            writeln!(f, "  mismatched (left as initialised): {n}: file {file:?}, model {model:?}")?;
        }
        Ok(())
    }
}

/// Loads `path` into `model`. `rename` maps name prefixes of the file to convkit's (torch layout only).
pub fn load(model: &mut Model<f32>, path: &Path, layout: Layout, rename: &[(String, String)]) -> Result<LoadReport> {
    let file = read_safetensors(path)?;
    let tensors = match layout {
        Layout::Torch => torch_names(file, rename),
        Layout::Keras => keras_names(&model.name, file, path)?,
    };
    Ok(copy_into(model, tensors))
}

/// Copies what fits; reports the rest. `tensors` are keyed by convkit's name, already in convkit's layout.
pub(crate) fn copy_into(model: &mut Model<f32>, mut tensors: BTreeMap<String, Tensor<f32>>) -> LoadReport {
    let mut rep = LoadReport::default();
    let mut take = |name: &str, dst: &mut Tensor<f32>| match tensors.remove(name) {
        None => rep.missing.push(name.to_string()),
        Some(t) if t.shape() != dst.shape() => {
            rep.mismatched.push((name.to_string(), t.shape().to_vec(), dst.shape().to_vec()))
        }
        Some(t) => {
            dst.data_mut().copy_from_slice(t.data());
            rep.loaded.push(name.to_string());
        }
    };
    model.visit_state(&mut take);
    rep.unexpected = tensors.into_keys().collect();
    rep
}

fn torch_names(file: BTreeMap<String, Tensor<f32>>, rename: &[(String, String)]) -> BTreeMap<String, Tensor<f32>> {
    file.into_iter()
        // PyTorch's batch-norm step counter has no counterpart (and is an integer tensor in real state dicts).
        .filter(|(n, _)| !n.ends_with("num_batches_tracked"))
        .map(|(n, t)| {
            let renamed = rename
                .iter()
                .find(|(from, _)| n == *from || n.starts_with(&format!("{from}.")))
                .map(|(from, to)| format!("{to}{}", &n[from.len()..]));
            (renamed.unwrap_or(n), t)
        })
        .collect()
}

/// Keras names keyed by `layer/param` (the last two parts: files nest them under model names), turned into
/// convkit's names and layout by the model's name map.
fn keras_names(model: &str, file: BTreeMap<String, Tensor<f32>>, path: &Path) -> Result<BTreeMap<String, Tensor<f32>>> {
    let map: fn(&str) -> Option<String> = match model {
        "mobilenetv2_keras" => keras_mobilenetv2,
        other => {
            return Err(Error::Config(format!(
                "no Keras name map for model '{other}'; Keras weights load into: mobilenetv2_keras"
            )))
        }
    };
    let mut out = BTreeMap::new();
    let mut used = BTreeSet::new();
    for (name, t) in file {
        let parts: Vec<&str> = name.rsplitn(3, '/').collect();
        let key = if parts.len() >= 2 { format!("{}/{}", parts[1], parts[0]) } else { name.clone() };
        let ours = keras_to_convkit(&key, map);
        let (ours, t) = match ours {
            Some(o) => (o, keras_layout(&key, t)),
            None => (name, t),
        };
        if !used.insert(ours.clone()) {
            return Err(Error::file(path, format!("two tensors map to '{ours}' (the second is '{key}')")));
        }
        out.insert(ours, t);
    }
    Ok(out)
}

/// `block_3_expand_BN/moving_mean` -> `block4.expand.bn.running_mean`, given the layer-name map.
fn keras_to_convkit(key: &str, map: fn(&str) -> Option<String>) -> Option<String> {
    let (layer, param) = key.split_once('/')?;
    let param = match param {
        "kernel" | "depthwise_kernel" | "gamma" => "weight",
        "bias" | "beta" => "bias",
        "moving_mean" => "running_mean",
        "moving_variance" => "running_var",
        _ => return None,
    };
    Some(format!("{}.{param}", map(layer)?))
}

/// Keras' tensor layouts to convkit's (PyTorch's).
fn keras_layout(key: &str, t: Tensor<f32>) -> Tensor<f32> {
    match t.shape().len() {
        // (kh, kw, in, out) -> (out, in, kh, kw); depthwise (kh, kw, in, 1) -> (in, 1, kh, kw).
        4 if key.contains("depthwise") => permute4(&t, [2, 3, 0, 1]),
        4 => permute4(&t, [3, 2, 0, 1]),
        // Dense (in, out) -> (out, in).
        2 => permute2(&t),
        _ => t,
    }
}

/// `out[i0, i1, i2, i3] = t[...]` where output axis k is input axis `axes[k]`.
fn permute4(t: &Tensor<f32>, axes: [usize; 4]) -> Tensor<f32> {
    let s = t.shape();
    let shape: Vec<usize> = axes.iter().map(|&a| s[a]).collect();
    let stride = [s[1] * s[2] * s[3], s[2] * s[3], s[3], 1];
    let mut out = Vec::with_capacity(t.len());
    for a in 0..shape[0] {
        for b in 0..shape[1] {
            for c in 0..shape[2] {
                for d in 0..shape[3] {
                    let idx = [a, b, c, d];
                    let src: usize = (0..4).map(|k| idx[k] * stride[axes[k]]).sum();
                    out.push(t.data()[src]);
                }
            }
        }
    }
    Tensor::from_vec(&shape, out)
}

fn permute2(t: &Tensor<f32>) -> Tensor<f32> {
    let (r, c) = (t.shape()[0], t.shape()[1]);
    Tensor::from_vec(&[c, r], (0..c * r).map(|i| t.data()[(i % r) * c + i / r]).collect())
}

/// keras.applications.MobileNetV2's layer names to convkit's `mobilenetv2` prefixes.
fn keras_mobilenetv2(layer: &str) -> Option<String> {
    let fixed = match layer {
        "Conv1" => Some("conv1.conv"),
        "bn_Conv1" => Some("conv1.bn"),
        "Conv_1" => Some("conv2.conv"),
        "Conv_1_bn" => Some("conv2.bn"),
        "dense" | "predictions" => Some("fc"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    // `expanded_conv_<part>` is block 1; `block_<k>_<part>` is block k + 1.
    let (block, rest) = if let Some(r) = layer.strip_prefix("expanded_conv_") {
        (1, r)
    } else {
        let r = layer.strip_prefix("block_")?;
        let (k, rest) = r.split_once('_')?;
        (k.parse::<usize>().ok()? + 1, rest)
    };
    let (part, bn) = match rest.strip_suffix("_BN") {
        Some(p) => (p, true),
        None => (rest, false),
    };
    let part = match part {
        "expand" => "expand",
        "depthwise" => "dw",
        "project" => "project",
        _ => return None,
    };
    Some(format!("block{block}.{part}.{}", if bn { "bn" } else { "conv" }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keras_names_map_to_mobilenetv2_prefixes() {
        let m = |k: &str| keras_to_convkit(k, keras_mobilenetv2);
        assert_eq!(m("Conv1/kernel").as_deref(), Some("conv1.conv.weight"));
        assert_eq!(m("expanded_conv_depthwise_BN/moving_variance").as_deref(), Some("block1.dw.bn.running_var"));
        assert_eq!(m("block_16_project/kernel").as_deref(), Some("block17.project.conv.weight"));
        assert_eq!(m("Conv_1_bn/beta").as_deref(), Some("conv2.bn.bias"));
        assert_eq!(m("dense/kernel").as_deref(), Some("fc.weight"));
        assert_eq!(m("block_3_pad/kernel"), None);
    }

    #[test]
    fn layouts_permute_as_keras_stores_them() {
        // HWIO (1, 2, 3, 4): element [h, w, i, o] = h*24 + w*12 + i*4 + o.
        let t = Tensor::from_vec(&[1, 2, 3, 4], (0..24).map(|v| v as f32).collect());
        let o = keras_layout("c/kernel", t.clone());
        assert_eq!(o.shape(), &[4, 3, 1, 2]);
        // [o=1, i=2, h=0, w=1] <- [0, 1, 2, 1] = 12 + 8 + 1.
        assert_eq!(o.data()[((3 + 2) * 1) * 2 + 1], 21.0);
        let dense = keras_layout("d/kernel", Tensor::from_vec(&[2, 3], vec![0., 1., 2., 3., 4., 5.]));
        assert_eq!((dense.shape(), dense.data()), (&[3usize, 2][..], &[0., 3., 1., 4., 2., 5.][..]));
    }

    #[test]
    fn torch_prefixes_are_renamed_and_step_counters_dropped() {
        let t = || Tensor::from_vec(&[1], vec![1.0]);
        let file = BTreeMap::from([
            ("features.0.0.weight".to_string(), t()),
            ("features.0.1.num_batches_tracked".to_string(), t()),
            ("features.00.weight".to_string(), t()),
        ]);
        let out = torch_names(file, &[("features.0".into(), "conv1".into())]);
        let keys: Vec<&str> = out.keys().map(String::as_str).collect();
        assert_eq!(keys, ["conv1.0.weight", "features.00.weight"]);
    }
}
