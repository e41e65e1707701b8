//! Recipes (TOML), with --set overrides and the checks `train` runs before reading data.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(cfg) = convkit::train::TrainConfig::from_toml(text) {
        let _ = cfg.validate();
        let _ = convkit::train::config::parse_set(text).and_then(|s| cfg.with_overrides(&[s]));
    }
});
