//! Extractors that answer bad input with our error body: JSON and query strings that do not parse
//! become a 422 naming the field serde complained about.

use crate::error::ApiError;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use utoipa::IntoParams;

pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::JsonDataError(e)) => Err(body_error(&e.body_text())),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::bad_request(format!(
                "the body is not valid JSON: {}",
                e.body_text()
            ))),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::bad_request(
                "send the body as JSON with `Content-Type: application/json`",
            )),
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}

/// Turns serde's "missing field `name`" / "invalid type … at line" into a 422 naming the field.
fn body_error(text: &str) -> ApiError {
    let detail = text
        .strip_prefix("Failed to deserialize the JSON body into the target type: ")
        .unwrap_or(text);
    let field = detail
        .split_once('`')
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(f, _)| f.to_string())
        .or_else(|| {
            detail
                .split_once(':')
                .map(|(path, _)| path.trim().to_string())
                .filter(|p| !p.contains(' '))
        })
        .unwrap_or_else(|| "body".to_string());
    let mut e = ApiError::invalid(&field, "");
    e.message = detail.to_string();
    e
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
