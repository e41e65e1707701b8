//! The `convkit` command: a thin face over the library.

mod cli;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use cli::progress::{spinner, TrainDisplay};
use convkit::check::gradcheck::{self, Options};
use convkit::evaluate::{EvalSplit, TestViews};
use convkit::layers::Mode;
use convkit::train::checkpoint::Checkpoint;
use convkit::train::config::parse_set;
use convkit::train::{Callbacks, TrainConfig, TrainOptions};
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
    /// Worker threads for every command that computes (default: one per core).
    #[arg(long, global = true)]
    threads: Option<usize>,
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
        /// Seeds the weights and the random input.
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
        /// Images per step.
        #[arg(long, default_value_t = 128)]
        batch: usize,
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
    /// The lecture's initialisation experiment: 1000 unit-Gaussian samples of dimension 500 through ten 500-unit
    /// layers (no biases) with a nonlinearity; prints each layer's activation mean and std in the lecture's words,
    /// and with --plot draws the means, stds and per-layer histograms.
    ///
    /// Try: --activation tanh --init small (activations collapse), --init large (tanh saturates), --init xavier,
    /// then --activation relu with xavier (halves per layer) and he (stays constant).
    InitStats {
        /// Instead of the experiment: a registered model at its initialisation, on real images (needs --data);
        /// per layer, its output's mean, std, zeros and dead units (channels zero for every image).
        #[arg(long, requires = "data")]
        model: Option<String>,
        /// KIND:PATH of the images for --model (its training split).
        #[arg(long, requires = "model")]
        data: Option<String>,
        /// tanh, relu, leaky-relu, elu or sigmoid.
        #[arg(long, default_value = "tanh")]
        activation: String,
        /// small (randn * 0.01), small:STD, large (randn), xavier (randn / sqrt(fan_in)), he (randn / sqrt(fan_in/2)).
        #[arg(long, default_value = "xavier")]
        init: String,
        /// Hidden layers.
        #[arg(long, default_value_t = 10)]
        layers: usize,
        /// Units per layer (and input dimension).
        #[arg(long, default_value_t = 500)]
        width: usize,
        /// Input samples: unit Gaussians (default 1000), or images for --model (default 256).
        #[arg(long)]
        samples: Option<usize>,
        /// Seeds the input and the weights.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Draw the figure to this PNG.
        #[arg(long)]
        plot: Option<PathBuf>,
        /// Print one JSON object (settings and per-layer statistics with histograms).
        #[arg(long)]
        json: bool,
    },
    /// The lecture's sanity checks before a long run: the initial loss is chance (ln C) at a tiny init, an L2
    /// penalty raises it, the model memorises 20 training examples, and a whole-network gradient check passes.
    /// Each prints PASS or FAIL, and on FAIL what usually causes it. `train` runs the first three at its start.
    ///
    /// Example: convkit sanity --config recipes/lenet5-mnist.toml
    Sanity {
        #[command(flatten)]
        recipe: RecipeArgs,
        /// Skip the whole-network gradient check (f64; seconds for a ResNet).
        #[arg(long)]
        no_gradcheck: bool,
        /// Print one JSON object (every check with its figures).
        #[arg(long)]
        json: bool,
    },
    /// The learning-rate range test: train a fresh model while the rate grows exponentially, one step per rate,
    /// until the loss climbs; suggest a tenth of the rate at the smoothed loss's minimum, and plot loss vs rate.
    ///
    /// Example: convkit lr-find --config recipes/resnet20-cifar10.toml --plot lr.png
    LrFind {
        /// The recipe: its model, data, batch size, augmentation, optimizer and weight decay are used.
        #[command(flatten)]
        recipe: RecipeArgs,
        /// The first rate.
        #[arg(long, default_value_t = 1e-6)]
        start: f64,
        /// The last rate, if the loss has not climbed before.
        #[arg(long, default_value_t = 10.0)]
        end: f64,
        /// Steps at most, one rate each.
        #[arg(long, default_value_t = 100)]
        steps: usize,
        /// Draw loss against rate to this PNG.
        #[arg(long)]
        plot: Option<PathBuf>,
        /// Print one JSON object (rates, losses, smoothed, suggestion).
        #[arg(long)]
        json: bool,
    },
    /// Rebuild a run's report.html and curves.png from its files. report.html is one self-contained page (no
    /// network) with its figures, curves, update/weight ratios, activation tables and histograms, sanity checks,
    /// diagnosis, test confusion matrix, misclassified validation images, model summary and recipe. `train` writes
    /// both after every epoch.
    Report {
        /// The run folder.
        run: PathBuf,
    },
    /// List the registered models.
    Models,
    /// All ImageNet models side by side: parameters, operations, memory per image, published top-1; with
    /// --plot, the lecture's accuracy-vs-operations bubble chart as a PNG.
    Zoo {
        /// Also draw the accuracy-vs-operations bubble chart to this PNG.
        #[arg(long)]
        plot: Option<PathBuf>,
        /// Print the table as one JSON array.
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
        /// Images per batch (memory and operations scale with it).
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// Print the rows and totals as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Train a model on real data: per-epoch validation, metrics.csv, checkpoints `last` and `best`, and the
    /// test accuracy of `best` at the end. Flags override the recipe file.
    ///
    /// Example: convkit train --config recipes/lenet5-mnist.toml
    Train(Box<TrainArgs>),
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
        /// Which images: the test split, the run's validation images, or the whole training split.
        #[arg(long, value_enum, default_value_t = EvalSplit::Test)]
        split: EvalSplit,
        /// Test-time augmentation, softmax outputs averaged over the views: `flip` (image and mirror), `10crop`
        /// (four corners and centre, with mirrors; a "crop" shifts by the training pad), `multiscale` (zoom 1,
        /// 256/224, 288/224, centre and mirror each). `single` is the one-view figure that `train` reports.
        #[arg(long, value_enum, default_value_t = TestViews::Single)]
        tta: TestViews,
        /// Print one JSON object (accuracy, per_class, confusion).
        #[arg(long)]
        json: bool,
    },
    /// What a recipe's augmentation does: a grid of training images, each original beside several augmented
    /// draws (or, with --tta, the test-time views); with --bench, the input pipeline's speed with it.
    Augment {
        #[command(flatten)]
        recipe: RecipeArgs,
        /// The grid (PNG).
        #[arg(long, default_value = "augment.png")]
        out: PathBuf,
        /// Images, one per row, spread over the training split.
        #[arg(long = "n", default_value_t = 8)]
        rows: usize,
        /// Augmented draws beside each original.
        #[arg(long, default_value_t = 8)]
        draws: usize,
        /// Show these test-time views instead of training draws.
        #[arg(long, value_enum)]
        tta: Option<TestViews>,
        /// Also time decoding and the loader (augment + preprocess + batch) over up to 50 batches.
        #[arg(long)]
        bench: bool,
    },
    /// Average the softmax outputs of several trained models: independent runs, the snapshots of one SGDR run,
    /// Polyak-averaged weights. Prints each member's accuracy and the ensemble's.
    ///
    /// Example: convkit ensemble --runs runs/a runs/b runs/c --tta flip
    Ensemble(cli::transfer::EnsembleArgs),
    /// Transfer learning with a linear classifier: extract a pretrained network's features once (cached), then
    /// fit softmax regression (or an SVM) on them in seconds.
    ///
    /// Example: convkit features --from mobilenetv2-160.safetensors --layout keras --model mobilenetv2_keras
    ///          --data folder:hymenoptera-256.tar.gz
    Features(cli::transfer::FeaturesArgs),
    /// Fine-tune pretrained weights on new data: a new head for its classes, the layers --freeze names frozen,
    /// optionally a smaller rate for the backbone. Every `train` flag applies.
    ///
    /// Example: convkit finetune --from W.safetensors --layout keras --model mobilenetv2_keras
    ///          --data folder:hymenoptera-256.tar.gz --freeze until=block13 --epochs 5
    Finetune(Box<cli::transfer::FinetuneArgs>),
    /// Hyperparameter search, the lecture's way: random (or grid) draws on log scales, each trial a short run
    /// scored on validation only, hopeless trials pruned by successive halving, every trial kept in SQLite or
    /// PostgreSQL (a killed search resumes; workers on several machines share a study). Then `show` (table and
    /// plots), `refine` (coarse to fine), `best` (the winning recipe).
    ///
    /// Example: convkit search --config recipes/lenet5-fashion-mnist.toml
    ///          --space recipes/lenet5-fashion-mnist-space.toml --trials 16 --set epochs=3
    Search(Box<cli::search::SearchArgs>),
    /// Datasets: `convkit data fetch mnist|fashion-mnist|cifar10` downloads one from its publisher, verified.
    #[command(subcommand)]
    Data(cli::data::DataCmd),
    /// Top-5 classes with probabilities for image files, from a trained run or pretrained weights.
    Predict {
        /// A run folder (uses its `best` checkpoint).
        #[arg(long, required_unless_present_any = ["checkpoint", "weights"])]
        run: Option<PathBuf>,
        /// Pretrained weights (safetensors, with --model and --layout) instead of a run.
        #[arg(long, requires = "model", conflicts_with_all = ["run", "checkpoint"])]
        weights: Option<PathBuf>,
        /// The registered model the weights fit (with --weights), e.g. mobilenetv2_keras.
        #[arg(long)]
        model: Option<String>,
        /// The weights file's layout (with --weights).
        #[arg(long, value_enum, default_value_t = convkit::pretrained::Layout::Torch)]
        layout: convkit::pretrained::Layout,
        /// Class names, one per line (with --weights; default: class 0, class 1, ...).
        #[arg(long)]
        labels: Option<PathBuf>,
        /// A checkpoint folder (RUN/checkpoints/last, ...).
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// Image files (PNG, JPEG, GIF, BMP); resized and centre-cropped to the model's input.
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// How many classes to show.
        #[arg(long, default_value_t = 5)]
        top: usize,
        /// Test-time augmentation, as for `eval`.
        #[arg(long, value_enum, default_value_t = TestViews::Single)]
        tta: TestViews,
        /// Print one JSON array (file, top classes with probabilities).
        #[arg(long)]
        json: bool,
    },
}

/// `convkit train`'s flags: each one is a recipe key (see `train_config`).
#[derive(clap::Args)]
struct TrainArgs {
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
    /// rho of momentum and Nesterov (default 0.9); other rules' settings: --set optimizer.beta2=0.99 ...
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
    /// Stop when validation accuracy has not improved for this many epochs (restoring the best weights);
    /// `--set early_stopping.monitor=val_loss` and `early_stopping.min_delta=X` refine it.
    #[arg(long, help_heading = "Regularization")]
    early_stopping: Option<usize>,
    /// Report the wall time at which validation accuracy first reaches this fraction (0.94 for 94%): the
    /// time-to-accuracy figure speed runs are compared by.
    #[arg(long, help_heading = "Run")]
    target_acc: Option<f64>,
    /// End the run at the epoch that reaches --target-acc (or the recipe's target.accuracy).
    #[arg(long, help_heading = "Run")]
    stop_at_target: bool,
    /// Seeds initialisation, the validation split, shuffling and augmentation.
    #[arg(long, help_heading = "Run")]
    seed: Option<u64>,
    /// Run folder (default runs/<model>-<data kind>, numbered if taken).
    #[arg(long, help_heading = "Run")]
    out: Option<PathBuf>,
    /// Print one JSON object with the final figures as the last line.
    #[arg(long, help_heading = "Run")]
    json: bool,
    /// Sample the babysitting figures (loss, rate, gradient norm, update/weight ratio per layer, activation
    /// statistics per layer) every this many steps into RUN/monitor.jsonl; 0 turns the monitor off.
    #[arg(long, default_value_t = 50, help_heading = "Run")]
    monitor_every: u64,
    /// Skip the quick sanity checks at the start (initial loss, regularization, overfitting 20 examples).
    #[arg(long, help_heading = "Run")]
    no_sanity: bool,
    /// Check every layer's output and input gradient, and every weight, at every step; stop at the first NaN or
    /// infinity and name the layer that made it (slower: a debugging mode).
    #[arg(long, help_heading = "Run")]
    detect_anomaly: bool,
    /// Any recipe key, KEY=VALUE (repeatable; after the flags above): e.g. --set beta2=0.99,
    /// --set schedule.gamma=0.5, --set augment.hflip=true. Values are TOML literals or plain strings.
    #[arg(long = "set", value_name = "KEY=VALUE", help_heading = "Run")]
    sets: Vec<String>,
}

/// A recipe for the commands that study one (sanity, lr-find): a file or --model with --data, and --set overrides.
#[derive(clap::Args)]
struct RecipeArgs {
    /// A recipe (TOML); see recipes/.
    #[arg(long)]
    config: Option<PathBuf>,
    /// A registered model (with --data, instead of a recipe).
    #[arg(long)]
    model: Option<String>,
    /// KIND:PATH (with --model).
    #[arg(long)]
    data: Option<String>,
    /// Any recipe key, KEY=VALUE (repeatable), e.g. --set lr=0.001.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
}

impl RecipeArgs {
    fn config(&self) -> Result<TrainConfig> {
        let base = base_recipe(self.config.as_deref(), None, self.model.as_deref(), self.data.as_deref())?;
        let sets: Vec<_> = self.sets.iter().map(|s| parse_set(s)).collect::<convkit::Result<_>>()?;
        let cfg = base.with_overrides(&sets)?;
        cfg.validate()?;
        Ok(cfg)
    }
}

fn main() -> std::process::ExitCode {
    // The library's notes and warnings (a data path resolved elsewhere, undecodable images skipped), one line each.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .with_max_level(tracing::Level::INFO)
        .init();
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
    let threads = set_threads(cli.threads)?;
    match cli.cmd {
        Cmd::Gradcheck { layer, model, batch, elements, eval, seed, json } => {
            gradcheck(layer, model, batch, elements, eval, seed, json)
        }
        Cmd::Bench { net, batch, steps, runs, json, profile } => {
            run_bench(net, batch, threads, steps, runs, json, profile)
        }
        Cmd::Train(args) => train_command(*args),
        Cmd::OptimRace { out, steps, tol, seed, json } => optim_race(out, steps, tol, seed, json),
        Cmd::Eval { run, checkpoint, data, split, tta, json } => eval(run, checkpoint, data, split, tta, json),
        Cmd::Predict { run, checkpoint, weights, model, layout, labels, images, top, tta, json } => {
            let mut p = match weights {
                Some(w) => convkit::predict::Predictor::from_weights(
                    &w,
                    &model.unwrap_or_default(),
                    layout,
                    labels.as_deref(),
                )?,
                None => {
                    convkit::predict::Predictor::from_checkpoint(&Checkpoint::load(&checkpoint_dir(run, checkpoint))?)?
                }
            };
            print_predictions(&p.predict(&images, top, tta)?, json)
        }
        Cmd::Ensemble(a) => cli::transfer::ensemble(a),
        Cmd::Search(a) => cli::search::search(*a, threads),
        Cmd::Data(c) => cli::data::data(c),
        Cmd::Features(a) => cli::transfer::features(a),
        Cmd::Finetune(a) => train_command(cli::transfer::finetune_args(*a)),
        Cmd::Augment { recipe, out, rows, draws, tta, bench } => augment(recipe, out, rows, draws, tta, bench),
        Cmd::Zoo { plot, json } => zoo(plot, json),
        Cmd::Summary { model, input, batch, json } => summary(model, input, batch, json),
        Cmd::InitStats { model: Some(model), data: Some(data), samples, seed, json, .. } => {
            let n = samples.unwrap_or(256);
            let stats = spinner(format!("{model} at its initialisation on {n} images"), || {
                convkit::check::init_stats::model_stats(&model, &data, n, seed)
            })?;
            if json {
                println!("{}", serde_json::json!({"model": model, "data": data, "samples": n, "layers": stats}));
            } else {
                print!("{}", convkit::check::init_stats::model_table(&stats));
            }
            Ok(())
        }
        Cmd::InitStats { activation, init, layers, width, samples, seed, plot, json, .. } => {
            let (activation, init) = (activation.parse()?, init.parse()?);
            let samples = samples.unwrap_or(1000);
            let e = convkit::check::init_stats::Experiment { activation, init, layers, width, samples, seed };
            init_stats(&e, plot, json)
        }
        Cmd::Sanity { recipe, no_gradcheck, json } => {
            let cfg = recipe.config()?;
            let opts = convkit::check::sanity::SanityOptions { gradcheck: !no_gradcheck, ..Default::default() };
            let rep = spinner(format!("sanity checks of {} on {}", cfg.model, cfg.data), || {
                convkit::check::sanity::run(&cfg, &opts)
            })?;
            if json {
                println!("{}", serde_json::to_string(&rep)?);
            } else {
                print!("{rep}");
            }
            if !rep.passed() {
                bail!("a sanity check failed (see above)");
            }
            Ok(())
        }
        Cmd::LrFind { recipe, start, end, steps, plot, json } => {
            let cfg = recipe.config()?;
            let o = convkit::check::lr_find::LrFindOptions { start, end, steps, ..Default::default() };
            let r = spinner(format!("range test of {} from {start:e} to {end:e}", cfg.model), || {
                convkit::check::lr_find::run(&cfg, &o)
            })?;
            if json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!(
                    "{} steps from {:.1e} to {:.1e}: smoothed loss lowest at {:.2e}; suggested rate {:.2e} (a tenth of it; \
                     steepest descent at {:.2e})",
                    r.rates.len(),
                    r.rates[0],
                    r.rates.last().copied().unwrap_or(start),
                    r.rate_at_min,
                    r.suggestion,
                    r.steepest
                );
            }
            if let Some(p) = plot {
                convkit::check::lr_find::plot(&r, &p, font().as_deref())?;
                eprintln!("wrote {}", p.display());
            }
            Ok(())
        }
        Cmd::Report { run } => {
            let curves = run.join("curves.png");
            convkit::train::callbacks::curves::draw(&run.join("metrics.csv"), &curves)?;
            println!("wrote {}", curves.display());
            let path = convkit::report::write(&run)?;
            println!("wrote {}", path.display());
            Ok(())
        }
        Cmd::Models => {
            let list = models::list();
            let w = list.iter().map(|m| m.name.len()).max().unwrap_or(8);
            for m in list {
                let input = format!("{}x{}x{}", m.input[0], m.input[1], m.input[2]);
                println!("{:<w$}  {:>9}  {:>4} classes  {}", m.name, input, m.classes, m.description);
            }
            Ok(())
        }
    }
}

/// `convkit bench`: each net timed, a line (or one JSON array) of figures.
fn run_bench(
    net: String,
    batch: usize,
    threads: usize,
    steps: usize,
    runs: usize,
    json: bool,
    profile: bool,
) -> Result<()> {
    let nets: Vec<String> = if net == "all" { vec!["small".into(), "resnet8".into()] } else { vec![net] };
    let mut results = Vec::new();
    for n in nets {
        let o = bench::BenchOptions { net: n, batch, threads, steps, runs, profile, ..Default::default() };
        let r = spinner(format!("benchmarking {} ({} runs of {} steps)", o.net, o.runs, o.steps), || bench::run(&o))
            .with_context(|| format!("benchmarking {}", o.net))?;
        if !json {
            print_bench(&r);
        }
        results.push(r);
    }
    if json {
        println!("{}", serde_json::to_string(&results)?);
    }
    Ok(())
}

/// `convkit optim-race`: the lanes, their picture and the steps table.
fn optim_race(out: PathBuf, steps: usize, tol: f64, seed: u64, json: bool) -> Result<()> {
    if steps == 0 || !(tol > 0.0) {
        bail!("--steps must be at least 1 and --tol positive");
    }
    let lanes = convkit::race::run(steps, tol, seed)?;
    convkit::race::plot(&lanes, &out, font().as_deref())?;
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
    Ok(())
}

/// `convkit eval`: a checkpoint on a split, one view or image + mirror.
fn eval(
    run: Option<PathBuf>,
    checkpoint: Option<PathBuf>,
    data: Option<String>,
    split: EvalSplit,
    tta: TestViews,
    json: bool,
) -> Result<()> {
    let ck = Checkpoint::load(&checkpoint_dir(run, checkpoint))?;
    let which = format!("{split:?}").to_lowercase();
    let (rep, spec) = spinner(format!("evaluating {} on the {which} split", ck.meta.model), || {
        convkit::evaluate::evaluate_checkpoint(&ck, data.as_deref(), split, tta)
    })?;
    if json {
        println!(
            "{}",
            serde_json::json!({"accuracy": rep.accuracy, "loss": rep.loss, "count": rep.count, "split": split, "tta": tta, "per_class": rep.per_class, "confusion": rep.confusion, "checkpoint": ck.dir})
        );
    } else {
        let views = match tta {
            TestViews::Single => "",
            TestViews::Flip => " (image + mirror averaged)",
            TestViews::TenCrop => " (10 crops averaged)",
            TestViews::Multiscale => " (3 scales x 2 mirrors averaged)",
            TestViews::FlipTranslate => " (image + mirror, and both shifted 1 pixel each way, averaged)",
        };
        print!("{} epoch {} on {spec}, {which} split{views}:\n{rep}", ck.meta.model, ck.meta.epoch);
    }
    Ok(())
}

/// `convkit augment`: the grid, and with `bench` the pipeline's images per second.
fn augment(
    recipe: RecipeArgs,
    out: PathBuf,
    rows: usize,
    draws: usize,
    tta: Option<TestViews>,
    bench: bool,
) -> Result<()> {
    use convkit::augment::{grid, tta::views};
    use convkit::data::{DataSpec, Split};
    let cfg = recipe.config()?;
    cfg.validate()?;
    if !(1..=64).contains(&rows) || !(1..=32).contains(&draws) {
        bail!("--n {rows} / --draws {draws}: the grid takes 1 to 64 rows and 1 to 32 draws");
    }
    let spec: DataSpec = cfg.data.parse()?;
    let info = models::lookup(&cfg.model)?;
    let started = std::time::Instant::now();
    let ds = spinner(format!("loading {spec}"), || spec.load(Split::Train, Some([info.input[1], info.input[2]])))?;
    let decode = started.elapsed().as_secs_f64();
    let all: Vec<usize> = (0..ds.len()).collect();
    let mut aug = cfg.augment.clone();
    aug.fit(&ds, &all);
    let picked: Vec<usize> = (0..rows.min(ds.len())).map(|r| r * ds.len() / rows.min(ds.len())).collect();
    let v = tta.map(|k| views(k, ds.shape, cfg.augment.crop_pad));
    let img = grid::grid(&ds, &picked, &aug, draws, v.as_deref(), cfg.seed);
    img.save(&out).with_context(|| format!("cannot write {}", out.display()))?;
    let what = v.as_ref().map_or(format!("{draws} augmented draws"), |v| format!("the {} test-time views", v.len()));
    println!("wrote {}: {} training images, each original beside {what}", out.display(), picked.len());
    if aug.mixes() {
        println!("(mixup / cutmix mix whole batches and are not shown)");
    }
    if bench {
        pipeline_bench(&cfg, ds, aug, decode)?;
    }
    Ok(())
}

/// Decode speed (from loading) and the loader's images per second with the recipe's augmentation.
fn pipeline_bench(
    cfg: &TrainConfig,
    ds: convkit::data::Dataset,
    aug: convkit::augment::Augment,
    decode: f64,
) -> Result<()> {
    use convkit::data::loader::{self, LoaderConfig};
    use convkit::data::preprocess::Preprocess;
    use std::sync::Arc;
    println!("decode: {} images in {decode:.1} s ({:.0} images/s)", ds.len(), ds.len() as f64 / decode.max(1e-9));
    let n = ds.len().min(50 * cfg.batch_size);
    let idx: Vec<usize> = (0..n).collect();
    let prep = Arc::new(Preprocess::fit(cfg.preprocess, &ds.subset(&idx))?);
    let lc = LoaderConfig { batch_size: cfg.batch_size, shuffle: true, augment: aug, seed: cfg.seed };
    let started = std::time::Instant::now();
    let count: usize = loader::epoch(Arc::new(ds), Arc::new(idx), prep, &lc, 1).map(|b| b.labels.len()).sum();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "loader (augment + preprocess + batch, {} threads): {count} images in {secs:.2} s ({:.0} images/s)",
        rayon::current_num_threads(),
        count as f64 / secs.max(1e-9)
    );
    Ok(())
}

/// `convkit predict`: top classes for each image file.
fn print_predictions(preds: &[convkit::predict::Prediction], json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(&preds)?);
    } else {
        for p in preds {
            println!("{}", p.file.display());
            for (c, pr) in &p.top {
                println!("  {:>6.2}%  {c}", 100.0 * pr);
            }
        }
    }
    Ok(())
}

/// `convkit train` (and `finetune`, which is train with a `[transfer]` table).
fn train_command(args: TrainArgs) -> Result<()> {
    let (json, resume, detect_anomaly) = (args.json, args.resume.clone(), args.detect_anomaly);
    let monitor_every = (args.monitor_every > 0).then_some(args.monitor_every);
    let sanity = (!args.no_sanity && resume.is_none())
        .then(|| convkit::check::sanity::SanityOptions { gradcheck: false, ..Default::default() });
    let cfg = train_config(args)?;
    let mut callbacks = Callbacks::default();
    callbacks.push(TrainDisplay::default());
    let report = convkit::train::train(
        cfg,
        TrainOptions { resume, callbacks, sanity, monitor_every, detect_anomaly, ..Default::default() },
    )?;
    print_train(&report, json)
}

/// `convkit zoo`: every ImageNet model's accounting, and the bubble chart.
fn zoo(plot: Option<PathBuf>, json: bool) -> Result<()> {
    let t = spinner("building every ImageNet model to count its parameters and operations", convkit::zoo::table)?;
    if json {
        println!("{}", serde_json::to_string(&t)?);
    } else {
        print_zoo(&t);
    }
    if let Some(p) = plot {
        convkit::zoo::plot(&t, &p, font().as_deref())?;
        eprintln!("wrote {}", p.display());
    }
    Ok(())
}

/// `convkit init-stats`: the lecture's lines (or JSON), and the figure.
fn init_stats(e: &convkit::check::init_stats::Experiment, plot: Option<PathBuf>, json: bool) -> Result<()> {
    use convkit::check::init_stats;
    let what = format!("{} layers of {} units, {} samples", e.layers, e.width, e.samples);
    let stats = spinner(format!("running {what}"), || e.run())?;
    if json {
        println!("{}", serde_json::json!({"experiment": e, "layers": stats}));
    } else {
        print!("{}", init_stats::lecture_lines(&stats));
    }
    if let Some(p) = plot {
        init_stats::plot(e, &stats, &p, font().as_deref())?;
        eprintln!("wrote {}", p.display());
    }
    Ok(())
}

/// `convkit summary`: one model's per-layer accounting.
fn summary(model: String, input: Option<String>, batch: usize, json: bool) -> Result<()> {
    let mut m = models::build_shapes(&model, None)?;
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
    Ok(())
}

/// Sizes rayon's global pool: every command computes through it. Returns the thread count.
fn set_threads(threads: Option<usize>) -> Result<usize> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let n = threads.unwrap_or(cores);
    if n == 0 || n > 8 * cores {
        bail!("--threads {n} is out of range: use 1 to {} (this machine has {cores} cores)", 8 * cores);
    }
    rayon::ThreadPoolBuilder::new().num_threads(n).build_global().context("starting the worker threads")?;
    Ok(n)
}

/// The recipe a `train` command means: the file (or the resumed run's config.toml, or --model and --data), then
/// every flag and `--set` as an override, checked by the library.
fn train_config(a: TrainArgs) -> Result<TrainConfig> {
    if let (Some(r), Some(o)) = (&a.resume, &a.out) {
        let same = |x: &std::path::Path, y: &std::path::Path| {
            x.canonicalize().ok().zip(y.canonicalize().ok()).map_or(x == y, |(x, y)| x == y)
        };
        if !same(r, o) {
            bail!(
                "--out {} with --resume {}: a resumed run continues in its own folder; to branch it, copy the \
                 folder and resume the copy",
                o.display(),
                r.display()
            );
        }
    }
    let base = base_recipe(a.config.as_deref(), a.resume.as_deref(), a.model.as_deref(), a.data.as_deref())?;
    let mut o = Overrides::default();
    o.text("model", a.model).text("data", a.data).int("val", a.val).text("preprocess", a.preprocess);
    o.int("limit", a.limit).int("epochs", a.epochs).int("batch_size", a.batch_size).text("optimizer", a.optimizer);
    o.num("lr", a.lr).num("optimizer.rho", a.momentum).num("warmup_epochs", a.warmup_epochs);
    o.num("weight_decay", a.weight_decay).num("l2", a.l2).num("l1", a.l1).num("clip_norm", a.clip_norm);
    o.num("clip_value", a.clip_value).num("ema_decay", a.ema_decay).int("early_stopping.patience", a.early_stopping);
    o.int("seed", a.seed.map(|s| s as usize)).text("out", a.out.map(|p| p.display().to_string()));
    o.num("target.accuracy", a.target_acc).flag("target.stop", a.stop_at_target);
    if let Some(s) = a.schedule {
        let s: convkit::schedule::Schedule = s.parse()?;
        o.0.push(("schedule".into(), toml::Value::try_from(s)?));
    }
    for s in &a.sets {
        o.0.push(parse_set(s)?);
    }
    Ok(base.with_overrides(&o.0)?)
}

/// The recipe file, or the resumed run's config.toml, or one made of --model and --data.
fn base_recipe(
    config: Option<&std::path::Path>,
    resume: Option<&std::path::Path>,
    model: Option<&str>,
    data: Option<&str>,
) -> Result<TrainConfig> {
    Ok(match (config, resume) {
        (Some(f), _) => TrainConfig::from_file(f)?,
        (None, Some(r)) => TrainConfig::from_file(&r.join("config.toml"))?,
        (None, None) => TrainConfig::from_file_or_flags(model, data)?,
    })
}

/// Flags turned into recipe keys, in the order given.
#[derive(Default)]
struct Overrides(Vec<(String, toml::Value)>);

impl Overrides {
    fn num(&mut self, key: &str, v: Option<f64>) -> &mut Self {
        self.0.extend(v.map(|v| (key.to_string(), toml::Value::Float(v))));
        self
    }
    fn int(&mut self, key: &str, v: Option<usize>) -> &mut Self {
        self.0.extend(v.map(|v| (key.to_string(), toml::Value::Integer(v as i64))));
        self
    }
    fn text(&mut self, key: &str, v: Option<String>) -> &mut Self {
        self.0.extend(v.map(|v| (key.to_string(), toml::Value::String(v))));
        self
    }
    /// Sets `key = true` when the flag is given.
    fn flag(&mut self, key: &str, on: bool) -> &mut Self {
        self.0.extend(on.then(|| (key.to_string(), toml::Value::Boolean(true))));
        self
    }
}

fn gradcheck(
    layer: Option<String>,
    model: Option<String>,
    batch: usize,
    elements: usize,
    eval: bool,
    seed: u64,
    json: bool,
) -> Result<()> {
    if !(1..=64).contains(&batch) || !(1..=1_000_000).contains(&elements) {
        bail!("--batch {batch} --elements {elements}: a gradient check takes a batch of 1 to 64 and 1 to 1000000 elements per tensor");
    }
    let mode = if eval { Mode::Eval } else { Mode::Train };
    let opts = Options { max_elements: elements, seed, mode, ..Options::default() };
    let (what, report) = match (layer, model) {
        (Some(l), _) => {
            let (mut layer, shape) = convkit::check::targets::layer(&l, batch)?;
            let x = gradcheck::random_input(&shape, seed);
            (l, gradcheck::check_layer(layer.as_mut(), &x, &opts))
        }
        (None, Some(m)) => {
            let mut model = models::build::<f64>(&m, None, seed)?;
            let x = gradcheck::random_input(&model.batch_shape(batch), seed);
            let labels: Vec<usize> = (0..batch).map(|i| (i * 7 + 3) % model.classes).collect();
            let rep = spinner(format!("checking every parameter tensor of {m} in f64"), || {
                gradcheck::check_network(&mut model.net, &x, &labels, Default::default(), &opts)
            });
            (m, rep)
        }
        (None, None) => bail!("say what to check: --layer NAME or --model NAME (see `convkit models`)"),
    };
    if json {
        let v = serde_json::json!({
            "target": what, "mode": if eval {"eval"} else {"train"},
            "max_rel_error": report.max_rel_error(), "judged_error": report.judged_error(),
            "kinks_skipped": report.kinks_skipped(),
            "loss": report.loss, "tensors": report.tensors,
        });
        println!("{v}");
    } else {
        println!("gradcheck {what} ({} mode, h = {:e})\n{report}", if eval { "eval" } else { "train" }, opts.h);
    }
    Ok(())
}

fn print_bench(r: &bench::BenchResult) {
    println!(
        "{:<8} batch {} threads {}: train {:>7.1} img/s ({:.1} GFLOP/s), inference {:>7.1} img/s  [{:.1} MFLOP/img fwd]",
        r.net, r.batch, r.threads, r.train_img_per_s, r.train_gflop_per_s, r.infer_img_per_s, r.mflop_per_image_forward
    );
    if let Some(prof) = &r.profile {
        let total: f64 = prof.iter().map(|p| p.forward + p.backward).sum();
        println!("  {:<44} {:>9} {:>9} {:>6}", "layer (all calls)", "fwd ms", "bwd ms", "share");
        for p in prof.iter().take(16) {
            let share = 100.0 * (p.forward + p.backward) / total;
            println!("  {:<44} {:>9.1} {:>9.1} {:>5.1}%", p.layer, p.forward * 1e3, p.backward * 1e3, share);
        }
    }
}

fn print_train(report: &convkit::train::TrainReport, json: bool) -> Result<()> {
    println!(
        "done in {:.0}s (training {:.1}s): best val accuracy {:.2}% (epoch {}), test accuracy {:.2}% on {} images",
        report.wall_seconds,
        report.train_seconds,
        100.0 * report.best_val_accuracy,
        report.best_epoch,
        100.0 * report.test_accuracy,
        report.test_images,
    );
    if let Some(s) = report.stopped_early {
        println!("stopped early after epoch {} (best epoch {})", s.after_epoch, s.best_epoch);
    }
    if let Some(t) = &report.time_to_target {
        match t.reached {
            Some(r) => println!(
                "time to {:.2}% validation accuracy: {:.1}s (epoch {}, {:.2}%)",
                100.0 * t.target,
                r.seconds,
                r.epoch,
                100.0 * r.val_accuracy
            ),
            None => println!("target {:.2}% validation accuracy not reached", 100.0 * t.target),
        }
    }
    for d in &report.diagnosis {
        println!("diagnosis: {d}");
    }
    if let (Some(v), Some(t)) = (report.ema_val_accuracy, report.ema_test_accuracy) {
        println!("Polyak-averaged weights: val accuracy {:.2}%, test accuracy {:.2}%", 100.0 * v, 100.0 * t);
    }
    println!("results in {} (metrics.csv, config.toml, report.json, checkpoints/)", report.run_dir.display());
    if json {
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(())
}

fn print_zoo(t: &[convkit::zoo::Entry]) {
    println!(
        "{:<16} {:>10} {:>12} {:>12} {:>12} {:>8}",
        "model", "input", "params", "GMACs/img", "MB fwd/img", "top-1 %"
    );
    for e in t {
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
    println!("top-1: published ImageNet accuracy (torchvision's model table; ZFNet from its paper), single crop");
}

/// The charts' font, if the user names one (`CONVKIT_FONT=/path/to/font.ttf`).
fn font() -> Option<PathBuf> {
    std::env::var_os("CONVKIT_FONT").map(PathBuf::from)
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
