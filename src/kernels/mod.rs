//! CPU kernels: the GEMM every conv and linear layer lowers to, and the im2col / col2im lowering itself.
//!
//! A GPU backend replaces this module (cuBLAS for `gemm`, cuDNN for the convolutions); the layers' maths stays.

pub mod depthwise;
pub mod elementwise;
pub mod gemm;
pub mod im2col;

/// How many pieces to split a batch into so that each core gets one (rayon's pool size).
pub fn threads() -> usize {
    rayon::current_num_threads().max(1)
}
