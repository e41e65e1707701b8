//! CIFAR-10 binary batch files.
#![no_main]
use libfuzzer_sys::fuzz_target;
mod common;

fuzz_target!(|data: &[u8]| {
    let p = common::scratch("data_batch_1.bin", data);
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    let _ = convkit::data::cifar_bin::read_batch(&p, &mut images, &mut labels);
});
