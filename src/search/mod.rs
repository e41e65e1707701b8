//! Hyperparameter search, the lecture's way: random rather than grid, on a log scale, coarse to fine, every trial
//! scored on validation only, and every trial in a real database so that a killed search resumes and workers on
//! several machines share one study.
//!
//! A worker's life reads as: claim a trial (`storage.rs`), build its recipe from the study's base recipe and the
//! trial's draw (`space.rs`), train it with a callback that reports each epoch, renews the lease and prunes
//! hopeless trials (`asha.rs`), write its result; until the budget is spent.

pub mod asha;
pub mod demo;
#[cfg(feature = "plot")]
pub mod plots;
pub mod postgres;
pub mod refine;
pub mod space;
pub mod sqlite;
pub mod storage;

use crate::train::{Callback, Callbacks, EpochLog, Progress, StepStats, TrainConfig, TrainOptions, Trainer};
use crate::{Error, Result};
use asha::Asha;
use space::{Params, Space};
use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Instant;
use storage::{Claim, Next, Outcome, Status, Store, StudySpec};

/// A study with its recipe and space parsed.
pub struct Study {
    pub spec: StudySpec,
    pub recipe: TrainConfig,
    pub space: Space,
}

impl Study {
    pub fn new(spec: StudySpec) -> Result<Study> {
        let recipe = TrainConfig::from_toml(&spec.recipe)
            .map_err(|e| Error::Config(format!("study '{}': its recipe does not load: {e}", spec.name)))?;
        let space = Space::from_toml(&spec.space)
            .map_err(|e| Error::Config(format!("study '{}': its space does not load: {e}", spec.name)))?;
        if !matches!(spec.strategy.as_str(), "random" | "grid") {
            return Err(Error::Config(format!("strategy '{}': use random or grid", spec.strategy)));
        }
        // Every key must be a recipe key: found now, not in the middle of trial 7.
        let mut rng = crate::init::rng(0);
        recipe.with_overrides(&space::overrides(&space.sample(&mut rng))).map_err(|e| {
            Error::Config(format!("study '{}': the search space does not fit the recipe: {e}", spec.name))
        })?;
        Ok(Study { spec, recipe, space })
    }

    /// Trial `n`'s hyperparameters: a pure function of the study and `n`, so a reclaimed trial reruns the same
    /// draw and two workers never draw the same trial. None: the grid has no point `n`.
    pub fn params(&self, n: i64) -> Option<Params> {
        match self.spec.strategy.as_str() {
            "grid" => Space::grid_point(&self.space.grid(self.spec.trials as usize), n as usize),
            _ => {
                let mut rng =
                    crate::init::rng((self.spec.seed as u64) ^ (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
                Some(self.space.sample(&mut rng))
            }
        }
    }

    /// The recipe trial `params` trains: the base recipe with the draw applied, in its own folder.
    pub fn trial_recipe(&self, params: &Params, out: PathBuf) -> Result<TrainConfig> {
        let mut cfg = self.recipe.with_overrides(&space::overrides(params))?;
        cfg.out = Some(out);
        Ok(cfg)
    }

    /// Trials the budget allows (a grid may have fewer points than asked for).
    pub fn budget(&self) -> usize {
        match self.spec.strategy.as_str() {
            "grid" => self.space.grid(self.spec.trials as usize).iter().map(|(_, v)| v.len()).product(),
            _ => self.spec.trials as usize,
        }
    }
}

/// How one worker runs.
pub struct WorkerOptions {
    /// Who this worker is, in the database (`host:pid` by default).
    pub worker: String,
    /// Seconds a claim lasts without renewal; a killed worker's trial is reclaimed this long after its last sign.
    pub lease: f64,
    /// Trial run folders go in here, `trial-0007`.
    pub out: PathBuf,
    pub pruner: Option<Asha>,
    /// The caller's callbacks for each trial (a progress display).
    pub callbacks: Box<dyn Fn(i64) -> Callbacks>,
}

/// How a trial ended, for the caller's report.
#[derive(Clone, Debug)]
pub struct TrialEnd {
    pub number: i64,
    pub params: Params,
    pub status: Status,
    pub val_accuracy: Option<f64>,
    pub epochs_done: usize,
    pub seconds: f64,
    pub error: Option<String>,
}

/// The worker's name when none is given: this machine and process.
pub fn default_worker_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
    format!("{}:{}", if host.is_empty() { "localhost" } else { &host }, std::process::id())
}

/// Claims and trains trials until the study's budget is spent; returns how many this worker ran.
pub fn work(store: Store, study: &Study, opts: &WorkerOptions, on_end: &mut dyn FnMut(&TrialEnd)) -> Result<usize> {
    let store = Rc::new(RefCell::new(store));
    let mut ran = 0;
    loop {
        let next = store.borrow_mut().claim(&study.spec, &opts.worker, opts.lease, &|n| study.params(n))?;
        match next {
            Next::Run(claim) => {
                if let Some(end) = run_trial(&store, study, opts, claim)? {
                    on_end(&end);
                }
                ran += 1;
            }
            // Another worker holds a trial; if it dies, its lease runs out and this worker takes the trial over.
            Next::Wait => std::thread::sleep(std::time::Duration::from_secs_f64((opts.lease / 4.0).clamp(0.2, 5.0))),
            Next::Done => return Ok(ran),
        }
    }
}

/// Trains one claimed trial and writes its outcome; None when the trial was taken over by another worker.
fn run_trial(
    store: &Rc<RefCell<Store>>,
    study: &Study,
    opts: &WorkerOptions,
    claim: Claim,
) -> Result<Option<TrialEnd>> {
    let started = Instant::now();
    let dir = opts.out.join(format!("trial-{:04}", claim.number));
    // A reclaimed trial starts again from nothing: its dead attempt's folder would otherwise become `trial-N-2`.
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| Error::file(&dir, format!("cannot clear an earlier attempt: {e}")))?;
    }
    let state = Rc::new(RefCell::new(TrialState::default()));
    let result = study.trial_recipe(&claim.params, dir.clone()).and_then(|cfg| {
        let epochs = cfg.epochs;
        let mut callbacks = (opts.callbacks)(claim.number);
        callbacks.push(TrialReporter {
            store: store.clone(),
            study: study.spec.name.clone(),
            claim: claim.clone(),
            worker: opts.worker.clone(),
            lease: opts.lease,
            beat: Instant::now(),
            pruner: opts.pruner,
            epochs,
            state: state.clone(),
        });
        crate::train::train(cfg, TrainOptions { callbacks, validation_only: true, ..Default::default() })
    });
    let st = state.borrow().clone();
    if st.lost {
        tracing::warn!(
            "trial {}: its lease ran out and another worker took it over; dropping this attempt",
            claim.number
        );
        return Ok(None);
    }
    let (status, val_accuracy, val_loss, error) = match &result {
        Ok(r) if st.pruned.is_some() => (Status::Pruned, Some(r.best_val_accuracy), st.best_loss, None),
        Ok(r) => (Status::Finished, Some(r.best_val_accuracy), st.best_loss, None),
        Err(e) => (Status::Failed, st.best_accuracy, st.best_loss, Some(e.to_string())),
    };
    let outcome = Outcome {
        status: status.clone(),
        val_accuracy,
        val_loss,
        epochs_done: st.epochs_done as i64,
        duration: started.elapsed().as_secs_f64(),
        run_dir: dir.display().to_string(),
        error: error.clone(),
    };
    if !store.borrow_mut().finish(&study.spec.name, &claim, &opts.worker, &outcome)? {
        tracing::warn!("trial {}: taken over by another worker before it finished; its result is theirs", claim.number);
        return Ok(None);
    }
    Ok(Some(TrialEnd {
        number: claim.number,
        params: claim.params,
        status,
        val_accuracy,
        epochs_done: st.epochs_done,
        seconds: outcome.duration,
        error,
    }))
}

#[derive(Clone, Default)]
struct TrialState {
    epochs_done: usize,
    best_accuracy: Option<f64>,
    best_loss: Option<f64>,
    /// The rung epoch it was pruned at.
    pruned: Option<usize>,
    /// The lease was lost: another worker owns the trial now.
    lost: bool,
}

/// The callback that ties a trial to its study: per-epoch validation into the database, the lease kept alive,
/// and successive halving's verdict at every rung.
struct TrialReporter {
    store: Rc<RefCell<Store>>,
    study: String,
    claim: Claim,
    worker: String,
    lease: f64,
    beat: Instant,
    pruner: Option<Asha>,
    epochs: usize,
    state: Rc<RefCell<TrialState>>,
}

impl TrialReporter {
    fn renew(&mut self, t: &mut Trainer) -> Result<()> {
        self.beat = Instant::now();
        if !self.store.borrow_mut().heartbeat(&self.study, &self.claim, &self.worker, self.lease)? {
            self.state.borrow_mut().lost = true;
            t.request_stop("the trial's lease was lost");
        }
        Ok(())
    }
}

impl Callback for TrialReporter {
    fn on_step_end(&mut self, t: &mut Trainer, _s: &StepStats, _p: &Progress) -> Result<()> {
        if self.beat.elapsed().as_secs_f64() > self.lease / 3.0 {
            self.renew(t)?;
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, t: &mut Trainer, log: &EpochLog) -> Result<()> {
        let (acc, loss) = (log.val.accuracy, log.val.loss);
        {
            let mut st = self.state.borrow_mut();
            st.epochs_done = log.epoch;
            st.best_accuracy = Some(st.best_accuracy.map_or(acc, |b| b.max(acc)));
            st.best_loss = Some(st.best_loss.map_or(loss, |b| b.min(loss)));
        }
        self.renew(t)?;
        if self.state.borrow().lost {
            return Ok(());
        }
        let mut store = self.store.borrow_mut();
        store.record_epoch(&self.study, self.claim.number, log.epoch as i64, acc, loss)?;
        if let Some(a) = self.pruner.filter(|a| a.is_rung(log.epoch, self.epochs)) {
            let rung = store.rung(&self.study, log.epoch as i64)?;
            if !a.promote(acc, &rung) {
                self.state.borrow_mut().pruned = Some(log.epoch);
                t.request_stop(format!("pruned by successive halving after epoch {}", log.epoch));
            }
        }
        Ok(())
    }
}
