//! `convkit data fetch` against a web server on loopback that serves the real MNIST and Fashion-MNIST files from
//! `../shared/data`: a clean fetch verifies every file against its published MD5; a response cut short leaves only
//! a `.part`, which the next run resumes with a range request; a file with one byte changed is refused with a
//! checksum error and never appears under its final name; a second fetch finds the files verified in place.
//!
//! The server is a few lines over `std::net` because it must misbehave on purpose (cut a body short, flip a byte),
//! which server libraries are built not to do.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

const BIN: &str = env!("CARGO_BIN_EXE_convkit");

#[derive(Default)]
struct Faults {
    /// Cut this file's first response after this many body bytes.
    cut: HashMap<String, usize>,
    /// Serve this file with one byte changed.
    flip: Option<String>,
    /// Range requests seen, per file: the offsets asked for.
    ranges: HashMap<String, Vec<u64>>,
}

/// Serves `files` (name to bytes) over HTTP/1.1 on loopback, one connection at a time, honouring `Range`.
fn serve(files: HashMap<String, Vec<u8>>, faults: Arc<Mutex<Faults>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let path = line.split_whitespace().nth(1).unwrap_or("/").trim_start_matches('/').to_string();
            let mut range = 0u64;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("range: bytes=") {
                    range = v.trim().trim_end_matches('-').parse().unwrap();
                }
            }
            let mut f = faults.lock().unwrap();
            let Some(mut body) = files.get(&path).cloned() else {
                let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                continue;
            };
            if f.flip.as_deref() == Some(path.as_str()) {
                let mid = body.len() / 2;
                body[mid] ^= 0x40;
            }
            if range > 0 {
                f.ranges.entry(path.clone()).or_default().push(range);
            }
            let status = if range > 0 { "206 Partial Content" } else { "200 OK" };
            let rest = &body[range as usize..];
            let head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", rest.len());
            let send = f.cut.remove(&path).map_or(rest.len(), |n| n.min(rest.len()));
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&rest[..send]);
        }
    });
    format!("http://{addr}/")
}

fn shared(dir: &str) -> HashMap<String, Vec<u8>> {
    std::fs::read_dir(Path::new("../shared/data").join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "gz"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect()
}

fn fetch(name: &str, dir: &Path, mirror: &str) -> std::process::Output {
    Command::new(BIN).args(["data", "fetch", name, "--mirror", mirror]).arg("--dir").arg(dir).output().unwrap()
}

#[test]
fn fetch_verifies_resumes_and_refuses_wrong_files() {
    let files = shared("mnist");
    let faults = Arc::new(Mutex::new(Faults::default()));
    faults.lock().unwrap().cut.insert("train-images-idx3-ubyte.gz".into(), 1_000_000);
    let url = serve(files.clone(), faults.clone());
    let d = tempfile::tempdir().unwrap();
    let mnist = d.path().join("mnist");

    // Cut short: an error that says to run again, the bytes so far kept as a .part, nothing under the final name.
    let o = fetch("mnist", d.path(), &url);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("run the same command again to resume"), "{err}");
    assert!(!mnist.join("train-images-idx3-ubyte.gz").exists());
    assert_eq!(std::fs::metadata(mnist.join("train-images-idx3-ubyte.gz.part")).unwrap().len(), 1_000_000);

    // Again: it resumes after those bytes and every file verifies.
    let o = fetch("mnist", d.path(), &url);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("resumed after 1000000"), "{err}");
    assert_eq!(faults.lock().unwrap().ranges["train-images-idx3-ubyte.gz"], [1_000_000]);
    for (name, bytes) in &files {
        assert_eq!(&std::fs::read(mnist.join(name)).unwrap(), bytes, "{name}");
        assert!(!mnist.join(format!("{name}.part")).exists());
    }
    // The fetched folder is a dataset convkit reads.
    let ds =
        convkit::data::idx::load_dir(&mnist, convkit::data::Split::Test, convkit::data::idx::mnist_classes()).unwrap();
    assert_eq!(ds.len(), 10_000);

    // A third time: nothing downloaded, every file verified in place.
    let o = fetch("mnist", d.path(), &url);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && err.matches("already there, MD5 verified").count() == 4, "{err}");
}

#[test]
fn a_file_that_does_not_match_its_published_checksum_is_refused() {
    let faults = Arc::new(Mutex::new(Faults { flip: Some("t10k-labels-idx1-ubyte.gz".into()), ..Default::default() }));
    let url = serve(shared("fashion-mnist"), faults);
    let d = tempfile::tempdir().unwrap();
    let o = fetch("fashion-mnist", d.path(), &url);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("checksum mismatch") && err.contains("t10k-labels-idx1-ubyte.gz"),
        "{err}"
    );
    let dir = d.path().join("fashion-mnist");
    assert!(!dir.join("t10k-labels-idx1-ubyte.gz").exists() && !dir.join("t10k-labels-idx1-ubyte.gz.part").exists());

    // CIFAR-10 from a server that has something else under its name: refused, nothing unpacked.
    let mut fake = HashMap::new();
    fake.insert("cifar-10-binary.tar.gz".to_string(), b"\x1f\x8b not the archive".to_vec());
    let url = serve(fake, Arc::new(Mutex::new(Faults::default())));
    let o = fetch("cifar10", d.path(), &url);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("checksum mismatch"), "{err}");
    assert!(!d.path().join("cifar-10-batches-bin").exists());

    // A file the server does not have: the HTTP status, named.
    let url = serve(HashMap::new(), Arc::new(Mutex::new(Faults::default())));
    let o = fetch("mnist", d.path(), &url);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("HTTP 404"), "{err}");
}

#[test]
fn missing_data_names_the_fetch_command() {
    let d = tempfile::tempdir().unwrap();
    let o = Command::new(BIN)
        .args(["train", "--model", "lenet5", "--data", "mnist:/nowhere/digits", "--epochs", "1"])
        .arg("--out")
        .arg(d.path().join("run"))
        .env("CONVKIT_DATA", d.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("convkit data fetch mnist"), "{err}");
    // Fetched data in the user's data folder is found by a recipe naming the usual folder.
    let fetched = d.path().join("digits");
    std::fs::create_dir(&fetched).unwrap();
    for f in std::fs::read_dir("../shared/data/mnist").unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, fetched.join(f.file_name().unwrap())).unwrap();
    }
    std::env::set_var("CONVKIT_DATA", d.path());
    let spec: convkit::data::DataSpec = "mnist:/nowhere/digits".parse().unwrap();
    assert_eq!(spec.resolve().unwrap().path, fetched);
}
