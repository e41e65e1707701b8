//! Image folders: `ROOT/<split>/<class>/<image>.{png,jpg,jpeg,gif,bmp}`, read from a directory or straight from
//! a `.tar` / `.tar.gz` archive (no unpacking). Class indices follow the sorted class folder names, as in
//! torchvision's `ImageFolder`. Undecodable images are reported with a count and skipped, never silently.

use super::{Dataset, Split};
use crate::{Error, Result};
use image::imageops::FilterType;
use rayon::prelude::*;
use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

const EXTENSIONS: [&str; 5] = ["png", "jpg", "jpeg", "gif", "bmp"];

/// One file found under a split: its class folder, a name for messages, its bytes.
struct Entry {
    class: String,
    name: String,
    bytes: Vec<u8>,
}

fn is_image(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    EXTENSIONS.iter().any(|e| lower.ends_with(&format!(".{e}")))
}

/// `.../<split>/<class>/<file>` -> `(class, file)` when the path belongs to `split`.
fn classify(components: &[String], split: &str) -> Option<String> {
    let n = components.len();
    (n >= 3 && components[n - 3] == split && is_image(&components[n - 1])).then(|| components[n - 2].clone())
}

fn split_names(split: Split) -> &'static [&'static str] {
    match split {
        Split::Train => &["train"],
        // The ants/bees set calls its held-out split "val".
        Split::Test => &["test", "val"],
    }
}

fn read_archive(path: &Path, wanted: &[&str]) -> Result<Vec<(String, Entry)>> {
    let file = std::fs::File::open(path).map_err(|e| Error::file(path, format!("cannot open: {e}")))?;
    let name = path.to_string_lossy().to_ascii_lowercase();
    let reader: Box<dyn Read> = if name.ends_with(".gz") || name.ends_with(".tgz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut ar = tar::Archive::new(reader);
    let mut out = Vec::new();
    let entries = ar.entries().map_err(|e| Error::file(path, format!("not a readable tar archive: {e}")))?;
    for (k, entry) in entries.enumerate() {
        let mut entry =
            entry.map_err(|e| Error::file(path, format!("archive entry {k}: corrupt or truncated ({e})")))?;
        let p = entry.path().map_err(|e| Error::file(path, format!("archive entry {k}: bad path ({e})")))?.into_owned();
        let comps: Vec<String> = p.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
        for s in wanted {
            if let Some(class) = classify(&comps, s) {
                // The header's size is only a claim (a GNU header may state 2^95 bytes): reserve at most 16 MiB
                // up front and let the real bytes decide.
                let mut bytes = Vec::with_capacity(entry.size().min(1 << 24) as usize);
                entry
                    .read_to_end(&mut bytes)
                    .map_err(|e| Error::file(path, format!("{}: truncated in the archive ({e})", p.display())))?;
                out.push((s.to_string(), Entry { class, name: p.display().to_string(), bytes }));
            }
        }
    }
    Ok(out)
}

fn read_dir(root: &Path, wanted: &[&str]) -> Result<Vec<(String, Entry)>> {
    let mut out = Vec::new();
    for s in wanted {
        let dir = root.join(s);
        if !dir.is_dir() {
            continue;
        }
        let mut classes: Vec<_> =
            std::fs::read_dir(&dir)?.filter_map(|e| e.ok()).filter(|e| e.path().is_dir()).collect();
        classes.sort_by_key(|e| e.file_name());
        for c in classes {
            let class = c.file_name().to_string_lossy().into_owned();
            let mut files: Vec<_> = std::fs::read_dir(c.path())?.filter_map(|e| e.ok()).collect();
            files.sort_by_key(|e| e.file_name());
            for f in files {
                let fname = f.file_name().to_string_lossy().into_owned();
                if is_image(&fname) {
                    let bytes =
                        std::fs::read(f.path()).map_err(|e| Error::file(f.path(), format!("cannot read: {e}")))?;
                    out.push((
                        s.to_string(),
                        Entry { class: class.clone(), name: f.path().display().to_string(), bytes },
                    ));
                }
            }
        }
    }
    Ok(out)
}

/// Decodes to `channels` (3: RGB, 1: grey) planes, resizing the shorter side to fit and centre-cropping when
/// `size` is given. Returns `(H, W, C x H x W bytes)`.
pub fn decode(
    bytes: &[u8],
    channels: usize,
    size: Option<[usize; 2]>,
) -> std::result::Result<(usize, usize, Vec<u8>), String> {
    let img = image::load_from_memory(bytes).map_err(|e| e.to_string())?;
    let img = match size {
        Some([h, w]) if (img.height() as usize, img.width() as usize) != (h, w) => {
            let scale = (h as f64 / img.height() as f64).max(w as f64 / img.width() as f64);
            let (nh, nw) = (
                ((img.height() as f64 * scale).round() as u32).max(h as u32),
                ((img.width() as f64 * scale).round() as u32).max(w as u32),
            );
            let r = img.resize_exact(nw, nh, FilterType::Triangle);
            r.crop_imm((nw - w as u32) / 2, (nh - h as u32) / 2, w as u32, h as u32)
        }
        _ => img,
    };
    let (w, h) = (img.width() as usize, img.height() as usize);
    if channels == 1 {
        return Ok((h, w, img.to_luma8().into_raw()));
    }
    // HWC -> CHW
    let raw = img.to_rgb8().into_raw();
    let mut chw = vec![0u8; 3 * h * w];
    for (p, px) in raw.chunks(3).enumerate() {
        for c in 0..3 {
            chw[c * h * w + p] = px[c];
        }
    }
    Ok((h, w, chw))
}

/// Scraped datasets hold placeholders ("this image could not be found", often a lone GIF among JPEGs) that decode
/// fine and carry a wrong label. A file whose format is rare in its split is named in a warning, and kept.
fn warn_odd_formats(root: &Path, entries: &[Entry]) {
    let format =
        |e: &Entry| image::guess_format(&e.bytes).map(|f| format!("{f:?}")).unwrap_or_else(|_| "unknown".into());
    let formats: Vec<String> = entries.iter().map(format).collect();
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    formats.iter().for_each(|f| *counts.entry(f).or_default() += 1);
    let Some((common, n)) = counts.iter().max_by_key(|(_, n)| **n).map(|(f, n)| (*f, *n)) else { return };
    for (e, f) in entries.iter().zip(&formats).filter(|(_, f)| f.as_str() != common) {
        if counts[f.as_str()] * 100 <= n {
            tracing::warn!(
                "{}: {} is {f} among {n} {common} images: a placeholder? It is kept, labelled '{}'",
                root.display(),
                e.name,
                e.class
            );
        }
    }
}

pub fn load(root: &Path, split: Split, size: Option<[usize; 2]>) -> Result<Dataset> {
    let lower = root.to_string_lossy().to_ascii_lowercase();
    let is_archive =
        root.is_file() && (lower.ends_with(".tar") || lower.ends_with(".tar.gz") || lower.ends_with(".tgz"));
    let wanted = split_names(split);
    let found = if is_archive { read_archive(root, wanted)? } else { read_dir(root, wanted)? };
    // Use the first split name that has images (test, else val).
    let Some(chosen) = wanted.iter().find(|s| found.iter().any(|(fs, _)| fs == *s)) else {
        return Err(Error::file(
            root,
            format!("no images under {}/<class>/ (expected ROOT/<split>/<class>/<image>)", wanted.join(" or ")),
        ));
    };
    let entries: Vec<Entry> = found.into_iter().filter(|(s, _)| s == chosen).map(|(_, e)| e).collect();
    let classes: Vec<String> = entries.iter().map(|e| e.class.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    warn_odd_formats(root, &entries);
    let decoded: Vec<std::result::Result<(usize, usize, Vec<u8>), String>> =
        entries.par_iter().map(|e| decode(&e.bytes, 3, size)).collect();
    let mut skipped = Vec::new();
    let mut shape: Option<(usize, usize)> = size.map(|[h, w]| (h, w));
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    for (e, d) in entries.iter().zip(decoded) {
        match d {
            Ok((h, w, px)) => {
                let want = *shape.get_or_insert((h, w));
                if want != (h, w) {
                    return Err(Error::file(
                        root,
                        format!(
                            "{}: {h}x{w} pixels but earlier images are {}x{}; give an input size to resize to",
                            e.name, want.0, want.1
                        ),
                    ));
                }
                images.extend_from_slice(&px);
                labels.push(classes.binary_search(&e.class).expect("class seen above") as u16);
            }
            Err(msg) => skipped.push(format!("{} ({msg})", e.name)),
        }
    }
    if !skipped.is_empty() {
        tracing::warn!(
            "{}: skipped {} undecodable image(s) of {}: {}{}",
            root.display(),
            skipped.len(),
            entries.len(),
            skipped.iter().take(3).cloned().collect::<Vec<_>>().join("; "),
            if skipped.len() > 3 { "; ..." } else { "" }
        );
    }
    let (h, w) = shape.ok_or_else(|| Error::file(root, "no decodable images"))?;
    Ok(Dataset { shape: [3, h, w], images, labels, classes, skipped })
}
