//! Datasets: real files in, `u8` images and labels out. Every loader names the file, the offset and what it
//! expected when the input is corrupt or truncated.

pub mod cifar_bin;
pub mod fetch;
pub mod folder;
pub mod idx;
pub mod loader;
pub mod preprocess;
pub mod split;

use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// Images as bytes, `N x C x H x W`, with integer labels.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// `[C, H, W]`
    pub shape: [usize; 3],
    pub images: Vec<u8>,
    pub labels: Vec<u16>,
    pub classes: Vec<String>,
    /// Files that could not be decoded and were left out (with the reason), for the report.
    pub skipped: Vec<String>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    pub fn image_len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.images[i * n..(i + 1) * n]
    }
    /// Puts this split's labels in `reference`'s numbering, matching classes by name (a test split may lack a class
    /// or list its folders differently). A class `reference` does not have is an error naming it: the model could
    /// never predict it, so every such image would be scored wrong. `what` names this split in messages.
    pub fn relabel(&mut self, reference: &[String], what: &str) -> crate::Result<()> {
        let unknown: Vec<&String> = self.classes.iter().filter(|c| !reference.contains(c)).collect();
        if !unknown.is_empty() {
            return Err(crate::Error::Config(format!(
                "{what} has class(es) {unknown:?} that the model was not trained on (its classes: {reference:?}); \
                 rename or remove those folders, or train on data that has them"
            )));
        }
        let missing: Vec<&String> = reference.iter().filter(|c| !self.classes.contains(c)).collect();
        if !missing.is_empty() {
            tracing::warn!("{what} has no images of class(es) {missing:?}; they count as zero images");
        }
        let map: Vec<u16> =
            self.classes.iter().map(|c| reference.iter().position(|r| r == c).expect("checked above") as u16).collect();
        self.labels.iter_mut().for_each(|l| *l = map[*l as usize]);
        self.classes = reference.to_vec();
        Ok(())
    }

    /// Only the images of the classes `names` (in that order, which becomes the label numbering): a dataset
    /// split by class, as transfer experiments need (pretrain on some classes, transfer to the others).
    pub fn only_classes(&self, names: &[String]) -> crate::Result<Dataset> {
        let unknown: Vec<&String> = names.iter().filter(|n| !self.classes.contains(n)).collect();
        if !unknown.is_empty() || names.len() < 2 {
            return Err(crate::Error::Config(format!(
                "classes {names:?}: need two or more of the data's classes {:?} (unknown: {unknown:?})",
                self.classes
            )));
        }
        let new_label: Vec<Option<u16>> =
            self.classes.iter().map(|c| names.iter().position(|n| n == c).map(|i| i as u16)).collect();
        let keep: Vec<usize> = (0..self.len()).filter(|&i| new_label[self.labels[i] as usize].is_some()).collect();
        let mut out = self.subset(&keep);
        out.labels = keep.iter().map(|&i| new_label[self.labels[i] as usize].expect("kept")).collect();
        out.classes = names.to_vec();
        Ok(out)
    }

    /// The images at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let mut images = Vec::with_capacity(indices.len() * self.image_len());
        for &i in indices {
            images.extend_from_slice(self.image(i));
        }
        Dataset {
            shape: self.shape,
            images,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            classes: self.classes.clone(),
            skipped: Vec::new(),
        }
    }
}

/// The dataset formats convkit reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Mnist,
    FashionMnist,
    Cifar10Bin,
    Folder,
}

/// Which part of a dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

/// `KIND:PATH`, as given on the command line or in a recipe.
#[derive(Clone, Debug, PartialEq)]
pub struct DataSpec {
    pub kind: Kind,
    pub path: PathBuf,
}

impl std::str::FromStr for DataSpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let (k, p) = s.split_once(':').ok_or_else(|| {
            Error::Config(format!("data '{s}' should be KIND:PATH, e.g. mnist:../shared/data/mnist (KIND is mnist, fashion-mnist, cifar10-bin or folder)"))
        })?;
        let kind = match k {
            "mnist" => Kind::Mnist,
            "fashion-mnist" => Kind::FashionMnist,
            "cifar10-bin" => Kind::Cifar10Bin,
            "folder" => Kind::Folder,
            other => {
                return Err(Error::Unknown {
                    kind: "dataset kind",
                    name: other.into(),
                    known: "mnist, fashion-mnist, cifar10-bin, folder".into(),
                })
            }
        };
        Ok(DataSpec { kind, path: PathBuf::from(p) })
    }
}

impl std::fmt::Display for DataSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let k = match self.kind {
            Kind::Mnist => "mnist",
            Kind::FashionMnist => "fashion-mnist",
            Kind::Cifar10Bin => "cifar10-bin",
            Kind::Folder => "folder",
        };
        write!(f, "{k}:{}", self.path.display())
    }
}

impl DataSpec {
    /// Where this data may be found: the path as given, then the shared data folder and Debian's package, then the
    /// user's data folder (where `convkit data fetch` puts it).
    pub fn resolve(&self) -> Result<DataSpec> {
        if self.path.exists() {
            return Ok(self.clone());
        }
        let mut fallbacks: Vec<PathBuf> = match self.kind {
            Kind::Mnist => vec!["../shared/data/mnist".into()],
            Kind::FashionMnist => {
                vec!["../shared/data/fashion-mnist".into(), "/usr/share/datasets/fashion-mnist".into()]
            }
            _ => Vec::new(),
        };
        // Only a path naming the dataset's usual folder (a recipe's default) falls back to the other usual places;
        // an explicit path elsewhere that does not exist is an error, never silently another dataset.
        let folder = self.path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        if let (Some(user), false) = (fetch::user_data_dir(), self.kind == Kind::Folder || folder.is_empty()) {
            fallbacks.push(user.join(&folder));
        }
        for candidate in &fallbacks {
            if candidate.exists() && candidate.file_name().is_some_and(|n| n.to_string_lossy() == folder) {
                tracing::info!("{} not found, using {}", self.path.display(), candidate.display());
                return Ok(DataSpec { kind: self.kind, path: candidate.clone() });
            }
        }
        let fetch = match (fetch::hint(self.kind), fetch::user_data_dir()) {
            (Some(name), Some(dir)) => format!(
                "fetch it with `convkit data fetch {name}` (into {}, checked against the published MD5s) and point \
                 the recipe there, or ",
                dir.join(fetch::source(name).map_or(name, |s| s.folder)).display()
            ),
            (Some(name), None) => format!("fetch it with `convkit data fetch {name} --dir DIR`, or "),
            _ => String::new(),
        };
        let how = match self.kind {
            Kind::Mnist => "put the four MNIST IDX files there (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz)",
            Kind::FashionMnist => "run `apt-get install dataset-fashion-mnist` (files land in /usr/share/datasets/fashion-mnist)",
            Kind::Cifar10Bin => "download and unpack the CIFAR-10 binary version (cifar-10-batches-bin/)",
            Kind::Folder => "point at a folder or .tar/.tar.gz laid out as ROOT/<split>/<class>/<image>",
        };
        Err(Error::file(&self.path, format!("not found; {fetch}{how}")))
    }

    /// Loads one split. `size` resizes (shorter side) and centre-crops folder images to `[H, W]`.
    pub fn load(&self, split: Split, size: Option<[usize; 2]>) -> Result<Dataset> {
        let spec = self.resolve()?;
        match spec.kind {
            Kind::Mnist => idx::load_dir(&spec.path, split, idx::mnist_classes()),
            Kind::FashionMnist => idx::load_dir(&spec.path, split, idx::fashion_classes()),
            Kind::Cifar10Bin => cifar_bin::load_dir(&spec.path, split),
            Kind::Folder => folder::load(&spec.path, split, size),
        }
    }

    /// The validation images carved from the training split when none is given: 5000 for CIFAR-10 (the usual
    /// practice), 10% otherwise.
    pub fn default_val(&self, train_len: usize) -> usize {
        match self.kind {
            Kind::Cifar10Bin => 5000.min(train_len / 2),
            _ if self.path.to_string_lossy().contains("cifar") => 5000.min(train_len / 2),
            _ => train_len / 10,
        }
    }
}

/// Reads a whole file, gunzipping it when it starts with the gzip magic.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    if raw.len() >= 2 && raw[0] == 0x1f && raw[1] == 0x8b {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..]).read_to_end(&mut out).map_err(|e| {
            Error::file(path, format!("corrupt or truncated gzip stream after {} decompressed bytes: {e}", out.len()))
        })?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

#[cfg(test)]
mod relabel_tests {
    use super::*;

    fn split(classes: &[&str], labels: Vec<u16>) -> Dataset {
        let n = labels.len();
        Dataset {
            shape: [1, 1, 1],
            images: vec![0; n],
            labels,
            classes: classes.iter().map(|c| c.to_string()).collect(),
            skipped: vec![],
        }
    }

    #[test]
    fn only_classes_keeps_those_images_numbered_in_the_given_order() {
        let mut ds = split(&["ant", "bee", "cat"], vec![0, 1, 2, 2, 0]);
        ds.images = vec![10, 11, 12, 13, 14];
        let names: Vec<String> = ["cat", "ant"].iter().map(|c| c.to_string()).collect();
        let only = ds.only_classes(&names).unwrap();
        assert_eq!((only.images, only.labels, only.classes), (vec![10, 12, 13, 14], vec![1, 0, 0, 1], names));
        assert!(ds.only_classes(&["cat".to_string(), "dog".to_string()]).is_err());
        assert!(ds.only_classes(&["cat".to_string()]).is_err());
    }

    #[test]
    fn labels_follow_class_names_not_positions() {
        let train: Vec<String> = ["ant", "bee", "cat"].iter().map(|c| c.to_string()).collect();
        // The test split lacks "ant": by position its "bee" would be label 0 (ant). By name it stays bee.
        let mut test = split(&["bee", "cat"], vec![0, 1, 1]);
        test.relabel(&train, "the test split").unwrap();
        assert_eq!(test.labels, vec![1, 2, 2]);
        assert_eq!(test.classes, train);
        let mut extra = split(&["bee", "dog"], vec![0, 1]);
        let e = extra.relabel(&train, "the test split").unwrap_err().to_string();
        assert!(e.contains("dog") && e.contains("not trained on"), "{e}");
    }
}
