//! Parallel branches whose outputs are concatenated along the channel axis (the Inception module's filter
//! concatenation). The gradient is split by channel and each branch's input gradient is summed.

use super::Sequential;
use crate::layers::{join, BufferVisitor, ChildVisitor, Layer, Mode, ParamVisitor, Walker};
use crate::tensor::{Float, Tensor};
use crate::{Error, Result};

pub struct Concat<T: Float> {
    pub branches: Vec<(String, Sequential<T>)>,
    outs: Vec<Tensor<T>>,
}

impl<T: Float> Concat<T> {
    pub fn new(branches: Vec<(String, Sequential<T>)>) -> Self {
        Concat { branches, outs: Vec::new() }
    }
}

impl<T: Float> Layer<T> for Concat<T> {
    fn describe(&self) -> String {
        let parts: Vec<String> = self.branches.iter().map(|(_, b)| format!("[{}]", b.describe())).collect();
        format!("concat({})", parts.join(" | "))
    }

    fn output_shape(&self, x: &[usize]) -> Result<Vec<usize>> {
        let mut out: Option<Vec<usize>> = None;
        for (name, b) in &self.branches {
            let s = b.output_shape(x).map_err(|e| e.in_layer(name))?;
            match &mut out {
                None => out = Some(s),
                Some(o) => {
                    if o.len() != s.len() || o[0] != s[0] || o[2..] != s[2..] {
                        return Err(Error::Shape(format!(
                            "concat: branch {name} gives {s:?}, others {o:?}: spatial sizes differ"
                        )));
                    }
                    o[1] += s[1];
                }
            }
        }
        out.ok_or_else(|| Error::Config("concat with no branches".into()))
    }

    fn forward(&mut self, x: &Tensor<T>, mode: Mode) -> Tensor<T> {
        self.outs = self.branches.iter_mut().map(|(_, b)| b.forward(x, mode)).collect();
        let (bsz, s) = (self.outs[0].batch(), self.outs[0].shape()[2..].iter().product::<usize>());
        let ctot: usize = self.outs.iter().map(|o| o.shape()[1]).sum();
        let mut shape = self.outs[0].shape().to_vec();
        shape[1] = ctot;
        let mut y = Tensor::uninit(&shape);
        for i in 0..bsz {
            let mut off = i * ctot * s;
            for o in &self.outs {
                let len = o.shape()[1] * s;
                y.data_mut()[off..off + len].copy_from_slice(&o.data()[i * len..(i + 1) * len]);
                off += len;
            }
        }
        if !mode.keeps_activations() {
            self.outs.clear();
        }
        y
    }

    fn backward(&mut self, x: &Tensor<T>, _y: &Tensor<T>, dy: &Tensor<T>) -> Tensor<T> {
        let outs = std::mem::take(&mut self.outs);
        let (bsz, s) = (x.batch(), dy.shape()[2..].iter().product::<usize>());
        let ctot = dy.shape()[1];
        let mut dx: Option<Tensor<T>> = None;
        let mut c0 = 0;
        for ((_, b), o) in self.branches.iter_mut().zip(&outs) {
            let len = o.shape()[1] * s;
            let mut dyb = Tensor::uninit(o.shape());
            for i in 0..bsz {
                let src = &dy.data()[i * ctot * s + c0 * s..][..len];
                dyb.data_mut()[i * len..(i + 1) * len].copy_from_slice(src);
            }
            let g = b.backward(x, o, &dyb);
            match &mut dx {
                None => dx = Some(g),
                Some(d) => d.add_assign(&g),
            }
            c0 += o.shape()[1];
        }
        dx.expect("concat has branches")
    }

    fn macs(&self, x: &[usize]) -> u64 {
        self.branches.iter().map(|(_, b)| b.macs(x)).sum()
    }

    fn visit_params(&mut self, prefix: &str, f: &mut ParamVisitor<'_, T>) {
        for (n, b) in &mut self.branches {
            b.visit_params(&join(prefix, n), f);
        }
    }
    fn visit_buffers(&mut self, prefix: &str, f: &mut BufferVisitor<'_, T>) {
        for (n, b) in &mut self.branches {
            b.visit_buffers(&join(prefix, n), f);
        }
    }
    fn freeze_noise(&mut self, frozen: bool) {
        for (_, b) in &mut self.branches {
            b.freeze_noise(frozen);
        }
    }
    fn walk(&mut self, name: &str, input: &[usize], w: &mut dyn Walker) -> Vec<usize> {
        for (n, b) in &mut self.branches {
            b.walk(&join(name, n), input, w);
        }
        let out = self.output_shape(input).unwrap_or_default();
        w.join(&join(name, "concat"), "filter concatenation", &out);
        out
    }
    fn visit_children(&mut self, prefix: &str, f: &mut ChildVisitor<'_, T>) {
        for (n, b) in &mut self.branches {
            b.visit_children(&join(prefix, n), f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::gradcheck::{check_layer, random_input, Options};
    use crate::init::rng;
    use crate::layers::conv::Conv2dConfig;
    use crate::layers::{MaxPool2d, Tanh};

    #[test]
    fn gradcheck_inception_like_branches() {
        let mut r = rng(5);
        let mut c = Concat::new(vec![
            ("b1".into(), Sequential::new().with("conv", Conv2dConfig::new(3, 2, 1).build(&mut r).unwrap())),
            (
                "b2".into(),
                Sequential::new()
                    .with("conv", Conv2dConfig::new(3, 4, 3).padding(1).build(&mut r).unwrap())
                    .with("act", Tanh),
            ),
            ("b3".into(), Sequential::new().with("pool", MaxPool2d::new(3, 1).padding(1))),
        ]);
        assert_eq!(c.output_shape(&[2, 3, 5, 5]).unwrap(), vec![2, 9, 5, 5]);
        let rep = check_layer(&mut c, &random_input(&[2, 3, 5, 5], 4), &Options::default());
        assert!(rep.judged_error() < 1e-6, "{rep}");
    }
}
