//! Composing layers into networks: a sequence, a residual block, parallel branches joined by channel
//! concatenation (Inception). All three are layers themselves, so blocks nest.

pub mod concat;
pub mod residual;
pub mod sequential;

pub use concat::Concat;
pub use residual::Residual;
pub use sequential::Sequential;
pub mod probe;
pub mod profile;
