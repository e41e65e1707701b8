//! What the targets share: a scratch file in memory-backed /dev/shm (the loaders read paths, as users give them).

use std::path::PathBuf;

pub fn scratch(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("convkit-fuzz-{}", std::process::id()));
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm").join(format!("convkit-fuzz-{}", std::process::id()))
    } else {
        dir
    };
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}
