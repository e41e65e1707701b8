//! Train / validation split: validation is carved from the training split by a seeded shuffle; the test split
//! stays untouched until the very end (or `convkit eval`).

use crate::init::rng;
use rand::seq::SliceRandom;

/// `(train indices, val indices)`: a seeded permutation of `0..n`, the first `val` of it held out.
/// Both lists are sorted, so the split does not depend on anything but `n`, `val` and `seed`.
pub fn train_val(n: usize, val: usize, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut rng(seed ^ 0x5eed_5911));
    let val = val.min(n);
    let mut v = idx[..val].to_vec();
    let mut t = idx[val..].to_vec();
    v.sort_unstable();
    t.sort_unstable();
    (t, v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disjoint_complete_and_seeded() {
        let (t, v) = train_val(1000, 100, 7);
        assert_eq!((t.len(), v.len()), (900, 100));
        let mut all: Vec<usize> = t.iter().chain(&v).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        assert_eq!(train_val(1000, 100, 7), (t.clone(), v.clone()));
        assert_ne!(train_val(1000, 100, 8).1, v);
    }
}
