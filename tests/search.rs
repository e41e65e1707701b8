//! `convkit search` on real Fashion-MNIST with SQLite: a 16-trial random search over the learning rate and weight
//! decay (2 epochs on 5,000 images each) spreads its trials widely; killed with SIGKILL part-way and run again, it
//! finishes the budget without losing or repeating a finished trial. Also `show`, `best`, `refine` on the result.

use convkit::search::storage::{Status, Store, TrialRow};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_convkit");

fn search(dir: &Path, lease: &str) -> Command {
    let mut c = Command::new(BIN);
    c.args(["--threads", "2", "search", "--config", "recipes/lenet5-fashion-mnist.toml"]);
    c.args(["--space", "recipes/lenet5-fashion-mnist-space.toml", "--trials", "16", "--study", "fm"]);
    c.args(["--set", "epochs=2", "--set", "limit=5000", "--lease", lease]);
    c.arg("--storage").arg(format!("sqlite:{}", dir.join("studies.db").display()));
    c.arg("--out").arg(dir.join("runs"));
    c
}

fn trials(dir: &Path) -> Vec<TrialRow> {
    Store::open(&format!("sqlite:{}", dir.join("studies.db").display())).unwrap().trials("fm").unwrap()
}

#[test]
fn killed_search_resumes_without_losing_or_repeating_a_trial() {
    let d = tempfile::tempdir().unwrap();
    let mut child = search(d.path(), "3").stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    // SIGKILL once four trials are done: the fifth is then usually mid-training.
    let t0 = Instant::now();
    let finished = |t: &[TrialRow]| t.iter().filter(|t| t.status != Status::Running).count();
    while !d.path().join("studies.db").exists() || finished(&trials(d.path())) < 4 {
        assert!(t0.elapsed() < Duration::from_secs(300), "the search did not get through 4 trials");
        assert!(child.try_wait().unwrap().is_none(), "the search ended before it was killed");
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before: BTreeMap<i64, TrialRow> =
        trials(d.path()).into_iter().filter(|t| t.status != Status::Running).map(|t| (t.number, t)).collect();
    let interrupted: Vec<i64> =
        trials(d.path()).iter().filter(|t| t.status == Status::Running).map(|t| t.number).collect();

    let out = search(d.path(), "3").args(["--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let after = trials(d.path());
    let numbers: Vec<i64> = after.iter().map(|t| t.number).collect();
    assert_eq!(numbers, (0..16).collect::<Vec<_>>(), "every trial of the budget once");
    assert!(after.iter().all(|t| t.status != Status::Running && t.status != Status::Failed), "{after:#?}");
    for t in &after {
        // Every trial recorded its per-epoch validation curve: 2 epochs, or 1 when pruned at the first rung.
        let want = if t.status == Status::Pruned { 1 } else { 2 };
        assert_eq!(t.curve.len(), want, "trial {}", t.number);
        assert_eq!(t.epochs_done, Some(want as i64));
        match before.get(&t.number) {
            // Finished before the kill: not run again.
            Some(b) => {
                assert_eq!((t.finished, t.attempt, t.val_accuracy), (b.finished, 1, b.val_accuracy));
            }
            None if interrupted.contains(&t.number) => assert_eq!(t.attempt, 2, "the killed trial ran again"),
            None => assert_eq!(t.attempt, 1),
        }
    }
    // Learning rates from 1e-4 to 1: the search sees both ends of the lecture's loss curves.
    let accs: Vec<f64> = after.iter().filter_map(|t| t.val_accuracy).collect();
    let (worst, best) = accs.iter().fold((1.0f64, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
    assert!(best > 0.7 && best - worst > 0.2, "best {best} worst {worst}");
    // Successive halving stopped some hopeless trials after one epoch.
    assert!(after.iter().any(|t| t.status == Status::Pruned));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["trials"].as_array().unwrap().len(), 16);

    // The best recipe, the plots and a refined stage.
    let storage = format!("sqlite:{}", d.path().join("studies.db").display());
    let best = d.path().join("best.toml");
    let ok = |args: &[&str]| {
        let o = Command::new(BIN).args(args).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        o
    };
    ok(&["search", "best", "--study", "fm", "--storage", &storage, "--out", best.to_str().unwrap()]);
    let cfg = convkit::train::TrainConfig::from_file(&best).unwrap();
    let top = after.iter().max_by(|a, b| a.val_accuracy.partial_cmp(&b.val_accuracy).unwrap()).unwrap();
    assert_eq!(Some(cfg.lr), top.params["lr"].as_float());
    let plot = d.path().join("search.png");
    ok(&["search", "show", "--study", "fm", "--storage", &storage, "--plot", plot.to_str().unwrap()]);
    assert!(image::open(&plot).unwrap().width() > 500);
    let o = ok(&["search", "refine", "--study", "fm", "--storage", &storage, "--top", "4", "--set", "epochs=3"]);
    let space = convkit::search::space::Space::from_toml(
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
            .as_str(),
    )
    .unwrap();
    let (lo, hi) = space.get("lr").unwrap().bounds().unwrap();
    assert!(lo <= top.params["lr"].as_float().unwrap() && hi >= top.params["lr"].as_float().unwrap());
    assert!(hi / lo < 1e4, "narrower than the first stage's four decades: {lo} .. {hi}");
    let mut store = Store::open(&storage).unwrap();
    let fine = store.study("fm-fine").unwrap().unwrap();
    assert_eq!((fine.parent.as_str(), fine.trials), ("fm", 16));
    assert!(fine.recipe.contains("epochs = 3"));
}

#[test]
fn bad_spaces_and_missing_studies_are_clear_errors() {
    let d = tempfile::tempdir().unwrap();
    let space = d.path().join("space.toml");
    std::fs::write(&space, "learning_rate = \"loguniform(1e-4, 1e-1)\"").unwrap();
    let storage = format!("sqlite:{}", d.path().join("s.db").display());
    let o = Command::new(BIN)
        .args(["search", "--config", "recipes/lenet5-fashion-mnist.toml", "--space", space.to_str().unwrap()])
        .args(["--storage", &storage])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("learning_rate") && err.contains("lr"), "{err}");
    let o = Command::new(BIN).args(["search", "show", "--study", "nope", "--storage", &storage]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("no study 'nope'"), "{err}");
    std::fs::write(d.path().join("junk.db"), b"not a database at all, certainly not SQLite ....").unwrap();
    let junk = format!("sqlite:{}", d.path().join("junk.db").display());
    let o = Command::new(BIN).args(["search", "show", "--study", "x", "--storage", &junk]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("junk.db"), "{err}");
}
