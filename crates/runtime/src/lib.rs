//! Model loading and inference. Every model, uploaded or trained by the platform, is an ONNX graph run
//! by ONNX Runtime through `ort`, loaded dynamically from `libonnxruntime` at start-up.
//!
//! A loaded model knows its input schema (read from the graph) and turns rows of named feature values
//! into the graph's input tensors, and the graph's outputs into one [`Prediction`] per row.

mod model;

pub use model::{
    DType, Feature, InputSpec, LoadOptions, LoadedModel, ModelSchema, OutputKind, Prediction,
};

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The ONNX Runtime version the product is built and tested against.
pub const ORT_VERSION: &str = "1.32.0";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "ONNX Runtime library not found or unusable ({detail}). Fetch it with `scripts/fetch-onnxruntime.sh` \
         (it downloads onnxruntime=={ORT_VERSION} from PyPI and keeps libonnxruntime.so) and point \
         --onnxruntime-lib or ORT_DYLIB_PATH at the file it prints"
    )]
    RuntimeMissing { detail: String },
    #[error("the file is not a model ONNX Runtime can load: {0}")]
    InvalidModel(String),
    #[error("{field}: {message}")]
    BadInput { field: String, message: String },
    #[error("inference failed: {0}")]
    Inference(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

static ENVIRONMENT: OnceLock<ort::environment::Environment> = OnceLock::new();

/// Where the ONNX Runtime library is looked for when no path is given: `ORT_DYLIB_PATH`, then
/// `.tools/onnxruntime/` under the working directory and beside (or above) the executable.
pub fn default_library_candidates() -> Vec<PathBuf> {
    let file = format!("libonnxruntime.so.{ORT_VERSION}");
    let mut out = Vec::new();
    if let Ok(p) = std::env::var("ORT_DYLIB_PATH") {
        out.push(PathBuf::from(p));
    }
    if let Ok(cwd) = std::env::current_dir() {
        for dir in cwd.ancestors() {
            out.push(dir.join(".tools/onnxruntime").join(&file));
        }
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1) {
            out.push(dir.join(".tools/onnxruntime").join(&file));
        }
    }
    out
}

/// Loads ONNX Runtime once per process, from `path` or the first default candidate that exists.
pub fn init(path: Option<&Path>) -> Result<()> {
    if ENVIRONMENT.get().is_some() {
        return Ok(());
    }
    let lib = match path {
        Some(p) => p.to_path_buf(),
        None => default_library_candidates()
            .into_iter()
            .find(|p| p.is_file())
            .ok_or_else(|| Error::RuntimeMissing {
                detail: format!("no libonnxruntime.so.{ORT_VERSION} in the default places"),
            })?,
    };
    if !lib.is_file() {
        return Err(Error::RuntimeMissing {
            detail: format!("{} does not exist", lib.display()),
        });
    }
    let builder = ort::init_from(&lib).map_err(|e| Error::RuntimeMissing {
        detail: format!("{}: {e}", lib.display()),
    })?;
    let env = builder
        .with_name("coreplex")
        .build()
        .map_err(|e| Error::RuntimeMissing {
            detail: format!("{}: {e}", lib.display()),
        })?;
    let _ = ENVIRONMENT.set(env);
    Ok(())
}

pub(crate) fn environment() -> Result<&'static ort::environment::Environment> {
    ENVIRONMENT.get().ok_or_else(|| Error::RuntimeMissing {
        detail: "runtime::init was not called".into(),
    })
}
