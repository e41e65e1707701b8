//! The lecture's per-layer accounting: output shape, activation memory, parameters and multiply-adds, layer by
//! layer, with totals and the observation that early convs hold the memory while late FC layers hold the
//! parameters.

use crate::layers::{Layer, Leaf, Walker};
use crate::models::Model;
use crate::tensor::Float;
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub name: String,
    pub layer: String,
    /// Per image: `[C, H, W]` or `[features]`.
    pub output: Vec<usize>,
    /// Output elements per image.
    pub activations: usize,
    pub params: usize,
    pub params_without_bias: usize,
    /// Multiply-adds per image.
    pub macs: u64,
}

impl Row {
    pub fn new(
        name: &str,
        layer: String,
        out: &[usize],
        params: usize,
        params_without_bias: usize,
        macs_batch: u64,
    ) -> Row {
        let batch = out.first().copied().unwrap_or(1).max(1);
        Row {
            name: name.to_string(),
            layer,
            output: out.get(1..).unwrap_or(&[]).to_vec(),
            activations: out.get(1..).unwrap_or(&[]).iter().product(),
            params,
            params_without_bias,
            macs: macs_batch / batch as u64,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub model: String,
    pub input: Vec<usize>,
    pub batch: usize,
    pub rows: Vec<Row>,
    pub params: usize,
    pub params_without_bias: usize,
    /// Activations of one forward pass per image, the input included (the lecture's "memory").
    pub activations_per_image: usize,
    pub forward_bytes_per_image: usize,
    /// The backward pass keeps a gradient of the same size for every activation: about twice the forward.
    pub forward_backward_bytes_per_image: usize,
    pub macs_per_image: u64,
    pub flops_per_image: u64,
    /// Rows holding the most activation memory and the most parameters (names), largest first.
    pub most_memory: Vec<String>,
    pub most_params: Vec<String>,
}

/// The walker that turns a network into rows.
struct Rows(Vec<Row>);

impl Walker for Rows {
    fn leaf(&mut self, l: &Leaf<'_>) {
        self.0.push(Row::new(l.name, l.layer.clone(), l.output, l.params, l.params - l.bias_params, l.macs));
    }
    fn join(&mut self, name: &str, what: &str, output: &[usize]) {
        self.0.push(Row::new(name, what.into(), output, 0, 0, 0));
    }
}

pub fn summarize<T: Float>(model: &mut Model<T>, input: [usize; 3], batch: usize) -> crate::Result<Summary> {
    let shape = vec![1, input[0], input[1], input[2]];
    model.net.output_shape(&shape)?;
    let mut rows = Rows(vec![Row::new("input", "input".into(), &shape, 0, 0, 0)]);
    model.net.walk("", &shape, &mut rows);
    let rows = rows.0;
    let params = rows.iter().map(|r| r.params).sum();
    let params_without_bias = rows.iter().map(|r| r.params_without_bias).sum();
    let activations: usize = rows.iter().map(|r| r.activations).sum();
    let macs: u64 = rows.iter().map(|r| r.macs).sum();
    let top = |key: &dyn Fn(&Row) -> usize| {
        let mut v: Vec<&Row> = rows.iter().filter(|r| key(r) > 0).collect();
        v.sort_by_key(|r| std::cmp::Reverse(key(r)));
        v.iter().take(3).map(|r| r.name.clone()).collect::<Vec<_>>()
    };
    let most_memory = top(&|r| if r.name == "input" { 0 } else { r.activations });
    let most_params = top(&|r| r.params);
    let bytes = activations * std::mem::size_of::<f32>();
    Ok(Summary {
        model: model.name.clone(),
        input: input.to_vec(),
        batch,
        rows,
        params,
        params_without_bias,
        activations_per_image: activations,
        forward_bytes_per_image: bytes,
        forward_backward_bytes_per_image: 2 * bytes,
        macs_per_image: macs,
        flops_per_image: 2 * macs,
        most_memory,
        most_params,
    })
}

fn human(n: f64) -> String {
    if n >= 1e9 {
        format!("{:.2}G", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.2}M", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1}K", n / 1e3)
    } else {
        format!("{n}")
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = self.batch;
        writeln!(
            f,
            "{} at input {:?}, batch {b} (memory and multiply-adds for the whole batch; f32)",
            self.model, self.input
        )?;
        writeln!(
            f,
            "{:<34} {:<34} {:>16} {:>10} {:>10} {:>12} {:>10}",
            "layer", "type", "output", "memory", "bytes", "params", "MACs"
        )?;
        for r in &self.rows {
            let out = r.output.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x");
            let mut ty = r.layer.clone();
            ty.truncate(34);
            writeln!(
                f,
                "{:<34} {:<34} {:>16} {:>10} {:>10} {:>12} {:>10}",
                if r.name.len() > 34 { &r.name[r.name.len() - 34..] } else { &r.name },
                ty,
                out,
                human((r.activations * b) as f64),
                human((r.activations * b * 4) as f64) + "B",
                if r.params > 0 { r.params.to_string() } else { String::new() },
                if r.macs > 0 { human((r.macs * b as u64) as f64) } else { String::new() }
            )?;
        }
        writeln!(f, "parameters: {} ({} without biases)", self.params, self.params_without_bias)?;
        writeln!(
            f,
            "activations per image: {} = {} forward, about {} forward + backward",
            human(self.activations_per_image as f64),
            human(self.forward_bytes_per_image as f64) + "B",
            human(self.forward_backward_bytes_per_image as f64) + "B"
        )?;
        writeln!(
            f,
            "per image: {} multiply-adds = {} FLOPs",
            human(self.macs_per_image as f64),
            human(self.flops_per_image as f64)
        )?;
        writeln!(f, "most memory: {} (early layers: large spatial maps)", self.most_memory.join(", "))?;
        write!(f, "most parameters: {} (late layers: wide fully connected weights)", self.most_params.join(", "))
    }
}
