//! Losses over class scores: each returns the mean loss over the batch and its gradient with respect to the scores.

pub mod softmax;
pub mod svm;

pub use softmax::{add_softmax, one_hot, smooth, softmax_cross_entropy, softmax_cross_entropy_soft};
pub use svm::multiclass_svm;

use crate::tensor::{Float, Tensor};

pub struct LossOutput<T: Float> {
    /// Mean over the batch.
    pub loss: T,
    /// `dL/dscores`, shape of the scores.
    pub dscores: Tensor<T>,
    /// How many rows had the true class ranked first.
    pub correct: usize,
}

/// Which loss a model trains with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    #[default]
    SoftmaxCrossEntropy,
    MulticlassSvm,
}

impl Loss {
    pub fn compute<T: Float>(self, scores: &Tensor<T>, labels: &[usize]) -> LossOutput<T> {
        match self {
            Loss::SoftmaxCrossEntropy => softmax_cross_entropy(scores, labels),
            Loss::MulticlassSvm => multiclass_svm(scores, labels),
        }
    }
}

pub fn argmax<T: Float>(row: &[T]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}
