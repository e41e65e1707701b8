//! Crash safety as a harness: `convkit train` is killed with SIGKILL at random moments (mid-step, mid-checkpoint,
//! mid-report: the epochs are short, so many kills land in a write) and resumed each time, until the run ends. After
//! every kill each checkpoint present must load (checksums, finiteness); at the end the weights and metrics must be
//! bit-identical to an uninterrupted run's.
//!
//! `.ci/run` runs the short version (CONVKIT_KILLS unset: 8 kills). The full one:
//! `CONVKIT_KILLS=50 cargo test --release --test kill_harness -- --nocapture`.

use convkit::train::checkpoint::Checkpoint;
use rand::{Rng, SeedableRng};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_convkit");

fn train(out: &Path, resume: bool) -> Command {
    let mut c = Command::new(BIN);
    c.args(["--threads", "2", "train"]);
    if resume {
        c.arg("--resume").arg(out);
    } else {
        c.args(["--config", "recipes/lenet5-mnist.toml", "--epochs", "8", "--limit", "1500", "--val", "500"]);
        c.args(["--no-sanity", "--monitor-every", "5", "--ema-decay", "0.99", "--out"]).arg(out);
    }
    c.stdout(Stdio::null()).stderr(Stdio::null());
    c
}

fn has_checkpoint(run: &Path) -> bool {
    ["last", "last.prev", "best"].iter().any(|c| run.join("checkpoints").join(c).join("meta.json").exists())
}

/// Every checkpoint folder present loads: its checksums match and its weights are finite. A `.tmp` being written
/// when the kill came is not a checkpoint.
fn checkpoints_sound(run: &Path) -> Result<usize, String> {
    let Ok(entries) = std::fs::read_dir(run.join("checkpoints")) else { return Ok(0) };
    let mut n = 0;
    for e in entries {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".tmp") || name.ends_with(".old") || !p.join("meta.json").exists() {
            continue;
        }
        Checkpoint::load(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        n += 1;
    }
    Ok(n)
}

/// metrics.csv without the seconds column (wall time differs run to run).
fn metrics(run: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    text.lines()
        .map(|l| l.split(',').enumerate().filter(|(i, _)| *i != 7).map(|(_, v)| v).collect::<Vec<_>>().join(","))
        .collect()
}

#[test]
fn sigkill_at_random_moments_never_corrupts_and_resumes_bit_identically() {
    let kills_wanted: usize = std::env::var("CONVKIT_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(8);
    let d = tempfile::tempdir().unwrap();
    // CONVKIT_KEEP=1 leaves the runs behind for a post-mortem.
    let root = match std::env::var_os("CONVKIT_KEEP") {
        Some(_) => tempfile::TempDir::with_prefix("kill-harness").unwrap().keep(),
        None => d.path().to_path_buf(),
    };
    eprintln!("runs in {}", root.display());
    let reference = root.join("reference");
    let t0 = Instant::now();
    assert!(train(&reference, false).status().unwrap().success());
    let full = t0.elapsed().as_secs_f64();
    let want_weights = std::fs::read(reference.join("checkpoints/last/model.safetensors")).unwrap();
    let want_ema = std::fs::read(reference.join("checkpoints/ema/model.safetensors")).unwrap();

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let (mut kills, mut cycles, mut sound) = (0, 0, 0);
    while kills < kills_wanted {
        cycles += 1;
        let run = root.join(format!("killed-{cycles}"));
        // Per kill: (seconds after start, the epoch `last` held afterwards).
        let mut log: Vec<(f64, usize)> = Vec::new();
        loop {
            let mut child = train(&run, has_checkpoint(&run)).spawn().unwrap();
            // Anywhere from start-up to past the end of a whole run.
            let at = Duration::from_secs_f64(rng.random_range(0.05..full * 0.6));
            let started = Instant::now();
            let finished = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    assert!(status.success(), "a resumed run failed (cycle {cycles}, after {kills} kills)");
                    break true;
                }
                if started.elapsed() >= at {
                    break false;
                }
                std::thread::sleep(Duration::from_millis(5));
            };
            if finished {
                break;
            }
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            kills += 1;
            log.push((at.as_secs_f64(), Checkpoint::meta_of(&run.join("checkpoints/last")).map_or(0, |m| m.epoch)));
            sound += checkpoints_sound(&run).unwrap_or_else(|e| panic!("after kill {kills}: corrupt checkpoint {e}"));
            if kills >= kills_wanted {
                // Finish this run uninterrupted for the comparison below.
                let resume = has_checkpoint(&run);
                assert!(train(&run, resume).status().unwrap().success());
                break;
            }
        }
        assert_eq!(metrics(&run), metrics(&reference), "cycle {cycles}: metrics.csv (kills: {log:?})");
        assert!(
            std::fs::read(run.join("checkpoints/last/model.safetensors")).unwrap() == want_weights,
            "cycle {cycles}: final weights differ from the uninterrupted run's (kills: {log:?})"
        );
        let ema = std::fs::read(run.join("checkpoints/ema/model.safetensors")).unwrap();
        assert!(ema == want_ema, "cycle {cycles}: Polyak weights differ (kills: {log:?})");
    }
    eprintln!(
        "kill harness: {kills} SIGKILLs over {cycles} runs, {sound} checkpoints checked after kills, 0 corrupt, every \
         run's final weights, Polyak weights and metrics bit-identical to the uninterrupted run's"
    );
}
