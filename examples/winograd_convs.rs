//! Times convkit's Winograd F(2x2, 3x3) forward on `resnet20`'s three stride-1 shapes, batch 128, one core (best of
//! 15 calls): the per-layer figures in ARCHITECTURE.md. `bench/winograd_convs.sh` runs it beside PyTorch's conv.
//!
//! `cargo run --release --example winograd_convs`

use convkit::kernels::winograd;
use std::time::Instant;

fn main() {
    for (c, h) in [(16, 32), (32, 16), (64, 8)] {
        let n = 128;
        let x: Vec<f32> = (0..n * c * h * h).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
        let w: Vec<f32> = (0..c * c * 9).map(|i| ((i * 31) % 100) as f32 / 100.0 - 0.5).collect();
        let u = winograd::weights(&w, c, c);
        let mut y = vec![0f32; n * c * h * h];
        let best = (0..15)
            .map(|_| {
                let t = Instant::now();
                winograd::conv(&x, [c, h, h], &u, c, &mut y, winograd::Epilogue::NONE);
                t.elapsed().as_secs_f64()
            })
            .fold(f64::MAX, f64::min);
        println!("{c}->{c} {h}x{h}: forward {:.2} ms", best * 1e3);
    }
}
