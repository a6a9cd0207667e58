//! `Idempotency-Key` on POST: the first response (below 500) for a key is kept, and a retry with the
//! same key and the same request gets that response again instead of doing the work twice. The same
//! key with a different request is a 422; a retry while the first is still running is a 409. Keys are
//! per API key. JSON bodies are fingerprinted by content; streamed uploads by their length.

use crate::auth::hash_key;
use crate::error::ApiError;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use coreplex_store::{IdempotencyClaim, StoredResponse};
use sha2::{Digest, Sha256};

const MAX_KEPT_BODY: usize = 8 * 1024 * 1024;
/// Bodies up to this size are read and fingerprinted by content.
const MAX_HASHED_BODY: usize = 16 * 1024 * 1024;
/// A claim that never finished is taken over after this long (its server died).
const STALE_CLAIM_MS: i64 = 10 * 60_000;
/// How long a finished request's response is kept for replays (the scheduler then removes it): a
/// day, long enough for any client's retries, short enough that a secret shown once in a stored
/// response (a new API key, a generated signing secret) does not stay in the database.
pub const KEEP_MS: i64 = 24 * 3_600_000;

pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(idem) = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
    else {
        return next.run(req).await;
    };
    if idem.is_empty() || idem.len() > 200 {
        return ApiError::invalid("Idempotency-Key", "must be 1 to 200 characters").into_response();
    }
    let secret = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|s| s.trim().to_string());
    let Some(secret) = secret else {
        return next.run(req).await;
    };
    let key_id = match state.store.find_key_by_hash(&hash_key(&secret)).await {
        Ok(Some(k)) => k.id,
        Ok(None) => return next.run(req).await,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let length = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let small = length.map(|l| l <= MAX_HASHED_BODY).unwrap_or(false)
        || req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .map(|c| c.as_bytes().starts_with(b"application/json"))
            .unwrap_or(false);
    let (req, fingerprint) = if small {
        let (parts, body) = req.into_parts();
        let bytes = match axum::body::to_bytes(body, MAX_HASHED_BODY).await {
            Ok(b) => b,
            Err(_) => return ApiError::too_large("a JSON body over 16 MiB").into_response(),
        };
        let mut h = Sha256::new();
        h.update(query.as_bytes());
        h.update([0]);
        h.update(&bytes);
        (
            Request::from_parts(parts, Body::from(bytes)),
            hex::encode(h.finalize()),
        )
    } else {
        (
            req,
            format!(
                "stream:{query}:{}",
                length.map(|l| l.to_string()).unwrap_or_default()
            ),
        )
    };
    let now = state.now();
    match state
        .store
        .claim_idempotency_key(
            &key_id,
            &idem,
            &path,
            &fingerprint,
            now,
            now - STALE_CLAIM_MS,
        )
        .await
    {
        Ok(IdempotencyClaim::Claimed) => {}
        Ok(IdempotencyClaim::Replay(saved)) => {
            let mut resp = Response::new(Body::from(saved.body));
            *resp.status_mut() = StatusCode::from_u16(saved.status).unwrap_or(StatusCode::OK);
            resp.headers_mut().insert(
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp.headers_mut()
                .insert("idempotent-replay", HeaderValue::from_static("true"));
            return resp;
        }
        Ok(IdempotencyClaim::InProgress) => {
            return ApiError::conflict(
                "a request with this Idempotency-Key is still being handled; retry in a moment",
            )
            .into_response();
        }
        Ok(IdempotencyClaim::Mismatch { path: p }) => {
            return ApiError::invalid(
                "Idempotency-Key",
                format!("this key was already used for a different request (POST {p}); use a new key for a new request"),
            )
            .into_response();
        }
        Err(e) => return ApiError::from(e).into_response(),
    }
    let resp = next.run(req).await;
    if resp.status().is_server_error() {
        if let Err(e) = state
            .store
            .finish_idempotency_key(&key_id, &idem, None)
            .await
        {
            tracing::warn!(error = %e, "could not release an idempotency key");
        }
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_KEPT_BODY).await {
        Ok(b) => b,
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let saved = StoredResponse {
        method: "POST".into(),
        path,
        status: parts.status.as_u16(),
        body: String::from_utf8_lossy(&bytes).into_owned(),
    };
    if let Err(e) = state
        .store
        .finish_idempotency_key(&key_id, &idem, Some(&saved))
        .await
    {
        tracing::warn!(error = %e, "could not keep the idempotent response");
    }
    Response::from_parts(parts, Body::from(bytes))
}
