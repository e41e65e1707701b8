//! Image folders packed as .tar (and the images inside them, decoded and resized).
#![no_main]
use libfuzzer_sys::fuzz_target;
mod common;

fuzz_target!(|data: &[u8]| {
    let p = common::scratch("folder.tar", data);
    for split in [convkit::data::Split::Train, convkit::data::Split::Test] {
        let _ = convkit::data::folder::load(&p, split, Some([16, 16]));
    }
});
