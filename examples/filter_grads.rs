//! Times the two direct filter-gradient kernels on the CIFAR ResNets' 3x3 stride-1 shapes, 16 images (one slice of
//! a batch of 128 on two cores), one core, best of 15 calls: `kernels::filter_grad` (36 multiplies per output pixel
//! and channel pair) against `kernels::winograd_filter_grad` (16 per 4 pixels), with Winograd's forward beside.
//!
//! `taskset -c 0 cargo run --release --example filter_grads`

use convkit::kernels::{filter_grad, im2col::Geometry, winograd, winograd_filter_grad};
use std::time::Instant;

fn best(mut f: impl FnMut()) -> f64 {
    let once = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed().as_secs_f64()
    };
    (0..15).map(|_| once(&mut f)).fold(f64::MAX, f64::min)
}

fn main() {
    let n = 16;
    for (c, k, h) in [(3, 16, 32), (16, 16, 32), (32, 32, 16), (64, 64, 8)] {
        let x: Vec<f32> = (0..n * c * h * h).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
        let w: Vec<f32> = (0..k * c * 9).map(|i| ((i * 31) % 100) as f32 / 100.0 - 0.5).collect();
        let u = winograd::weights(&w, k, c);
        let mut y = vec![0f32; n * k * h * h];
        let gflop = |s: f64| 2.0 * (n * c * k * 9 * h * h) as f64 / s / 1e9;
        let forward = best(|| winograd::conv(&x, [c, h, h], &u, k, &mut y, winograd::Epilogue::NONE));
        let g = Geometry { c, h, w: h, kh: 3, kw: 3, stride: 1, pad: 1 };
        let mut dw = vec![0f32; c * 9 * k];
        let direct = if filter_grad::applies::<f32>(&g, k) {
            best(|| filter_grad::accumulate(&x, &y, &g, k, &mut dw))
        } else {
            f64::NAN
        };
        let wino = best(|| winograd_filter_grad::accumulate(&x, &y, [c, h, h], k, &mut dw));
        println!(
            "{c}->{k} on {h}x{h}, {n} images: Winograd forward {:.3} ms, dW direct {:.3} ms ({:.0} GFLOP/s), dW \
             Winograd {:.3} ms ({:.0} GFLOP/s, direct-equivalent)",
            forward * 1e3,
            direct * 1e3,
            gflop(direct),
            wino * 1e3,
            gflop(wino)
        );
    }
}
