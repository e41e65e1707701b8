//! The `convkit` command: a thin face over the library.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use convkit::check::gradcheck::{self, Options};
use convkit::layers::{self, Layer, Mode};
use convkit::train::checkpoint::Checkpoint;
use convkit::train::{TrainConfig, TrainOptions};
use convkit::{bench, models};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "convkit",
    version,
    about = "Train convolutional networks the way cs231n lecture 7 teaches, fast on a CPU."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Compare analytic gradients with centred finite differences (f64) for a layer or a whole model.
    ///
    /// Reports, per parameter tensor and for the input, the max and mean relative error |a-n|/max(|a|,|n|).
    /// Rule of thumb from the lecture: < 1e-7 great, < 1e-5 fine with kinks, > 1e-2 a bug.
    Gradcheck {
        /// One layer: conv, depthwise, linear, maxpool, avgpool, global-avgpool, flatten, relu, leaky-relu, elu,
        /// sigmoid, tanh, relu6, maxout, batchnorm1d, batchnorm2d, dropout, lrn.
        #[arg(long, conflicts_with = "model")]
        layer: Option<String>,
        /// A registered model (see `convkit models`).
        #[arg(long)]
        model: Option<String>,
        /// Batch size of the random input.
        #[arg(long, default_value_t = 2)]
        batch: usize,
        /// Elements checked per tensor (a random subset for bigger tensors).
        #[arg(long, default_value_t = 24)]
        elements: usize,
        /// Check in evaluation mode (batch norm running statistics, no dropout).
        #[arg(long)]
        eval: bool,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Time training steps (forward + backward + SGD momentum) and inference on synthetic 3x32x32 input.
    ///
    /// Compare with PyTorch in the same sitting: `bench/compare.sh`.
    Bench {
        /// small | resnet8 | all (or any registered 3x32x32 model, e.g. resnet20).
        #[arg(long, default_value = "all")]
        net: String,
        #[arg(long, default_value_t = 128)]
        batch: usize,
        /// Worker threads (the measured machine has 2 cores).
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Timed steps per run (after 3 warm-up steps).
        #[arg(long, default_value_t = 20)]
        steps: usize,
        /// Runs; the median is reported.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Print one JSON array of results.
        #[arg(long)]
        json: bool,
        /// Also print where the time goes, layer by layer (forward and backward).
        #[arg(long)]
        profile: bool,
    },
    /// List the registered models.
    Models,
    /// All ImageNet models side by side: parameters, operations, memory per image, published top-1; with
    /// --plot, the lecture's accuracy-vs-operations bubble chart as a PNG.
    Zoo {
        #[arg(long)]
        plot: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Layer by layer: output shape, activation memory, parameters (with and without biases), multiply-adds;
    /// then totals, as in the lecture's VGG16 walk-through.
    Summary {
        /// A registered model (see `convkit models`).
        model: String,
        /// Input size CxHxW (default: the model's).
        #[arg(long)]
        input: Option<String>,
        #[arg(long, default_value_t = 1)]
        batch: usize,
        #[arg(long)]
        json: bool,
    },
    /// Train a model on real data: per-epoch validation, metrics.csv, checkpoints `last` and `best`, and the
    /// test accuracy of `best` at the end. Flags override the recipe file.
    ///
    /// Example: convkit train --config recipes/lenet5-mnist.toml
    Train {
        /// A recipe (TOML); see recipes/.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Continue the run in this folder from its `last` checkpoint (its config.toml is the recipe).
        #[arg(long, conflicts_with = "config")]
        resume: Option<PathBuf>,
        /// A registered model: lenet5, small, resnet8/20/32/56, ... (see `convkit models`).
        #[arg(long, help_heading = "Model and data")]
        model: Option<String>,
        /// KIND:PATH with KIND mnist, fashion-mnist, cifar10-bin or folder (a directory or .tar/.tar.gz of
        /// ROOT/<split>/<class>/<image>).
        #[arg(long, help_heading = "Model and data")]
        data: Option<String>,
        /// Validation images carved from the training split (default 10%, 5000 for CIFAR-10).
        #[arg(long, help_heading = "Model and data")]
        val: Option<usize>,
        /// channel-norm (default), mean-image, zca, pca or none; fitted on the training split only.
        #[arg(long, help_heading = "Model and data")]
        preprocess: Option<String>,
        /// Train on a seeded random subset of this many training images (quick experiments).
        #[arg(long, help_heading = "Model and data")]
        limit: Option<usize>,
        /// Total epochs (with --resume: continue up to this many).
        #[arg(long, help_heading = "Schedule")]
        epochs: Option<usize>,
        /// Images per step (default 128).
        #[arg(long, help_heading = "Schedule")]
        batch_size: Option<usize>,
        /// sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw, or lbfgs (full batch only).
        #[arg(long, help_heading = "Optimizer")]
        optimizer: Option<String>,
        /// Base learning rate: the schedule's starting (or, for one-cycle, peak) rate.
        #[arg(long, help_heading = "Optimizer")]
        lr: Option<f64>,
        /// rho of momentum and Nesterov (default 0.9).
        #[arg(long, help_heading = "Optimizer")]
        momentum: Option<f64>,
        /// KIND[:key=value,...]: constant, step:every=N|milestones=[a,b],gamma=G, exponential:k=K,
        /// inverse-time:k=K, cosine[:min_lr=X], sgdr:period=P,mult=M, one-cycle[:pct_start=F],
        /// plateau[:factor=F,patience=N].
        #[arg(long, help_heading = "Schedule")]
        schedule: Option<String>,
        /// Linear warm-up epochs before the schedule (from warmup_start * lr, default 0.1).
        #[arg(long, help_heading = "Schedule")]
        warmup_epochs: Option<f64>,
        /// PyTorch-style weight decay on weights (decoupled for adamw); biases and batch norm are not decayed.
        #[arg(long, help_heading = "Regularization")]
        weight_decay: Option<f64>,
        /// L2 term lambda * sum W^2 added to the loss (weights only).
        #[arg(long, help_heading = "Regularization")]
        l2: Option<f64>,
        /// L1 term lambda * sum |W| (with --l2 too: elastic net).
        #[arg(long, help_heading = "Regularization")]
        l1: Option<f64>,
        /// Clip gradients to this global L2 norm.
        #[arg(long, help_heading = "Regularization")]
        clip_norm: Option<f64>,
        /// Clamp every gradient element to [-X, X].
        #[arg(long, help_heading = "Regularization")]
        clip_value: Option<f64>,
        /// Polyak averaging of the weights with this decay (the lecture's 0.995), evaluated every epoch and
        /// saved as checkpoints/ema.
        #[arg(long, help_heading = "Regularization")]
        ema_decay: Option<f64>,
        /// Seeds initialisation, the validation split, shuffling and augmentation.
        #[arg(long, help_heading = "Run")]
        seed: Option<u64>,
        /// Run folder (default runs/<model>-<data kind>, numbered if taken).
        #[arg(long, help_heading = "Run")]
        out: Option<PathBuf>,
        /// Print one JSON object with the final figures as the last line.
        #[arg(long, help_heading = "Run")]
        json: bool,
    },
    /// Race the optimizers (SGD, momentum, Nesterov, AdaGrad, RMSProp, Adam, L-BFGS) over the lecture's 2-D test
    /// surfaces: an ill-conditioned "taco shell", a saddle point, a local minimum, and noisy gradients. Draws their
    /// paths over the loss contours and prints how many steps each needs to reach the tolerance.
    ///
    /// Example: convkit optim-race --out race.png
    OptimRace {
        /// The PNG to write.
        #[arg(long, default_value = "race.png")]
        out: PathBuf,
        /// Steps per optimizer and surface.
        #[arg(long, default_value_t = 300)]
        steps: usize,
        /// A lane has arrived when its loss is within this of the surface's minimum.
        #[arg(long, default_value_t = 1e-3)]
        tol: f64,
        /// Seeds the gradient noise.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Print the lanes (without paths) as one JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Evaluate a trained model: accuracy, per-class accuracy and the confusion matrix.
    Eval {
        /// A run folder (uses its `best` checkpoint).
        #[arg(long, required_unless_present = "checkpoint")]
        run: Option<PathBuf>,
        /// A checkpoint folder (RUN/checkpoints/last, ...).
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// KIND:PATH; default: the data the model was trained on.
        #[arg(long)]
        data: Option<String>,
        /// test or train.
        #[arg(long, default_value = "test")]
        split: String,
        /// Test-time augmentation: `flip` averages the softmax of each image and its mirror (for models trained
        /// with flips; twice the inference time); `single` is the one-view figure that `train` reports.
        #[arg(long, value_enum, default_value_t = convkit::evaluate::TestViews::Single)]
        tta: convkit::evaluate::TestViews,
        /// Print one JSON object (accuracy, per_class, confusion).
        #[arg(long)]
        json: bool,
    },
    /// Top-5 classes with probabilities for image files, from a trained run.
    Predict {
        #[arg(long, required_unless_present = "checkpoint")]
        run: Option<PathBuf>,
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// Image files (PNG, JPEG, GIF, BMP); resized and centre-cropped to the model's input.
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// How many classes to show.
        #[arg(long, default_value_t = 5)]
        top: usize,
        #[arg(long)]
        json: bool,
    },
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One readable line with its causes; no backtrace for a user's mistake.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Gradcheck { layer, model, batch, elements, eval, seed, json } => {
            let opts = Options {
                max_elements: elements,
                seed,
                mode: if eval { Mode::Eval } else { Mode::Train },
                ..Options::default()
            };
            let (what, report) = match (layer, model) {
                (Some(l), _) => {
                    let (mut layer, shape) = layer_by_name(&l, batch)?;
                    let x = gradcheck::random_input(&shape, seed);
                    (l, gradcheck::check_layer(layer.as_mut(), &x, &opts))
                }
                (None, Some(m)) => {
                    let mut model = models::build::<f64>(&m, None, seed)?;
                    let x = gradcheck::random_input(&model.batch_shape(batch), seed);
                    let labels: Vec<usize> = (0..batch).map(|i| (i * 7 + 3) % model.classes).collect();
                    let rep = gradcheck::check_network(&mut model.net, &x, &labels, Default::default(), &opts);
                    (m, rep)
                }
                (None, None) => {
                    bail!("say what to check: --layer NAME or --model NAME (see `convkit models`)")
                }
            };
            if json {
                let v = serde_json::json!({
                    "target": what, "mode": if eval {"eval"} else {"train"},
                    "max_rel_error": report.max_rel_error(), "kinks_skipped": report.kinks_skipped(),
                    "loss": report.loss, "tensors": report.tensors,
                });
                println!("{v}");
            } else {
                println!("gradcheck {what} ({} mode, h = {:e})\n{report}", if eval { "eval" } else { "train" }, opts.h);
            }
        }
        Cmd::Bench { net, batch, threads, steps, runs, json, profile } => {
            convkit::net::sequential::set_profiling(profile);
            let nets: Vec<String> = if net == "all" { vec!["small".into(), "resnet8".into()] } else { vec![net] };
            let mut results = Vec::new();
            for n in nets {
                let o = bench::BenchOptions { net: n, batch, threads, steps, runs, ..Default::default() };
                let r = bench::run(&o).with_context(|| format!("benchmarking {}", o.net))?;
                if !json {
                    println!(
                        "{:<8} batch {} threads {}: train {:>7.1} img/s ({:.1} GFLOP/s), inference {:>7.1} img/s  [{:.1} MFLOP/img fwd]",
                        r.net, r.batch, r.threads, r.train_img_per_s, r.train_gflop_per_s, r.infer_img_per_s, r.mflop_per_image_forward
                    );
                }
                if profile {
                    let prof = convkit::net::sequential::take_profile();
                    let total: f64 = prof.iter().map(|p| p.1 + p.2).sum();
                    println!("  {:<44} {:>9} {:>9} {:>6}", "layer (all calls)", "fwd ms", "bwd ms", "share");
                    for (name, f, b, _) in prof.iter().take(16) {
                        println!("  {:<44} {:>9.1} {:>9.1} {:>5.1}%", name, f * 1e3, b * 1e3, 100.0 * (f + b) / total);
                    }
                }
                results.push(r);
            }
            if json {
                println!("{}", serde_json::to_string(&results)?);
            }
        }
        Cmd::Train {
            config,
            resume,
            model,
            data,
            val,
            preprocess,
            limit,
            epochs,
            batch_size,
            optimizer,
            lr,
            momentum,
            schedule,
            warmup_epochs,
            weight_decay,
            l2,
            l1,
            clip_norm,
            clip_value,
            ema_decay,
            seed,
            out,
            json,
        } => {
            let mut cfg = match (&config, &resume) {
                (Some(f), _) => TrainConfig::from_file(f)?,
                (None, Some(r)) => TrainConfig::from_file(&r.join("config.toml"))?,
                (None, None) => TrainConfig::from_file_or_flags(model.as_deref(), data.as_deref())?,
            };
            if let Some(v) = model {
                cfg.model = v;
            }
            if let Some(v) = data {
                cfg.data = v;
            }
            if let Some(v) = val {
                cfg.val = Some(v);
            }
            if let Some(v) = preprocess {
                cfg.preprocess = v.parse()?;
            }
            if limit.is_some() {
                cfg.limit = limit;
            }
            if let Some(v) = epochs {
                cfg.epochs = v;
            }
            if let Some(v) = batch_size {
                cfg.batch_size = v;
            }
            if let Some(v) = optimizer {
                cfg.optimizer = v.parse()?;
            }
            if let Some(v) = lr {
                cfg.lr = v;
            }
            if let Some(v) = momentum {
                cfg.momentum = v;
            }
            if let Some(v) = schedule {
                cfg.schedule = v.parse()?;
            }
            if let Some(v) = warmup_epochs {
                cfg.warmup_epochs = v;
            }
            if let Some(v) = weight_decay {
                cfg.weight_decay = v;
            }
            if let Some(v) = l2 {
                cfg.l2 = v;
            }
            if let Some(v) = l1 {
                cfg.l1 = v;
            }
            if clip_norm.is_some() {
                cfg.clip_norm = clip_norm;
            }
            if clip_value.is_some() {
                cfg.clip_value = clip_value;
            }
            if ema_decay.is_some() {
                cfg.ema_decay = ema_decay;
            }
            if let Some(v) = seed {
                cfg.seed = v;
            }
            if out.is_some() {
                cfg.out = out;
            }
            let report = convkit::train::train(cfg, &TrainOptions { resume, quiet: false })?;
            let t = report.test.as_ref().expect("train reports its test evaluation");
            println!(
                "done in {:.0}s: best val accuracy {:.2}% (epoch {}), test accuracy {:.2}% on {} images",
                report.wall_seconds,
                100.0 * report.best_val_accuracy,
                report.best_epoch,
                100.0 * report.test_accuracy,
                t.count,
            );
            if let (Some(v), Some(t)) = (report.ema_val_accuracy, report.ema_test_accuracy) {
                println!("Polyak-averaged weights: val accuracy {:.2}%, test accuracy {:.2}%", 100.0 * v, 100.0 * t);
            }
            println!("results in {} (metrics.csv, config.toml, report.json, checkpoints/)", report.run_dir.display());
            if json {
                println!("{}", serde_json::to_string(&report)?);
            }
        }
        Cmd::OptimRace { out, steps, tol, seed, json } => {
            if steps == 0 || !(tol > 0.0) {
                bail!("--steps must be at least 1 and --tol positive");
            }
            let lanes = convkit::race::run(steps, tol, seed)?;
            convkit::race::plot(&lanes, &out)?;
            if json {
                let v: Vec<_> = lanes
                    .iter()
                    .map(|l| {
                        serde_json::json!({"optimizer": l.optimizer, "surface": l.surface, "lr": l.lr,
                        "steps_to_tol": l.steps_to_tol, "final_loss": l.final_loss})
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(v));
            } else {
                print!("{}", convkit::race::table(&lanes, steps));
                println!("wrote {}", out.display());
            }
        }
        Cmd::Eval { run, checkpoint, data, split, tta, json } => {
            let ck = Checkpoint::load(&checkpoint_dir(run, checkpoint))?;
            let spec: convkit::data::DataSpec = data.unwrap_or_else(|| ck.meta.data.clone()).parse()?;
            let split = match split.as_str() {
                "test" => convkit::data::Split::Test,
                "train" => convkit::data::Split::Train,
                o => bail!("unknown split '{o}': use test or train"),
            };
            let [_, h, w] = ck.meta.input;
            let ds = std::sync::Arc::new(spec.load(split, Some([h, w]))?);
            let mut model = ck.model()?;
            let idx = std::sync::Arc::new((0..ds.len()).collect::<Vec<_>>());
            let prep = std::sync::Arc::new(ck.preprocess());
            let rep = convkit::evaluate::evaluate_views(&mut model, &ds, idx, &prep, 256, tta);
            if json {
                println!(
                    "{}",
                    serde_json::json!({"accuracy": rep.accuracy, "loss": rep.loss, "count": rep.count, "tta": tta, "per_class": rep.per_class, "confusion": rep.confusion, "checkpoint": ck.dir})
                );
            } else {
                let views = if tta == convkit::evaluate::TestViews::Flip { " (image + mirror averaged)" } else { "" };
                print!("{} epoch {} on {spec}{views}:\n{rep}", ck.meta.model, ck.meta.epoch);
            }
        }
        Cmd::Predict { run, checkpoint, images, top, json } => {
            let ck = Checkpoint::load(&checkpoint_dir(run, checkpoint))?;
            let preds = convkit::predict::predict(&ck, &images, top)?;
            if json {
                println!("{}", serde_json::to_string(&preds)?);
            } else {
                for p in preds {
                    println!("{}", p.file.display());
                    for (c, pr) in p.top {
                        println!("  {:>6.2}%  {c}", 100.0 * pr);
                    }
                }
            }
        }
        Cmd::Zoo { plot, json } => {
            let t = convkit::zoo::table()?;
            if json {
                println!("{}", serde_json::to_string(&t)?);
            } else {
                println!(
                    "{:<16} {:>10} {:>12} {:>12} {:>12} {:>8}",
                    "model", "input", "params", "GMACs/img", "MB fwd/img", "top-1 %"
                );
                for e in &t {
                    println!(
                        "{:<16} {:>10} {:>12} {:>12.2} {:>12.1} {:>8}",
                        e.model,
                        format!("{}x{}x{}", e.input[0], e.input[1], e.input[2]),
                        e.params,
                        e.macs_per_image as f64 / 1e9,
                        e.forward_bytes_per_image as f64 / 1e6,
                        e.top1.map_or("-".to_string(), |a| format!("{a:.1}"))
                    );
                }
                println!(
                    "top-1: published ImageNet accuracy (torchvision's model table; ZFNet from its paper), single crop"
                );
            }
            if let Some(p) = plot {
                convkit::zoo::plot(&t, &p)?;
                eprintln!("wrote {}", p.display());
            }
        }
        Cmd::Summary { model, input, batch, json } => {
            let mut m = models::build::<f32>(&model, None, 0)?;
            let input = match input {
                Some(s) => parse_chw(&s)?,
                None => m.input,
            };
            let sum = convkit::summary::summarize(&mut m, input, batch.max(1))?;
            if json {
                println!("{}", serde_json::to_string(&sum)?);
            } else {
                println!("{sum}");
            }
        }
        Cmd::Models => {
            for m in models::list() {
                println!(
                    "{:<10} {:>2}x{}x{} {:>5} classes  {}",
                    m.name, m.input[0], m.input[1], m.input[2], m.classes, m.description
                );
            }
        }
    }
    Ok(())
}

/// A layer to check by name, and an input shape that suits it.
fn layer_by_name(name: &str, batch: usize) -> Result<(Box<dyn Layer<f64>>, Vec<usize>)> {
    use layers::batchnorm::BatchNormConfig;
    use layers::conv::Conv2dConfig;
    use layers::linear::LinearConfig;
    let mut r = convkit::init::rng(0);
    let img = vec![batch, 4, 7, 7];
    Ok(match name {
        "conv" => (Box::new(Conv2dConfig::new(4, 6, 3).stride(2).padding(1).build(&mut r)?), img),
        "depthwise" => (Box::new(Conv2dConfig::new(4, 4, 3).padding(1).groups(4).build(&mut r)?), img),
        "linear" => (Box::new(LinearConfig::new(10, 5).build(&mut r)?), vec![batch, 10]),
        "maxpool" => (Box::new(layers::MaxPool2d::new(3, 2).padding(1)), img),
        "avgpool" => (Box::new(layers::AvgPool2d::new(2, 2)), img),
        "global-avgpool" => (Box::new(layers::GlobalAvgPool), img),
        "flatten" => (Box::new(layers::Flatten), img),
        "relu" => (Box::new(layers::Relu), img),
        "leaky-relu" => (Box::new(layers::LeakyRelu::default()), img),
        "elu" => (Box::new(layers::Elu::default()), img),
        "sigmoid" => (Box::new(layers::Sigmoid), img),
        "tanh" => (Box::new(layers::Tanh), img),
        "relu6" => (Box::new(layers::Relu6), img),
        "maxout" => (Box::new(layers::Maxout::new(2)), img),
        "batchnorm1d" => (Box::new(BatchNormConfig::new(10).build::<f64>()), vec![batch.max(2), 10]),
        "batchnorm2d" => (Box::new(BatchNormConfig::new(4).build::<f64>()), img),
        "dropout" => (Box::new(layers::Dropout::<f64>::new(0.5, 0)?), img),
        "lrn" => (Box::new(layers::LocalResponseNorm::<f64>::new(3, 0.5, 0.75, 1.0)), img),
        other => bail!("unknown layer '{other}'; see `convkit gradcheck --help` for the list"),
    })
}

/// `--checkpoint DIR`, or the `best` checkpoint of `--run DIR`.
fn checkpoint_dir(run: Option<PathBuf>, checkpoint: Option<PathBuf>) -> PathBuf {
    checkpoint.unwrap_or_else(|| run.expect("clap requires --run or --checkpoint").join("checkpoints").join("best"))
}

/// `3x224x224` -> `[3, 224, 224]`.
fn parse_chw(s: &str) -> Result<[usize; 3]> {
    let v: Vec<usize> = s
        .split(['x', 'X'])
        .map(|p| p.trim().parse::<usize>())
        .collect::<std::result::Result<_, _>>()
        .with_context(|| format!("--input '{s}' should look like 3x224x224"))?;
    match v.as_slice() {
        [c, h, w] => Ok([*c, *h, *w]),
        _ => bail!("--input '{s}' should have three numbers, CxHxW (e.g. 3x224x224)"),
    }
}
