//! `convkit search`: the lecture's hyperparameter search from a terminal: run a study (here or as one of many
//! workers), look at it, refine it, export its best recipe; and the random-vs-grid demonstration.

use anyhow::{bail, Context, Result};
use convkit::search::refine::{self, ranked};
use convkit::search::space::{describe, Space};
use convkit::search::storage::{Status, Store, StudySpec, TrialRow};
use convkit::search::{self, asha::Asha, Study, TrialEnd, WorkerOptions};
use convkit::train::config::parse_set;
use convkit::train::{Callback, Callbacks, Progress, RunInfo, StepStats, TrainConfig, Trainer};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};

const DEFAULT_STORAGE: &str = "sqlite:runs/search/studies.db";

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SearchArgs {
    #[command(subcommand)]
    cmd: Option<SearchCmd>,
    #[command(flatten)]
    run: RunArgs,
}

/// Where the study is kept.
#[derive(clap::Args, Clone)]
struct Where {
    /// The study's name (default: the recipe file's name).
    #[arg(long)]
    study: Option<String>,
    /// sqlite:PATH (one machine; the default is sqlite:runs/search/studies.db) or
    /// postgres://USER@HOST:PORT/DB (workers on several machines share it).
    #[arg(long, default_value = DEFAULT_STORAGE)]
    storage: String,
}

#[derive(clap::Args)]
struct RunArgs {
    /// The recipe every trial starts from (TOML); needed to start a study, not to continue one.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The search space (TOML): recipe keys with loguniform(a, b), uniform(a, b), int(a, b), choice([...]) or
    /// an array of values. See recipes/lenet5-fashion-mnist-space.toml.
    #[arg(long, requires = "config")]
    space: Option<PathBuf>,
    /// Trials in all (default 16 for a new study; given for an existing one, its new budget).
    #[arg(long)]
    trials: Option<usize>,
    /// random (the lecture's advice) or grid (evenly spaced values, log-spaced for log ranges).
    #[arg(long, default_value = "random")]
    strategy: String,
    /// Trials to run at once on this machine, each with its share of the threads.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    #[command(flatten)]
    at: Where,
    /// Any recipe key for every trial, KEY=VALUE (repeatable): a short budget, e.g. --set epochs=3
    /// --set limit=10000.
    #[arg(long = "set", value_name = "KEY=VALUE", requires = "config")]
    sets: Vec<String>,
    /// Successive halving (ASHA): after epochs 1, 3, 9, ... only the top third of trials so far go on.
    #[arg(long, default_value = "asha", value_parser = ["asha", "none"])]
    prune: String,
    /// Seconds a worker's claim on a trial lasts without a sign of life; a killed worker's trial is run again
    /// by another worker after this.
    #[arg(long, default_value_t = 60.0)]
    lease: f64,
    /// Trial run folders go here (default runs/search/STUDY).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Seeds the study's draws (each trial trains with the recipe's seed).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// This worker's name in the database (default HOST:PID).
    #[arg(long)]
    worker: Option<String>,
    /// Print one JSON object (the study's trials, ranked) at the end.
    #[arg(long)]
    json: bool,
    /// Started by --workers: no progress bars (the workers share one terminal) and no final table (the parent
    /// prints it).
    #[arg(long, hide = true)]
    spawned: bool,
}

#[derive(clap::Subcommand)]
enum SearchCmd {
    /// The study's trials ranked by validation accuracy, warnings for best values at an edge of their range, and
    /// with --plot the lecture's pictures: accuracy against each hyperparameter, and two of them as a scatter.
    Show {
        #[command(flatten)]
        at: Where,
        /// Draw the figure to this PNG.
        #[arg(long)]
        plot: Option<PathBuf>,
        /// The scatter's two keys, KEY_X,KEY_Y (default: the first two numeric ones).
        #[arg(long)]
        pair: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Write the best trial's recipe, to retrain it fully and touch the test split once.
    Best {
        #[command(flatten)]
        at: Where,
        /// The recipe file to write.
        #[arg(long)]
        out: PathBuf,
        /// Recipe keys to change for the full retraining, KEY=VALUE: e.g. --set epochs=15.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Drop the trials' `limit`: retrain on every training image.
        #[arg(long)]
        full_data: bool,
    },
    /// Coarse to fine: a new stage whose ranges are narrowed around the best trials; run it with
    /// `convkit search --study NEW`.
    Refine {
        #[command(flatten)]
        at: Where,
        /// How many of the best trials the new ranges must cover.
        #[arg(long, default_value_t = 4)]
        top: usize,
        /// The new stage's name (default STUDY-fine).
        #[arg(long)]
        to: Option<String>,
        /// Trials of the new stage (default: as many as this one).
        #[arg(long)]
        trials: Option<usize>,
        /// Recipe keys for the new stage, KEY=VALUE: the fine stage trains longer, e.g. --set epochs=8.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
    /// The lecture's figure, computed: nine trials of grid and of random search on an objective with one
    /// important and one unimportant parameter.
    DemoRandomVsGrid {
        #[arg(long, default_value_t = 9)]
        trials: usize,
        /// Random searches (different seeds) to average over.
        #[arg(long, default_value_t = 1000)]
        repeats: usize,
        /// Draw the figure to this PNG.
        #[arg(long)]
        plot: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

pub fn search(a: SearchArgs, threads: usize) -> Result<()> {
    match a.cmd {
        None => run(a.run, threads),
        Some(SearchCmd::Show { at, plot, pair, json }) => show(&at, plot, pair, json),
        Some(SearchCmd::Best { at, out, sets, full_data }) => best(&at, &out, &sets, full_data),
        Some(SearchCmd::Refine { at, top, to, trials, sets }) => refine_stage(&at, top, to, trials, &sets),
        Some(SearchCmd::DemoRandomVsGrid { trials, repeats, plot, json }) => demo(trials, repeats, plot, json),
    }
}

fn study_name(at: &Where, config: Option<&Path>) -> Result<String> {
    match (&at.study, config) {
        (Some(s), _) => Ok(s.clone()),
        (None, Some(c)) => Ok(c.file_stem().map_or("study".into(), |s| s.to_string_lossy().into_owned())),
        (None, None) => bail!("name the study (--study NAME), or start one with --config RECIPE --space SPACE"),
    }
}

/// Opens the study: creates it from --config/--space, or loads the stored one.
fn open_study(a: &RunArgs, store: &mut Store) -> Result<Study> {
    let name = study_name(&a.at, a.config.as_deref())?;
    if let Some(config) = &a.config {
        let space = a.space.as_ref().context("--config needs --space SPACE.toml: the ranges to search")?;
        let sets: Vec<_> = a.sets.iter().map(|s| parse_set(s)).collect::<convkit::Result<_>>()?;
        let mut recipe = TrainConfig::from_file(config)?.with_overrides(&sets)?;
        recipe.out = None;
        recipe.validate()?;
        let space_text = Space::from_file(space)?.to_toml();
        let spec = StudySpec {
            name: name.clone(),
            recipe: recipe.to_toml(),
            space: space_text,
            strategy: a.strategy.clone(),
            trials: a.trials.unwrap_or(16) as i64,
            seed: a.seed as i64,
            pruner: a.prune.clone(),
            parent: String::new(),
        };
        Study::new(spec.clone())?;
        store.create_study(&spec)?;
    } else if let Some(t) = a.trials {
        store.set_budget(&name, t as i64)?;
    }
    let spec = store
        .study(&name)?
        .with_context(|| format!("no study '{name}' in {}: start it with --config RECIPE --space SPACE", store.url))?;
    Ok(Study::new(spec)?)
}

fn run(a: RunArgs, threads: usize) -> Result<()> {
    if a.workers == 0 || a.workers > 256 {
        bail!("--workers {}: run 1 to 256 at once", a.workers);
    }
    if a.trials == Some(0) {
        bail!("--trials 0: a search needs at least one trial");
    }
    if !(a.lease >= 1.0 && a.lease.is_finite()) {
        bail!("--lease {}: give at least 1 second (a trial renews it several times per lease)", a.lease);
    }
    let mut store = Store::open(&a.at.storage)?;
    let study = open_study(&a, &mut store)?;
    let name = study.spec.name.clone();
    let out = a.out.clone().unwrap_or_else(|| PathBuf::from("runs/search").join(&name));
    eprintln!(
        "study '{name}' in {}: {} search, {} trials, pruning {}, trials in {}",
        store.url,
        study.spec.strategy,
        study.budget(),
        study.spec.pruner,
        out.display()
    );
    if a.workers > 1 {
        spawn_workers(&a, &name, &out, threads)?;
    } else {
        let spawned = a.spawned;
        let opts = WorkerOptions {
            worker: a.worker.clone().unwrap_or_else(search::default_worker_name),
            lease: a.lease,
            out: out.clone(),
            pruner: (study.spec.pruner == "asha").then(Asha::default),
            callbacks: Box::new(move |_| {
                let mut c = Callbacks::default();
                if !spawned {
                    c.push(TrialBar::default());
                }
                c
            }),
        };
        let budget = study.budget();
        search::work(store, &study, &opts, &mut |e| eprintln!("{}", trial_line(e, budget)))?;
        if a.spawned {
            return Ok(());
        }
    }
    let mut store = Store::open(&a.at.storage)?;
    report(&mut store, &study, a.json)
}

/// `--workers K`: K processes of this program, each a one-worker search of the same study with its share of the
/// threads; they coordinate through the database exactly as workers on different machines do.
fn spawn_workers(a: &RunArgs, study: &str, out: &Path, threads: usize) -> Result<()> {
    let exe = std::env::current_exe().context("finding this program to start the workers")?;
    let per = (threads / a.workers).max(1);
    let base = a.worker.clone().unwrap_or_else(search::default_worker_name);
    let mut children = Vec::new();
    for i in 0..a.workers {
        let mut cmd = std::process::Command::new(&exe);
        cmd.args(["--threads", &per.to_string(), "search", "--study", study, "--storage", &a.at.storage]);
        cmd.args(["--lease", &a.lease.to_string(), "--out", &out.display().to_string(), "--prune", &a.prune]);
        cmd.args(["--worker", &format!("{base}/{i}"), "--spawned"]);
        children.push(cmd.spawn().with_context(|| format!("starting worker {i}"))?);
    }
    eprintln!("{} workers started, {per} thread(s) each", a.workers);
    let mut failed = 0;
    for mut c in children {
        failed += !c.wait().map(|s| s.success()).unwrap_or(false) as usize;
    }
    if failed > 0 {
        bail!("{failed} worker(s) failed (see their messages above); rerun to continue the study");
    }
    Ok(())
}

fn trial_line(e: &TrialEnd, budget: usize) -> String {
    let acc = e.val_accuracy.map_or("-".into(), |a| format!("{:.2}%", 100.0 * a));
    let what = match e.status {
        Status::Pruned => format!("pruned after epoch {}", e.epochs_done),
        Status::Failed => format!("failed: {}", e.error.as_deref().unwrap_or("")),
        _ => "finished".into(),
    };
    format!("trial {}/{budget} {what}: val {acc} ({}) in {:.1}s", e.number + 1, describe(&e.params), e.seconds)
}

/// The ranked table and the lecture's warnings.
fn report(store: &mut Store, study: &Study, json: bool) -> Result<()> {
    let trials = store.trials(&study.spec.name)?;
    if json {
        let best = ranked(&trials).first().map(|t| t.number);
        println!("{}", serde_json::json!({"study": study.spec.name, "best": best, "trials": trials}));
        return Ok(());
    }
    print!("{}", table(&trials));
    if let Some(b) = ranked(&trials).first() {
        for w in refine::edge_warnings(&study.space, &b.params) {
            eprintln!("warning: {w}");
        }
        eprintln!(
            "best: trial {} at {:.2}% validation accuracy; export it with convkit search best --study {} --out best.toml",
            b.number + 1,
            100.0 * b.val_accuracy.unwrap_or(0.0),
            study.spec.name
        );
    }
    Ok(())
}

fn table(trials: &[TrialRow]) -> String {
    let mut s = format!("{:>4}  {:>6}  {:>9}  {:>6}  {:>7}  params\n", "rank", "trial", "status", "epochs", "val acc");
    let good = ranked(trials);
    let rest = trials.iter().filter(|t| !good.iter().any(|g| g.number == t.number));
    for (i, t) in good.iter().copied().chain(rest).enumerate() {
        let rank = if i < good.len() { (i + 1).to_string() } else { "-".into() };
        let acc = t.val_accuracy.map_or("-".into(), |a| format!("{:.2}%", 100.0 * a));
        s += &format!(
            "{rank:>4}  {:>6}  {:>9}  {:>6}  {acc:>7}  {}\n",
            t.number + 1,
            t.status.as_str(),
            t.epochs_done.map_or("-".into(), |e| e.to_string()),
            describe(&t.params)
        );
    }
    s
}

fn load(at: &Where) -> Result<(Store, Study)> {
    let name = study_name(at, None)?;
    let mut store = Store::open(&at.storage)?;
    let spec = store.study(&name)?;
    let Some(spec) = spec else {
        let known = store.studies()?;
        bail!(
            "no study '{name}' in {} (studies there: {})",
            at.storage,
            if known.is_empty() { "none".into() } else { known.join(", ") }
        );
    };
    Ok((store, Study::new(spec)?))
}

fn show(at: &Where, plot: Option<PathBuf>, pair: Option<String>, json: bool) -> Result<()> {
    let (mut store, study) = load(at)?;
    report(&mut store, &study, json)?;
    if let Some(p) = plot {
        let trials = store.trials(&study.spec.name)?;
        let pair = pair.as_deref().map(|p| p.split_once(',').context("--pair KEY_X,KEY_Y")).transpose()?;
        convkit::search::plots::study(&study.space, &trials, pair, &p, crate::font().as_deref())?;
        eprintln!("wrote {}", p.display());
    }
    Ok(())
}

fn best(at: &Where, out: &Path, sets: &[String], full_data: bool) -> Result<()> {
    let (mut store, study) = load(at)?;
    let trials = store.trials(&study.spec.name)?;
    let Some(b) = ranked(&trials).into_iter().find(|t| t.status == Status::Finished) else {
        bail!("study '{}' has no finished trial yet", study.spec.name);
    };
    let sets: Vec<_> = sets.iter().map(|s| parse_set(s)).collect::<convkit::Result<_>>()?;
    let mut cfg = study.trial_recipe(&b.params, PathBuf::new())?.with_overrides(&sets)?;
    cfg.out = None;
    if full_data {
        cfg.limit = None;
    }
    let head = format!(
        "# The best trial of study '{}' ({}): trial {}, {:.2}% validation accuracy after {} epochs.\n# {}\n\n",
        study.spec.name,
        at.storage,
        b.number + 1,
        100.0 * b.val_accuracy.unwrap_or(0.0),
        b.epochs_done.unwrap_or(0),
        describe(&b.params)
    );
    std::fs::write(out, head + &cfg.to_toml()).with_context(|| format!("writing {}", out.display()))?;
    eprintln!(
        "wrote {}: retrain it (convkit train --config {}) and report its test accuracy once",
        out.display(),
        out.display()
    );
    Ok(())
}

fn refine_stage(at: &Where, top: usize, to: Option<String>, trials: Option<usize>, sets: &[String]) -> Result<()> {
    let (mut store, study) = load(at)?;
    let rows = store.trials(&study.spec.name)?;
    let r = refine::refine(&study.space, &rows, top)?;
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
    let sets: Vec<_> = sets.iter().map(|s| parse_set(s)).collect::<convkit::Result<_>>()?;
    let recipe = study.recipe.with_overrides(&sets)?;
    let name = to.unwrap_or_else(|| format!("{}-fine", study.spec.name));
    let spec = StudySpec {
        name: name.clone(),
        recipe: recipe.to_toml(),
        space: r.space.to_toml(),
        trials: trials.map_or(study.spec.trials, |t| t as i64),
        parent: study.spec.name.clone(),
        ..study.spec.clone()
    };
    Study::new(spec.clone())?;
    store.create_study(&spec)?;
    println!("# stage '{name}', refined from '{}' around its best {top} trials\n{}", study.spec.name, spec.space);
    eprintln!("run it: convkit search --study {name} --storage {}", at.storage);
    Ok(())
}

fn demo(trials: usize, repeats: usize, plot: Option<PathBuf>, json: bool) -> Result<()> {
    if trials < 4 || repeats == 0 {
        bail!("--trials {trials} --repeats {repeats}: give at least 4 trials and 1 repeat");
    }
    let d = convkit::search::demo::run(trials, repeats);
    if json {
        println!("{}", serde_json::to_string(&d)?);
    } else {
        println!(
            "grid search:   {} trials, {} distinct values of the important parameter, best {:.3}",
            d.trials, d.grid.distinct_x, d.grid.best
        );
        println!(
            "random search: {} trials, {} distinct values of the important parameter, best {:.3} (seed {}, the median \
             of {} searches)",
            d.trials, d.random.distinct_x, d.random.best, d.random_seed, d.repeats
        );
        println!(
            "over {} random searches: mean best {:.3}, ahead of the grid in {:.0}% of them",
            d.repeats,
            d.random_mean_best,
            100.0 * d.random_beats_grid
        );
    }
    if let Some(p) = plot {
        convkit::search::plots::demo(&d, &p, crate::font().as_deref())?;
        eprintln!("wrote {}", p.display());
    }
    Ok(())
}

/// One bar per trial, over all its steps.
#[derive(Default)]
struct TrialBar {
    bar: Option<ProgressBar>,
    name: String,
}

impl Drop for TrialBar {
    /// A failed trial ends without `on_train_end`: its bar must not stay on the screen.
    fn drop(&mut self) {
        if let Some(pb) = self.bar.take() {
            pb.finish_and_clear();
        }
    }
}

impl Callback for TrialBar {
    fn on_train_begin(&mut self, _t: &mut Trainer, r: &RunInfo) -> convkit::Result<()> {
        self.name = r.dir.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned());
        Ok(())
    }

    fn on_epoch_begin(&mut self, _t: &mut Trainer, p: &Progress) -> convkit::Result<()> {
        let pb = self.bar.get_or_insert_with(|| {
            let pb = ProgressBar::new((p.batches * p.epochs) as u64);
            pb.set_style(
                ProgressStyle::with_template("{prefix} [{bar:28}] {msg} ({eta})")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            pb
        });
        pb.set_prefix(format!("{} epoch {}/{}", self.name, p.epoch, p.epochs));
        Ok(())
    }

    fn on_step_end(&mut self, _t: &mut Trainer, _s: &StepStats, p: &Progress) -> convkit::Result<()> {
        if let Some(pb) = &self.bar {
            pb.inc(1);
            pb.set_message(format!("loss {:.4} acc {:.2}%", p.loss(), 100.0 * p.accuracy()));
        }
        Ok(())
    }

    fn on_train_end(
        &mut self,
        _t: &mut Trainer,
        _test: &convkit::train::TestSet,
        _r: &mut convkit::train::TrainReport,
    ) -> convkit::Result<()> {
        if let Some(pb) = self.bar.take() {
            pb.finish_and_clear();
        }
        Ok(())
    }
}
