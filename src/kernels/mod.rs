//! CPU kernels: the GEMM every conv and linear layer lowers to, and the im2col / col2im lowering itself.
//!
//! A GPU backend replaces this module (cuBLAS for `gemm`, cuDNN for the convolutions); the layers' maths stays.

pub mod depthwise;
pub mod elementwise;
pub mod filter_grad;
pub mod gemm;
pub mod im2col;
pub mod reduce;
pub mod strided_conv;
pub mod winograd;
pub mod winograd_filter_grad;

/// Asks the cache for the 64-byte lines holding `len` values from `p`: `winograd::fill_phases` hints the plane it
/// reads next. A hint only: it never faults, so `p` may run past the end of its buffer; nothing off x86-64.
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        let bytes = len * std::mem::size_of::<T>();
        for off in (0..bytes).step_by(64) {
            // SAFETY: a prefetch reads nothing architecturally and never faults, whatever the address.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    (p as *const i8).wrapping_add(off),
                )
            };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, len);
}

/// How many pieces to split a batch into so that each core gets one (rayon's pool size).
pub fn threads() -> usize {
    rayon::current_num_threads().max(1)
}

/// Runs `f` compiled for the best vector instructions this CPU has (AVX-512, AVX2 + FMA, or baseline x86-64),
/// chosen at run time. The binary itself targets baseline x86-64 so that it runs anywhere; the element-wise kernels
/// are plain loops that the compiler vectorises, as wide as the instruction set it is told it may use.
/// `f` must be inlined into the call (a closure is): functions it calls keep the baseline.
#[inline(always)]
pub fn simd<R>(f: impl FnOnce() -> R) -> R {
    arch().dispatch(f)
}

/// f32 lanes in a vector of the instruction set `arch` chose (8 with AVX2, 16 with AVX-512, 1 without either).
pub fn f32_lanes() -> usize {
    struct Lanes;
    impl pulp::WithSimd for Lanes {
        type Output = usize;
        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, _: S) -> usize {
            S::F32_LANES
        }
    }
    arch().dispatch(Lanes)
}

/// The instruction set convkit's own kernels run with: the best this CPU has, or at most AVX2 + FMA when the
/// environment has `CONVKIT_SIMD=avx2`. That measures, on an AVX-512 machine, the code an AVX2-only CPU (AMD Zen 3,
/// Intel before Skylake-X) runs, whose 16 vector registers constrain kernels that 32 do not. The `gemm` crate
/// chooses for itself.
#[inline(always)]
pub fn arch() -> pulp::Arch {
    static ARCH: std::sync::OnceLock<pulp::Arch> = std::sync::OnceLock::new();
    *ARCH.get_or_init(|| match std::env::var("CONVKIT_SIMD").as_deref() {
        Ok("avx2") => pulp::x86::V3::try_new().map_or(pulp::Arch::Scalar, pulp::Arch::V3),
        Ok(other) => {
            tracing::warn!("CONVKIT_SIMD={other:?} is not understood (only \"avx2\" is); using the best this CPU has");
            pulp::Arch::new()
        }
        Err(_) => pulp::Arch::new(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_prefetch_past_any_buffer_is_harmless() {
        // `fill_phases` hints the plane after the last one of a batch, past the buffer's end: a hint must never
        // read (a read there would fault).
        let plane = vec![1f32; 1024];
        super::prefetch(plane.as_ptr().wrapping_add(1 << 40), plane.len());
        super::prefetch(std::ptr::null::<f32>(), 1024);
        assert_eq!(plane.iter().sum::<f32>(), 1024.0);
    }
}
