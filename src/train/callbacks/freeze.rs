//! Freezing parameters part-way through a run: from the start of epoch `from_epoch` (counting from 1) the named
//! parameters get no more updates. airbench trains its whitening layer's bias for 3 epochs and then freezes it
//! (`[whitening] bias_epochs`). A resumed run freezes them again at its first epoch, as the uninterrupted run had.

use crate::train::callback::{Callback, Progress, RunInfo};
use crate::train::trainer::Trainer;
use crate::{Error, Result};

pub struct FreezeFrom {
    /// Full parameter names, e.g. `whiten.bias`.
    pub params: Vec<String>,
    pub from_epoch: usize,
    /// What asked for it, for the error when a parameter does not exist (e.g. `whitening.bias_epochs`).
    pub origin: String,
}

impl Callback for FreezeFrom {
    fn on_train_begin(&mut self, t: &mut Trainer, _run: &RunInfo) -> Result<()> {
        let mut names = Vec::new();
        t.model.visit_params(&mut |n, _| names.push(n.to_string()));
        match self.params.iter().find(|p| !names.contains(p)) {
            Some(p) => Err(Error::Config(format!(
                "{}: model {} has no parameter {p} (its parameters: {})",
                self.origin,
                t.model.name,
                names.join(", ")
            ))),
            None => Ok(()),
        }
    }

    fn on_epoch_begin(&mut self, t: &mut Trainer, p: &Progress) -> Result<()> {
        if p.epoch >= self.from_epoch {
            t.model.visit_params(&mut |n, prm| {
                if self.params.iter().any(|q| q == n) {
                    prm.frozen = true;
                }
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::{Optimizer, OptimizerConfig};
    use crate::schedule::{Schedule, Scheduler};
    use crate::train::trainer::Method;

    fn trainer() -> Trainer {
        let model = crate::models::build::<f32>("lenet5", Some(10), 0).unwrap();
        let opt = Optimizer::<f32>::new(&OptimizerConfig::default(), 0.1, 0.0).unwrap();
        Trainer::new(model, Method::FirstOrder(opt), Scheduler::new(0.1, Schedule::Constant, 0.0, 1.0), 5)
    }

    fn frozen(t: &mut Trainer, name: &str) -> bool {
        let mut f = None;
        t.model.visit_params(&mut |n, p| {
            if n == name {
                f = Some(p.frozen);
            }
        });
        f.unwrap()
    }

    #[test]
    fn freezes_from_its_epoch_on_and_refuses_unknown_names() {
        let mut t = trainer();
        let mut cb = FreezeFrom { params: vec!["conv1.bias".into()], from_epoch: 4, origin: "test".into() };
        for epoch in 1..=5 {
            cb.on_epoch_begin(&mut t, &Progress::new(epoch, 5, 10)).unwrap();
            assert_eq!(frozen(&mut t, "conv1.bias"), epoch >= 4, "epoch {epoch}");
            assert!(!frozen(&mut t, "conv1.weight"));
        }
        let mut bad =
            FreezeFrom { params: vec!["nope.bias".into()], from_epoch: 1, origin: "whitening.bias_epochs".into() };
        let info = RunInfo {
            model: "lenet5".into(),
            data: String::new(),
            dir: Default::default(),
            train_images: 0,
            val_images: 0,
            classes: 10,
            epochs: 5,
            start_epoch: 0,
            resumed: false,
            sanity: None,
        };
        let err = bad.on_train_begin(&mut t, &info).unwrap_err().to_string();
        assert!(
            err.contains("whitening.bias_epochs") && err.contains("nope.bias") && err.contains("conv1.bias"),
            "{err}"
        );
    }
}
