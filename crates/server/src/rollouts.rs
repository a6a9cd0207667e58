//! Rollout controllers: deploying a model to an endpoint under a strategy, and moving rollouts
//! forward on the scheduler's tick (canary steps, blue-green watch windows, shadow comparisons), or
//! by hand (promote, rollback, pause, resume). Every change is one database transaction holding the
//! deployment's new state, its timeline event, its promotion history and its audit entry, so a crash
//! between ticks leaves a consistent rollout that the next tick (on any server) resumes.

use crate::error::{ApiError, ApiResult};
use crate::monitoring;
use crate::notify;
use crate::serving::{self, rollout_of};
use crate::state::AppState;
use coreplex_domain::registry::{ModelStatus, Task};
use coreplex_domain::rollout::{
    blue_green_decision, canary_decision, shadow_window_over, Decision, Phase, QualityMetric,
    Rollout, Strategy, StrategyConfig,
};
use coreplex_store::{Ctx, Deployment, Model, PredictionRow, PromotionChange};
use serde_json::json;

pub fn config_of(d: &Deployment) -> StrategyConfig {
    serde_json::from_value(d.config.clone()).unwrap_or_default()
}

pub fn task_of(d: &Deployment) -> Task {
    Task::parse("task", &d.task).unwrap_or(Task::BinaryClassification)
}

fn status_for(rollout: Option<&Rollout>) -> &'static str {
    match rollout {
        None => "active",
        Some(r) if r.paused => "paused",
        Some(_) => "rolling_out",
    }
}

/// Moves a model through the registry on behalf of a rollout, taking the allowed path
/// (e.g. candidate → staging → production). Failures are logged, not fatal: serving comes first.
async fn registry_move(
    state: &AppState,
    org_id: &str,
    model_id: &str,
    to: ModelStatus,
    reason: &str,
) {
    let ctx = state.system_ctx(org_id, "rollout");
    let Ok(Some(m)) = state.store.get_model_any(model_id).await else {
        return;
    };
    let Ok(from) = ModelStatus::parse("status", &m.status) else {
        return;
    };
    if from == to {
        return;
    }
    let path: &[ModelStatus] = match (from, to) {
        (ModelStatus::Candidate, ModelStatus::Production)
        | (ModelStatus::Archived, ModelStatus::Production) => {
            &[ModelStatus::Staging, ModelStatus::Production]
        }
        (ModelStatus::Production, ModelStatus::Staging) => &[],
        _ => std::slice::from_ref(&to),
    };
    for step in path {
        if let Err(e) = state
            .store
            .transition_model(&ctx, model_id, *step, reason)
            .await
        {
            tracing::warn!(model = model_id, error = %e, "registry transition for a rollout failed");
            return;
        }
    }
}

async fn org_of(state: &AppState, d: &Deployment) -> String {
    state
        .store
        .org_of_project(&d.project_id)
        .await
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Starts deploying `model` to `d` under `strategy`. With nothing serving yet, or `direct`, the model
/// takes all traffic at once.
pub async fn start(
    state: &AppState,
    ctx: &Ctx,
    d: &Deployment,
    model: &Model,
    strategy: Strategy,
    cfg: StrategyConfig,
) -> ApiResult<Deployment> {
    if let Some(r) = rollout_of(d) {
        return Err(ApiError::conflict(format!(
            "a {} rollout of {} is in progress on {}; promote or roll it back first",
            r.strategy.as_str(),
            r.candidate_model_id,
            d.name
        )));
    }
    if let Some(t) = state.store.running_ab_test(&d.id).await? {
        return Err(ApiError::conflict(format!(
            "A/B test {} ({}) is running on {}; stop it (choosing a winner or not) before a rollout",
            t.id, t.name, d.name
        )));
    }
    if d.serving_model_id.as_deref() == Some(model.id.as_str()) {
        return Err(ApiError::conflict(format!(
            "{} already serves {}",
            d.name, model.id
        )));
    }
    if model.task != d.task {
        return Err(ApiError::invalid(
            "model_id",
            format!(
                "{} is a {} model; {} serves {}",
                model.id, model.task, d.name, d.task
            ),
        ));
    }
    // Load and check the new model before any traffic moves to it.
    let loaded = serving::load_model(state, &model.id).await?;
    let smoke = loaded.example_row();
    let checked = tokio::task::spawn_blocking(move || loaded.predict(&[smoke]))
        .await
        .map_err(ApiError::internal)?;
    if let Err(e) = checked {
        return Err(ApiError::invalid(
            "model_id",
            format!("{} failed its check prediction: {e}", model.id),
        ));
    }
    let now = ctx.at;
    let mut after = d.clone();
    after.strategy = strategy.as_str().to_string();
    after.config = serde_json::to_value(&cfg).map_err(ApiError::internal)?;
    let immediate = strategy == Strategy::Direct || d.serving_model_id.is_none();
    let (event, promotions) = if immediate {
        after.previous_model_id = d.serving_model_id.clone();
        after.serving_model_id = Some(model.id.clone());
        after.rollout = serde_json::Value::Null;
        let detail = if d.serving_model_id.is_none() && strategy != Strategy::Direct {
            "first model on this endpoint: nothing to compare with, serving it directly".to_string()
        } else {
            "serving all traffic at once".to_string()
        };
        (
            (
                "deployed",
                json!({"model_id": model.id, "strategy": strategy.as_str(), "detail": detail}),
            ),
            vec![
                PromotionChange::Start {
                    model_id: model.id.clone(),
                    strategy: strategy.as_str().into(),
                },
                PromotionChange::Finish {
                    model_id: model.id.clone(),
                    outcome: "promoted".into(),
                    detail,
                },
            ],
        )
    } else {
        let phase = match strategy {
            Strategy::Canary => Phase::Canary {
                step: cfg.first_step(),
                percentage: cfg.traffic_percentage,
                step_started_at: now,
            },
            Strategy::BlueGreen => Phase::BlueGreen { switched_at: now },
            Strategy::Shadow => Phase::Shadow {
                started_at: now,
                compared: false,
            },
            Strategy::Direct => unreachable!("direct is immediate"),
        };
        let rollout = Rollout {
            strategy,
            candidate_model_id: model.id.clone(),
            started_at: now,
            paused: false,
            phase,
        };
        after.rollout = serde_json::to_value(&rollout).map_err(ApiError::internal)?;
        (
            (
                "rollout_started",
                json!({"model_id": model.id, "strategy": strategy.as_str(), "config": cfg}),
            ),
            vec![PromotionChange::Start {
                model_id: model.id.clone(),
                strategy: strategy.as_str().into(),
            }],
        )
    };
    after.status = status_for(rollout_of(&after).as_ref()).to_string();
    let updated = state
        .store
        .update_deployment(ctx, d, &after, event, &promotions)
        .await?;
    serving::refresh(state, &updated).await?;
    let org = ctx.org_id.clone();
    if immediate {
        registry_move(
            state,
            &org,
            &model.id,
            ModelStatus::Production,
            &format!("deployed to {} ({})", d.name, strategy.as_str()),
        )
        .await;
    } else {
        registry_move(
            state,
            &org,
            &model.id,
            ModelStatus::Staging,
            &format!("{} rollout to {} started", strategy.as_str(), d.name),
        )
        .await;
    }
    Ok(updated)
}

/// How a rollout ends.
pub enum Ending {
    Promote(String),
    Rollback(String),
}

/// Ends the rollout on `d`: the candidate becomes the serving model (promote) or traffic returns to
/// the baseline (rollback), with registry statuses, promotion history and a notification.
pub async fn finish(
    state: &AppState,
    ctx: &Ctx,
    d: &Deployment,
    ending: Ending,
) -> ApiResult<Deployment> {
    let r = rollout_of(d)
        .ok_or_else(|| ApiError::conflict(format!("no rollout is in progress on {}", d.name)))?;
    let candidate = r.candidate_model_id.clone();
    let shadow_compared = matches!(r.phase, Phase::Shadow { compared: true, .. });
    let mut after = d.clone();
    after.rollout = serde_json::Value::Null;
    after.status = "active".into();
    let (event, promotions, kind, reason) = match &ending {
        Ending::Promote(reason) => {
            after.previous_model_id = d.serving_model_id.clone();
            after.serving_model_id = Some(candidate.clone());
            let mut p = Vec::new();
            if shadow_compared {
                p.push(PromotionChange::Start {
                    model_id: candidate.clone(),
                    strategy: r.strategy.as_str().into(),
                });
            }
            p.push(PromotionChange::Finish {
                model_id: candidate.clone(),
                outcome: "promoted".into(),
                detail: reason.clone(),
            });
            (
                ("promoted", json!({"model_id": candidate, "reason": reason})),
                p,
                "promoted",
                reason.clone(),
            )
        }
        Ending::Rollback(reason) => {
            let outcome = match r.phase {
                Phase::Shadow {
                    compared: false, ..
                } => "aborted",
                Phase::Shadow { compared: true, .. } => "",
                _ => "rolled_back",
            };
            let p = if outcome.is_empty() {
                Vec::new()
            } else {
                vec![PromotionChange::Finish {
                    model_id: candidate.clone(),
                    outcome: outcome.into(),
                    detail: reason.clone(),
                }]
            };
            (
                (
                    "rolled_back",
                    json!({"model_id": candidate, "reason": reason, "serving_model_id": d.serving_model_id}),
                ),
                p,
                "rolled_back",
                reason.clone(),
            )
        }
    };
    let updated = state
        .store
        .update_deployment(ctx, d, &after, event, &promotions)
        .await?;
    serving::refresh(state, &updated).await?;
    let org = ctx.org_id.clone();
    match ending {
        Ending::Promote(_) => {
            registry_move(
                state,
                &org,
                &candidate,
                ModelStatus::Production,
                &format!("promoted on {}: {reason}", d.name),
            )
            .await;
        }
        Ending::Rollback(_) => {
            registry_move(
                state,
                &org,
                &candidate,
                ModelStatus::Archived,
                &format!("rolled back on {}: {reason}", d.name),
            )
            .await;
        }
    }
    notify::rollout_event(state, &updated, kind, &candidate, &reason).await;
    Ok(updated)
}

/// Rolls a deployment without a rollout back to the model it served before (an instant switch).
pub async fn revert(
    state: &AppState,
    ctx: &Ctx,
    d: &Deployment,
    reason: &str,
) -> ApiResult<Deployment> {
    let previous = d.previous_model_id.clone().ok_or_else(|| {
        ApiError::conflict(format!(
            "{} has no rollout in progress and no previous model to return to",
            d.name
        ))
    })?;
    let current = d.serving_model_id.clone();
    serving::load_model(state, &previous).await?;
    let mut after = d.clone();
    after.serving_model_id = Some(previous.clone());
    after.previous_model_id = current.clone();
    let detail = json!({"model_id": previous, "replaced": current, "reason": reason});
    let promotions = vec![
        PromotionChange::Start {
            model_id: previous.clone(),
            strategy: "direct".into(),
        },
        PromotionChange::Finish {
            model_id: previous.clone(),
            outcome: "promoted".into(),
            detail: format!("restored: {reason}"),
        },
    ];
    let updated = state
        .store
        .update_deployment(ctx, d, &after, ("rolled_back", detail), &promotions)
        .await?;
    serving::refresh(state, &updated).await?;
    registry_move(
        state,
        &ctx.org_id,
        &previous,
        ModelStatus::Production,
        &format!("restored on {}: {reason}", d.name),
    )
    .await;
    if let Some(c) = &current {
        registry_move(
            state,
            &ctx.org_id,
            c,
            ModelStatus::Archived,
            &format!("rolled back on {}: {reason}", d.name),
        )
        .await;
        notify::rollout_event(state, &updated, "rolled_back", c, reason).await;
    }
    Ok(updated)
}

/// Pauses or resumes a rollout: a paused rollout keeps its traffic split and does not advance.
pub async fn set_paused(
    state: &AppState,
    ctx: &Ctx,
    d: &Deployment,
    paused: bool,
) -> ApiResult<Deployment> {
    let mut r = rollout_of(d)
        .ok_or_else(|| ApiError::conflict(format!("no rollout is in progress on {}", d.name)))?;
    if r.paused == paused {
        return Err(ApiError::conflict(format!(
            "the rollout is already {}",
            if paused { "paused" } else { "running" }
        )));
    }
    r.paused = paused;
    // A resumed canary step starts its clock again.
    if let (
        false,
        Phase::Canary {
            step_started_at, ..
        },
    ) = (paused, &mut r.phase)
    {
        *step_started_at = ctx.at;
    }
    let mut after = d.clone();
    after.rollout = serde_json::to_value(&r).map_err(ApiError::internal)?;
    after.status = status_for(Some(&r)).into();
    let kind = if paused { "paused" } else { "resumed" };
    let updated = state
        .store
        .update_deployment(
            ctx,
            d,
            &after,
            (kind, json!({"model_id": r.candidate_model_id})),
            &[],
        )
        .await?;
    serving::refresh(state, &updated).await?;
    Ok(updated)
}

/// Runs the controllers of every rollout once. Returns how many rollouts changed.
pub async fn tick(state: &AppState) -> coreplex_store::Result<usize> {
    let rollouts = state.store.list_rollouts().await?;
    if rollouts.is_empty() {
        return Ok(0);
    }
    state.log.flush().await;
    let mut changed = 0;
    for d in rollouts {
        match evaluate(state, &d).await {
            Ok(true) => changed += 1,
            Ok(false) => {}
            Err(e) => tracing::warn!(deployment = %d.id, error = %e.message, "rollout controller"),
        }
    }
    Ok(changed)
}

async fn evaluate(state: &AppState, d: &Deployment) -> ApiResult<bool> {
    let Some(r) = rollout_of(d) else {
        return Ok(false);
    };
    if r.paused {
        return Ok(false);
    }
    let now = state.now();
    let cfg = config_of(d);
    let task = task_of(d);
    let metric = cfg.gate_metric(task);
    let candidate = state
        .store
        .get_model_any(&r.candidate_model_id)
        .await?
        .ok_or_else(|| ApiError::not_found("candidate model"))?;
    let classes = crate::monitoring::model_classes(&candidate);
    let ctx = Ctx {
        org_id: org_of(state, d).await,
        actor: "system:rollout".into(),
        at: now,
    };
    let multiclass = task == Task::MulticlassClassification;
    match r.phase {
        Phase::Canary {
            step,
            step_started_at,
            percentage,
        } => {
            // At 100% the baseline gets no traffic in this step: compare the canary with what the
            // baseline did over the whole rollout.
            let since = if percentage >= 100.0 {
                r.started_at
            } else {
                step_started_at
            };
            let all = state
                .store
                .predictions_between(&d.id, since, now + 1, multiclass)
                .await?;
            let rows: Vec<PredictionRow> = all
                .into_iter()
                .filter(|x| x.variant == "baseline" || x.at >= step_started_at)
                .collect();
            let pick = |v: &str| -> Vec<&PredictionRow> {
                rows.iter()
                    .filter(|x| x.role == "primary" && x.variant == v)
                    .collect()
            };
            let base = monitoring::observe(&pick("baseline"), task, &classes, metric);
            let can = monitoring::observe(&pick("canary"), task, &classes, metric);
            let decision = canary_decision(&cfg, metric, step, step_started_at, &base, &can, now);
            match decision {
                Decision::Hold { .. } => Ok(false),
                Decision::Advance {
                    step: next,
                    percentage,
                } => {
                    let mut r2 = r.clone();
                    r2.phase = Phase::Canary {
                        step: next,
                        percentage,
                        step_started_at: now,
                    };
                    let mut after = d.clone();
                    after.rollout = serde_json::to_value(&r2).map_err(ApiError::internal)?;
                    let detail = json!({"from_percentage": cfg.promotion_steps.get(step), "to_percentage": percentage,
                        "baseline": base, "canary": can, "metric": metric.as_str()});
                    let updated = state
                        .store
                        .update_deployment(&ctx, d, &after, ("step_advanced", detail), &[])
                        .await?;
                    serving::refresh(state, &updated).await?;
                    Ok(true)
                }
                Decision::Promote { reason } => finish(state, &ctx, d, Ending::Promote(reason))
                    .await
                    .map(|_| true),
                Decision::Rollback { reason } => finish(state, &ctx, d, Ending::Rollback(reason))
                    .await
                    .map(|_| true),
            }
        }
        Phase::BlueGreen { switched_at } => {
            let window = cfg.rollback_window_minutes as i64 * 60_000;
            let before = state
                .store
                .predictions_between(
                    &d.id,
                    switched_at - window.max(3_600_000),
                    switched_at,
                    multiclass,
                )
                .await?;
            let after_rows = state
                .store
                .predictions_between(&d.id, switched_at, now + 1, multiclass)
                .await?;
            let blue: Vec<&PredictionRow> = before.iter().filter(|x| x.role == "primary").collect();
            let green: Vec<&PredictionRow> = after_rows
                .iter()
                .filter(|x| x.role == "primary" && x.variant == "green")
                .collect();
            let blue_o = monitoring::observe(&blue, task, &classes, metric);
            let green_o = monitoring::observe(&green, task, &classes, metric);
            match blue_green_decision(&cfg, metric, switched_at, &blue_o, &green_o, now) {
                Decision::Promote { reason } => finish(
                    state,
                    &ctx,
                    d,
                    Ending::Promote(format!("{reason}; blue released")),
                )
                .await
                .map(|_| true),
                Decision::Rollback { reason } => finish(state, &ctx, d, Ending::Rollback(reason))
                    .await
                    .map(|_| true),
                _ => Ok(false),
            }
        }
        Phase::Shadow {
            started_at,
            compared,
        } => {
            if compared || !shadow_window_over(&cfg, started_at, now) {
                return Ok(false);
            }
            let report = shadow_report(state, d).await?;
            let mut r2 = r.clone();
            r2.phase = Phase::Shadow {
                started_at,
                compared: true,
            };
            let mut after = d.clone();
            after.rollout = serde_json::to_value(&r2).map_err(ApiError::internal)?;
            let summary = report["summary"].as_str().unwrap_or("").to_string();
            let promotions = vec![PromotionChange::Finish {
                model_id: r.candidate_model_id.clone(),
                outcome: "shadow_compared".into(),
                detail: summary.clone(),
            }];
            let updated = state
                .store
                .update_deployment(&ctx, d, &after, ("shadow_compared", report), &promotions)
                .await?;
            serving::refresh(state, &updated).await?;
            notify::rollout_event(
                state,
                &updated,
                "shadow_compared",
                &r.candidate_model_id,
                &summary,
            )
            .await;
            Ok(true)
        }
    }
}

/// The shadow comparison: agreement (or the distribution of differences), latency of each, quality of
/// each on labelled requests and a paired significance test, over the shadow's window so far.
pub async fn shadow_report(state: &AppState, d: &Deployment) -> ApiResult<serde_json::Value> {
    let r = rollout_of(d)
        .filter(|r| r.strategy == Strategy::Shadow)
        .ok_or_else(|| {
            ApiError::conflict(format!("{} has no shadow deployment in progress", d.name))
        })?;
    let Phase::Shadow { started_at, .. } = r.phase else {
        return Err(ApiError::conflict("not a shadow rollout"));
    };
    state.shadow.drain().await;
    state.log.flush().await;
    let now = state.now();
    let task = task_of(d);
    let candidate = state
        .store
        .get_model_any(&r.candidate_model_id)
        .await?
        .ok_or_else(|| ApiError::not_found("shadow model"))?;
    let classes = crate::monitoring::model_classes(&candidate);
    let rows = state
        .store
        .predictions_between(
            &d.id,
            started_at,
            now + 1,
            task == Task::MulticlassClassification,
        )
        .await?;
    let primary: Vec<&PredictionRow> = rows.iter().filter(|x| x.role == "primary").collect();
    let shadow: Vec<&PredictionRow> = rows.iter().filter(|x| x.role == "shadow").collect();
    let by_id: std::collections::HashMap<&str, &PredictionRow> =
        shadow.iter().map(|s| (s.request_id.as_str(), *s)).collect();
    let pairs: Vec<(&PredictionRow, &PredictionRow)> = primary
        .iter()
        .filter_map(|p| by_id.get(p.request_id.as_str()).map(|s| (*p, *s)))
        .filter(|(p, s)| !p.is_error && !s.is_error)
        .collect();
    let pm = monitoring::variant_metrics(&primary, task, &classes, (now - started_at).max(1));
    let sm = monitoring::variant_metrics(&shadow, task, &classes, (now - started_at).max(1));
    let mut report = json!({
        "deployment_id": d.id,
        "primary_model_id": d.serving_model_id,
        "shadow_model_id": r.candidate_model_id,
        "window_start": crate::routes::time(started_at),
        "window_end": crate::routes::time(now),
        "requests": primary.len(),
        "mirrored": shadow.len(),
        "paired": pairs.len(),
        "dropped": state.shadow.dropped_for(&d.id),
        "primary": pm,
        "shadow": sm,
    });
    if task.is_classification() {
        let agree = pairs
            .iter()
            .filter(|(p, s)| p.predicted == s.predicted)
            .count();
        report["agreement"] = json!(if pairs.is_empty() {
            None
        } else {
            Some(agree as f64 / pairs.len() as f64)
        });
        // McNemar's test on labelled pairs: primary right & shadow wrong (b) against the reverse (c).
        let (mut b, mut c) = (0u64, 0u64);
        for (p, s) in &pairs {
            let Some(l) = p.label.as_deref().map(monitoring::norm_label) else {
                continue;
            };
            let pr = p
                .predicted
                .as_deref()
                .map(monitoring::norm_label)
                .as_deref()
                == Some(l.as_str());
            let sr = s
                .predicted
                .as_deref()
                .map(monitoring::norm_label)
                .as_deref()
                == Some(l.as_str());
            match (pr, sr) {
                (true, false) => b += 1,
                (false, true) => c += 1,
                _ => {}
            }
        }
        let (stat, p) = if b + c == 0 {
            (0.0, 1.0)
        } else {
            let stat = ((b as f64 - c as f64).abs() - 1.0).max(0.0).powi(2) / (b + c) as f64;
            (stat, coreplex_stats::special::chi2_sf(stat, 1.0))
        };
        report["paired_test"] = json!({"test": "mcnemar", "primary_only_correct": b, "shadow_only_correct": c, "statistic": stat, "p_value": p});
    } else {
        let diffs: Vec<f64> = pairs
            .iter()
            .filter_map(|(p, s)| {
                Some(
                    s.predicted.as_deref()?.parse::<f64>().ok()?
                        - p.predicted.as_deref()?.parse::<f64>().ok()?,
                )
            })
            .collect();
        let mut abs: Vec<f64> = diffs.iter().map(|x| x.abs()).collect();
        abs.sort_by(|a, b| a.total_cmp(b));
        let q = |f: f64| {
            abs.get(((abs.len() as f64 - 1.0) * f).round() as usize)
                .copied()
        };
        report["difference"] = json!({"mean": mean(&diffs), "mean_abs": mean(&abs), "p50_abs": q(0.5), "p95_abs": q(0.95), "max_abs": abs.last()});
        // Paired t-test on absolute errors where labels exist.
        let d_err: Vec<f64> = pairs
            .iter()
            .filter_map(|(p, s)| {
                let y = p.label_value?;
                let pe = (p.predicted.as_deref()?.parse::<f64>().ok()? - y).abs();
                let se = (s.predicted.as_deref()?.parse::<f64>().ok()? - y).abs();
                Some(se - pe)
            })
            .collect();
        report["paired_test"] = paired_t(&d_err);
    }
    let metric = config_of(d).gate_metric(task);
    let summary = match (
        pm.quality.get(metric.as_str()),
        sm.quality.get(metric.as_str()),
    ) {
        (Some(a), Some(b)) => format!(
            "{} primary {a:.4} vs shadow {b:.4} on {} paired requests",
            metric.as_str(),
            pairs.len()
        ),
        _ => format!(
            "{} paired requests; not enough labels for {}",
            pairs.len(),
            metric.as_str()
        ),
    };
    report["summary"] = json!(summary);
    Ok(report)
}

fn mean(x: &[f64]) -> Option<f64> {
    (!x.is_empty()).then(|| x.iter().sum::<f64>() / x.len() as f64)
}

fn paired_t(d: &[f64]) -> serde_json::Value {
    let n = d.len();
    if n < 2 {
        return json!({"test": "paired_t", "n": n, "statistic": null, "p_value": null});
    }
    let m = d.iter().sum::<f64>() / n as f64;
    let var = d.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64;
    let se = (var / n as f64).sqrt();
    let (t, p) = if se == 0.0 {
        (0.0, 1.0)
    } else {
        let t = m / se;
        (
            t,
            2.0 * coreplex_stats::special::t_sf(t.abs(), (n - 1) as f64),
        )
    };
    json!({"test": "paired_t", "n": n, "mean_abs_error_difference": m, "statistic": t, "p_value": p})
}

/// The gate metric of a deployment, for display.
pub fn gate_metric(d: &Deployment) -> QualityMetric {
    config_of(d).gate_metric(task_of(d))
}
