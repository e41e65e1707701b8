//! IDX files (MNIST, Fashion-MNIST), raw or gzip-compressed.
#![no_main]
use libfuzzer_sys::fuzz_target;
mod common;

fuzz_target!(|data: &[u8]| {
    let p = common::scratch("train-images-idx3-ubyte.gz", data);
    if let Ok(bytes) = convkit::data::read_maybe_gz(&p) {
        let _ = convkit::data::idx::parse(&p, &bytes);
    }
});
