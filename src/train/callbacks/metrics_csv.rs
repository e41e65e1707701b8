//! `metrics.csv`: one row per epoch. A resumed run keeps the rows up to its checkpoint and rewrites the rest.

use crate::train::callback::{Callback, EpochLog, RunInfo};
use crate::train::trainer::Trainer;
use crate::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const HEADER: &str = "epoch,step,train_loss,train_acc,val_loss,val_acc,lr,seconds,ema_val_loss,ema_val_acc";

pub struct MetricsCsv {
    path: PathBuf,
    /// Resuming after this epoch: keep its rows and those before.
    resume_after: Option<usize>,
}

impl MetricsCsv {
    pub fn new(path: PathBuf, resume_after: Option<usize>) -> Self {
        MetricsCsv { path, resume_after }
    }
}

impl Callback for MetricsCsv {
    fn on_train_begin(&mut self, _t: &mut Trainer, _run: &RunInfo) -> Result<()> {
        match self.resume_after {
            Some(upto) => truncate(&self.path, upto),
            None => write(&self.path, &format!("{HEADER}\n")),
        }
    }

    fn on_epoch_end(&mut self, _t: &mut Trainer, l: &EpochLog) -> Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|e| Error::file(&self.path, format!("cannot append: {e}")))?;
        let ema = l.ema_val.map_or(",".into(), |(loss, acc)| format!("{loss:.6},{acc:.6}"));
        writeln!(
            f,
            "{},{},{:.6},{:.6},{:.6},{:.6},{:.6e},{:.2},{ema}",
            l.epoch, l.step, l.train_loss, l.train_accuracy, l.val.loss, l.val.accuracy, l.lr, l.seconds
        )
        .map_err(|e| Error::file(&self.path, format!("cannot append: {e}")))
    }
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::file(path, format!("cannot write: {e}")))
}

/// Keeps the rows of epochs `<= upto`.
fn truncate(path: &Path, upto: usize) -> Result<()> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut keep = vec![HEADER.to_string()];
    for line in text.lines().skip(1) {
        if line.split(',').next().and_then(|e| e.parse::<usize>().ok()).is_some_and(|e| e <= upto) {
            keep.push(line.to_string());
        }
    }
    write(path, &(keep.join("\n") + "\n"))
}
