//! The baseline of the serving benchmark: an HTTP server that does only what every JSON prediction
//! server must do — accept the connection, read the body and parse it into rows of named
//! features — and answers a constant. CorePlexML's predict route is measured against it in the same
//! run, so the ratio shows what validation, inference, logging and metrics cost on top of HTTP+JSON.
//!
//! Same tokio runtime settings as `coreplex serve` (multi-thread, default worker count, all drivers).

use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use std::io::Write;

/// The same request shape as CorePlexML's predict body: rows of feature name → value.
#[derive(Deserialize)]
#[allow(dead_code)] // parsed, not read: parsing is the work being measured
struct PredictRequest {
    rows: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// A constant answer of the same shape and size as a one-row CorePlexML prediction.
const ANSWER: &str = r#"{"predictions":[{"label":"1","probabilities":[["0",0.25],["1",0.75]]}],"request_ids":["req_0000000000000000000000"],"model_id":"model_00000000000000000000","variant":"primary"}"#;

async fn predict(
    Json(req): Json<PredictRequest>,
) -> ([(axum::http::HeaderName, &'static str); 1], &'static str) {
    std::hint::black_box(&req);
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        ANSWER,
    )
}

fn main() -> std::process::ExitCode {
    let listen = std::env::args()
        .skip_while(|a| a != "--listen")
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_string());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(&listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: cannot listen on {listen}: {e}");
                return std::process::ExitCode::FAILURE;
            }
        };
        let addr = listener.local_addr().expect("local address");
        let app = Router::new().route("/predict", post(predict));
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "bare server listening on http://{addr}");
        let _ = out.flush();
        drop(out);
        let stop = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        let term = async {
            if let Ok(mut s) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            {
                s.recv().await;
            }
        };
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                tokio::select! { _ = stop => {}, _ = term => {} }
            })
            .await;
        std::process::ExitCode::SUCCESS
    })
}
