//! `convkit ensemble`, `features` and `finetune`: the lecture's last two pieces of advice, model ensembles and
//! transfer learning.

use super::progress::spinner;
use anyhow::Result;
use convkit::evaluate::{EvalSplit, TestViews};
use convkit::loss::Loss;
use convkit::pretrained::Layout;
use convkit::train::checkpoint::Checkpoint;
use convkit::transfer::{self, features, linear_probe};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct EnsembleArgs {
    /// Run folders; each contributes its `best` checkpoint.
    #[arg(long, num_args = 1.., required_unless_present_any = ["checkpoints", "snapshots"])]
    runs: Vec<PathBuf>,
    /// Checkpoint folders, e.g. RUN/checkpoints/ema (Polyak-averaged weights) or RUN/checkpoints/last.
    #[arg(long, num_args = 1..)]
    checkpoints: Vec<PathBuf>,
    /// A run trained with an SGDR schedule: its snapshot-* checkpoints (one per cycle) are the members.
    #[arg(long)]
    snapshots: Option<PathBuf>,
    /// With --snapshots: only the last M snapshots (early ones are weaker).
    #[arg(long, requires = "snapshots")]
    last: Option<usize>,
    /// KIND:PATH; default: the data the first member was trained on.
    #[arg(long)]
    data: Option<String>,
    /// Which images: the test split (default), the first member's validation images, or the training split.
    #[arg(long, value_enum, default_value_t = EvalSplit::Test)]
    split: EvalSplit,
    /// Test-time augmentation for every member, as for `eval`.
    #[arg(long, value_enum, default_value_t = TestViews::Single)]
    tta: TestViews,
    /// Print one JSON object (members, ensemble, gains).
    #[arg(long)]
    json: bool,
}

pub fn ensemble(a: EnsembleArgs) -> Result<()> {
    let mut dirs: Vec<PathBuf> = a.runs.iter().map(|r| r.join("checkpoints").join("best")).collect();
    dirs.extend(a.checkpoints);
    if let Some(run) = &a.snapshots {
        dirs.extend(convkit::ensemble::snapshots(run, a.last)?);
    }
    let members: Vec<Checkpoint> = dirs.iter().map(|d| Checkpoint::load(d)).collect::<convkit::Result<_>>()?;
    let msg = format!("evaluating {} members", members.len());
    let rep = spinner(msg, || convkit::ensemble::evaluate(&members, a.data.as_deref(), a.split, a.tta))?;
    if a.json {
        println!("{}", serde_json::to_string(&rep)?);
    } else {
        print!("{rep}");
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct FeaturesArgs {
    /// Pretrained weights: a convkit checkpoint folder, or a safetensors file (with --model and --layout).
    #[arg(long)]
    from: PathBuf,
    /// The registered model the weights file fits (e.g. mobilenetv2_keras).
    #[arg(long)]
    model: Option<String>,
    /// The weights file's layout: torch (PyTorch / timm / convkit) or keras.
    #[arg(long, value_enum, default_value_t = Layout::Torch)]
    layout: Layout,
    /// KIND:PATH; the classifier trains on its training split and is scored on its test (or val) split.
    #[arg(long)]
    data: String,
    /// Only these classes, comma-separated (e.g. the five CIFAR-10 classes a transfer experiment targets).
    #[arg(long, value_delimiter = ',')]
    classes: Vec<String>,
    /// A seeded random subset of this many training images (little-data transfer).
    #[arg(long)]
    limit: Option<usize>,
    /// The top-level layer whose output is the feature vector (`pool`: the penultimate layer).
    #[arg(long, default_value = "pool")]
    at: String,
    /// The classifier on top: softmax regression or a multiclass SVM.
    #[arg(long, value_enum, default_value_t = Classifier::Softmax)]
    classifier: Classifier,
    /// L2 weight decay of the classifier, on standardised features; default: chosen from 1e-3 .. 100 by 5-fold
    /// cross-validation on the training features.
    #[arg(long)]
    l2: Option<f64>,
    /// Folder for the feature cache (features.safetensors) and probe.json.
    #[arg(long, default_value = "runs/features")]
    out: PathBuf,
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Classifier {
    Softmax,
    Svm,
}

pub fn features(a: FeaturesArgs) -> Result<()> {
    use convkit::data::{DataSpec, Split};
    let started = Instant::now();
    let spec: DataSpec = a.data.parse()?;
    let probe_model =
        spinner("loading the pretrained weights", || transfer::backbone(&a.from, a.model.as_deref(), a.layout, 2))?;
    let mut b = probe_model;
    let [_, h, w] = b.model.input;
    let key =
        format!("{} | {} | {} | at {} | {h}x{w} | {:?} | {:?}", b.source, b.model.name, spec, a.at, a.classes, a.limit);
    std::fs::create_dir_all(&a.out)?;
    let cache = a.out.join("features.safetensors");
    let (sets, classes, cached) = match features::load_cached(&cache, &["train", "test"], &key) {
        Some(f) => (f, class_names(&spec, [h, w], &a.classes)?, true),
        None => {
            let mut train = spec.load(Split::Train, Some([h, w]))?;
            let mut test = spec.load(Split::Test, Some([h, w]))?;
            if !a.classes.is_empty() {
                train = train.only_classes(&a.classes)?;
                test = test.only_classes(&a.classes)?;
            }
            if let Some(n) = a.limit.filter(|&n| n < train.len()) {
                let mut idx: Vec<usize> = (0..train.len()).collect();
                rand::seq::SliceRandom::shuffle(idx.as_mut_slice(), &mut convkit::init::rng(0));
                idx.truncate(n);
                idx.sort_unstable();
                train = train.subset(&idx);
            }
            test.relabel(&train.classes, &format!("the test split of {spec}"))?;
            let mut out = Vec::new();
            for (name, ds) in [("train", &train), ("test", &test)] {
                let pb = bar(ds.len() as u64, format!("{name} features at '{}'", a.at));
                out.push(features::extract(&mut b.model, ds, &b.prep, &a.at, 32, &mut |n| pb.set_position(n as u64))?);
                pb.finish_and_clear();
            }
            features::save(&cache, &[("train", &out[0]), ("test", &out[1])], &key)?;
            (out, train.classes.clone(), false)
        }
    };
    let extract_s = started.elapsed().as_secs_f64();
    let loss = match a.classifier {
        Classifier::Softmax => Loss::SoftmaxCrossEntropy,
        Classifier::Svm => Loss::MulticlassSvm,
    };
    let t = Instant::now();
    let base = linear_probe::ProbeConfig { loss, ..Default::default() };
    let (l2, cv) = match a.l2 {
        Some(v) => (v, vec![]),
        None => linear_probe::choose_l2(&sets[0], classes.len(), &base, 5)?,
    };
    for c in &cv {
        println!("  l2 {:<7} 5-fold held-out loss {:.4}, accuracy {:.2}%", c.l2, c.loss, 100.0 * c.accuracy);
    }
    let cfg = linear_probe::ProbeConfig { l2, ..base };
    let (probe, lb) = linear_probe::fit(&sets[0], classes.len(), &cfg)?;
    let fit_s = t.elapsed().as_secs_f64();
    let (train_acc, test_acc) = (probe.accuracy(&sets[0]), probe.accuracy(&sets[1]));
    let report = serde_json::json!({
        "from": b.source, "model": b.model.name, "data": spec.to_string(), "at": a.at, "dim": sets[0].dim,
        "classes": classes, "train_images": sets[0].len(), "test_images": sets[1].len(),
        "classifier": cfg, "cross_validation": cv, "lbfgs": lb, "train_accuracy": train_acc, "test_accuracy": test_acc,
        "features_cached": cached, "features_seconds": extract_s, "fit_seconds": fit_s,
    });
    std::fs::write(a.out.join("probe.json"), serde_json::to_string_pretty(&report)?)?;
    println!(
        "{}-d features at '{}' of {} ({}): {} train / {} test images, {:.1}s{}",
        sets[0].dim,
        a.at,
        b.model.name,
        b.source,
        sets[0].len(),
        sets[1].len(),
        extract_s,
        if cached { " (cached)" } else { "" }
    );
    println!(
        "linear probe ({:?}, l2 {}{}): {} L-BFGS iterations in {:.2}s; train accuracy {:.2}%, test accuracy {:.2}%",
        cfg.loss,
        cfg.l2,
        if cv.is_empty() { "" } else { ", chosen by cross-validation" },
        lb.iterations,
        fit_s,
        100.0 * train_acc,
        100.0 * test_acc
    );
    println!("wrote {}", a.out.join("probe.json").display());
    if a.json {
        println!("{report}");
    }
    Ok(())
}

/// Class names of the training split (without decoding it again when the features are cached).
fn class_names(spec: &convkit::data::DataSpec, size: [usize; 2], only: &[String]) -> Result<Vec<String>> {
    if !only.is_empty() {
        return Ok(only.to_vec());
    }
    Ok(spec.load(convkit::data::Split::Test, Some(size))?.classes)
}

fn bar(len: u64, msg: String) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} ({eta})").expect("valid template"));
    pb.set_message(msg);
    pb
}

#[derive(clap::Args)]
pub struct FinetuneArgs {
    /// Pretrained weights: a convkit checkpoint folder, or a safetensors file (with --model and --layout).
    #[arg(long, required_unless_present = "resume")]
    from: Option<PathBuf>,
    /// The weights file's layout: torch (PyTorch / timm / convkit) or keras.
    #[arg(long, value_enum)]
    layout: Option<Layout>,
    /// all (train only the new head), until=LAYER (freeze the top-level layers up to LAYER), or none.
    #[arg(long)]
    freeze: Option<String>,
    /// The new head's rate (default: --lr).
    #[arg(long)]
    head_lr: Option<f64>,
    /// The trainable layers' rate before the head (default: --lr).
    #[arg(long)]
    backbone_lr: Option<f64>,
    /// Train the batch norms of unfrozen layers (default: every batch norm keeps its pretrained statistics).
    #[arg(long)]
    train_bn: bool,
    #[command(flatten)]
    train: crate::TrainArgs,
}

/// The `[transfer]` keys the flags set, as recipe overrides after `train`'s own.
pub fn finetune_args(mut a: FinetuneArgs) -> crate::TrainArgs {
    let mut sets = Vec::new();
    if let Some(f) = &a.from {
        sets.push(format!("transfer.from={}", toml_string(&f.display().to_string())));
    }
    if let Some(l) = a.layout {
        sets.push(format!("transfer.layout={}", if l == Layout::Keras { "keras" } else { "torch" }));
    }
    if let Some(f) = &a.freeze {
        sets.push(format!("transfer.freeze={}", toml_string(f)));
    }
    sets.extend(a.head_lr.map(|v| format!("transfer.head_lr={v:e}")));
    sets.extend(a.backbone_lr.map(|v| format!("transfer.backbone_lr={v:e}")));
    if a.train_bn {
        sets.push("transfer.freeze_bn=false".into());
    }
    sets.append(&mut a.train.sets);
    a.train.sets = sets;
    a.train
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}
