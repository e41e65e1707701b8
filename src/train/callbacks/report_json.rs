//! `report.json`: the run's final figures, written once the test split has been evaluated.

use crate::train::callback::Callback;
use crate::train::trainer::{TestSet, Trainer};
use crate::train::TrainReport;
use crate::{Error, Result};
use std::path::PathBuf;

pub struct ReportJson {
    pub path: PathBuf,
}

impl Callback for ReportJson {
    fn on_train_end(&mut self, _t: &mut Trainer, _test: &TestSet, r: &mut TrainReport) -> Result<()> {
        let mut json = serde_json::to_value(&*r).expect("report serialises");
        json["test"] = serde_json::to_value(r.test.as_ref()).expect("serialises");
        let text = serde_json::to_string_pretty(&json).expect("serialises");
        std::fs::write(&self.path, text).map_err(|e| Error::file(&self.path, format!("cannot write: {e}")))
    }
}
