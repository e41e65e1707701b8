//! PyTorch parity, as llm.c tests against PyTorch: every layer kind and configuration, both losses, and three
//! whole models (lenet5, resnet20, mobilenetv2) run forward and backward in f64 on the inputs and weights
//! `reference/torch_layers.py` used, and must give PyTorch's outputs, input gradients, parameter gradients and
//! running statistics to 1e-5 relative. The gradient check proves backward agrees with forward; this proves
//! forward agrees with the framework people compare against (batch norm's variance convention, LRN's alpha/n,
//! ceil-mode pooling, dropout's keep probability, ...).

use convkit::layers::batchnorm::BatchNormConfig;
use convkit::layers::conv::Conv2dConfig;
use convkit::layers::linear::LinearConfig;
use convkit::layers::{self, Layer, Mode};
use convkit::loss::{multiclass_svm, softmax_cross_entropy};
use convkit::tensor::{Float, Tensor};
use safetensors::SafeTensors;
use serde_json::Value;
use std::collections::BTreeMap;

const TOL: f64 = 1e-5;

struct Reference {
    tensors: BTreeMap<String, Tensor<f64>>,
    cases: Vec<Value>,
}

fn reference() -> Reference {
    let raw = std::fs::read("reference/torch_layers.safetensors").expect("run reference/torch_layers.py once");
    let (_, meta) = SafeTensors::read_metadata(&raw).unwrap();
    let cases: Vec<Value> = serde_json::from_str(&meta.metadata().as_ref().unwrap()["cases"]).unwrap();
    let st = SafeTensors::deserialize(&raw).unwrap();
    let mut tensors = BTreeMap::new();
    for (name, view) in st.tensors() {
        let v: Vec<f64> = view.data().chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap())).collect();
        tensors.insert(name, Tensor::from_vec(view.shape(), v));
    }
    Reference { tensors, cases }
}

impl Reference {
    fn get(&self, key: &str) -> &Tensor<f64> {
        self.tensors.get(key).unwrap_or_else(|| panic!("reference has no tensor '{key}'"))
    }
    fn case(&self, name: &str) -> &Value {
        self.cases.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no case {name}"))
    }
}

/// Largest relative difference, each element against `max(|want|, 1e-3 * max|want|, floor)`: entries near zero
/// are judged on the tensor's scale, and tensors that are zero in exact arithmetic on `floor`.
fn rel_error(got: &[f64], want: &[f64], floor: f64) -> f64 {
    assert_eq!(got.len(), want.len(), "lengths differ");
    let scale = want.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-300);
    got.iter().zip(want).map(|(g, w)| (g - w).abs() / w.abs().max(1e-3 * scale).max(floor)).fold(0.0, f64::max)
}

fn assert_close(what: &str, got: &[f64], want: &[f64]) -> f64 {
    assert_close_floor(what, got, want, 0.0)
}

fn assert_close_floor(what: &str, got: &[f64], want: &[f64], floor: f64) -> f64 {
    let e = rel_error(got, want, floor);
    assert!(e <= TOL, "{what}: relative error {e:.3e} > {TOL:e}");
    e
}

/// The convkit layer a case describes.
fn build<T: Float>(c: &Value) -> Box<dyn Layer<T>> {
    let u = |k: &str| c[k].as_u64().unwrap_or_else(|| panic!("{k} in {c}")) as usize;
    let f = |k: &str| c[k].as_f64().unwrap();
    let mut r = convkit::init::rng(0);
    match c["kind"].as_str().unwrap() {
        "conv" => {
            let mut cfg = Conv2dConfig::new(u("cin"), u("cout"), u("k")).stride(u("stride")).padding(u("padding"));
            cfg = cfg.groups(u("groups")).bias(c["bias"].as_bool().unwrap());
            if c["relu"].as_bool().unwrap() {
                cfg = cfg.relu();
            }
            Box::new(cfg.build::<T>(&mut r).unwrap())
        }
        "linear" => Box::new(LinearConfig::new(u("fin"), u("fout")).build::<T>(&mut r).unwrap()),
        "batchnorm" => {
            let cfg = BatchNormConfig::new(u("c"));
            Box::new(if c["relu"].as_bool().unwrap() { cfg.relu() } else { cfg }.build::<T>())
        }
        "maxpool" => {
            let p = layers::MaxPool2d::new(u("k"), u("stride")).padding(u("padding"));
            Box::new(if c["ceil"].as_bool().unwrap() { p.ceil_mode() } else { p })
        }
        "avgpool" => Box::new(layers::AvgPool2d::new(u("k"), u("stride")).padding(u("padding"))),
        "global_avgpool" => Box::new(layers::GlobalAvgPool),
        "lrn" => Box::new(layers::LocalResponseNorm::<T>::new(u("n"), f("alpha"), f("beta"), f("k"))),
        "relu" => Box::new(layers::Relu),
        "leaky_relu" => Box::new(layers::LeakyRelu::default()),
        "elu" => Box::new(layers::Elu::default()),
        "sigmoid" => Box::new(layers::Sigmoid),
        "tanh" => Box::new(layers::Tanh),
        "relu6" => Box::new(layers::Relu6),
        "maxout" => Box::new(layers::Maxout::new(u("pieces"))),
        "dropout" => Box::new(layers::Dropout::<T>::new(f("p_keep"), 0).unwrap()),
        "flatten" => Box::new(layers::Flatten),
        k => panic!("no convkit layer for case kind {k}"),
    }
}

/// Sets every parameter and buffer of `layer` from `{prefix}.{name}` tensors.
fn load<T: Float>(layer: &mut dyn Layer<T>, r: &Reference, prefix: &str) {
    layer.visit_params("", &mut |n, p| p.value = r.get(&format!("{prefix}.param.{n}")).cast());
    layer.visit_buffers("", &mut |n, t| *t = r.get(&format!("{prefix}.buffer_in.{n}")).cast());
}

fn f64s<T: Float>(t: &Tensor<T>) -> Vec<f64> {
    t.cast::<f64>().into_vec()
}

/// Runs every layer case in `T`; returns the number of cases and the worst relative error.
fn layer_cases<T: Float>(tol: f64) -> (usize, f64) {
    let r = reference();
    let (mut checked, mut worst) = (0, 0f64);
    let mut close = |what: String, got: &[f64], want: &Tensor<f64>| {
        let e = rel_error(got, want.data(), 0.0);
        assert!(e <= tol, "{what} ({}): relative error {e:.3e} > {tol:e}", T::NAME);
        worst = worst.max(e);
    };
    for c in r.cases.iter().filter(|c| !matches!(c["kind"].as_str(), Some("loss" | "model"))) {
        let name = c["name"].as_str().unwrap();
        let mut layer = build::<T>(c);
        load(layer.as_mut(), &r, name);
        let mode = if c["train"].as_bool().unwrap() { Mode::Train } else { Mode::Eval };
        let x: Tensor<T> = r.get(&format!("{name}.x")).cast();
        let y = layer.forward(&x, mode);
        assert_eq!(y.shape(), r.get(&format!("{name}.y")).shape(), "{name}: output shape");
        close(format!("{name}: forward"), &f64s(&y), r.get(&format!("{name}.y")));
        layer.visit_params("", &mut |_, p| p.grad = Tensor::zeros(p.value.shape()));
        let dx = layer.backward(&x, &y, &r.get(&format!("{name}.dy")).cast());
        close(format!("{name}: dx"), &f64s(&dx), r.get(&format!("{name}.dx")));
        let mut grads = Vec::new();
        layer.visit_params("", &mut |n, p| grads.push((n.to_string(), f64s(&p.grad))));
        for (n, g) in grads {
            close(format!("{name}: d{n}"), &g, r.get(&format!("{name}.grad.{n}")));
        }
        // Batch norm in training mode: the running statistics after the step (unbiased variance, momentum 0.1).
        let mut bufs = Vec::new();
        layer.visit_buffers("", &mut |n, t| bufs.push((n.to_string(), f64s(t))));
        for (n, t) in bufs {
            close(format!("{name}: {n}"), &t, r.get(&format!("{name}.buffer.{n}")));
        }
        checked += 1;
    }
    (checked, worst)
}

#[test]
fn every_layer_matches_pytorch_forward_and_backward() {
    let (checked, worst) = layer_cases::<f64>(TOL);
    assert!(checked >= 30, "every layer case ran ({checked})");
    eprintln!("{checked} layer cases in f64, worst relative error {worst:.2e}");
}

/// The same cases through the f32 kernels that train (GEMM, im2col). f32 rounding: 5e-4 (worst seen 9e-5 on an
/// AVX-512 Xeon, on entries near zero judged against 1e-3 of the tensor's largest).
#[test]
fn every_layer_matches_pytorch_in_f32_too() {
    let (checked, worst) = layer_cases::<f32>(5e-4);
    eprintln!("{checked} layer cases in f32, worst relative error {worst:.2e}");
}

#[test]
fn dropout_keeps_with_probability_p_and_scales_by_one_over_p() {
    // PyTorch's masks are its own random numbers: what must agree is the rule, y in {0, x/p}, E[y] = x.
    let mut d = layers::Dropout::<f64>::new(0.8, 3).unwrap();
    let x = Tensor::from_fn(&[100, 100], |i| 1.0 + (i % 7) as f64);
    let y = d.forward(&x, Mode::Train);
    let kept = y.data().iter().zip(x.data()).filter(|(y, x)| (**y - **x / 0.8).abs() < 1e-12).count();
    let dropped = y.data().iter().filter(|y| **y == 0.0).count();
    assert_eq!(kept + dropped, 10_000);
    assert!((kept as f64 / 1e4 - 0.8).abs() < 0.02, "keep fraction {}", kept as f64 / 1e4);
}

#[test]
fn losses_match_pytorch() {
    let r = reference();
    for name in ["softmax_ce", "svm"] {
        let s = r.get(&format!("{name}.scores"));
        let labels: Vec<usize> = r.get(&format!("{name}.labels")).data().iter().map(|&v| v as usize).collect();
        let out = if name == "svm" { multiclass_svm(s, &labels) } else { softmax_cross_entropy(s, &labels) };
        assert_close(&format!("{name}: loss"), &[out.loss], r.get(&format!("{name}.loss")).data());
        assert_close(&format!("{name}: dscores"), out.dscores.data(), r.get(&format!("{name}.dscores")).data());
    }
    assert!(r.case("svm")["kind"] == "loss");
}

/// The weights both sides compute from a parameter's name and shape (`formula` in torch_layers.py).
fn formula(name: &str, shape: &[usize]) -> Tensor<f64> {
    let n: usize = shape.iter().product();
    let k = name.bytes().map(|b| b as usize).sum::<usize>() % 97;
    Tensor::from_fn(shape, |i| {
        let s = (0.7 * i as f64 + 0.3 * k as f64 + 0.1).sin();
        if shape.len() >= 2 {
            s / ((n / shape[0]) as f64).sqrt()
        } else if name.ends_with("running_var") {
            1.0 + 0.5 * s.abs()
        } else if name.ends_with("weight") {
            1.0 + 0.1 * s
        } else {
            0.1 * s
        }
    })
}

/// Every k-th element, as the reference stores tensors of more than 4096 elements.
fn sample(t: &Tensor<f64>, want_len: usize) -> Vec<f64> {
    let step = t.len().div_ceil(4096).max(1);
    let v: Vec<f64> = t.data().iter().step_by(step).copied().collect();
    assert_eq!(v.len(), want_len, "sampling matches the reference's");
    v
}

fn check_model(name: &str) {
    let r = reference();
    let mut model = convkit::models::build::<f64>(name, Some(10), 0).unwrap();
    let (mut params, mut buffers) = (0, 0);
    model.net.visit_params("", &mut |n, p| {
        p.value = formula(n, p.value.shape());
        params += 1;
    });
    model.net.visit_buffers("", &mut |n, t| {
        *t = formula(n, t.shape());
        buffers += 1;
    });
    let c = r.case(name);
    assert_eq!((params, buffers), (c["params"].as_u64().unwrap() as usize, c["buffers"].as_u64().unwrap() as usize));
    // MobileNetV2's dropout draws its own mask; the reference leaves it out, so it is the identity here too.
    model.net.visit_children("", &mut |n, child| {
        if n == "dropout" {
            *child = Box::new(layers::Flatten);
        }
    });
    let x = r.get(&format!("{name}.x"));
    let labels: Vec<usize> = r.get(&format!("{name}.labels")).data().iter().map(|&v| v as usize).collect();
    let logits = model.forward(x, Mode::Train);
    assert_close(&format!("{name}: logits"), logits.data(), r.get(&format!("{name}.logits")).data());
    let out = softmax_cross_entropy(&logits, &labels);
    assert_close(&format!("{name}: loss"), &[out.loss], r.get(&format!("{name}.loss")).data());
    model.zero_grad();
    model.backward(x, &logits, &out.dscores);
    // A batch-norm shift followed by a bias-free conv and another batch norm in training mode has a gradient of
    // exactly zero (the next normalisation removes any constant): both sides hold rounding noise there, judged
    // against 1e-9 of the largest gradient norm in the model instead of against itself.
    let largest =
        r.tensors.iter().filter(|(k, _)| k.starts_with(&format!("{name}.gradnorm."))).map(|(_, t)| t.data()[0]);
    let floor = 1e-9 * largest.fold(0.0, f64::max);
    let (mut worst, mut zero) = (0f64, 0);
    model.net.visit_params("", &mut |n, p| {
        let want = r.get(&format!("{name}.grad.{n}")).data();
        let want_norm = r.get(&format!("{name}.gradnorm.{n}")).data();
        zero += usize::from(want_norm[0] < floor);
        let e = assert_close_floor(&format!("{name}: d{n}"), &sample(&p.grad, want.len()), want, floor);
        let norm = p.grad.data().iter().map(|v| v * v).sum::<f64>().sqrt();
        let en = assert_close_floor(&format!("{name}: |d{n}|"), &[norm], want_norm, floor);
        worst = worst.max(e).max(en);
    });
    model.net.visit_buffers("", &mut |n, t| {
        let want = r.get(&format!("{name}.buffer.{n}")).data();
        worst = worst.max(assert_close(&format!("{name}: {n}"), &sample(t, want.len()), want));
    });
    eprintln!(
        "{name}: {params} parameter tensors ({zero} with a gradient that is zero in exact arithmetic), {buffers} \
         buffers, worst relative error {worst:.2e}"
    );
}

#[test]
fn lenet5_matches_pytorch() {
    check_model("lenet5");
}

#[test]
fn resnet20_matches_pytorch() {
    check_model("resnet20");
}

#[test]
fn mobilenetv2_matches_pytorch() {
    check_model("mobilenetv2");
}
