//! `RUN/report.html`: one self-contained page (inline SVG and data-URI images, no network) built from the files a
//! run leaves: the figures, the curves (loss, accuracy with the gap shaded, rate), each weight's update/weight
//! ratio over the steps, each layer's activations (table and histograms) at the last sample, the sanity checks,
//! the diagnosis, the test confusion matrix, a grid of misclassified validation images, the model summary and the
//! resolved recipe. Rewritten after every epoch; `convkit report RUN` rebuilds it.

use crate::train::callback::{Callback, EpochLog};
use crate::train::trainer::{TestSet, Trainer};
use crate::train::{TrainConfig, TrainReport};
use crate::{Error, Result};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Writes `run/report.html` (via a temporary file) and returns its path.
pub fn write(run: &Path) -> Result<PathBuf> {
    let html = page(run)?;
    let (tmp, out) = (run.join("report.html.tmp"), run.join("report.html"));
    std::fs::write(&tmp, html).map_err(|e| Error::file(&tmp, format!("cannot write: {e}")))?;
    std::fs::rename(&tmp, &out).map_err(|e| Error::file(&out, format!("cannot move into place: {e}")))?;
    Ok(out)
}

fn page(run: &Path) -> Result<String> {
    let cfg = TrainConfig::from_file(&run.join("config.toml"))?;
    let report: Option<Value> = read_json(&run.join("report.json"));
    let samples: Vec<Value> = std::fs::read_to_string(run.join("monitor.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let mut h = String::new();
    let title = format!("{} on {}", cfg.model, cfg.data);
    let _ = write!(h, "<!doctype html><html><head><meta charset=\"utf-8\"><title>convkit: {}</title>", esc(&title));
    h += "<style>body{font-family:sans-serif;margin:24px;max-width:1560px}table{border-collapse:collapse}\
          td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}th{background:#eee}\
          .pass{color:#080}.fail{color:#b00}pre{background:#f6f6f6;padding:8px}</style></head><body>";
    let _ = write!(h, "<h1>{}</h1><p>run folder <code>{}</code></p>", esc(&title), esc(&run.display().to_string()));
    h += &figures(report.as_ref());
    h += "<h2 id=\"curves\">Curves</h2>";
    h += &crate::train::callbacks::curves::svg(&run.join("metrics.csv"))?;
    h += &ratios(&samples)?;
    h += &activations(&samples);
    h += &activation_histograms(samples.last())?;
    h += &checks(report.as_ref());
    h += &confusion(report.as_ref());
    h += &misclassified(&run.join("misclassified.json"));
    h += &summary(&cfg)?;
    let _ = write!(h, "<h2 id=\"recipe\">Recipe (config.toml)</h2><pre>{}</pre>", esc(&cfg.to_toml()));
    h += "</body></html>\n";
    Ok(h)
}

fn read_json(p: &Path) -> Option<Value> {
    std::fs::read_to_string(p).ok().and_then(|t| serde_json::from_str(&t).ok())
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn pct(v: &Value) -> String {
    v.as_f64().map_or("-".into(), |x| format!("{:.2}%", 100.0 * x))
}

fn figures(r: Option<&Value>) -> String {
    let Some(r) = r else { return "<p>Training in progress: the test figures come at the end.</p>".into() };
    format!(
        "<h2 id=\"figures\">Figures</h2><table><tr><th>epochs</th><th>best val accuracy (epoch)</th>\
         <th>test accuracy</th><th>test loss</th><th>wall time</th></tr><tr><td>{}</td><td>{} ({})</td><td>{}</td>\
         <td>{:.4}</td><td>{:.0} s</td></tr></table>",
        r["epochs"],
        pct(&r["best_val_accuracy"]),
        r["best_epoch"],
        pct(&r["test_accuracy"]),
        r["test_loss"].as_f64().unwrap_or(f64::NAN),
        r["wall_seconds"].as_f64().unwrap_or(f64::NAN)
    )
}

/// Each weight's `||lr dW|| / ||W||` against the step, log scale, with the lecture's 1e-3 marked.
fn ratios(samples: &[Value]) -> Result<String> {
    use plotters::prelude::*;
    let Some(first) = samples.first() else { return Ok(String::new()) };
    let names: Vec<String> = first["update_ratio"].as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    let pts = |n: &str| -> Vec<(f64, f64)> {
        samples
            .iter()
            .filter_map(|s| Some((s["step"].as_f64()?, s["update_ratio"][n].as_f64()?)))
            .filter(|p| p.1 > 0.0 && p.1.is_finite())
            .collect()
    };
    let all: Vec<(f64, f64)> = names.iter().flat_map(|n| pts(n)).collect();
    if all.is_empty() {
        return Ok(String::new());
    }
    let (lo, hi) = all.iter().fold((1e-3f64, 1e-3f64), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let last = all.iter().map(|p| p.0).fold(1.0, f64::max);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1100, 420)).into_drawing_area();
        let err = |x: &dyn std::fmt::Display| Error::Config(format!("update ratio chart: {x}"));
        root.fill(&WHITE).map_err(|x| err(&x))?;
        let mut c = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(65)
            .build_cartesian_2d(0.0..last, (lo / 2.0..hi * 2.0).log_scale())
            .map_err(|x| err(&x))?;
        c.configure_mesh().x_desc("step").y_label_formatter(&|y| format!("{y:.0e}")).draw().map_err(|x| err(&x))?;
        c.draw_series(std::iter::once(PathElement::new(vec![(0.0, 1e-3), (last, 1e-3)], BLACK.stroke_width(1))))
            .map_err(|x| err(&x))?;
        for (i, n) in names.iter().enumerate() {
            let colour = Palette99::pick(i).to_rgba();
            c.draw_series(LineSeries::new(pts(n), colour.stroke_width(2)))
                .map_err(|x| err(&x))?
                .label(n.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2)));
        }
        c.configure_series_labels().background_style(WHITE.mix(0.9)).draw().map_err(|x| err(&x))?;
        root.present().map_err(|x| err(&x))?;
    }
    Ok(format!(
        "<h2 id=\"ratios\">Update/weight ratios</h2><p><code>||lr * dW|| / ||W||</code> for each weight, every \
         sampled step; the line marks the lecture's 1e-3.</p>{svg}"
    ))
}

/// Each layer's activation mean +- std and dead units at the last sample.
fn activations(samples: &[Value]) -> String {
    let Some(last) = samples.last() else { return String::new() };
    let mut h = format!(
        "<h2 id=\"activations\">Activations</h2><p>At step {}, on that step's batch.</p><table><tr><th>layer</th>\
         <th>mean</th><th>std</th><th>zeros</th><th>dead units</th><th></th></tr>",
        last["step"]
    );
    for a in last["activations"].as_array().into_iter().flatten() {
        let f = |k: &str| a[k].as_f64().unwrap_or(f64::NAN);
        let bar = (f("std").min(4.0) * 50.0).round() as usize;
        let _ = write!(
            h,
            "<tr><td style=\"text-align:left\">{}</td><td>{:.4}</td><td>{:.4}</td><td>{:.1}%</td><td>{:.1}%</td>\
             <td style=\"text-align:left\"><svg width=\"210\" height=\"10\"><rect width=\"{bar}\" height=\"10\" \
             fill=\"#69c\"/></svg></td></tr>",
            esc(a["name"].as_str().unwrap_or("?")),
            f("mean"),
            f("std"),
            100.0 * f("zero_fraction"),
            100.0 * f("dead_fraction")
        );
    }
    h + "</table>"
}

/// Each layer's histogram of output values at the last sample, side by side as in the lecture's figure.
fn activation_histograms(last: Option<&Value>) -> Result<String> {
    use plotters::prelude::*;
    let layers: Vec<&Value> = last
        .and_then(|l| l["activations"].as_array())
        .into_iter()
        .flatten()
        .filter(|a| a["histogram"].as_array().is_some_and(|h| !h.is_empty()))
        .collect();
    if layers.is_empty() {
        return Ok(String::new());
    }
    const COLS: usize = 6;
    let rows = layers.len().div_ceil(COLS);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (COLS as u32 * 250, rows as u32 * 150)).into_drawing_area();
        let err = |x: &dyn std::fmt::Display| Error::Config(format!("activation histograms: {x}"));
        root.fill(&WHITE).map_err(|x| err(&x))?;
        for (area, a) in root.split_evenly((rows, COLS)).iter().zip(&layers) {
            let counts: Vec<f64> = a["histogram"].as_array().into_iter().flatten().filter_map(|c| c.as_f64()).collect();
            let (lo, hi) = (a["lo"].as_f64().unwrap_or(0.0), a["hi"].as_f64().unwrap_or(0.0));
            let hi = if hi > lo { hi } else { lo + 1e-6 };
            let peak = counts.iter().cloned().fold(1.0, f64::max);
            let w = (hi - lo) / counts.len() as f64;
            let mut c = ChartBuilder::on(area)
                .caption(a["name"].as_str().unwrap_or("?"), ("sans-serif", 14))
                .margin(6)
                .x_label_area_size(22)
                .build_cartesian_2d(lo..hi, 0.0..peak * 1.05)
                .map_err(|x| err(&x))?;
            c.configure_mesh()
                .disable_y_mesh()
                .disable_y_axis()
                .x_labels(3)
                .x_label_formatter(&|x| format!("{x:.2}"))
                .label_style(("sans-serif", 11))
                .draw()
                .map_err(|x| err(&x))?;
            c.draw_series(counts.iter().enumerate().map(|(i, &n)| {
                let x0 = lo + i as f64 * w;
                Rectangle::new([(x0, 0.0), (x0 + w, n)], BLUE.mix(0.6).filled())
            }))
            .map_err(|x| err(&x))?;
        }
        root.present().map_err(|x| err(&x))?;
    }
    Ok(format!("<h3 id=\"histograms\">Activation histograms</h3><p>Each layer's output values, same step.</p>{svg}"))
}

fn checks(r: Option<&Value>) -> String {
    let Some(r) = r else { return String::new() };
    let mut h = String::new();
    if let Some(checks) = r["sanity"]["checks"].as_array() {
        h += "<h2 id=\"sanity\">Sanity checks</h2><ul>";
        for c in checks {
            let ok = c["passed"].as_bool().unwrap_or(false);
            let _ = write!(
                h,
                "<li><b class=\"{}\">{}</b> {}: {}{}</li>",
                if ok { "pass" } else { "fail" },
                if ok { "PASS" } else { "FAIL" },
                esc(c["name"].as_str().unwrap_or("")),
                esc(c["detail"].as_str().unwrap_or("")),
                c["hint"].as_str().map_or(String::new(), |x| format!(" <i>usually: {}</i>", esc(x)))
            );
        }
        h += "</ul>";
    }
    if let Some(d) = r["diagnosis"].as_array() {
        h += "<h2 id=\"diagnosis\">Diagnosis</h2><ul>";
        for line in d {
            let _ = write!(h, "<li>{}</li>", esc(line.as_str().unwrap_or("")));
        }
        h += "</ul>";
    }
    h
}

/// The test split's confusion matrix, with per-class accuracy.
fn confusion(r: Option<&Value>) -> String {
    let Some(t) = r.map(|r| &r["test"]) else { return String::new() };
    let (Some(m), Some(per)) = (t["confusion"].as_array(), t["per_class"].as_array()) else { return String::new() };
    let mut h = "<h2 id=\"confusion\">Test confusion matrix</h2><p>Rows: true class; columns: predicted.</p>\
                 <table><tr><th>true \\ pred</th>"
        .to_string();
    for c in per {
        let _ = write!(h, "<th>{}</th>", esc(c["class"].as_str().unwrap_or("?")));
    }
    h += "<th>accuracy</th></tr>";
    for (i, row) in m.iter().enumerate() {
        let _ = write!(h, "<tr><th>{}</th>", esc(per[i]["class"].as_str().unwrap_or("?")));
        for (j, v) in row.as_array().into_iter().flatten().enumerate() {
            let style = if i == j { " style=\"background:#dfd\"" } else { "" };
            let _ = write!(h, "<td{style}>{v}</td>");
        }
        let _ = write!(h, "<td>{}</td></tr>", pct(&per[i]["accuracy"]));
    }
    h + "</table>"
}

/// The validation images the model got wrong at the last epoch, with predicted and true labels.
fn misclassified(path: &Path) -> String {
    use crate::train::callbacks::misclassified::Misclassified;
    let Some(m) = std::fs::read_to_string(path).ok().and_then(|t| serde_json::from_str::<Misclassified>(&t).ok())
    else {
        return String::new();
    };
    let mut h = format!(
        "<h2 id=\"misclassified\">Misclassified validation images</h2><p>Epoch {}: the first {} wrong of {} \
         validation images looked at.</p><div style=\"display:flex;flex-wrap:wrap;gap:8px\">",
        m.epoch,
        m.mistakes.len(),
        m.scanned
    );
    for x in &m.mistakes {
        let _ = write!(
            h,
            "<figure style=\"margin:0;width:104px;font-size:12px\"><img width=\"96\" height=\"96\" \
             style=\"image-rendering:pixelated\" alt=\"validation image {}\" src=\"data:image/png;base64,{}\">\
             <figcaption><b class=\"fail\">{}</b> ({:.0}%)<br>true: {}</figcaption></figure>",
            x.index,
            x.png_base64,
            esc(&x.predicted),
            100.0 * x.probability,
            esc(&x.truth)
        );
    }
    h + "</div>"
}

/// The model's per-layer accounting.
fn summary(cfg: &TrainConfig) -> Result<String> {
    let info = crate::models::lookup(&cfg.model)?;
    let mut m = crate::models::build_shapes(&cfg.model, None)?;
    let s = crate::summary::summarize(&mut m, info.input, 1)?;
    Ok(format!("<h2 id=\"model\">Model</h2><pre>{}</pre>", esc(&s.to_string())))
}

/// Rewrites the report after every epoch and once more at the end (after report.json).
pub struct HtmlReport {
    pub run: PathBuf,
    warned: bool,
}

impl HtmlReport {
    pub fn new(run: PathBuf) -> Self {
        HtmlReport { run, warned: false }
    }

    fn rewrite(&mut self) {
        if let Err(e) = write(&self.run) {
            if !self.warned {
                tracing::warn!("report.html not written: {e}");
                self.warned = true;
            }
        }
    }
}

impl Callback for HtmlReport {
    fn on_epoch_end(&mut self, _t: &mut Trainer, _log: &EpochLog) -> Result<()> {
        self.rewrite();
        Ok(())
    }
    fn on_train_end(&mut self, _t: &mut Trainer, _test: &TestSet, _r: &mut TrainReport) -> Result<()> {
        self.rewrite();
        Ok(())
    }
}
