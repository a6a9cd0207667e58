//! Liveness, readiness and Prometheus metrics, outside `/api/v1` and without authentication.

use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({"status": "ok"}))
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({"status": "ready", "database": "ok",
                "models_loaded": state.models.read().map(|m| m.len()).unwrap_or(0)})),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({"status": "unavailable", "database": "unreachable"})),
            )
        }
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let models = state.models.read().map(|m| m.len()).unwrap_or(0);
    let mut body = format!(
        "# HELP coreplex_models_loaded Models loaded into ONNX Runtime.\n# TYPE coreplex_models_loaded gauge\ncoreplex_models_loaded {models}\n"
    );
    let written = state.log.written.load(std::sync::atomic::Ordering::Relaxed);
    let failed = state.log.failed.load(std::sync::atomic::Ordering::Relaxed);
    body.push_str(&format!(
        "# HELP coreplex_prediction_log_rows_total Predictions written to the log.\n# TYPE coreplex_prediction_log_rows_total counter\ncoreplex_prediction_log_rows_total {written}\n# HELP coreplex_prediction_log_failed_total Predictions the log could not write.\n# TYPE coreplex_prediction_log_failed_total counter\ncoreplex_prediction_log_failed_total {failed}\n"
    ));
    let dropped = state
        .shadow
        .dropped
        .lock()
        .map(|d| d.clone())
        .unwrap_or_default();
    state.serving_metrics.render(&mut body, &dropped);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        body,
    )
}
