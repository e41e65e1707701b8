//! Inference alone, for a profiler: a registered model's `Mode::Infer` forward on a synthetic batch, `steps`
//! times after 3 untimed calls, then its rate. `convkit bench` times training first; this leaves the samples
//! `perf record` takes to inference (how ARCHITECTURE.md's "Inference depth first" was found).
//!
//! `cargo run --release --example infer_loop -- NET STEPS BATCH THREADS`, e.g. `resnet20 100 128 1`

use convkit::{Mode, Tensor};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.to_string());
    let net = arg(0, "resnet20");
    let (Ok(steps), Ok(batch), Ok(threads)) = (arg(1, "30").parse(), arg(2, "128").parse(), arg(3, "2").parse()) else {
        eprintln!("usage: infer_loop NET STEPS BATCH THREADS (numbers for the last three)");
        std::process::exit(2);
    };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a thread pool");
    pool.install(|| {
        let mut model = match convkit::models::build::<f32>(&net, Some(10), 0) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        };
        let x = Tensor::from_fn(&model.batch_shape(batch), |i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5);
        for _ in 0..3 {
            std::hint::black_box(model.forward(&x, Mode::Infer));
        }
        let start = std::time::Instant::now();
        for _ in 0..steps {
            std::hint::black_box(model.forward(&x, Mode::Infer));
        }
        let rate = (steps * batch) as f64 / start.elapsed().as_secs_f64();
        println!("{net}, batch {batch}, {threads} threads: inference {rate:.0} img/s");
    });
}
