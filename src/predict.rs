//! `convkit predict`: the top classes of a trained model for image files, with probabilities.

use crate::augment::tta::TestViews;
use crate::data::folder::decode;
use crate::pretrained::Layout;
use crate::train::checkpoint::Checkpoint;
use crate::{Error, Mode, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Serialize)]
pub struct Prediction {
    pub file: PathBuf,
    /// `(class, probability)`, most likely first.
    pub top: Vec<(String, f64)>,
}

/// What predicting needs: a model with weights, its input transform, and class names.
pub struct Predictor {
    pub model: crate::models::Model<f32>,
    pub prep: crate::data::preprocess::Preprocess,
    pub classes: Vec<String>,
    /// The training crop's pad (the shift of a "crop" view).
    pub pad: usize,
}

impl Predictor {
    pub fn from_checkpoint(ck: &Checkpoint) -> Result<Predictor> {
        let pad = crate::evaluate::run_config(ck).map_or(0, |cfg| cfg.augment.crop_pad);
        Ok(Predictor { model: ck.model()?, prep: ck.preprocess(), classes: ck.meta.classes.clone(), pad })
    }

    /// Another framework's weights for a registered model; the class count comes from the file's classifier.
    /// Names come from `labels` (one per line), else `class 0`, `class 1`, ...
    pub fn from_weights(path: &Path, model: &str, layout: Layout, labels: Option<&Path>) -> Result<Predictor> {
        let mut b = crate::transfer::backbone(path, Some(model), layout, 1000)?;
        let head = b.report.as_ref().and_then(|r| r.mismatched.iter().find(|m| m.0.ends_with("weight")).cloned());
        if let Some((_, file_shape, _)) = head {
            b = crate::transfer::backbone(path, Some(model), layout, file_shape[0])?;
        }
        if let Some(r) = b.report.as_ref().filter(|r| !r.missing.is_empty() || !r.mismatched.is_empty()) {
            return Err(Error::file(path, format!("does not fill model '{model}': {r}")));
        }
        let n = b.model.classes;
        let classes = match labels {
            Some(l) => {
                let text = std::fs::read_to_string(l).map_err(|e| Error::file(l, format!("cannot read: {e}")))?;
                let names: Vec<String> =
                    text.lines().map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
                if names.len() != n {
                    return Err(Error::file(l, format!("{} names for a classifier of {n} classes", names.len())));
                }
                names
            }
            None => (0..n).map(|i| format!("class {i}")).collect(),
        };
        Ok(Predictor { model: b.model, prep: b.prep, classes, pad: 0 })
    }

    /// The top `k` classes for each file; `views` are averaged (test-time augmentation).
    pub fn predict(&mut self, files: &[PathBuf], k: usize, views: TestViews) -> Result<Vec<Prediction>> {
        let input = self.model.input;
        let [c, h, w] = input;
        let views = crate::augment::tta::views(views, input, self.pad);
        let mut out = Vec::new();
        for f in files {
            let bytes = std::fs::read(f).map_err(|e| Error::file(f, format!("cannot read: {e}")))?;
            let (_, _, px) =
                decode(&bytes, c, Some([h, w])).map_err(|e| Error::file(f, format!("cannot decode the image: {e}")))?;
            let mut batch = Vec::with_capacity(px.len() * views.len());
            for v in &views {
                let mut img = px.clone();
                v.apply(&mut img, input);
                batch.extend(img);
            }
            let scores = self.model.forward(&self.prep.apply(&batch, views.len()), Mode::Infer);
            let mut p = vec![0f64; self.classes.len()];
            for row in scores.data().chunks(p.len()) {
                crate::loss::add_softmax(row, &mut p);
            }
            p.iter_mut().for_each(|x| *x /= views.len() as f64);
            let mut ranked: Vec<(String, f64)> =
                p.iter().enumerate().map(|(i, &v)| (self.classes[i].clone(), v)).collect();
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
            ranked.truncate(k);
            out.push(Prediction { file: f.clone(), top: ranked });
        }
        Ok(out)
    }
}

/// The top `k` classes for each file from a checkpoint; `views` are averaged (test-time augmentation).
pub fn predict(ck: &Checkpoint, files: &[PathBuf], k: usize, views: TestViews) -> Result<Vec<Prediction>> {
    Predictor::from_checkpoint(ck)?.predict(files, k, views)
}
