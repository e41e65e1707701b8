//! CIFAR-10, binary version: `data_batch_{1..5}.bin` and `test_batch.bin`, records of one label byte followed by
//! 3072 pixel bytes (1024 red, 1024 green, 1024 blue, row-major 32x32).

use super::{Dataset, Split};
use crate::{Error, Result};
use std::path::Path;

pub const RECORD: usize = 1 + 3 * 32 * 32;

pub fn classes() -> Vec<String> {
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// Appends one batch file's records.
pub fn read_batch(path: &Path, images: &mut Vec<u8>, labels: &mut Vec<u16>) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    if bytes.is_empty() || bytes.len() % RECORD != 0 {
        return Err(Error::file(
            path,
            format!(
                "{} bytes is not a whole number of {RECORD}-byte records (truncated after record {})",
                bytes.len(),
                bytes.len() / RECORD
            ),
        ));
    }
    for (r, rec) in bytes.chunks(RECORD).enumerate() {
        if rec[0] >= 10 {
            return Err(Error::file(
                path,
                format!("offset {}: label {} of record {r} is not a CIFAR-10 class (0..9)", r * RECORD, rec[0]),
            ));
        }
        labels.push(rec[0] as u16);
        images.extend_from_slice(&rec[1..]);
    }
    Ok(())
}

pub fn load_dir(dir: &Path, split: Split) -> Result<Dataset> {
    // Accept both the folder itself and its parent (cifar-10-batches-bin/ inside).
    let dir =
        if dir.join("cifar-10-batches-bin").is_dir() { dir.join("cifar-10-batches-bin") } else { dir.to_path_buf() };
    let files: Vec<String> = match split {
        Split::Train => (1..=5).map(|i| format!("data_batch_{i}.bin")).collect(),
        Split::Test => vec!["test_batch.bin".into()],
    };
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    for f in files {
        let p = dir.join(&f);
        if !p.exists() {
            return Err(Error::file(
                &p,
                "not found: the CIFAR-10 binary version has data_batch_1..5.bin and test_batch.bin",
            ));
        }
        read_batch(&p, &mut images, &mut labels)?;
    }
    let classes = match std::fs::read_to_string(dir.join("batches.meta.txt")) {
        Ok(t) => t.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect(),
        Err(_) => classes(),
    };
    Ok(Dataset { shape: [3, 32, 32], images, labels, classes, skipped: Vec::new() })
}
