//! Inference depth first. Layer by layer, every layer reads the whole batch's activations and writes its own:
//! `resnet20`'s are 8 MB a layer at batch 128, far past a core's L2, and a quarter of its inference went to waiting
//! on them (perf: the loads copying each input plane into Winograd's phases, the stores of its output rows). Cut
//! into slices of a few images, each thread taking whole slices through every layer, a slice's activations stay in
//! the core's L2 from one layer to the next.
//!
//! It takes networks whose every layer keeps nothing at inference (`Layer::as_infer`), and batches whose images
//! are small enough for several to fit (`slice_images`): `resnet18` at 224x224 still runs layer by layer, where its
//! wide layers need many images per product.

use crate::layers::{Infer, Leaf, Walker};
use crate::tensor::{Float, Tensor};
use rayon::prelude::*;

/// Bytes of activations a slice may have in one layer's output: the core's L2 (`l2_bytes`). On a Zen 5 (1 MB),
/// slices of 8 to 32 of `resnet20`'s images (64 KB each at the widest) all ran within 4% of each other, one thread.
fn slice_bytes() -> usize {
    static BYTES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *BYTES.get_or_init(|| l2_bytes().unwrap_or(1 << 20).clamp(256 << 10, 4 << 20))
}

/// The L2 cache of the first CPU as Linux reports it (`.../cache/index2/size`, e.g. `1024K`), where it does.
fn l2_bytes() -> Option<usize> {
    let dir = "/sys/devices/system/cpu/cpu0/cache/index2";
    let read = |f: &str| std::fs::read_to_string(format!("{dir}/{f}")).ok();
    if read("level")?.trim() != "2" {
        return None;
    }
    let size = read("size")?;
    let (digits, unit) = size.trim().split_at(size.trim().find(|c: char| !c.is_ascii_digit())?);
    let scale = match unit {
        "K" => 1 << 10,
        "M" => 1 << 20,
        _ => return None,
    };
    digits.parse::<usize>().ok().map(|n| n * scale)
}

/// Fewer images than this per slice and inference stays layer by layer.
const MIN_SLICE: usize = 4;

/// The slice for a batch of `n` images whose largest activation takes `per_image` values each, or `None` where
/// depth first does not pay: too few images fit, or the batch is one slice anyway.
pub fn slice_images<T: Float>(n: usize, per_image: usize, threads: usize) -> Option<usize> {
    let fits = slice_bytes() / (per_image * size_of::<T>()).max(1);
    // Enough slices for every thread.
    let slice = fits.min(n.div_ceil(threads.max(1)));
    (slice >= MIN_SLICE && slice < n).then_some(slice)
}

/// The largest layer output of one image, in values: what `slice_images` sizes slices by.
pub struct LargestActivation(pub usize);

impl Walker for LargestActivation {
    fn leaf(&mut self, leaf: &Leaf<'_>) {
        let per_image = leaf.output.iter().skip(1).product::<usize>();
        self.0 = self.0.max(per_image);
    }
}

/// `net`'s inference of `x`, `slice` images at a time, the slices spread over the threads.
pub fn infer<T: Float>(net: &dyn Infer<T>, x: &Tensor<T>, slice: usize) -> Tensor<T> {
    let n = x.batch();
    let per_image = x.len() / n.max(1);
    let outputs: Vec<Tensor<T>> = x
        .data()
        .par_chunks(slice * per_image)
        .map(|images| {
            let mut shape = x.shape().to_vec();
            shape[0] = images.len() / per_image;
            let mut part = Tensor::uninit(&shape);
            part.data_mut().copy_from_slice(images);
            net.infer(&part)
        })
        .collect();
    let mut shape = outputs[0].shape().to_vec();
    shape[0] = n;
    let mut y = Tensor::uninit(&shape);
    let mut at = 0;
    for part in &outputs {
        y.data_mut()[at..][..part.len()].copy_from_slice(part.data());
        at += part.len();
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::{Layer, Mode};
    use crate::models;

    #[test]
    fn slices_fit_the_cache_and_leave_big_images_alone() {
        // resnet20's widest activation: 16 x 32 x 32 floats, 64 KB an image.
        let fit = slice_bytes() / (64 << 10);
        assert_eq!(slice_images::<f32>(128, 16 * 32 * 32, 2), Some(fit.min(64)));
        assert_eq!(slice_images::<f32>(20, 16 * 32 * 32, 2), Some(fit.min(10)));
        // One slice, or slices too small.
        assert_eq!(slice_images::<f32>(8, 16 * 32 * 32, 1), None);
        assert_eq!(slice_images::<f32>(16, 64 * 112 * 112, 2), None);
    }

    #[test]
    fn depth_first_inference_equals_layer_by_layer() {
        // Trained-looking batch norms (running statistics away from 0 and 1) make the folding matter.
        let mut model = models::build::<f32>("resnet8", Some(10), 3).unwrap();
        let x = Tensor::from_fn(&model.batch_shape(24), |i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0);
        for _ in 0..3 {
            model.forward(&x, Mode::Train);
        }
        assert!(model.net.as_infer().is_some(), "resnet8 infers through shared layers");
        let whole = model.net.forward(&x, Mode::Infer);
        for slice in [1, 5, 8, 24] {
            let sliced = infer(model.net.as_infer().unwrap(), &x, slice);
            assert_eq!(sliced.shape(), whole.shape());
            assert_eq!(sliced.data(), whole.data(), "slices of {slice}");
        }
        // `Model::forward` takes this path, with the same result.
        assert!(model.depth_first_slice(x.shape()).is_some(), "resnet8 at batch 24 runs depth first");
        assert_eq!(model.forward(&x, Mode::Infer).data(), whole.data());
    }

    #[test]
    fn hooked_networks_and_single_images_stay_layer_by_layer() {
        let mut model = models::build::<f32>("resnet8", Some(10), 0).unwrap();
        assert_eq!(model.depth_first_slice(&model.batch_shape(1)), None);
        crate::net::probe::attach(&mut model.net, &std::sync::Arc::new(crate::net::probe::Probe::default()));
        assert!(model.net.as_infer().is_none(), "a probed layer has no shared inference");
        assert_eq!(model.depth_first_slice(&model.batch_shape(128)), None);
    }
}
