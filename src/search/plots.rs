//! The search's pictures: validation accuracy against each hyperparameter (log axis for log ranges), a 2-D scatter
//! of two of them coloured by accuracy, and the lecture's random-vs-grid figure.

use super::demo::{self, Demo};
use super::space::{as_f64, Dist, Space};
use super::storage::{Status, TrialRow};
use crate::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

fn err(path: &Path) -> impl Fn(&dyn std::fmt::Display) -> Error + '_ {
    move |x| Error::file(path, format!("cannot draw the chart: {x}"))
}

/// Viridis (dark purple to yellow), interpolated between five of its stops.
fn viridis(t: f64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 5] =
        [(68.0, 1.0, 84.0), (59.0, 82.0, 139.0), (33.0, 145.0, 140.0), (94.0, 201.0, 98.0), (253.0, 231.0, 37.0)];
    let x = t.clamp(0.0, 1.0) * 4.0;
    let i = (x.floor() as usize).min(3);
    let f = x - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |p: f64, q: f64| (p + (q - p) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// A numeric key's axis value: log10 for log ranges, so that one linear axis serves both.
fn axis(dist: &Dist, v: f64) -> f64 {
    if dist.is_log() {
        v.log10()
    } else {
        v
    }
}

/// The study's figure: a panel per numeric hyperparameter, then the scatter of the first two (or `pair`).
pub fn study(
    space: &Space,
    trials: &[TrialRow],
    pair: Option<(&str, &str)>,
    path: &Path,
    font: Option<&Path>,
) -> Result<()> {
    crate::plot::register_font(font)?;
    let keys: Vec<(&str, &Dist)> =
        space.params.iter().filter(|(_, d)| d.bounds().is_some()).map(|(k, d)| (k.as_str(), d)).collect();
    if keys.is_empty() {
        return Err(Error::Config("the space has no numeric hyperparameter to plot".into()));
    }
    let pair = pair.or_else(|| (keys.len() >= 2).then(|| (keys[0].0, keys[1].0)));
    let panels = keys.len() + pair.is_some() as usize;
    let cols = panels.min(3);
    let rows = panels.div_ceil(cols);
    let root = BitMapBackend::new(path, (520 * cols as u32, 440 * rows as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| err(path)(&x))?;
    let areas = root.split_evenly((rows, cols));
    let scored: Vec<&TrialRow> = trials.iter().filter(|t| t.val_accuracy.is_some()).collect();
    let (lo, hi) =
        scored.iter().filter_map(|t| t.val_accuracy).fold((1.0f64, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    let (lo, hi) = if hi > lo { (lo, hi) } else { (0.0, 1.0) };
    for (i, (area, (key, dist))) in areas.iter().zip(&keys).enumerate() {
        one_parameter(area, key, dist, &scored, (lo, hi), i == 0).map_err(|x| err(path)(&x))?;
    }
    if let Some((kx, ky)) = pair {
        let (dx, dy) = (space.get(kx), space.get(ky));
        let (Some(dx), Some(dy)) = (dx, dy) else {
            return Err(Error::Config(format!("--pair {kx},{ky}: both must be keys of the space")));
        };
        scatter(&areas[keys.len()], (kx, dx), (ky, dy), &scored, (lo, hi)).map_err(|x| err(path)(&x))?;
    }
    root.present().map_err(|x| err(path)(&x))?;
    Ok(())
}

fn bounds(dist: &Dist) -> (f64, f64) {
    let (a, b) = dist.bounds().expect("numeric");
    let (a, b) = (axis(dist, a), axis(dist, b));
    let pad = 0.03 * (b - a);
    (a - pad, b + pad)
}

fn label(dist: &Dist, x: f64) -> String {
    if dist.is_log() {
        format!("{:.0e}", 10f64.powf(x))
    } else {
        format!("{}", super::space::short(x))
    }
}

fn one_parameter(
    area: &Area,
    key: &str,
    dist: &Dist,
    trials: &[&TrialRow],
    (lo, hi): (f64, f64),
    legend: bool,
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let (a, b) = bounds(dist);
    let pad = 0.05 * (hi - lo);
    let mut c = ChartBuilder::on(area)
        .caption(format!("validation accuracy vs {key}"), ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(a..b, (lo - pad) * 100.0..(hi + pad) * 100.0)?;
    c.configure_mesh()
        .x_desc(if dist.is_log() { format!("{key} (log scale)") } else { key.to_string() })
        .y_desc("val accuracy (%)")
        .x_label_formatter(&|x| label(dist, *x))
        .light_line_style(WHITE)
        .label_style(("sans-serif", 14))
        .draw()?;
    let best = trials.iter().filter_map(|t| t.val_accuracy).fold(f64::NEG_INFINITY, f64::max);
    c.draw_series(trials.iter().filter_map(|t| {
        let x = axis(dist, t.params.get(key).and_then(as_f64)?);
        let y = t.val_accuracy? * 100.0;
        let colour = if t.val_accuracy == Some(best) {
            RED.filled()
        } else if t.status == Status::Pruned {
            RGBColor(150, 150, 150).filled()
        } else {
            BLUE.mix(0.7).filled()
        };
        Some(Circle::new((x, y), 5, colour))
    }))?;
    if legend {
        let at = (a + 0.02 * (b - a), (lo - 0.02 * (hi - lo)) * 100.0);
        c.draw_series([Text::new(
            "red: best   blue: finished   grey: pruned (its last epoch)",
            at,
            ("sans-serif", 13),
        )])?;
    }
    Ok(())
}

fn scatter(
    area: &Area,
    (kx, dx): (&str, &Dist),
    (ky, dy): (&str, &Dist),
    trials: &[&TrialRow],
    (lo, hi): (f64, f64),
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let (xa, xb) = bounds(dx);
    let (ya, yb) = bounds(dy);
    let mut c = ChartBuilder::on(area)
        .caption(format!("{kx} x {ky}, coloured by accuracy"), ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(xa..xb, ya..yb)?;
    c.configure_mesh()
        .x_desc(kx)
        .y_desc(ky)
        .x_label_formatter(&|x| label(dx, *x))
        .y_label_formatter(&|y| label(dy, *y))
        .light_line_style(WHITE)
        .label_style(("sans-serif", 14))
        .draw()?;
    c.draw_series(trials.iter().filter_map(|t| {
        let x = axis(dx, t.params.get(kx).and_then(as_f64)?);
        let y = axis(dy, t.params.get(ky).and_then(as_f64)?);
        let shade = (t.val_accuracy? - lo) / (hi - lo);
        Some(Circle::new((x, y), 7, viridis(shade).filled()))
    }))?;
    c.draw_series([Text::new(
        format!("dark: {:.1}%  yellow: {:.1}%", lo * 100.0, hi * 100.0),
        (xa + 0.02 * (xb - xa), yb - 0.03 * (yb - ya)),
        ("sans-serif", 14),
    )])?;
    Ok(())
}

/// The lecture's figure: grid layout left, random layout right, each with the important parameter's curve above
/// and the values it tried marked on it.
pub fn demo(d: &Demo, path: &Path, font: Option<&Path>) -> Result<()> {
    crate::plot::register_font(font)?;
    let root = BitMapBackend::new(path, (1100, 620)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| err(path)(&x))?;
    let (left, right) = root.split_horizontally(550);
    for (area, name, t) in [(&left, "grid layout", &d.grid), (&right, "random layout", &d.random)] {
        layout(area, name, t).map_err(|x| err(path)(&x))?;
    }
    root.present().map_err(|x| err(path)(&x))?;
    Ok(())
}

fn layout(area: &Area, name: &str, t: &demo::Trials) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let (top, bottom) = area.split_vertically(190);
    let mut c = ChartBuilder::on(&top)
        .caption(
            format!("{name}: {} values of the important parameter, best {:.2}", t.distinct_x, t.best),
            ("sans-serif", 17),
        )
        .margin(10)
        .x_label_area_size(5)
        .y_label_area_size(40)
        .build_cartesian_2d(-0.02..1.02, 0.0..1.1)?;
    c.configure_mesh().disable_mesh().disable_x_axis().y_labels(3).label_style(("sans-serif", 12)).draw()?;
    let curve = (0..=200).map(|i| i as f64 / 200.0).map(|x| (x, demo::important(x)));
    c.draw_series(LineSeries::new(curve, GREEN.stroke_width(2)))?;
    c.draw_series(t.points.iter().map(|p| Circle::new((p.0, demo::important(p.0)), 5, RED.filled())))?;
    let mut s = ChartBuilder::on(&bottom)
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(40)
        .build_cartesian_2d(-0.02..1.02, -0.02..1.02)?;
    s.configure_mesh()
        .x_desc("important parameter")
        .y_desc("unimportant parameter")
        .light_line_style(WHITE)
        .label_style(("sans-serif", 13))
        .draw()?;
    s.draw_series(t.points.iter().map(|p| Circle::new((p.0, p.1), 7, BLUE.filled())))?;
    Ok(())
}
