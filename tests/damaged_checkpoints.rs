//! Damaged checkpoints (issue #17, item 4): a flipped bit or NaNs written into the weights are detected by every
//! reader (`eval`, `predict`, `--resume` all load through `Checkpoint::load`); `--resume` falls back from a damaged
//! `last` to the newest good checkpoint, and a damaged `best` does not block resuming from a good `last`.

use convkit::train::checkpoint::{read_safetensors, Checkpoint};
use convkit::train::{train, TrainConfig, TrainOptions};
use std::path::Path;

fn recipe(out: &Path, epochs: usize) -> TrainConfig {
    let mut c: TrainConfig = toml::from_str(&format!(
        "model = 'lenet5'\ndata = 'mnist:../shared/data/mnist'\nepochs = {epochs}\nbatch_size = 64\nval = 500\nlimit = 1000\nlr = 0.05\n"
    ))
    .unwrap();
    c.out = Some(out.to_path_buf());
    c
}

/// Flips one bit in the middle of a file.
fn flip_bit(p: &Path) {
    let mut b = std::fs::read(p).unwrap();
    let i = b.len() - 100;
    b[i] ^= 0x10;
    std::fs::write(p, b).unwrap();
}

#[test]
fn flipped_bits_and_nans_are_reported_as_damage() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("run");
    train(recipe(&run, 1), TrainOptions::default()).unwrap();
    let last = run.join("checkpoints/last");
    assert!(Checkpoint::load(&last).is_ok());
    flip_bit(&last.join("model.safetensors"));
    let err = Checkpoint::load(&last).err().expect("a flipped bit is detected").to_string();
    assert!(err.contains("damaged checkpoint: checksum") && err.contains("model.safetensors"), "{err}");

    // NaNs in a checkpoint without checksums (format 1, or checksums removed): the finiteness check catches them.
    let best = run.join("checkpoints/best");
    std::fs::remove_file(best.join("checksums.json")).unwrap();
    let p = best.join("model.safetensors");
    assert!(read_safetensors(&p).unwrap()["conv1.weight"].data()[3].is_finite());
    let raw = std::fs::read(&p).unwrap();
    // Write a NaN over the fourth value of conv1.weight, in place.
    let st = safetensors::SafeTensors::deserialize(&raw).unwrap();
    let view = st.tensor("conv1.weight").unwrap();
    let start = view.data().as_ptr() as usize - raw.as_ptr() as usize + 3 * 4;
    let mut patched = raw.clone();
    patched[start..start + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&p, patched).unwrap();
    let err = Checkpoint::load(&best).err().expect("NaN weights are detected").to_string();
    assert!(err.contains("tensor 'conv1.weight' holds 1 NaN or infinite values"), "{err}");
}

#[test]
fn resume_falls_back_from_a_damaged_last_and_ignores_a_damaged_best() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("run");
    train(recipe(&run, 2), TrainOptions::default()).unwrap();
    let ck = run.join("checkpoints");
    // A damaged best does not block resuming from last.
    flip_bit(&ck.join("best/model.safetensors"));
    let mut cfg = recipe(&run, 3);
    cfg.out = None;
    let rep = train(cfg.clone(), TrainOptions { resume: Some(run.clone()), ..Default::default() }).unwrap();
    assert_eq!(Checkpoint::load(&ck.join("last")).unwrap().meta.epoch, 3);
    assert!(rep.test_accuracy > 0.5);
    // A damaged last: the run goes on from the newest good checkpoint (best, rewritten when val improved).
    flip_bit(&ck.join("last/model.safetensors"));
    let best_epoch = Checkpoint::load(&ck.join("best")).map(|c| c.meta.epoch);
    let mut cfg4 = recipe(&run, 4);
    cfg4.out = None;
    match best_epoch {
        Ok(e) => {
            eprintln!("falling back to best, epoch {e}");
            train(cfg4, TrainOptions { resume: Some(run.clone()), ..Default::default() }).unwrap();
            let lines = std::fs::read_to_string(run.join("metrics.csv")).unwrap().lines().count();
            assert_eq!(lines, 1 + 4, "epochs 1..{e} kept, then up to 4");
            assert_eq!(Checkpoint::load(&ck.join("last")).unwrap().meta.epoch, 4);
        }
        // Best was not rewritten by the resumed epoch and is still damaged: nothing good to fall back to.
        Err(_) => {
            let err = train(cfg4, TrainOptions { resume: Some(run.clone()), ..Default::default() }).unwrap_err();
            assert!(err.to_string().contains("damaged checkpoint"), "{err}");
        }
    }
}
