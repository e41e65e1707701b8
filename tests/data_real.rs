//! Every loader on the real files in ../shared/data: counts, label ranges, shapes, and the published MNIST md5s
//! of the decoded (gunzipped) bytes.

use convkit::data::{read_maybe_gz, DataSpec, Split};
use md5::{Digest, Md5};
use std::path::{Path, PathBuf};

fn shared(rel: &str) -> PathBuf {
    let p = Path::new("../shared/data").join(rel);
    assert!(
        p.exists(),
        "{} is missing: these tests read the real datasets in ../shared/data (see its README.md)",
        p.display()
    );
    p
}

fn hex(bytes: &[u8]) -> String {
    Md5::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn counts(labels: &[u16], k: usize) -> Vec<usize> {
    let mut c = vec![0; k];
    labels.iter().for_each(|&l| c[l as usize] += 1);
    c
}

#[test]
fn mnist_decodes_to_the_published_bytes() {
    let dir = shared("mnist");
    // The md5s LeCun's files are known by, of the uncompressed IDX files.
    for (file, md5) in [
        ("train-images-idx3-ubyte.gz", "6bbc9ace898e44ae57da46a324031adb"),
        ("train-labels-idx1-ubyte.gz", "a25bea736e30d166cdddb491f175f624"),
        ("t10k-images-idx3-ubyte.gz", "2646ac647ad5339dbf082846283269ea"),
        ("t10k-labels-idx1-ubyte.gz", "27ae3e4e09519cfbb04c329615203637"),
    ] {
        assert_eq!(hex(&read_maybe_gz(&dir.join(file)).unwrap()), md5, "{file}");
    }
    let spec: DataSpec = format!("mnist:{}", dir.display()).parse().unwrap();
    let train = spec.load(Split::Train, None).unwrap();
    let test = spec.load(Split::Test, None).unwrap();
    assert_eq!((train.len(), test.len(), train.shape), (60_000, 10_000, [1, 28, 28]));
    assert_eq!(train.images.len(), 60_000 * 784);
    // Digit counts of the MNIST training set, as published.
    assert_eq!(counts(&train.labels, 10), vec![5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
    assert_eq!(test.labels[..5], [7, 2, 1, 0, 4]);
}

#[test]
fn fashion_mnist_has_ten_balanced_classes() {
    let spec: DataSpec = format!("fashion-mnist:{}", shared("fashion-mnist").display()).parse().unwrap();
    let train = spec.load(Split::Train, None).unwrap();
    let test = spec.load(Split::Test, None).unwrap();
    assert_eq!((train.len(), test.len()), (60_000, 10_000));
    assert_eq!(counts(&train.labels, 10), vec![6000; 10]);
    assert_eq!(counts(&test.labels, 10), vec![1000; 10]);
    assert_eq!(train.classes[9], "Ankle boot");
}

#[test]
fn cifar10_jpeg_archive_test_split() {
    let spec: DataSpec = format!("folder:{}", shared("cifar10/cifar10-jpg.tar.gz").display()).parse().unwrap();
    let test = spec.load(Split::Test, None).unwrap();
    assert_eq!((test.len(), test.shape), (10_000, [3, 32, 32]));
    assert_eq!(counts(&test.labels, 10), vec![1000; 10]);
    assert_eq!(test.classes, convkit::data::cifar_bin::classes(), "sorted folder names give the standard label order");
    assert!(test.skipped.is_empty());
    // Per-channel means near the published CIFAR-10 figures (0.49, 0.48, 0.45); JPEG shifts them slightly.
    for (c, want) in [0.4914, 0.4822, 0.4465].iter().enumerate() {
        let mut s = 0u64;
        for i in 0..test.len() {
            s += test.image(i)[c * 1024..(c + 1) * 1024].iter().map(|&v| v as u64).sum::<u64>();
        }
        let m = s as f64 / (test.len() * 1024) as f64 / 255.0;
        assert!((m - want).abs() < 0.01, "channel {c} mean {m}");
    }
}

#[test]
fn ants_and_bees_mixed_sizes_resized_gif_included() {
    let spec: DataSpec = format!("folder:{}", shared("hymenoptera/hymenoptera-256.tar.gz").display()).parse().unwrap();
    // Images of many sizes: without an input size that is a clear error, with one they are resized and cropped.
    assert!(spec.load(Split::Train, None).unwrap_err().to_string().contains("give an input size"));
    let train = spec.load(Split::Train, Some([64, 64])).unwrap();
    assert_eq!(train.classes, vec!["ants", "bees"]);
    // train/ants/imageNotFound.gif is a valid GIF (a placeholder picture): decoded, not skipped.
    assert!(train.skipped.is_empty(), "{:?}", train.skipped);
    assert_eq!((train.len(), train.shape), (124 + 121, [3, 64, 64]));
    // The test split of this set is called val.
    let val = spec.load(Split::Test, Some([64, 64])).unwrap();
    assert_eq!(counts(&val.labels, 2), vec![70, 83]);
}
