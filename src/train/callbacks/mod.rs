//! The callbacks every `convkit train` run uses, one per file. The command line adds its own (progress bars and
//! epoch lines) beside them.

pub mod anomaly;
pub mod checkpointer;
pub mod commit_config;
#[cfg(feature = "plot")]
pub mod curves;
pub mod early_stopping;
pub mod freeze;
pub mod lookahead;
pub mod metrics_csv;
pub mod misclassified;
pub mod monitor;
pub mod nonfinite;
pub mod plateau;
pub mod polyak;
pub mod report_json;
pub mod snapshots;
pub mod tensorboard;
pub mod time_to_target;

pub use anomaly::AnomalyDetector;
pub use checkpointer::{Checkpointer, RunMeta};
pub use commit_config::CommitConfig;
pub use early_stopping::{EarlyStopping, Metric};
pub use freeze::FreezeFrom;
pub use lookahead::{LookaheadConfig, LookaheadSync};
pub use metrics_csv::MetricsCsv;
pub use misclassified::MisclassifiedImages;
pub use monitor::Monitor;
pub use nonfinite::NonFiniteGuard;
pub use plateau::PlateauRule;
pub use polyak::PolyakAveraging;
pub use report_json::ReportJson;
pub use snapshots::Snapshots;
pub use tensorboard::TensorBoard;
pub use time_to_target::TimeToTarget;
