//! The training loop's callbacks end to end on real MNIST: early stopping stops and puts the best weights back;
//! the divergence guard stops an absurd learning rate with a message naming the step and leaves `best` finite;
//! a caller's own callback sees every hook.

use convkit::tensor::Tensor;
use convkit::train::checkpoint::{self, Checkpoint};
use convkit::train::{train, Callback, Callbacks, EpochLog, TestSet, TrainConfig, TrainOptions, TrainReport, Trainer};
use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

fn recipe(out: &Path, epochs: usize, extra: &str) -> TrainConfig {
    let mut c: TrainConfig = toml::from_str(&format!(
        "model = 'lenet5'\ndata = 'mnist:../shared/data/mnist'\nepochs = {epochs}\nbatch_size = 64\nval = 1000\nlimit = 1500\n{extra}"
    ))
    .unwrap();
    c.out = Some(out.to_path_buf());
    c
}

type Weights = Vec<(String, Tensor<f32>)>;

/// Records the model's weights after every epoch's callbacks and at the end of training.
#[derive(Default)]
struct Spy {
    epochs: Rc<RefCell<Vec<(usize, Weights)>>>,
    at_end: Rc<RefCell<Option<Weights>>>,
}

impl Callback for Spy {
    fn on_epoch_end(&mut self, t: &mut Trainer, log: &EpochLog) -> convkit::Result<()> {
        self.epochs.borrow_mut().push((log.epoch, checkpoint::model_tensors(&mut t.model)));
        Ok(())
    }
    fn on_train_end(&mut self, t: &mut Trainer, _test: &TestSet, _r: &mut TrainReport) -> convkit::Result<()> {
        *self.at_end.borrow_mut() = Some(checkpoint::model_tensors(&mut t.model));
        Ok(())
    }
}

fn same(a: &Weights, b: &Weights) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|((n, x), (m, y))| n == m && x.data() == y.data())
}

#[test]
fn early_stopping_stops_and_restores_the_best_weights() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("run");
    // Validation loss must fall by more than 10 to count: nothing after epoch 1 does, so with patience 2 the run
    // stops after epoch 3 and puts epoch 1's weights back.
    let cfg = recipe(&run, 6, "lr = 0.01\n[early_stopping]\nmonitor = 'val_loss'\npatience = 2\nmin_delta = 10.0\n");
    let spy = Spy::default();
    let (epochs, at_end) = (spy.epochs.clone(), spy.at_end.clone());
    let mut callbacks = Callbacks::default();
    callbacks.push(spy);
    let rep = train(cfg, TrainOptions { callbacks, ..Default::default() }).unwrap();
    let stopped = rep.stopped_early.expect("the run stopped early");
    assert_eq!((stopped.after_epoch, stopped.best_epoch), (3, 1));
    let rows = std::fs::read_to_string(run.join("metrics.csv")).unwrap().lines().count();
    assert_eq!(rows, 1 + 3, "header and three epochs of the six");
    let epochs = epochs.borrow();
    let at_end = at_end.borrow();
    let at_end = at_end.as_ref().unwrap();
    assert!(same(at_end, &epochs[0].1), "the model ends with epoch 1's weights");
    assert!(same(&epochs[2].1, at_end), "restored when stopping, before later callbacks ran");
    // `last` keeps the weights the run really reached (with their optimizer state, for resuming).
    let last = Checkpoint::load(&run.join("checkpoints/last")).unwrap();
    assert_eq!(last.meta.epoch, 3);
    let last_w: Weights = at_end.iter().map(|(n, _)| (n.clone(), last.tensors[n].clone())).collect();
    assert!(!same(&last_w, at_end), "epoch 3's weights differ from epoch 1's");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["stopped_early"]["after_epoch"], 3);
}

#[test]
fn early_stopping_with_accuracy_restores_the_best_checkpoint() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("run");
    // A rate so small that accuracy creeps: patience 1 stops at the first epoch without a gain, if any.
    let cfg = recipe(&run, 4, "lr = 0.01\n[early_stopping]\npatience = 1\n");
    let spy = Spy::default();
    let at_end = spy.at_end.clone();
    let mut callbacks = Callbacks::default();
    callbacks.push(spy);
    let rep = train(cfg, TrainOptions { callbacks, ..Default::default() }).unwrap();
    // Whether or not it stopped, with the defaults the restored weights are checkpoint `best`'s.
    let best = Checkpoint::load(&run.join("checkpoints/best")).unwrap();
    let at_end = at_end.borrow();
    let at_end = at_end.as_ref().unwrap();
    if rep.stopped_early.is_some() {
        let best_w: Weights = at_end.iter().map(|(n, _)| (n.clone(), best.tensors[n].clone())).collect();
        assert!(same(&best_w, at_end));
    }
    assert_eq!(best.meta.epoch, rep.best_epoch);
}

#[test]
fn an_absurd_learning_rate_stops_with_the_step_named_and_best_stays_finite() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("run");
    train(recipe(&run, 1, "lr = 0.01\n"), TrainOptions::default()).unwrap();
    let best_before = std::fs::read(run.join("checkpoints/best/model.safetensors")).unwrap();
    // Resume for a second epoch at a rate no network survives.
    let cfg = TrainConfig::from_file(&run.join("config.toml")).unwrap();
    let cfg = cfg.with_overrides(&[("epochs".into(), 2.into()), ("lr".into(), 1e9.into())]).unwrap();
    let err = train(cfg, TrainOptions { resume: Some(run.clone()), ..Default::default() }).unwrap_err().to_string();
    assert!(err.contains("diverged") && err.contains("epoch 2"), "{err}");
    assert!(err.contains("step") || err.contains("weights of"), "names where: {err}");
    assert!(err.contains("intact"), "says the earlier checkpoints are kept: {err}");
    // `best` was not touched, and every checkpoint left holds finite numbers.
    assert_eq!(std::fs::read(run.join("checkpoints/best/model.safetensors")).unwrap(), best_before);
    for name in ["best", "last"] {
        let ck = Checkpoint::load(&run.join("checkpoints").join(name)).unwrap();
        assert_eq!(ck.meta.epoch, 1);
        assert!(ck.tensors.values().all(|t| t.data().iter().all(|v| v.is_finite())), "{name} is finite");
    }
    // The failed override never became the run's recipe: a plain resume picks up lr 0.01 again.
    let kept = TrainConfig::from_file(&run.join("config.toml")).unwrap();
    assert_eq!((kept.lr, kept.epochs), (0.01, 1));
    let cfg = kept.with_overrides(&[("epochs".into(), 2.into())]).unwrap();
    train(cfg, TrainOptions { resume: Some(run.clone()), ..Default::default() }).unwrap();
    let now = TrainConfig::from_file(&run.join("config.toml")).unwrap();
    assert_eq!((now.lr, now.epochs), (0.01, 2), "a resumed leg that finished an epoch commits its recipe");
    assert!(!run.join("config.pending.toml").exists());
}

#[test]
fn detect_anomaly_names_the_layer_where_the_first_nan_or_infinity_appeared() {
    let d = tempfile::tempdir().unwrap();
    let opts = || TrainOptions { detect_anomaly: true, ..Default::default() };
    // A rate of 30: the loss stays finite for a few steps, then an input gradient overflows.
    let err = train(recipe(&d.path().join("a"), 1, "lr = 30.0\n"), opts()).unwrap_err().to_string();
    assert!(err.contains("anomaly at epoch 1, step"), "{err}");
    let layer = ["conv1", "conv2", "fc1", "fc2", "fc3", "relu1", "relu2", "pool1", "pool2"]
        .iter()
        .any(|l| err.contains(&format!("'{l}'")));
    assert!(layer || err.contains("weight '"), "names a layer or weight: {err}");
    // A sane run is unaffected: same figures with and without the checks.
    let plain = train(recipe(&d.path().join("b"), 1, "lr = 0.01\n"), TrainOptions::default()).unwrap();
    let checked = train(recipe(&d.path().join("c"), 1, "lr = 0.01\n"), opts()).unwrap();
    assert_eq!(
        (plain.best_val_accuracy, plain.final_train_loss),
        (checked.best_val_accuracy, checked.final_train_loss)
    );
}

#[test]
fn divergence_in_the_first_epoch_says_no_checkpoint_was_written() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("run");
    let err = train(recipe(&run, 1, "lr = 1e9\n"), TrainOptions::default()).unwrap_err().to_string();
    assert!(err.contains("diverged") && err.contains("epoch 1"), "{err}");
    assert!(err.contains("No checkpoint had been written yet"), "{err}");
    assert!(!run.join("checkpoints/best").exists());
    // Nothing to resume, and the message says how to start again; starting again reuses the folder (no `run-2`).
    let cfg = TrainConfig::from_file(&run.join("config.toml")).unwrap();
    let err = train(cfg.clone(), TrainOptions { resume: Some(run.clone()), ..Default::default() }).unwrap_err();
    assert!(err.to_string().contains("nothing to resume") && err.to_string().contains("--out"), "{err}");
    let cfg = cfg.with_overrides(&[("lr".into(), 0.01.into())]).unwrap();
    train(cfg, TrainOptions::default()).unwrap();
    assert!(run.join("checkpoints/last/meta.json").exists() && !d.path().join("run-2").exists());
}

#[test]
fn the_monitor_samples_every_n_steps_and_the_run_is_diagnosed() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("run");
    // 1500 images at batch 64: 24 steps an epoch; sampled at steps 0, 10, 20, 30, 40 (the count before each).
    let opts = |resume| TrainOptions { monitor_every: Some(10), resume, ..Default::default() };
    let rep = train(recipe(&run, 2, "lr = 0.01\n"), opts(None)).unwrap();
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(run.join("monitor.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let steps: Vec<u64> = lines.iter().map(|l| l["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, [1, 11, 21, 31, 41], "steps taken after each sampled step");
    let first = &lines[0];
    assert_eq!(first["update_ratio"].as_object().unwrap().len(), 5, "every weight tensor of LeNet-5");
    let acts = first["activations"].as_array().unwrap();
    assert_eq!(acts.len(), 10, "every leaf layer, once: the sampled step's forward pass only");
    assert!(first["grad_norm"].as_f64().unwrap() > 0.0);
    assert!(!rep.diagnosis.is_empty());
    // Resuming keeps the samples up to the checkpoint and goes on from there.
    let cfg = TrainConfig::from_file(&run.join("config.toml")).unwrap();
    let cfg = cfg.with_overrides(&[("epochs".into(), 3.into())]).unwrap();
    train(cfg, opts(Some(run.clone()))).unwrap();
    let text = std::fs::read_to_string(run.join("monitor.jsonl")).unwrap();
    let steps: Vec<u64> =
        text.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, [1, 11, 21, 31, 41, 51, 61, 71]);
}

#[cfg(feature = "plot")]
#[test]
fn curves_png_is_redrawn_every_epoch() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("run");
    train(recipe(&run, 2, "lr = 0.01\n"), TrainOptions::default()).unwrap();
    let img = image::open(run.join("curves.png")).expect("a PNG");
    assert_eq!((img.width(), img.height()), (1500, 450));
    assert!(!run.join("curves.tmp.png").exists(), "swapped into place");
}

#[cfg(feature = "plot")]
#[test]
fn report_html_is_one_self_contained_page_with_every_section() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("run");
    let sanity = Some(convkit::check::sanity::SanityOptions { gradcheck: false, ..Default::default() });
    let opts = TrainOptions { monitor_every: Some(10), sanity, ..Default::default() };
    train(recipe(&run, 2, "lr = 0.01\n"), opts).unwrap();
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    for section in [
        "id=\"figures\"",
        "id=\"curves\"",
        "id=\"ratios\"",
        "id=\"activations\"",
        "id=\"histograms\"",
        "id=\"misclassified\"",
        "id=\"sanity\"",
        "id=\"diagnosis\"",
        "id=\"confusion\"",
        "id=\"model\"",
        "id=\"recipe\"",
    ] {
        assert!(html.contains(section), "missing {section}");
    }
    assert!(html.matches("<svg").count() >= 4, "inline charts");
    // Images are inline (data URIs): nothing is fetched from elsewhere.
    assert!(html.matches("src=").count() == html.matches("src=\"data:image/png;base64,").count());
    assert!(html.matches("<img").count() >= 10, "misclassified images: LeNet-5 after two short epochs errs often");
    assert!(!html.contains("href="));
    assert!(!run.join("report.html.tmp").exists());
    // `convkit report` rebuilds the same page from the run's files.
    std::fs::remove_file(run.join("report.html")).unwrap();
    convkit::report::write(&run).unwrap();
    assert_eq!(std::fs::read_to_string(run.join("report.html")).unwrap(), html);
}

/// `(epoch, value)` of one TensorBoard tag.
fn tb(run: &Path, tag: &str) -> Vec<(i64, f32)> {
    let all = convkit::tensorboard::scalars(&run.join("tb")).unwrap();
    all.into_iter().filter(|s| s.0 == tag).map(|s| (s.1, s.2)).collect()
}

/// metrics.csv's column `col` as `(epoch, value)`.
fn csv(run: &Path, col: &str) -> Vec<(i64, f64)> {
    let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let i = header.iter().position(|h| *h == col).unwrap();
    text.lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
        .map(|f| (f[0].parse().unwrap(), f[i].parse().unwrap()))
        .collect()
}

#[test]
fn tensorboard_files_read_back_equal_metrics_csv_also_after_resuming() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("run");
    let check = |epochs: usize| {
        for col in ["step", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"] {
            let (from_tb, from_csv) = (tb(&run, &format!("epoch/{col}")), csv(&run, col));
            assert_eq!(from_tb.len(), epochs, "{col}: one point an epoch");
            for ((e1, a), (e2, b)) in from_tb.iter().zip(&from_csv) {
                assert_eq!(e1, e2);
                // metrics.csv keeps seconds to two decimals, the rest to six digits.
                let tol = if col == "seconds" { 0.005 } else { 1e-5 * b.abs().max(1.0) };
                assert!((*a as f64 - b).abs() <= tol, "{col} epoch {e1}: {a} vs {b}");
            }
        }
        // One loss an optimizer step (24 an epoch), steps numbered from 1 without repeats.
        let steps: Vec<i64> = tb(&run, "step/loss").iter().map(|s| s.0).collect();
        assert_eq!(steps, (1..=24 * epochs as i64).collect::<Vec<_>>());
        assert_eq!(convkit::tensorboard::files(&run.join("tb")).len(), 1);
    };
    train(recipe(&run, 2, "lr = 0.01\n"), TrainOptions::default()).unwrap();
    check(2);
    let hist = convkit::tensorboard::read(&convkit::tensorboard::files(&run.join("tb"))[0]).unwrap();
    let weights = hist.iter().flat_map(|e| e.summary.iter().flat_map(|s| &s.value)).filter(|v| v.histo.is_some());
    assert_eq!(weights.count(), 2 * 5, "a histogram of each of LeNet-5's five weights every epoch");
    let cfg = TrainConfig::from_file(&run.join("config.toml")).unwrap();
    let cfg = cfg.with_overrides(&[("epochs".into(), 3.into())]).unwrap();
    train(cfg, TrainOptions { resume: Some(run.clone()), ..Default::default() }).unwrap();
    check(3);
}

#[test]
fn heavy_augmentation_mixing_and_label_smoothing_train_and_reproduce_exactly() {
    let d = tempfile::tempdir().unwrap();
    let extra = "lr = 0.01\nlabel_smoothing = 0.1\n[augment]\ncrop_pad = 2\nmixup = 0.4\ncutmix = 1.0\n\
                 erasing = { p = 0.5 }\naffine = { rotate = 10.0, translate = 0.05 }\nlens = { k = [-0.1, 0.1] }\n\
                 randaugment = { n = 1, magnitude = 5 }\ncolour_jitter = { brightness = 0.2, contrast = 0.2 }\n";
    let run = |name: &str| {
        let dir = d.path().join(name);
        let rep = train(recipe(&dir, 2, extra), TrainOptions::default()).unwrap();
        (rep, csv(&dir, "val_loss"), csv(&dir, "train_loss"))
    };
    let (rep, val_a, train_a) = run("a");
    // 500 training images, two epochs, heavy noise: well above chance (0.1) is enough.
    assert!(rep.best_val_accuracy > 0.3, "it still learns: {}", rep.best_val_accuracy);
    let (_, val_b, train_b) = run("b");
    // The images are augmented in parallel, each with its own generator: threads cannot change a number.
    assert_eq!((val_a, train_a), (val_b, train_b));
}

#[test]
fn time_to_target_is_the_first_epoch_at_the_target_and_can_end_the_run() {
    let d = tempfile::tempdir().unwrap();
    let val_acc = |run: &Path| -> Vec<f64> {
        let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
        let mut lines = text.lines();
        let col = lines.next().unwrap().split(',').position(|c| c == "val_acc").unwrap();
        lines.map(|l| l.split(',').nth(col).unwrap().parse().unwrap()).collect()
    };
    // Reached and stopped: the run ends at the first epoch whose validation accuracy is at least the target.
    let run = d.path().join("stop");
    let rep =
        train(recipe(&run, 4, "lr = 0.01\n[target]\naccuracy = 0.5\nstop = true\n"), TrainOptions::default()).unwrap();
    let t = rep.time_to_target.expect("a target was set");
    let r = t.reached.expect("LeNet-5 passes 50% on MNIST within 4 epochs");
    let accs = val_acc(&run);
    assert_eq!(accs.len(), r.epoch, "the run ended at the epoch that reached the target");
    assert!(accs[..r.epoch - 1].iter().all(|&a| a < 0.5) && accs[r.epoch - 1] >= 0.5, "{accs:?}");
    assert!(r.seconds > 0.0 && (r.val_accuracy - accs[r.epoch - 1]).abs() < 1e-6);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["time_to_target"]["reached"]["epoch"], r.epoch);
    // Out of reach: every epoch runs and the report says so.
    let run = d.path().join("never");
    let rep =
        train(recipe(&run, 2, "lr = 0.01\n[target]\naccuracy = 1.0\nstop = true\n"), TrainOptions::default()).unwrap();
    assert_eq!(rep.time_to_target.unwrap().reached, None);
    assert_eq!(val_acc(&run).len(), 2);
    // A percentage where a fraction belongs is refused, naming the fix.
    let err =
        train(recipe(&d.path().join("bad"), 1, "[target]\naccuracy = 94\n"), TrainOptions::default()).unwrap_err();
    assert!(err.to_string().contains("0.94 for 94%"), "{err}");
}
