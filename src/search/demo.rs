//! The lecture's "random search vs grid search" figure (Bergstra and Bengio 2012), computed: a cheap objective with
//! one important and one unimportant parameter, nine trials each way. The grid tries only three distinct values of
//! the important parameter; random search tries nine, and so lands nearer its peak.

use super::space::{as_f64, Space};
use serde::Serialize;

/// The objective: a narrow bump in the important parameter `x`, a gentle slope in the unimportant `y`.
pub fn objective(x: f64, y: f64) -> f64 {
    important(x) + unimportant(y)
}

pub fn important(x: f64) -> f64 {
    (-(x - 0.37).powi(2) / (2.0 * 0.07f64.powi(2))).exp()
}

pub fn unimportant(y: f64) -> f64 {
    0.05 * (1.0 - (y - 0.5).abs())
}

const SPACE: &str = "x = \"uniform(0, 1)\"\ny = \"uniform(0, 1)\"";

/// One search's trials: (x, y, objective).
#[derive(Clone, Debug, Serialize)]
pub struct Trials {
    pub points: Vec<(f64, f64, f64)>,
    /// Distinct values of the important parameter tried.
    pub distinct_x: usize,
    pub best: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Demo {
    pub trials: usize,
    pub grid: Trials,
    /// A typical random search, the one the figure shows: of the `repeats`, the one with the median best.
    pub random: Trials,
    pub random_seed: u64,
    /// Over `repeats` random searches with different seeds: their mean best, and how often they beat the grid.
    pub repeats: usize,
    pub random_mean_best: f64,
    pub random_beats_grid: f64,
}

fn trials(points: Vec<(f64, f64)>) -> Trials {
    let mut xs: Vec<i64> = points.iter().map(|p| (p.0 * 1e9) as i64).collect();
    xs.sort_unstable();
    xs.dedup();
    let points: Vec<(f64, f64, f64)> = points.into_iter().map(|(x, y)| (x, y, objective(x, y))).collect();
    let best = points.iter().map(|p| p.2).fold(f64::NEG_INFINITY, f64::max);
    Trials { points, distinct_x: xs.len(), best }
}

fn random_search(n: usize, seed: u64) -> Trials {
    let space = Space::from_toml(SPACE).expect("valid space");
    let mut rng = crate::init::rng(seed);
    trials(
        (0..n)
            .map(|_| {
                let p = space.sample(&mut rng);
                (as_f64(&p["x"]).unwrap_or(0.0), as_f64(&p["y"]).unwrap_or(0.0))
            })
            .collect(),
    )
}

pub fn run(n: usize, repeats: usize) -> Demo {
    let space = Space::from_toml(SPACE).expect("valid space");
    let g = space.grid(n);
    let grid = trials(
        (0..n)
            .filter_map(|i| Space::grid_point(&g, i))
            .map(|p| (as_f64(&p["x"]).unwrap_or(0.0), as_f64(&p["y"]).unwrap_or(0.0)))
            .collect(),
    );
    let bests: Vec<f64> = (0..repeats as u64).map(|s| random_search(n, s).best).collect();
    let repeats = bests.len().max(1);
    let mut order: Vec<usize> = (0..bests.len()).collect();
    order.sort_by(|&a, &b| bests[a].total_cmp(&bests[b]));
    let random_seed = order.get(order.len() / 2).copied().unwrap_or(0) as u64;
    Demo {
        trials: n,
        random: random_search(n, random_seed),
        random_seed,
        random_mean_best: bests.iter().sum::<f64>() / repeats as f64,
        random_beats_grid: bests.iter().filter(|&&b| b > grid.best).count() as f64 / repeats as f64,
        repeats,
        grid,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn random_search_tries_more_values_of_the_important_parameter_and_finds_more() {
        let d = super::run(9, 1000);
        assert_eq!(d.grid.distinct_x, 3);
        assert_eq!(d.random.distinct_x, 9);
        assert!(d.random_mean_best > d.grid.best + 0.2, "random {} vs grid {}", d.random_mean_best, d.grid.best);
        assert!(d.random_beats_grid > 0.6, "{}", d.random_beats_grid);
    }
}
