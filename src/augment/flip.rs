//! Horizontal flip: the mirror image, left-right.

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
}
