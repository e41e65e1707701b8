//! The search space: recipe keys and the distributions their values are drawn from.
//!
//! A space file is TOML; every key is a recipe key (dotted or in a table: `optimizer.rho`) and every value a
//! distribution: `"loguniform(1e-5, 1e-1)"` (the lecture's "search on a log scale" for rates and penalties),
//! `"uniform(a, b)"`, `"int(a, b)"`, `"choice([32, 64, 128])"`, or a plain array (a choice, and the grid's values).

use crate::{Error, Result};
use rand::Rng;
use std::collections::BTreeMap;
use std::fmt;

/// One trial's hyperparameters: recipe key to value.
pub type Params = BTreeMap<String, toml::Value>;

#[derive(Clone, Debug, PartialEq)]
pub enum Dist {
    LogUniform(f64, f64),
    Uniform(f64, f64),
    Int(i64, i64),
    Choice(Vec<toml::Value>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Space {
    /// Keys in sorted order, so that a seed draws the same trials whatever order the file lists them in.
    pub params: Vec<(String, Dist)>,
}

impl Space {
    pub fn from_toml(text: &str) -> Result<Space> {
        let table: toml::Table = toml::from_str(text).map_err(|e| Error::Config(e.to_string().trim().into()))?;
        let mut flat = BTreeMap::new();
        flatten("", &table, &mut flat);
        if flat.is_empty() {
            return Err(Error::Config(
                "the search space names no hyperparameter: add e.g. lr = \"loguniform(1e-4, 1e-1)\"".into(),
            ));
        }
        let params = flat
            .into_iter()
            .map(|(k, v)| Dist::from_value(&v).map(|d| (k.clone(), d)).map_err(|e| Error::Config(format!("{k}: {e}"))))
            .collect::<Result<_>>()?;
        Ok(Space { params })
    }

    pub fn from_file(path: &std::path::Path) -> Result<Space> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
        Space::from_toml(&text).map_err(|e| Error::file(path, format!("invalid search space: {e}")))
    }

    /// The space written back as a space file.
    pub fn to_toml(&self) -> String {
        self.params.iter().map(|(k, d)| format!("{} = {}\n", toml_key(k), toml_str(&d.to_string()))).collect()
    }

    pub fn get(&self, key: &str) -> Option<&Dist> {
        self.params.iter().find(|(k, _)| k == key).map(|(_, d)| d)
    }

    /// Random search: every key drawn independently.
    pub fn sample(&self, rng: &mut impl Rng) -> Params {
        self.params.iter().map(|(k, d)| (k.clone(), d.sample(rng))).collect()
    }

    /// Grid search with at most `budget` points: each continuous key gets the same number of evenly spaced values
    /// (log-spaced for log distributions), choices all theirs. Returns the values per key.
    pub fn grid(&self, budget: usize) -> Vec<(String, Vec<toml::Value>)> {
        let fixed: usize = self.params.iter().filter_map(|(_, d)| d.fixed_len()).product();
        let free = self.params.iter().filter(|(_, d)| d.fixed_len().is_none()).count() as u32;
        let per = (1..=budget.max(1)).take_while(|k| k.pow(free) * fixed <= budget.max(fixed)).last().unwrap_or(1);
        self.params.iter().map(|(k, d)| (k.clone(), d.grid(per))).collect()
    }

    /// Grid point `n` (row-major over `grid`'s values), or None past the end.
    pub fn grid_point(grid: &[(String, Vec<toml::Value>)], n: usize) -> Option<Params> {
        let size: usize = grid.iter().map(|(_, v)| v.len()).product();
        if n >= size {
            return None;
        }
        let mut rest = n;
        let mut p = Params::new();
        for (k, vals) in grid.iter().rev() {
            p.insert(k.clone(), vals[rest % vals.len()].clone());
            rest /= vals.len();
        }
        Some(p)
    }
}

impl Dist {
    fn from_value(v: &toml::Value) -> Result<Dist, String> {
        match v {
            toml::Value::Array(a) if !a.is_empty() => Ok(Dist::Choice(a.clone())),
            toml::Value::String(s) => s.parse(),
            other => Err(format!(
                "{other} is not a distribution: write \"loguniform(1e-5, 1e-1)\", \"uniform(a, b)\", \"int(a, b)\", \
                 \"choice([...])\" or an array of values"
            )),
        }
    }

    pub fn is_log(&self) -> bool {
        matches!(self, Dist::LogUniform(..))
    }

    /// The range of a numeric distribution.
    pub fn bounds(&self) -> Option<(f64, f64)> {
        match *self {
            Dist::LogUniform(a, b) | Dist::Uniform(a, b) => Some((a, b)),
            Dist::Int(a, b) => Some((a as f64, b as f64)),
            Dist::Choice(_) => None,
        }
    }

    fn fixed_len(&self) -> Option<usize> {
        match self {
            Dist::Choice(v) => Some(v.len()),
            _ => None,
        }
    }

    pub fn sample(&self, rng: &mut impl Rng) -> toml::Value {
        match self {
            Dist::LogUniform(a, b) => toml::Value::Float(rng.random_range(a.ln()..=b.ln()).exp()),
            Dist::Uniform(a, b) => toml::Value::Float(rng.random_range(*a..=*b)),
            Dist::Int(a, b) => toml::Value::Integer(rng.random_range(*a..=*b)),
            Dist::Choice(v) => v[rng.random_range(0..v.len())].clone(),
        }
    }

    /// `k` evenly spaced values across the range, ends included (one value: the middle).
    fn grid(&self, k: usize) -> Vec<toml::Value> {
        let at =
            |a: f64, b: f64, i: usize| if k == 1 { (a + b) / 2.0 } else { a + (b - a) * i as f64 / (k - 1) as f64 };
        match self {
            Dist::LogUniform(a, b) => (0..k).map(|i| toml::Value::Float(at(a.ln(), b.ln(), i).exp())).collect(),
            Dist::Uniform(a, b) => (0..k).map(|i| toml::Value::Float(at(*a, *b, i))).collect(),
            Dist::Int(a, b) => {
                let mut v: Vec<i64> = (0..k).map(|i| at(*a as f64, *b as f64, i).round() as i64).collect();
                v.dedup();
                v.into_iter().map(toml::Value::Integer).collect()
            }
            Dist::Choice(v) => v.clone(),
        }
    }
}

impl std::str::FromStr for Dist {
    type Err = String;
    fn from_str(s: &str) -> Result<Dist, String> {
        let s = s.trim();
        let (name, args) = s.strip_suffix(')').and_then(|s| s.split_once('(')).ok_or_else(|| {
            format!("'{s}' should look like loguniform(1e-5, 1e-1), uniform(a, b), int(a, b) or choice([...])")
        })?;
        if name.trim() == "choice" {
            let v: toml::Table = toml::from_str(&format!("v = {args}"))
                .map_err(|_| format!("choice({args}): give a list, e.g. choice([32, 64])"))?;
            return match v.get("v") {
                Some(toml::Value::Array(a)) if !a.is_empty() => Ok(Dist::Choice(a.clone())),
                _ => Err(format!("choice({args}): give a non-empty list, e.g. choice([32, 64])")),
            };
        }
        let nums: Vec<f64> = args
            .split(',')
            .map(|a| a.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| format!("{s}: the bounds must be two numbers"))?;
        let [a, b] = nums[..] else { return Err(format!("{s}: give two bounds, low and high")) };
        if !(a.is_finite() && b.is_finite() && a < b) {
            return Err(format!("{s}: the low bound must be below the high bound"));
        }
        match name.trim() {
            "loguniform" if a > 0.0 => Ok(Dist::LogUniform(a, b)),
            "loguniform" => Err(format!("{s}: a log scale needs positive bounds")),
            "uniform" => Ok(Dist::Uniform(a, b)),
            "int" if a.fract() == 0.0 && b.fract() == 0.0 => Ok(Dist::Int(a as i64, b as i64)),
            "int" => Err(format!("{s}: int bounds must be whole numbers")),
            other => Err(format!("unknown distribution '{other}': use loguniform, uniform, int or choice")),
        }
    }
}

impl fmt::Display for Dist {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Dist::LogUniform(a, b) => write!(f, "loguniform({}, {})", num(*a), num(*b)),
            Dist::Uniform(a, b) => write!(f, "uniform({}, {})", num(*a), num(*b)),
            Dist::Int(a, b) => write!(f, "int({a}, {b})"),
            Dist::Choice(v) => {
                write!(f, "choice([{}])", v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", "))
            }
        }
    }
}

/// A number exactly as given, in the shorter of plain and scientific notation.
pub fn num(x: f64) -> String {
    if x != 0.0 && (x.abs() < 1e-3 || x.abs() >= 1e5) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

/// A draw as `--set`-style recipe overrides.
pub fn overrides(p: &Params) -> Vec<(String, toml::Value)> {
    p.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// A value as a plain number, where it is one (choices of strings are not).
pub fn as_f64(v: &toml::Value) -> Option<f64> {
    match v {
        toml::Value::Float(x) => Some(*x),
        toml::Value::Integer(i) => Some(*i as f64),
        _ => None,
    }
}

/// Params in one line: `lr=0.0123 weight_decay=1.2e-5`.
pub fn describe(p: &Params) -> String {
    p.iter()
        .map(|(k, v)| match v {
            toml::Value::Float(x) => format!("{k}={}", short(*x)),
            v => format!("{k}={v}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Short for tables: three decimals, or scientific notation for very small and very large values.
pub fn short(x: f64) -> String {
    if x != 0.0 && (x.abs() < 1e-3 || x.abs() >= 1e4) {
        format!("{x:.2e}")
    } else {
        format!("{}", (x * 1e3).round() / 1e3).chars().take(8).collect()
    }
}

fn flatten(prefix: &str, t: &toml::Table, out: &mut BTreeMap<String, toml::Value>) {
    for (k, v) in t {
        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            toml::Value::Table(inner) => flatten(&key, inner, out),
            v => {
                out.insert(key, v.clone());
            }
        }
    }
}

fn toml_key(k: &str) -> String {
    if k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        k.to_string()
    } else {
        format!("{k:?}")
    }
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_distribution_and_flattens_tables() {
        let s = Space::from_toml(
            "lr = \"loguniform(1e-4, 1e-1)\"\nbatch_size = [32, 64]\n[optimizer]\nrho = \"uniform(0.8, 0.99)\"\n\
             [x]\nn = \"int(1, 5)\"\nk = \"choice(['a', 'b'])\"",
        )
        .unwrap();
        assert_eq!(s.get("lr"), Some(&Dist::LogUniform(1e-4, 0.1)));
        assert_eq!(s.get("optimizer.rho"), Some(&Dist::Uniform(0.8, 0.99)));
        assert_eq!(s.get("x.n"), Some(&Dist::Int(1, 5)));
        assert_eq!(s.get("batch_size").unwrap().fixed_len(), Some(2));
        assert!(matches!(s.get("x.k"), Some(Dist::Choice(v)) if v.len() == 2));
        // Written back and read again, the same space.
        assert_eq!(Space::from_toml(&s.to_toml()).unwrap(), s);
    }

    #[test]
    fn bad_spaces_say_what_is_wrong() {
        for (text, want) in [
            ("lr = \"loguniform(0, 1)\"", "positive"),
            ("lr = \"uniform(2, 1)\"", "below"),
            ("lr = \"gauss(0, 1)\"", "unknown distribution"),
            ("lr = 3", "not a distribution"),
            ("", "names no hyperparameter"),
        ] {
            let e = Space::from_toml(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn log_uniform_draws_are_uniform_in_the_exponent() {
        let d = Dist::LogUniform(1e-5, 1e-1);
        let mut rng = crate::init::rng(1);
        let x: Vec<f64> = (0..4000).map(|_| as_f64(&d.sample(&mut rng)).unwrap()).collect();
        assert!(x.iter().all(|&v| (1e-5..=1e-1).contains(&v)));
        // Each decade gets about a quarter of the draws.
        for lo in [1e-5, 1e-4, 1e-3, 1e-2] {
            let share = x.iter().filter(|&&v| v >= lo && v < lo * 10.0).count() as f64 / x.len() as f64;
            assert!((share - 0.25).abs() < 0.03, "decade {lo}: {share}");
        }
    }

    #[test]
    fn grid_fits_the_budget_and_enumerates_every_point_once() {
        let s = Space::from_toml("lr = \"loguniform(1e-4, 1e-2)\"\nwd = \"uniform(0, 1)\"").unwrap();
        let g = s.grid(16);
        assert_eq!(g.iter().map(|(_, v)| v.len()).collect::<Vec<_>>(), [4, 4]);
        let lrs: Vec<f64> = g[0].1.iter().map(|v| as_f64(v).unwrap()).collect();
        assert!((lrs[0] - 1e-4).abs() < 1e-12 && (lrs[3] - 1e-2).abs() < 1e-10);
        assert!((lrs[1] / lrs[0] - lrs[2] / lrs[1]).abs() < 1e-9, "log-spaced: {lrs:?}");
        let points: Vec<String> = (0..16).map(|n| describe(&Space::grid_point(&g, n).unwrap())).collect();
        let mut unique = points.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 16);
        assert!(Space::grid_point(&g, 16).is_none());
        // Nine trials over two keys: the lecture's 3 x 3.
        assert_eq!(s.grid(9).iter().map(|(_, v)| v.len()).collect::<Vec<_>>(), [3, 3]);
    }
}
