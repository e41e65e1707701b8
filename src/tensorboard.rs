//! TensorBoard event files (`events.out.tfevents.*`), written and read back.
//!
//! A file is a sequence of TFRecords: `u64` length, masked CRC-32C of the length, the bytes of one `Event`
//! protobuf, masked CRC-32C of those bytes. The three messages below are the subset of TensorFlow's
//! `event.proto` / `summary.proto` that scalars and histograms need, encoded by `prost` (field numbers as in
//! TensorFlow); the checksums come from `crc32c`.

use crate::{Error, Result};
use prost::Message;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

#[derive(Clone, PartialEq, Message)]
pub struct Event {
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    #[prost(int64, tag = "2")]
    pub step: i64,
    /// The first event of every file: `brain.Event:2`.
    #[prost(string, optional, tag = "3")]
    pub file_version: Option<String>,
    #[prost(message, optional, tag = "5")]
    pub summary: Option<Summary>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Summary {
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<Value>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Value {
    #[prost(string, tag = "1")]
    pub tag: String,
    #[prost(float, optional, tag = "2")]
    pub simple_value: Option<f32>,
    #[prost(message, optional, tag = "5")]
    pub histo: Option<Histogram>,
}

/// TensorFlow's `HistogramProto`: bucket `i` counts values in `(bucket_limit[i-1], bucket_limit[i]]`.
#[derive(Clone, PartialEq, Message)]
pub struct Histogram {
    #[prost(double, tag = "1")]
    pub min: f64,
    #[prost(double, tag = "2")]
    pub max: f64,
    #[prost(double, tag = "3")]
    pub num: f64,
    #[prost(double, tag = "4")]
    pub sum: f64,
    #[prost(double, tag = "5")]
    pub sum_squares: f64,
    #[prost(double, repeated, tag = "6")]
    pub bucket_limit: Vec<f64>,
    #[prost(double, repeated, tag = "7")]
    pub bucket: Vec<f64>,
}

impl Histogram {
    /// `bins` equal-width buckets over the values' range.
    pub fn of(values: impl Iterator<Item = f64> + Clone, bins: usize) -> Histogram {
        let (mut min, mut max, mut num, mut sum, mut sum_squares) = (f64::INFINITY, f64::NEG_INFINITY, 0.0, 0.0, 0.0);
        for v in values.clone().filter(|v| v.is_finite()) {
            (min, max, num, sum, sum_squares) = (min.min(v), max.max(v), num + 1.0, sum + v, sum_squares + v * v);
        }
        if num == 0.0 {
            return Histogram { min: 0.0, max: 0.0, num, sum, sum_squares, bucket_limit: vec![], bucket: vec![] };
        }
        let bins = bins.max(1);
        let width = ((max - min) / bins as f64).max(f64::MIN_POSITIVE);
        let mut bucket = vec![0.0; bins];
        for v in values.filter(|v| v.is_finite()) {
            bucket[(((v - min) / width) as usize).min(bins - 1)] += 1.0;
        }
        let bucket_limit = (1..=bins).map(|i| if i == bins { max } else { min + width * i as f64 }).collect();
        Histogram { min, max, num, sum, sum_squares, bucket_limit, bucket }
    }
}

fn masked_crc(bytes: &[u8]) -> u32 {
    let c = crc32c::crc32c(bytes);
    c.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Appends events to one new file in a log directory.
pub struct EventWriter {
    path: PathBuf,
    out: BufWriter<std::fs::File>,
}

impl EventWriter {
    /// Creates `dir/events.out.tfevents.<seconds>.convkit` and writes the version event.
    pub fn create(dir: &Path) -> Result<EventWriter> {
        std::fs::create_dir_all(dir).map_err(|e| Error::file(dir, format!("cannot create: {e}")))?;
        let now = now();
        let mut n = 0;
        let path = loop {
            let p = dir.join(format!(
                "events.out.tfevents.{}.convkit{}",
                now as u64,
                if n == 0 { String::new() } else { format!(".{n}") }
            ));
            if !p.exists() {
                break p;
            }
            n += 1;
        };
        let file = std::fs::File::create(&path).map_err(|e| Error::file(&path, format!("cannot create: {e}")))?;
        let mut w = EventWriter { path, out: BufWriter::new(file) };
        w.write(&Event { wall_time: now, step: 0, file_version: Some("brain.Event:2".into()), summary: None })?;
        Ok(w)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn write(&mut self, e: &Event) -> Result<()> {
        let data = e.encode_to_vec();
        let len = (data.len() as u64).to_le_bytes();
        let mut rec = Vec::with_capacity(data.len() + 16);
        rec.extend_from_slice(&len);
        rec.extend_from_slice(&masked_crc(&len).to_le_bytes());
        rec.extend_from_slice(&data);
        rec.extend_from_slice(&masked_crc(&data).to_le_bytes());
        self.out.write_all(&rec).map_err(|e| Error::file(&self.path, format!("cannot write: {e}")))
    }

    /// Scalars `(tag, value)` at `step`, as one event.
    pub fn scalars(&mut self, step: u64, values: &[(&str, f64)]) -> Result<()> {
        let value = values
            .iter()
            .map(|(tag, v)| Value { tag: tag.to_string(), simple_value: Some(*v as f32), histo: None })
            .collect();
        self.summary(step, value)
    }

    pub fn histogram(&mut self, step: u64, tag: &str, h: Histogram) -> Result<()> {
        self.summary(step, vec![Value { tag: tag.to_string(), simple_value: None, histo: Some(h) }])
    }

    fn summary(&mut self, step: u64, value: Vec<Value>) -> Result<()> {
        self.write(&Event { wall_time: now(), step: step as i64, file_version: None, summary: Some(Summary { value }) })
    }

    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(|e| Error::file(&self.path, format!("cannot write: {e}")))
    }
}

fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Every event of one file, checksums verified. A record cut short at the end (a run killed mid-write) ends the
/// list, as TensorBoard treats it; a wrong checksum is an error.
pub fn read(path: &Path) -> Result<Vec<Event>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    let (mut events, mut at) = (Vec::new(), 0usize);
    let bad = |what: &str, at: usize| Error::file(path, format!("not a TensorBoard event file: {what} at byte {at}"));
    while at + 12 <= bytes.len() {
        let len_bytes = &bytes[at..at + 8];
        let crc = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().expect("4 bytes"));
        if masked_crc(len_bytes) != crc {
            return Err(bad("length checksum mismatch", at));
        }
        let len = u64::from_le_bytes(len_bytes.try_into().expect("8 bytes")) as usize;
        let end = at.saturating_add(12).saturating_add(len).saturating_add(4);
        if end > bytes.len() {
            break;
        }
        let data = &bytes[at + 12..at + 12 + len];
        if masked_crc(data) != u32::from_le_bytes(bytes[end - 4..end].try_into().expect("4 bytes")) {
            return Err(bad("data checksum mismatch", at));
        }
        events.push(Event::decode(data).map_err(|e| bad(&format!("undecodable event ({e})"), at))?);
        at = end;
    }
    Ok(events)
}

/// The event files in `dir`, oldest name first.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("events.out.tfevents.")))
        .collect();
    v.sort();
    v
}

/// Every scalar in `dir`'s files as `(tag, step, value)`, in file order.
pub fn scalars(dir: &Path) -> Result<Vec<(String, i64, f32)>> {
    let mut out = Vec::new();
    for f in files(dir) {
        for e in read(&f)? {
            for v in e.summary.into_iter().flat_map(|s| s.value) {
                if let Some(x) = v.simple_value {
                    out.push((v.tag, e.step, x));
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_reads_back_scalars_and_histograms() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = EventWriter::create(dir.path()).unwrap();
        w.scalars(3, &[("a", 1.5), ("b", -2.0)]).unwrap();
        w.histogram(3, "h", Histogram::of([1.0, 2.0, 2.0, 4.0].into_iter(), 3)).unwrap();
        w.flush().unwrap();
        let ev = read(w.path()).unwrap();
        assert_eq!(ev.len(), 3);
        assert_eq!(ev[0].file_version.as_deref(), Some("brain.Event:2"));
        assert_eq!(scalars(dir.path()).unwrap(), vec![("a".into(), 3, 1.5), ("b".into(), 3, -2.0)]);
        let h = ev[2].summary.as_ref().unwrap().value[0].histo.clone().unwrap();
        assert_eq!((h.min, h.max, h.num, h.sum, h.sum_squares), (1.0, 4.0, 4.0, 9.0, 25.0));
        assert_eq!(h.bucket, vec![1.0, 2.0, 1.0]);
        assert_eq!(h.bucket_limit, vec![2.0, 3.0, 4.0]);
    }

    #[test]
    fn reads_the_file_pytorchs_summary_writer_wrote() {
        // reference/tensorboard_events.py: loss 2.5, 1.5, 0.5 and lr 0.1 halving at steps 0..3, then a histogram.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("reference/tensorboard_events");
        let s = scalars(&dir).unwrap();
        let loss: Vec<(i64, f32)> = s.iter().filter(|x| x.0 == "loss").map(|x| (x.1, x.2)).collect();
        assert_eq!(loss, vec![(0, 2.5), (1, 1.5), (2, 0.5)]);
        let lr: Vec<f32> = s.iter().filter(|x| x.0 == "lr").map(|x| x.2).collect();
        assert_eq!(lr, vec![0.1, 0.05, 0.025]);
        let ev = read(&files(&dir)[0]).unwrap();
        assert_eq!(ev[0].file_version.as_deref(), Some("brain.Event:2"));
        let h = ev.iter().find_map(|e| e.summary.as_ref()?.value.iter().find_map(|v| v.histo.clone())).unwrap();
        assert_eq!((h.num, h.sum, h.sum_squares), (4.0, 9.0, 25.0));
        // Our records are framed the same way: re-encoding the summaries gives the file's bytes back (the first
        // event also carries a `source_metadata` field we neither read nor write).
        let bytes = std::fs::read(&files(&dir)[0]).unwrap();
        let first = 16 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let mut again = Vec::new();
        for e in &ev[1..] {
            let data = e.encode_to_vec();
            let len = (data.len() as u64).to_le_bytes();
            again.extend_from_slice(&len);
            again.extend_from_slice(&masked_crc(&len).to_le_bytes());
            again.extend_from_slice(&data);
            again.extend_from_slice(&masked_crc(&data).to_le_bytes());
        }
        assert_eq!(again, bytes[first..]);
    }

    #[test]
    fn a_flipped_byte_is_an_error_and_a_cut_record_ends_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = EventWriter::create(dir.path()).unwrap();
        w.scalars(1, &[("a", 1.0)]).unwrap();
        w.flush().unwrap();
        let p = w.path().to_path_buf();
        let mut bytes = std::fs::read(&p).unwrap();
        let n = bytes.len();
        std::fs::write(&p, &bytes[..n - 3]).unwrap();
        assert_eq!(read(&p).unwrap().len(), 1);
        bytes[n - 6] ^= 0x10;
        std::fs::write(&p, &bytes).unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("checksum"), "{e}");
    }
}
