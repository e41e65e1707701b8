//! Every subcommand with hostile arguments (zero, negative, huge, NaN, missing files, nonsense names): each must
//! end within a minute with a non-zero exit and one clear line starting `error:`, and never panic.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_convkit");

const CASES: &[&str] = &[
    "bench --batch 0 --net small",
    "bench --batch 100000000 --net small --steps 1 --runs 1",
    "bench --steps 0 --net small",
    "bench --net nope",
    "--threads 0 models",
    "--threads 100000 models",
    "gradcheck --layer conv --batch 0",
    "gradcheck --layer conv --elements 0",
    "gradcheck --layer nope",
    "gradcheck --model nope",
    "gradcheck --model vgg16 --batch 100000",
    "init-stats --layers 0",
    "init-stats --width 100000000 --layers 1",
    "init-stats --activation nope",
    "init-stats --init small:nan",
    "summary nope",
    "summary resnet50 --input 3x0x0",
    "summary resnet50 --input banana",
    "sanity --config recipes/lenet5-mnist.toml --set batch_size=0",
    "lr-find --config recipes/lenet5-mnist.toml --set batch_size=0",
    "lr-find --config recipes/lenet5-mnist.toml --start 1 --end 0.001",
    "train --config recipes/lenet5-mnist.toml --batch-size 0",
    "train --config recipes/lenet5-mnist.toml --batch-size 100000000",
    "train --config recipes/lenet5-mnist.toml --epochs 0",
    "train --config recipes/lenet5-mnist.toml --lr nan",
    "train --config recipes/lenet5-mnist.toml --lr=-1",
    "train --config recipes/lenet5-mnist.toml --lr inf",
    "train --config recipes/lenet5-mnist.toml --limit 0",
    "train --config recipes/lenet5-mnist.toml --val 100000000",
    "train --config recipes/lenet5-mnist.toml --set augment.bogus=1",
    "train --config recipes/lenet5-mnist.toml --set epohcs=3",
    "train --config recipes/lenet5-mnist.toml --schedule sgdr:period=0",
    "train --config recipes/lenet5-mnist.toml --ema-decay 1.5",
    "train --config recipes/lenet5-mnist.toml --clip-norm=-1",
    "train --config /nonexistent.toml",
    "train --model lenet5 --data mnist:/nowhere/digits",
    "train --model lenet5 --data nonsense",
    "train --resume /nonexistent",
    "optim-race --steps 0 --out /tmp/convkit-hostile-race.png",
    "eval --run /nonexistent",
    "eval --checkpoint /nonexistent --tta nope",
    "predict --run /nonexistent x.png",
    "augment --config recipes/lenet5-mnist.toml --n 0 --out /tmp/convkit-hostile-aug.png",
    "augment --config recipes/lenet5-mnist.toml --n 100000 --out /tmp/convkit-hostile-aug.png",
    "ensemble --runs /nonexistent",
    "ensemble --snapshots /nonexistent --last 0",
    "features --from /nonexistent --model mobilenetv2_keras --data folder:x",
    "finetune --from /nonexistent --model lenet5 --data mnist:../shared/data/mnist --freeze until=nope",
    "search --config recipes/lenet5-mnist.toml --space /nonexistent",
    "search --config recipes/lenet5-mnist.toml --space recipes/lenet5-fashion-mnist-space.toml --trials 0 --storage sqlite:/tmp/convkit-hostile.db",
    "search --study x --workers 0",
    "search --study x --lease 0",
    "search --study x --storage postgres://nobody@127.0.0.1:1/x",
    "search show --study nope --storage sqlite:/tmp/convkit-hostile.db",
    "search demo-random-vs-grid --trials 0",
    "data fetch nothing",
    "data fetch mnist --mirror http://127.0.0.1:1/",
    "zoo --plot /nonexistent/dir/z.png",
    "report /nonexistent",
    "no-such-command",
];

#[test]
fn hostile_arguments_get_one_clear_error_and_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for case in CASES {
        let mut child = Command::new(BIN)
            .args(case.split_whitespace())
            .env("CONVKIT_DATA", dir.path())
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break Some(s);
            }
            if started.elapsed() > Duration::from_secs(60) {
                child.kill().unwrap();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        let first =
            err.lines().find(|l| !l.trim().is_empty() && !l.contains(" INFO ") && !l.contains(" WARN ")).unwrap_or("");
        let bad = match status {
            None => Some("hung for a minute".to_string()),
            Some(_) if err.contains("panicked") => Some(format!("panicked: {err}")),
            Some(s) if s.success() => Some("exited 0".to_string()),
            Some(s) if !matches!(s.code(), Some(1 | 2)) => Some(format!("exit status {s}")),
            Some(_) if !first.starts_with("error:") => Some(format!("first line is not an error: {first:?}")),
            _ => None,
        };
        if let Some(why) = bad {
            failures.push(format!("convkit {case}: {why}"));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases:\n{}", failures.len(), CASES.len(), failures.join("\n"));
}
