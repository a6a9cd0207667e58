//! Streams a request body (or a multipart field) to a temporary file in the artifact store while
//! hashing it, so uploads of any size use constant memory.

use crate::error::{ApiError, ApiResult};
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use tokio::io::AsyncWriteExt;

/// A finished temporary file. Removed on drop unless [`TempUpload::keep`] was called.
pub struct TempUpload {
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
    keep: bool,
}

impl TempUpload {
    pub fn keep(&mut self) {
        self.keep = true;
    }
}

impl Drop for TempUpload {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

pub async fn to_temp_file<S, B, E>(
    path: PathBuf,
    mut stream: S,
    max_bytes: u64,
) -> ApiResult<TempUpload>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    E: std::fmt::Display,
{
    let file = tokio::fs::File::create(&path)
        .await
        .map_err(ApiError::internal)?;
    let mut upload = TempUpload {
        path,
        sha256: String::new(),
        size: 0,
        keep: false,
    };
    let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
    let mut hasher = Sha256::new();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("the upload was interrupted: {e}")))?;
        let bytes = chunk.as_ref();
        upload.size += bytes.len() as u64;
        if upload.size > max_bytes {
            return Err(ApiError::too_large(format!(
                "uploads are limited to {max_bytes} bytes"
            )));
        }
        hasher.update(bytes);
        out.write_all(bytes).await.map_err(ApiError::internal)?;
    }
    out.flush().await.map_err(ApiError::internal)?;
    upload.sha256 = hex::encode(hasher.finalize());
    Ok(upload)
}
