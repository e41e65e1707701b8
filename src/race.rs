//! `convkit optim-race`: the lecture's picture of optimizers racing over 2-D loss surfaces. Every optimizer here
//! is the real one from `optim/` (the same code that trains networks), stepping a 2-element parameter.
//!
//! Surfaces: an ill-conditioned quadratic (the "taco shell": steep across, shallow along, where SGD zig-zags and
//! crawls), a saddle point (tiny gradient away from it), a function with a local minimum beside the global one,
//! and the taco shell again with noisy gradients (what mini-batches do).

use crate::layers::{Param, ParamKind};
use crate::optim::lbfgs::Lbfgs;
use crate::optim::{Optimizer, OptimizerConfig};
use crate::tensor::Tensor;
#[cfg(feature = "plot")]
use crate::Error;
use crate::Result;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use serde::Serialize;
#[cfg(feature = "plot")]
use std::path::Path;

/// A 2-D test function with its gradient, start point, best value and the region to draw.
pub struct Surface {
    pub name: &'static str,
    /// A column header for the table.
    pub short: &'static str,
    pub f: fn(f64, f64) -> (f64, [f64; 2]),
    pub start: [f64; 2],
    /// The global minimum's value (steps are counted until `f - min < tol`).
    pub min: f64,
    /// Standard deviation of the noise added to each gradient element (0: exact gradients).
    pub noise: f64,
    pub x_range: (f64, f64),
    pub y_range: (f64, f64),
}

fn taco(x: f64, y: f64) -> (f64, [f64; 2]) {
    // Curvatures 0.1 and 4: condition number 40.
    (0.05 * x * x + 2.0 * y * y, [0.1 * x, 4.0 * y])
}

fn saddle(x: f64, y: f64) -> (f64, [f64; 2]) {
    // A saddle at the origin; minima at (0, +-sqrt 2) with value -1.
    (x * x + 0.25 * y.powi(4) - y * y, [2.0 * x, y.powi(3) - 2.0 * y])
}

fn local_min(x: f64, y: f64) -> (f64, [f64; 2]) {
    // A double well tilted so the left minimum (x ~ -1.48) is lower than the right one (x ~ 1.33).
    (0.25 * x.powi(4) - x * x + 0.3 * x + y * y, [x.powi(3) - 2.0 * x + 0.3, 2.0 * y])
}

pub fn surfaces() -> Vec<Surface> {
    let lm = {
        // The global minimum of the double well, by Newton from the left.
        let mut x: f64 = -1.2;
        for _ in 0..50 {
            x -= (x.powi(3) - 2.0 * x + 0.3) / (3.0 * x * x - 2.0);
        }
        local_min(x, 0.0).0
    };
    vec![
        Surface {
            name: "ill-conditioned quadratic (taco shell)",
            short: "taco shell",
            f: taco,
            start: [-9.0, 1.5],
            min: 0.0,
            noise: 0.0,
            x_range: (-10.0, 2.0),
            y_range: (-2.0, 2.0),
        },
        Surface {
            name: "saddle point",
            short: "saddle point",
            f: saddle,
            start: [-1.5, 1e-3],
            min: -1.0,
            noise: 0.0,
            x_range: (-2.0, 1.0),
            y_range: (-0.5, 2.0),
        },
        Surface {
            name: "local minimum",
            short: "local minimum",
            f: local_min,
            start: [2.2, 1.0],
            min: lm,
            noise: 0.0,
            x_range: (-2.0, 2.5),
            y_range: (-1.2, 1.2),
        },
        Surface {
            name: "taco shell, noisy gradients",
            short: "noisy taco shell",
            f: taco,
            start: [-9.0, 1.5],
            min: 0.0,
            noise: 0.5,
            x_range: (-10.0, 2.0),
            y_range: (-2.0, 2.0),
        },
    ]
}

/// The contestants and their learning rates (one rate each, across all surfaces, as a user would pick).
pub fn contestants() -> Vec<(&'static str, &'static str, f64)> {
    vec![
        ("SGD", "sgd", 0.2),
        ("SGD+momentum", "momentum", 0.05),
        ("Nesterov", "nesterov", 0.05),
        ("AdaGrad", "adagrad", 1.0),
        ("RMSProp", "rmsprop", 0.1),
        ("Adam", "adam", 0.3),
        ("L-BFGS", "lbfgs", 1.0),
    ]
}

#[derive(Clone, Debug, Serialize)]
pub struct Lane {
    pub optimizer: String,
    pub surface: String,
    pub lr: f64,
    /// Steps until `f - min < tol`, if reached.
    pub steps_to_tol: Option<usize>,
    pub final_loss: f64,
    pub path: Vec<[f64; 2]>,
}

/// Runs every contestant on every surface for `steps` steps.
pub fn run(steps: usize, tol: f64, seed: u64) -> Result<Vec<Lane>> {
    let mut lanes = Vec::new();
    for s in surfaces() {
        for (name, kind, lr) in contestants() {
            let mut path = vec![s.start];
            if kind == "lbfgs" {
                if s.noise > 0.0 {
                    continue; // Full-batch only: no lane on noisy gradients.
                }
                let mut x = s.start.to_vec();
                let mut f = |p: &[f64], g: &mut [f64]| {
                    let (v, d) = (s.f)(p[0], p[1]);
                    g.copy_from_slice(&d);
                    v
                };
                let lb = Lbfgs { max_iter: steps, tol_grad: 1e-12, tol_change: 1e-14, ..Default::default() };
                lb.minimize_observed(&mut x, &mut f, &mut |p, _| path.push([p[0], p[1]]));
            } else {
                let mut opt = Optimizer::<f64>::new(&OptimizerConfig::named(kind)?, lr, 0.0)?;
                let mut p = Param::new(Tensor::from_vec(&[2], s.start.to_vec()), ParamKind::Weight);
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
                let noise = Normal::new(0.0, s.noise.max(1e-300)).expect("valid sigma");
                for _ in 0..steps {
                    let v = p.value.data().to_vec();
                    let (_, mut g) = (s.f)(v[0], v[1]);
                    if s.noise > 0.0 {
                        g.iter_mut().for_each(|g| *g += noise.sample(&mut rng));
                    }
                    p.grad = Tensor::from_vec(&[2], g.to_vec());
                    opt.begin_step();
                    opt.update("xy", &mut p);
                    let v = p.value.data();
                    if !(v[0].is_finite() && v[1].is_finite()) || v[0].abs() > 1e6 || v[1].abs() > 1e6 {
                        break; // Diverged: the lane ends here.
                    }
                    path.push([v[0], v[1]]);
                }
            }
            let loss = |q: &[f64; 2]| (s.f)(q[0], q[1]).0;
            let steps_to_tol = path.iter().position(|q| loss(q) - s.min < tol);
            let final_loss = path.last().map(loss).unwrap_or(f64::NAN);
            lanes.push(Lane { optimizer: name.into(), surface: s.name.into(), lr, steps_to_tol, final_loss, path });
        }
    }
    Ok(lanes)
}

/// The table of steps to the tolerance: one row per optimizer, one column per surface.
pub fn table(lanes: &[Lane], steps: usize) -> String {
    let surfaces = surfaces();
    let mut out = format!("{:<14}", "steps to tol");
    for s in &surfaces {
        out += &format!(" | {:>22}", s.short);
    }
    out += "\n";
    for (name, _, _) in contestants() {
        out += &format!("{name:<14}");
        for s in &surfaces {
            let cell = match lanes.iter().find(|l| l.optimizer == name && l.surface == s.name) {
                None => "n/a".to_string(),
                Some(l) => match l.steps_to_tol {
                    Some(k) => k.to_string(),
                    None => format!("> {steps} (f-min {:.1e})", l.final_loss - s.min),
                },
            };
            out += &format!(" | {cell:>22}");
        }
        out += "\n";
    }
    out
}

pub const COLOURS: [(u8, u8, u8); 7] =
    [(0, 0, 0), (214, 39, 40), (255, 127, 14), (44, 160, 44), (31, 119, 180), (148, 103, 189), (227, 119, 194)];

/// Draws each surface's contours (as shaded bands of log loss) with every optimizer's path on top.
/// `font`: a TrueType file for the labels (default: the usual system locations).
#[cfg(feature = "plot")]
pub fn plot(lanes: &[Lane], path: &Path, font: Option<&Path>) -> Result<()> {
    use plotters::prelude::*;
    crate::plot::register_font(font)?;
    let err = |e: &dyn std::fmt::Display| Error::file(path, format!("cannot draw: {e}"));
    let root = BitMapBackend::new(path, (1600, 1200)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let root = root
        .titled("Optimizers on the lecture's test surfaces (convkit optim-race)", ("sans-serif", 30))
        .map_err(|e| err(&e))?;
    let names: Vec<&str> = contestants().iter().map(|c| c.0).collect();
    for (area, s) in root.split_evenly((2, 2)).iter().zip(surfaces()) {
        let mut chart = ChartBuilder::on(area)
            .caption(s.name, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(40)
            .build_cartesian_2d(s.x_range.0..s.x_range.1, s.y_range.0..s.y_range.1)
            .map_err(|e| err(&e))?;
        // Background: loss above the minimum, log-scaled into grey bands (contours).
        let (nx, ny) = (160, 100);
        let (dx, dy) = ((s.x_range.1 - s.x_range.0) / nx as f64, (s.y_range.1 - s.y_range.0) / ny as f64);
        let mut cells = Vec::with_capacity(nx * ny);
        for i in 0..nx {
            for j in 0..ny {
                let (x, y) = (s.x_range.0 + (i as f64 + 0.5) * dx, s.y_range.0 + (j as f64 + 0.5) * dy);
                let v = ((s.f)(x, y).0 - s.min).max(1e-4).ln();
                // Alternate band shades every half unit of log loss: reads as contour lines.
                let band = (v * 2.0).floor() as i64;
                let base = (235.0 - 6.0 * v.clamp(-8.0, 6.0)) as u8;
                let shade = if band % 2 == 0 { base } else { base.saturating_sub(14) };
                let (x0, y0) = (s.x_range.0 + i as f64 * dx, s.y_range.0 + j as f64 * dy);
                cells.push(Rectangle::new(
                    [(x0, y0), (x0 + dx, y0 + dy)],
                    RGBColor(shade, shade, shade.saturating_add(12)).filled(),
                ));
            }
        }
        chart.draw_series(cells).map_err(|e| err(&e))?;
        chart.configure_mesh().disable_mesh().label_style(("sans-serif", 14)).draw().map_err(|e| err(&e))?;
        for (k, name) in names.iter().enumerate() {
            let Some(lane) = lanes.iter().find(|l| &l.optimizer == name && l.surface == s.name) else { continue };
            let (r, g, b) = COLOURS[k % COLOURS.len()];
            let c = RGBColor(r, g, b);
            let inside = |p: &[f64; 2]| (p[0].clamp(s.x_range.0, s.x_range.1), p[1].clamp(s.y_range.0, s.y_range.1));
            // Segment by segment: a thick polyline's miter joins turn sharp reversals (noisy paths) into spikes.
            chart
                .draw_series(
                    lane.path
                        .windows(2)
                        .map(|w| PathElement::new(vec![inside(&w[0]), inside(&w[1])], c.stroke_width(2))),
                )
                .map_err(|e| err(&e))?
                .label(match lane.steps_to_tol {
                    Some(n) => format!("{name} ({n} steps)"),
                    None => format!("{name} (not reached)"),
                })
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(3)));
            chart.draw_series(lane.path.last().map(|p| Circle::new(inside(p), 4, c.filled()))).map_err(|e| err(&e))?;
        }
        chart
            .draw_series(std::iter::once(Cross::new((s.start[0], s.start[1]), 7, BLACK.stroke_width(2))))
            .map_err(|e| err(&e))?;
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
