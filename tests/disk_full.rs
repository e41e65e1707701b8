//! A full disk while a run writes: the run stops with an error that says the disk is full and which checkpoint is
//! intact; every checkpoint left loads; once space is freed, `--resume` finishes the run with the same weights as
//! an uninterrupted one. The disk is a 6 MB tmpfs mounted for the test (it needs root; elsewhere it says why it
//! skipped, unless CONVKIT_REQUIRE_TMPFS is set, as `.ci/run` does).

use convkit::train::checkpoint::Checkpoint;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_convkit");

/// A mounted tmpfs (and the folder it is mounted on, removed after it is unmounted).
struct Tmpfs {
    at: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(mb: usize) -> Option<Tmpfs> {
        let d = tempfile::tempdir().unwrap();
        let at = d.path().join("disk");
        std::fs::create_dir(&at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "tmpfs"])
            .arg(&at)
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            assert!(std::env::var_os("CONVKIT_REQUIRE_TMPFS").is_none(), "cannot mount a tmpfs for the disk-full test");
            eprintln!("skipped: mounting a tmpfs needs root");
            return None;
        }
        Some(Tmpfs { at, _dir: d })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.at).status();
    }
}

fn train(out: &Path, epochs: &str, resume: bool) -> std::process::Output {
    let mut c = Command::new(BIN);
    c.arg("train");
    if resume {
        c.arg("--resume").arg(out).args(["--epochs", epochs]);
    } else {
        c.args(["--config", "recipes/lenet5-mnist.toml", "--limit", "1000", "--val", "500", "--no-sanity"]);
        c.args(["--epochs", epochs, "--out"]).arg(out);
    }
    c.output().unwrap()
}

/// Fills the file system but for `keep` KiB.
fn fill(disk: &Path, keep: u64) -> PathBuf {
    let out = Command::new("df").args(["-k", "--output=avail"]).arg(disk).output().unwrap();
    let avail: u64 = String::from_utf8_lossy(&out.stdout).lines().nth(1).unwrap().trim().parse().unwrap();
    let filler = disk.join("filler");
    std::fs::write(&filler, vec![0u8; (avail.saturating_sub(keep) * 1024) as usize]).unwrap();
    filler
}

#[test]
fn a_full_disk_stops_the_run_and_keeps_the_last_good_checkpoint() {
    let Some(disk) = Tmpfs::mount(6) else { return };
    let run = disk.at.join("run");
    assert!(train(&run, "1", false).status.success());
    let filler = fill(&disk.at, 50);

    let o = train(&run, "3", true);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("the disk is full") && err.contains("(epoch 1) is intact") && err.contains("--resume"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    for c in ["last", "best"] {
        assert_eq!(Checkpoint::load(&run.join("checkpoints").join(c)).unwrap().meta.epoch, 1, "{c}");
    }
    assert!(
        !run.join("checkpoints/best.tmp").exists() && !run.join("checkpoints/last.tmp").exists(),
        "space given back"
    );

    std::fs::remove_file(filler).unwrap();
    let o = train(&run, "3", true);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let d = tempfile::tempdir().unwrap();
    let straight = d.path().join("straight");
    assert!(train(&straight, "3", false).status.success());
    let w = |r: &Path| std::fs::read(r.join("checkpoints/last/model.safetensors")).unwrap();
    assert!(w(&run) == w(&straight), "the resumed run's weights equal an uninterrupted run's");
}
