//! The architecture zoo: the lecture's tables, the published parameter counts, a forward and backward pass for
//! every registered model, and gradient checks of the blocks the zoo adds.

use convkit::check::gradcheck::{check_layer, random_input, Options};
use convkit::init::rng;
use convkit::layers::Layer;
use convkit::loss::softmax_cross_entropy;
use convkit::models::{self, googlenet, mobilenetv2, resnet};
use convkit::summary::summarize;
use convkit::Mode;

/// From shapes alone, as `convkit summary` and `convkit zoo` do (no weights allocated).
fn summary(name: &str) -> convkit::summary::Summary {
    let mut m = models::build_shapes(name, None).unwrap();
    let input = m.input;
    summarize(&mut m, input, 1).unwrap()
}

#[test]
fn vgg16_matches_the_lecture() {
    let s = summary("vgg16");
    assert_eq!((s.params, s.params_without_bias), (138_357_544, 138_344_128));
    let act = |n: &str| s.rows.iter().find(|r| r.name == n).unwrap().activations;
    // The lecture's table: CONV3-64 [224x224x64] = 3.2M, POOL2 [112x112x64] = 800K, ..., POOL2 [7x7x512] = 25K.
    assert_eq!(act("input"), 224 * 224 * 3);
    assert_eq!(act("conv1_1"), 224 * 224 * 64);
    assert_eq!(act("pool1"), 112 * 112 * 64);
    assert_eq!(act("conv3_3"), 56 * 56 * 256);
    assert_eq!(act("conv5_3"), 14 * 14 * 512);
    assert_eq!(act("pool5"), 7 * 7 * 512);
    let p = |n: &str| s.rows.iter().find(|r| r.name == n).unwrap().params;
    assert_eq!(
        (p("conv1_1"), p("conv1_2"), p("fc6"), p("fc7"), p("fc8")),
        (1792, 36928, 102_764_544, 16_781_312, 4_097_000)
    );
    // Early convs hold the memory, late FCs the parameters.
    assert_eq!(s.most_memory[..2], ["conv1_1", "conv1_2"]);
    assert_eq!(s.most_params[0], "fc6");
    // The lecture's per-layer values add up to about 15.2M activations (its slide's "24M" total overcounts);
    // convkit also stores flatten, ReLU and dropout outputs after the FCs: a few tens of thousands more.
    assert!((15.2e6..15.4e6).contains(&(s.activations_per_image as f64)), "{}", s.activations_per_image);
    assert_eq!(s.forward_backward_bytes_per_image, 2 * s.forward_bytes_per_image);
    assert!((s.macs_per_image as f64 / 15.47e9 - 1.0).abs() < 0.01, "{}", s.macs_per_image);
}

#[test]
fn alexnet_shapes_follow_the_lecture() {
    let s = summary("alexnet");
    let shape = |n: &str| s.rows.iter().find(|r| r.name == n).unwrap().output.clone();
    // [55x55x96] after CONV1, [27x27x96] after POOL1, ..., [6x6x256] after POOL3 (C x H x W here).
    for (layer, want) in [
        ("conv1", vec![96, 55, 55]),
        ("pool1", vec![96, 27, 27]),
        ("norm1", vec![96, 27, 27]),
        ("conv2", vec![256, 27, 27]),
        ("pool2", vec![256, 13, 13]),
        ("norm2", vec![256, 13, 13]),
        ("conv3", vec![384, 13, 13]),
        ("conv4", vec![384, 13, 13]),
        ("conv5", vec![256, 13, 13]),
        ("pool3", vec![256, 6, 6]),
        ("fc6", vec![4096]),
        ("fc7", vec![4096]),
        ("fc8", vec![1000]),
    ] {
        assert_eq!(shape(layer), want, "{layer}");
    }
    // CONV1: (11*11*3)*96 weights + 96 biases = 35K parameters, as the lecture computes.
    assert_eq!(s.rows.iter().find(|r| r.name == "conv1").unwrap().params, 34_944);
}

#[test]
fn parameter_counts_match_the_published_ones() {
    for (name, want) in [
        ("resnet18", 11_689_512),
        ("resnet34", 21_797_672),
        ("resnet50", 25_557_032),
        ("resnet101", 44_549_160),
        ("resnet152", 60_192_808),
        ("googlenet", 6_624_904),
        ("mobilenetv2", 3_504_872),
        ("vgg16_bn", 138_365_992),
        ("vgg19", 143_667_240),
        ("alexnet", 62_378_344),
    ] {
        assert_eq!(summary(name).params, want, "{name}");
    }
    // The paper-faithful GoogLeNet (5x5 branches, biases, no BN): documented count.
    assert_eq!(summary("googlenet_paper").params, 6_998_552);
}

#[test]
fn every_model_runs_forward_and_backward() {
    for info in models::list() {
        let mut m = models::build::<f32>(info.name, None, 0).unwrap();
        // The shapes-only build accounts for exactly the same network.
        let (real, shapes) = (summarize(&mut m, info.input, 1).unwrap(), summary(info.name));
        assert_eq!(
            (real.params, real.macs_per_image, real.activations_per_image, real.rows.len()),
            (shapes.params, shapes.macs_per_image, shapes.activations_per_image, shapes.rows.len()),
            "{}",
            info.name
        );
        let x = random_input(&m.batch_shape(1), 1).cast::<f32>();
        let y = m.forward(&x, Mode::Train);
        assert_eq!(y.shape(), &[1, info.classes], "{}", info.name);
        assert!(y.data().iter().all(|v| v.is_finite()), "{}: non-finite scores", info.name);
        let out = softmax_cross_entropy(&y, &[info.classes - 1]);
        m.zero_grad();
        let dx = m.backward(&x, &y, &out.dscores);
        assert_eq!(dx.shape(), x.shape());
        let mut nonzero = 0;
        m.visit_params(&mut |_, p| nonzero += usize::from(p.grad.max_abs() > 0.0));
        assert!(
            nonzero > 0 && dx.data().iter().all(|v| v.is_finite()),
            "{}: no gradient reached the parameters",
            info.name
        );
        let e = m.forward(&x, Mode::Eval);
        assert!(e.data().iter().all(|v| v.is_finite()));
    }
}

#[test]
fn gradcheck_inception_bottleneck_inverted_residual() {
    let mut r = rng(11);
    let opts = Options { max_elements: 16, ..Options::default() };
    for v in [googlenet::Variant { batch_norm: true, k5: 3 }, googlenet::Variant { batch_norm: false, k5: 5 }] {
        let mut inc = googlenet::inception::<f64>(v, 4, 2, 2, 3, 2, 2, 2, &mut r).unwrap();
        assert_eq!(inc.output_shape(&[2, 4, 6, 6]).unwrap(), vec![2, 9, 6, 6]);
        let rep = check_layer(&mut inc, &random_input(&[2, 4, 6, 6], 2), &opts);
        assert!(rep.judged_error() < 1e-5, "inception\n{rep}");
    }
    for (cin, width, stride) in [(8, 2, 1), (4, 2, 2)] {
        let mut b = resnet::bottleneck::<f64>(cin, width, stride, &mut r).unwrap();
        let rep = check_layer(&mut b, &random_input(&[2, cin, 6, 6], 3), &opts);
        assert!(rep.judged_error() < 1e-5, "bottleneck\n{rep}");
    }
    for (cin, cout, stride, t) in [(4, 4, 1, 3), (4, 6, 2, 2), (3, 3, 1, 1)] {
        let mut b =
            mobilenetv2::inverted_residual::<f64>(cin, cout, stride, t, mobilenetv2::Variant::Torchvision, &mut r)
                .unwrap();
        for mode in [Mode::Train, Mode::Eval] {
            let rep = check_layer(b.as_mut(), &random_input(&[2, cin, 6, 6], 4), &Options { mode, ..opts.clone() });
            assert!(rep.judged_error() < 1e-5, "inverted residual {mode:?}\n{rep}");
            assert!(rep.kinks_skipped() <= 4, "{rep}");
        }
    }
}

#[test]
fn zoo_plot_writes_a_picture() {
    let d = tempfile::tempdir().unwrap();
    let entries: Vec<convkit::zoo::Entry> = ["resnet18", "googlenet", "mobilenetv2"]
        .iter()
        .map(|n| {
            let s = summary(n);
            convkit::zoo::Entry {
                model: n.to_string(),
                input: [3, 224, 224],
                params: s.params,
                macs_per_image: s.macs_per_image,
                activations_per_image: s.activations_per_image,
                forward_bytes_per_image: s.forward_bytes_per_image,
                top1: convkit::zoo::published_top1(n),
            }
        })
        .collect();
    let p = d.path().join("zoo.png");
    let labels = convkit::zoo::plot(&entries, &p, None).unwrap();
    assert_eq!(labels.len(), 1 + 3, "the legend and a label for each bubble");
    let img = image::open(&p).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (1200, 800));
    // Three coloured bubbles (radii 10 to 17 px, about 1,700 px together): pixels neither white nor grey.
    let coloured = img.pixels().filter(|p| p.0.iter().max().unwrap() - p.0.iter().min().unwrap() > 30).count();
    assert!(coloured > 1000, "{coloured} coloured pixels");
}
