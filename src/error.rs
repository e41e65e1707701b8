//! Errors are values with context: which layer, which shape, what to do about it.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("shape error: {0}")]
    Shape(String),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("unknown {kind} '{name}'; known: {known}")]
    Unknown { kind: &'static str, name: String, known: String },
    #[error("in layer '{layer}': {source}")]
    InLayer { layer: String, source: Box<Error> },
    /// A data or checkpoint file that cannot be used: which file, where, what was expected.
    #[error("{}: {detail}", file.display())]
    File { file: std::path::PathBuf, detail: String },
    /// Training stopped because the loss or the weights stopped being finite numbers.
    #[error("training diverged: {0}")]
    Diverged(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    /// Wraps the error with the name of the layer it happened in (outermost name first when nested).
    pub fn in_layer(self, layer: &str) -> Error {
        match self {
            Error::InLayer { layer: inner, source } => Error::InLayer { layer: format!("{layer}.{inner}"), source },
            e => Error::InLayer { layer: layer.to_string(), source: Box::new(e) },
        }
    }
}

impl Error {
    pub fn file(file: impl Into<std::path::PathBuf>, detail: impl Into<String>) -> Error {
        Error::File { file: file.into(), detail: detail.into() }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
