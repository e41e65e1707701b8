//! `convkit data fetch`: the datasets from their publishers, as torchvision's `download=True` does: each file is
//! downloaded to `NAME.part` (resumed with an HTTP range request when a part is already there), checked against
//! its published MD5, and only then renamed to its final name, so a half-written or wrong file never sits where a
//! loader would read it.

use super::Kind;
use crate::{Error, Result};
use md5::{Digest, Md5};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One published file.
pub struct Published {
    pub name: &'static str,
    /// MD5 of the file as published.
    pub md5: &'static str,
    /// For gzip files: MD5 of the decompressed content, which a mirror that recompressed the file still matches.
    pub content_md5: Option<&'static str>,
}

/// A dataset as its publisher serves it.
pub struct Source {
    pub name: &'static str,
    /// The folder it goes into, under the data folder (what recipes name).
    pub folder: &'static str,
    /// Base addresses, tried in order.
    pub mirrors: &'static [&'static str],
    pub files: &'static [Published],
    /// The archive unpacks into `folder` (CIFAR-10) rather than being used as it is.
    pub unpack: bool,
}

const MNIST: Source = Source {
    name: "mnist",
    folder: "mnist",
    // The publisher's site, then the mirror torchvision uses (the original now often refuses robots).
    mirrors: &["https://yann.lecun.com/exdb/mnist/", "https://ossci-datasets.s3.amazonaws.com/mnist/"],
    files: &[
        Published {
            name: "train-images-idx3-ubyte.gz",
            md5: "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            content_md5: Some("6bbc9ace898e44ae57da46a324031adb"),
        },
        Published {
            name: "train-labels-idx1-ubyte.gz",
            md5: "d53e105ee54ea40749a09fcbcd1e9432",
            content_md5: Some("a25bea736e30d166cdddb491f175f624"),
        },
        Published {
            name: "t10k-images-idx3-ubyte.gz",
            md5: "9fb629c4189551a2d022fa330f9573f3",
            content_md5: Some("2646ac647ad5339dbf082846283269ea"),
        },
        Published {
            name: "t10k-labels-idx1-ubyte.gz",
            md5: "ec29112dd5afa0611ce80d1b7f02629c",
            content_md5: Some("27ae3e4e09519cfbb04c329615203637"),
        },
    ],
    unpack: false,
};

const FASHION_MNIST: Source = Source {
    name: "fashion-mnist",
    folder: "fashion-mnist",
    mirrors: &[
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ],
    files: &[
        Published {
            name: "train-images-idx3-ubyte.gz",
            md5: "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            content_md5: Some("f4a8712d7a061bf5bd6d2ca38dc4d50a"),
        },
        Published {
            name: "train-labels-idx1-ubyte.gz",
            md5: "25c81989df183df01b3e8a0aad5dffbe",
            content_md5: Some("9018921c3c673c538a1fc5bad174d6f9"),
        },
        Published {
            name: "t10k-images-idx3-ubyte.gz",
            md5: "bef4ecab320f06d8554ea6380940ec79",
            content_md5: Some("8181f5470baa50b63fa0f6fddb340f0a"),
        },
        Published {
            name: "t10k-labels-idx1-ubyte.gz",
            md5: "bb300cfdad3c16e7a12a480ee83cd310",
            content_md5: Some("15d484375f8d13e6eb1aabb0c3f46965"),
        },
    ],
    unpack: false,
};

const CIFAR10: Source = Source {
    name: "cifar10",
    folder: "cifar-10-batches-bin",
    mirrors: &["https://www.cs.toronto.edu/~kriz/"],
    files: &[Published { name: "cifar-10-binary.tar.gz", md5: "c32a1d4ab5d03f1284b67883e8d87530", content_md5: None }],
    unpack: true,
};

pub const SOURCES: [&Source; 3] = [&MNIST, &FASHION_MNIST, &CIFAR10];

pub fn source(name: &str) -> Result<&'static Source> {
    SOURCES.iter().copied().find(|s| s.name == name).ok_or_else(|| Error::Unknown {
        kind: "dataset to fetch",
        name: name.into(),
        known: "mnist, fashion-mnist, cifar10".into(),
    })
}

/// The fetch command for a dataset kind, for "not found" messages.
pub fn hint(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::Mnist => Some("mnist"),
        Kind::FashionMnist => Some("fashion-mnist"),
        Kind::Cifar10Bin => Some("cifar10"),
        Kind::Folder => None,
    }
}

/// The user's data folder: `$CONVKIT_DATA`, else `$XDG_DATA_HOME/convkit`, else `~/.local/share/convkit`.
pub fn user_data_dir() -> Option<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    env("CONVKIT_DATA")
        .or_else(|| env("XDG_DATA_HOME").map(|d| d.join("convkit")))
        .or_else(|| env("HOME").map(|h| h.join(".local/share/convkit")))
}

/// What a fetch did with each file.
#[derive(Debug, PartialEq)]
pub enum Fetched {
    /// Already there and verified.
    Present,
    Downloaded {
        bytes: u64,
        resumed_from: u64,
    },
}

/// Progress: bytes so far and the total when the server says it.
pub type OnProgress<'a> = &'a mut dyn FnMut(&str, u64, Option<u64>);

/// Fetches every file of `src` into `dir/<folder>` (or, for an archive, unpacks it there). `mirror` replaces the
/// publisher's addresses (a local copy, a test server).
pub fn fetch(src: &Source, dir: &Path, mirror: Option<&str>, progress: OnProgress) -> Result<Vec<(String, Fetched)>> {
    let target = dir.join(src.folder);
    let download_dir = if src.unpack { dir.to_path_buf() } else { target.clone() };
    std::fs::create_dir_all(&download_dir)
        .map_err(|e| Error::file(&download_dir, format!("cannot create the data folder: {e}")))?;
    let mirrors: Vec<&str> = match mirror {
        Some(m) => vec![m],
        None => src.mirrors.to_vec(),
    };
    let mut done = Vec::new();
    for f in src.files {
        let path = download_dir.join(f.name);
        let what = fetch_file(f, &path, &mirrors, progress)?;
        if src.unpack {
            unpack(&path, dir, &target)?;
        }
        done.push((f.name.to_string(), what));
    }
    Ok(done)
}

/// One file: verified in place, or downloaded (resuming a `.part`) from the first mirror that serves it.
fn fetch_file(f: &Published, path: &Path, mirrors: &[&str], progress: OnProgress) -> Result<Fetched> {
    if path.exists() {
        match verify(f, path) {
            Ok(()) => return Ok(Fetched::Present),
            Err(e) => tracing::warn!("{e}; downloading it again"),
        }
    }
    let part = part_path(path);
    let mut last = None;
    for m in mirrors {
        let url = format!("{}/{}", m.trim_end_matches('/'), f.name);
        match download(&url, &part, f.name, progress) {
            Ok((bytes, resumed_from)) => {
                if let Err(e) = verify(f, &part) {
                    // A wrong file must not be resumed from next time.
                    let _ = std::fs::remove_file(&part);
                    return Err(e);
                }
                std::fs::rename(&part, path)
                    .map_err(|e| Error::file(path, format!("cannot move the download into place: {e}")))?;
                return Ok(Fetched::Downloaded { bytes, resumed_from });
            }
            Err(e) => {
                tracing::warn!("{url}: {e}");
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or_else(|| Error::Config("no address to fetch from".into())))
}

fn part_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".part");
    PathBuf::from(p)
}

/// Streams `url` into `part`, continuing after the bytes already there when the server honours the range.
/// Returns (bytes in the file, bytes it resumed after).
fn download(url: &str, part: &Path, name: &str, progress: OnProgress) -> Result<(u64, u64)> {
    let have = std::fs::metadata(part).map_or(0, |m| m.len());
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(20)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = agent.get(url);
    if have > 0 {
        req = req.header("Range", format!("bytes={have}-"));
    }
    let resp = req.call().map_err(|e| Error::Config(format!("cannot download {url}: {e}")))?;
    let status = resp.status().as_u16();
    let (start, append) = match status {
        206 => (have, true),
        200 => (0, false),
        // The part is already whole: nothing more to send.
        416 if have > 0 => return Ok((have, have)),
        s => return Err(Error::Config(format!("cannot download {url}: the server answered HTTP {s}"))),
    };
    let total =
        resp.headers().get("content-length").and_then(|v| v.to_str().ok()?.parse::<u64>().ok()).map(|n| n + start);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(part)
        .map_err(|e| Error::file(part, format!("cannot write: {e}")))?;
    let mut body = resp.into_body().into_reader();
    let mut buf = vec![0u8; 1 << 16];
    let mut got = start;
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                let _ = file.sync_all();
                return Err(Error::Config(format!(
                    "download of {url} interrupted after {got}{} bytes ({e}); run the same command again to resume",
                    total.map_or(String::new(), |t| format!(" of {t}"))
                )));
            }
        };
        file.write_all(&buf[..n]).map_err(|e| Error::file(part, format!("cannot write: {e}")))?;
        got += n as u64;
        progress(name, got, total);
    }
    file.sync_all().map_err(|e| Error::file(part, format!("cannot write: {e}")))?;
    if let Some(t) = total.filter(|&t| t != got) {
        return Err(Error::Config(format!(
            "download of {url} ended after {got} of {t} bytes; run the same command again to resume"
        )));
    }
    Ok((got, start))
}

/// The file's MD5 equals the published one, or (for gzip) its content's does.
fn verify(f: &Published, path: &Path) -> Result<()> {
    let md5 = md5_of(std::fs::File::open(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?)
        .map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    if md5 == f.md5 {
        return Ok(());
    }
    if let Some(want) = f.content_md5 {
        let file = std::fs::File::open(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
        if md5_of(flate2::read::GzDecoder::new(file)).is_ok_and(|c| c == want) {
            return Ok(());
        }
    }
    Err(Error::file(
        path,
        format!(
            "checksum mismatch: MD5 {md5}, published {}; the download is damaged or the server sent another file",
            f.md5
        ),
    ))
}

fn md5_of(mut r: impl Read) -> std::io::Result<String> {
    let mut h = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Unpacks a verified archive beside itself, through a temporary folder, so that `target` appears whole or not at
/// all.
fn unpack(archive: &Path, dir: &Path, target: &Path) -> Result<()> {
    if target.exists() {
        return Ok(());
    }
    let tmp = dir.join(".unpacking");
    let _ = std::fs::remove_dir_all(&tmp);
    let file = std::fs::File::open(archive).map_err(|e| Error::file(archive, format!("cannot read: {e}")))?;
    tar::Archive::new(flate2::read::GzDecoder::new(file))
        .unpack(&tmp)
        .map_err(|e| Error::file(archive, format!("cannot unpack: {e}")))?;
    let inner = tmp.join(target.file_name().expect("a folder name"));
    if !inner.is_dir() {
        return Err(Error::file(archive, format!("the archive holds no {} folder", target.display())));
    }
    std::fs::rename(&inner, target).map_err(|e| Error::file(target, format!("cannot move into place: {e}")))?;
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}
