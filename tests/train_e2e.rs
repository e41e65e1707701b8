//! `convkit train` end to end on real MNIST: the loss falls and accuracy beats chance by far; a run killed with
//! SIGKILL mid-epoch resumes to a valid run folder; checkpoints are never half-written.

use convkit::data::preprocess::{Preprocess, PreprocessKind};
use convkit::optim::{Optimizer, OptimizerConfig};
use convkit::train::checkpoint::{self, Checkpoint, Meta};
use convkit::train::{train, TrainConfig, TrainOptions};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn recipe(out: &Path, epochs: usize, limit: Option<usize>) -> TrainConfig {
    let mut c: TrainConfig = toml::from_str(&format!(
        "model = 'lenet5'\ndata = 'mnist:../shared/data/mnist'\nepochs = {epochs}\nbatch_size = 64\nlr = 0.01\nweight_decay = 5e-4\nval = 2000\n"
    ))
    .unwrap();
    c.limit = limit;
    c.out = Some(out.to_path_buf());
    c
}

fn metrics_rows(run: &Path) -> Vec<Vec<f64>> {
    let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "epoch,step,train_loss,train_acc,val_loss,val_acc,lr,seconds,ema_val_loss,ema_val_acc"
    );
    // Empty cells (no Polyak average) read as -1.
    lines.map(|l| l.split(',').map(|v| if v.is_empty() { -1.0 } else { v.parse().unwrap() }).collect()).collect()
}

#[test]
fn small_run_learns() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("run");
    let rep = train(recipe(&run, 2, Some(4000)), TrainOptions::default()).unwrap();
    let rows = metrics_rows(&run);
    assert_eq!(rows.len(), 2);
    assert!(rows[1][2] < rows[0][2], "train loss falls: {rows:?}");
    assert!(rep.test_accuracy > 0.85, "10 classes, chance is 0.1; got {}", rep.test_accuracy);
    assert_eq!((rep.train_images, rep.val_images, rep.test_images), (4000, 2000, 10000));
    // Training time covers both epochs (metrics' seconds are per epoch), not the data loading or the test set.
    let epochs = rows[0][7] + rows[1][7];
    assert!(rep.train_seconds >= epochs && rep.train_seconds < rep.wall_seconds, "{epochs} {rep:?}");
    // The run folder reproduces itself: config.toml parses back to the recipe that ran.
    let cfg = TrainConfig::from_file(&run.join("config.toml")).unwrap();
    assert_eq!(cfg, recipe(&run, 2, Some(4000)));
    assert!(run.join("report.json").exists());
    // `convkit eval` on the run agrees with the report; its last line is JSON.
    let bin = env!("CARGO_BIN_EXE_convkit");
    let out = Command::new(bin).args(["eval", "--json", "--run"]).arg(&run).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let v: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert!((v["accuracy"].as_f64().unwrap() - rep.test_accuracy).abs() < 1e-9);
    assert_eq!(v["confusion"].as_array().unwrap().len(), 10);
    // Test-time mirror averaging is wired through: a different figure (this model never saw mirrored digits, so
    // the mirror's softmax raises the loss), still far above chance.
    let out = Command::new(bin).args(["eval", "--json", "--tta", "flip", "--run"]).arg(&run).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let f: serde_json::Value =
        serde_json::from_str(String::from_utf8(out.stdout).unwrap().lines().last().unwrap()).unwrap();
    assert_eq!(f["tta"], "flip");
    assert!(f["loss"].as_f64().unwrap() > v["loss"].as_f64().unwrap() + 1e-3, "{f} vs {v}");
    assert!(f["accuracy"].as_f64().unwrap() > 0.5);
    // Data of another kind is refused, naming what is wrong: other classes (Fashion-MNIST's names), other shapes.
    for (data, says) in [
        ("fashion-mnist:../shared/data/fashion-mnist", "not trained on"),
        ("folder:../shared/data/cifar10/cifar10-jpg.tar.gz", "images but lenet5 was trained on"),
    ] {
        let out = Command::new(bin).args(["eval", "--data", data, "--run"]).arg(&run).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(says), "{data}: {err}");
    }
    // 10-crop and multi-scale averaging run too (shifts and zooms of unaugmented digits: above chance, different).
    for tta in ["10crop", "multiscale"] {
        let out = Command::new(bin).args(["eval", "--json", "--tta", tta, "--run"]).arg(&run).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let t: serde_json::Value =
            serde_json::from_str(String::from_utf8(out.stdout).unwrap().lines().last().unwrap()).unwrap();
        assert_eq!(t["tta"], tta);
        assert!(t["accuracy"].as_f64().unwrap() > 0.5 && t["loss"] != v["loss"], "{tta}: {t}");
    }
    // `convkit predict` on PNG files written from test images: the top class is usually right.
    let spec: convkit::data::DataSpec = "mnist:../shared/data/mnist".parse().unwrap();
    let test = spec.load(convkit::data::Split::Test, None).unwrap();
    let mut files = Vec::new();
    for i in 0..20 {
        let p = d.path().join(format!("digit{i}.png"));
        image::GrayImage::from_raw(28, 28, test.image(i).to_vec()).unwrap().save(&p).unwrap();
        files.push(p);
    }
    let ck = Checkpoint::load(&run.join("checkpoints/best")).unwrap();
    let preds = convkit::predict::predict(&ck, &files, 5, convkit::evaluate::TestViews::Single).unwrap();
    let right = preds.iter().zip(&test.labels).filter(|(p, &l)| p.top[0].0 == l.to_string()).count();
    assert!(right >= 16, "{right}/20 right");
    assert!(preds.iter().all(|p| p.top.len() == 5 && (p.top.iter().map(|t| t.1).sum::<f64>() <= 1.0 + 1e-9)));
    let out = Command::new(bin).args(["predict", "--run"]).arg(&run).arg(&files[0]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains('%'));
    let flip = convkit::predict::predict(&ck, &files[..1], 5, convkit::evaluate::TestViews::Flip).unwrap();
    assert_ne!(flip[0].top, preds[0].top, "the mirror's softmax is averaged in");
    // Resuming into another folder is refused, not silently ignored; absurd bench sizes are errors, not panics.
    let other = d.path().join("elsewhere");
    let out = Command::new(bin).args(["train", "--resume"]).arg(&run).arg("--out").arg(&other).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("copy the folder"));
    for args in [["--batch", "0"], ["--batch", "1000000000"]] {
        let out = Command::new(bin)
            .args(["bench", "--net", "small", "--steps", "1", "--runs", "1"])
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && (err.contains("at least 1") || err.contains("at most about")),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    // `convkit augment`: a grid PNG of 2 rows x (original + 3 draws).
    let grid = d.path().join("grid.png");
    let out = Command::new(bin)
        .args(["augment", "--model", "lenet5", "--data", "mnist:../shared/data/mnist", "--n", "2", "--draws", "3"])
        .args(["--set", "augment.crop_pad=3", "--out"])
        .arg(&grid)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(image::open(&grid).unwrap().width(), 4 * (84 + 4) + 12);
}

#[test]
fn eval_finds_the_runs_data_from_another_folder() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("run");
    train(recipe(&run, 1, Some(500)), TrainOptions::default()).unwrap();
    // The recipe names ../shared/data/mnist, relative to this repository; evaluate from elsewhere.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_convkit"))
        .args(["eval", "--json", "--run"])
        .arg(&run)
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rep: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rep["count"], 10_000);
}

#[test]
fn sigkill_mid_epoch_then_resume() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("run");
    let cfg_path = d.path().join("recipe.toml");
    std::fs::write(&cfg_path, recipe(&run, 3, None).to_toml()).unwrap();
    let bin = env!("CARGO_BIN_EXE_convkit");
    let mut child = Command::new(bin)
        .args(["train", "--config"])
        .arg(&cfg_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the first checkpoint, then kill in the middle of the next epoch.
    let t = Instant::now();
    while !run.join("checkpoints/last/meta.json").exists() {
        assert!(t.elapsed() < Duration::from_secs(300), "no checkpoint after 5 minutes");
        assert!(child.try_wait().unwrap().is_none(), "training exited early");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(700));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let ck = Checkpoint::load(&run.join("checkpoints/last")).expect("the last checkpoint is whole after SIGKILL");
    assert!(ck.meta.epoch >= 1 && ck.meta.epoch < 3, "killed after epoch {}", ck.meta.epoch);
    ck.model().expect("its weights load into the model");
    let before = metrics_rows(&run);

    let status = Command::new(bin)
        .args(["train", "--resume"])
        .arg(&run)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let rows = metrics_rows(&run);
    assert_eq!(rows.iter().map(|r| r[0] as usize).collect::<Vec<_>>(), vec![1, 2, 3], "each epoch once");
    assert_eq!(rows[..ck.meta.epoch], before[..ck.meta.epoch], "finished epochs are kept as they were");
    assert!(rows[2][1] > rows[0][1], "steps keep counting across the resume");
    assert_eq!(Checkpoint::load(&run.join("checkpoints/last")).unwrap().meta.epoch, 3);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).unwrap()).unwrap();
    assert!(report["test_accuracy"].as_f64().unwrap() > 0.95);
}

#[test]
fn resuming_reproduces_an_uninterrupted_run_exactly() {
    // Plain momentum; then Nesterov with state-carrying extras (plateau memory, Polyak average, L1, clipping); then
    // Lookahead with per-epoch augmentation.
    let extras = |c: &mut TrainConfig| {
        c.optimizer = OptimizerConfig::named("nesterov").unwrap();
        c.schedule = "plateau:patience=0,factor=0.5,threshold=0.5".parse().unwrap();
        c.ema_decay = Some(0.99);
        c.l1 = 1e-5;
        c.clip_norm = Some(2.0);
    };
    // Lookahead (slow weights from epoch 2, airbench's falling step), alternating flips, reflect-padded crops.
    let lookahead = |c: &mut TrainConfig| {
        c.lookahead = Some(toml::from_str("k = 3\nalpha = 0.5\nramp = 3.0\nstart_epoch = 2").unwrap());
        c.augment = toml::from_str("hflip_alternate = true\ncrop_pad = 2\ncrop_border = 'reflect'").unwrap();
    };
    for variant in 0..3 {
        let d = tempfile::tempdir().unwrap();
        let mk = |out: &Path, epochs| {
            let mut c = recipe(out, epochs, Some(1500));
            match variant {
                1 => extras(&mut c),
                2 => lookahead(&mut c),
                _ => {}
            }
            c
        };
        let straight = d.path().join("straight");
        train(mk(&straight, 3), TrainOptions::default()).unwrap();
        let split = d.path().join("split");
        train(mk(&split, 1), TrainOptions::default()).unwrap();
        // Continue the one-epoch run to three epochs (as `convkit train --resume DIR --epochs 3` does).
        let cfg = TrainConfig { epochs: 3, ..TrainConfig::from_file(&split.join("config.toml")).unwrap() };
        train(cfg, TrainOptions { resume: Some(split.clone()), ..Default::default() }).unwrap();
        let (a, b) = (metrics_rows(&straight), metrics_rows(&split));
        assert_eq!(a.len(), 3);
        for (ra, rb) in a.iter().zip(&b) {
            // Every column but the wall-clock seconds is identical: same batches, same optimizer state.
            assert_eq!(ra[..7], rb[..7], "variant {variant}, epoch {}", ra[0]);
            assert_eq!(ra[8..], rb[8..], "variant {variant}, epoch {}", ra[0]);
        }
        if variant == 1 {
            // The plateau rule fired (threshold 0.5 cannot be met), and the average was evaluated.
            assert!(a[2][6] < a[0][6] * 0.6, "lr halved: {a:?}");
            assert!(a.iter().all(|r| r[9] > 0.0) && a[2][9] > 0.5, "Polyak accuracy recorded: {a:?}");
        }
        let w = |run: &Path, ck: &str| Checkpoint::load(&run.join("checkpoints").join(ck)).unwrap().tensors;
        let same = |ck| {
            w(&straight, ck)
                .iter()
                .zip(w(&split, ck).iter())
                .all(|((n1, t1), (n2, t2))| n1 == n2 && t1.data() == t2.data())
        };
        assert!(same("last"));
        if variant == 1 {
            assert!(same("ema"));
        }
    }
}

#[test]
fn an_interrupted_checkpoint_swap_falls_back_to_the_previous_one() {
    let d = tempfile::tempdir().unwrap();
    let mut model = convkit::models::build::<f32>("lenet5", None, 0).unwrap();
    let opt = Optimizer::<f32>::new(&OptimizerConfig::default(), 0.1, 0.0).unwrap();
    let prep = Preprocess { kind: PreprocessKind::None, shape: [1, 28, 28], mean: vec![], std: vec![], matrix: vec![] };
    let mut meta = Meta {
        model: "lenet5".into(),
        classes: (0..10).map(|i| i.to_string()).collect(),
        input: [1, 28, 28],
        preprocess: PreprocessKind::None,
        epoch: 1,
        step: 10,
        val_accuracy: 0.5,
        best_val_accuracy: 0.5,
        optimizer: "momentum".into(),
        optimizer_t: 0,
        plateau: None,
        data: "mnist:x".into(),
        data_dir: None,
        seed: 0,
    };
    checkpoint::save(d.path(), "last", &mut model, &opt.state(), &prep, &meta).unwrap();
    meta.epoch = 2;
    checkpoint::save(d.path(), "last", &mut model, &opt.state(), &prep, &meta).unwrap();
    assert_eq!(Checkpoint::load(&d.path().join("last")).unwrap().meta.epoch, 2);
    // A crash between the two renames leaves last.prev and a half-written last.tmp: load uses last.prev.
    std::fs::rename(d.path().join("last"), d.path().join("last.prev")).unwrap();
    std::fs::create_dir(d.path().join("last.tmp")).unwrap();
    std::fs::write(d.path().join("last.tmp/model.safetensors"), b"partial").unwrap();
    assert_eq!(Checkpoint::load(&d.path().join("last")).unwrap().meta.epoch, 2);
    // A corrupt weights file is a clear error naming it: its checksum no longer matches.
    std::fs::write(d.path().join("last.prev/model.safetensors"), b"not safetensors").unwrap();
    let e = Checkpoint::load(&d.path().join("last")).err().unwrap().to_string();
    assert!(e.contains("model.safetensors") && e.contains("damaged checkpoint: checksum"), "{e}");
    // Without checksums (a format-1 checkpoint) the parser still names the file.
    std::fs::remove_file(d.path().join("last.prev/checksums.json")).unwrap();
    let e = Checkpoint::load(&d.path().join("last")).err().unwrap().to_string();
    assert!(e.contains("model.safetensors") && e.contains("not a valid safetensors"), "{e}");
}

/// An image folder `root/<split>/<class>/<n>.png` of small random RGB images.
fn image_folder(root: &Path, split: &str, classes: &[&str]) {
    for (k, class) in classes.iter().enumerate() {
        let dir = root.join(split).join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..6 {
            let img = image::RgbImage::from_fn(32, 32, |x, y| {
                image::Rgb([(x * 8) as u8, (y * 8) as u8, (k * 60 + i * 9) as u8])
            });
            img.save(dir.join(format!("{i}.png"))).unwrap();
        }
    }
}

#[test]
fn a_test_split_with_a_class_the_training_split_lacks_stops_before_training() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("data");
    image_folder(&root, "train", &["ant", "bee", "cat"]);
    image_folder(&root, "test", &["bee", "dog"]);
    let toml = format!("model = 'small'\ndata = 'folder:{}'\nepochs = 1\nbatch_size = 4\nval = 3\n", root.display());
    let mut cfg: TrainConfig = toml::from_str(&toml).unwrap();
    cfg.out = Some(d.path().join("run"));
    let e = train(cfg.clone(), TrainOptions::default()).unwrap_err().to_string();
    assert!(e.contains("dog") && e.contains("test split"), "{e}");
    assert!(!d.path().join("run/metrics.csv").exists(), "refused before training");
    // A test split that only lacks a class is scored by class name: bee stays bee.
    std::fs::remove_dir_all(root.join("test/dog")).unwrap();
    let rep = train(cfg, TrainOptions::default()).unwrap();
    assert_eq!(rep.test_images, 6);
}

#[test]
fn a_one_class_dataset_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("data");
    image_folder(&root, "train", &["only"]);
    image_folder(&root, "test", &["only"]);
    let toml = format!("model = 'small'\ndata = 'folder:{}'\nepochs = 1\nbatch_size = 4\nval = 2\n", root.display());
    let e = train(toml::from_str(&toml).unwrap(), TrainOptions::default()).unwrap_err().to_string();
    assert!(e.contains("at least two"), "{e}");
}
