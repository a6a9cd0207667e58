//! `Idempotency-Key` on POST: the first response (below 500) for a key is kept, and a retry with the
//! same key gets that response again instead of doing the work twice. Keys are per API key.

use crate::auth::hash_key;
use crate::error::ApiError;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use coreplex_store::StoredResponse;

const MAX_KEPT_BODY: usize = 8 * 1024 * 1024;

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
    match state.store.idempotent_response(&key_id, &idem).await {
        Ok(Some(saved)) => {
            if saved.path != path || saved.method != "POST" {
                return ApiError::invalid(
                    "Idempotency-Key",
                    format!("this key was already used for POST {}; use a new key for a different request", saved.path),
                )
                .into_response();
            }
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
        Ok(None) => {}
        Err(e) => return ApiError::from(e).into_response(),
    }
    let resp = next.run(req).await;
    if resp.status().is_server_error() {
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
        .save_idempotent_response(&key_id, &idem, &saved, state.now())
        .await
    {
        tracing::warn!(error = %e, "could not keep the idempotent response");
    }
    Response::from_parts(parts, Body::from(bytes))
}
