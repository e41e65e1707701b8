//! `convkit predict`: the top classes of a trained model for image files, with probabilities.

use crate::augment::tta::TestViews;
use crate::data::folder::decode;
use crate::train::checkpoint::Checkpoint;
use crate::{Error, Mode, Result};
use serde::Serialize;
use std::path::PathBuf;

#[derive(Clone, Debug, Serialize)]
pub struct Prediction {
    pub file: PathBuf,
    /// `(class, probability)`, most likely first.
    pub top: Vec<(String, f64)>,
}

/// The top `k` classes for each file; `views` are averaged (test-time augmentation).
pub fn predict(ck: &Checkpoint, files: &[PathBuf], k: usize, views: TestViews) -> Result<Vec<Prediction>> {
    let mut model = ck.model()?;
    let prep = ck.preprocess();
    let [c, h, w] = ck.meta.input;
    let pad = crate::evaluate::run_config(ck).map_or(0, |cfg| cfg.augment.crop_pad);
    let views = crate::augment::tta::views(views, ck.meta.input, pad);
    let mut out = Vec::new();
    for f in files {
        let bytes = std::fs::read(f).map_err(|e| Error::file(f, format!("cannot read: {e}")))?;
        let (_, _, px) =
            decode(&bytes, c, Some([h, w])).map_err(|e| Error::file(f, format!("cannot decode the image: {e}")))?;
        let mut batch = Vec::with_capacity(px.len() * views.len());
        for v in &views {
            let mut img = px.clone();
            v.apply(&mut img, ck.meta.input);
            batch.extend(img);
        }
        let scores = model.forward(&prep.apply(&batch, views.len()), Mode::Eval);
        let mut p = vec![0f64; ck.meta.classes.len()];
        for row in scores.data().chunks(p.len()) {
            crate::loss::add_softmax(row, &mut p);
        }
        p.iter_mut().for_each(|x| *x /= views.len() as f64);
        let mut ranked: Vec<(String, f64)> =
            p.iter().enumerate().map(|(i, &v)| (ck.meta.classes[i].clone(), v)).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        ranked.truncate(k);
        out.push(Prediction { file: f.clone(), top: ranked });
    }
    Ok(out)
}
