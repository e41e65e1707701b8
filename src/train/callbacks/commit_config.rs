//! A resumed run's changed recipe (`--resume RUN --epochs 70 --lr ...`) becomes `RUN/config.toml` only once an epoch
//! under it has finished and been checkpointed: until then config.toml keeps describing the run that wrote `last`,
//! so an override that fails (a rate that diverges) is not what the next plain `--resume` picks up.

use crate::train::callback::{Callback, EpochLog};
use crate::train::trainer::Trainer;
use crate::{Error, Result};
use std::path::PathBuf;

pub struct CommitConfig {
    /// `RUN/config.pending.toml`, moved to `RUN/config.toml`.
    pub pending: PathBuf,
    pub path: PathBuf,
}

impl Callback for CommitConfig {
    fn on_epoch_end(&mut self, _t: &mut Trainer, _log: &EpochLog) -> Result<()> {
        if self.pending.exists() {
            std::fs::rename(&self.pending, &self.path)
                .map_err(|e| Error::file(&self.path, format!("cannot move the resumed recipe into place: {e}")))?;
        }
        Ok(())
    }
}
