//! What the command line shows while work runs: a progress bar per training epoch with an epoch line after it,
//! and a spinner for anything else that takes more than a moment.

use convkit::train::{Callback, EpochLog, Progress, RunInfo, StepStats, Trainer};
use indicatif::{ProgressBar, ProgressStyle};
use std::time::Duration;

/// `convkit train`'s display: the run's header, a bar per epoch, one line per finished epoch.
#[derive(Default)]
pub struct TrainDisplay {
    bar: Option<ProgressBar>,
}

impl Callback for TrainDisplay {
    fn on_train_begin(&mut self, _t: &mut Trainer, r: &RunInfo) -> convkit::Result<()> {
        let what = format!(
            "{} on {} ({} train / {} val images, {} classes)",
            r.model, r.data, r.train_images, r.val_images, r.classes
        );
        if r.resumed {
            eprintln!("resuming {what} after epoch {} of {} -> {}", r.start_epoch, r.epochs, r.dir.display());
        } else {
            eprintln!("training {what} -> {}", r.dir.display());
        }
        if let Some(rep) = &r.sanity {
            eprint!("sanity checks (skip with --no-sanity; all four: convkit sanity):\n{rep}");
            if !rep.passed() {
                eprintln!("warning: a sanity check failed; training anyway");
            }
        }
        if r.start_epoch >= r.epochs {
            eprintln!(
                "nothing left to train: the run has done {} of {} epochs (raise --epochs)",
                r.start_epoch, r.epochs
            );
        }
        Ok(())
    }

    fn on_epoch_begin(&mut self, _t: &mut Trainer, p: &Progress) -> convkit::Result<()> {
        let pb = ProgressBar::new(p.batches as u64);
        pb.set_style(
            ProgressStyle::with_template("{prefix} [{bar:28}] {pos}/{len} {msg} ({eta})")
                .expect("valid template")
                .progress_chars("=> "),
        );
        pb.set_prefix(format!("epoch {}/{}", p.epoch, p.epochs));
        self.bar = Some(pb);
        Ok(())
    }

    fn on_step_end(&mut self, _t: &mut Trainer, _s: &StepStats, p: &Progress) -> convkit::Result<()> {
        if let Some(pb) = &self.bar {
            pb.inc(1);
            pb.set_message(format!(
                "loss {:.4} acc {:.2}% lr {:.3e} {:.0} img/s",
                p.loss(),
                100.0 * p.accuracy(),
                p.lr,
                p.images_per_second()
            ));
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, t: &mut Trainer, l: &EpochLog) -> convkit::Result<()> {
        if let Some(pb) = self.bar.take() {
            pb.finish_and_clear();
        }
        let ema = l.ema_val.map_or(String::new(), |(_, a)| format!(" | polyak val acc {:.2}%", 100.0 * a));
        eprintln!(
            "epoch {}/{}: train loss {:.4} acc {:.2}% | val loss {:.4} acc {:.2}%{}{ema} | lr {:.3e} | {:.1}s \
             (waiting for data {:.1}%){}",
            l.epoch,
            l.epochs,
            l.train_loss,
            100.0 * l.train_accuracy,
            l.val.loss,
            100.0 * l.val.accuracy,
            if l.improved { " (best)" } else { "" },
            l.lr,
            l.seconds,
            100.0 * l.data_wait / l.seconds.max(1e-9),
            if l.rate_cut { " | plateau: lr reduced" } else { "" }
        );
        if let Some(why) = t.stop_reason() {
            eprintln!("{why}");
        }
        Ok(())
    }
}

/// A spinner on stderr while `f` runs (commands that compute for more than a few seconds).
pub fn spinner<R>(msg: impl Into<String>, f: impl FnOnce() -> R) -> R {
    let pb = ProgressBar::new_spinner();
    pb.set_style(ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("valid template"));
    pb.set_message(msg.into());
    pb.enable_steady_tick(Duration::from_millis(120));
    let r = f();
    pb.finish_and_clear();
    r
}
