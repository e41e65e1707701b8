//! convkit: train convolutional networks the way cs231n's "Training CNNs" lecture teaches.
//!
//! The layers own their maths (`forward` and an analytic `backward`), every backward pass is gradient-checked in
//! f64, and the CPU kernels lower convolutions to cache-sized GEMMs split across cores. See ARCHITECTURE.md.

pub mod augment;
pub mod bench;
pub mod check;
pub mod data;
pub mod ensemble;
pub mod error;
pub mod evaluate;
pub mod init;
pub mod kernels;
pub mod layers;
pub mod loss;
pub mod memory;
pub mod models;
pub mod net;
pub mod optim;
#[cfg(feature = "plot")]
pub mod plot;
pub mod predict;
pub mod pretrained;
pub mod race;
pub mod regularize;
#[cfg(feature = "plot")]
pub mod report;
pub mod schedule;
#[cfg(feature = "search")]
pub mod search;
pub mod summary;
pub mod tensor;
pub mod tensorboard;
pub mod train;
pub mod transfer;
pub mod zoo;

pub use error::{Error, Result};
pub use layers::{Layer, Mode};
pub use models::Model;
pub use tensor::{Float, Tensor};
