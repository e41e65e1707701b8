//! Model ensembles (the lecture: "train multiple independent models, average their results at test time: +2%").
//! Members are checkpoints: independently trained runs (same or different architectures), the snapshots of one
//! cyclic run (Huang et al. 2017), Polyak-averaged weights. Their softmax outputs are averaged, each member with
//! its own preprocessing; classes and input size must agree.

use crate::evaluate::{self, EvalReport, EvalSplit, TestViews};
use crate::train::checkpoint::Checkpoint;
use crate::{Error, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Clone, Debug, Serialize)]
pub struct MemberReport {
    pub checkpoint: PathBuf,
    pub model: String,
    pub epoch: usize,
    pub accuracy: f64,
    pub loss: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct EnsembleReport {
    pub members: Vec<MemberReport>,
    pub ensemble: EvalReport,
    pub data: String,
    pub split: EvalSplit,
    pub views: TestViews,
    /// Ensemble accuracy minus the best member's, in percentage points.
    pub gain_over_best: f64,
    /// Ensemble accuracy minus the members' mean, in percentage points.
    pub gain_over_mean: f64,
}

/// Averages the members' probabilities on a split of `data` (default: the first member's data).
pub fn evaluate(
    members: &[Checkpoint],
    data: Option<&str>,
    split: EvalSplit,
    views: TestViews,
) -> Result<EnsembleReport> {
    let first = members.first().ok_or_else(|| Error::Config("an ensemble needs at least one member".into()))?;
    for m in &members[1..] {
        check_compatible(first, m)?;
    }
    let (ds, spec) = evaluate::load_for(first, data, split)?;
    let idx = Arc::new(evaluate::split_indices(first, &spec, split, ds.len())?);
    let k = ds.classes.len();
    let mut sum = vec![0f64; idx.len() * k];
    let (mut labels, mut reports) = (Vec::new(), Vec::new());
    for ck in members {
        let mut model = ck.model()?;
        let prep = Arc::new(ck.preprocess());
        let pad = evaluate::run_config(ck).map_or(0, |c| c.augment.crop_pad);
        let (p, l) = evaluate::probabilities(&mut model, &ds, idx.clone(), &prep, 256, views, pad);
        let r = evaluate::report(&p, &l, &ds.classes);
        sum.iter_mut().zip(&p).for_each(|(s, v)| *s += v);
        labels = l;
        reports.push(MemberReport {
            checkpoint: ck.dir.clone(),
            model: ck.meta.model.clone(),
            epoch: ck.meta.epoch,
            accuracy: r.accuracy,
            loss: r.loss,
        });
    }
    sum.iter_mut().for_each(|s| *s /= members.len() as f64);
    let ensemble = evaluate::report(&sum, &labels, &ds.classes);
    let best = reports.iter().map(|r| r.accuracy).fold(0.0, f64::max);
    let mean = reports.iter().map(|r| r.accuracy).sum::<f64>() / reports.len() as f64;
    Ok(EnsembleReport {
        gain_over_best: 100.0 * (ensemble.accuracy - best),
        gain_over_mean: 100.0 * (ensemble.accuracy - mean),
        members: reports,
        ensemble,
        data: spec.to_string(),
        split,
        views,
    })
}

fn check_compatible(a: &Checkpoint, b: &Checkpoint) -> Result<()> {
    if a.meta.classes != b.meta.classes {
        return Err(Error::Config(format!(
            "{} predicts classes {:?} but {} predicts {:?}: ensemble members must share their classes, in order",
            b.dir.display(),
            b.meta.classes,
            a.dir.display(),
            a.meta.classes
        )));
    }
    if a.meta.input != b.meta.input {
        return Err(Error::Config(format!(
            "{} takes {:?} images but {} takes {:?}: ensemble members must take the same input size",
            b.dir.display(),
            b.meta.input,
            a.dir.display(),
            a.meta.input
        )));
    }
    Ok(())
}

/// The snapshots of a cyclic run (`RUN/checkpoints/snapshot-*`), oldest first; the last `last` of them if given.
pub fn snapshots(run: &Path, last: Option<usize>) -> Result<Vec<PathBuf>> {
    let dir = run.join("checkpoints");
    let rd = std::fs::read_dir(&dir).map_err(|e| Error::file(&dir, format!("cannot read: {e}")))?;
    let mut found: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            n.starts_with("snapshot-") && !n.ends_with(".tmp") && !n.ends_with(".prev") && p.join("meta.json").exists()
        })
        .collect();
    found.sort();
    if found.is_empty() {
        return Err(Error::file(
            &dir,
            "no snapshot-* checkpoints: snapshots are taken at the end of each cycle of an SGDR schedule \
             (train with --schedule sgdr:period=P)",
        ));
    }
    if let Some(m) = last {
        if m == 0 {
            return Err(Error::Config("--last 0 leaves no member: give 1 or more".into()));
        }
        found = found.split_off(found.len().saturating_sub(m));
    }
    Ok(found)
}

impl std::fmt::Display for EnsembleReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let split = format!("{:?}", self.split).to_lowercase();
        writeln!(
            f,
            "{} members on {}, {split} split ({} images), views: {:?}",
            self.members.len(),
            self.data,
            self.ensemble.count,
            self.views
        )?;
        for m in &self.members {
            writeln!(
                f,
                "  {:>6.2}%  loss {:.4}  {} ({}, epoch {})",
                100.0 * m.accuracy,
                m.loss,
                m.checkpoint.display(),
                m.model,
                m.epoch
            )?;
        }
        writeln!(
            f,
            "ensemble {:.2}% (loss {:.4}): {:+.2} points over the best member, {:+.2} over the members' mean",
            100.0 * self.ensemble.accuracy,
            self.ensemble.loss,
            self.gain_over_best,
            self.gain_over_mean
        )
    }
}
