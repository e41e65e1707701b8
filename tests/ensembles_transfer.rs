//! Ensembles and transfer learning end to end on real MNIST and Fashion-MNIST (small subsets, so it is quick):
//! the ensemble averages its members' probabilities; an SGDR run leaves one snapshot per cycle; fine-tuning
//! with everything but the head frozen changes the head only, and the frozen features transfer.

use convkit::ensemble;
use convkit::evaluate::{self, EvalSplit, TestViews};
use convkit::train::checkpoint::{self, Checkpoint};
use convkit::train::{train, TrainConfig, TrainOptions};
use std::path::Path;
use std::sync::Arc;

/// A quick LeNet-5 recipe; `extra` starts with `epochs = N`.
fn recipe(out: &Path, data: &str, extra: &str) -> TrainConfig {
    let mut c: TrainConfig = toml::from_str(&format!(
        "model = 'lenet5'\ndata = '{data}'\nbatch_size = 64\nval = 500\nlimit = 1500\nlr = 0.05\n{extra}"
    ))
    .unwrap();
    c.out = Some(out.to_path_buf());
    c
}

fn mnist(out: &Path, extra: &str) -> TrainConfig {
    recipe(out, "mnist:../shared/data/mnist", extra)
}

#[test]
fn an_ensemble_averages_its_members_probabilities() {
    let d = tempfile::tempdir().unwrap();
    let runs: Vec<_> = (0..2).map(|s| d.path().join(format!("seed{s}"))).collect();
    for (s, r) in runs.iter().enumerate() {
        train(mnist(r, &format!("epochs = 2\nseed = {s}")), TrainOptions::default()).unwrap();
    }
    let members: Vec<Checkpoint> =
        runs.iter().map(|r| Checkpoint::load(&r.join("checkpoints/best")).unwrap()).collect();
    let rep = ensemble::evaluate(&members, None, EvalSplit::Test, TestViews::Single).unwrap();
    // By hand: each member's probabilities, averaged.
    let (ds, _) = evaluate::load_for(&members[0], None, EvalSplit::Test).unwrap();
    let idx = Arc::new((0..ds.len()).collect::<Vec<_>>());
    let mut sum = vec![0f64; ds.len() * 10];
    for (ck, m) in members.iter().zip(&rep.members) {
        let mut model = ck.model().unwrap();
        let prep = Arc::new(ck.preprocess());
        let (p, labels) = evaluate::probabilities(&mut model, &ds, idx.clone(), &prep, 100, TestViews::Single, 0);
        assert!((evaluate::report(&p, &labels, &ds.classes).accuracy - m.accuracy).abs() < 1e-12);
        sum.iter_mut().zip(&p).for_each(|(s, v)| *s += v / 2.0);
    }
    let want = evaluate::report(&sum, &ds.labels.iter().map(|&l| l as usize).collect::<Vec<_>>(), &ds.classes);
    assert_eq!(rep.ensemble.confusion, want.confusion);
    assert!((rep.ensemble.loss - want.loss).abs() < 1e-9);
    let best = rep.members.iter().map(|m| m.accuracy).fold(0.0, f64::max);
    assert!((rep.gain_over_best - 100.0 * (rep.ensemble.accuracy - best)).abs() < 1e-9);
    assert_eq!(rep.ensemble.count, 10_000);

    // A member with other classes is refused, naming both.
    let fashion = d.path().join("fashion");
    train(recipe(&fashion, "fashion-mnist:../shared/data/fashion-mnist", "epochs = 1"), TrainOptions::default())
        .unwrap();
    let other = Checkpoint::load(&fashion.join("checkpoints/best")).unwrap();
    let both = [members.into_iter().next().unwrap(), other];
    let err = ensemble::evaluate(&both, None, EvalSplit::Test, TestViews::Single).unwrap_err().to_string();
    assert!(err.contains("must share their classes"), "{err}");
}

#[test]
fn an_sgdr_run_leaves_a_snapshot_per_cycle() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("sgdr");
    let cfg = mnist(&run, "epochs = 4\n[schedule]\nkind = 'sgdr'\nperiod = 2.0\n");
    train(cfg, TrainOptions::default()).unwrap();
    let all = ensemble::snapshots(&run, None).unwrap();
    let names: Vec<_> = all.iter().map(|p| p.file_name().unwrap().to_string_lossy().to_string()).collect();
    assert_eq!(names, ["snapshot-002", "snapshot-004"]);
    assert_eq!(Checkpoint::load(&all[1]).unwrap().meta.epoch, 4);
    assert_eq!(ensemble::snapshots(&run, Some(1)).unwrap(), all[1..]);
    // The last snapshot is the run's final weights.
    let last = Checkpoint::load(&run.join("checkpoints/last")).unwrap();
    let snap = Checkpoint::load(&all[1]).unwrap();
    assert!(snap.tensors.iter().all(|(n, t)| last.tensors[n].data() == t.data()));
    let err = ensemble::snapshots(d.path(), None).unwrap_err().to_string();
    assert!(err.contains("cannot read") || err.contains("no snapshot"), "{err}");
}

#[test]
fn fine_tuning_with_the_backbone_frozen_changes_only_the_head() {
    let d = tempfile::tempdir().unwrap();
    let digits = d.path().join("digits");
    train(mnist(&digits, "epochs = 2"), TrainOptions::default()).unwrap();
    let from = digits.join("checkpoints/best");
    let pre = Checkpoint::load(&from).unwrap();

    let fashion = d.path().join("fashion");
    let extra = format!("epochs = 2\n[transfer]\nfrom = '{}'\nfreeze = 'all'\n", from.display());
    let rep =
        train(recipe(&fashion, "fashion-mnist:../shared/data/fashion-mnist", &extra), TrainOptions::default()).unwrap();
    let post = Checkpoint::load(&fashion.join("checkpoints/last")).unwrap();
    let mut model = post.model().unwrap();
    let mut head_changed = false;
    for (name, t) in checkpoint::model_tensors(&mut model) {
        let before = &pre.tensors[&name];
        if name.starts_with("fc3") {
            head_changed |= before.data() != t.data();
        } else {
            assert_eq!(before.data(), t.data(), "{name} is frozen");
        }
    }
    assert!(head_changed);
    // Digit features carry over to clothes: far above chance (10%) with only the last layer trained.
    assert!(rep.test_accuracy > 0.5, "{}", rep.test_accuracy);
    // The digits' preprocessing came with the weights.
    assert_eq!(post.tensors["preprocess.mean"].data(), pre.tensors["preprocess.mean"].data());
}
