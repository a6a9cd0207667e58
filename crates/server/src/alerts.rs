//! Alert evaluation and notification delivery.
//!
//! The scheduler tick evaluates every alert whose `evaluation_window_minutes` has passed since its
//! last evaluation, over that window, and records the outcome with the deliveries it calls for in one
//! transaction (an outbox). The dispatcher then sends due deliveries concurrently — a slow or failing
//! channel never holds up another — and retries failures with exponential back-off up to a limit,
//! recording every attempt.
//!
//! Webhooks are signed: `X-CorePlex-Timestamp: <unix seconds>` and
//! `X-CorePlex-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`. Receivers recompute
//! the HMAC over the timestamp header, a dot and the exact body bytes, compare in constant time, and
//! reject timestamps older than a few minutes.

use crate::config::SmtpConfig;
use crate::drift;
use crate::monitoring;
use crate::rollouts;
use crate::state::AppState;
use coreplex_domain::alerting::{evaluate, Condition, Outcome};
use coreplex_store::{Alert, AlertEvaluation, Delivery, Deployment, NewDelivery, PredictionRow};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use std::time::Duration;

/// Attempts per delivery before it is marked failed.
pub const MAX_ATTEMPTS: i64 = 6;
/// Time allowed for one send.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Delay before the next attempt after `attempts` failed ones: 30 s, 1 min, 2 min … capped at 1 h.
pub fn retry_delay_ms(attempts: i64) -> i64 {
    (30_000i64 << (attempts.clamp(1, 20) - 1)).min(3_600_000)
}

/// The value of `alert.metric` for `d` over the last evaluation window, or `None` without data.
pub async fn metric_value(
    state: &AppState,
    alert: &Alert,
    d: &Deployment,
    now: i64,
) -> Option<f64> {
    let window = alert.evaluation_window_minutes.max(1) * 60_000;
    let since = now - window;
    match alert.metric.as_str() {
        "data_drift_score" | "max_psi" => {
            let report = drift::live_drift(state, d, since, now + 1, None, drift::Rule::default())
                .await
                .ok()?;
            report[alert.metric.as_str()].as_f64()
        }
        "concept_drift" => {
            let r = drift::concept_drift(
                state,
                d,
                None,
                alert.evaluation_window_minutes.max(1),
                3,
                0.05,
            )
            .await
            .ok()?;
            r["validation_value"].as_f64()?;
            Some(if r["drifted"].as_bool().unwrap_or(false) {
                1.0
            } else {
                0.0
            })
        }
        "shadow_dropped" => Some(state.shadow.dropped_for(&d.id) as f64),
        metric => {
            state.log.flush().await;
            let task = rollouts::task_of(d);
            let rows = state
                .store
                .predictions_between(
                    &d.id,
                    since,
                    now + 1,
                    task == coreplex_domain::registry::Task::MulticlassClassification,
                )
                .await
                .ok()?;
            let primary: Vec<&PredictionRow> =
                rows.iter().filter(|r| r.role == "primary").collect();
            if primary.is_empty() {
                return if metric == "requests" || metric == "throughput_rps" {
                    Some(0.0)
                } else {
                    None
                };
            }
            let classes = monitoring::serving_classes(state, d).await;
            let m = monitoring::variant_metrics(&primary, task, &classes, window);
            match metric {
                "latency_p50_ms" => m.latency_p50_ms,
                "latency_p95_ms" => m.latency_p95_ms,
                "latency_p99_ms" => m.latency_p99_ms,
                "latency_avg_ms" => m.latency_avg_ms,
                "error_rate" => Some(m.error_rate),
                "throughput_rps" => Some(m.throughput_rps),
                "requests" => Some(m.requests as f64),
                q => m.quality.get(q).copied(),
            }
        }
    }
}

fn message(alert: &Alert, d: &Deployment, outcome: Outcome, value: f64) -> String {
    match outcome {
        Outcome::Resolved => format!(
            "Resolved: {} on {} — {} is {value:.4}, no longer {} {}",
            alert.name,
            d.name,
            alert.metric,
            alert.condition.replace('_', " "),
            alert.threshold
        ),
        _ => format!(
            "Alert: {} on {} — {} is {value:.4}, {} {}",
            alert.name,
            d.name,
            alert.metric,
            alert.condition.replace('_', " "),
            alert.threshold
        ),
    }
}

/// Evaluates every due alert once. Returns how many were evaluated.
pub async fn evaluate_due(state: &AppState) -> coreplex_store::Result<usize> {
    let now = state.now();
    let due = state.store.due_alerts(now).await?;
    let mut n = 0;
    for alert in due {
        let Some(d) = state.store.get_deployment_any(&alert.deployment_id).await? else {
            continue;
        };
        let value = metric_value(state, &alert, &d, now).await;
        let cond =
            Condition::parse("condition", &alert.condition).unwrap_or(Condition::GreaterThan);
        let (firing, outcome) = evaluate(
            alert.state == "firing",
            value,
            cond,
            alert.threshold,
            alert.last_notified_at,
            alert.cooldown_minutes,
            now,
        );
        let mut deliveries = Vec::new();
        if outcome.notifies() {
            let v = value.unwrap_or(f64::NAN);
            let payload = json!({
                "event": if outcome == Outcome::Resolved { "alert.resolved" } else { "alert.firing" },
                "alert_id": alert.id, "alert": alert.name, "deployment_id": d.id, "deployment": d.name,
                "metric": alert.metric, "value": v, "condition": alert.condition, "threshold": alert.threshold,
                "state": if firing { "firing" } else { "ok" }, "at": crate::routes::time(now),
                "message": message(&alert, &d, outcome, v),
            });
            for ch in alert.channels.as_array().cloned().unwrap_or_default() {
                deliveries.push(NewDelivery {
                    project_id: alert.project_id.clone(),
                    alert_id: Some(alert.id.clone()),
                    deployment_id: Some(d.id.clone()),
                    event_kind: payload["event"].as_str().unwrap_or("alert").to_string(),
                    channel: ch,
                    payload: payload.clone(),
                    max_attempts: MAX_ATTEMPTS,
                });
            }
        }
        let event = match outcome {
            Outcome::Quiet | Outcome::NoData => None,
            o => Some((
                o.as_str(),
                json!({"metric": alert.metric, "threshold": alert.threshold, "condition": alert.condition}),
            )),
        };
        state
            .store
            .record_alert_evaluation(
                &alert,
                now,
                AlertEvaluation {
                    state: if firing { "firing" } else { "ok" },
                    value,
                    notified: outcome.notifies(),
                    event,
                    deliveries: &deliveries,
                },
            )
            .await?;
        n += 1;
    }
    Ok(n)
}

/// Queues a notification of a deployment event to every channel of the deployment's enabled alerts.
pub async fn notify_deployment(
    state: &AppState,
    d: &Deployment,
    payload: serde_json::Value,
) -> coreplex_store::Result<usize> {
    let alerts = state.store.list_alerts(&d.project_id, Some(&d.id)).await?;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for a in alerts.iter().filter(|a| a.enabled) {
        for ch in a.channels.as_array().cloned().unwrap_or_default() {
            if seen.insert(ch.to_string()) {
                out.push(NewDelivery {
                    project_id: d.project_id.clone(),
                    alert_id: None,
                    deployment_id: Some(d.id.clone()),
                    event_kind: payload["event"]
                        .as_str()
                        .unwrap_or("deployment")
                        .to_string(),
                    channel: ch,
                    payload: payload.clone(),
                    max_attempts: MAX_ATTEMPTS,
                });
            }
        }
    }
    state.store.enqueue_deliveries(&out, state.now()).await?;
    Ok(out.len())
}

/// Sends every due delivery once, concurrently. Returns how many were attempted.
pub async fn deliver_due(state: &AppState) -> coreplex_store::Result<usize> {
    let now = state.now();
    let due = state
        .store
        .claim_deliveries(&state.worker_id, now, now + 60_000, 100)
        .await?;
    let n = due.len();
    let sends = due.into_iter().map(|d| {
        let state = state.clone();
        async move {
            let result = match tokio::time::timeout(SEND_TIMEOUT, send(&state, &d)).await {
                Ok(r) => r,
                Err(_) => Err(format!("no answer within {} s", SEND_TIMEOUT.as_secs())),
            };
            let now = state.now();
            let (error, retry_at) = match &result {
                Ok(()) => (None, None),
                Err(e) => {
                    let attempts = d.attempts + 1;
                    let retry = (attempts < d.max_attempts).then(|| now + retry_delay_ms(attempts));
                    (Some(e.as_str()), retry)
                }
            };
            if let Err(e) = state.store.finish_delivery_attempt(&d.id, now, error, retry_at).await {
                tracing::warn!(error = %e, "could not record a delivery attempt");
            }
            if let Err(e) = result {
                tracing::warn!(delivery = %d.id, channel = %d.channel["type"], error = %e, "notification not delivered");
            }
        }
    });
    futures_util::future::join_all(sends).await;
    Ok(n)
}

fn http() -> &'static reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(SEND_TIMEOUT)
            .build()
            .unwrap_or_default()
    })
}

/// The HMAC-SHA256 signature header value for a webhook body.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

async fn send(state: &AppState, d: &Delivery) -> Result<(), String> {
    let ch = &d.channel;
    match ch["type"].as_str() {
        Some("slack") => {
            let url = ch["webhook_url"]
                .as_str()
                .ok_or("slack channel without webhook_url")?;
            let text = d.payload["message"]
                .as_str()
                .unwrap_or("CorePlexML notification");
            let r = http()
                .post(url)
                .json(&json!({"text": text}))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if r.status().is_success() {
                Ok(())
            } else {
                Err(format!("HTTP {} from Slack", r.status().as_u16()))
            }
        }
        Some("webhook") => {
            let url = ch["url"].as_str().ok_or("webhook channel without url")?;
            let body = serde_json::to_vec(&d.payload).map_err(|e| e.to_string())?;
            let ts = state.now() / 1000;
            let mut rb = http()
                .post(url)
                .header("content-type", "application/json")
                .header("x-coreplex-event", d.event_kind.as_str())
                .header("x-coreplex-delivery", d.id.as_str())
                .header("x-coreplex-timestamp", ts.to_string());
            if let Some(secret) = ch["secret"].as_str() {
                rb = rb.header("x-coreplex-signature", sign(secret, ts, &body));
            }
            let r = rb.body(body).send().await.map_err(|e| e.to_string())?;
            if r.status().is_success() {
                Ok(())
            } else {
                Err(format!("HTTP {} from the receiver", r.status().as_u16()))
            }
        }
        Some("email") => {
            let smtp = state
                .config
                .smtp
                .as_ref()
                .ok_or("email needs the server's SMTP settings (--smtp-host …)")?;
            let to: Vec<String> = match (&ch["address"], &ch["addresses"]) {
                (serde_json::Value::String(a), _) => vec![a.clone()],
                (_, serde_json::Value::Array(list)) => list
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect(),
                _ => return Err("email channel without address".into()),
            };
            send_email(smtp, &to, &d.payload).await
        }
        other => Err(format!("unknown channel type {other:?}")),
    }
}

async fn send_email(
    smtp: &SmtpConfig,
    to: &[String],
    payload: &serde_json::Value,
) -> Result<(), String> {
    use lettre::message::{header::ContentType, Mailbox};
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    let from: Mailbox = smtp
        .from
        .parse()
        .map_err(|e| format!("smtp from address: {e}"))?;
    let subject = match payload["event"].as_str() {
        Some("alert.resolved") => format!(
            "[CorePlexML] Resolved: {}",
            payload["alert"].as_str().unwrap_or("alert")
        ),
        Some("alert.firing") => format!(
            "[CorePlexML] Alert: {}",
            payload["alert"].as_str().unwrap_or("alert")
        ),
        _ => format!(
            "[CorePlexML] {}",
            payload["event"].as_str().unwrap_or("notification")
        ),
    };
    let mut builder = Message::builder().from(from).subject(subject);
    for t in to {
        builder = builder.to(t.parse().map_err(|e| format!("address {t}: {e}"))?);
    }
    let body = format!(
        "{}\n\n{}\n",
        payload["message"].as_str().unwrap_or(""),
        serde_json::to_string_pretty(payload).unwrap_or_default()
    );
    let email = builder
        .header(ContentType::TEXT_PLAIN)
        .body(body)
        .map_err(|e| e.to_string())?;
    let mut transport = match smtp.tls.as_str() {
        "tls" => {
            AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host).map_err(|e| e.to_string())?
        }
        "starttls" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
            .map_err(|e| e.to_string())?,
        _ => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host),
    }
    .port(smtp.port)
    .timeout(Some(SEND_TIMEOUT));
    if let (Some(u), Some(p)) = (&smtp.username, &smtp.password) {
        transport = transport.credentials(Credentials::new(u.clone(), p.clone()));
    }
    transport
        .build()
        .send(email)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_follows_the_documented_recipe() {
        // Python: hmac.new(b"secret", b"1700000000.{}", hashlib.sha256).hexdigest()
        assert_eq!(
            sign("secret", 1_700_000_000, b"{}"),
            "v1=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
        );
        assert_eq!(retry_delay_ms(1), 30_000);
        assert_eq!(retry_delay_ms(3), 120_000);
        assert_eq!(retry_delay_ms(30), 3_600_000);
    }
}
