//! The learning-rate range test (L. Smith 2015, fastai's `lr_find`): train from a fresh model while the rate grows
//! exponentially, one step at each rate, and watch the smoothed loss. It falls once the rate is large enough to
//! move the weights, bottoms out, then climbs as the rate becomes too large. The suggestion is a tenth of the rate
//! at the bottom: the largest rate that still descends safely.

use crate::data::loader::{self, LoaderConfig};
use crate::data::preprocess::Preprocess;
use crate::data::{DataSpec, Split};
use crate::models;
use crate::optim::{Optimizer, OptimizerConfig};
use crate::schedule::{Schedule, Scheduler};
use crate::train::trainer::{Clip, Method, Trainer};
use crate::train::TrainConfig;
use crate::{Error, Result};
use serde::Serialize;
use std::sync::Arc;

#[derive(Clone, Debug, Serialize)]
pub struct LrFindOptions {
    pub start: f64,
    pub end: f64,
    /// Steps (one rate each) at most.
    pub steps: usize,
    /// Stop once the smoothed loss exceeds this multiple of its minimum.
    pub diverge: f64,
}

impl Default for LrFindOptions {
    fn default() -> Self {
        LrFindOptions { start: 1e-6, end: 10.0, steps: 100, diverge: 4.0 }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct LrFind {
    pub rates: Vec<f64>,
    pub losses: Vec<f64>,
    /// Exponentially smoothed (0.9), bias-corrected as fastai does.
    pub smoothed: Vec<f64>,
    /// The rate at the smoothed loss's minimum.
    pub rate_at_min: f64,
    /// A tenth of it: the suggestion.
    pub suggestion: f64,
    /// The rate where the smoothed loss fell fastest (per unit of log rate), for comparison.
    pub steepest: f64,
}

const SMOOTHING: f64 = 0.9;

/// Runs the test with the recipe's model, data, batch size, augmentation, optimizer and weight decay.
pub fn run(cfg: &TrainConfig, o: &LrFindOptions) -> Result<LrFind> {
    if !(o.start > 0.0 && o.end > o.start && o.end.is_finite() && o.steps >= 5 && o.diverge > 1.0) {
        return Err(Error::Config(
            "lr-find needs 0 < --start < --end, --steps >= 5 and a divergence factor > 1".into(),
        ));
    }
    if matches!(cfg.optimizer, OptimizerConfig::Lbfgs(_)) {
        return Err(Error::Config("lr-find is for first-order optimizers: L-BFGS chooses its own steps".into()));
    }
    let spec: DataSpec = cfg.data.parse()?;
    let info = models::lookup(&cfg.model)?;
    let ds = Arc::new(spec.load(Split::Train, Some([info.input[1], info.input[2]]))?);
    let idx: Vec<usize> = (0..ds.len()).collect();
    let prep = Arc::new(Preprocess::fit(cfg.preprocess, &ds.subset(&idx[..idx.len().min(5000)]))?);
    let model = models::build::<f32>(&cfg.model, Some(ds.classes.len()), cfg.seed)?.for_training();
    let opt = Optimizer::new(&cfg.optimizer, o.start, cfg.weight_decay)?;
    let mut t = Trainer::new(model, Method::FirstOrder(opt), Scheduler::new(o.start, Schedule::Constant, 0.0, 1.0), 1);
    t.clip = Clip { value: cfg.clip_value, norm: cfg.clip_norm };
    let lc = LoaderConfig {
        batch_size: cfg.batch_size,
        shuffle: true,
        augment: {
            let mut a = cfg.augment.clone();
            a.fit(&ds, &idx);
            a
        },
        seed: cfg.seed,
    };
    let idx = Arc::new(idx);
    let mut batches = (1..).flat_map(|epoch| loader::epoch(ds.clone(), idx.clone(), prep.clone(), &lc, epoch));
    let mut r =
        LrFind { rates: vec![], losses: vec![], smoothed: vec![], rate_at_min: 0.0, suggestion: 0.0, steepest: 0.0 };
    let (mut avg, mut best) = (0.0, f64::INFINITY);
    for i in 0..o.steps {
        let rate = o.start * (o.end / o.start).powf(i as f64 / (o.steps - 1) as f64);
        t.sched.base = rate;
        let Some(b) = batches.next() else { break };
        let loss = t.step(&b).loss;
        if !loss.is_finite() {
            break;
        }
        avg = SMOOTHING * avg + (1.0 - SMOOTHING) * loss;
        let smooth = avg / (1.0 - SMOOTHING.powi(i as i32 + 1));
        (r.rates.push(rate), r.losses.push(loss), r.smoothed.push(smooth));
        best = best.min(smooth);
        if smooth > o.diverge * best {
            break;
        }
    }
    suggest(&mut r)?;
    Ok(r)
}

/// The rate at the smoothed minimum, a tenth of it, and the steepest descent before it.
fn suggest(r: &mut LrFind) -> Result<()> {
    let n = r.smoothed.len();
    if n < 5 {
        return Err(Error::Config(format!("lr-find diverged after {n} steps: lower --start")));
    }
    let at_min = (0..n).min_by(|&a, &b| r.smoothed[a].total_cmp(&r.smoothed[b])).expect("n >= 5");
    r.rate_at_min = r.rates[at_min];
    r.suggestion = r.rate_at_min / 10.0;
    let slope = |i: usize| (r.smoothed[i + 1] - r.smoothed[i]) / (r.rates[i + 1] / r.rates[i]).ln();
    // The first tenth is skipped: the smoothing is still filling up there.
    let from = (n / 10).min(at_min.saturating_sub(1));
    let to = at_min.max(from + 1).min(n - 1);
    r.steepest = (from..to).min_by(|&a, &b| slope(a).total_cmp(&slope(b))).map_or(r.rates[0], |i| r.rates[i]);
    Ok(())
}

/// Loss against rate (log scale): the raw losses, the smoothed curve, the suggestion marked.
#[cfg(feature = "plot")]
pub fn plot(r: &LrFind, path: &std::path::Path, font: Option<&std::path::Path>) -> Result<()> {
    use plotters::prelude::*;
    crate::plot::register_font(font)?;
    let err = |x: &dyn std::fmt::Display| Error::file(path, format!("cannot draw the chart: {x}"));
    let root = BitMapBackend::new(path, (1000, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| err(&x))?;
    let (lo, hi) = (r.rates[0], *r.rates.last().expect("suggest needs 5 rates"));
    let first = r.smoothed[0];
    let top = r.losses.iter().copied().filter(|l| *l < 2.5 * first).fold(first, f64::max) * 1.05;
    let bottom = r.smoothed.iter().chain(&r.losses).copied().fold(f64::INFINITY, f64::min) * 0.97;
    let mut c = ChartBuilder::on(&root)
        .caption("learning-rate range test: loss as the rate grows", ("sans-serif", 24))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d((lo..hi).log_scale(), bottom..top)
        .map_err(|x| err(&x))?;
    c.configure_mesh()
        .x_desc("learning rate (log scale)")
        .y_desc("training loss")
        .x_label_formatter(&|x| format!("{x:.0e}"))
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(|x| err(&x))?;
    let raw = r
        .rates
        .iter()
        .zip(&r.losses)
        .filter(|(_, l)| **l <= top)
        .map(|(&x, &y)| Circle::new((x, y), 2, BLUE.mix(0.4).filled()));
    c.draw_series(raw)
        .map_err(|x| err(&x))?
        .label("loss at each step")
        .legend(|(x, y)| Circle::new((x, y), 3, BLUE.filled()));
    let smooth = r.rates.iter().zip(&r.smoothed).filter(|(_, l)| **l <= top).map(|(&x, &y)| (x, y));
    c.draw_series(LineSeries::new(smooth, BLUE.stroke_width(2)))
        .map_err(|x| err(&x))?
        .label("smoothed")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    let mark =
        |rate: f64, colour: RGBColor| PathElement::new(vec![(rate, bottom), (rate, top)], colour.stroke_width(2));
    c.draw_series(std::iter::once(mark(r.suggestion, RED)))
        .map_err(|x| err(&x))?
        .label(format!("suggested {:.1e} (minimum at {:.1e}, / 10)", r.suggestion, r.rate_at_min))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
    c.configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(|x| err(&x))?;
    root.present().map_err(|x| err(&x))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenet5_on_mnist_suggests_a_rate_a_user_would_pick() {
        let cfg =
            TrainConfig::from_toml("model = 'lenet5'\ndata = 'mnist:../shared/data/mnist'\nbatch_size = 64\n").unwrap();
        let r = run(&cfg, &LrFindOptions { start: 1e-5, end: 10.0, steps: 80, diverge: 4.0 }).unwrap();
        assert!(r.rates.windows(2).all(|w| (w[1] / w[0] - r.rates[1] / r.rates[0]).abs() < 1e-9), "geometric");
        // The recipe trains at 0.01 with momentum; the test should land within a decade or so of it.
        assert!(r.suggestion > 1e-3 && r.suggestion < 0.3, "{r:?}");
        assert!(r.steepest <= r.rate_at_min);
        assert!(run(&cfg, &LrFindOptions { start: 1.0, end: 0.1, ..Default::default() }).is_err());
    }
}
