//! Test-time augmentation: the fixed views of each test image whose softmax outputs are averaged.
//! - `flip`: the image and its mirror.
//! - `10crop`: four corner crops and the centre, with their mirrors. convkit's test images are already at the
//!   input size, so a "crop" is the image shifted by the training pad (`augment.crop_pad`, else 1/8 of the size)
//!   towards each corner: the views pad-crop training showed the model.
//! - `multiscale`: the image zoomed by 1, 256/224 and 288/224 (the ResNet paper's scales over its 224 crop),
//!   centre crop and mirror at each.
//! - `flip-translate`: airbench's: the image and its mirror (weight 1/4 each), and both shifted one pixel up-left
//!   and down-right with reflect padding, each mirrored too (1/8 each).

use super::{crop, flip, resized_crop};
use serde::Serialize;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum TestViews {
    /// The image as it is.
    #[default]
    Single,
    /// The image and its left-right mirror.
    Flip,
    /// Four corners and the centre, with their mirrors.
    #[cfg_attr(feature = "cli", value(name = "10crop"))]
    #[serde(rename = "10crop")]
    TenCrop,
    /// Three scales, centre and mirror at each.
    Multiscale,
    /// The image and its mirror, and both shifted by one pixel diagonally each way (airbench's 6 views).
    FlipTranslate,
}

/// One view: zoom (1 = none), then shift by (dy, dx) over `border`, then mirror; `weight` is its share in the
/// average (relative to the other views').
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct View {
    pub zoom: f64,
    pub shift: (isize, isize),
    pub border: crop::Border,
    pub mirror: bool,
    pub weight: f64,
}

impl Default for View {
    /// The image as it is.
    fn default() -> Self {
        View { zoom: 1.0, shift: (0, 0), border: crop::Border::Zero, mirror: false, weight: 1.0 }
    }
}

impl View {
    pub fn apply(&self, img: &mut [u8], shape: [usize; 3]) {
        let [_, h, w] = shape;
        if self.zoom != 1.0 {
            let (cw, ch) = (w as f64 / self.zoom, h as f64 / self.zoom);
            resized_crop::resize_window(img, shape, ((w as f64 - cw) / 2.0, (h as f64 - ch) / 2.0, cw, ch));
        }
        if self.shift != (0, 0) {
            crop::shift_with(img, shape, self.shift.0, self.shift.1, self.border);
        }
        if self.mirror {
            flip::hflip(img, shape);
        }
    }
}

/// The views of `kind` for images of `shape`; `pad` is the training crop's padding (0: none).
pub fn views(kind: TestViews, [_, h, w]: [usize; 3], pad: usize) -> Vec<View> {
    let plain = View::default();
    let mirrored = |v: Vec<View>| v.iter().flat_map(|&v| [v, View { mirror: true, ..v }]).collect();
    match kind {
        TestViews::Single => vec![plain],
        TestViews::Flip => mirrored(vec![plain]),
        TestViews::TenCrop => {
            let p = if pad > 0 { pad } else { (h.min(w) / 8).max(1) } as isize;
            let shifts = [(0, 0), (-p, -p), (-p, p), (p, -p), (p, p)];
            mirrored(shifts.iter().map(|&shift| View { shift, ..plain }).collect())
        }
        TestViews::Multiscale => {
            mirrored([1.0, 256.0 / 224.0, 288.0 / 224.0].iter().map(|&zoom| View { zoom, ..plain }).collect())
        }
        TestViews::FlipTranslate => {
            let moved = |d| View { shift: (d, d), border: crop::Border::Reflect, weight: 0.5, ..plain };
            mirrored(vec![plain, moved(-1), moved(1)])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_views() {
        let n = |k| views(k, [3, 32, 32], 4).len();
        assert_eq!(
            (n(TestViews::Single), n(TestViews::Flip), n(TestViews::TenCrop), n(TestViews::Multiscale)),
            (1, 2, 10, 6)
        );
        let ft = views(TestViews::FlipTranslate, [3, 32, 32], 4);
        let total: f64 = ft.iter().map(|v| v.weight).sum();
        let share = |pred: &dyn Fn(&View) -> bool| ft.iter().filter(|v| pred(v)).map(|v| v.weight).sum::<f64>() / total;
        assert_eq!(ft.len(), 6);
        assert_eq!(share(&|v| v.shift == (0, 0)), 0.5, "airbench: half the weight on the untranslated pair");
        assert_eq!(share(&|v| v.mirror), 0.5);
        let ten = views(TestViews::TenCrop, [3, 32, 32], 0);
        assert!(ten.iter().all(|v| v.shift.0.abs() == 4 || v.shift == (0, 0)), "1/8 of 32 without a pad");
        let img: Vec<u8> = (0..48).collect();
        let mut x = img.clone();
        views(TestViews::Single, [3, 4, 4], 0)[0].apply(&mut x, [3, 4, 4]);
        assert_eq!(x, img);
    }
}
