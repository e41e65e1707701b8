//! Checks from the lecture's "babysitting" toolbox. Gradient checking first.

pub mod diagnose;
pub mod gradcheck;
pub mod init_stats;
pub mod lr_find;
pub mod sanity;
pub mod targets;
