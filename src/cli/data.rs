//! `convkit data fetch`: the datasets from their publishers, verified, with a progress bar.

use anyhow::{Context, Result};
use convkit::data::fetch::{self, Fetched};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum DataCmd {
    /// Download a dataset from its publisher (mnist, fashion-mnist, cifar10), check each file against its published
    /// MD5 and only then give it its final name; an interrupted download resumes where it stopped.
    ///
    /// Recipes find the data in ../shared/data first, then in this folder.
    Fetch {
        /// mnist, fashion-mnist or cifar10 (the binary version, unpacked into cifar-10-batches-bin/).
        name: String,
        /// Where to put it (default: $CONVKIT_DATA, else $XDG_DATA_HOME/convkit, else ~/.local/share/convkit).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Fetch from this address instead of the publisher's (a local mirror).
        #[arg(long)]
        mirror: Option<String>,
    },
}

pub fn data(cmd: DataCmd) -> Result<()> {
    let DataCmd::Fetch { name, dir, mirror } = cmd;
    let src = fetch::source(&name)?;
    let dir = dir.or_else(fetch::user_data_dir).context("no data folder: give --dir DIR (or set CONVKIT_DATA)")?;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:28}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let mut progress = |file: &str, got: u64, total: Option<u64>| {
        bar.set_message(file.to_string());
        bar.set_length(total.unwrap_or(got));
        bar.set_position(got);
    };
    let result = fetch::fetch(src, &dir, mirror.as_deref(), &mut progress);
    bar.finish_and_clear();
    for (file, what) in result? {
        match what {
            Fetched::Present => eprintln!("{file}: already there, MD5 verified"),
            Fetched::Downloaded { bytes, resumed_from: 0 } => eprintln!("{file}: {bytes} bytes, MD5 verified"),
            Fetched::Downloaded { bytes, resumed_from } => {
                eprintln!("{file}: {bytes} bytes (resumed after {resumed_from}), MD5 verified")
            }
        }
    }
    let at = dir.join(src.folder);
    let kind = match src.name {
        "cifar10" => "cifar10-bin",
        k => k,
    };
    println!("{}", at.display());
    eprintln!("use it as data = \"{kind}:{}\"", at.display());
    Ok(())
}
