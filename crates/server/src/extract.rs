//! Extractors that answer bad input with our error body: JSON and query strings that do not parse
//! become a 422 naming the field serde complained about.

use crate::error::ApiError;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use utoipa::IntoParams;

pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|ct| {
                let ct = ct.split(';').next().unwrap_or("").trim();
                ct == "application/json" || ct.ends_with("+json")
            })
            .unwrap_or(false);
        if !json {
            return Err(ApiError::bad_request(
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("could not read the body: {e}")))?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses a JSON document, answering a 422 that names the field at fault (`rows[0].tenure`,
/// `tags.team`) or a 400 when it is not JSON at all.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // The fast path; the path-tracking parser only runs again to explain a failure.
    if let Ok(v) = serde_json::from_slice::<T>(bytes) {
        return Ok(v);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(v) => Ok(v),
        Err(e) => {
            let inner = e.inner();
            if inner.is_syntax() || inner.is_eof() {
                return Err(ApiError::bad_request(format!(
                    "the body is not valid JSON: {inner}"
                )));
            }
            let path = e.path().to_string();
            let msg = inner.to_string();
            // Unknown and missing fields are reported at their parent; name the field itself.
            let named = ["unknown field `", "missing field `"].iter().find_map(|p| {
                msg.strip_prefix(p)
                    .and_then(|r| r.split_once('`'))
                    .map(|(f, _)| f.to_string())
            });
            let field = match (named, path.as_str()) {
                (Some(f), "." | "") => f,
                (Some(f), p) if p == f || p.ends_with(&format!(".{f}")) => p.to_string(),
                (Some(f), parent) => format!("{parent}.{f}"),
                (None, "." | "") => "body".to_string(),
                (None, p) => p.to_string(),
            };
            let mut err = ApiError::invalid(&field, "");
            err.message =
                if msg.contains(&format!("`{}`", field.rsplit('.').next().unwrap_or(&field))) {
                    msg
                } else {
                    format!("{field}: {msg}")
                };
            Err(err)
        }
    }
}

pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                let t = e.body_text();
                let detail = t
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&t)
                    .to_string();
                let field = detail
                    .split_once('`')
                    .and_then(|(_, r)| r.split_once('`'))
                    .map(|(f, _)| f.to_string())
                    .unwrap_or_else(|| "query".into());
                Err(ApiError::invalid(&field, detail))
            }
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}

/// `limit` (1..=500, default 50) and `page_token` from the previous page's `next_page_token`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    pub limit: Option<i64>,
    pub page_token: Option<String>,
}

impl PageParams {
    pub fn limit(&self) -> Result<i64, ApiError> {
        match self.limit {
            None => Ok(50),
            Some(l) if (1..=500).contains(&l) => Ok(l),
            Some(_) => Err(ApiError::invalid("limit", "must be between 1 and 500")),
        }
    }
    pub fn offset(&self) -> Result<i64, ApiError> {
        coreplex_store::decode_page_token(self.page_token.as_deref()).ok_or_else(|| {
            ApiError::invalid(
                "page_token",
                "not a token this server issued; pass next_page_token as given",
            )
        })
    }
}
