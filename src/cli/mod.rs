//! Pieces of the `convkit` command that are about the terminal, not about training.

pub mod data;
pub mod progress;
pub mod search;
pub mod transfer;
