//! Corrupt and truncated inputs give clear errors that name the file (and offset), never a panic.

use convkit::data::cifar_bin::RECORD;
use convkit::data::{DataSpec, Split};
use std::io::Write;
use std::path::Path;

fn write(path: &Path, bytes: &[u8]) {
    std::fs::File::create(path).unwrap().write_all(bytes).unwrap();
}

fn idx_images(n: u32, rows: u32, cols: u32) -> Vec<u8> {
    let mut v = vec![0, 0, 8, 3];
    for d in [n, rows, cols] {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend((0..n * rows * cols).map(|i| (i % 256) as u8));
    v
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, 1];
    v.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    v.extend_from_slice(labels);
    v
}

fn load_err(spec: &str) -> String {
    let spec: DataSpec = spec.parse().unwrap();
    match spec.load(Split::Train, None) {
        Ok(ds) => panic!("corrupt input loaded as {} images", ds.len()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn idx_good_then_broken_in_every_way() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    write(&dir.join("train-images-idx3-ubyte"), &idx_images(3, 2, 2));
    write(&dir.join("train-labels-idx1-ubyte"), &idx_labels(&[0, 9, 4]));
    let spec = format!("mnist:{}", dir.display());
    let ds = spec.parse::<DataSpec>().unwrap().load(Split::Train, None).unwrap();
    assert_eq!((ds.len(), ds.shape, ds.labels.clone()), (3, [1, 2, 2], vec![0, 9, 4]));

    // Truncated pixel data: names the file, the offset and what was expected.
    let mut t = idx_images(3, 2, 2);
    t.truncate(t.len() - 5);
    write(&dir.join("train-images-idx3-ubyte"), &t);
    let e = load_err(&spec);
    assert!(e.contains("train-images-idx3-ubyte") && e.contains("offset 16") && e.contains("truncated"), "{e}");

    // Wrong magic.
    write(&dir.join("train-images-idx3-ubyte"), b"GIF89a not an idx file");
    let e = load_err(&spec);
    assert!(e.contains("magic") && e.contains("train-images-idx3-ubyte"), "{e}");

    // Label out of range, and a label/image count mismatch.
    write(&dir.join("train-images-idx3-ubyte"), &idx_images(3, 2, 2));
    write(&dir.join("train-labels-idx1-ubyte"), &idx_labels(&[0, 10, 4]));
    let e = load_err(&spec);
    assert!(e.contains("label 10") && e.contains("offset 9"), "{e}");
    write(&dir.join("train-labels-idx1-ubyte"), &idx_labels(&[0, 1]));
    assert!(load_err(&spec).contains("2 labels for 3 images"));

    // A gzip stream cut short.
    std::fs::remove_file(dir.join("train-images-idx3-ubyte")).unwrap();
    let gz = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&idx_images(50, 10, 10)).unwrap();
        e.finish().unwrap()
    };
    write(&dir.join("train-images-idx3-ubyte.gz"), &gz[..gz.len() / 2]);
    let e = load_err(&spec);
    assert!(e.contains("train-images-idx3-ubyte.gz") && e.contains("gzip"), "{e}");

    // Missing files say how to get the data.
    let e = load_err(&format!("mnist:{}", dir.join("nowhere").display()));
    assert!(e.contains("not found"), "{e}");
}

fn cifar_record(label: u8, seed: u8) -> Vec<u8> {
    let mut r = vec![label];
    r.extend((0..RECORD - 1).map(|i| (i as u8).wrapping_mul(seed)));
    r
}

#[test]
fn cifar10_binary_round_trip_and_corruption() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    for b in 1..=5u8 {
        let recs: Vec<u8> = (0..4).flat_map(|k| cifar_record((b + k) % 10, b + k)).collect();
        write(&dir.join(format!("data_batch_{b}.bin")), &recs);
    }
    write(&dir.join("test_batch.bin"), &cifar_record(3, 7));
    let spec: DataSpec = format!("cifar10-bin:{}", dir.display()).parse().unwrap();
    let train = spec.load(Split::Train, None).unwrap();
    assert_eq!((train.len(), train.shape), (20, [3, 32, 32]));
    assert_eq!(train.labels[..4], [1, 2, 3, 4]);
    // The record's bytes are R, G, B planes in that order: the image is the record minus its label.
    assert_eq!(train.image(0), &cifar_record(1, 1)[1..]);
    let test = spec.load(Split::Test, None).unwrap();
    assert_eq!((test.len(), test.labels[0]), (1, 3));

    let mut cut = cifar_record(1, 1);
    cut.extend_from_slice(&cifar_record(2, 2)[..100]);
    write(&dir.join("data_batch_3.bin"), &cut);
    let e = load_err(&format!("cifar10-bin:{}", dir.display()));
    assert!(e.contains("data_batch_3.bin") && e.contains("truncated after record 1"), "{e}");

    write(&dir.join("data_batch_3.bin"), &[cifar_record(0, 1), cifar_record(12, 1)].concat());
    let e = load_err(&format!("cifar10-bin:{}", dir.display()));
    assert!(e.contains("offset 3073") && e.contains("label 12"), "{e}");
}

#[test]
fn folder_skips_undecodable_images_with_a_count() {
    let d = tempfile::tempdir().unwrap();
    for (class, n) in [("cat", 2), ("dog", 1)] {
        let cdir = d.path().join("train").join(class);
        std::fs::create_dir_all(&cdir).unwrap();
        for i in 0..n {
            let img = image::RgbImage::from_fn(8, 6, |x, y| image::Rgb([x as u8 * 30, y as u8 * 40, i as u8 * 90]));
            img.save(cdir.join(format!("{i}.png"))).unwrap();
        }
    }
    write(&d.path().join("train/dog/broken.jpg"), b"\xff\xd8\xff\xe0 not really a jpeg");
    let spec: DataSpec = format!("folder:{}", d.path().display()).parse().unwrap();
    let ds = spec.load(Split::Train, None).unwrap();
    assert_eq!((ds.len(), ds.shape, ds.classes.clone()), (3, [3, 6, 8], vec!["cat".to_string(), "dog".to_string()]));
    assert_eq!(ds.skipped.len(), 1);
    assert!(ds.skipped[0].contains("broken.jpg"));
    // CHW layout: pixel (x=1, y=0) of the first cat in the red plane is 30.
    assert_eq!(ds.image(0)[1], 30);
    // A split that is not there is a clear error.
    assert!(spec.load(Split::Test, None).unwrap_err().to_string().contains("test or val"));
    // Bad data specs are clear errors too.
    assert!("mnist".parse::<DataSpec>().unwrap_err().to_string().contains("KIND:PATH"));
    assert!("svhn:x".parse::<DataSpec>().unwrap_err().to_string().contains("unknown dataset kind"));
}

#[test]
fn a_tar_entry_claiming_an_absurd_size_is_an_error_not_an_abort() {
    // A GNU header can state a size up to 2^95 bytes (base-256); this one claims 2^62 and holds 16 bytes.
    let d = tempfile::tempdir().unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_path("train/cat/0.png").unwrap();
    h.set_size(1 << 62);
    h.set_mode(0o644);
    h.set_cksum();
    let mut bytes = h.as_bytes().to_vec();
    bytes.extend_from_slice(&[0u8; 16]);
    let p = d.path().join("lying.tar");
    write(&p, &bytes);
    let e = load_err(&format!("folder:{}", p.display()));
    assert!(e.contains("lying.tar") && e.contains("truncated"), "{e}");
}
