//! Which layers fine-tuning trains. Frozen layers keep their pretrained weights: they get no weight gradients and
//! no updates, and their batch norm keeps its running statistics (eval mode), as `model.eval()` on a frozen
//! backbone does in PyTorch. The head (the last layer with weights) always trains.

use crate::layers::ParamKind;
use crate::models::Model;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Freeze {
    /// Everything but the head: a linear classifier on fixed features, trained end to end.
    All,
    /// The top-level layers up to and including this one (`block13`): fine-tune the rest.
    Until(String),
    /// Nothing: fine-tune every layer from the pretrained start.
    None,
}

impl Default for Freeze {
    fn default() -> Self {
        Freeze::All
    }
}

impl std::str::FromStr for Freeze {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "all" => Ok(Freeze::All),
            "none" => Ok(Freeze::None),
            _ => match s.strip_prefix("until=") {
                Some(l) if !l.is_empty() => Ok(Freeze::Until(l.to_string())),
                _ => Err(Error::Config(format!("freeze '{s}': use all, none or until=LAYER (e.g. until=block13)"))),
            },
        }
    }
}

impl TryFrom<String> for Freeze {
    /// A plain message: the recipe parser adds its own context.
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Self, String> {
        s.parse().map_err(|e: Error| match e {
            Error::Config(m) => m,
            other => other.to_string(),
        })
    }
}

impl From<Freeze> for String {
    fn from(f: Freeze) -> String {
        match f {
            Freeze::All => "all".into(),
            Freeze::None => "none".into(),
            Freeze::Until(l) => format!("until={l}"),
        }
    }
}

/// Freezes the layers `f` names and scales the rates: `backbone` for trainable layers before the head, `head`
/// for the head (multiples of the run's rate). With `bn` every batch norm is frozen too, in trainable layers as
/// well (its statistics stay the pretrained ones: Keras' advice for fine-tuning on small batches). Returns the
/// number of frozen parameter values.
pub fn apply(model: &mut Model<f32>, f: &Freeze, backbone: f64, head: f64, bn: bool) -> Result<usize> {
    let names: Vec<String> = model.net.layers().map(|(n, _)| n.to_string()).collect();
    let head_at = head_index(model)?;
    let last_frozen: Option<usize> = match f {
        Freeze::All => head_at.checked_sub(1),
        Freeze::None => None,
        Freeze::Until(l) => {
            let i = names.iter().position(|n| n == l).ok_or_else(|| {
                Error::Config(format!("freeze until={l}: no such layer; the top-level layers are {}", names.join(", ")))
            })?;
            if i >= head_at {
                return Err(Error::Config(format!(
                    "freeze until={l} would freeze the head '{}' too: pick an earlier layer, or freeze all",
                    names[head_at]
                )));
            }
            Some(i)
        }
    };
    let mut frozen = 0;
    for (i, (_, l)) in model.net.layers_mut().enumerate() {
        let freeze = last_frozen.is_some_and(|k| i <= k);
        let scale = if i == head_at { head } else { backbone };
        l.visit_params("", &mut |_, p| {
            p.frozen = freeze || (bn && p.kind == ParamKind::Norm);
            p.lr_scale = scale;
            if p.frozen {
                frozen += p.value.len();
            }
        });
    }
    Ok(frozen)
}

/// The head: the last top-level layer with weights.
pub fn head_index(model: &mut Model<f32>) -> Result<usize> {
    let mut last = None;
    for (i, (_, l)) in model.net.layers_mut().enumerate() {
        let mut n = 0;
        l.visit_params("", &mut |_, _| n += 1);
        if n > 0 {
            last = Some(i);
        }
    }
    last.ok_or_else(|| Error::Config("the model has no weights to train".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::softmax_cross_entropy;
    use crate::Mode;

    #[test]
    fn parses_and_prints() {
        for s in ["all", "none", "until=block13"] {
            assert_eq!(String::from(s.parse::<Freeze>().unwrap()), s);
        }
        assert!("until=".parse::<Freeze>().is_err() && "some".parse::<Freeze>().is_err());
    }

    #[test]
    fn frozen_layers_get_no_gradient_and_keep_their_batch_norm_statistics() {
        let mut m = crate::models::build::<f32>("resnet8", Some(10), 1).unwrap();
        let n = apply(&mut m, &Freeze::Until("stage2".into()), 0.1, 1.0, false).unwrap();
        assert!(n > 0);
        let before = crate::train::checkpoint::model_tensors(&mut m);
        let x = crate::check::gradcheck::random_input(&[4, 3, 32, 32], 2).cast::<f32>();
        let y = m.forward(&x, Mode::Train);
        let out = softmax_cross_entropy(&y, &[1, 2, 3, 4]);
        m.backward(&x, &y, &out.dscores);
        let after = crate::train::checkpoint::model_tensors(&mut m);
        let mut seen = (0, 0);
        m.visit_params(&mut |name, p| {
            let stage1 = name.starts_with("stage1") || name.starts_with("conv1") || name.starts_with("bn1");
            if stage1 {
                assert!(p.frozen && p.grad.max_abs() == 0.0 && p.lr_scale == 0.1, "{name}");
                seen.0 += 1;
            } else if name.starts_with("fc") {
                assert!(!p.frozen && p.grad.max_abs() > 0.0 && p.lr_scale == 1.0, "{name}");
                seen.1 += 1;
            }
        });
        assert!(seen.0 > 0 && seen.1 > 0, "{seen:?}");
        // Running statistics of frozen batch norm did not move; those of trainable layers did.
        for ((name, a), (_, b)) in before.iter().zip(&after) {
            if name.contains("running_mean") && (name.starts_with("stage1") || name.starts_with("bn1")) {
                assert_eq!(a.data(), b.data(), "{name}");
            }
            if name.contains("running_mean") && name.starts_with("stage3") {
                assert_ne!(a.data(), b.data(), "{name}");
            }
        }
    }

    #[test]
    fn frozen_batch_norm_everywhere_leaves_other_trainable_weights_alone() {
        let mut m = crate::models::build::<f32>("resnet8", Some(10), 1).unwrap();
        apply(&mut m, &Freeze::None, 1.0, 1.0, true).unwrap();
        m.visit_params(&mut |name, p| assert_eq!(p.frozen, p.kind == ParamKind::Norm, "{name}"));
    }

    #[test]
    fn refuses_unknown_layers_and_freezing_the_head() {
        let mut m = crate::models::build::<f32>("resnet8", Some(10), 1).unwrap();
        let e = apply(&mut m, &Freeze::Until("stage9".into()), 1.0, 1.0, false).unwrap_err().to_string();
        assert!(e.contains("no such layer") && e.contains("stage1"), "{e}");
        assert!(apply(&mut m, &Freeze::Until("fc".into()), 1.0, 1.0, false).is_err());
    }
}
