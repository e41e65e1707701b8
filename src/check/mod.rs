//! Checks from the lecture's "babysitting" toolbox. Gradient checking first.

pub mod gradcheck;
pub mod targets;
