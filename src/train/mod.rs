//! `convkit train`: real data in, a trained model, its metrics and checkpoints out.

pub mod checkpoint;
pub mod config;

pub use config::TrainConfig;

use crate::data::loader::{self, LoaderConfig};
use crate::data::preprocess::Preprocess;
use crate::data::{split, DataSpec, Split};
use crate::evaluate::{evaluate, EvalReport};
use crate::loss::softmax_cross_entropy;
use crate::models::{self, Model};
use crate::optim::lbfgs::Lbfgs;
use crate::optim::polyak::Polyak;
use crate::optim::{clip, OptimConfig, Optimizer, OptimizerKind};
use crate::regularize::Penalty;
use crate::schedule::Clock;
use crate::tensor::Tensor;
use crate::{Error, Mode, Result};
use checkpoint::{Checkpoint, Meta};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

#[derive(Clone, Debug, Default)]
pub struct TrainOptions {
    /// Continue the run in this folder from its `last` checkpoint.
    pub resume: Option<PathBuf>,
    /// No progress bars or per-epoch lines (the library's callers and tests).
    pub quiet: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct TrainReport {
    pub run_dir: PathBuf,
    pub model: String,
    pub data: String,
    pub epochs: usize,
    pub train_images: usize,
    pub val_images: usize,
    pub test_images: usize,
    pub final_train_loss: f64,
    pub best_epoch: usize,
    pub best_val_accuracy: f64,
    /// Accuracy of the `best` checkpoint (by validation accuracy) on the test split, touched once at the end.
    pub test_accuracy: f64,
    pub test_loss: f64,
    /// With Polyak averaging: the averaged weights' last validation accuracy and their test accuracy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ema_val_accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ema_test_accuracy: Option<f64>,
    pub wall_seconds: f64,
    #[serde(skip)]
    pub test: Option<EvalReport>,
}

const METRICS_HEADER: &str = "epoch,step,train_loss,train_acc,val_loss,val_acc,lr,seconds,ema_val_loss,ema_val_acc";

/// A fresh run folder: the given one, or the next free `NAME-2`, `NAME-3`, ... if it already holds a run.
fn fresh_dir(base: &Path) -> PathBuf {
    if !base.join("checkpoints").exists() {
        return base.to_path_buf();
    }
    (2..)
        .map(|i| PathBuf::from(format!("{}-{i}", base.display())))
        .find(|p| !p.join("checkpoints").exists())
        .expect("some suffix is free")
}

/// Keeps the metrics rows of epochs `<= upto` (a resumed run rewrites what came after its checkpoint).
fn truncate_metrics(path: &Path, upto: usize) -> Result<()> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut keep = vec![METRICS_HEADER.to_string()];
    for line in text.lines().skip(1) {
        if line.split(',').next().and_then(|e| e.parse::<usize>().ok()).is_some_and(|e| e <= upto) {
            keep.push(line.to_string());
        }
    }
    std::fs::write(path, keep.join("\n") + "\n").map_err(|e| Error::file(path, format!("cannot write: {e}")))
}

fn progress(quiet: bool, len: usize, prefix: String) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len as u64);
    pb.set_style(
        ProgressStyle::with_template("{prefix} [{bar:28}] {pos}/{len} {msg} ({eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb.set_prefix(prefix);
    pb
}

pub fn train(mut cfg: TrainConfig, opts: &TrainOptions) -> Result<TrainReport> {
    let started = Instant::now();
    let resumed = match &opts.resume {
        Some(dir) => Some(Checkpoint::load(&dir.join("checkpoints").join("last"))?),
        None => None,
    };
    cfg.validate()?;
    let run_dir = match &opts.resume {
        Some(d) => d.clone(),
        None => fresh_dir(&cfg.out.clone().unwrap_or_else(|| cfg.default_out())),
    };
    cfg.out = Some(run_dir.clone());
    let spec: DataSpec = cfg.data.parse()?;
    let info = models::list().into_iter().find(|m| m.name == cfg.model).ok_or_else(|| Error::Unknown {
        kind: "model",
        name: cfg.model.clone(),
        known: models::list().iter().map(|m| m.name).collect::<Vec<_>>().join(", "),
    })?;
    let full = spec.load(Split::Train, Some([info.input[1], info.input[2]]))?;
    if full.shape != info.input {
        return Err(Error::Config(format!(
            "model {} takes {:?} (C, H, W) images but {} gives {:?}; pick a model for this data",
            cfg.model, info.input, spec, full.shape
        )));
    }
    let val_n = cfg.val.unwrap_or_else(|| spec.default_val(full.len()));
    let (mut train_idx, val_idx) = split::train_val(full.len(), val_n, cfg.seed);
    if let Some(l) = cfg.limit {
        // A seeded random subset: image folders are stored class by class, so a prefix would be one class.
        use rand::seq::SliceRandom;
        train_idx.shuffle(&mut crate::init::rng(cfg.seed ^ 0x11a1_7000));
        train_idx.truncate(l);
        train_idx.sort_unstable();
    }
    let classes = full.classes.clone();
    let full = Arc::new(full);
    let prep = Arc::new(match &resumed {
        Some(ck) => ck.preprocess(),
        None => Preprocess::fit(cfg.preprocess, &full.subset(&train_idx))?,
    });
    let mut model = models::build::<f32>(&cfg.model, Some(classes.len()), cfg.seed)?.for_training();
    let lbfgs = (cfg.optimizer == OptimizerKind::Lbfgs).then(|| cfg.lbfgs.clone().unwrap_or_default());
    if lbfgs.is_some() {
        // Curvature pairs from different mini-batches or augmentations describe different functions.
        if cfg.batch_size < train_idx.len() || !cfg.augment.is_identity() {
            return Err(Error::Config(format!(
                "L-BFGS needs the same deterministic loss at every evaluation, so it runs full-batch only: set \
                 batch_size >= the {} training images (e.g. limit = 2000, batch_size = 2000) and turn augmentation \
                 off, or pick a mini-batch optimizer (momentum, nesterov, adam, ...)",
                train_idx.len()
            )));
        }
    }
    // L-BFGS keeps its own state inside each epoch's minimisation; the first-order optimizer stays idle.
    let mut opt =
        Optimizer::<f32>::new(if lbfgs.is_some() { OptimConfig::new(OptimizerKind::Sgd, 0.0) } else { cfg.optim() })?;
    let mut sched = cfg.scheduler();
    let penalty = cfg.penalty();
    let mut ema = cfg.ema_decay.map(|d| Polyak::new(&mut model, d));
    let (mut start, mut step, mut best, mut best_epoch) = (0, 0u64, -1.0f64, 0);
    std::fs::create_dir_all(run_dir.join("checkpoints"))
        .map_err(|e| Error::file(&run_dir, format!("cannot create the run folder: {e}")))?;
    let metrics = run_dir.join("metrics.csv");
    if let Some(ck) = &resumed {
        checkpoint::load_into(&mut model, &ck.tensors, &ck.dir.join("model.safetensors"))?;
        let (avg, state): (Vec<_>, Vec<_>) =
            ck.optimizer.iter().map(|(k, v)| (k.clone(), v.clone())).partition(|(k, _)| k.starts_with("polyak."));
        opt.load_state(state.into_iter().collect(), ck.meta.optimizer_t)
            .map_err(|e| Error::file(&ck.dir.join("optimizer.safetensors"), e.to_string()))?;
        if let Some(ema) = &mut ema {
            if avg.is_empty() {
                return Err(Error::file(
                    &ck.dir,
                    "this run has no Polyak average to resume: drop ema_decay or start afresh",
                ));
            }
            ema.avg = avg.into_iter().map(|(k, v)| (k["polyak.".len()..].to_string(), v)).collect();
        }
        if let Some(p) = &ck.meta.plateau {
            sched.plateau = p.clone();
        }
        (start, step, best) = (ck.meta.epoch, ck.meta.step, ck.meta.best_val_accuracy);
        best_epoch = if run_dir.join("checkpoints/best").exists() {
            Checkpoint::load(&run_dir.join("checkpoints/best"))?.meta.epoch
        } else {
            0
        };
        truncate_metrics(&metrics, start)?;
    } else {
        std::fs::write(&metrics, format!("{METRICS_HEADER}\n"))
            .map_err(|e| Error::file(&metrics, format!("cannot write: {e}")))?;
    }
    let cp = run_dir.join("config.toml");
    std::fs::write(&cp, cfg.to_toml()).map_err(|e| Error::file(&cp, format!("cannot write: {e}")))?;
    let (train_idx, val_idx) = (Arc::new(train_idx), Arc::new(val_idx));
    let loader_cfg = LoaderConfig { batch_size: cfg.batch_size, shuffle: true, augment: cfg.augment, seed: cfg.seed };
    let mut final_loss = f64::NAN;
    if !opts.quiet {
        eprintln!(
            "training {} on {} ({} train / {} val images, {} classes) -> {}",
            cfg.model,
            spec,
            train_idx.len(),
            val_idx.len(),
            classes.len(),
            run_dir.display()
        );
    }
    let steps_per_epoch = train_idx.len().div_ceil(cfg.batch_size) as u64;
    let mut ema_val: Option<(f64, f64)> = None; // (loss, accuracy)
    for epoch in start + 1..=cfg.epochs {
        let t0 = Instant::now();
        let batches = loader::epoch(full.clone(), train_idx.clone(), prep.clone(), &loader_cfg, epoch);
        let pb = progress(opts.quiet, batches.len, format!("epoch {epoch}/{}", cfg.epochs));
        let (mut loss_sum, mut correct, mut seen) = (0f64, 0usize, 0usize);
        let mut lr = cfg.lr;
        for b in batches {
            if let Some(lb) = &lbfgs {
                let (loss, ok, iters) = lbfgs_epoch(&mut model, &b.x, &b.labels, &penalty, lb);
                if !loss.is_finite() {
                    return Err(Error::Config(format!("L-BFGS diverged at epoch {epoch}: the loss is {loss}")));
                }
                step += iters as u64;
                (loss_sum, correct, seen) = (loss * b.labels.len() as f64, ok, b.labels.len());
                pb.inc(1);
                continue;
            }
            lr = sched.lr(&Clock { step, steps_per_epoch, epochs: cfg.epochs });
            opt.set_lr(lr);
            model.zero_grad();
            let y = model.forward(&b.x, Mode::Train);
            let out = softmax_cross_entropy(&y, &b.labels);
            model.backward(&b.x, &y, &out.dscores);
            let loss = out.loss as f64 + penalty.apply(&mut model);
            if !loss.is_finite() {
                pb.abandon();
                return Err(Error::Config(format!(
                    "training diverged: the loss is {loss} at epoch {epoch}, step {step}. Lower the learning rate (it is {lr}). \
                     The checkpoints of the last finished epoch are intact in {}",
                    run_dir.join("checkpoints").display()
                )));
            }
            if let Some(v) = cfg.clip_value {
                clip::by_value(&mut model, v);
            }
            if let Some(n) = cfg.clip_norm {
                clip::by_norm(&mut model, n);
            }
            opt.step(&mut model);
            if let Some(ema) = &mut ema {
                ema.update(&mut model);
            }
            step += 1;
            loss_sum += loss * b.labels.len() as f64;
            correct += out.correct;
            seen += b.labels.len();
            pb.inc(1);
            pb.set_message(format!(
                "loss {:.4} acc {:.2}% lr {lr:.3e} {:.0} img/s",
                loss_sum / seen as f64,
                100.0 * correct as f64 / seen as f64,
                seen as f64 / t0.elapsed().as_secs_f64()
            ));
        }
        pb.finish_and_clear();
        let val = evaluate(&mut model, &full, val_idx.clone(), &prep, 256);
        if let Some(ema) = &mut ema {
            ema.swap(&mut model);
            let e = evaluate(&mut model, &full, val_idx.clone(), &prep, 256);
            ema_val = Some((e.loss, e.accuracy));
            ema.swap(&mut model);
        }
        let cut = sched.end_epoch(val.accuracy);
        let secs = t0.elapsed().as_secs_f64();
        final_loss = loss_sum / seen.max(1) as f64;
        let train_acc = correct as f64 / seen.max(1) as f64;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&metrics)
            .map_err(|e| Error::file(&metrics, format!("cannot append: {e}")))?;
        let ema_cols = ema_val.map_or(",".into(), |(l, a)| format!("{l:.6},{a:.6}"));
        writeln!(
            f,
            "{epoch},{step},{final_loss:.6},{train_acc:.6},{:.6},{:.6},{lr:.6e},{secs:.2},{ema_cols}",
            val.loss, val.accuracy
        )?;
        let improved = val.accuracy > best;
        if improved {
            (best, best_epoch) = (val.accuracy, epoch);
        }
        let meta = Meta {
            model: cfg.model.clone(),
            classes: classes.clone(),
            input: info.input,
            preprocess: prep.kind,
            epoch,
            step,
            val_accuracy: val.accuracy,
            best_val_accuracy: best,
            optimizer: cfg.optimizer,
            optimizer_t: opt.t,
            plateau: matches!(cfg.schedule, crate::schedule::Schedule::Plateau { .. }).then(|| sched.plateau.clone()),
            data: cfg.data.clone(),
            seed: cfg.seed,
        };
        let ck = run_dir.join("checkpoints");
        let mut state = opt.state();
        let none = Default::default();
        if improved {
            checkpoint::save(&ck, "best", &mut model, &none, &prep, &meta)?;
        }
        if let (Some(ema), Some(ev)) = (&mut ema, ema_val) {
            state.extend(ema.avg.iter().map(|(k, v)| (format!("polyak.{k}"), v.clone())));
            ema.swap(&mut model);
            let m = Meta { val_accuracy: ev.1, ..meta.clone() };
            let saved = checkpoint::save(&ck, "ema", &mut model, &none, &prep, &m);
            ema.swap(&mut model);
            saved?;
        }
        checkpoint::save(&ck, "last", &mut model, &state, &prep, &meta)?;
        if !opts.quiet {
            let ema_note = ema_val.map_or(String::new(), |(_, a)| format!(" | polyak val acc {:.2}%", 100.0 * a));
            eprintln!(
                "epoch {epoch}/{}: train loss {final_loss:.4} acc {:.2}% | val loss {:.4} acc {:.2}%{}{ema_note} | lr {lr:.3e} | {secs:.1}s{}",
                cfg.epochs,
                100.0 * train_acc,
                val.loss,
                100.0 * val.accuracy,
                if improved { " (best)" } else { "" },
                if cut { " | plateau: lr reduced" } else { "" }
            );
        }
    }
    // The test split is touched once, at the very end, with the best checkpoint.
    let best_ck = Checkpoint::load(&run_dir.join("checkpoints").join("best"))?;
    let mut best_model: Model<f32> = best_ck.model()?;
    let test_ds = Arc::new(spec.load(Split::Test, Some([info.input[1], info.input[2]]))?);
    let test_idx = Arc::new((0..test_ds.len()).collect::<Vec<_>>());
    let test = evaluate(&mut best_model, &test_ds, test_idx.clone(), &prep, 256);
    let ema_test = match cfg.ema_decay {
        Some(_) => {
            let mut m = Checkpoint::load(&run_dir.join("checkpoints").join("ema"))?.model()?;
            Some(evaluate(&mut m, &test_ds, test_idx, &prep, 256).accuracy)
        }
        None => None,
    };
    if ema_val.is_none() && cfg.ema_decay.is_some() {
        // A resumed run that had nothing left to train: the average's figures come from its checkpoint.
        ema_val = Some((f64::NAN, Checkpoint::load(&run_dir.join("checkpoints").join("ema"))?.meta.val_accuracy));
    }
    let report = TrainReport {
        run_dir: run_dir.clone(),
        model: cfg.model.clone(),
        data: cfg.data.clone(),
        epochs: cfg.epochs,
        train_images: train_idx.len(),
        val_images: val_idx.len(),
        test_images: test.count,
        final_train_loss: final_loss,
        best_epoch,
        best_val_accuracy: best,
        test_accuracy: test.accuracy,
        test_loss: test.loss,
        ema_val_accuracy: ema_val.map(|e| e.1),
        ema_test_accuracy: ema_test,
        wall_seconds: started.elapsed().as_secs_f64(),
        test: Some(test),
    };
    let mut json = serde_json::to_value(&report).expect("report serialises");
    json["test"] = serde_json::to_value(report.test.as_ref()).expect("serialises");
    let rp = run_dir.join("report.json");
    std::fs::write(&rp, serde_json::to_string_pretty(&json).expect("serialises"))
        .map_err(|e| Error::file(&rp, format!("cannot write: {e}")))?;
    Ok(report)
}

/// One epoch of full-batch L-BFGS: minimise the batch loss (plus penalty) over all trainable parameters.
/// Returns the final loss, the number right, and the iterations taken.
fn lbfgs_epoch(
    model: &mut Model<f32>,
    x: &Tensor<f32>,
    labels: &[usize],
    pen: &Penalty,
    lb: &Lbfgs,
) -> (f64, usize, usize) {
    let gather = |m: &mut Model<f32>, grad: bool, out: &mut Vec<f64>| {
        out.clear();
        m.visit_params(&mut |_, p| {
            if !p.frozen {
                out.extend((if grad { &p.grad } else { &p.value }).data().iter().map(|&v| v as f64));
            }
        });
    };
    let scatter = |m: &mut Model<f32>, w: &[f64]| {
        let mut i = 0;
        m.visit_params(&mut |_, p| {
            if !p.frozen {
                for v in p.value.data_mut() {
                    *v = w[i] as f32;
                    i += 1;
                }
            }
        });
    };
    let mut w = Vec::new();
    gather(model, false, &mut w);
    let mut buf = Vec::new();
    let mut f = |wt: &[f64], g: &mut [f64]| {
        scatter(model, wt);
        model.zero_grad();
        let y = model.forward(x, Mode::Train);
        let out = softmax_cross_entropy(&y, labels);
        model.backward(x, &y, &out.dscores);
        let loss = out.loss as f64 + pen.apply(model);
        gather(model, true, &mut buf);
        g.copy_from_slice(&buf);
        loss
    };
    let rep = lb.minimize(&mut w, &mut f);
    scatter(model, &w);
    let y = model.forward(x, Mode::Eval);
    let correct = softmax_cross_entropy(&y, labels).correct;
    (rep.loss, correct, rep.iterations)
}
