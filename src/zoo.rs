//! `convkit zoo`: every ImageNet model side by side, and the lecture's "comparing complexity" picture: top-1
//! accuracy against operations, with the number of parameters as the bubble size.

use crate::summary::summarize;
use crate::{models, Error, Result};
use serde::Serialize;
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
    for info in models::list().into_iter().filter(|m| m.classes == 1000) {
        let mut m = models::build::<f32>(info.name, None, 0)?;
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

/// Draws top-1 accuracy against multiply-adds (log scale), bubble area proportional to parameters.
/// `font`: a TrueType file for the labels (default: the usual system locations).
#[cfg(feature = "plot")]
pub fn plot(entries: &[Entry], path: &Path, font: Option<&Path>) -> Result<()> {
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
    let family = |name: &str| -> RGBColor {
        match name {
            n if n.starts_with("vgg") => RGBColor(31, 119, 180),
            n if n.starts_with("resnet") => RGBColor(214, 39, 40),
            n if n.starts_with("googlenet") => RGBColor(44, 160, 44),
            n if n.starts_with("mobilenet") => RGBColor(148, 103, 189),
            _ => RGBColor(255, 127, 14),
        }
    };
    // Labels go to the first vertical offset that keeps them clear of earlier labels.
    let mut placed: Vec<(f64, f64)> = Vec::new();
    for e in &pts {
        let (x, y) = (e.macs_per_image as f64 / 1e9, e.top1.unwrap_or(0.0));
        // Area proportional to parameters: radius ~ sqrt.
        let radius = (3.0 + 4.0 * (e.params as f64 / 1e6).sqrt()) as i32;
        let c = family(&e.model);
        chart.draw_series(std::iter::once(Circle::new((x, y), radius, c.mix(0.35).filled()))).map_err(|er| err(&er))?;
        chart.draw_series(std::iter::once(Circle::new((x, y), radius, c.stroke_width(2)))).map_err(|er| err(&er))?;
        let ly = [0.35, -0.9, 1.3, -1.9, 2.3, -2.9, 3.3, 4.3]
            .iter()
            .map(|d| y + d)
            .find(|ly| placed.iter().all(|&(px, py)| (px.log10() - x.log10()).abs() > 0.5 || (py - ly).abs() > 0.8))
            .unwrap_or(y + 0.35);
        placed.push((x, ly));
        chart
            .draw_series(std::iter::once(Text::new(
                format!("{} ({:.1}M)", e.model, e.params as f64 / 1e6),
                (x * 1.04, ly),
                ("sans-serif", 15).into_font().color(&BLACK),
            )))
            .map_err(|er| err(&er))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
