//! Data augmentation, the lecture's "add randomness at training time, average it out at test time". The recipe's
//! `[augment]` table names the transforms; each is one file here and they run per image in a fixed order:
//! geometric (random-resized crop or scale jitter, affine, lens, pad-crop, flip), then RandAugment, colour
//! (jitter, PCA colour), then erasing. Batch-level mixing (mixup, cutmix) is in `mix`. Every image draws from its
//! own generator, seeded by (seed, epoch, image), so a run is reproducible whatever the threads do.

pub mod affine;
pub mod colour_jitter;
pub mod crop;
pub mod erasing;
pub mod flip;
pub mod grid;
pub mod lens;
pub mod mix;
pub mod pca_colour;
pub mod randaugment;
pub mod resized_crop;
pub mod tta;
pub mod warp;

use crate::data::Dataset;
use crate::init::Rng64;
use rand::Rng;
use serde::{Deserialize, Serialize};

pub use affine::Affine;
pub use colour_jitter::ColourJitter;
pub use erasing::Erasing;
pub use lens::Lens;
pub use pca_colour::PcaBasis;
pub use randaugment::RandAugment;
pub use resized_crop::ResizedCrop;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Augment {
    /// Mirror left-right with probability 1/2.
    #[serde(default)]
    pub hflip: bool,
    /// Mirror each image on every other epoch, from a fixed coin per image (airbench): instead of `hflip`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub hflip_alternate: bool,
    /// Padding on each side before a random crop back to the original size; 0 disables. CIFAR uses 4.
    #[serde(default)]
    pub crop_pad: usize,
    /// What the crop's padding is: `zero` (black, the default) or `reflect` (the image mirrored at its edge).
    #[serde(default, skip_serializing_if = "is_zero_border")]
    pub crop_border: crop::Border,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resized_crop: Option<ResizedCrop>,
    /// The ResNet paper's `[256, 480]`: short side to a random L, crop back to the input size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_jitter: Option<[usize; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affine: Option<Affine>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lens: Option<Lens>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub randaugment: Option<RandAugment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colour_jitter: Option<ColourJitter>,
    /// AlexNet's PCA colour augmentation: the std of the per-image weights (AlexNet: 0.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pca_colour: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erasing: Option<Erasing>,
    /// Mixup's Beta(alpha, alpha) (Zhang et al. 2018: 0.2 to 0.4 on ImageNet, 1 on CIFAR).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mixup: Option<f64>,
    /// CutMix's Beta(alpha, alpha) (Yun et al. 2019: 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cutmix: Option<f64>,
    /// The training set's principal colour directions, fitted when `pca_colour` is set (not part of the recipe).
    #[serde(skip)]
    pub pca: Option<PcaBasis>,
}

fn is_false(b: &bool) -> bool {
    !b
}
fn is_zero_border(b: &crop::Border) -> bool {
    *b == crop::Border::Zero
}

impl Augment {
    /// No per-image transform (mixing may still be on).
    pub fn is_identity(&self) -> bool {
        let Augment {
            hflip,
            hflip_alternate,
            crop_pad,
            crop_border: _,
            resized_crop,
            scale_jitter,
            affine,
            lens,
            randaugment,
            colour_jitter,
            pca_colour,
            erasing,
            mixup: _,
            cutmix: _,
            pca: _,
        } = self;
        !hflip
            && !hflip_alternate
            && *crop_pad == 0
            && resized_crop.is_none()
            && scale_jitter.is_none()
            && affine.is_none()
            && lens.is_none()
            && randaugment.is_none()
            && colour_jitter.is_none()
            && pca_colour.is_none()
            && erasing.is_none()
    }

    /// Whether batches are mixed (mixup or cutmix).
    pub fn mixes(&self) -> bool {
        self.mixup.is_some() || self.cutmix.is_some()
    }

    /// Checks every setting, naming the key and its allowed range.
    pub fn validate(&self) -> Result<(), String> {
        self.resized_crop.map_or(Ok(()), |x| x.validate())?;
        self.affine.map_or(Ok(()), |x| x.validate())?;
        self.lens.map_or(Ok(()), |x| x.validate())?;
        self.randaugment.map_or(Ok(()), |x| x.validate())?;
        self.colour_jitter.map_or(Ok(()), |x| x.validate())?;
        self.erasing.map_or(Ok(()), |x| x.validate())?;
        if let Some([lo, hi]) = self.scale_jitter {
            if !(224 <= lo && lo <= hi && hi <= 1024) {
                return Err(format!("augment.scale_jitter = [{lo}, {hi}]: needs 224 <= lo <= hi <= 1024"));
            }
        }
        if self.hflip && self.hflip_alternate {
            return Err("augment: hflip (random) and hflip_alternate (every other epoch) are two ways of flipping; \
                        keep one"
                .into());
        }
        if self.resized_crop.is_some() && self.scale_jitter.is_some() {
            return Err(
                "augment: resized_crop and scale_jitter are two ways of cropping at a random scale; keep one".into()
            );
        }
        if self.pca_colour.is_some_and(|s| !(0.0..=1.0).contains(&s)) {
            return Err(format!("augment.pca_colour = {:?}: the std lies in [0, 1] (AlexNet: 0.1)", self.pca_colour));
        }
        for (k, a) in [("mixup", self.mixup), ("cutmix", self.cutmix)] {
            if a.is_some_and(|a| !(a > 0.0 && a <= 10.0)) {
                return Err(format!("augment.{k} = {a:?}: alpha lies in (0, 10] (usual: 0.2 to 1)"));
            }
        }
        Ok(())
    }

    /// Fits what the transforms learn from data (PCA colour's directions) on the training images.
    pub fn fit(&mut self, ds: &Dataset, train: &[usize]) {
        if self.pca_colour.is_some() {
            self.pca = pca_colour::fit(ds, train);
        }
    }

    /// Augments training image `index` for `epoch` in place, with the image's own generator.
    pub fn apply_for(&self, img: &mut [u8], shape: [usize; 3], seed: u64, epoch: usize, index: usize) {
        let mirror = self.hflip_alternate && flip::alternating(seed, epoch, index);
        self.apply_mirrored(img, shape, mirror, &mut image_rng(seed, epoch, index));
    }

    /// Augments one `C x H x W` byte image in place (alternating flips need `apply_for`'s epoch).
    pub fn apply(&self, img: &mut [u8], shape: [usize; 3], rng: &mut impl Rng) {
        self.apply_mirrored(img, shape, false, rng)
    }

    /// `mirror`: the alternating flip's decision for this image and epoch.
    fn apply_mirrored(&self, img: &mut [u8], shape: [usize; 3], mirror: bool, rng: &mut impl Rng) {
        if let Some(rc) = &self.resized_crop {
            rc.apply(img, shape, rng);
        }
        if let Some(range) = self.scale_jitter {
            resized_crop::scale_jitter(img, shape, range, rng);
        }
        if let Some(a) = &self.affine {
            a.apply(img, shape, rng);
        }
        if let Some(l) = &self.lens {
            l.apply(img, shape, rng);
        }
        if self.crop_pad > 0 {
            crop::pad_crop(img, shape, self.crop_pad, self.crop_border, rng);
        }
        if mirror || (self.hflip && rng.random::<bool>()) {
            flip::hflip(img, shape);
        }
        if let Some(ra) = &self.randaugment {
            ra.apply(img, shape, rng);
        }
        if let Some(cj) = &self.colour_jitter {
            cj.apply(img, shape, rng);
        }
        if let (Some(std), Some(basis)) = (self.pca_colour, &self.pca) {
            pca_colour::apply(img, shape, basis, std, rng);
        }
        if let Some(e) = &self.erasing {
            e.apply(img, shape, rng);
        }
    }
}

/// The generator for image `index` in `epoch`: independent of batch order and threads.
pub fn image_rng(seed: u64, epoch: usize, index: usize) -> Rng64 {
    let mut z =
        seed ^ (epoch as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (index as u64).wrapping_mul(0xd1b5_4a32_d192_ed03);
    // splitmix64's finaliser: nearby (epoch, index) pairs get unrelated seeds.
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    crate::init::rng(z ^ (z >> 31))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every transform at once, at strong settings.
    fn heavy() -> Augment {
        let mut a: Augment = toml::from_str(
            "hflip = true\ncrop_pad = 2\npca_colour = 0.1\nresized_crop = { scale = [0.3, 1.0] }\n\
             affine = { translate = 0.1, rotate = 15.0, scale = [0.9, 1.1], shear = 10.0 }\nlens = { k = [-0.2, 0.2] }\n\
             randaugment = { n = 2, magnitude = 9 }\n\
             colour_jitter = { brightness = 0.4, contrast = 0.4, saturation = 0.4, hue = 0.1 }\nerasing = { p = 0.5 }",
        )
        .unwrap();
        a.pca = Some(PcaBasis {
            vectors: [[0.58, -0.7, 0.4], [0.58, 0.0, -0.8], [0.58, 0.7, 0.4]],
            values: [0.2, 0.02, 0.005],
        });
        a
    }

    fn image() -> Vec<u8> {
        (0..3 * 16 * 16).map(|v| ((v * 37) % 256) as u8).collect()
    }

    #[test]
    fn reproducible_for_a_seed_different_across_seeds_and_identity_when_off() {
        let (a, img) = (heavy(), image());
        a.validate().unwrap();
        let run = |seed| {
            let mut x = img.clone();
            a.apply(&mut x, [3, 16, 16], &mut image_rng(seed, 1, 7));
            x
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
        assert_eq!(run(5).len(), img.len(), "shape kept");
        let mut same = img.clone();
        Augment::default().apply(&mut same, [3, 16, 16], &mut image_rng(0, 0, 0));
        assert_eq!(same, img);
        assert!(Augment::default().is_identity() && !a.is_identity());
    }

    #[test]
    fn each_transform_alone_is_reproducible_varies_with_the_seed_and_is_the_identity_at_zero() {
        let img = image();
        let each = [
            ("hflip = true", "hflip = false"),
            ("crop_pad = 3", "crop_pad = 0"),
            ("crop_pad = 3\ncrop_border = 'reflect'", "crop_pad = 0\ncrop_border = 'reflect'"),
            ("resized_crop = { scale = [0.2, 0.6] }", "resized_crop = { scale = [1.0, 1.0], ratio = [1.0, 1.0] }"),
            ("scale_jitter = [256, 480]", "scale_jitter = [224, 224]"),
            ("affine = { rotate = 20.0, translate = 0.1 }", "affine = { rotate = 0.0 }"),
            ("lens = { k = [-0.3, 0.3] }", "lens = { k = [0.0, 0.0] }"),
            ("randaugment = { n = 3, magnitude = 15 }", "randaugment = { n = 0 }"),
            ("colour_jitter = { brightness = 0.5, hue = 0.2 }", "colour_jitter = {}"),
            ("pca_colour = 0.3", "pca_colour = 0.0"),
            ("erasing = { p = 1.0 }", "erasing = { p = 0.0 }"),
        ];
        for (on, off) in each {
            let mut a: Augment = toml::from_str(on).unwrap();
            a.pca = heavy().pca;
            let draw = |a: &Augment, seed| {
                let mut x = img.clone();
                a.apply(&mut x, [3, 16, 16], &mut image_rng(seed, 0, 0));
                x
            };
            assert_eq!(draw(&a, 1), draw(&a, 1), "{on}: same seed, same image");
            assert!((2..12).any(|s| draw(&a, s) != draw(&a, 1)), "{on}: other seeds, other images");
            let mut z: Augment = toml::from_str(off).unwrap();
            z.pca = heavy().pca;
            assert_eq!(draw(&z, 1), img, "{off} is the identity");
        }
    }

    #[test]
    fn alternating_flip_mirrors_on_the_epochs_it_says() {
        let a: Augment = toml::from_str("hflip_alternate = true").unwrap();
        let img = image();
        let mut mirrored = img.clone();
        flip::hflip(&mut mirrored, [3, 16, 16]);
        for (epoch, index) in [(1, 0), (1, 1), (2, 0), (2, 1), (3, 5), (4, 5)] {
            let mut x = img.clone();
            a.apply_for(&mut x, [3, 16, 16], 9, epoch, index);
            let want = if flip::alternating(9, epoch, index) { &mirrored } else { &img };
            assert_eq!(&x, want, "epoch {epoch}, image {index}");
        }
        let both: Augment = toml::from_str("hflip = true\nhflip_alternate = true").unwrap();
        assert!(both.validate().unwrap_err().contains("keep one"));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let e = toml::from_str::<Augment>("flip = true").unwrap_err().to_string();
        assert!(e.contains("flip") && e.contains("hflip"), "{e}");
        let bad: Augment = toml::from_str("affine = { scale = [2.0, 1.0] }").unwrap();
        assert!(bad.validate().unwrap_err().contains("augment.affine.scale"));
        let bad: Augment = toml::from_str("mixup = -1.0").unwrap();
        assert!(bad.validate().unwrap_err().contains("augment.mixup"));
    }
}
