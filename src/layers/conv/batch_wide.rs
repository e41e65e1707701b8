//! The backward pass in batch-wide products, for convs whose filter outweighs their maps (resnet18's 512 x 512
//! channels on 7x7 at a small batch): many images' column matrices side by side, each product threaded by `gemm`.
//!
//! The usual plan gives each core a slice of the batch. When a slice's column matrix is small beside the filter,
//! that plan pays for the filter, not for the images: dW needs one accumulator per slice (zeroed, filled a few
//! dozen columns at a time, summed after: 9.4 MB each at 512 x 512), and every product re-packs the whole filter.
//! Here dW accumulates straight into the gradient and the filter is packed once per `COLUMNS` columns.
//! The forward pass stays per slice: batch-wide, it measured level on resnet18 and 15% slower on `small`'s
//! 64 -> 128 channels on 8x8.

use super::{relu_gate, Conv2d};
use crate::kernels::gemm::{matmul, matmul_strided, Mat};
use crate::kernels::im2col::{col2im_pitched, im2col_pitched, Geometry};
use crate::kernels::{threads, winograd, winograd_filter_grad};
use crate::tensor::{Float, Tensor};
use rayon::prelude::*;

/// Columns per product: enough images that packing the filter is a small part of the product.
const COLUMNS: usize = 1024;

impl<T: Float> Conv2d<T> {
    /// Whether this conv's products span the batch: a stride-1 conv without groups that Winograd's narrow kernels
    /// and its filter gradient do not take (a wide one's dX is then GEMM's, its forward still Winograd's),
    /// whose slice of the batch (`images_per_slice` images of `n` output pixels) has fewer columns than
    /// `batch_wide` times its output channels. The filter then costs the slice plan more than the images do.
    pub(super) fn is_batch_wide(&self, x: &[usize], g: &Geometry, n: usize, images_per_slice: usize) -> bool {
        let c = &self.cfg;
        c.groups == 1
            && g.stacks()
            && !(self.has_winograd_geometry(x)
                && (!winograd::is_wide(c.in_channels, c.out_channels)
                    || winograd_filter_grad::applies::<T>(c.in_channels, c.out_channels)))
            && c.out_channels * self.batch_wide > images_per_slice * n
    }

    /// dW, db and (unless skipped) dX of the whole batch. dW and db add to the parameters' gradients.
    pub(super) fn backward_batch_wide(&mut self, g: &Geometry, [x, dy, y]: [&Tensor<T>; 3], dx: &mut Tensor<T>) {
        let n = dy.shape()[2] * dy.shape()[3];
        let (cout, kdim, per_in) = (self.cfg.out_channels, g.c * g.kh * g.kw, g.c * g.h * g.w);
        let (want_dw, want_dx) = (!self.weight.frozen, !self.skip_dx);
        let relu = self.cfg.relu;
        let m_max = (COLUMNS / n).clamp(1, x.batch().max(1));
        let (mut cols, mut dys) = (T::pool().take(kdim * m_max * n), T::pool().take(cout * m_max * n));
        let per_out = cout * n;
        for (first, dxs) in (0..x.batch()).step_by(m_max).zip(dx.data_mut().chunks_mut(m_max * per_in)) {
            let m = dxs.len() / per_in;
            let pitch = m * n;
            let (cols, dys) = (&mut cols[..kdim * pitch], &mut dys[..cout * pitch]);
            let (dyb, yb) = (&dy.data()[first * per_out..][..m * per_out], &y.data()[first * per_out..][..m * per_out]);
            // The images' output gradients side by side, through the fused ReLU's gate.
            dys.par_chunks_mut(pitch).enumerate().for_each(|(co, row)| {
                for j in 0..m {
                    let (dst, at) = (&mut row[j * n..][..n], j * per_out + co * n);
                    if relu {
                        relu_gate(&dyb[at..][..n], &yb[at..][..n], dst);
                    } else {
                        dst.copy_from_slice(&dyb[at..][..n]);
                    }
                }
            });
            if let Some(b) = self.bias.as_mut().filter(|b| !b.frozen) {
                for (d, row) in b.grad.data_mut().iter_mut().zip(dys.chunks(pitch)) {
                    *d += row.iter().copied().sum::<T>();
                }
            }
            if want_dw {
                stack_columns(g, &x.data()[first * per_in..][..m * per_in], cols, n);
                let dw = self.weight.grad.data_mut();
                let (dy_mat, cols_t) = (Mat::new(dys, cout, pitch), Mat::new(cols, kdim, pitch).t());
                matmul_strided(dy_mat, cols_t, dw, kdim as isize, 1, true, threads());
            }
            if want_dx {
                let w = self.weight.value.data();
                matmul(Mat::new(w, cout, kdim).t(), Mat::new(dys, cout, pitch), cols, false, threads());
                let cols = &*cols;
                dxs.par_chunks_mut(per_in)
                    .enumerate()
                    .for_each(|(j, dxi)| col2im_pitched(g, &cols[j * n..], dxi, pitch));
            }
        }
        T::pool().give(cols);
        T::pool().give(dys);
    }
}

/// The images' column matrices side by side (`[C*k*k][m*n]`), one input channel's rows per task.
fn stack_columns<T: Float>(g: &Geometry, xs: &[T], cols: &mut [T], n: usize) {
    let (plane, per_in) = (g.h * g.w, g.c * g.h * g.w);
    let pitch = cols.len() / (g.c * g.kh * g.kw);
    let one = Geometry { c: 1, ..*g };
    cols.par_chunks_mut(g.kh * g.kw * pitch).enumerate().for_each(|(c, rows)| {
        for (j, xi) in xs.chunks(per_in).enumerate() {
            im2col_pitched(&one, &xi[c * plane..][..plane], &mut rows[j * n..], pitch);
        }
    });
}
