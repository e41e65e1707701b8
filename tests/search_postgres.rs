//! Two `convkit search` workers sharing one PostgreSQL study, as workers on two machines would: they complete the
//! budget with no trial run twice, and when one is killed mid-trial the other reclaims its trial once the lease
//! runs out.
//!
//! The test starts its own server from Debian's `postgresql` package (initdb + pg_ctl on loopback, in a
//! temporary folder) and stops it. Without the package it says so and passes, unless CONVKIT_REQUIRE_POSTGRES is
//! set (`.ci/run` sets it, after installing the package).

use convkit::search::storage::{Status, Store, TrialRow};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_convkit");

/// A throwaway PostgreSQL server; stopped when dropped.
struct Server {
    bin: PathBuf,
    data: PathBuf,
    url: String,
    _dir: tempfile::TempDir,
}

fn pg_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|b| b.join("initdb").exists() && b.join("pg_ctl").exists())
        .collect();
    found.sort();
    found.pop()
}

/// Runs a server program as the `postgres` user when we are root (initdb refuses root).
fn as_server_user(bin: &Path, tool: &str) -> Command {
    let root = Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false);
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        c
    } else {
        Command::new(bin.join(tool))
    }
}

impl Server {
    fn start() -> Option<Server> {
        let Some(bin) = pg_bin() else {
            assert!(
                std::env::var_os("CONVKIT_REQUIRE_POSTGRES").is_none(),
                "CONVKIT_REQUIRE_POSTGRES is set but no PostgreSQL server binaries are in /usr/lib/postgresql \
                 (Debian: apt-get install postgresql)"
            );
            eprintln!("skipped: no PostgreSQL server (Debian: apt-get install postgresql)");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("pg");
        std::fs::create_dir(&data).unwrap();
        // The server user must own its folder; world-traversable parents let it reach it.
        let _ = Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()).status();
        let _ = Command::new("chmod").arg("755").arg(dir.path()).status();
        let ok = as_server_user(&bin, "initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "convkit", "--auth=trust", "-E", "UTF8"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success(), "initdb failed");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let opts = format!("-c listen_addresses=127.0.0.1 -p {port} -k {}", data.display());
        let ok = as_server_user(&bin, "pg_ctl")
            .arg("-D")
            .arg(&data)
            .args(["-o", &opts, "-l"])
            .arg(data.join("server.log"))
            .args(["-w", "start"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(
            ok.success(),
            "pg_ctl start failed: {}",
            std::fs::read_to_string(data.join("server.log")).unwrap_or_default()
        );
        let url = format!("postgres://convkit@127.0.0.1:{port}/postgres");
        Some(Server { bin, data, url, _dir: dir })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = as_server_user(&self.bin, "pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .status();
    }
}

fn worker(url: &str, name: &str, out: &Path) -> Child {
    Command::new(BIN)
        .args(["--threads", "1", "search", "--config", "recipes/lenet5-fashion-mnist.toml"])
        .args(["--space", "recipes/lenet5-fashion-mnist-space.toml", "--trials", "6", "--study", "shared"])
        .args(["--set", "epochs=2", "--set", "limit=3000", "--prune", "none", "--lease", "3"])
        .args(["--storage", url, "--worker", name])
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn trials(url: &str) -> Vec<TrialRow> {
    match Store::open(url).and_then(|mut s| s.trials("shared")) {
        Ok(t) => t,
        Err(_) => Vec::new(),
    }
}

#[test]
fn two_workers_share_a_study_and_a_killed_workers_trial_is_reclaimed() {
    let Some(server) = Server::start() else { return };
    let d = tempfile::tempdir().unwrap();
    let mut a = worker(&server.url, "A", &d.path().join("runs"));
    let mut b = worker(&server.url, "B", &d.path().join("runs"));
    // Kill A while it holds a trial, after it has finished one.
    let t0 = Instant::now();
    let killed = loop {
        assert!(t0.elapsed() < Duration::from_secs(120), "worker A never claimed a trial");
        assert!(a.try_wait().unwrap().is_none(), "worker A ended before it was killed");
        let now = trials(&server.url);
        let done_by_a = now.iter().any(|t| t.worker == "A" && t.status == Status::Finished);
        if let Some(t) = now.iter().find(|t| t.worker == "A" && t.status == Status::Running).filter(|_| done_by_a) {
            break t.number;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    a.kill().unwrap();
    a.wait().unwrap();
    let status = b.wait().unwrap();
    assert!(status.success(), "worker B failed");

    let all = trials(&server.url);
    assert_eq!(all.iter().map(|t| t.number).collect::<Vec<_>>(), (0..6).collect::<Vec<_>>(), "each trial once");
    assert!(all.iter().all(|t| t.status == Status::Finished), "{all:#?}");
    let k = &all[killed as usize];
    assert_eq!((k.worker.as_str(), k.attempt), ("B", 2), "A's trial reclaimed by B");
    for t in &all {
        // One attempt each (two for the reclaimed one), and one validation figure per epoch: nothing ran twice
        // to completion.
        assert_eq!(t.curve.len(), 2, "trial {}", t.number);
        assert_eq!(t.attempt, if t.number == killed { 2 } else { 1 });
        assert!(Path::new(t.run_dir.as_deref().unwrap()).join("checkpoints/best").exists());
    }
    // Both workers did work.
    assert!(all.iter().any(|t| t.worker == "A") && all.iter().filter(|t| t.worker == "B").count() >= 2);
}
