//! `convkit predict`: the top classes of a trained model for image files, with probabilities.

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

pub fn predict(ck: &Checkpoint, files: &[PathBuf], k: usize) -> Result<Vec<Prediction>> {
    let mut model = ck.model()?;
    let prep = ck.preprocess();
    let [c, h, w] = ck.meta.input;
    let mut out = Vec::new();
    for f in files {
        let bytes = std::fs::read(f).map_err(|e| Error::file(f, format!("cannot read: {e}")))?;
        let (_, _, px) =
            decode(&bytes, c, Some([h, w])).map_err(|e| Error::file(f, format!("cannot decode the image: {e}")))?;
        let scores = model.forward(&prep.apply(&px, 1), Mode::Eval);
        let mut p = vec![0f64; scores.len()];
        crate::loss::add_softmax(scores.data(), &mut p);
        let mut ranked: Vec<(String, f64)> =
            p.iter().enumerate().map(|(i, &v)| (ck.meta.classes[i].clone(), v)).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        ranked.truncate(k);
        out.push(Prediction { file: f.clone(), top: ranked });
    }
    Ok(out)
}
