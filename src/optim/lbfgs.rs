//! L-BFGS (Nocedal 1980; Liu & Nocedal 1989), the lecture's "if you can afford full-batch updates" method: a
//! quasi-Newton step from the last `history` pairs of position and gradient changes (two-loop recursion), scaled
//! by a line search (strong Wolfe, or Armijo backtracking). It assumes the same function every evaluation:
//! on noisy mini-batches the curvature pairs are meaningless, so `convkit train` refuses it unless each step
//! sees the whole (unaugmented) training set.
//!
//! Works on a flat `f64` vector and a function that returns the loss and writes the gradient, as
//! `torch.optim.LBFGS` works with a closure.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LineSearch {
    /// Nocedal & Wright's algorithm 3.5/3.6 with cubic interpolation (c1 = 1e-4, c2 = 0.9).
    #[default]
    StrongWolfe,
    /// Halve the step until the sufficient-decrease (Armijo) condition holds.
    Backtracking,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Lbfgs {
    /// Curvature pairs kept (10).
    pub history: usize,
    /// Iterations per `minimize` call (100).
    pub max_iter: usize,
    /// Stop when every gradient element is below this (1e-7).
    pub tol_grad: f64,
    /// Stop when the loss or the step changes less than this (1e-9).
    pub tol_change: f64,
    pub line_search: LineSearch,
}

impl Default for Lbfgs {
    fn default() -> Self {
        Lbfgs { history: 10, max_iter: 100, tol_grad: 1e-7, tol_change: 1e-9, line_search: LineSearch::StrongWolfe }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct LbfgsReport {
    pub iterations: usize,
    pub evaluations: usize,
    pub loss: f64,
    /// Largest gradient element at the end.
    pub grad_max: f64,
    /// Why it stopped.
    pub stop: &'static str,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn max_abs(a: &[f64]) -> f64 {
    a.iter().fold(0.0, |m, v| m.max(v.abs()))
}

/// The loss at `x`, writing the gradient into the second argument.
pub type Objective<'a> = dyn FnMut(&[f64], &mut [f64]) -> f64 + 'a;

/// One trial point of a line search: step `t`, loss, gradient, directional derivative.
struct Trial {
    t: f64,
    f: f64,
    g: Vec<f64>,
    gtd: f64,
}

impl Lbfgs {
    /// Minimizes `f` from `x` (updated in place).
    pub fn minimize(&self, x: &mut [f64], f: &mut Objective) -> LbfgsReport {
        self.minimize_observed(x, f, &mut |_, _| {})
    }

    /// As `minimize`, calling `each(x, loss)` after every iteration (to draw or log the path).
    pub fn minimize_observed(
        &self,
        x: &mut [f64],
        f: &mut Objective,
        each: &mut dyn FnMut(&[f64], f64),
    ) -> LbfgsReport {
        let n = x.len();
        let mut g = vec![0.0; n];
        let mut loss = f(x, &mut g);
        let mut evals = 1;
        let (mut s_hist, mut y_hist, mut rho): (Vec<Vec<f64>>, Vec<Vec<f64>>, Vec<f64>) = (vec![], vec![], vec![]);
        let mut stop = "max_iter";
        let mut iters = 0;
        if max_abs(&g) <= self.tol_grad {
            return LbfgsReport { iterations: 0, evaluations: 1, loss, grad_max: max_abs(&g), stop: "tol_grad" };
        }
        while iters < self.max_iter {
            iters += 1;
            // Two-loop recursion: d = -H g, with H0 = (s.y / y.y) I.
            let mut q: Vec<f64> = g.iter().map(|v| -v).collect();
            let mut alpha = vec![0.0; s_hist.len()];
            for i in (0..s_hist.len()).rev() {
                alpha[i] = rho[i] * dot(&s_hist[i], &q);
                q.iter_mut().zip(&y_hist[i]).for_each(|(q, y)| *q -= alpha[i] * y);
            }
            if let (Some(s), Some(y)) = (s_hist.last(), y_hist.last()) {
                let h0 = dot(s, y) / dot(y, y);
                q.iter_mut().for_each(|q| *q *= h0);
            }
            for i in 0..s_hist.len() {
                let beta = rho[i] * dot(&y_hist[i], &q);
                q.iter_mut().zip(&s_hist[i]).for_each(|(q, s)| *q += (alpha[i] - beta) * s);
            }
            let d = q;
            let gtd = dot(&g, &d);
            if gtd > -self.tol_change {
                stop = "no descent direction left";
                break;
            }
            // The first step has no curvature yet: keep it short, as PyTorch does.
            let t0 = if s_hist.is_empty() { (1.0 / g.iter().map(|v| v.abs()).sum::<f64>()).min(1.0) } else { 1.0 };
            let x0 = x.to_vec();
            let mut eval = |t: f64| {
                let xt: Vec<f64> = x0.iter().zip(&d).map(|(x, d)| x + t * d).collect();
                let mut gt = vec![0.0; n];
                let ft = f(&xt, &mut gt);
                evals += 1;
                let gtd = dot(&gt, &d);
                Trial { t, f: ft, g: gt, gtd }
            };
            let best = match self.line_search {
                LineSearch::StrongWolfe => strong_wolfe(&mut eval, loss, gtd, t0),
                LineSearch::Backtracking => backtracking(&mut eval, loss, gtd, t0),
            };
            let s: Vec<f64> = d.iter().map(|d| best.t * d).collect();
            let y: Vec<f64> = best.g.iter().zip(&g).map(|(a, b)| a - b).collect();
            x.iter_mut().zip(&s).for_each(|(x, s)| *x += s);
            let ys = dot(&y, &s);
            if ys > 1e-10 {
                if s_hist.len() == self.history {
                    s_hist.remove(0);
                    y_hist.remove(0);
                    rho.remove(0);
                }
                s_hist.push(s.clone());
                y_hist.push(y);
                rho.push(1.0 / ys);
            }
            let change = (best.f - loss).abs();
            loss = best.f;
            g = best.g;
            each(x, loss);
            if max_abs(&g) <= self.tol_grad {
                stop = "tol_grad";
                break;
            }
            if max_abs(&s) <= self.tol_change || change < self.tol_change {
                stop = "tol_change";
                break;
            }
        }
        LbfgsReport { iterations: iters, evaluations: evals, loss, grad_max: max_abs(&g), stop }
    }
}

const C1: f64 = 1e-4;
const C2: f64 = 0.9;

/// Minimizer of the cubic through (t1, f1, g1) and (t2, f2, g2), kept inside the bracket.
fn cubic(a: &Trial, b: &Trial) -> f64 {
    let (lo, hi) = if a.t < b.t { (a.t, b.t) } else { (b.t, a.t) };
    let d1 = a.gtd + b.gtd - 3.0 * (a.f - b.f) / (a.t - b.t);
    let sq = d1 * d1 - a.gtd * b.gtd;
    if sq >= 0.0 {
        let d2 = sq.sqrt() * (b.t - a.t).signum();
        let t = b.t - (b.t - a.t) * (b.gtd + d2 - d1) / (b.gtd - a.gtd + 2.0 * d2);
        // Stay away from the ends, or bisect.
        let margin = 0.1 * (hi - lo);
        if t.is_finite() && t > lo + margin && t < hi - margin {
            return t;
        }
    }
    (lo + hi) / 2.0
}

fn strong_wolfe(eval: &mut dyn FnMut(f64) -> Trial, f0: f64, gtd0: f64, t0: f64) -> Trial {
    let start = Trial { t: 0.0, f: f0, g: vec![], gtd: gtd0 };
    let mut prev = start;
    let mut t = t0;
    for i in 0..25 {
        let cur = eval(t);
        if !cur.f.is_finite() {
            t = (prev.t + t) / 2.0;
            continue;
        }
        if cur.f > f0 + C1 * cur.t * gtd0 || (i > 0 && cur.f >= prev.f) {
            return zoom(eval, prev, cur, f0, gtd0);
        }
        if cur.gtd.abs() <= -C2 * gtd0 {
            return cur;
        }
        if cur.gtd >= 0.0 {
            return zoom(eval, cur, prev, f0, gtd0);
        }
        t = cur.t * 2.0;
        prev = cur;
    }
    prev
}

/// Narrows the bracket [lo, hi] (lo the lower loss) to a point meeting the strong Wolfe conditions.
fn zoom(eval: &mut dyn FnMut(f64) -> Trial, mut lo: Trial, mut hi: Trial, f0: f64, gtd0: f64) -> Trial {
    for _ in 0..30 {
        if (hi.t - lo.t).abs() < 1e-12 * lo.t.abs().max(1e-12) {
            break;
        }
        let cur = eval(cubic(&lo, &hi));
        if cur.f > f0 + C1 * cur.t * gtd0 || cur.f >= lo.f {
            hi = cur;
        } else {
            if cur.gtd.abs() <= -C2 * gtd0 {
                return cur;
            }
            if cur.gtd * (hi.t - lo.t) >= 0.0 {
                hi = lo;
            }
            lo = cur;
        }
    }
    if lo.g.is_empty() {
        // Never left t = 0: take a small fraction of the smallest step tried.
        return eval(hi.t * 1e-3);
    }
    lo
}

fn backtracking(eval: &mut dyn FnMut(f64) -> Trial, f0: f64, gtd0: f64, t0: f64) -> Trial {
    let mut cur = eval(t0);
    for _ in 0..50 {
        if cur.f.is_finite() && cur.f <= f0 + C1 * cur.t * gtd0 {
            break;
        }
        cur = eval(cur.t / 2.0);
    }
    cur
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rosenbrock(x: &[f64], g: &mut [f64]) -> f64 {
        let (a, b) = (x[0], x[1]);
        g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
        g[1] = 200.0 * (b - a * a);
        (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
    }

    #[test]
    fn converges_on_rosenbrock() {
        for ls in [LineSearch::StrongWolfe, LineSearch::Backtracking] {
            let mut x = vec![-1.2, 1.0];
            let opt =
                Lbfgs { max_iter: 500, tol_grad: 1e-10, tol_change: 1e-16, line_search: ls, ..Default::default() };
            let rep = opt.minimize(&mut x, &mut rosenbrock);
            assert!((x[0] - 1.0).abs() < 1e-6 && (x[1] - 1.0).abs() < 1e-6, "{ls:?}: {x:?} {rep:?}");
        }
    }

    #[test]
    fn matches_torch_lbfgs_on_logistic_regression() {
        let r = crate::optim::reference();
        let l = &r["lbfgs"];
        let xs: Vec<Vec<f64>> = serde_json::from_value(l["x"].clone()).unwrap();
        let ys: Vec<f64> = serde_json::from_value(l["y"].clone()).unwrap();
        let lam = l["l2"].as_f64().unwrap();
        let d = xs[0].len();
        // Mean binary cross-entropy with logits, plus lam/2 |w|^2 (bias free).
        let mut f = |w: &[f64], g: &mut [f64]| {
            g.fill(0.0);
            let mut loss = 0.0;
            for (x, &y) in xs.iter().zip(&ys) {
                let z = dot(&w[..d], x) + w[d];
                loss += z.max(0.0) - z * y + (-z.abs()).exp().ln_1p();
                let p = 1.0 / (1.0 + (-z).exp());
                for j in 0..d {
                    g[j] += (p - y) * x[j] / xs.len() as f64;
                }
                g[d] += (p - y) / xs.len() as f64;
            }
            for j in 0..d {
                g[j] += lam * w[j];
            }
            loss / xs.len() as f64 + 0.5 * lam * dot(&w[..d], &w[..d])
        };
        let mut w = vec![0.0; d + 1];
        let rep = Lbfgs { tol_grad: 1e-12, tol_change: 1e-15, ..Default::default() }.minimize(&mut w, &mut f);
        let want: Vec<f64> = serde_json::from_value(l["w"].clone()).unwrap();
        let want_loss = l["loss"].as_f64().unwrap();
        assert!((rep.loss - want_loss).abs() < 1e-10 * want_loss, "{} vs {want_loss}", rep.loss);
        for (a, b) in w.iter().zip(&want) {
            assert!((a - b).abs() < 1e-6 * b.abs().max(1.0), "{w:?} vs {want:?}");
        }
    }
}
