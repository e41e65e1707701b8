//! `convkit zoo`: every ImageNet model side by side, and the lecture's "comparing complexity" picture: top-1
//! accuracy against operations, with the number of parameters as the bubble size.

use crate::summary::summarize;
#[cfg(feature = "plot")]
use crate::Error;
use crate::{models, Result};
use serde::Serialize;
#[cfg(feature = "plot")]
use std::path::Path;

/// Published ImageNet top-1 accuracy (%), single 224x224 crop.
/// Source: torchvision's model zoo table (acc@1 of its pretrained weights), which reproduces the papers' models;
/// ZFNet from Zeiler & Fergus 2013, table 2 (model (b), 37.5% top-1 error).
pub fn published_top1(name: &str) -> Option<f64> {
    Some(match name {
        "alexnet" => 56.522,
        "zfnet" => 62.5,
        "vgg11" => 69.020,
        "vgg13" => 69.928,
        "vgg16" => 71.592,
        "vgg19" => 72.376,
        "vgg11_bn" => 70.370,
        "vgg13_bn" => 71.586,
        "vgg16_bn" => 73.360,
        "vgg19_bn" => 74.218,
        "googlenet" => 69.778,
        "resnet18" => 69.758,
        "resnet34" => 73.314,
        "resnet50" => 76.130,
        "resnet101" => 77.374,
        "resnet152" => 78.312,
        "mobilenetv2" => 71.878,
        _ => return None,
    })
}

#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    pub model: String,
    pub input: [usize; 3],
    pub params: usize,
    pub macs_per_image: u64,
    pub activations_per_image: usize,
    pub forward_bytes_per_image: usize,
    pub top1: Option<f64>,
}

/// Summarises every registered ImageNet model at its default input size.
pub fn table() -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    // The Keras variant of MobileNetV2 is a weight-import layout, not another architecture.
    for info in models::list().into_iter().filter(|m| m.classes == 1000 && !m.name.ends_with("_keras")) {
        let mut m = models::build_shapes(info.name, None)?;
        let s = summarize(&mut m, info.input, 1)?;
        out.push(Entry {
            model: info.name.to_string(),
            input: info.input,
            params: s.params,
            macs_per_image: s.macs_per_image,
            activations_per_image: s.activations_per_image,
            forward_bytes_per_image: s.forward_bytes_per_image,
            top1: published_top1(info.name),
        });
    }
    Ok(out)
}

/// Each model's family, its colour in the chart and the legend.
#[cfg(feature = "plot")]
fn family(name: &str) -> (&'static str, plotters::style::RGBColor) {
    use plotters::style::RGBColor;
    match name {
        n if n.starts_with("vgg") => ("VGG", RGBColor(31, 119, 180)),
        n if n.starts_with("resnet") => ("ResNet", RGBColor(214, 39, 40)),
        n if n.starts_with("googlenet") => ("GoogLeNet", RGBColor(44, 160, 44)),
        n if n.starts_with("mobilenet") => ("MobileNet", RGBColor(148, 103, 189)),
        _ => ("AlexNet / ZFNet", RGBColor(255, 127, 14)),
    }
}

/// A pixel rectangle `[x0, y0, x1, y1]`.
pub type Rect = [i32; 4];

fn overlaps(a: &Rect, b: &Rect) -> bool {
    a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3]
}

/// Whether a rectangle touches a circle `(cx, cy, r)`.
fn touches(a: &Rect, (cx, cy, r): (i32, i32, i32)) -> bool {
    let (nx, ny) = (cx.clamp(a[0], a[2]), cy.clamp(a[1], a[3]));
    let (dx, dy) = ((nx - cx) as i64, (ny - cy) as i64);
    dx * dx + dy * dy < (r as i64 + 2).pow(2)
}

/// Places a label of size `(w, h)` beside each bubble `(cx, cy, r)`, clear of every bubble, every label placed
/// before it and the edges of `area`: the first free spot on rings of growing distance around the bubble (eight
/// directions each), never on a `reserved` rectangle (the legend). Returns each label's rectangle and whether it needs a leader line (not next to its bubble);
/// `None` where no spot is free.
pub fn place_labels(
    bubbles: &[(i32, i32, i32)],
    sizes: &[(i32, i32)],
    area: Rect,
    reserved: &[Rect],
) -> Vec<Option<(Rect, bool)>> {
    let mut placed: Vec<Rect> = reserved.to_vec();
    let mut out = Vec::new();
    for (&(cx, cy, r), &(w, h)) in bubbles.iter().zip(sizes) {
        let free = |rect: &Rect, placed: &[Rect]| {
            rect[0] >= area[0]
                && rect[1] >= area[1]
                && rect[2] <= area[2]
                && rect[3] <= area[3]
                && placed.iter().all(|p| !overlaps(p, rect))
                && bubbles.iter().all(|&b| !touches(rect, b))
        };
        let spot = (0..12).find_map(|ring| {
            let d = r + 4 + ring * 14;
            // Right, left, above, below, then the diagonals: (dx, dy) in units of d.
            [(1, 0), (-1, 0), (0, -1), (0, 1), (1, -1), (-1, -1), (1, 1), (-1, 1)].iter().find_map(|&(sx, sy)| {
                // On a diagonal the label's corner sits on the circle of radius d.
                let k = if sx != 0 && sy != 0 { d * 7 / 10 } else { d };
                let x0 = match sx {
                    1 => cx + k,
                    -1 => cx - k - w,
                    _ => cx - w / 2,
                };
                let y0 = match sy {
                    1 => cy + k,
                    -1 => cy - k - h,
                    _ => cy - h / 2,
                };
                let rect = [x0, y0, x0 + w, y0 + h];
                free(&rect, &placed).then_some((rect, ring > 0))
            })
        });
        if let Some((rect, _)) = spot {
            placed.push(rect);
        }
        out.push(spot);
    }
    out
}

/// Draws top-1 accuracy against multiply-adds (log scale), bubble area proportional to parameters, colour by
/// family (with a legend), each bubble labelled where the label covers no other bubble or label. Returns the
/// labels' rectangles in pixels (for tests).
/// `font`: a TrueType file for the labels (default: the usual system locations).
#[cfg(feature = "plot")]
pub fn plot(entries: &[Entry], path: &Path, font: Option<&Path>) -> Result<Vec<Rect>> {
    use plotters::prelude::*;
    crate::plot::register_font(font)?;
    let err = |e: &dyn std::fmt::Display| Error::file(path, format!("cannot draw the chart: {e}"));
    let root = BitMapBackend::new(path, (1200, 800)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let pts: Vec<&Entry> = entries.iter().filter(|e| e.top1.is_some()).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption("ImageNet top-1 accuracy vs. operations (bubble area: parameters)", ("sans-serif", 28))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d((0.2f64..80.0f64).log_scale(), 54.0f64..80.0f64)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("G multiply-adds per image (log scale)")
        .y_desc("top-1 accuracy (%)")
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 18))
        .draw()
        .map_err(|e| err(&e))?;
    let point = |e: &Entry| (e.macs_per_image as f64 / 1e9, e.top1.unwrap_or(0.0));
    // Area proportional to parameters: radius ~ sqrt.
    let radius = |e: &Entry| (3.0 + 4.0 * (e.params as f64 / 1e6).sqrt()) as i32;
    let text = |e: &Entry| format!("{} ({:.1}M)", e.model, e.params as f64 / 1e6);
    let font = ("sans-serif", 15).into_font();
    for e in &pts {
        let c = family(&e.model).1;
        chart.draw_series([Circle::new(point(e), radius(e), c.mix(0.35).filled())]).map_err(|er| err(&er))?;
        chart.draw_series([Circle::new(point(e), radius(e), c.stroke_width(2))]).map_err(|er| err(&er))?;
    }
    let bubbles: Vec<(i32, i32, i32)> = pts
        .iter()
        .map(|e| {
            let (x, y) = chart.backend_coord(&point(e));
            (x, y, radius(e))
        })
        .collect();
    let sizes: Vec<(i32, i32)> = pts
        .iter()
        .map(|e| {
            root.estimate_text_size(&text(e), &TextStyle::from(font.clone())).map(|(w, h)| (w as i32 + 2, h as i32 + 2))
        })
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| err(&e))?;
    let (xr, yr) = chart.plotting_area().get_pixel_range();
    let spots = place_labels(&bubbles, &sizes, [xr.start, yr.start, xr.end, yr.end], &[LEGEND]);
    let mut rects = vec![LEGEND];
    for ((e, spot), &(cx, cy, _)) in pts.iter().zip(spots).zip(&bubbles) {
        let Some((rect, leader)) = spot else {
            tracing::warn!("zoo chart: no free spot for {}'s label; left out", e.model);
            continue;
        };
        // In a cluster of overlapping bubbles a label could belong to several: a line from its bubble's centre
        // (marked) says which.
        let crowded = bubbles
            .iter()
            .any(|&(x, y, r)| (x, y) != (cx, cy) && ((x - cx).pow(2) + (y - cy).pow(2)) < (r + radius(e)).pow(2));
        if leader || crowded {
            let (lx, ly) = (cx.clamp(rect[0], rect[2]), cy.clamp(rect[1], rect[3]));
            root.draw(&PathElement::new(vec![(cx, cy), (lx, ly)], BLACK.mix(0.6))).map_err(|er| err(&er))?;
            root.draw(&Circle::new((cx, cy), 2, BLACK.filled())).map_err(|er| err(&er))?;
        }
        root.draw(&Text::new(text(e), (rect[0] + 1, rect[1] + 1), font.clone().color(&BLACK)))
            .map_err(|er| err(&er))?;
        rects.push(rect);
    }
    legend(&root).map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(rects)
}

#[cfg(feature = "plot")]
const FAMILIES: [(&str, &str); 5] = [
    ("AlexNet / ZFNet", "alexnet"),
    ("VGG", "vgg"),
    ("GoogLeNet", "googlenet"),
    ("ResNet", "resnet"),
    ("MobileNet", "mobilenet"),
];
/// The legend's box, lower right (where no published model sits).
#[cfg(feature = "plot")]
const LEGEND: Rect = [988, 546, 1170, 660];

/// The families' colours.
#[cfg(feature = "plot")]
fn legend<DB: plotters::prelude::DrawingBackend>(
    root: &plotters::prelude::DrawingArea<DB, plotters::coord::Shift>,
) -> std::result::Result<(), plotters::drawing::DrawingAreaErrorKind<DB::ErrorType>> {
    use plotters::prelude::*;
    let [x0, y0, x1, y1] = LEGEND;
    root.draw(&Rectangle::new([(x0, y0), (x1, y1)], WHITE.filled()))?;
    root.draw(&Rectangle::new([(x0, y0), (x1, y1)], BLACK.mix(0.4)))?;
    for (i, (label, model)) in FAMILIES.iter().enumerate() {
        let (x, y) = (x0 + 14, y0 + 18 + 20 * i as i32);
        let colour = family(model).1;
        root.draw(&Circle::new((x, y), 7, colour.mix(0.35).filled()))?;
        root.draw(&Circle::new((x, y), 7, colour.stroke_width(2)))?;
        root.draw(&Text::new(label.to_string(), (x + 14, y - 8), ("sans-serif", 16).into_font()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_clear_each_other_and_every_bubble() {
        // A crowded cluster (the VGGs) and a lone bubble.
        let bubbles = [(500, 300, 40), (520, 320, 40), (540, 290, 45), (560, 330, 45), (200, 100, 5)];
        let sizes = [(120, 16); 5];
        let spots = place_labels(&bubbles, &sizes, [0, 0, 1000, 700], &[[600, 600, 700, 650]]);
        let rects: Vec<Rect> = spots.iter().map(|s| s.expect("a free spot").0).collect();
        for (i, a) in rects.iter().enumerate() {
            assert!(bubbles.iter().all(|&b| !touches(a, b)), "label {i} covers a bubble");
            assert!(rects[..i].iter().all(|b| !overlaps(a, b)), "label {i} covers another label");
        }
        // The lone bubble's label sits right beside it, without a leader line.
        assert_eq!(spots[4], Some(([209, 92, 329, 108], false)));
    }
}
