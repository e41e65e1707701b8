//! Fine-tuning: a run whose model starts from pretrained weights (a `[transfer]` table in the recipe, or
//! `convkit finetune`), with a new head for its classes, the layers `freeze` names frozen, and discriminative
//! rates (a smaller one for the backbone than for the new head, as fastai does).

use super::freeze::{self, Freeze};
use super::{features, linear_probe};
use crate::data::preprocess::Preprocess;
use crate::data::Dataset;
use crate::models::Model;
use crate::pretrained::{Layout, LoadReport};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferConfig {
    /// A convkit checkpoint folder, or a safetensors file of `layout`.
    pub from: PathBuf,
    /// `torch` (also convkit's own) or `keras`.
    #[serde(default = "d_layout")]
    pub layout: Layout,
    /// `all` (but the head), `until=LAYER`, or `none`.
    #[serde(default)]
    pub freeze: Freeze,
    /// The new head's rate; default the recipe's `lr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_lr: Option<f64>,
    /// The trainable layers before the head; default the recipe's `lr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backbone_lr: Option<f64>,
    /// Keep every batch norm's pretrained statistics and scale (default true: small fine-tuning batches give
    /// poor statistics, and Keras advises it); false trains the batch norms of unfrozen layers.
    #[serde(default = "d_true")]
    pub freeze_bn: bool,
    /// Start the new head from a linear probe fitted on the frozen features of the training images, then
    /// fine-tune (LP-FT, Kumar et al. 2022; Keras: "only fine-tune after the new head has converged"): a random
    /// head's large early gradients would wreck the pretrained features. Default true.
    #[serde(default = "d_true")]
    pub probe_head: bool,
}

fn d_true() -> bool {
    true
}

fn d_layout() -> Layout {
    Layout::Torch
}

impl TransferConfig {
    pub fn validate(&self, lr: f64) -> Result<()> {
        for (k, v) in [("head_lr", self.head_lr), ("backbone_lr", self.backbone_lr)] {
            if let Some(v) = v.filter(|v| !(*v >= 0.0 && v.is_finite())) {
                return Err(Error::Config(format!("transfer.{k} = {v} must be a finite rate >= 0")));
            }
        }
        if lr <= 0.0 && (self.head_lr.is_some() || self.backbone_lr.is_some()) {
            return Err(Error::Config("transfer.head_lr / backbone_lr are multiples of lr: set lr > 0".into()));
        }
        if !self.from.exists() {
            return Err(Error::file(&self.from, "pretrained weights not found (transfer.from / --from)"));
        }
        Ok(())
    }

    /// The input transform the pretrained weights expect.
    pub fn preprocess(&self, shape: [usize; 3]) -> Result<Preprocess> {
        if self.from.is_dir() {
            return Ok(crate::train::checkpoint::Checkpoint::load(&self.from)?.preprocess());
        }
        Ok(super::framework_preprocess(self.layout, shape))
    }

    /// The pretrained model with a head for `classes`, frozen and rate-scaled as configured.
    pub fn model(&self, name: &str, classes: usize, lr: f64) -> Result<(Model<f32>, Option<LoadReport>, usize)> {
        let mut b = super::backbone(&self.from, Some(name), self.layout, classes)?;
        let scale = |v: Option<f64>| v.map_or(1.0, |v| v / lr);
        let frozen =
            freeze::apply(&mut b.model, &self.freeze, scale(self.backbone_lr), scale(self.head_lr), self.freeze_bn)?;
        Ok((b.model, b.report, frozen))
    }

    /// Sets the head (the last layer with weights, a linear layer) to a linear probe fitted on the features
    /// that enter it, for the training images `ds` (eval mode, no augmentation). Returns the probe's training
    /// accuracy.
    pub fn fit_head(model: &mut Model<f32>, ds: &Dataset, prep: &Preprocess) -> Result<f64> {
        let names: Vec<String> = model.net.layers().map(|(n, _)| n.to_string()).collect();
        let head = freeze::head_index(model)?;
        let before = head.checked_sub(1).ok_or_else(|| Error::Config("the head is the first layer".into()))?;
        let f = features::extract(model, ds, prep, &names[before], 64, &mut |_| {})?;
        let base = linear_probe::ProbeConfig { standardise: false, ..Default::default() };
        let (l2, _) = linear_probe::choose_l2(&f, model.classes, &base, 5)?;
        let (probe, _) = linear_probe::fit(&f, model.classes, &linear_probe::ProbeConfig { l2, ..base })?;
        let (w, b) = probe.as_linear();
        let mut set = 0;
        if let Some((_, layer)) = model.net.layers_mut().nth(head) {
            layer.visit_params("", &mut |name, p| {
                let src = if name == "weight" { &w } else { &b };
                if p.value.len() == src.len() {
                    p.value.data_mut().iter_mut().zip(src).for_each(|(d, &v)| *d = v as f32);
                    set += 1;
                }
            });
        }
        if set != 2 {
            return Err(Error::Config(format!(
                "the head '{}' is not a linear layer of the features' size",
                names[head]
            )));
        }
        Ok(probe.accuracy(&f))
    }

    /// Freezing and rates only (a resumed run restores the weights from its own checkpoint).
    pub fn apply(&self, model: &mut Model<f32>, lr: f64) -> Result<usize> {
        let scale = |v: Option<f64>| v.map_or(1.0, |v| v / lr);
        freeze::apply(model, &self.freeze, scale(self.backbone_lr), scale(self.head_lr), self.freeze_bn)
    }
}
