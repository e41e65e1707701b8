//! Accuracy, per-class accuracy and the confusion matrix of a model on a dataset.

use crate::data::loader::{self, LoaderConfig};
use crate::data::preprocess::Preprocess;
use crate::data::Dataset;
use crate::loss::softmax_cross_entropy;
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

pub fn evaluate(
    model: &mut Model<f32>,
    ds: &Arc<Dataset>,
    indices: Arc<Vec<usize>>,
    prep: &Arc<Preprocess>,
    batch_size: usize,
) -> EvalReport {
    let k = ds.classes.len();
    let mut confusion = vec![vec![0usize; k]; k];
    let (mut loss_sum, mut count) = (0f64, 0usize);
    let cfg = LoaderConfig { batch_size, shuffle: false, augment: Default::default(), seed: 0 };
    for b in loader::epoch(ds.clone(), indices, prep.clone(), &cfg, 0) {
        let y = model.forward(&b.x, Mode::Eval);
        let out = softmax_cross_entropy(&y, &b.labels);
        loss_sum += out.loss as f64 * b.labels.len() as f64;
        count += b.labels.len();
        let c = y.len() / b.labels.len();
        for (row, &t) in y.data().chunks(c).zip(&b.labels) {
            let p = crate::loss::argmax(row);
            confusion[t][p.min(k - 1)] += 1;
        }
    }
    let correct: usize = (0..k).map(|i| confusion[i][i]).sum();
    let per_class = (0..k)
        .map(|i| {
            let n: usize = confusion[i].iter().sum();
            ClassAccuracy {
                class: ds.classes[i].clone(),
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

impl std::fmt::Display for EvalReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "accuracy {:.2}% ({} images), loss {:.4}", 100.0 * self.accuracy, self.count, self.loss)?;
        writeln!(f, "per class:")?;
        for c in &self.per_class {
            writeln!(f, "  {:<14} {:>6.2}%  ({} images)", c.class, 100.0 * c.accuracy, c.count)?;
        }
        writeln!(f, "confusion matrix (rows: true class, columns: predicted):")?;
        for (i, row) in self.confusion.iter().enumerate() {
            let cells: Vec<String> = row.iter().map(|v| format!("{v:>5}")).collect();
            writeln!(f, "  {:<14}{}", self.per_class[i].class, cells.join(""))?;
        }
        Ok(())
    }
}
