//! A run: its folder, its data (split and preprocessed as the recipe says), its model, and where it starts from
//! (epoch 0, or a `last` checkpoint when resuming). `train` builds the `Trainer` and the callbacks from it.

use super::callback::{Callbacks, EpochLog, RunInfo};
use super::callbacks::{
    Checkpointer, CommitConfig, EarlyStopping, FreezeFrom, LookaheadSync, MetricsCsv, MisclassifiedImages, Monitor,
    NonFiniteGuard, PlateauRule, PolyakAveraging, ReportJson, RunMeta, Snapshots, TensorBoard, TimeToTarget,
};
use super::checkpoint::{self, Checkpoint};
use super::trainer::{Clip, Method, TestSet, TrainData, Trainer};
use super::{TrainConfig, TrainReport};
use crate::check::sanity::{SanityOptions, SanityReport};
use crate::data::loader::LoaderConfig;
use crate::data::preprocess::Preprocess;
use crate::data::{split, DataSpec, Split};
use crate::evaluate::EvalReport;
use crate::models::{self, ModelInfo};
use crate::optim::lbfgs::Lbfgs;
use crate::optim::{Optimizer, OptimizerConfig};
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

pub struct Run {
    pub cfg: TrainConfig,
    pub dir: PathBuf,
    pub spec: DataSpec,
    pub info: ModelInfo,
    pub data: TrainData,
    pub classes: Vec<String>,
    /// Epochs already done (0 for a fresh run).
    pub start_epoch: usize,
    pub resumed: Option<Checkpoint>,
    /// The sanity checks' report, when they ran.
    pub sanity: Option<SanityReport>,
    /// The test split, loaded and checked before training (so that a problem in it shows up now, not after the
    /// run), touched only by `report` at the end.
    test: Arc<crate::data::Dataset>,
}

impl Run {
    /// Resolves the folder, loads and splits the data, fits (or restores) the preprocessing.
    pub fn prepare(mut cfg: TrainConfig, resume: Option<&Path>) -> Result<Run> {
        if let Some(d) = resume.filter(|d| !has_checkpoint(d)) {
            return Err(no_checkpoint(d));
        }
        let resumed = resume.map(resume_point).transpose()?;
        cfg.validate()?;
        let dir = match resume {
            Some(d) => d.to_path_buf(),
            None => fresh_dir(&cfg.out.clone().unwrap_or_else(|| cfg.default_out())),
        };
        cfg.out = Some(dir.clone());
        let spec: DataSpec = cfg.data.parse()?;
        let info = models::lookup(&cfg.model)?;
        let mut full = spec.load(Split::Train, Some([info.input[1], info.input[2]]))?;
        if let Some(names) = &cfg.classes {
            full = full.only_classes(names)?;
        }
        if full.shape != info.input {
            return Err(Error::Config(format!(
                "model {} takes {:?} (C, H, W) images but {} gives {:?}; pick a model for this data",
                cfg.model, info.input, spec, full.shape
            )));
        }
        if full.classes.len() < 2 {
            return Err(Error::Config(format!(
                "{spec} has {} class(es) ({:?}): a classifier needs at least two",
                full.classes.len(),
                full.classes
            )));
        }
        let test = Arc::new(load_test(&spec, &info, &full.classes, cfg.classes.is_some())?);
        let val_n = cfg.val.unwrap_or_else(|| spec.default_val(full.len()));
        if val_n >= full.len() {
            return Err(Error::Config(format!(
                "val = {val_n} would take all {} training images of {spec}: leave some to train on (e.g. val = {})",
                full.len(),
                full.len() / 10
            )));
        }
        let (train, val) = split_indices(&cfg, &spec, full.len());
        let prep = match (&resumed, &cfg.transfer) {
            (Some(ck), _) => ck.preprocess(),
            // Pretrained weights expect the transform they were trained with, not one fitted here.
            (None, Some(t)) => t.preprocess(info.input)?,
            (None, None) => Preprocess::fit(cfg.preprocess, &full.subset(&train))?,
        };
        let classes = full.classes.clone();
        let mut augment = cfg.augment.clone();
        augment.fit(&full, &train);
        let loader = LoaderConfig { batch_size: cfg.batch_size, shuffle: true, augment, seed: cfg.seed };
        let (dataset, prep) = (Arc::new(full), Arc::new(prep));
        let data = TrainData { dataset, train: Arc::new(train), val: Arc::new(val), prep, loader };
        let start_epoch = resumed.as_ref().map_or(0, |ck| ck.meta.epoch);
        std::fs::create_dir_all(dir.join("checkpoints"))
            .map_err(|e| Error::file(&dir, format!("cannot create the run folder: {e}")))?;
        // A resumed run's recipe waits beside the old one until its first epoch is checkpointed (CommitConfig).
        let cp = dir.join(if resumed.is_some() { "config.pending.toml" } else { "config.toml" });
        std::fs::write(&cp, cfg.to_toml()).map_err(|e| Error::file(&cp, format!("cannot write: {e}")))?;
        Ok(Run { cfg, dir, spec, info, data, classes, start_epoch, resumed, sanity: None, test })
    }

    /// The lecture's checks on this run's training images.
    pub fn sanity_checks(&self, opts: &SanityOptions) -> Result<SanityReport> {
        crate::check::sanity::run_on(&self.cfg, &self.data.dataset, &self.data.train, opts)
    }

    /// The model, the optimizer (or L-BFGS), the schedule, penalty and clipping; restored when resuming.
    pub fn trainer(&self) -> Result<Trainer> {
        let cfg = &self.cfg;
        let mut model = self.model()?.for_training();
        if cfg.norm_lr_scale != 1.0 {
            let s = cfg.norm_lr_scale;
            model.visit_params(&mut |_, p| {
                if p.kind == crate::layers::ParamKind::Norm {
                    p.lr_scale *= s;
                }
            });
        }
        if let Some(w) = &cfg.whitening {
            // Also when resuming: the weights then come from the checkpoint, but the layer must be frozen again.
            let d = &self.data;
            w.apply(&mut model, &d.dataset, &d.train, &d.prep)?;
        }
        crate::memory::check_batch(&mut model, cfg.batch_size, "batch_size")?;
        let method = match &cfg.optimizer {
            OptimizerConfig::Lbfgs(lb) => Method::Lbfgs(self.lbfgs(lb)?),
            o => Method::FirstOrder(Optimizer::new(o, cfg.lr, cfg.weight_decay)?),
        };
        let mut t = Trainer::new(model, method, cfg.scheduler(), cfg.epochs);
        t.penalty = cfg.penalty();
        t.clip = Clip { value: cfg.clip_value, norm: cfg.clip_norm };
        t.label_smoothing = cfg.label_smoothing;
        if let Some(ck) = &self.resumed {
            self.restore(&mut t, ck)?;
        }
        Ok(t)
    }

    /// The recipe's model: freshly initialised, or pretrained and partly frozen for fine-tuning.
    fn model(&self) -> Result<models::Model<f32>> {
        let cfg = &self.cfg;
        let classes = self.classes.len();
        match (&cfg.transfer, &self.resumed) {
            (None, _) => models::build::<f32>(&cfg.model, Some(classes), cfg.seed),
            (Some(t), Some(_)) => {
                let mut m = models::build::<f32>(&cfg.model, Some(classes), cfg.seed)?;
                t.apply(&mut m, cfg.lr)?;
                Ok(m)
            }
            (Some(t), None) => {
                let (mut m, report, frozen) = t.model(&cfg.model, classes, cfg.lr)?;
                if let Some(r) = report {
                    tracing::info!("{}: {}", t.from.display(), r.to_string().trim_end());
                }
                if t.probe_head {
                    let train = self.data.dataset.subset(&self.data.train);
                    let acc = crate::transfer::finetune::TransferConfig::fit_head(&mut m, &train, &self.data.prep)?;
                    tracing::info!("new head fitted as a linear probe: {:.2}% training accuracy", 100.0 * acc);
                }
                tracing::info!(
                    "fine-tuning from {}: {frozen} frozen weights (freeze {})",
                    t.from.display(),
                    String::from(t.freeze.clone())
                );
                Ok(m)
            }
        }
    }

    /// L-BFGS settings, refused unless the loss is the same function at every evaluation.
    fn lbfgs(&self, lb: &Lbfgs) -> Result<Lbfgs> {
        let n = self.data.train.len();
        // Curvature pairs from different mini-batches or augmentations describe different functions.
        if self.cfg.batch_size < n || !self.cfg.augment.is_identity() {
            return Err(Error::Config(format!(
                "L-BFGS needs the same deterministic loss at every evaluation, so it runs full-batch only: set \
                 batch_size >= the {n} training images (e.g. limit = 2000, batch_size = 2000) and turn augmentation \
                 off, or pick a mini-batch optimizer (momentum, nesterov, adam, ...)"
            )));
        }
        Ok(lb.clone())
    }

    /// Weights, optimizer state, schedule memory, step and best figures from `last`.
    fn restore(&self, t: &mut Trainer, ck: &Checkpoint) -> Result<()> {
        checkpoint::load_into(&mut t.model, &ck.tensors, &ck.dir.join("model.safetensors"))?;
        if let Method::FirstOrder(opt) = &mut t.method {
            let state =
                ck.optimizer.iter().filter(|(k, _)| !k.starts_with("polyak.")).map(|(k, v)| (k.clone(), v.clone()));
            opt.load_state(state.collect(), ck.meta.optimizer_t)
                .map_err(|e| Error::file(ck.dir.join("optimizer.safetensors"), e.to_string()))?;
        }
        if let Some(p) = &ck.meta.plateau {
            t.sched.plateau = p.clone();
        }
        // Only best's epoch is needed: a damaged `best` must not block resuming from a good `last`.
        let best = self.dir.join("checkpoints/best");
        let best_epoch = Checkpoint::meta_of(&best).map_or(0, |m| m.epoch);
        (t.step, t.best) = (ck.meta.step, (ck.meta.best_val_accuracy, best_epoch));
        Ok(())
    }

    /// The run's own callbacks, in the order they must run, then the caller's.
    pub fn callbacks(&self, t: &mut Trainer, extra: Callbacks, monitor_every: Option<u64>) -> Result<Callbacks> {
        let ck_dir = self.dir.join("checkpoints");
        let mut cbs = Callbacks::default();
        cbs.push(NonFiniteGuard { checkpoints: ck_dir.clone() });
        cbs.push(PlateauRule);
        if let Some(l) = &self.cfg.lookahead {
            cbs.push(LookaheadSync::new(l.clone()));
        }
        if let Some(w) = &self.cfg.whitening {
            if let Some(n) = w.bias_epochs {
                let params = vec![format!("{}.bias", w.layer)];
                cbs.push(FreezeFrom { params, from_epoch: n + 1, origin: "whitening.bias_epochs".into() });
            }
        }
        if let Some(d) = self.cfg.ema_decay {
            cbs.push(PolyakAveraging::new(t, d, ck_dir.clone(), self.run_meta(), self.resumed.as_ref())?);
        }
        if let Some(every) = monitor_every {
            let resume_after = self.resumed.as_ref().map(|ck| ck.meta.step);
            cbs.push(Monitor::new(self.dir.join("monitor.jsonl"), every, resume_after)?);
        }
        cbs.push(MetricsCsv::new(self.dir.join("metrics.csv"), self.resumed.as_ref().map(|_| self.start_epoch)));
        cbs.push(MisclassifiedImages { path: self.dir.join("misclassified.json") });
        let tb_resume = self.resumed.as_ref().map(|ck| (self.start_epoch, ck.meta.step));
        cbs.push(TensorBoard::new(self.dir.join("tb"), tb_resume));
        #[cfg(feature = "plot")]
        cbs.push(super::callbacks::curves::Curves::new(self.dir.join("metrics.csv"), self.dir.join("curves.png")));
        if matches!(self.cfg.schedule, crate::schedule::Schedule::Sgdr { .. }) {
            let warmup_epochs = self.cfg.warmup_epochs;
            cbs.push(Snapshots { dir: ck_dir.clone(), run: self.run_meta(), warmup_epochs });
        }
        cbs.push(Checkpointer { dir: ck_dir, run: self.run_meta() });
        cbs.push(CommitConfig { pending: self.dir.join("config.pending.toml"), path: self.dir.join("config.toml") });
        if let Some(es) = &self.cfg.early_stopping {
            cbs.push(EarlyStopping::new(es.clone()));
        }
        if let Some(t) = &self.cfg.target {
            cbs.push(TimeToTarget::new(t.clone()));
        }
        cbs.push(ReportJson { path: self.dir.join("report.json") });
        #[cfg(feature = "plot")]
        cbs.push(crate::report::HtmlReport::new(self.dir.clone()));
        cbs.0.extend(extra.0);
        Ok(cbs)
    }

    pub fn info(&self) -> RunInfo {
        RunInfo {
            model: self.cfg.model.clone(),
            data: self.cfg.data.clone(),
            dir: self.dir.clone(),
            train_images: self.data.train.len(),
            val_images: self.data.val.len(),
            classes: self.classes.len(),
            epochs: self.cfg.epochs,
            start_epoch: self.start_epoch,
            resumed: self.resumed.is_some(),
            sanity: self.sanity.clone(),
        }
    }

    fn run_meta(&self) -> RunMeta {
        RunMeta {
            model: self.cfg.model.clone(),
            classes: self.classes.clone(),
            input: self.info.input,
            data: self.cfg.data.clone(),
            data_dir: self.spec.resolve().ok().and_then(|s| s.path.canonicalize().ok()),
            seed: self.cfg.seed,
            optimizer: self.cfg.optimizer.kind(),
            prep: self.data.prep.clone(),
        }
    }

    /// The test split (`withheld`: no image of it, for runs that must not see it).
    pub fn test_set(&self, withheld: bool) -> Result<TestSet> {
        let n = if withheld { 0 } else { self.test.len() };
        let idx = Arc::new((0..n).collect());
        Ok(TestSet { dataset: self.test.clone(), idx, prep: self.data.prep.clone() })
    }

    /// The test split, touched once: the `best` checkpoint's figures on it.
    pub fn report(
        &self,
        t: &Trainer,
        last: Option<&EpochLog>,
        test: &TestSet,
        started: Instant,
        train_seconds: f64,
    ) -> Result<TrainReport> {
        let ev = match test.idx.is_empty() {
            true => EvalReport::withheld(),
            false => test.evaluate(&mut Checkpoint::load(&self.dir.join("checkpoints").join("best"))?.model()?),
        };
        Ok(TrainReport {
            run_dir: self.dir.clone(),
            model: self.cfg.model.clone(),
            data: self.cfg.data.clone(),
            epochs: self.cfg.epochs,
            resumed_from: self.resumed.as_ref().map(|_| self.start_epoch),
            train_images: self.data.train.len(),
            val_images: self.data.val.len(),
            test_images: ev.count,
            final_train_loss: last.map_or(f64::NAN, |l| l.train_loss),
            best_epoch: t.best.1,
            best_val_accuracy: t.best.0,
            test_accuracy: ev.accuracy,
            test_loss: ev.loss,
            ema_val_accuracy: None,
            ema_test_accuracy: None,
            stopped_early: None,
            time_to_target: None,
            sanity: self.sanity.clone(),
            diagnosis: Vec::new(),
            wall_seconds: started.elapsed().as_secs_f64(),
            train_seconds,
            test: Some(ev),
        })
    }
}

/// The training and validation indices: a seeded split, then (with `limit`) a seeded random training subset.
pub fn split_indices(cfg: &TrainConfig, spec: &DataSpec, n: usize) -> (Vec<usize>, Vec<usize>) {
    let val_n = cfg.val.unwrap_or_else(|| spec.default_val(n));
    let (mut train, val) = split::train_val(n, val_n, cfg.seed);
    if let Some(l) = cfg.limit {
        // Image folders are stored class by class, so a prefix would be one class.
        use rand::seq::SliceRandom;
        train.shuffle(&mut crate::init::rng(cfg.seed ^ 0x11a1_7000));
        train.truncate(l);
        train.sort_unstable();
    }
    (train, val)
}

/// A fresh run folder: the given one, or the next free `NAME-2`, `NAME-3`, ... if it already holds a run.
fn fresh_dir(base: &Path) -> PathBuf {
    (1..)
        .map(|i| if i == 1 { base.to_path_buf() } else { PathBuf::from(format!("{}-{i}", base.display())) })
        .find(|p| !has_checkpoint(p))
        .expect("some suffix is free")
}

/// Whether a run folder holds a checkpoint. One that does not (a start killed or diverged before its first epoch
/// ended) is reused by a fresh run rather than left beside `RUN-2`.
fn has_checkpoint(run: &Path) -> bool {
    ["last", "last.prev", "best", "best.prev"]
        .iter()
        .any(|c| run.join("checkpoints").join(c).join("meta.json").exists())
}

/// `--resume RUN` where RUN has no checkpoint: say so, and how to start it again.
fn no_checkpoint(run: &Path) -> Error {
    Error::file(
        run,
        format!(
            "nothing to resume: the run stopped before its first epoch was checkpointed. Start it again in the same \
             folder: convkit train --config {} --out {}",
            run.join("config.toml").display(),
            run.display()
        ),
    )
}

/// The checkpoint a resumed run continues from: `last`, or when it is damaged the newest good one of `last.prev`
/// and `best` (without optimizer state: momentum restarts from zero), said in a warning.
fn resume_point(run: &Path) -> Result<Checkpoint> {
    let dir = run.join("checkpoints");
    let damaged = match Checkpoint::load(&dir.join("last")) {
        Ok(ck) => return Ok(ck),
        Err(e) => e,
    };
    let mut good: Vec<Checkpoint> =
        ["last.prev", "best"].iter().filter_map(|n| Checkpoint::load(&dir.join(n)).ok()).collect();
    good.sort_by_key(|c| std::cmp::Reverse(c.meta.epoch));
    let Some(ck) = good.into_iter().next() else { return Err(damaged) };
    tracing::warn!(
        "{damaged}; resuming from {} (epoch {}) instead{}",
        ck.dir.display(),
        ck.meta.epoch,
        if ck.optimizer.is_empty() { ", with fresh optimizer state" } else { "" }
    );
    Ok(ck)
}

/// The test split at the model's input size, its labels in the training split's class numbering.
fn load_test(spec: &DataSpec, info: &ModelInfo, classes: &[String], subset: bool) -> Result<crate::data::Dataset> {
    let mut test = spec.load(Split::Test, Some([info.input[1], info.input[2]]))?;
    if subset {
        test = test.only_classes(classes)?;
    }
    if test.shape != info.input {
        return Err(Error::Config(format!(
            "the test split of {spec} has {:?} images, the model takes {:?}",
            test.shape, info.input
        )));
    }
    if test.is_empty() {
        return Err(Error::Config(format!("the test split of {spec} has no images")));
    }
    test.relabel(classes, &format!("the test split of {spec}"))?;
    Ok(test)
}
