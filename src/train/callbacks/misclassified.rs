//! `RUN/misclassified.json`: after every validation, the first validation images the model gets wrong (in the
//! validation split's order, so successive epochs can be compared), each with its true and predicted class, the
//! predicted probability, and the image itself as a PNG (base64) for the report's grid.

use crate::data::Dataset;
use crate::evaluate::{probabilities, TestViews};
use crate::train::callback::{Callback, EpochLog};
use crate::train::trainer::{TrainData, Trainer};
use crate::{Error, Result};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;

/// Images shown at most, and validation images looked at to find them (a very accurate model may have fewer).
const SHOWN: usize = 32;
const SCANNED: usize = 4096;
const BATCH: usize = 256;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Mistake {
    /// Index into the training split's dataset.
    pub index: usize,
    pub truth: String,
    pub predicted: String,
    pub probability: f64,
    pub png_base64: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Misclassified {
    pub epoch: usize,
    pub scanned: usize,
    pub mistakes: Vec<Mistake>,
}

pub struct MisclassifiedImages {
    pub path: PathBuf,
}

impl Callback for MisclassifiedImages {
    fn on_evaluate_end(&mut self, t: &mut Trainer, data: &TrainData, log: &mut EpochLog) -> Result<()> {
        let m = find(t, data, log.epoch);
        let text = serde_json::to_string(&m).expect("serialises");
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, text).map_err(|e| Error::file(&tmp, format!("cannot write: {e}")))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| Error::file(&self.path, format!("cannot move into place: {e}")))
    }
}

fn find(t: &mut Trainer, data: &TrainData, epoch: usize) -> Misclassified {
    let (ds, k) = (&data.dataset, data.dataset.classes.len());
    let mut out = Misclassified { epoch, scanned: 0, mistakes: Vec::new() };
    for chunk in data.val.chunks(BATCH).take(SCANNED / BATCH) {
        // Through evaluation's own path: its batch shapes, and its buffers handed back before training resumes.
        let (probs, labels) =
            probabilities(&mut t.model, ds, Arc::new(chunk.to_vec()), &data.prep, BATCH, TestViews::Single, 0);
        for ((&i, p), &truth) in chunk.iter().zip(probs.chunks(k)).zip(&labels) {
            let pred = crate::loss::argmax(p).min(k - 1);
            if pred != truth && out.mistakes.len() < SHOWN {
                out.mistakes.push(Mistake {
                    index: i,
                    truth: ds.classes[truth].clone(),
                    predicted: ds.classes[pred].clone(),
                    probability: p[pred],
                    png_base64: png(ds, i),
                });
            }
        }
        out.scanned += chunk.len();
        if out.mistakes.len() >= SHOWN {
            break;
        }
    }
    out
}

/// Image `i` as a base64 PNG (grey for one channel, RGB for three).
pub fn png(ds: &Dataset, i: usize) -> String {
    let [c, h, w] = ds.shape;
    let img = ds.image(i);
    let hwc: Vec<u8> = (0..h * w).flat_map(|p| (0..c.min(3)).map(move |ch| img[ch * h * w + p])).collect();
    let dynimg = match c {
        1 => image::GrayImage::from_raw(w as u32, h as u32, hwc).map(image::DynamicImage::ImageLuma8),
        _ => image::RgbImage::from_raw(w as u32, h as u32, hwc).map(image::DynamicImage::ImageRgb8),
    };
    let mut bytes = std::io::Cursor::new(Vec::new());
    match dynimg.map(|d| d.write_to(&mut bytes, image::ImageFormat::Png)) {
        Some(Ok(())) => base64::engine::general_purpose::STANDARD.encode(bytes.into_inner()),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_round_trips_through_the_png() {
        let ds = Dataset {
            shape: [3, 2, 2],
            images: (0..12).map(|v| v * 20).collect(),
            labels: vec![0],
            classes: vec!["a".into()],
            skipped: vec![],
        };
        let bytes = base64::engine::general_purpose::STANDARD.decode(png(&ds, 0)).unwrap();
        let back = image::load_from_memory(&bytes).unwrap().to_rgb8();
        // Pixel (0, 1): channel planes hold 20, 100, 180 there.
        assert_eq!(back.get_pixel(1, 0).0, [20, 100, 180]);
    }
}
