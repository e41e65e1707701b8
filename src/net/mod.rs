//! Composing layers into networks: a sequence, a residual block, parallel branches joined by channel
//! concatenation (Inception). All three are layers themselves, so blocks nest.

pub mod concat;
pub mod depth_first;
pub mod residual;
pub mod sequential;

pub use concat::Concat;
pub use residual::Residual;
pub use sequential::Sequential;
pub mod anomaly;
pub mod hook;
pub mod probe;
pub mod profile;

/// Replaces every leaf layer under `net` (a layer with no children) by `wrap(qualified name, leaf)`: how hooks
/// (`hook.rs`) put themselves around each layer without the layers knowing.
pub fn wrap_leaves<T: crate::tensor::Float>(
    net: &mut dyn crate::layers::Layer<T>,
    wrap: &mut dyn FnMut(&str, Box<dyn crate::layers::Layer<T>>) -> Box<dyn crate::layers::Layer<T>>,
) {
    net.visit_children("", &mut |name, child| {
        let mut is_leaf = true;
        child.visit_children("", &mut |_, _| is_leaf = false);
        if is_leaf {
            let inner = std::mem::replace(child, Box::new(crate::layers::Flatten));
            *child = wrap(name, inner);
        }
    });
}
