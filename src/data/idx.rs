//! MNIST and Fashion-MNIST: the IDX format (big-endian header, then raw bytes), plain or gzip-compressed.

use super::{read_maybe_gz, Dataset, Split};
use crate::{Error, Result};
use std::path::{Path, PathBuf};

pub fn mnist_classes() -> Vec<String> {
    (0..10).map(|d| d.to_string()).collect()
}

pub fn fashion_classes() -> Vec<String> {
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// Parses an IDX file of unsigned bytes; returns its dimensions and data.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<(Vec<usize>, Vec<u8>)> {
    if bytes.len() < 4 {
        return Err(Error::file(path, format!("truncated: {} bytes, an IDX header needs at least 4", bytes.len())));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(Error::file(
            path,
            format!(
                "offset 0: expected the IDX magic 00 00, found {:02x} {:02x} (not an IDX file?)",
                bytes[0], bytes[1]
            ),
        ));
    }
    if bytes[2] != 0x08 {
        return Err(Error::file(
            path,
            format!("offset 2: element type 0x{:02x}; only unsigned bytes (0x08) are supported", bytes[2]),
        ));
    }
    let nd = bytes[3] as usize;
    let header = 4 + 4 * nd;
    if nd == 0 || bytes.len() < header {
        return Err(Error::file(
            path,
            format!("truncated header: {nd} dimensions need {header} bytes, file has {}", bytes.len()),
        ));
    }
    let dims: Vec<usize> =
        (0..nd).map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize).collect();
    let want: usize = dims.iter().product();
    let have = bytes.len() - header;
    if have != want {
        return Err(Error::file(
            path,
            format!(
                "offset {header}: dimensions {dims:?} need {want} data bytes, found {have} ({})",
                if have < want { "truncated" } else { "trailing bytes" }
            ),
        ));
    }
    Ok((dims, bytes[header..].to_vec()))
}

fn find(dir: &Path, stem: &str) -> Result<PathBuf> {
    for name in [format!("{stem}.gz"), stem.to_string()] {
        let p = dir.join(&name);
        if p.exists() {
            return Ok(p);
        }
    }
    Err(Error::file(dir.join(stem), "not found (looked for it with and without .gz)"))
}

/// Loads `train-*` or `t10k-*` images and labels from a folder of IDX files.
pub fn load_dir(dir: &Path, split: Split, classes: Vec<String>) -> Result<Dataset> {
    let prefix = if split == Split::Train { "train" } else { "t10k" };
    let ip = find(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let lp = find(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let (idims, images) = parse(&ip, &read_maybe_gz(&ip)?)?;
    let (ldims, labels) = parse(&lp, &read_maybe_gz(&lp)?)?;
    if idims.len() != 3 {
        return Err(Error::file(&ip, format!("expected 3 dimensions (count, rows, cols), found {idims:?}")));
    }
    if ldims.len() != 1 || ldims[0] != idims[0] {
        return Err(Error::file(
            &lp,
            format!("{} labels for {} images in {}", ldims.first().copied().unwrap_or(0), idims[0], ip.display()),
        ));
    }
    if let Some(pos) = labels.iter().position(|&l| l as usize >= classes.len()) {
        return Err(Error::file(
            &lp,
            format!("offset {}: label {} out of range 0..{}", 8 + pos, labels[pos], classes.len()),
        ));
    }
    Ok(Dataset {
        shape: [1, idims[1], idims[2]],
        images,
        labels: labels.into_iter().map(u16::from).collect(),
        classes,
        skipped: Vec::new(),
    })
}
