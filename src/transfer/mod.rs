//! Transfer learning, the lecture's 2x2 table: with little data on a similar task, train a linear classifier on a
//! pretrained network's features (`features`, `linear_probe`); with more, fine-tune some or all layers (`freeze`,
//! and `convkit finetune`). Everything starts from a `Backbone`: a model with pretrained weights and the input
//! transform those weights expect.

pub mod features;
pub mod finetune;
pub mod freeze;
pub mod linear_probe;

use crate::data::preprocess::{Preprocess, PreprocessKind};
use crate::models::{self, Model};
use crate::pretrained::{self, Layout, LoadReport};
use crate::train::checkpoint::Checkpoint;
use crate::{Error, Result};
use std::path::Path;

/// ImageNet's per-channel statistics, which torchvision and timm weights expect.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// A pretrained network ready to transfer: weights loaded, its input transform, and what loading reported.
pub struct Backbone {
    pub model: Model<f32>,
    pub prep: Preprocess,
    /// For weights from another framework's file (a convkit checkpoint loads whole or fails).
    pub report: Option<LoadReport>,
    /// Where the weights came from, for reports and feature caches.
    pub source: String,
}

/// Loads `from`: a convkit checkpoint folder (its model, weights and preprocessing), or a safetensors file in
/// `layout` for the registered `model`. The classifier gets `classes` outputs: a new head when they differ.
pub fn backbone(from: &Path, model: Option<&str>, layout: Layout, classes: usize) -> Result<Backbone> {
    if from.is_dir() {
        let ck = Checkpoint::load(from)?;
        let mut m = ck.model()?;
        if let Some(name) = model.filter(|n| *n != ck.meta.model) {
            return Err(Error::Config(format!("{} holds a '{}', not a '{name}'", from.display(), ck.meta.model)));
        }
        if classes != m.classes {
            // Rebuild with the new head, then copy every tensor that fits.
            let mut fresh = models::build::<f32>(&ck.meta.model, Some(classes), ck.meta.seed)?;
            let report = load_matching(&mut fresh, &mut m);
            m = fresh;
            return Ok(Backbone {
                model: m,
                prep: ck.preprocess(),
                report: Some(report),
                source: from.display().to_string(),
            });
        }
        return Ok(Backbone { model: m, prep: ck.preprocess(), report: None, source: from.display().to_string() });
    }
    let name = model.ok_or_else(|| {
        Error::Config(format!("{} is a weights file: say which registered model it fits with --model", from.display()))
    })?;
    let mut m = models::build::<f32>(name, Some(classes), 0)?;
    let rename: &[(String, String)] = &[];
    let report = pretrained::load(&mut m, from, layout, rename)?;
    if report.loaded.is_empty() {
        return Err(Error::file(from, format!("no tensor fits model '{name}' ({layout:?} layout): {report}")));
    }
    let prep = framework_preprocess(layout, m.input);
    Ok(Backbone { model: m, prep, report: Some(report), source: from.display().to_string() })
}

/// The input transform another framework's weights were trained with: Keras' [-1, 1], torchvision's ImageNet
/// channel normalisation.
pub fn framework_preprocess(layout: Layout, shape: [usize; 3]) -> Preprocess {
    let (kind, mean, std) = match layout {
        Layout::Keras => (PreprocessKind::Tf, vec![], vec![]),
        Layout::Torch => (PreprocessKind::ChannelNorm, IMAGENET_MEAN.to_vec(), IMAGENET_STD.to_vec()),
    };
    Preprocess { kind, shape, mean, std, matrix: vec![] }
}

/// Copies every tensor of `src` whose name and shape `dst` shares (a checkpoint onto a model with a new head).
fn load_matching(dst: &mut Model<f32>, src: &mut Model<f32>) -> LoadReport {
    let tensors: std::collections::BTreeMap<String, crate::Tensor<f32>> =
        crate::train::checkpoint::model_tensors(src).into_iter().collect();
    pretrained::copy_into(dst, tensors)
}
