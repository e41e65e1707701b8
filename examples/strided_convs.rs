//! Times the forward pass of `resnet20`'s two downsampling convs (3x3, stride 2: 16 -> 32 on 32x32, 32 -> 64 on
//! 16x16), batch 128, one thread, best of 15 calls: the per-layer figures in ARCHITECTURE.md.
//!
//! `cargo run --release --example strided_convs`

use convkit::layers::conv::Conv2dConfig;
use convkit::{Layer, Mode, Tensor};
use std::time::Instant;

fn main() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    pool.install(|| {
        for (c, h) in [(16, 32), (32, 16)] {
            let mut conv =
                Conv2dConfig::new(c, 2 * c, 3).stride(2).padding(1).bias(false).build::<f32>(&mut rand::rng()).unwrap();
            let x = Tensor::from_fn(&[128, c, h, h], |i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5);
            let best = (0..15)
                .map(|_| {
                    let t = Instant::now();
                    std::hint::black_box(conv.forward(&x, Mode::Infer));
                    t.elapsed().as_secs_f64()
                })
                .fold(f64::MAX, f64::min);
            println!("{c}->{} s2 {h}x{h}: forward {:.2} ms", 2 * c, best * 1e3);
        }
    });
}
