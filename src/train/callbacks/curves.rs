//! `RUN/curves.png`, redrawn after every epoch from `metrics.csv` (so a resumed run's picture has its whole
//! history): the loss (train and validation), the accuracy with the train/val gap shaded, and the learning rate.
//! Written to `curves.tmp.png` and renamed, so the picture is never half-drawn. A picture that cannot be drawn
//! (no font on this machine, say) is a warning, never a reason to stop training.

use crate::train::callback::{Callback, EpochLog};
use crate::train::trainer::Trainer;
use crate::{Error, Result};
use std::path::{Path, PathBuf};

pub struct Curves {
    pub metrics: PathBuf,
    pub png: PathBuf,
    warned: bool,
}

impl Curves {
    pub fn new(metrics: PathBuf, png: PathBuf) -> Self {
        Curves { metrics, png, warned: false }
    }
}

impl Callback for Curves {
    fn on_epoch_end(&mut self, _t: &mut Trainer, _log: &EpochLog) -> Result<()> {
        if let Err(e) = draw(&self.metrics, &self.png) {
            if !self.warned {
                tracing::warn!("curves.png not drawn: {e}");
                self.warned = true;
            }
        }
        Ok(())
    }
}

/// One row of metrics.csv: epoch, train loss, train acc, val loss, val acc, lr.
type Row = (f64, f64, f64, f64, f64, f64);

fn rows(metrics: &Path) -> Result<Vec<Row>> {
    let text = std::fs::read_to_string(metrics).map_err(|e| Error::file(metrics, format!("cannot read: {e}")))?;
    let num = |s: &str| s.parse::<f64>().unwrap_or(f64::NAN);
    Ok(text
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|c| c.len() >= 7)
        .map(|c| (num(c[0]), num(c[2]), num(c[3]), num(c[4]), num(c[5]), num(c[6])))
        .collect())
}

/// Draws the three panels from `metrics` into `png` (via a temporary file).
pub fn draw(metrics: &Path, png: &Path) -> Result<()> {
    use plotters::prelude::*;
    let rows = rows(metrics)?;
    if rows.is_empty() {
        return Ok(());
    }
    crate::plot::register_font(None)?;
    let tmp = png.with_extension("tmp.png"); // plotters picks the format from the extension
    {
        let root = BitMapBackend::new(&tmp, (1500, 450)).into_drawing_area();
        panels(&root, &rows).map_err(|e| Error::file(&tmp, format!("cannot draw: {e}")))?;
    }
    std::fs::rename(&tmp, png).map_err(|e| Error::file(png, format!("cannot move into place: {e}")))
}

/// The same picture as SVG text (for the HTML report).
pub fn svg(metrics: &Path) -> Result<String> {
    use plotters::prelude::*;
    let rows = rows(metrics)?;
    crate::plot::register_font(None)?;
    let mut out = String::new();
    if !rows.is_empty() {
        let root = SVGBackend::with_string(&mut out, (1500, 450)).into_drawing_area();
        panels(&root, &rows).map_err(|e| Error::file(metrics, format!("cannot draw: {e}")))?;
    }
    Ok(out)
}

/// Epochs are whole numbers: ticks between them get no label.
fn whole(x: &f64) -> String {
    if x.fract().abs() < 1e-9 {
        format!("{x:.0}")
    } else {
        String::new()
    }
}

/// Loss, accuracy (gap shaded) and rate, side by side, on any plotters backend.
fn panels<DB: plotters::prelude::DrawingBackend>(
    root: &plotters::prelude::DrawingArea<DB, plotters::coord::Shift>,
    rows: &[Row],
) -> std::result::Result<(), String> {
    use plotters::prelude::*;
    let err = |x: &dyn std::fmt::Display| x.to_string();
    {
        root.fill(&WHITE).map_err(|x| err(&x))?;
        let panels = root.split_evenly((1, 3));
        let epochs = (0.5, rows.last().map_or(1.0, |r| r.0) + 0.5);
        let series =
            |f: fn(&Row) -> f64| rows.iter().map(|r| (r.0, f(r))).filter(|p| p.1.is_finite()).collect::<Vec<_>>();
        let (train_loss, val_loss) = (series(|r| r.1), series(|r| r.3));
        let (train_acc, val_acc) = (series(|r| 100.0 * r.2), series(|r| 100.0 * r.4));
        let top = train_loss.iter().chain(&val_loss).map(|p| p.1).fold(0.0, f64::max) * 1.05;
        let mut c = ChartBuilder::on(&panels[0])
            .caption("loss", ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(55)
            .build_cartesian_2d(epochs.0..epochs.1, 0.0..top.max(1e-6))
            .map_err(|x| err(&x))?;
        c.configure_mesh()
            .x_desc("epoch")
            .x_label_formatter(&whole)
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(|x| err(&x))?;
        for (pts, colour, name) in [(&train_loss, BLUE, "train"), (&val_loss, RED, "validation")] {
            c.draw_series(LineSeries::new(pts.iter().copied(), colour.stroke_width(2)))
                .map_err(|x| err(&x))?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
        }
        // Losses fall: the upper right is where the curves are not.
        c.configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.9))
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(|x| err(&x))?;
        let lo = train_acc.iter().chain(&val_acc).map(|p| p.1).fold(100.0, f64::min);
        let mut c = ChartBuilder::on(&panels[1])
            .caption("accuracy (%), the train/val gap shaded", ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(55)
            .build_cartesian_2d(epochs.0..epochs.1, (lo - 2.0).max(0.0)..100.5)
            .map_err(|x| err(&x))?;
        c.configure_mesh()
            .x_desc("epoch")
            .x_label_formatter(&whole)
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(|x| err(&x))?;
        let gap: Vec<(f64, f64)> = train_acc.iter().copied().chain(val_acc.iter().rev().copied()).collect();
        c.draw_series(std::iter::once(Polygon::new(gap, RED.mix(0.12)))).map_err(|x| err(&x))?;
        for (pts, colour, name) in [(&train_acc, BLUE, "train"), (&val_acc, RED, "validation")] {
            c.draw_series(LineSeries::new(pts.iter().copied(), colour.stroke_width(2)))
                .map_err(|x| err(&x))?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
        }
        c.configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(|x| err(&x))?;
        let lr = series(|r| r.5);
        let (lr_lo, lr_hi) = lr.iter().fold((f64::INFINITY, 0f64), |(a, b), p| (a.min(p.1), b.max(p.1)));
        // No finite, positive rate (an epoch without a step): a fixed decade, not an infinite axis.
        let (lr_lo, lr_hi) =
            if lr_lo.is_finite() && lr_lo > 0.0 && lr_hi >= lr_lo { (lr_lo, lr_hi) } else { (1e-2, 1e-2) };
        let mut c = ChartBuilder::on(&panels[2])
            .caption("learning rate (at each epoch's end)", ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(65)
            .build_cartesian_2d(epochs.0..epochs.1, (lr_lo.max(1e-12) / 2.0..lr_hi.max(1e-12) * 2.0).log_scale())
            .map_err(|x| err(&x))?;
        c.configure_mesh()
            .x_desc("epoch")
            .x_label_formatter(&whole)
            // A log axis's light mesh is dense enough near each decade to read as a grey band: left out.
            .light_line_style(WHITE.mix(0.0))
            // Log-scale ticks come at 1..9 x 10^k: naming only 1, 2 and 5 keeps them apart.
            .y_label_formatter(&|y| {
                let t = format!("{y:.0e}");
                if t.starts_with(['1', '2', '5']) {
                    t
                } else {
                    String::new()
                }
            })
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(|x| err(&x))?;
        c.draw_series(LineSeries::new(lr.iter().copied(), BLACK.stroke_width(2))).map_err(|x| err(&x))?;
        root.present().map_err(|x| err(&x))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_epoch_without_a_step_still_draws() {
        // metrics.csv after an epoch with no step: the rate is NaN. The rate axis once became inf..2e-12 and the
        // drawing never finished.
        let d = tempfile::tempdir().unwrap();
        let csv = d.path().join("metrics.csv");
        std::fs::write(
            &csv,
            format!("{}\n1,0,0.000000,0.000000,2.302585,0.100000,NaN,0.10,,\n", super::super::metrics_csv::HEADER),
        )
        .unwrap();
        super::draw(&csv, &d.path().join("curves.png")).unwrap();
        assert!(d.path().join("curves.png").exists());
    }
}
