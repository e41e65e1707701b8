//! The lecture's sanity checks before a long run ("babysitting the learning process"):
//! 1. with regularization off and a tiny init, the initial loss is chance: ln(C) for softmax;
//! 2. turning regularization up raises it;
//! 3. the model, its loss and its optimizer can memorise 20 training examples (accuracy 1.00, loss near 0);
//! 4. a whole-network gradient check (two examples' worth of input, with distinct values).
//!
//! Each check says PASS or FAIL and, on FAIL, what usually causes it.

use super::gradcheck::{self, Options};
use crate::data::loader::{self, Batch, LoaderConfig};
use crate::data::preprocess::Preprocess;
use crate::data::{Dataset, Split};
use crate::init::{rng, Init};
use crate::layers::{Layer, ParamKind};
use crate::loss::softmax_cross_entropy;
use crate::models::{self, Model};
use crate::optim::{Optimizer, OptimizerConfig};
use crate::regularize::Penalty;
use crate::schedule::{Schedule, Scheduler};
use crate::train::trainer::{Clip, Method, Trainer};
use crate::train::TrainConfig;
use crate::{Error, Mode, Result};
use serde::Serialize;
use std::fmt;
use std::sync::Arc;

/// How far the initial loss may be from ln(C).
pub const INITIAL_LOSS_TOL: f64 = 0.02;
/// The overfit check passes once a step sees every example right with a loss below this.
pub const OVERFIT_LOSS: f64 = 0.05;
/// The gradient check passes below this relative error (the lecture: < 1e-7 great, ~1e-5 fine with kinks).
pub const GRADCHECK_TOL: f64 = 1e-4;

#[derive(Clone, Debug)]
pub struct SanityOptions {
    /// Examples the overfit check must memorise.
    pub overfit_examples: usize,
    /// Steps it may take (L-BFGS: minimisations).
    pub overfit_steps: usize,
    /// Run the whole-network gradient check (f64, seconds for a ResNet).
    pub gradcheck: bool,
}

impl Default for SanityOptions {
    fn default() -> Self {
        SanityOptions { overfit_examples: 20, overfit_steps: 300, gradcheck: true }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    /// What was measured, against what was expected.
    pub detail: String,
    /// On FAIL: what usually causes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Check {
    fn new(name: &'static str, passed: bool, detail: String, hint: impl FnOnce() -> String) -> Check {
        Check { name, passed, detail, hint: (!passed).then(hint) }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct SanityReport {
    pub checks: Vec<Check>,
}

impl SanityReport {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }
}

impl fmt::Display for SanityReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.checks {
            writeln!(f, "{} {}: {}", if c.passed { "PASS" } else { "FAIL" }, c.name, c.detail)?;
            if let Some(h) = &c.hint {
                writeln!(f, "     usually: {h}")?;
            }
        }
        Ok(())
    }
}

/// All the checks for a recipe, on its own training data.
pub fn run(cfg: &TrainConfig, opts: &SanityOptions) -> Result<SanityReport> {
    let spec: crate::data::DataSpec = cfg.data.parse()?;
    let info = models::lookup(&cfg.model)?;
    let ds = Arc::new(spec.load(Split::Train, Some([info.input[1], info.input[2]]))?);
    if ds.shape != info.input {
        return Err(Error::Config(format!(
            "model {} takes {:?} images but {spec} gives {:?}",
            cfg.model, info.input, ds.shape
        )));
    }
    let idx: Vec<usize> = (0..ds.len()).collect();
    run_on(cfg, &ds, &idx, opts)
}

/// The checks on `ds`'s images `train` (a run's training indices).
pub fn run_on(cfg: &TrainConfig, ds: &Arc<Dataset>, train: &[usize], opts: &SanityOptions) -> Result<SanityReport> {
    if train.len() < 2 || opts.overfit_examples < 2 {
        return Err(Error::Config(format!(
            "the sanity checks need at least 2 training images and 2 examples to overfit ({} and {} given)",
            train.len(),
            opts.overfit_examples
        )));
    }
    let mut idx = train.to_vec();
    rand::seq::SliceRandom::shuffle(idx.as_mut_slice(), &mut rng(cfg.seed ^ 0x5a17));
    let prep = Arc::new(Preprocess::fit(cfg.preprocess, &ds.subset(&idx[..idx.len().min(1000)]))?);
    let batch = |n: usize| make_batch(ds, &idx[..n.min(idx.len())], &prep);
    let classes = ds.classes.len();
    let first = batch(64);
    let mut checks = vec![initial_loss(&cfg.model, classes, &first, cfg.seed)?];
    checks.push(regularization_raises_loss(&cfg.model, classes, &first, cfg.seed)?);
    let fit = batch(opts.overfit_examples);
    let mut trainer = overfit_trainer(cfg, classes)?;
    checks.push(overfit(&mut trainer, &mut |_| fit.clone(), opts.overfit_steps));
    if opts.gradcheck {
        let mut net = models::build::<f64>(&cfg.model, Some(classes), cfg.seed)?;
        checks.push(gradient_check(&mut net.net, &first, 2));
    }
    Ok(SanityReport { checks })
}

/// The given images as one batch, preprocessed.
pub fn make_batch(ds: &Arc<Dataset>, idx: &[usize], prep: &Arc<Preprocess>) -> Batch {
    let cfg = LoaderConfig { batch_size: idx.len(), shuffle: false, augment: Default::default(), seed: 0 };
    let mut it = loader::epoch(ds.clone(), Arc::new(idx.to_vec()), prep.clone(), &cfg, 0);
    it.next().expect("one batch of the given images")
}

/// The model with the lecture's tiny init: every weight `0.01 * randn`, biases zero (batch norm left as is).
fn tiny(model: &str, classes: usize, seed: u64) -> Result<Model<f32>> {
    let mut m = models::build::<f32>(model, Some(classes), seed)?;
    let mut r = rng(seed ^ 0x7177);
    m.visit_params(&mut |_, p| match p.kind {
        ParamKind::Weight => p.value = Init::small_random().tensor(p.value.shape(), 1, 1, &mut r),
        ParamKind::Bias => p.value.data_mut().fill(0.0),
        ParamKind::Norm => {}
    });
    Ok(m)
}

/// Check 1: at a tiny init every class is equally likely, so the softmax loss is ln(C).
pub fn initial_loss(model: &str, classes: usize, b: &Batch, seed: u64) -> Result<Check> {
    let mut m = tiny(model, classes, seed)?;
    let loss = softmax_cross_entropy(&m.forward(&b.x, Mode::Train), &b.labels).loss as f64;
    let want = (classes as f64).ln();
    let detail =
        format!("{loss:.4} on {} images (expected ln({classes}) = {want:.4} +- {INITIAL_LOSS_TOL})", b.labels.len());
    Ok(Check::new("initial loss", (loss - want).abs() <= INITIAL_LOSS_TOL, detail, || {
        if loss > want {
            "the scores are not near zero at a tiny init: a layer amplifies its input (a missing normalisation, a \
             huge constant init), or the labels do not index the classes"
                .into()
        } else {
            "the loss is lower than chance before any training: it is not averaged over the batch, or the labels \
             leak into the input"
                .into()
        }
    }))
}

/// Check 2: turning the L2 penalty up raises the initial loss.
pub fn regularization_raises_loss(model: &str, classes: usize, b: &Batch, seed: u64) -> Result<Check> {
    let mut m = tiny(model, classes, seed)?;
    let data = softmax_cross_entropy(&m.forward(&b.x, Mode::Train), &b.labels).loss as f64;
    let with = data + Penalty { l1: 0.0, l2: 1e3 }.apply(&mut m);
    let detail = format!("{data:.4} without, {with:.4} with an L2 penalty of 1e3");
    Ok(Check::new("regularization raises the loss", with > data * (1.0 + 1e-6), detail, || {
        "the penalty is not added to the loss, or it skips every weight".into()
    }))
}

/// The recipe's model, optimizer and rate (constant), with regularization off.
pub fn overfit_trainer(cfg: &TrainConfig, classes: usize) -> Result<Trainer> {
    let model = models::build::<f32>(&cfg.model, Some(classes), cfg.seed)?;
    let method = match &cfg.optimizer {
        OptimizerConfig::Lbfgs(lb) => Method::Lbfgs(lb.clone()),
        o => Method::FirstOrder(Optimizer::new(o, cfg.lr, 0.0)?),
    };
    let mut t = Trainer::new(model, method, Scheduler::new(cfg.lr, Schedule::Constant, 0.0, 1.0), 1);
    t.clip = Clip { value: cfg.clip_value, norm: cfg.clip_norm };
    Ok(t)
}

/// Check 3: memorise a few examples. `batch(step)` gives each step's batch (the same one, unless testing a loader
/// that does not keep labels with their images).
pub fn overfit(t: &mut Trainer, batch: &mut dyn FnMut(usize) -> Batch, steps: usize) -> Check {
    let lr = t.lr();
    let (mut first, mut last, mut n) = (f64::NAN, f64::NAN, 0);
    for step in 0..steps {
        let b = batch(step);
        n = b.labels.len();
        let s = t.step(&b);
        first = if step == 0 { s.loss } else { first };
        last = s.loss;
        if s.correct == n && s.loss < OVERFIT_LOSS {
            let detail = format!("{n} examples memorised in {} steps (loss {:.4}, accuracy 1.00)", step + 1, s.loss);
            return Check::new("overfit a tiny subset", true, detail, String::new);
        }
        if !s.loss.is_finite() {
            break;
        }
    }
    let detail = format!("after {steps} steps on {n} examples the loss went {first:.4} -> {last:.4} (needs < {OVERFIT_LOSS} and accuracy 1.00)");
    Check::new("overfit a tiny subset", false, detail, || {
        if lr == 0.0 {
            "the learning rate is 0: nothing moves".into()
        } else if !last.is_finite() || last > 2.0 * first {
            format!("the loss exploded: the learning rate ({lr:e}) is too high")
        } else if last > 0.9 * first {
            format!(
                "the loss barely moved: the learning rate ({lr:e}) is too low, or the gradients do not reach the \
                 weights (frozen parameters, a backward pass that returns zeros)"
            )
        } else {
            "it learns but cannot memorise them: the labels may not follow their images (shuffled apart), or the \
             model is too small for them"
                .into()
        }
    })
}

/// Check 4: every parameter tensor's gradient against centred differences, on `n` examples shaped like `b`'s.
/// The input is random with all values distinct, not the real images: real images have flat regions (MNIST's
/// background) whose exact ties in max pooling make centred differences straddle the tie undetectably.
pub fn gradient_check(net: &mut dyn Layer<f64>, b: &Batch, n: usize) -> Check {
    let n = n.min(b.labels.len());
    let mut shape = b.x.shape().to_vec();
    shape[0] = n;
    let x = gradcheck::random_input(&shape, 0);
    let opts = Options { max_elements: 4, ..Options::default() };
    let rep = gradcheck::check_network(net, &x, &b.labels[..n], Default::default(), &opts);
    let worst = rep.tensors.iter().max_by(|a, b| a.judged_error.total_cmp(&b.judged_error));
    let (name, err) = worst.map_or(("-".to_string(), 0.0), |t| (t.name.clone(), t.judged_error));
    let deciding = if err == 0.0 {
        "every element within the absolute tolerance".to_string()
    } else {
        format!("beyond the absolute tolerance {err:.1e} in {name}")
    };
    let detail = format!(
        "{} tensors, largest relative error {:.1e}; {deciding} (needs < {GRADCHECK_TOL:.0e}; {} kinks skipped)",
        rep.tensors.len(),
        rep.max_rel_error(),
        rep.kinks_skipped()
    );
    Check::new("gradient check", err < GRADCHECK_TOL, detail, || {
        format!("a backward pass disagrees with its forward pass: '{name}' is where; that layer's backward is wrong")
    })
}
