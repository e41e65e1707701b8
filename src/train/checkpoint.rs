//! Checkpoints: a folder per checkpoint (`last`, `best`) holding `model.safetensors` (weights, batch-norm buffers
//! and the preprocessing tensors), `optimizer.safetensors` (optimizer state, and the
//! Polyak average as `polyak.*`) and `meta.json`. A checkpoint is written under
//! `NAME.tmp/` and swapped in by renames, so `NAME/` is never half-written: a crash leaves either the old or the
//! new checkpoint (in the worst case as `NAME.prev/`, which `load` falls back to).
//!
//! `checksums.json` holds the format version and a CRC-32C of each tensor file. `load` verifies them and that every
//! weight is finite, so a flipped bit or NaNs written into the data are reported as damage, never used.

use crate::data::preprocess::{Preprocess, PreprocessKind};
use crate::models::Model;
use crate::tensor::Tensor;
use crate::{Error, Result};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Meta {
    pub model: String,
    pub classes: Vec<String>,
    /// `[C, H, W]`
    pub input: [usize; 3],
    pub preprocess: PreprocessKind,
    /// Epochs completed (1-based).
    pub epoch: usize,
    pub step: u64,
    pub val_accuracy: f64,
    pub best_val_accuracy: f64,
    /// The update rule's name (`momentum`, `adam`, ...).
    pub optimizer: String,
    /// Optimizer steps taken (Adam's bias-correction `t`).
    pub optimizer_t: u64,
    /// The plateau schedule's memory (absent for other schedules and older checkpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plateau: Option<crate::schedule::PlateauState>,
    pub data: String,
    /// Where the data was found when training, as an absolute path: `eval --run` from another folder finds it
    /// there when `data`'s relative path does not resolve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    pub seed: u64,
}

fn to_bytes(t: &Tensor<f32>) -> Vec<u8> {
    t.data().iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub(crate) fn write_safetensors(
    path: &Path,
    tensors: &[(String, Tensor<f32>)],
    info: Option<std::collections::HashMap<String, String>>,
) -> Result<()> {
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> =
        tensors.iter().map(|(n, t)| (n.clone(), to_bytes(t), t.shape().to_vec())).collect();
    let views: Vec<(String, TensorView)> = bytes
        .iter()
        .map(|(n, b, s)| (n.clone(), TensorView::new(Dtype::F32, s.clone(), b).expect("shape matches byte count")))
        .collect();
    let data = safetensors::serialize(views, info).map_err(|e| Error::file(path, format!("cannot serialise: {e}")))?;
    write_synced(path, &data)
}

fn write_synced(path: &Path, data: &[u8]) -> Result<()> {
    let mut f =
        std::fs::File::create(path).map_err(|e| Error::file(path, format!("cannot create: {}", io_words(&e))))?;
    f.write_all(data)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::file(path, format!("cannot write: {}", io_words(&e))))
}

/// An I/O error in a user's words: a full disk is named as such.
fn io_words(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        StorageFull | QuotaExceeded | FileTooLarge => format!("the disk is full ({e})"),
        _ => e.to_string(),
    }
}

/// Every tensor of a safetensors file, by name.
pub fn read_safetensors(path: &Path) -> Result<BTreeMap<String, Tensor<f32>>> {
    let raw = std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    let st =
        SafeTensors::deserialize(&raw).map_err(|e| Error::file(path, format!("not a valid safetensors file: {e}")))?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(Error::file(
                path,
                format!("tensor '{name}' is {:?}; convkit checkpoints are F32", view.dtype()),
            ));
        }
        let v: Vec<f32> = view.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        out.insert(name, Tensor::from_vec(view.shape(), v));
    }
    Ok(out)
}

/// The model's parameters and buffers, by registry name.
pub fn model_tensors(model: &mut Model<f32>) -> Vec<(String, Tensor<f32>)> {
    let mut v = Vec::new();
    model.visit_state(&mut |n, t| v.push((n.to_string(), t.clone())));
    v
}

/// Copies named tensors into the model; every parameter and buffer must be present with its shape.
pub fn load_into(model: &mut Model<f32>, tensors: &BTreeMap<String, Tensor<f32>>, source: &Path) -> Result<()> {
    let mut err: Option<Error> = None;
    let mut copy = |name: &str, dst: &mut Tensor<f32>| {
        if err.is_some() {
            return;
        }
        match tensors.get(name) {
            None => {
                err = Some(Error::file(
                    source,
                    format!("no tensor '{name}': not a checkpoint of model '{}'?", model_name_hint(tensors)),
                ))
            }
            Some(t) if t.shape() != dst.shape() => {
                err = Some(Error::file(
                    source,
                    format!("tensor '{name}' has shape {:?}, the model expects {:?}", t.shape(), dst.shape()),
                ))
            }
            Some(t) => dst.data_mut().copy_from_slice(t.data()),
        }
    };
    model.visit_state(&mut copy);
    err.map_or(Ok(()), Err)
}

fn model_name_hint(t: &BTreeMap<String, Tensor<f32>>) -> String {
    t.keys().next().cloned().unwrap_or_default()
}

/// Writes checkpoint `dir/name` atomically (see the module comment).
pub fn save(
    dir: &Path,
    name: &str,
    model: &mut Model<f32>,
    opt_state: &BTreeMap<String, Tensor<f32>>,
    prep: &Preprocess,
    meta: &Meta,
) -> Result<PathBuf> {
    let fin = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let prev = dir.join(format!("{name}.prev"));
    let io = |p: &Path, what: &str, e: std::io::Error| Error::file(p, format!("cannot {what}: {e}"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| io(&tmp, "remove a stale temporary checkpoint", e))?;
    }
    if let Err(e) = write_folder(&tmp, model, opt_state, prep, meta) {
        // Give the space back, and say what survived: nothing under the final name was touched.
        let _ = std::fs::remove_dir_all(&tmp);
        let kept = match Checkpoint::meta_of(&fin) {
            Ok(m) => format!("the previous `{name}` checkpoint (epoch {}) is intact", m.epoch),
            Err(_) => format!("no `{name}` checkpoint was replaced"),
        };
        let run = dir.parent().unwrap_or(dir).display().to_string();
        let full = e.to_string().contains("the disk is full");
        let fix = if full { "Free some space, then continue" } else { "Fix that, then continue" };
        let then = format!("; {kept}. {fix} with `convkit train --resume {run}`");
        return Err(match e {
            Error::File { file, detail } => Error::File { file, detail: detail + &then },
            e => Error::file(&fin, format!("{e}{then}")),
        });
    }
    if fin.exists() {
        discard(&prev)?;
        std::fs::rename(&fin, &prev).map_err(|e| io(&fin, "move aside", e))?;
    }
    std::fs::rename(&tmp, &fin).map_err(|e| io(&tmp, "move into place", e))?;
    discard(&prev)?;
    Ok(fin)
}

/// A checkpoint's files, written and synced into `tmp`.
fn write_folder(
    tmp: &Path,
    model: &mut Model<f32>,
    opt_state: &BTreeMap<String, Tensor<f32>>,
    prep: &Preprocess,
    meta: &Meta,
) -> Result<()> {
    std::fs::create_dir_all(tmp).map_err(|e| Error::file(tmp, format!("cannot create: {}", io_words(&e))))?;
    let mut tensors = model_tensors(model);
    tensors.extend(prep.tensors());
    // One metadata entry (the model's name is in meta.json): safetensors takes a HashMap, whose order changes from
    // process to process, and the same weights must give the same file, byte for byte.
    let info = std::collections::HashMap::from([("format".to_string(), "convkit".to_string())]);
    write_safetensors(&tmp.join("model.safetensors"), &tensors, Some(info))?;
    let st: Vec<(String, Tensor<f32>)> = opt_state.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    write_safetensors(&tmp.join("optimizer.safetensors"), &st, None)?;
    write_synced(&tmp.join("meta.json"), serde_json::to_string_pretty(meta).expect("meta serialises").as_bytes())?;
    write_checksums(tmp)
}

/// Removes a checkpoint folder so that a kill midway never leaves a half-deleted one under a checkpoint's name:
/// it is renamed to `NAME.old` (atomic), then deleted.
fn discard(ck: &Path) -> Result<()> {
    if !ck.exists() {
        return Ok(());
    }
    let mut old = ck.as_os_str().to_owned();
    old.push(".old");
    let old = PathBuf::from(old);
    let rm = |p: &Path| std::fs::remove_dir_all(p).map_err(|e| Error::file(p, format!("cannot remove: {e}")));
    if old.exists() {
        rm(&old)?;
    }
    std::fs::rename(ck, &old).map_err(|e| Error::file(ck, format!("cannot move aside: {e}")))?;
    rm(&old)
}

/// The checkpoint format this code writes (1: no checksums).
pub const FORMAT: u32 = 2;
const TENSOR_FILES: [&str; 2] = ["model.safetensors", "optimizer.safetensors"];

#[derive(Serialize, Deserialize)]
struct Checksums {
    format: u32,
    /// File name -> CRC-32C of its bytes, hex.
    crc32c: BTreeMap<String, String>,
}

fn write_checksums(dir: &Path) -> Result<()> {
    let mut crc32c = BTreeMap::new();
    for f in TENSOR_FILES {
        let p = dir.join(f);
        let bytes = std::fs::read(&p).map_err(|e| Error::file(&p, format!("cannot read back: {e}")))?;
        crc32c.insert(f.to_string(), format!("{:08x}", crc32c::crc32c(&bytes)));
    }
    let text = serde_json::to_string_pretty(&Checksums { format: FORMAT, crc32c }).expect("checksums serialise");
    write_synced(&dir.join("checksums.json"), text.as_bytes())
}

/// Checks each tensor file against `checksums.json` (checkpoints older than format 2 have none).
fn verify_checksums(dir: &Path) -> Result<()> {
    let p = dir.join("checksums.json");
    let Ok(text) = std::fs::read_to_string(&p) else { return Ok(()) };
    let sums: Checksums = serde_json::from_str(&text)
        .map_err(|e| Error::file(&p, format!("damaged checkpoint: unreadable checksums: {e}")))?;
    if sums.format > FORMAT {
        return Err(Error::file(
            dir,
            format!("checkpoint format {} is newer than this convkit's {FORMAT}: upgrade", sums.format),
        ));
    }
    for (f, want) in &sums.crc32c {
        let fp = dir.join(f);
        let bytes =
            std::fs::read(&fp).map_err(|e| Error::file(&fp, format!("damaged checkpoint: cannot read: {e}")))?;
        let got = format!("{:08x}", crc32c::crc32c(&bytes));
        if &got != want {
            return Err(Error::file(&fp, format!("damaged checkpoint: checksum {got} where {want} was written")));
        }
    }
    Ok(())
}

/// The first tensor holding NaN or infinity, named with its count.
fn check_finite(path: &Path, tensors: &BTreeMap<String, Tensor<f32>>) -> Result<()> {
    for (name, t) in tensors {
        let bad = t.data().iter().filter(|v| !v.is_finite()).count();
        if bad > 0 {
            return Err(Error::file(
                path,
                format!("damaged checkpoint: tensor '{name}' holds {bad} NaN or infinite values"),
            ));
        }
    }
    Ok(())
}

/// A loaded checkpoint: its folder, metadata and tensors.
pub struct Checkpoint {
    pub dir: PathBuf,
    pub meta: Meta,
    pub tensors: BTreeMap<String, Tensor<f32>>,
    pub optimizer: BTreeMap<String, Tensor<f32>>,
}

impl Checkpoint {
    /// Reads `path` (a checkpoint folder), falling back to `path.prev` if a crash interrupted a swap.
    pub fn load(path: &Path) -> Result<Checkpoint> {
        let dir = if path.join("meta.json").exists() {
            path.to_path_buf()
        } else {
            let prev = PathBuf::from(format!("{}.prev", path.display()));
            if prev.join("meta.json").exists() {
                prev
            } else {
                return Err(Error::file(
                    path,
                    "no checkpoint here (expected meta.json, model.safetensors, optimizer.safetensors)",
                ));
            }
        };
        let mp = dir.join("meta.json");
        let text = std::fs::read_to_string(&mp).map_err(|e| Error::file(&mp, format!("cannot read: {e}")))?;
        let meta: Meta =
            serde_json::from_str(&text).map_err(|e| Error::file(&mp, format!("invalid checkpoint metadata: {e}")))?;
        verify_checksums(&dir)?;
        let mpath = dir.join("model.safetensors");
        let tensors = read_safetensors(&mpath)?;
        check_finite(&mpath, &tensors)?;
        let op = dir.join("optimizer.safetensors");
        let optimizer = if op.exists() { read_safetensors(&op)? } else { BTreeMap::new() };
        check_finite(&op, &optimizer)?;
        Ok(Checkpoint { dir, meta, tensors, optimizer })
    }

    /// Only the metadata of the checkpoint at `path` (no tensors read, nothing verified).
    pub fn meta_of(path: &Path) -> Result<Meta> {
        let mp = path.join("meta.json");
        let text = std::fs::read_to_string(&mp).map_err(|e| Error::file(&mp, format!("cannot read: {e}")))?;
        serde_json::from_str(&text).map_err(|e| Error::file(&mp, format!("invalid checkpoint metadata: {e}")))
    }

    /// Builds the model this checkpoint belongs to, with its weights.
    pub fn model(&self) -> Result<Model<f32>> {
        let mut m = crate::models::build::<f32>(&self.meta.model, Some(self.meta.classes.len()), self.meta.seed)?;
        load_into(&mut m, &self.tensors, &self.dir.join("model.safetensors"))?;
        Ok(m)
    }

    pub fn preprocess(&self) -> Preprocess {
        Preprocess::from_tensors(self.meta.preprocess, self.meta.input, &|n| {
            self.tensors.get(n).map(|t| t.data().to_vec())
        })
    }
}
