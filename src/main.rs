//! The `convkit` command: a thin face over the library.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use convkit::check::gradcheck::{self, Options};
use convkit::layers::{self, Layer, Mode};
use convkit::{bench, models};

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
        /// sigmoid, tanh, maxout, batchnorm1d, batchnorm2d, dropout, lrn.
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
        /// small | resnet8 | all
        #[arg(long, default_value = "all")]
        net: String,
        #[arg(long, default_value_t = 128)]
        batch: usize,
        #[arg(long, default_value_t = 2)]
        threads: usize,
        #[arg(long, default_value_t = 20)]
        steps: usize,
        #[arg(long, default_value_t = 5)]
        runs: usize,
        #[arg(long)]
        json: bool,
        /// Also print where the time goes, layer by layer (forward and backward).
        #[arg(long)]
        profile: bool,
    },
    /// List the registered models.
    Models,
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
        Cmd::Gradcheck {
            layer,
            model,
            batch,
            elements,
            eval,
            seed,
            json,
        } => {
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
                    let labels: Vec<usize> =
                        (0..batch).map(|i| (i * 7 + 3) % model.classes).collect();
                    let rep = gradcheck::check_network(
                        &mut model.net,
                        &x,
                        &labels,
                        Default::default(),
                        &opts,
                    );
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
                println!(
                    "gradcheck {what} ({} mode, h = {:e})\n{report}",
                    if eval { "eval" } else { "train" },
                    opts.h
                );
            }
        }
        Cmd::Bench {
            net,
            batch,
            threads,
            steps,
            runs,
            json,
            profile,
        } => {
            convkit::net::sequential::set_profiling(profile);
            let nets: Vec<String> = if net == "all" {
                vec!["small".into(), "resnet8".into()]
            } else {
                vec![net]
            };
            let mut results = Vec::new();
            for n in nets {
                let o = bench::BenchOptions {
                    net: n,
                    batch,
                    threads,
                    steps,
                    runs,
                    ..Default::default()
                };
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
                    println!(
                        "  {:<44} {:>9} {:>9} {:>6}",
                        "layer (all calls)", "fwd ms", "bwd ms", "share"
                    );
                    for (name, f, b, _) in prof.iter().take(16) {
                        println!(
                            "  {:<44} {:>9.1} {:>9.1} {:>5.1}%",
                            name,
                            f * 1e3,
                            b * 1e3,
                            100.0 * (f + b) / total
                        );
                    }
                }
                results.push(r);
            }
            if json {
                println!("{}", serde_json::to_string(&results)?);
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
        "conv" => (
            Box::new(
                Conv2dConfig::new(4, 6, 3)
                    .stride(2)
                    .padding(1)
                    .build(&mut r)?,
            ),
            img,
        ),
        "depthwise" => (
            Box::new(
                Conv2dConfig::new(4, 4, 3)
                    .padding(1)
                    .groups(4)
                    .build(&mut r)?,
            ),
            img,
        ),
        "linear" => (
            Box::new(LinearConfig::new(10, 5).build(&mut r)?),
            vec![batch, 10],
        ),
        "maxpool" => (Box::new(layers::MaxPool2d::new(3, 2).padding(1)), img),
        "avgpool" => (Box::new(layers::AvgPool2d::new(2, 2)), img),
        "global-avgpool" => (Box::new(layers::GlobalAvgPool), img),
        "flatten" => (Box::new(layers::Flatten), img),
        "relu" => (Box::new(layers::Relu), img),
        "leaky-relu" => (Box::new(layers::LeakyRelu::default()), img),
        "elu" => (Box::new(layers::Elu::default()), img),
        "sigmoid" => (Box::new(layers::Sigmoid), img),
        "tanh" => (Box::new(layers::Tanh), img),
        "maxout" => (Box::new(layers::Maxout::new(2)), img),
        "batchnorm1d" => (
            Box::new(BatchNormConfig::new(10).build::<f64>()),
            vec![batch.max(2), 10],
        ),
        "batchnorm2d" => (Box::new(BatchNormConfig::new(4).build::<f64>()), img),
        "dropout" => (Box::new(layers::Dropout::<f64>::new(0.5, 0)?), img),
        "lrn" => (
            Box::new(layers::LocalResponseNorm::<f64>::new(3, 0.5, 0.75, 1.0)),
            img,
        ),
        other => bail!("unknown layer '{other}'; see `convkit gradcheck --help` for the list"),
    })
}
