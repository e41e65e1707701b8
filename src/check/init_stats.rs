//! The lecture's weight-initialisation experiment: push 1000 unit-Gaussian samples of dimension 500 through ten
//! 500-unit fully connected layers (no biases) with a nonlinearity, and watch each layer's activations.
//!
//! `W = 0.01 * randn(fan_in, fan_out)` ("small") makes tanh activations collapse towards zero layer by layer, so
//! the gradients vanish; `W = randn(...)` ("large") saturates them at -1 and 1; `W = randn(...) / sqrt(fan_in)`
//! (Xavier, as the lecture writes it) keeps tanh's spread, decaying gently; with ReLU, Xavier halves the variance
//! at every layer, and He's `randn(...) / sqrt(fan_in / 2)` keeps it constant.

use crate::init::rng;
use crate::kernels::gemm::{matmul, Mat};
use crate::{Error, Result};
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;

/// The nonlinearity after each layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    Tanh,
    Relu,
    LeakyRelu,
    Elu,
    Sigmoid,
}

impl Activation {
    pub fn apply(self, z: f64) -> f64 {
        match self {
            Activation::Tanh => z.tanh(),
            Activation::Relu => z.max(0.0),
            Activation::LeakyRelu => z.max(0.01 * z),
            Activation::Elu => {
                if z > 0.0 {
                    z
                } else {
                    z.exp_m1()
                }
            }
            Activation::Sigmoid => 1.0 / (1.0 + (-z).exp()),
        }
    }
}

impl std::str::FromStr for Activation {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "tanh" => Activation::Tanh,
            "relu" => Activation::Relu,
            "leaky-relu" => Activation::LeakyRelu,
            "elu" => Activation::Elu,
            "sigmoid" => Activation::Sigmoid,
            _ => {
                let known = "tanh, relu, leaky-relu, elu, sigmoid".into();
                return Err(Error::Unknown { kind: "activation", name: s.into(), known });
            }
        })
    }
}

/// How the weights are drawn: `randn(fan_in, fan_out)` times a scale.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum WeightScale {
    /// `std` (the lecture's 0.01).
    Small { std: f64 },
    /// 1.0: tanh saturates.
    Large,
    /// `1 / sqrt(fan_in)`, the lecture's Xavier.
    Xavier,
    /// `1 / sqrt(fan_in / 2)`, He et al. 2015.
    He,
}

impl WeightScale {
    pub fn std(self, fan_in: usize) -> f64 {
        match self {
            WeightScale::Small { std } => std,
            WeightScale::Large => 1.0,
            WeightScale::Xavier => 1.0 / (fan_in as f64).sqrt(),
            WeightScale::He => 1.0 / (fan_in as f64 / 2.0).sqrt(),
        }
    }
}

impl std::fmt::Display for WeightScale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WeightScale::Small { std } => write!(f, "small init (randn * {std})"),
            WeightScale::Large => write!(f, "large init (randn)"),
            WeightScale::Xavier => write!(f, "Xavier init (randn / sqrt(fan_in))"),
            WeightScale::He => write!(f, "He init (randn / sqrt(fan_in / 2))"),
        }
    }
}

impl std::str::FromStr for WeightScale {
    type Err = Error;
    /// `small` (0.01), `small:STD`, `large`, `xavier`, `he`.
    fn from_str(s: &str) -> Result<Self> {
        let bad =
            || Error::Unknown { kind: "init", name: s.into(), known: "small, small:STD, large, xavier, he".into() };
        Ok(match s.split_once(':') {
            Some(("small", std)) => {
                let std: f64 = std.parse().map_err(|_| bad())?;
                if !(std > 0.0 && std.is_finite()) {
                    return Err(bad());
                }
                WeightScale::Small { std }
            }
            Some(_) => return Err(bad()),
            None => match s {
                "small" => WeightScale::Small { std: 0.01 },
                "large" => WeightScale::Large,
                "xavier" => WeightScale::Xavier,
                "he" => WeightScale::He,
                _ => return Err(bad()),
            },
        })
    }
}

/// The experiment's settings; the defaults are the lecture's.
#[derive(Clone, Debug, Serialize)]
pub struct Experiment {
    pub activation: Activation,
    pub init: WeightScale,
    pub layers: usize,
    pub width: usize,
    pub samples: usize,
    pub seed: u64,
}

impl Default for Experiment {
    fn default() -> Self {
        Experiment {
            activation: Activation::Tanh,
            init: WeightScale::Xavier,
            layers: 10,
            width: 500,
            samples: 1000,
            seed: 0,
        }
    }
}

/// One layer's activations: the lecture's mean and std, the fraction exactly zero (dead ReLUs) and a histogram.
#[derive(Clone, Debug, Serialize)]
pub struct LayerStats {
    /// 0 is the input.
    pub layer: usize,
    pub mean: f64,
    pub std: f64,
    pub zero_fraction: f64,
    /// Counts over `HISTOGRAM_BINS` equal bins of `[lo, hi]` (the hidden layers share one range).
    pub histogram: Vec<u64>,
    pub lo: f64,
    pub hi: f64,
}

pub const HISTOGRAM_BINS: usize = 40;
/// Each layer is first binned this finely over its own range, then spread over the shared bins.
const FINE_BINS: usize = 400;

/// Too big for this machine: the experiment holds `samples x width` f64 twice, and `width x width` weights.
const MAX_ELEMENTS: usize = 1 << 28;

impl Experiment {
    fn validate(&self) -> Result<()> {
        if self.layers == 0 || self.width == 0 || self.samples < 2 {
            return Err(Error::Config("init-stats needs --layers >= 1, --width >= 1 and --samples >= 2".into()));
        }
        let big = self.samples.checked_mul(self.width).is_none_or(|n| n > MAX_ELEMENTS)
            || self.width.checked_mul(self.width).is_none_or(|n| n > MAX_ELEMENTS);
        if big {
            return Err(Error::Config(format!(
                "--samples {} x --width {} is too large (at most {MAX_ELEMENTS} elements per matrix)",
                self.samples, self.width
            )));
        }
        Ok(())
    }

    /// Runs it: the input's statistics, then each hidden layer's.
    pub fn run(&self) -> Result<Vec<LayerStats>> {
        self.validate()?;
        let mut r = rng(self.seed);
        let mut h: Vec<f64> = (0..self.samples * self.width).map(|_| StandardNormal.sample(&mut r)).collect();
        let mut out = vec![stats(0, &h)];
        let mut z = vec![0.0; h.len()];
        let threads = rayon::current_num_threads();
        for layer in 1..=self.layers {
            let std = self.init.std(self.width);
            let w: Vec<f64> = (0..self.width * self.width)
                .map(|_| std * Distribution::<f64>::sample(&StandardNormal, &mut r))
                .collect();
            let (n, d) = (self.samples, self.width);
            matmul(Mat::new(&h, n, d), Mat::new(&w, d, d), &mut z, false, threads);
            h.iter_mut().zip(&z).for_each(|(h, &z)| *h = self.activation.apply(z));
            out.push(stats(layer, &h));
        }
        share_range(&mut out);
        Ok(out)
    }
}

fn stats(layer: usize, v: &[f64]) -> LayerStats {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    let zero_fraction = v.iter().filter(|x| **x == 0.0).count() as f64 / n;
    let (lo, hi) = v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
    let mut s = LayerStats { layer, mean, std: var.sqrt(), zero_fraction, histogram: vec![], lo, hi };
    s.histogram = histogram(v, lo, hi);
    s
}

fn histogram(v: &[f64], lo: f64, hi: f64) -> Vec<u64> {
    let mut counts = vec![0u64; FINE_BINS];
    let width = (hi - lo).max(1e-12) / FINE_BINS as f64;
    for &x in v {
        let b = (((x - lo) / width) as usize).min(FINE_BINS - 1);
        counts[b] += 1;
    }
    counts
}

/// Puts the hidden layers' histograms on one shared range, so they compare side by side as in the lecture (the
/// activations themselves are not kept: each layer's fine bins are moved into the shared ones).
fn share_range(out: &mut [LayerStats]) {
    let hidden = &out[1.min(out.len())..];
    let lo = hidden.iter().map(|s| s.lo).fold(f64::INFINITY, f64::min);
    let hi = hidden.iter().map(|s| s.hi).fold(f64::NEG_INFINITY, f64::max);
    for s in out.iter_mut() {
        let (new_lo, new_hi) = if s.layer == 0 { (s.lo, s.hi) } else { (lo, hi) };
        s.histogram = rebin(&s.histogram, s.lo, s.hi, new_lo, new_hi);
        (s.lo, s.hi) = (new_lo, new_hi);
    }
}

/// Spreads each fine bin's count over the shared bins it overlaps, in proportion to the overlap.
fn rebin(counts: &[u64], lo: f64, hi: f64, new_lo: f64, new_hi: f64) -> Vec<u64> {
    let mut out = vec![0f64; HISTOGRAM_BINS];
    let w = (hi - lo).max(1e-12) / counts.len() as f64;
    let nw = (new_hi - new_lo).max(1e-12) / HISTOGRAM_BINS as f64;
    for (i, &c) in counts.iter().enumerate().filter(|(_, c)| **c > 0) {
        let (a, b) = (lo + i as f64 * w, lo + (i + 1) as f64 * w);
        let first = (((a - new_lo) / nw).max(0.0) as usize).min(HISTOGRAM_BINS - 1);
        let last = (((b - new_lo) / nw).max(0.0) as usize).min(HISTOGRAM_BINS - 1);
        for (j, o) in out.iter_mut().enumerate().take(last + 1).skip(first) {
            let (ja, jb) = (new_lo + j as f64 * nw, new_lo + (j + 1) as f64 * nw);
            *o += c as f64 * ((b.min(jb) - a.max(ja)).max(0.0) / w);
        }
    }
    out.into_iter().map(|v| v.round() as u64).collect()
}

/// The same statistics for a registered model at its initialisation, on `samples` real training images (batch
/// statistics, as the first step sees them): each leaf layer's output mean, std, zeros and dead units.
pub fn model_stats(
    model: &str,
    data: &str,
    samples: usize,
    seed: u64,
) -> Result<Vec<crate::net::probe::ActivationStats>> {
    use crate::data::{DataSpec, Split};
    use std::sync::Arc;
    let info = crate::models::lookup(model)?;
    let spec: DataSpec = data.parse()?;
    let ds = Arc::new(spec.load(Split::Train, Some([info.input[1], info.input[2]]))?);
    if ds.shape != info.input {
        return Err(Error::Config(format!(
            "model {model} takes {:?} images but {spec} gives {:?}",
            info.input, ds.shape
        )));
    }
    let mut idx: Vec<usize> = (0..ds.len()).collect();
    rand::seq::SliceRandom::shuffle(idx.as_mut_slice(), &mut rng(seed));
    idx.truncate(samples.clamp(2, 4096));
    let prep = Arc::new(crate::data::preprocess::Preprocess::fit(Default::default(), &ds.subset(&idx))?);
    let batch = crate::check::sanity::make_batch(&ds, &idx, &prep);
    let mut m = crate::models::build::<f32>(model, Some(ds.classes.len()), seed)?;
    let probe = Arc::new(crate::net::probe::Probe::default());
    crate::net::probe::attach(&mut m.net, &probe);
    m.forward(&batch.x, crate::Mode::Train);
    Ok(probe.take())
}

/// A table of `model_stats`, one line per layer.
pub fn model_table(stats: &[crate::net::probe::ActivationStats]) -> String {
    let w = stats.iter().map(|s| s.name.len()).max().unwrap_or(5).max(5);
    let mut out = format!("{:<w$}  {:>10} {:>10} {:>8} {:>8}  layer\n", "name", "mean", "std", "zeros", "dead");
    for s in stats {
        out += &format!(
            "{:<w$}  {:>10.4} {:>10.4} {:>7.1}% {:>7.1}%  {}\n",
            s.name,
            s.mean,
            s.std,
            100.0 * s.zero_fraction,
            100.0 * s.dead_fraction,
            s.layer
        );
    }
    out
}

/// The lecture's printout: `input layer had mean 0.000927 and std 0.998388`, then one line per hidden layer.
pub fn lecture_lines(stats: &[LayerStats]) -> String {
    let mut s = String::new();
    for l in stats {
        let what = if l.layer == 0 { "input layer".to_string() } else { format!("hidden layer {}", l.layer) };
        s += &format!("{what} had mean {:.6} and std {:.6}\n", l.mean, l.std);
    }
    s
}

/// The lecture's figure: each layer's mean and std as lines, and its activation histogram, side by side.
#[cfg(feature = "plot")]
pub fn plot(
    e: &Experiment,
    stats: &[LayerStats],
    path: &std::path::Path,
    font: Option<&std::path::Path>,
) -> Result<()> {
    use plotters::prelude::*;
    crate::plot::register_font(font)?;
    let err = |x: &dyn std::fmt::Display| Error::file(path, format!("cannot draw the chart: {x}"));
    let hidden = &stats[1..];
    let root = BitMapBackend::new(path, (240 * hidden.len().clamp(4, 10) as u32 + 40, 720)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| err(&x))?;
    let title = format!("{:?} after each of {} layers of {} units, {}", e.activation, e.layers, e.width, e.init);
    let root = root.titled(&title, ("sans-serif", 24)).map_err(|x| err(&x))?;
    let (top, bottom) = root.split_vertically(330);
    let lines = top.split_evenly((1, 2));
    let layers = hidden.len() as f64;
    for (area, (name, value)) in lines.iter().zip([("layer mean", 0), ("layer std", 1)]) {
        let ys: Vec<f64> = hidden.iter().map(|s| if value == 0 { s.mean } else { s.std }).collect();
        let (lo, hi) = ys.iter().fold((0f64, 0f64), |(a, b), &y| (a.min(y), b.max(y)));
        let pad = ((hi - lo) * 0.1).max(1e-6);
        let mut c = ChartBuilder::on(area)
            .caption(name, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(70)
            .build_cartesian_2d(0.5..layers + 0.5, lo - pad..hi + pad)
            .map_err(|x| err(&x))?;
        c.configure_mesh()
            .x_desc("layer")
            .x_labels(hidden.len())
            .x_label_formatter(&|x| format!("{x:.0}"))
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(|x| err(&x))?;
        let pts: Vec<(f64, f64)> = ys.iter().enumerate().map(|(i, &y)| (i as f64 + 1.0, y)).collect();
        c.draw_series(LineSeries::new(pts.clone(), BLUE.stroke_width(2))).map_err(|x| err(&x))?;
        c.draw_series(pts.iter().map(|&p| Circle::new(p, 4, BLUE.filled()))).map_err(|x| err(&x))?;
    }
    let shown: Vec<&LayerStats> = hidden.iter().take(10).collect();
    let cells = bottom.split_evenly((1, shown.len()));
    for (area, s) in cells.iter().zip(shown) {
        let peak = *s.histogram.iter().max().unwrap_or(&1) as f64;
        let w = (s.hi - s.lo).max(1e-12) / HISTOGRAM_BINS as f64;
        let mut c = ChartBuilder::on(area)
            .caption(format!("layer {}", s.layer), ("sans-serif", 15))
            .margin(6)
            .x_label_area_size(24)
            .build_cartesian_2d(s.lo..s.hi + 1e-12, 0.0..peak * 1.05)
            .map_err(|x| err(&x))?;
        c.configure_mesh()
            .disable_y_mesh()
            .disable_y_axis()
            .x_labels(3)
            .label_style(("sans-serif", 11))
            .draw()
            .map_err(|x| err(&x))?;
        c.draw_series(s.histogram.iter().enumerate().map(|(i, &n)| {
            let x0 = s.lo + i as f64 * w;
            Rectangle::new([(x0, 0.0), (x0 + w, n as f64)], BLUE.mix(0.6).filled())
        }))
        .map_err(|x| err(&x))?;
    }
    root.present().map_err(|x| err(&x))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(activation: &str, init: &str) -> Vec<LayerStats> {
        let e =
            Experiment { activation: activation.parse().unwrap(), init: init.parse().unwrap(), ..Default::default() };
        e.run().unwrap()
    }

    /// E[f(z)^2] - E[f(z)]^2 for z ~ N(0, var), by the trapezoid rule over +-12 standard deviations.
    fn analytic_std(f: impl Fn(f64) -> f64, var: f64) -> f64 {
        let (n, s) = (200_000, var.sqrt());
        let (mut m1, mut m2) = (0.0, 0.0);
        for i in 0..=n {
            let z = -12.0 * s + 24.0 * s * i as f64 / n as f64;
            let p = (-z * z / (2.0 * var)).exp() / (2.0 * std::f64::consts::PI * var).sqrt() * 24.0 * s / n as f64;
            m1 += f(z) * p;
            m2 += f(z) * f(z) * p;
        }
        (m2 - m1 * m1).sqrt()
    }

    #[test]
    fn the_first_layer_matches_its_analytic_spread() {
        // Layer 1 sees z = x W with x ~ N(0, 1)^500: var(z) = 500 * std(W)^2.
        for (act, init, var) in [("tanh", "xavier", 1.0), ("tanh", "small", 500.0 * 1e-4), ("relu", "he", 2.0)] {
            let s = run(act, init);
            let f = |z: f64| act.parse::<Activation>().unwrap().apply(z);
            let want = analytic_std(f, var);
            assert!((s[1].std - want).abs() < 0.01 * want, "{act}/{init}: {} vs {want}", s[1].std);
        }
        // The lecture's own figure for tanh + Xavier: std 0.627953 in layer 1.
        assert!((analytic_std(f64::tanh, 1.0) - 0.6278).abs() < 1e-3);
    }

    #[test]
    fn the_lecture_trends() {
        let small = run("tanh", "small");
        assert!(small[10].std < 1e-6, "small init collapses to zero: {}", small[10].std);
        let xavier = run("tanh", "xavier");
        assert!(xavier[10].std > 0.1 && xavier[10].std < xavier[1].std, "Xavier decays gently");
        let large = run("tanh", "large");
        let saturated = |s: &LayerStats| s.histogram[0] + s.histogram[HISTOGRAM_BINS - 1];
        assert!(saturated(&large[10]) as f64 > 0.5 * 1000.0 * 500.0, "large init saturates tanh at -1 and 1");
        let total: u64 = xavier[5].histogram.iter().sum();
        assert!((total as i64 - 500_000).abs() < 50, "re-binning keeps the count: {total}");
        let he = run("relu", "he");
        let ratio = he[10].std / he[1].std;
        assert!(ratio > 0.5 && ratio < 2.0, "ReLU + He stays roughly constant: {ratio}");
        // ReLU + Xavier: the second moment E[h^2] halves at every layer (ReLU keeps half of a zero-mean input's
        // variance, and Xavier's weights pass E[h^2] on unchanged), so the std shrinks by about 1/sqrt(2).
        let rx = run("relu", "xavier");
        let m2 = |s: &LayerStats| s.std * s.std + s.mean * s.mean;
        let per_layer = (m2(&rx[10]) / m2(&rx[1])).powf(1.0 / 9.0);
        assert!((per_layer - 0.5).abs() < 0.05, "ReLU + Xavier halves E[h^2] per layer: {per_layer}");
        for l in 2..=10 {
            let r = rx[l].std / rx[l - 1].std;
            assert!(r > 0.55 && r < 0.85, "ReLU + Xavier, layer {l}: std ratio {r}");
        }
        assert!(he[3].zero_fraction > 0.4 && he[3].zero_fraction < 0.6, "half the ReLUs are off");
        let text = lecture_lines(&xavier);
        assert!(text.starts_with("input layer had mean ") && text.contains("\nhidden layer 10 had mean "));
    }

    #[test]
    fn a_real_model_on_real_images() {
        let s = model_stats("lenet5", "mnist:../shared/data/mnist", 64, 0).unwrap();
        assert_eq!(s.len(), 10);
        assert_eq!(s[0].name, "conv1");
        // He init keeps ReLU layers alive: about half the outputs zero, no unit dead on 64 images.
        let relu1 = s.iter().find(|a| a.name == "relu1").unwrap();
        assert!(relu1.zero_fraction > 0.2 && relu1.zero_fraction < 0.8 && relu1.dead_fraction < 0.2, "{relu1:?}");
        assert!(model_table(&s).lines().count() == 11);
        assert!(model_stats("lenet5", "cifar10-bin:/nonexistent", 8, 0).is_err());
    }

    #[test]
    fn bad_settings_are_errors() {
        assert!("swish".parse::<Activation>().is_err());
        assert!("small:-1".parse::<WeightScale>().is_err() && "he:2".parse::<WeightScale>().is_err());
        assert!(Experiment { layers: 0, ..Default::default() }.run().is_err());
        assert!(Experiment { width: 1 << 20, ..Default::default() }.run().is_err());
    }

    #[cfg(feature = "plot")]
    #[test]
    fn the_figure_is_drawn() {
        let e = Experiment { layers: 4, width: 64, samples: 200, ..Default::default() };
        let s = e.run().unwrap();
        let d = tempfile::tempdir().unwrap();
        let png = d.path().join("init.png");
        plot(&e, &s, &png, None).unwrap();
        let img = image::open(&png).unwrap();
        assert!(img.width() > 900 && img.height() == 720);
    }
}
