//! The tensor: a shape and a flat row-major buffer (NCHW for images).
//!
//! Buffers come from and return to a per-type pool, so a training step reuses the memory of the previous step
//! instead of asking the allocator (and the kernel, for large buffers) for fresh pages every batch.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt::{Debug, Display};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

thread_local! {
    static SHAPES_ONLY: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with tensors that have a shape and no values (PyTorch's "meta" device): what a model's tables need
/// (parameter counts, activation sizes, FLOPs all follow from shapes) without allocating VGG-16's 550 MB of weights.
/// Building is the only thing to do inside: any computation sees empty buffers.
pub fn shapes_only<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            SHAPES_ONLY.with(|c| c.set(self.0));
        }
    }
    let _reset = Reset(SHAPES_ONLY.with(|c| c.replace(true)));
    f()
}

/// The buffer length for `shape`: none inside `shapes_only`.
fn buffer_len(shape: &[usize]) -> usize {
    if SHAPES_ONLY.with(|c| c.get()) {
        0
    } else {
        shape.iter().product()
    }
}

/// The float types convkit computes in: `f32` for training, `f64` for gradient checks.
/// Every layer is written once, generic over this trait.
pub trait Float:
    num_traits::Float
    + Default
    + Debug
    + Display
    + Send
    + Sync
    + 'static
    + std::ops::AddAssign
    + std::ops::SubAssign
    + std::ops::MulAssign
    + std::ops::DivAssign
    + std::iter::Sum
{
    /// A constant of this type (`T::c(0.5)`).
    fn c(x: f64) -> Self;
    fn to_f64(self) -> f64;
    /// The buffer pool for this type.
    fn pool() -> &'static Pool<Self>;
    const NAME: &'static str;
    /// The slices as `f32`, for kernels written with explicit f32 vectors (None for f64, which takes the generic
    /// path).
    fn as_f32(_s: &[Self]) -> Option<&[f32]> {
        None
    }
    fn as_f32_mut(_s: &mut [Self]) -> Option<&mut [f32]> {
        None
    }
}

static POOL_F32: Pool<f32> = Pool::new();
static POOL_F64: Pool<f64> = Pool::new();

impl Float for f32 {
    fn c(x: f64) -> Self {
        x as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn pool() -> &'static Pool<Self> {
        &POOL_F32
    }
    const NAME: &'static str = "f32";
    fn as_f32(s: &[Self]) -> Option<&[f32]> {
        Some(s)
    }
    fn as_f32_mut(s: &mut [Self]) -> Option<&mut [f32]> {
        Some(s)
    }
}

impl Float for f64 {
    fn c(x: f64) -> Self {
        x
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn pool() -> &'static Pool<Self> {
        &POOL_F64
    }
    const NAME: &'static str = "f64";
}

/// Free buffers by length. Small buffers are not pooled: the allocator is fast for those. The pool holds at most
/// `POOL_MAX_BYTES` by default, so that the weights of a dropped model (VGG's are 550 MB) go back to the system
/// instead of staying here for good; training raises that (`set_pool_limit`) so that all of a step's buffers are
/// reused step after step.
pub struct Pool<T> {
    free: Mutex<Free<T>>,
}

struct Free<T> {
    by_len: Option<HashMap<usize, Vec<Vec<T>>>>,
    bytes: usize,
}

const POOL_MIN_LEN: usize = 4096;
const POOL_MAX_PER_LEN: usize = 32;
pub const POOL_MAX_BYTES: usize = 1 << 30;
static POOL_LIMIT: AtomicUsize = AtomicUsize::new(POOL_MAX_BYTES);

/// How many bytes of free buffers each pool may hold from now on (`POOL_MAX_BYTES` by default).
pub fn set_pool_limit(bytes: usize) {
    POOL_LIMIT.store(bytes, Ordering::Relaxed);
}

impl<T: Float> Pool<T> {
    const fn new() -> Self {
        Pool { free: Mutex::new(Free { by_len: None, bytes: 0 }) }
    }

    /// A buffer of `len` elements with unspecified (but initialised) contents.
    pub fn take(&self, len: usize) -> Vec<T> {
        if len >= POOL_MIN_LEN {
            let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
            // A miss opens the length's list: from now on its buffers are worth keeping (`give`).
            let list = free.by_len.get_or_insert_with(HashMap::new).entry(len).or_default();
            if let Some(v) = list.pop() {
                free.bytes -= len * size_of::<T>();
                return v;
            }
        }
        vec![T::zero(); len]
    }

    /// Hands every free buffer back to the allocator.
    fn release(&self) {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        *free = Free { by_len: None, bytes: 0 };
    }

    /// A buffer of `len` zeros.
    pub fn take_zeroed(&self, len: usize) -> Vec<T> {
        let mut v = self.take(len);
        v.fill(T::zero());
        v
    }

    pub fn give(&self, v: Vec<T>) {
        let len = v.len();
        if len < POOL_MIN_LEN || v.capacity() != len {
            return;
        }
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        let bytes = len * size_of::<T>();
        if free.bytes + bytes > POOL_LIMIT.load(Ordering::Relaxed) {
            return;
        }
        // Only lengths asked for since the last release are kept. After a change of batch shape the layers drop
        // their old shape's saved activations while the new shape's step runs; keeping those would hold two
        // shapes' buffers at once (airbench's last, partial batch: 4.0 GB resident instead of 2.9).
        let Some(list) = free.by_len.as_mut().and_then(|m| m.get_mut(&len)) else { return };
        if list.len() < POOL_MAX_PER_LEN {
            list.push(v);
            free.bytes += bytes;
        }
    }
}

/// Empties the buffer pools. For a change of batch shapes (training to evaluation and back): the free buffers
/// of one phase's shapes would otherwise sit idle through the other, adding to the process's peak memory.
pub fn release_pools() {
    f32::pool().release();
    f64::pool().release();
}

/// An n-dimensional array of `T`, row-major.
pub struct Tensor<T: Float = f32> {
    shape: Vec<usize>,
    data: Vec<T>,
}

impl<T: Float> Tensor<T> {
    pub fn zeros(shape: &[usize]) -> Self {
        let n = buffer_len(shape);
        Tensor { shape: shape.to_vec(), data: T::pool().take_zeroed(n) }
    }

    /// A tensor whose contents the caller will overwrite entirely (saves a memset on the hot path).
    pub fn uninit(shape: &[usize]) -> Self {
        let n = buffer_len(shape);
        Tensor { shape: shape.to_vec(), data: T::pool().take(n) }
    }

    pub fn full(shape: &[usize], v: T) -> Self {
        let mut t = Self::uninit(shape);
        t.data.fill(v);
        t
    }

    /// Wraps a vector; panics if its length does not match the shape (a caller bug).
    pub fn from_vec(shape: &[usize], data: Vec<T>) -> Self {
        assert_eq!(
            shape.iter().product::<usize>(),
            data.len(),
            "shape {shape:?} does not match {} elements",
            data.len()
        );
        Tensor { shape: shape.to_vec(), data }
    }

    pub fn from_fn(shape: &[usize], mut f: impl FnMut(usize) -> T) -> Self {
        let n = buffer_len(shape);
        Tensor { shape: shape.to_vec(), data: (0..n).map(&mut f).collect() }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    pub fn len(&self) -> usize {
        self.data.len()
    }
    /// Elements the shape holds (equal to `len()` except for a tensor made in `shapes_only`).
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    pub fn data(&self) -> &[T] {
        &self.data
    }
    pub fn data_mut(&mut self) -> &mut [T] {
        &mut self.data
    }
    /// Size of dimension 0 (the batch for activations).
    pub fn batch(&self) -> usize {
        self.shape[0]
    }

    /// Same data, new shape of equal size.
    pub fn reshape(mut self, shape: &[usize]) -> Self {
        assert_eq!(shape.iter().product::<usize>(), self.data.len(), "cannot reshape {:?} to {shape:?}", self.shape);
        self.shape = shape.to_vec();
        self
    }

    pub fn map(&self, f: impl Fn(T) -> T + Sync) -> Self {
        let mut out = Self::uninit(&self.shape);
        for (o, &x) in out.data.iter_mut().zip(&self.data) {
            *o = f(x);
        }
        out
    }

    /// Converts between float types (f32 model -> f64 copy for gradient checking, and back).
    pub fn cast<U: Float>(&self) -> Tensor<U> {
        Tensor { shape: self.shape.clone(), data: self.data.iter().map(|&x| U::c(x.to_f64())).collect() }
    }

    /// `self += other`, split across cores (the residual backward adds two full activation gradients).
    pub fn add_assign(&mut self, other: &Tensor<T>) {
        use rayon::prelude::*;
        assert_eq!(self.shape, other.shape);
        self.data.par_chunks_mut(1 << 15).zip(other.data.par_chunks(1 << 15)).for_each(|(a, b)| {
            for (a, &b) in a.iter_mut().zip(b) {
                *a += b;
            }
        });
    }

    pub fn sum(&self) -> T {
        self.data.iter().copied().sum()
    }

    pub fn sq_sum(&self) -> T {
        self.data.iter().map(|&x| x * x).sum()
    }

    pub fn max_abs(&self) -> T {
        self.data.iter().fold(T::zero(), |m, &x| m.max(x.abs()))
    }

    pub fn into_vec(mut self) -> Vec<T> {
        std::mem::take(&mut self.data)
    }
}

impl<T: Float> Clone for Tensor<T> {
    fn clone(&self) -> Self {
        let mut data = T::pool().take(self.data.len());
        data.copy_from_slice(&self.data);
        Tensor { shape: self.shape.clone(), data }
    }
}

impl<T: Float> Drop for Tensor<T> {
    fn drop(&mut self) {
        T::pool().give(std::mem::take(&mut self.data));
    }
}

impl<T: Float> Debug for Tensor<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor<{}>{:?}", T::NAME, self.shape)?;
        if self.data.len() <= 16 {
            write!(f, " {:?}", self.data)?;
        }
        Ok(())
    }
}

/// Splits NCHW-like shapes into (batch, channels, spatial size): dims after the channel are flattened.
pub fn bcs(shape: &[usize]) -> (usize, usize, usize) {
    let b = shape[0];
    let c = if shape.len() > 1 { shape[1] } else { 1 };
    let s = shape.iter().skip(2).product();
    (b, c, s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_reuses_large_buffers_until_released() {
        // A pool of its own: the global ones are emptied by any evaluation running in a parallel test.
        let pool = Pool::<f32>::new();
        let mut v = pool.take(8263);
        v.fill(3.0);
        let ptr = v.as_ptr();
        pool.give(v);
        let u = pool.take_zeroed(8263);
        // Same length, so the freed buffer comes back, zeroed.
        assert_eq!(u.as_ptr(), ptr);
        assert!(u.iter().all(|&x| x == 0.0));
        pool.give(u);
        assert_eq!(pool.free.lock().unwrap().bytes, 8263 * 4);
        pool.release();
        let free = pool.free.lock().unwrap();
        assert_eq!((free.bytes, free.by_len.is_none()), (0, true), "nothing held after release");
    }

    #[test]
    fn pool_keeps_only_lengths_asked_for_since_release() {
        let pool = Pool::<f32>::new();
        let old = pool.take(8192);
        pool.release();
        // A buffer of the old batch shape, dropped after the release, goes back to the system...
        pool.give(old);
        assert_eq!(pool.free.lock().unwrap().bytes, 0);
        // ... while one of a length in use since is kept.
        let new = pool.take(6144);
        pool.give(new);
        assert_eq!(pool.free.lock().unwrap().bytes, 6144 * 4);
    }

    #[test]
    fn cast_round_trips() {
        let t = Tensor::<f32>::from_vec(&[2, 2], vec![1.5, -2.0, 0.25, 8.0]);
        let d: Tensor<f64> = t.cast();
        assert_eq!(d.data(), &[1.5, -2.0, 0.25, 8.0]);
        assert_eq!(d.cast::<f32>().data(), t.data());
    }
}
