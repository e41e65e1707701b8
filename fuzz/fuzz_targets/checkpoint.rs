//! Checkpoint folders: model.safetensors, checked against checksums.json and meta.json, then loaded into a model.
#![no_main]
use libfuzzer_sys::fuzz_target;
mod common;

fuzz_target!(|data: &[u8]| {
    let p = common::scratch("model.safetensors", data);
    if let Ok(t) = convkit::train::checkpoint::read_safetensors(&p) {
        let mut m = convkit::models::build::<f32>("lenet5", Some(10), 0).unwrap();
        let _ = convkit::train::checkpoint::load_into(&mut m, &t, &p);
    }
    // The same bytes as a whole checkpoint folder's weights.
    let dir = p.parent().unwrap().join("ck");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("model.safetensors"), data).unwrap();
    std::fs::write(dir.join("optimizer.safetensors"), data).unwrap();
    let meta = String::from_utf8_lossy(data);
    std::fs::write(dir.join("meta.json"), meta.as_bytes()).unwrap();
    let _ = convkit::train::checkpoint::Checkpoint::load(&dir).and_then(|ck| ck.model().map(|_| ()));
});
