//! Coarse to fine: narrow each range around the best trials of a stage, and warn when the best value sits at an
//! edge of its range (the lecture: "careful with best values on border"), where the optimum may lie outside.

use super::space::{as_f64, short, Dist, Params, Space};
use super::storage::{Status, TrialRow};
use crate::{Error, Result};

/// The next stage's space and what the user should know about this one.
pub struct Refined {
    pub space: Space,
    pub warnings: Vec<String>,
}

/// The trials that count, best first: finished or pruned, with a validation figure.
pub fn ranked(trials: &[TrialRow]) -> Vec<&TrialRow> {
    let mut r: Vec<&TrialRow> = trials
        .iter()
        .filter(|t| matches!(t.status, Status::Finished | Status::Pruned) && t.val_accuracy.is_some())
        .collect();
    // A pruned trial stopped early: among equal figures, the one that ran its whole budget ranks first.
    r.sort_by(|a, b| {
        b.val_accuracy
            .partial_cmp(&a.val_accuracy)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then((a.status == Status::Pruned).cmp(&(b.status == Status::Pruned)))
    });
    r
}

/// The best finished trial's values that lie in the outer tenth of their range (in log space for log ranges).
pub fn edge_warnings(space: &Space, best: &Params) -> Vec<String> {
    let mut out = Vec::new();
    for (key, dist) in &space.params {
        let (Some((lo, hi)), Some(v)) = (dist.bounds(), best.get(key).and_then(as_f64)) else { continue };
        let (t, l, h) = if dist.is_log() { (v.ln(), lo.ln(), hi.ln()) } else { (v, lo, hi) };
        let at = (t - l) / (h - l);
        let side = if at <= 0.1 {
            "lower"
        } else if at >= 0.9 {
            "upper"
        } else {
            continue;
        };
        out.push(format!(
            "the best {key} = {} sits at the {side} edge of {dist}: the optimum may lie outside the range; widen it \
             (refine does, past that edge)",
            short(v)
        ));
    }
    out
}

/// A new space around the `top` best trials: each numeric range becomes the span of their values, widened by a
/// quarter of that span (or a tenth of the old range if they agree) on each side; choices keep the values the
/// best trials used.
pub fn refine(space: &Space, trials: &[TrialRow], top: usize) -> Result<Refined> {
    let best = ranked(trials);
    if best.len() < 2 {
        return Err(Error::Config(format!(
            "refining needs at least 2 finished trials, the study has {}: run more trials first",
            best.len()
        )));
    }
    let best = &best[..top.clamp(2, best.len())];
    let warnings = edge_warnings(space, &best[0].params);
    let params = space.params.iter().map(|(k, d)| (k.clone(), narrow(d, k, best))).collect();
    Ok(Refined { space: Space { params }, warnings })
}

fn narrow(d: &Dist, key: &str, best: &[&TrialRow]) -> Dist {
    let values: Vec<&toml::Value> = best.iter().filter_map(|t| t.params.get(key)).collect();
    if let Dist::Choice(all) = d {
        let kept: Vec<toml::Value> = all.iter().filter(|v| values.contains(v)).cloned().collect();
        return Dist::Choice(if kept.is_empty() { all.clone() } else { kept });
    }
    let (lo, hi) = d.bounds().expect("numeric");
    let xs: Vec<f64> = values.iter().filter_map(|v| as_f64(v)).collect();
    let f = |x: f64| if d.is_log() { x.ln() } else { x };
    let g = |x: f64| if d.is_log() { x.exp() } else { x };
    let (a, b) = xs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(f(x)), b.max(f(x))));
    let margin = if b > a { 0.25 * (b - a) } else { 0.1 * (f(hi) - f(lo)) };
    // Three significant figures: a range needs no more, and the space file stays readable.
    let round = |x: f64| format!("{x:.2e}").parse::<f64>().unwrap_or(x);
    let (a, b) = (round(g(a - margin)), round(g(b + margin)));
    match d {
        Dist::LogUniform(..) => Dist::LogUniform(a, b),
        // A non-negative range (a dropout rate, a decay) stays non-negative.
        Dist::Uniform(..) => Dist::Uniform(if lo >= 0.0 { a.max(0.0) } else { a }, b),
        _ => {
            let (a, b) = (a.floor() as i64, b.ceil() as i64);
            Dist::Int(if lo >= 0.0 { a.max(0) } else { a }, b.max(a + 1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(n: i64, lr: f64, bs: i64, acc: f64) -> TrialRow {
        let mut params = Params::new();
        params.insert("lr".into(), toml::Value::Float(lr));
        params.insert("batch_size".into(), toml::Value::Integer(bs));
        TrialRow {
            number: n,
            params,
            status: Status::Finished,
            worker: "w".into(),
            attempt: 1,
            seed: 0,
            started: 0.0,
            finished: None,
            duration: None,
            val_accuracy: Some(acc),
            val_loss: None,
            epochs_done: None,
            run_dir: None,
            error: None,
            curve: Vec::new(),
        }
    }

    #[test]
    fn narrows_around_the_best_and_warns_at_an_edge() {
        let space = Space::from_toml("lr = \"loguniform(1e-5, 1e-1)\"\nbatch_size = [32, 64, 128]").unwrap();
        let trials =
            [trial(0, 1e-2, 64, 0.9), trial(1, 4e-3, 32, 0.85), trial(2, 1e-5, 128, 0.2), trial(3, 1e-4, 128, 0.5)];
        let r = refine(&space, &trials, 2).unwrap();
        let Some(&Dist::LogUniform(a, b)) = r.space.get("lr") else { panic!() };
        assert!(a < 4e-3 && a > 1e-3 && b > 1e-2 && b < 2e-2, "{a} {b}");
        assert_eq!(
            r.space.get("batch_size"),
            Some(&Dist::Choice(vec![toml::Value::Integer(32), toml::Value::Integer(64)]))
        );
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        let edge = [trial(0, 0.09, 64, 0.9), trial(1, 1e-3, 64, 0.5)];
        let w = refine(&space, &edge, 2).unwrap().warnings;
        assert!(w.len() == 1 && w[0].contains("upper edge"), "{w:?}");
    }
}
