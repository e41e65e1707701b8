//! Whole-network gradient checks in f64: every parameter tensor of the benchmark nets, in train and eval mode.

use convkit::check::gradcheck::{check_network, random_input, Options};
use convkit::{models, Mode};

fn check(name: &str, mode: Mode) {
    let mut m = models::build::<f64>(name, None, 0).unwrap();
    if mode == Mode::Eval {
        // Give batch norm non-trivial running statistics first.
        for _ in 0..3 {
            m.net_forward_for_stats(&random_input(&m.batch_shape(4), 7));
        }
    }
    let x = random_input(&m.batch_shape(2), 1);
    let opts = Options { max_elements: 12, mode, ..Options::default() };
    let rep = check_network(&mut m.net, &x, &[3, 8], Default::default(), &opts);
    assert!(rep.judged_error() < 1e-5, "{name} {mode:?}\n{rep}");
    // Every tensor was actually checked somewhere, not skipped wholesale as kinks.
    for t in &rep.tensors {
        assert!(t.checked * 2 >= t.checked + t.kinks_skipped, "{name}: {} mostly skipped\n{rep}", t.name);
    }
}

#[test]
fn small_train_and_eval() {
    check("small", Mode::Train);
    check("small", Mode::Eval);
}

#[test]
fn resnet8_train_and_eval() {
    check("resnet8", Mode::Train);
    check("resnet8", Mode::Eval);
}
