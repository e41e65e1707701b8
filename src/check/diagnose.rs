//! The lecture's reading of a run, in plain words, from its epochs and its monitor samples: a loss that exploded
//! or never moved, a big train/val gap (overfitting), no gap at low accuracy (underfitting), layers whose
//! update/weight ratio is far from 1e-3, layers whose ReLUs are dead.

use crate::train::callbacks::monitor::Sample;
use crate::train::EpochLog;

/// The update/weight ratios the lecture calls healthy lie around 1e-3; outside this band a layer is named.
const RATIO_BAND: (f64, f64) = (1e-4, 1e-2);

pub fn diagnose(epochs: &[EpochLog], samples: &[Sample]) -> Vec<String> {
    let mut out = Vec::new();
    out.extend(loss_shape(samples, epochs));
    out.extend(gap(epochs));
    out.extend(update_ratios(samples, epochs));
    out.extend(dead_layers(samples));
    if out.is_empty() {
        out.push(
            "nothing alarming: the loss fell, train and validation agree, update ratios and activations look healthy"
                .into(),
        );
    }
    out
}

/// Exploded (non-finite, or the smoothed loss tripled) or flat through the first epoch.
fn loss_shape(samples: &[Sample], epochs: &[EpochLog]) -> Option<String> {
    let first = samples.first()?;
    if let Some(s) = samples.iter().find(|s| !s.loss.is_finite() || s.loss_smooth > 3.0 * first.loss) {
        return Some(format!(
            "the loss exploded ({:.3} at step {} -> {:.3} at step {}): the learning rate ({:.1e}) is too high",
            first.loss, first.step, s.loss, s.step, s.lr
        ));
    }
    // The "first epoch" readings need the run's start: a resumed process's samples begin mid-run, where a warm
    // restart (SGDR) raises the loss on purpose.
    if first.epoch > 1 {
        return None;
    }
    let epoch1: Vec<&Sample> = samples.iter().filter(|s| s.epoch == first.epoch).collect();
    // With one sample in the first epoch (few steps, or a sparse monitor) the epoch's mean training loss stands
    // in for where the loss got to.
    let end = match epoch1.len() {
        0 | 1 => epochs.iter().find(|e| e.epoch == first.epoch)?.train_loss,
        _ => epoch1.last()?.loss_smooth,
    };
    let trained_on = epochs.len() > 1 || epoch1.len() >= 4;
    (trained_on && end > 0.95 * first.loss).then(|| {
        format!(
            "the loss barely moved in the first epoch ({:.3} -> {:.3}): the learning rate ({:.1e}) is probably too low",
            first.loss, end, first.lr
        )
    })
}

/// The last epoch's train/val accuracy gap.
fn gap(epochs: &[EpochLog]) -> Option<String> {
    let l = epochs.last()?;
    let (tr, va) = (l.train_accuracy, l.val.accuracy);
    if tr - va > 0.10 {
        return Some(format!(
            "big train/val gap (train {:.1}%, val {:.1}%): overfitting; add regularization (weight decay, dropout, \
             augmentation) or data",
            100.0 * tr,
            100.0 * va
        ));
    }
    (tr < 0.8 && tr - va < 0.03).then(|| {
        format!(
            "no gap and low accuracy (train {:.1}%, val {:.1}%): underfitting; more capacity, a longer run or a higher \
             rate",
            100.0 * tr,
            100.0 * va
        )
    })
}

/// Median update/weight ratio per weight over the first epoch's samples (later, a decaying schedule lowers it on
/// purpose), leaving out the very first step, whose gradients from a fresh init are large by nature; the layers
/// outside the band, three at most each way.
fn update_ratios(samples: &[Sample], epochs: &[EpochLog]) -> Vec<String> {
    let Some(first) = samples.first().filter(|s| s.epoch == 1) else { return Vec::new() };
    let mut early: Vec<&Sample> = samples.iter().filter(|s| s.epoch == first.epoch).collect();
    if early.len() > 1 {
        early.remove(0);
    }
    let mut medians: Vec<(String, f64)> = first
        .update_ratio
        .keys()
        .filter_map(|k| {
            let mut v: Vec<f64> = early.iter().filter_map(|s| s.update_ratio.get(k).copied()).collect();
            v.sort_by(f64::total_cmp);
            Some((k.clone(), *v.get(v.len().checked_sub(1)? / 2)?))
        })
        .collect();
    medians.sort_by(|a, b| a.1.total_cmp(&b.1));
    let name = |v: &[(String, f64)]| v.iter().map(|(k, r)| format!("{k} {r:.0e}")).collect::<Vec<_>>().join(", ");
    let low: Vec<_> = medians.iter().filter(|(_, r)| *r < RATIO_BAND.0).take(3).cloned().collect();
    let high: Vec<_> = medians.iter().rev().filter(|(_, r)| *r > RATIO_BAND.1).take(3).cloned().collect();
    let mut out = Vec::new();
    if !high.is_empty() {
        out.push(format!(
            "update/weight ratios above 1e-2 in the first epoch ({}): those layers move too fast; lower the rate",
            name(&high)
        ));
    }
    if !low.is_empty() && epochs.first().is_some_and(|e| e.epoch == 1) {
        out.push(format!(
            "update/weight ratios below 1e-4 in the first epoch ({}): those layers barely learn; raise the rate",
            name(&low)
        ));
    }
    out
}

/// Layers where most units never fire on the last sampled batch.
fn dead_layers(samples: &[Sample]) -> Option<String> {
    let last = samples.last()?;
    let dead: Vec<String> = last
        .activations
        .iter()
        .filter(|a| a.dead_fraction > 0.5)
        .map(|a| format!("{} {:.0}%", a.name, 100.0 * a.dead_fraction))
        .collect();
    (!dead.is_empty()).then(|| {
        format!(
            "dead units (zero for every image of a batch) in {}: a rate that was too high, or an init or bias that \
             keeps ReLUs off",
            dead.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::EvalReport;
    use crate::net::probe::ActivationStats;

    fn epoch(n: usize, train: f64, val: f64) -> EpochLog {
        let val = EvalReport { count: 1, loss: 1.0, accuracy: val, per_class: vec![], confusion: vec![] };
        EpochLog {
            epoch: n,
            epochs: 10,
            step: 0,
            train_loss: 1.0,
            train_accuracy: train,
            val,
            improved: false,
            lr: 0.1,
            seconds: 1.0,
            ema_val: None,
            rate_cut: false,
            data_wait: 0.0,
        }
    }

    fn sample(step: u64, epoch: usize, loss: f64, smooth: f64, ratio: f64, dead: f64) -> Sample {
        let a = ActivationStats {
            name: "relu1".into(),
            layer: "relu".into(),
            mean: 0.0,
            std: 1.0,
            zero_fraction: dead,
            dead_fraction: dead,
            lo: 0.0,
            hi: 1.0,
            histogram: vec![],
        };
        Sample {
            step,
            epoch,
            loss,
            loss_smooth: smooth,
            lr: 0.1,
            grad_norm: 1.0,
            update_ratio: [("fc1.weight".to_string(), ratio)].into(),
            activations: vec![a],
        }
    }

    #[test]
    fn each_symptom_is_named() {
        let healthy = [
            sample(0, 1, 2.3, 2.3, 1e-3, 0.0),
            sample(50, 1, 0.5, 1.0, 1e-3, 0.0),
            sample(100, 2, 0.3, 0.4, 1e-3, 0.0),
        ];
        let ok = diagnose(&[epoch(1, 0.9, 0.89), epoch(2, 0.95, 0.94)], &healthy);
        assert_eq!(ok.len(), 1);
        assert!(ok[0].starts_with("nothing alarming"), "{ok:?}");
        let exploded = [sample(0, 1, 2.3, 2.3, 1e-3, 0.0), sample(50, 1, f64::NAN, 9.0, 1e-3, 0.0)];
        assert!(diagnose(&[epoch(1, 0.1, 0.1)], &exploded)[0].contains("too high"));
        let flat: Vec<Sample> = (0..5).map(|i| sample(i * 10, 1, 2.3, 2.3, 1e-6, 0.0)).collect();
        let d = diagnose(&[epoch(1, 0.1, 0.1), epoch(2, 0.1, 0.1)], &flat).join("\n");
        assert!(d.contains("barely moved") && d.contains("underfitting") && d.contains("below 1e-4"), "{d}");
        // One sample in the first epoch: the epoch's mean loss (1.0 in `epoch`) says whether it moved.
        let sparse = [sample(0, 1, 4.7, 4.7, 1e-3, 0.0), sample(32, 2, 0.5, 0.5, 1e-3, 0.0)];
        let d = diagnose(&[epoch(1, 0.9, 0.89), epoch(2, 0.95, 0.94)], &sparse).join("\n");
        assert!(!d.contains("barely moved"), "{d}");
        // A resumed run's samples start mid-run: a warm restart's rising loss is not "barely moved".
        let resumed: Vec<Sample> = (0..5).map(|i| sample(i * 10, 26, 0.3 + 0.01 * i as f64, 0.3, 1e-6, 0.0)).collect();
        let d = diagnose(&[epoch(26, 0.9, 0.89)], &resumed).join("\n");
        assert!(!d.contains("barely moved") && !d.contains("below 1e-4"), "{d}");
        let d = diagnose(&[epoch(1, 0.99, 0.80)], &healthy).join("\n");
        assert!(d.contains("overfitting"), "{d}");
        let d = diagnose(&[epoch(1, 0.9, 0.89)], &[sample(0, 1, 2.3, 2.3, 0.05, 0.9)]).join("\n");
        assert!(d.contains("fc1.weight 5e-2") && d.contains("dead units") && d.contains("relu1 90%"), "{d}");
    }
}
