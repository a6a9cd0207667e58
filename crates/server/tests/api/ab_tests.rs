//! A/B tests through the real endpoint: weighted and sticky assignment (across a restart), outcomes
//! and labels, results equal to what the statistics functions say, stopping with a winner; and
//! seeded simulations of the analysis the results route runs: the fixed-horizon false-positive rate
//! is alpha, the sequential one stays below alpha under continuous peeking, and the power at the
//! planned sample size is the configured power.

use crate::helpers::*;
use coreplex_domain::rollout::{bucket, pick};
use coreplex_server::ab::{analyze, Arm, Metric, MetricSource, MetricType, Plan};
use coreplex_stats::ab as st;
use reqwest::StatusCode;
use serde_json::{json, Map, Value};

const FEATURES: [&str; 4] = ["tenure", "monthly_charges", "support_calls", "usage_trend"];

/// Rows of churn.csv with their true label.
fn churn_rows() -> Vec<(Map<String, Value>, String)> {
    let text = std::fs::read_to_string(fixtures().join("churn.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let v: Vec<&str> = l.split(',').collect();
            let row = FEATURES
                .iter()
                .zip(&v)
                .map(|(f, x)| (f.to_string(), json!(x.parse::<f64>().unwrap())))
                .collect();
            (row, v[4].to_string())
        })
        .collect()
}

/// A small seeded generator (SplitMix64): simulations must give the same draws on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn bernoulli(&mut self, p: f64) -> f64 {
        (self.uniform() < p) as u8 as f64
    }
}

async fn model(t: &TestApp, p: &str, fixture: &str, name: &str, task: &str) -> String {
    t.register(p, fixture, name, task, &t.admin, json!({}))
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A project with `logreg` deployed on `churn-api` and `hgb` registered: (project, deployment,
/// logreg, hgb).
async fn setup(t: &TestApp) -> (String, String, String, String) {
    let p = t.project("churn").await;
    let a = model(t, &p, "logreg.onnx", "churn", "binary_classification").await;
    let b = model(t, &p, "hgb.onnx", "churn", "binary_classification").await;
    let d = t
        .post(
            &format!("/api/v1/projects/{p}/deployments"),
            &t.admin,
            json!({"name": "churn-api", "model_id": a}),
        )
        .await
        .ok();
    (p, d["id"].as_str().unwrap().to_string(), a, b)
}

async fn create(t: &TestApp, body: Value) -> Value {
    let r = t.post("/api/v1/ab-tests", &t.admin, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body
}

/// One single-row prediction; returns the answer.
async fn predict(t: &TestApp, dep: &str, row: &Map<String, Value>, extra: Value) -> Value {
    let mut body = json!({"rows": [row]});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    t.post(
        &format!("/api/v1/deployments/{dep}/predict"),
        &t.admin,
        body,
    )
    .await
    .ok()
}

fn arm_of(variant: &Value) -> usize {
    match variant.as_str().unwrap() {
        "ab:control" => 0,
        "ab:treatment" => 1,
        other => panic!("not an A/B variant: {other}"),
    }
}

#[tokio::test]
async fn assignment_follows_the_weights_and_sticks_to_entities_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = coreplex_domain::ManualClock::new(1_795_600_000_000);
    let rows = churn_rows();
    let (admin, dep, abt, seen, hgb) = {
        let t = spawn_app_in(dir.path(), clock.clone()).await;
        let (p, dep, a, b) = setup(&t).await;
        let test = create(
            &t,
            json!({"project_id": p, "name": "ranker", "deployment_id": dep,
                   "variants": [{"model_id": a, "traffic": 70}, {"model_id": b, "traffic": 30}],
                   "metric": {"type": "proportion", "source": "outcomes", "name": "conversion"},
                   "minimum_detectable_effect": 0.05}),
        )
        .await;
        let abt = test["id"].as_str().unwrap().to_string();
        assert_eq!(test["status"], "running");
        assert_eq!(test["variants"][0]["name"], "control");
        assert_eq!(test["variants"][1]["traffic"], 30.0);
        let d = t
            .get(&format!("/api/v1/deployments/{dep}/events"), &t.admin)
            .await
            .ok();
        assert!(d.to_string().contains("ab_test_started"));

        // 600 distinct entities, and the first 100 of them once more.
        let mut seen: Vec<usize> = Vec::new();
        let mut entity_counts = [0u64; 2];
        for i in 0..600 {
            let r = predict(
                &t,
                &dep,
                &rows[i % rows.len()].0,
                json!({"entity_id": format!("user-{i}")}),
            )
            .await;
            let arm = arm_of(&r["variant"]);
            assert_eq!(
                r["model_id"],
                if arm == 0 { a.as_str() } else { b.as_str() }
            );
            seen.push(arm);
            entity_counts[arm] += 1;
        }
        for i in 0..100 {
            let r = predict(
                &t,
                &dep,
                &rows[(i + 7) % rows.len()].0,
                json!({"entity_id": format!("user-{i}")}),
            )
            .await;
            assert_eq!(arm_of(&r["variant"]), seen[i], "user-{i} changed variant");
        }
        // Any server picks the same variant: it is a hash of the test id and the entity.
        for (i, arm) in seen.iter().enumerate() {
            let point = bucket(&format!("{abt}:user-{i}"));
            assert_eq!(pick(point, &[70.0, 30.0]), *arm);
        }
        let srm = st::srm_check(&entity_counts, &[70.0, 30.0], 0.001).unwrap();
        assert!(
            !srm.mismatch,
            "entities split {entity_counts:?}: p = {}",
            srm.p_value
        );
        // Requests without an entity are assigned at random, by the same weights.
        let mut anon = [0u64; 2];
        for i in 0..300 {
            let r = predict(&t, &dep, &rows[i % rows.len()].0, json!({})).await;
            anon[arm_of(&r["variant"])] += 1;
        }
        let srm = st::srm_check(&anon, &[70.0, 30.0], 1e-4).unwrap();
        assert!(
            !srm.mismatch,
            "anonymous split {anon:?}: p = {}",
            srm.p_value
        );

        let got = t
            .get(&format!("/api/v1/ab-tests/{abt}"), &t.admin)
            .await
            .ok();
        let asg = &got["assignments"];
        for arm in 0..2 {
            assert_eq!(asg[arm]["entities"], entity_counts[arm]);
            assert_eq!(asg[arm]["anonymous_requests"], anon[arm]);
            assert_eq!(asg[arm]["units"], entity_counts[arm] + anon[arm]);
        }
        assert_eq!(
            asg[0]["requests"].as_u64().unwrap() + asg[1]["requests"].as_u64().unwrap(),
            1000
        );
        // The prediction log names the variant.
        let log = t
            .get(
                &format!("/api/v1/deployments/{dep}/predictions?limit=5"),
                &t.admin,
            )
            .await
            .ok();
        assert!(log["items"][0]["variant"]
            .as_str()
            .unwrap()
            .starts_with("ab:"));
        t.app.stop().await;
        (t.admin, dep, abt, seen, b)
    };
    let t = spawn_app_in(dir.path(), clock.clone()).await;
    let t = TestApp { admin, ..t };
    for i in (0..600).step_by(3) {
        let r = predict(
            &t,
            &dep,
            &rows[i % rows.len()].0,
            json!({"entity_id": format!("user-{i}")}),
        )
        .await;
        assert_eq!(
            arm_of(&r["variant"]),
            seen[i],
            "user-{i} changed variant after a restart"
        );
    }
    let got = t
        .get(&format!("/api/v1/ab-tests/{abt}"), &t.admin)
        .await
        .ok();
    let entities: u64 = (0..2)
        .map(|a| got["assignments"][a]["entities"].as_u64().unwrap())
        .sum();
    assert_eq!(entities, 600, "returning entities are not counted twice");
    // Outcomes by entity land on the entity's variant; unknown entities are reported.
    let r = t
        .post(
            &format!("/api/v1/ab-tests/{abt}/outcomes"),
            &t.admin,
            json!({"outcomes": [{"entity_id": "user-1", "value": true}, {"entity_id": "nobody", "value": 0}]}),
        )
        .await
        .ok();
    assert_eq!(r["accepted"], 1);
    assert_eq!(r["unknown_entity_ids"], json!(["nobody"]));
    let res = t
        .get(&format!("/api/v1/ab-tests/{abt}/results"), &t.admin)
        .await
        .ok();
    assert_eq!(res["variants"][seen[1]]["successes"], 1);
    let _ = hgb;
}

#[tokio::test]
async fn results_through_the_endpoint_are_what_the_statistics_say() {
    let t = spawn_app().await;
    let (p, dep, a, b) = setup(&t).await;
    let rows = churn_rows();
    let rates = [0.30, 0.45];
    let (alpha, power, mde, baseline) = (0.05, 0.8, 0.1, 0.3);
    let mut rng = Rng(20_261_125);
    for sequential in [false, true] {
        let body = json!({"project_id": p, "name": format!("checkout-{sequential}"), "endpoint": "churn-api",
            "variants": [{"model_id": a, "traffic": 50}, {"model_id": b, "traffic": 50}],
            "metric": {"type": "proportion", "source": "outcomes", "name": "conversion", "baseline_rate": baseline},
            "alpha": alpha, "power": power, "minimum_detectable_effect": mde, "sequential": sequential});
        let draws: Vec<f64> = (0..400).map(|_| rng.uniform()).collect();
        let test = create(&t, body).await;
        let abt = test["id"].as_str().unwrap().to_string();
        let mut n = [0u64; 2];
        let mut s = [0u64; 2];
        let mut outcomes = Vec::new();
        // (request id, arm, value): the order the server sorts one batch of outcomes in.
        let mut observed: Vec<(String, usize, f64)> = Vec::new();
        for (i, u) in draws.iter().enumerate() {
            let rid = format!("sim-{sequential}-{i:04}");
            let r = predict(
                &t,
                &dep,
                &rows[i % rows.len()].0,
                json!({"request_id": rid}),
            )
            .await;
            let arm = arm_of(&r["variant"]);
            let value = (*u < rates[arm]) as u8 as f64;
            n[arm] += 1;
            s[arm] += value as u64;
            outcomes.push(json!({"request_id": rid, "value": value as u8}));
            observed.push((rid, arm, value));
        }
        let r = t
            .post(
                &format!("/api/v1/ab-tests/{abt}/outcomes"),
                &t.admin,
                json!(outcomes),
            )
            .await
            .ok();
        assert_eq!(r["accepted"], 400, "{r}");
        let res = t
            .get(&format!("/api/v1/ab-tests/{abt}/results"), &t.admin)
            .await
            .ok();
        assert_eq!(res["metric"]["type"], "proportion");
        assert_eq!(res["control"], a.as_str());
        let (c, v) = (&res["variants"][0], &res["variants"][1]);
        assert_eq!(
            (c["model_id"].as_str(), c["is_control"].as_bool()),
            (Some(a.as_str()), Some(true))
        );
        assert_eq!(
            (c["n"].as_u64(), c["successes"].as_u64()),
            (Some(n[0]), Some(s[0]))
        );
        assert_eq!(
            (v["n"].as_u64(), v["successes"].as_u64()),
            (Some(n[1]), Some(s[1]))
        );
        assert_eq!(v["estimate"], s[1] as f64 / n[1] as f64);
        let (control, treatment) = (
            st::Proportion {
                successes: s[0],
                trials: n[0],
            },
            st::Proportion {
                successes: s[1],
                trials: n[1],
            },
        );
        let z = if s[0] * n[1] != s[1] * n[0] {
            st::two_proportion_ztest(control, treatment, alpha).unwrap()
        } else {
            // Equal rates: z = 0 and p = 1, answered without the normal tail at 0.
            let z = coreplex_server::ab::proportion_test(control, treatment, alpha).unwrap();
            assert_eq!((z.z, z.p_value), (0.0, 1.0));
            z
        };
        assert_eq!(v["difference"], z.difference);
        assert_eq!(v["relative_lift"], z.relative_lift.unwrap());
        assert_eq!(v["statistic"], z.z);
        let srm = st::srm_check(&n, &[50.0, 50.0], st::DEFAULT_SRM_THRESHOLD).unwrap();
        assert_eq!(res["srm_p_value"], srm.p_value);
        assert_eq!(res["srm"]["mismatch"], srm.mismatch);
        let required = st::sample_size_proportion(baseline, mde, alpha, power).unwrap();
        assert_eq!(res["required_sample_size_per_variant"], required);
        assert_eq!(res["sample_size_basis"], "configured");
        assert_eq!(
            res["progress"],
            (n[0].min(n[1]) as f64 / required as f64).min(1.0)
        );
        let reached = n[0] >= required && n[1] >= required;
        assert_eq!(res["sample_size_reached"], reached);
        if !sequential {
            assert_eq!(v["p_value"], z.p_value);
            assert_eq!(
                (v["ci_low"].as_f64(), v["ci_high"].as_f64()),
                (Some(z.ci_low), Some(z.ci_high))
            );
            assert_eq!(v["significant"], z.significant);
        } else {
            // The always-valid p-value: the mSPRT's running minimum over every prefix of the
            // outcomes in arrival order (one batch: request id order), once each variant has 10.
            observed.sort_by(|x, y| x.0.cmp(&y.0));
            let mut monitor = st::SequentialMonitor::default();
            let (mut cn, mut cs, mut tn, mut ts) = (0u64, 0u64, 0u64, 0u64);
            for (_, arm, value) in &observed {
                if *arm == 0 {
                    cn += 1;
                    cs += *value as u64;
                } else {
                    tn += 1;
                    ts += *value as u64;
                }
                if cn < 10 || tn < 10 {
                    continue;
                }
                let (pc, pt) = (cs as f64 / cn as f64, ts as f64 / tn as f64);
                if pc * (1.0 - pc) + pt * (1.0 - pt) <= 0.0 {
                    continue;
                }
                let look = st::sequential_proportions(
                    st::Proportion {
                        successes: cs,
                        trials: cn,
                    },
                    st::Proportion {
                        successes: ts,
                        trials: tn,
                    },
                    alpha,
                    Some(mde),
                )
                .unwrap();
                monitor.update(&look);
            }
            assert_eq!(v["p_value"], monitor.p_value);
            assert_eq!(
                (v["ci_low"].as_f64(), v["ci_high"].as_f64()),
                (Some(monitor.ci_low), Some(monitor.ci_high))
            );
            assert_eq!(v["significant"], monitor.p_value < alpha);
            assert_eq!(v["fixed_horizon"]["p_value"], z.p_value);
        }
        let expected_rec = if srm.mismatch {
            "stop"
        } else if v["significant"].as_bool().unwrap() && (sequential || reached) {
            if z.difference > 0.0 {
                "ship"
            } else {
                "stop"
            }
        } else if reached {
            "no_difference"
        } else {
            "keep_running"
        };
        assert_eq!(res["recommendation"], expected_rec, "{res}");
        let stopped = t
            .post(&format!("/api/v1/ab-tests/{abt}/stop"), &t.admin, json!({}))
            .await
            .ok();
        assert_eq!(stopped["status"], "stopped");
        assert_eq!(stopped["serving_model_id"], a.as_str());
    }
}

#[tokio::test]
async fn labels_give_correctness_and_absolute_error() {
    let t = spawn_app().await;
    let (p, dep, a, b) = setup(&t).await;
    let rows = churn_rows();
    let test = create(
        &t,
        json!({"project_id": p, "name": "accuracy", "deployment_id": dep,
               "variants": [{"model_id": a}, {"model_id": b}],
               "metric": {"type": "proportion", "source": "labels"}, "minimum_detectable_effect": 0.05}),
    )
    .await;
    let abt = test["id"].as_str().unwrap();
    assert_eq!(test["metric"]["name"], "accuracy");
    assert_eq!(test["variants"][0]["traffic"], 50.0);
    let mut n = [0u64; 2];
    let mut correct = [0u64; 2];
    let mut labels = Vec::new();
    for (i, (row, label)) in rows.iter().take(300).enumerate() {
        let r = predict(&t, &dep, row, json!({})).await;
        let arm = arm_of(&r["variant"]);
        n[arm] += 1;
        correct[arm] += (r["predictions"][0]["label"].as_str().unwrap() == label) as u64;
        // Labels arrive for all but every tenth prediction.
        if i % 10 != 9 {
            labels.push(json!({"request_id": r["request_ids"][0], "label": label}));
        } else {
            n[arm] -= 1;
            correct[arm] -= (r["predictions"][0]["label"].as_str().unwrap() == label) as u64;
        }
    }
    t.post(
        &format!("/api/v1/deployments/{dep}/feedback"),
        &t.admin,
        json!(labels),
    )
    .await
    .ok();
    let r = t
        .post(
            &format!("/api/v1/ab-tests/{abt}/outcomes"),
            &t.admin,
            json!([{"request_id": "x", "value": 1}]),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CONFLICT,
        "labels-based tests take no outcomes"
    );
    let res = t
        .get(&format!("/api/v1/ab-tests/{abt}/results"), &t.admin)
        .await
        .ok();
    for arm in 0..2 {
        assert_eq!(res["variants"][arm]["n"], n[arm]);
        assert_eq!(res["variants"][arm]["successes"], correct[arm]);
    }

    // A regression endpoint: the same model twice (an A/A test) on absolute error, lower is better.
    let m = model(&t, &p, "regressor.onnx", "price", "regression").await;
    let d = t
        .post(
            &format!("/api/v1/projects/{p}/deployments"),
            &t.admin,
            json!({"name": "price-api", "model_id": m}),
        )
        .await
        .ok();
    let rdep = d["id"].as_str().unwrap();
    let test = create(
        &t,
        json!({"project_id": p, "name": "aa", "deployment_id": rdep,
               "variants": [{"model_id": m, "name": "a"}, {"model_id": m, "name": "b"}],
               "metric": {"type": "continuous", "source": "labels", "sd": 1.0}, "minimum_detectable_effect": 0.5}),
    )
    .await;
    let abt = test["id"].as_str().unwrap();
    assert_eq!(test["metric"]["higher_is_better"], false);
    let mut rng = Rng(7);
    let mut errors: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut labels = Vec::new();
    for i in 0..120 {
        let row = json!({"x0": rng.uniform(), "x1": rng.uniform(), "x2": i as f64 / 100.0});
        let r = predict(&t, rdep, row.as_object().unwrap(), json!({})).await;
        let arm = match r["variant"].as_str().unwrap() {
            "ab:a" => 0,
            "ab:b" => 1,
            v => panic!("{v}"),
        };
        let pred = r["predictions"][0]["value"].as_f64().unwrap();
        let truth = (rng.uniform() * 4.0).round() - 2.0;
        // What the log keeps of the prediction, parsed back as the server does.
        let logged: f64 = pred.to_string().parse().unwrap();
        errors[arm].push((logged - truth).abs());
        labels.push(json!({"request_id": r["request_ids"][0], "value": truth}));
    }
    t.post(
        &format!("/api/v1/deployments/{rdep}/feedback"),
        &t.admin,
        json!(labels),
    )
    .await
    .ok();
    let res = t
        .get(&format!("/api/v1/ab-tests/{abt}/results"), &t.admin)
        .await
        .ok();
    let w = st::welch_ttest_samples(&errors[0], &errors[1], 0.05).unwrap();
    let v = &res["variants"][1];
    assert_eq!(v["n"], errors[1].len());
    assert!(
        (v["mean"].as_f64().unwrap() - w.treatment_mean).abs() < 1e-9,
        "{res}"
    );
    assert!((v["p_value"].as_f64().unwrap() - w.p_value).abs() < 1e-9);
    assert!((v["df"].as_f64().unwrap() - w.df).abs() < 1e-6);
    assert_eq!(
        res["required_sample_size_per_variant"],
        st::sample_size_mean(1.0, 0.5, 0.05, 0.8).unwrap()
    );
}

#[tokio::test]
async fn stopping_with_a_winner_switches_the_deployment_and_records_the_decision() {
    let t = spawn_app().await;
    let (p, dep, a, b) = setup(&t).await;
    let rows = churn_rows();
    let test = create(
        &t,
        json!({"project_id": p, "name": "ranker", "deployment_id": dep,
               "variants": [{"model_id": a, "traffic": 1}, {"model_id": b, "traffic": 1}],
               "metric": {"type": "continuous", "source": "outcomes", "name": "revenue"},
               "minimum_detectable_effect": 2.5, "sequential": true}),
    )
    .await;
    let abt = test["id"].as_str().unwrap();
    for (i, (row, _)) in rows.iter().take(20).enumerate() {
        predict(&t, &dep, row, json!({"entity_id": format!("e{i}")})).await;
    }
    // The deployment shows the test's split while it runs.
    let view = t
        .get(&format!("/api/v1/deployments/{dep}"), &t.admin)
        .await
        .ok();
    assert_eq!(view["ab_test_id"], abt);
    assert_eq!(
        view["traffic"],
        json!([{"model_id": a, "variant": "ab:control", "percentage": 50.0},
               {"model_id": b, "variant": "ab:treatment", "percentage": 50.0}])
    );
    // While the test routes traffic, a rollout would fight it for the deployment: refused.
    let r = t
        .post(
            &format!("/api/v1/deployments/{dep}/rollouts"),
            &t.admin,
            json!({"model_id": b, "strategy": "direct"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert!(r.message().contains("is running on"), "{}", r.message());
    let r = t
        .post(
            &format!("/api/v1/ab-tests/{abt}/stop"),
            &t.admin,
            json!({"winner_model_id": "model_nope"}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"]["details"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("winner_model_id"))
    );
    let stopped = t
        .post(
            &format!("/api/v1/ab-tests/{abt}/stop"),
            &t.admin,
            json!({"winner_variant": "treatment", "reason": "more revenue"}),
        )
        .await
        .ok();
    assert_eq!(stopped["status"], "stopped");
    assert_eq!(stopped["winner_model_id"], b.as_str());
    assert_eq!(stopped["serving_model_id"], b.as_str());
    let d = t
        .get(&format!("/api/v1/deployments/{dep}"), &t.admin)
        .await
        .ok();
    assert_eq!(d["serving_model_id"], b.as_str());
    assert_eq!(d["previous_model_id"], a.as_str());
    // All traffic now goes to the winner, with no A/B variant any more.
    for (i, (row, _)) in rows.iter().take(20).enumerate() {
        let r = predict(&t, &dep, row, json!({"entity_id": format!("e{i}")})).await;
        assert_eq!(
            (r["model_id"].as_str(), r["variant"].as_str()),
            (Some(b.as_str()), Some("baseline"))
        );
    }
    let events = t
        .get(&format!("/api/v1/deployments/{dep}/events"), &t.admin)
        .await
        .ok();
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.ends_with(&["ab_test_started", "ab_test_stopped"]),
        "{kinds:?}"
    );
    let promotions = t
        .get(&format!("/api/v1/models/{b}/promotions"), &t.admin)
        .await
        .ok();
    let last = promotions.as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["strategy"].as_str(), last["outcome"].as_str()),
        (Some("ab_test"), Some("promoted")),
        "{promotions}"
    );
    assert!(last["detail"].as_str().unwrap().contains("more revenue"));
    let m = t.get(&format!("/api/v1/models/{b}"), &t.admin).await.ok();
    assert_eq!(m["status"], "production");
    let audit = t
        .get(&format!("/api/v1/audit?resource_id={abt}"), &t.admin)
        .await
        .ok();
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["ab_test.create", "ab_test.stop"]);
    let audit = t
        .get(&format!("/api/v1/audit?resource_id={dep}"), &t.admin)
        .await
        .ok();
    assert!(audit.to_string().contains("deployment.ab_test_promoted"));
    // A stopped test stays stopped; a new one may start.
    let r = t
        .post(&format!("/api/v1/ab-tests/{abt}/stop"), &t.admin, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    create(
        &t,
        json!({"project_id": p, "name": "again", "deployment_id": dep,
               "variants": [{"model_id": b}, {"model_id": a}],
               "metric": {"type": "proportion"}, "minimum_detectable_effect": 0.05}),
    )
    .await;
    let list = t
        .get(&format!("/api/v1/ab-tests?project_id={p}"), &t.admin)
        .await
        .ok();
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    assert_eq!(list["items"][0]["name"], "again");
    // Another organization sees none of it.
    let other = t.other_org().await;
    for path in [
        format!("/api/v1/ab-tests/{abt}"),
        format!("/api/v1/ab-tests/{abt}/results"),
    ] {
        assert_eq!(t.get(&path, &other).await.status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn bad_tests_are_refused_naming_the_field() {
    let t = spawn_app().await;
    let (p, dep, a, b) = setup(&t).await;
    let r = model(&t, &p, "regressor.onnx", "price", "regression").await;
    let base = json!({"project_id": p, "name": "t", "deployment_id": dep,
        "variants": [{"model_id": a, "traffic": 50}, {"model_id": b, "traffic": 50}],
        "metric": {"type": "proportion", "source": "outcomes"}, "minimum_detectable_effect": 0.05});
    let with = |k: &str, v: Value| {
        let mut x = base.clone();
        x[k] = v;
        x
    };
    let other_project = t.project("other").await;
    let foreign = model(&t, &other_project, "hgb.onnx", "x", "binary_classification").await;
    for (body, field) in [
        (with("variants", json!([{"model_id": a}])), "variants"),
        (
            with(
                "variants",
                json!([{"model_id": a, "traffic": 50}, {"model_id": b}]),
            ),
            "variants[1].traffic",
        ),
        (
            with(
                "variants",
                json!([{"model_id": a, "traffic": 50}, {"model_id": b, "traffic": -1}]),
            ),
            "variants[1].traffic",
        ),
        (
            with("variants", json!([{"model_id": a}, {"model_id": foreign}])),
            "variants[1].model_id",
        ),
        (
            with("variants", json!([{"model_id": a}, {"model_id": r}])),
            "variants[1].model_id",
        ),
        (
            with(
                "variants",
                json!([{"model_id": a, "name": "x"}, {"model_id": b, "name": "x"}]),
            ),
            "variants[1].name",
        ),
        (with("metric", json!({"type": "ratio"})), "metric.type"),
        (
            with("metric", json!({"type": "proportion", "source": "clicks"})),
            "metric.source",
        ),
        (
            with("metric", json!({"type": "continuous", "source": "labels"})),
            "metric.type",
        ),
        (
            with(
                "metric",
                json!({"type": "proportion", "baseline_rate": 1.5}),
            ),
            "metric.baseline_rate",
        ),
        (with("alpha", json!(0.9)), "alpha"),
        (with("power", json!(0.01)), "power"),
        (
            with("minimum_detectable_effect", json!(0)),
            "minimum_detectable_effect",
        ),
        (with("deployment_id", json!("dep_nope")), "deployment_id"),
        (with("name", json!("  ")), "name"),
    ] {
        let res = t.post("/api/v1/ab-tests", &t.admin, body.clone()).await;
        assert_eq!(
            res.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            res.body
        );
        assert_eq!(res.body["error"]["details"]["field"], field, "{}", res.body);
    }
    // Without a minimum detectable effect the plan has no sample size.
    let mut missing = base.clone();
    missing
        .as_object_mut()
        .unwrap()
        .remove("minimum_detectable_effect");
    let res = t.post("/api/v1/ab-tests", &t.admin, missing).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        res.message().contains("minimum_detectable_effect"),
        "{}",
        res.body
    );
    // A viewer may read but not start a test.
    let viewer = t.member_key(&p, "vera", "viewer").await;
    assert_eq!(
        t.post("/api/v1/ab-tests", &viewer, base.clone())
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // One running test per deployment.
    let test = create(&t, base.clone()).await;
    let res = t
        .post("/api/v1/ab-tests", &t.admin, with("name", json!("second")))
        .await;
    assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.body);
    let abt = test["id"].as_str().unwrap();
    // Outcomes must fit the metric.
    let res = t
        .post(
            &format!("/api/v1/ab-tests/{abt}/outcomes"),
            &t.admin,
            json!([{"request_id": "r", "value": 3}]),
        )
        .await;
    assert_eq!(res.body["error"]["details"]["field"], "outcomes[0].value");
    let res = t
        .post(
            &format!("/api/v1/ab-tests/{abt}/outcomes"),
            &t.admin,
            json!([{"value": 1}]),
        )
        .await;
    assert_eq!(res.body["error"]["details"]["field"], "outcomes[0]");
    let res = t
        .post(
            &format!("/api/v1/ab-tests/{abt}/outcomes"),
            &t.admin,
            json!([{"request_id": "never-served", "value": 1}]),
        )
        .await
        .ok();
    assert_eq!(
        (res["accepted"].as_u64(), res["unknown_request_ids"].clone()),
        (Some(0), json!(["never-served"]))
    );
    t.post(&format!("/api/v1/ab-tests/{abt}/stop"), &t.admin, json!({}))
        .await
        .ok();

    // Not while a rollout is in progress.
    t.post(
        &format!("/api/v1/deployments/{dep}/rollouts"),
        &t.admin,
        json!({"model_id": b, "strategy": "canary"}),
    )
    .await
    .ok();
    let res = t.post("/api/v1/ab-tests", &t.admin, base.clone()).await;
    assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.body);
    assert!(res.message().contains("rollout"));
}

/// Simulated tests of a metric with true rates per variant, analysed exactly as the results route
/// analyses the served ones.
fn simulate(rng: &mut Rng, rates: [f64; 2], n: usize) -> Vec<(usize, f64)> {
    let mut o = Vec::with_capacity(2 * n);
    for _ in 0..n {
        for (arm, rate) in rates.iter().enumerate() {
            o.push((arm, rng.bernoulli(*rate)));
        }
    }
    o
}

fn plan(sequential: bool, mde: f64, baseline: f64) -> Plan {
    Plan {
        metric: Metric {
            kind: MetricType::Proportion,
            source: MetricSource::Outcomes,
            name: "conversion".into(),
            higher_is_better: true,
            baseline_rate: Some(baseline),
            sd: None,
        },
        alpha: 0.05,
        power: 0.8,
        mde,
        sequential,
    }
}

fn arms(n: u64) -> Vec<Arm> {
    ["control", "treatment"]
        .iter()
        .enumerate()
        .map(|(i, name)| Arm {
            name: name.to_string(),
            model_id: format!("model_{i}"),
            traffic: 50.0,
            assigned: n,
        })
        .collect()
}

/// Whether `x` successes in `reps` are within 3.3 standard deviations of `p`.
fn in_binomial_band(x: usize, reps: usize, p: f64) -> bool {
    let sd = (p * (1.0 - p) / reps as f64).sqrt();
    ((x as f64 / reps as f64) - p).abs() <= 3.3 * sd
}

#[test]
fn the_fixed_horizon_false_positive_rate_is_alpha() {
    let mut rng = Rng(1);
    let p = plan(false, 0.05, 0.3);
    let (reps, n) = (2000, 500);
    let mut rejected = 0;
    for _ in 0..reps {
        let o = simulate(&mut rng, [0.3, 0.3], n);
        let a = analyze(&p, &arms(n as u64), &o);
        rejected += a.variants[1].significant as usize;
    }
    eprintln!("fixed-horizon false positives: {rejected} of {reps}");
    assert!(
        in_binomial_band(rejected, reps, 0.05),
        "false positives {rejected} of {reps}"
    );
}

#[test]
fn the_sequential_false_positive_rate_stays_below_alpha_when_checked_after_every_batch() {
    let mut rng = Rng(2);
    let p = plan(true, 0.05, 0.3);
    let fixed = plan(false, 0.05, 0.3);
    let (reps, batches, per_batch) = (300, 20, 50);
    let (mut sequential_fp, mut peeking_fp) = (0, 0);
    for _ in 0..reps {
        let o = simulate(&mut rng, [0.3, 0.3], batches * per_batch);
        let (mut seq, mut naive) = (false, false);
        for b in 1..=batches {
            let seen = &o[..2 * b * per_batch];
            let n = (b * per_batch) as u64;
            seq |= analyze(&p, &arms(n), seen).variants[1].significant;
            naive |= analyze(&fixed, &arms(n), seen).variants[1].significant;
        }
        sequential_fp += seq as usize;
        peeking_fp += naive as usize;
    }
    let rate = sequential_fp as f64 / reps as f64;
    eprintln!("false positives: sequential {sequential_fp}, peeking {peeking_fp} of {reps}");
    assert!(
        rate <= 0.05,
        "sequential false positives {sequential_fp} of {reps}"
    );
    // Peeking at the fixed-horizon test after every batch is what the sequential mode prevents.
    assert!(
        peeking_fp > 2 * sequential_fp.max(10),
        "peeking {peeking_fp}, sequential {sequential_fp}"
    );
}

#[test]
fn the_power_at_the_planned_sample_size_is_the_configured_power() {
    let mut rng = Rng(3);
    let p = plan(false, 0.05, 0.3);
    let n = st::sample_size_proportion(0.3, 0.05, 0.05, 0.8).unwrap() as usize;
    let reps = 500;
    let mut detected = 0;
    let mut shipped = 0;
    for _ in 0..reps {
        let o = simulate(&mut rng, [0.3, 0.35], n);
        let a = analyze(&p, &arms(n as u64), &o);
        assert_eq!(a.required_sample_size_per_variant, Some(n as u64));
        assert!(a.sample_size_reached);
        detected += a.variants[1].significant as usize;
        shipped += (a.recommendation == "ship") as usize;
    }
    eprintln!("detected {detected} of {reps} at n = {n} per variant");
    assert!(
        in_binomial_band(detected, reps, 0.8),
        "power {detected} of {reps}"
    );
    assert_eq!(
        shipped, detected,
        "every detected improvement is a ship recommendation"
    );
}
