//! What the charts (zoo, optimizer race) share: a TrueType font registered with plotters as "sans-serif".

use crate::{Error, Result};
use std::path::{Path, PathBuf};

const SYSTEM_FONTS: [&str; 5] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/Library/Fonts/Arial.ttf",
];

/// Registers `font`, or the first system font found, for the charts' text.
pub fn register_font(font: Option<&Path>) -> Result<()> {
    let mut candidates: Vec<PathBuf> = font.into_iter().map(Path::to_path_buf).collect();
    candidates.extend(SYSTEM_FONTS.iter().map(PathBuf::from));
    let bytes = candidates.iter().find_map(|c| std::fs::read(c).ok()).ok_or_else(|| {
        let looked: Vec<String> = candidates.iter().map(|c| c.display().to_string()).collect();
        Error::Config(format!(
            "no TrueType font found for the chart's labels (looked in {}); name one (convkit: CONVKIT_FONT=/path/to/font.ttf) \
             or install one (Debian: apt-get install fonts-dejavu-core)",
            looked.join(", ")
        ))
    })?;
    // plotters keeps the font for the life of the program.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, bytes)
        .map_err(|_| Error::Config("the chart font could not be parsed; name another .ttf".into()))
}
