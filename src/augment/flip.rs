//! Horizontal flip: the mirror image, left-right. Random (each image, each epoch, a coin) or alternating
//! (airbench): each image gets one fixed coin for the first epoch and is mirrored on every other epoch after it,
//! so over any two epochs it is seen both ways, where random flips repeat a side half the time.

/// Whether image `index` is mirrored in `epoch` (counting from 1) under alternating flips.
pub fn alternating(seed: u64, epoch: usize, index: usize) -> bool {
    use rand::Rng;
    let first: bool = super::image_rng(seed, 0, index).random();
    first ^ (epoch % 2 == 0)
}

pub fn hflip(img: &mut [u8], [_, _, w]: [usize; 3]) {
    for row in img.chunks_mut(w) {
        row.reverse();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn flipping_twice_is_the_identity() {
        let img: Vec<u8> = (0..24).collect();
        let mut x = img.clone();
        super::hflip(&mut x, [2, 3, 4]);
        assert_eq!(&x[..4], &[3, 2, 1, 0]);
        super::hflip(&mut x, [2, 3, 4]);
        assert_eq!(x, img);
    }

    #[test]
    fn alternating_flips_switch_every_epoch_and_start_half_mirrored() {
        let starts: Vec<bool> = (0..1000).map(|i| super::alternating(3, 1, i)).collect();
        let mirrored = starts.iter().filter(|&&m| m).count();
        assert!((430..570).contains(&mirrored), "about half start mirrored: {mirrored}");
        for (i, &s) in starts.iter().enumerate() {
            for epoch in 2..6 {
                assert_eq!(super::alternating(3, epoch, i), s ^ (epoch % 2 == 0), "image {i}, epoch {epoch}");
            }
        }
    }
}
