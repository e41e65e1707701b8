//! The lecture's sanity checks on real MNIST: a sound recipe passes all four; a learning rate of 0, labels that do
//! not follow their images, and a layer with a wrong backward each fail with the explanation that fits.

use convkit::check::sanity::{self, SanityOptions};
use convkit::data::preprocess::Preprocess;
use convkit::data::{DataSpec, Split};
use convkit::layers::{Layer, Mode};
use convkit::net::Sequential;
use convkit::tensor::Tensor;
use convkit::train::TrainConfig;
use std::sync::Arc;

fn recipe(extra: &str) -> TrainConfig {
    TrainConfig::from_toml(&format!("model = 'lenet5'\ndata = 'mnist:../shared/data/mnist'\nlr = 0.01\n{extra}"))
        .unwrap()
}

fn mnist_batch(n: usize) -> convkit::data::loader::Batch {
    let spec: DataSpec = "mnist:../shared/data/mnist".parse().unwrap();
    let ds = Arc::new(spec.load(Split::Test, None).unwrap());
    let idx: Vec<usize> = (0..n).collect();
    let prep = Arc::new(Preprocess::fit(Default::default(), &ds.subset(&idx)).unwrap());
    sanity::make_batch(&ds, &idx, &prep)
}

#[test]
fn a_sound_recipe_passes_every_check() {
    let rep = sanity::run(&recipe(""), &SanityOptions::default()).unwrap();
    assert!(rep.passed(), "{rep}");
    assert_eq!(rep.checks.len(), 4);
    let text = rep.to_string();
    assert!(text.lines().all(|l| l.starts_with("PASS ")), "{text}");
    // The initial loss line carries the figure: within 0.02 of ln(10).
    let loss: f64 = rep.checks[0].detail.split_whitespace().next().unwrap().parse().unwrap();
    assert!((loss - 10f64.ln()).abs() < 0.02, "{loss}");
}

#[test]
fn a_learning_rate_of_zero_fails_the_overfit_check() {
    let cfg = recipe("");
    let b = mnist_batch(20);
    let mut t = sanity::overfit_trainer(&TrainConfig { lr: 0.0, ..cfg }, 10).unwrap();
    let c = sanity::overfit(&mut t, &mut |_| b.clone(), 50);
    assert!(!c.passed);
    assert!(c.hint.unwrap().contains("learning rate is 0"), "{}", c.detail);
}

#[test]
fn labels_that_do_not_follow_their_images_fail_the_overfit_check() {
    let b = mnist_batch(20);
    let mut t = sanity::overfit_trainer(&recipe(""), 10).unwrap();
    // A loader bug: the labels are shuffled apart from the images, differently at every step.
    let mut shuffled = |step: usize| {
        let mut b = b.clone();
        let mut r = convkit::init::rng(step as u64);
        rand::seq::SliceRandom::shuffle(b.labels.as_mut_slice(), &mut r);
        b
    };
    let c = sanity::overfit(&mut t, &mut shuffled, 300);
    assert!(!c.passed, "{}", c.detail);
    assert!(c.hint.as_deref().unwrap().contains("labels may not follow their images"), "{:?}", c.hint);
    // The same images with their own labels are memorised.
    let mut t = sanity::overfit_trainer(&recipe(""), 10).unwrap();
    assert!(sanity::overfit(&mut t, &mut |_| b.clone(), 300).passed);
}

/// ReLU whose backward forgets to gate the gradient: lets everything through.
struct LeakyBackward;
impl Layer<f64> for LeakyBackward {
    fn describe(&self) -> String {
        "relu with a wrong backward".into()
    }
    fn output_shape(&self, x: &[usize]) -> convkit::Result<Vec<usize>> {
        Ok(x.to_vec())
    }
    fn forward(&mut self, x: &Tensor<f64>, _m: Mode) -> Tensor<f64> {
        x.map(|v| v.max(0.0))
    }
    fn backward(&mut self, _x: &Tensor<f64>, _y: &Tensor<f64>, dy: &Tensor<f64>) -> Tensor<f64> {
        dy.clone()
    }
}

#[test]
fn a_layer_with_a_wrong_backward_fails_the_gradient_check_and_is_named() {
    let b = mnist_batch(4);
    let mut r = convkit::init::rng(0);
    let fc = |i, o, r: &mut _| convkit::layers::linear::LinearConfig::new(i, o).build::<f64>(r).unwrap();
    let mut net = Sequential::new()
        .with("flatten", convkit::layers::Flatten)
        .with("fc1", fc(784, 16, &mut r))
        .with("bad_relu", LeakyBackward)
        .with("fc2", fc(16, 10, &mut r));
    let c = sanity::gradient_check(&mut net, &b, 2);
    assert!(!c.passed, "{}", c.detail);
    // The first layer below the broken one is where the gradients go wrong.
    assert!(c.detail.contains("fc1") || c.detail.contains("input"), "{}", c.detail);
    assert!(c.hint.unwrap().contains("backward is wrong"));
}

#[test]
fn train_runs_the_quick_checks_first_and_reports_them() {
    let d = tempfile::tempdir().unwrap();
    let mut cfg = recipe("epochs = 1\nlimit = 500\nval = 500\n");
    cfg.out = Some(d.path().join("run"));
    let sanity = Some(SanityOptions { gradcheck: false, ..Default::default() });
    let rep = convkit::train::train(cfg, convkit::train::TrainOptions { sanity, ..Default::default() }).unwrap();
    let s = rep.sanity.expect("the checks ran");
    assert_eq!(s.checks.len(), 3);
    assert!(s.passed(), "{s}");
    let json = std::fs::read_to_string(d.path().join("run/report.json")).unwrap();
    assert!(json.contains("\"overfit a tiny subset\""));
}
