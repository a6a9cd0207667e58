//! Where dataset and model files live: a folder on local disk (the embedded default). Files are
//! written to a temporary name and renamed into place, so a half-written upload is never visible.

use crate::{Error, Result};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct ArtifactStore {
    root: PathBuf,
}

impl ArtifactStore {
    pub fn local(root: impl Into<PathBuf>) -> Result<ArtifactStore> {
        let root = root.into();
        std::fs::create_dir_all(root.join("tmp"))
            .map_err(|e| Error::Artifact(format!("{}: {e}", root.display())))?;
        Ok(ArtifactStore { root })
    }

    /// A fresh temporary path inside the store, on the same file system as the final location.
    pub fn temp_path(&self) -> PathBuf {
        self.root
            .join("tmp")
            .join(coreplex_domain::ids::new_id("upload"))
    }

    /// Moves a finished temporary file to `key` (e.g. `models/model_x/model.onnx`).
    pub fn commit(&self, tmp: &Path, key: &str) -> Result<()> {
        let dest = self.path(key);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::Artifact(e.to_string()))?;
        }
        std::fs::rename(tmp, &dest).map_err(|e| Error::Artifact(e.to_string()))
    }

    /// The local path of `key`.
    pub fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    pub fn read(&self, key: &str) -> Result<Vec<u8>> {
        std::fs::read(self.path(key)).map_err(|e| Error::Artifact(format!("{key}: {e}")))
    }

    /// Removes `key` if present (used to undo a write whose database record failed).
    pub fn remove(&self, key: &str) {
        let _ = std::fs::remove_file(self.path(key));
    }

    /// Every file under the store except temporaries, for checks that nothing was left behind.
    pub fn list(&self) -> Vec<String> {
        fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
            if let Ok(rd) = std::fs::read_dir(dir) {
                for e in rd.flatten() {
                    let p = e.path();
                    if p.is_dir() {
                        walk(root, &p, out);
                    } else if let Ok(rel) = p.strip_prefix(root) {
                        out.push(rel.to_string_lossy().into_owned());
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &self.root, &mut out);
        out.retain(|p| !p.starts_with("tmp"));
        out.sort();
        out
    }
}
