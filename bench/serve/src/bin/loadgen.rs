//! The serving benchmark's load generator: N concurrent workers, each holding one persistent
//! HTTP/1.1 connection to a server on this machine and sending single-row prediction requests back
//! to back (closed loop, like `wrk`). For each concurrency level it warms up, then measures for a
//! fixed time, and prints one JSON line (throughput, p50/p90/p99/max latency, errors) on stdout and
//! a table row on stderr. A last JSON line gives every successful response counted, warm-up and
//! tail included, so the caller can compare it with the rows a server logged.
//!
//! Bounded: at most 120 s per phase, 1024 workers and `--max-requests` per level; it refuses any
//! host but the loopback address.

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "Closed-loop HTTP load generator for the serving benchmark (loopback only)")]
struct Args {
    /// Full URL of the prediction route, e.g. http://127.0.0.1:8080/api/v1/deployments/ID/predict.
    #[arg(long)]
    url: String,
    /// JSON file with `feature_names` and `rows` (arrays of numbers), from export_model.py.
    #[arg(long)]
    rows: std::path::PathBuf,
    /// Body format: `rows` ({"rows": [{name: value}]}, CorePlexML and the bare server) or
    /// `mlflow` ({"dataframe_split": {"columns", "data"}}).
    #[arg(long, default_value = "rows")]
    format: String,
    /// File holding an API key, sent as `Authorization: Bearer <key>`.
    #[arg(long)]
    bearer_file: Option<std::path::PathBuf>,
    /// Comma-separated concurrency levels.
    #[arg(long, default_value = "1,8,64", value_delimiter = ',')]
    concurrency: Vec<usize>,
    /// Seconds measured per level.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of warm-up per level, not measured.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Most requests sent per level (warm-up included).
    #[arg(long, default_value_t = 5_000_000)]
    max_requests: u64,
    /// Seconds before a request counts as failed.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Worker threads of the load generator's own runtime (it shares the machine with the server).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Name of the target in the output.
    #[arg(long, default_value = "target")]
    label: String,
}

/// What one worker saw during one level.
#[derive(Default)]
struct WorkerStats {
    /// Latencies, in microseconds, of successful requests completed inside the measured window.
    latencies_us: Vec<u32>,
    /// Successful responses, warm-up and tail included.
    ok_total: u64,
    errors_measured: u64,
    errors_total: u64,
    first_error: Option<String>,
}

struct Target {
    authority: String,
    host: String,
    port: u16,
    path: String,
    auth: Option<String>,
    bodies: Vec<Bytes>,
}

fn parse_url(url: &str) -> Result<(String, u16, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("only plain http:// URLs are supported")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = authority
        .rsplit_once(':')
        .ok_or("the URL needs an explicit port")?;
    if host != "127.0.0.1" && host != "localhost" && host != "[::1]" {
        return Err(format!(
            "refusing to load `{host}`: this load generator only targets the loopback address"
        ));
    }
    let port: u16 = port.parse().map_err(|_| format!("bad port `{port}`"))?;
    Ok((
        host.trim_matches(['[', ']']).to_string(),
        port,
        path.to_string(),
    ))
}

fn bodies(rows_file: &std::path::Path, format: &str) -> Result<Vec<Bytes>, String> {
    let text = std::fs::read_to_string(rows_file)
        .map_err(|e| format!("cannot read {}: {e}", rows_file.display()))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("bad rows file: {e}"))?;
    let names: Vec<String> = serde_json::from_value(v["feature_names"].clone())
        .map_err(|e| format!("rows file: feature_names: {e}"))?;
    let rows: Vec<Vec<f64>> =
        serde_json::from_value(v["rows"].clone()).map_err(|e| format!("rows file: rows: {e}"))?;
    if rows.is_empty() {
        return Err("rows file has no rows".into());
    }
    rows.iter()
        .map(|r| {
            let body = match format {
                "rows" => {
                    let row: serde_json::Map<String, Value> = names
                        .iter()
                        .cloned()
                        .zip(r.iter().map(|x| json!(x)))
                        .collect();
                    json!({ "rows": [row] })
                }
                "mlflow" => json!({"dataframe_split": {"columns": names, "data": [r]}}),
                other => return Err(format!("unknown format `{other}` (rows or mlflow)")),
            };
            Ok(Bytes::from(body.to_string()))
        })
        .collect()
}

type Sender = http1::SendRequest<Full<Bytes>>;

async fn connect(t: &Target) -> Result<Sender, String> {
    let stream = tokio::net::TcpStream::connect((t.host.as_str(), t.port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

async fn one_request(t: &Target, sender: &mut Sender, i: usize) -> Result<(), String> {
    let mut req = Request::post(t.path.as_str())
        .header(hyper::header::HOST, t.authority.as_str())
        .header(hyper::header::CONTENT_TYPE, "application/json");
    if let Some(a) = &t.auth {
        req = req.header(hyper::header::AUTHORIZATION, a.as_str());
    }
    let req = req
        .body(Full::new(t.bodies[i % t.bodies.len()].clone()))
        .map_err(|e| e.to_string())?;
    sender
        .ready()
        .await
        .map_err(|e| format!("connection: {e}"))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        ))
    }
}

struct Phase {
    measure_from: Instant,
    end: Instant,
    sent: AtomicU64,
    max_requests: u64,
    stop: AtomicBool,
}

async fn worker(t: Arc<Target>, phase: Arc<Phase>, id: usize, timeout: Duration) -> WorkerStats {
    let mut s = WorkerStats {
        latencies_us: Vec::with_capacity(16_384),
        ..Default::default()
    };
    let mut sender: Option<Sender> = None;
    let mut i = id * 7919;
    loop {
        if Instant::now() >= phase.end || phase.stop.load(Ordering::Relaxed) {
            break;
        }
        if sender.is_none() {
            match connect(&t).await {
                Ok(tx) => sender = Some(tx),
                Err(e) => {
                    s.errors_total += 1;
                    s.first_error.get_or_insert(e);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let Some(tx) = sender.as_mut() else { continue };
        if phase.sent.fetch_add(1, Ordering::Relaxed) >= phase.max_requests {
            phase.stop.store(true, Ordering::Relaxed);
            break;
        }
        let started = Instant::now();
        let result = tokio::time::timeout(timeout, one_request(&t, tx, i))
            .await
            .unwrap_or_else(|_| Err("timed out".into()));
        i += 1;
        let done = Instant::now();
        let measured = started >= phase.measure_from && done <= phase.end;
        match result {
            Ok(()) => {
                s.ok_total += 1;
                if measured {
                    let us = done
                        .duration_since(started)
                        .as_micros()
                        .min(u32::MAX as u128);
                    s.latencies_us.push(us as u32);
                }
            }
            Err(e) => {
                s.errors_total += 1;
                if measured {
                    s.errors_measured += 1;
                }
                // An error status keeps the connection; a broken connection is replaced, after a
                // short pause so a dead server is not spun on.
                if !e.starts_with("HTTP ") {
                    sender = None;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                s.first_error.get_or_insert(e);
            }
        }
    }
    s
}

fn percentile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1000.0
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    let (host, port, path) = parse_url(&args.url)?;
    if !(0.0..=120.0).contains(&args.duration) || !(0.0..=120.0).contains(&args.warmup) {
        return Err("--duration and --warmup must be between 0 and 120 seconds".into());
    }
    if args.concurrency.iter().any(|c| !(1..=1024).contains(c)) {
        return Err("each concurrency level must be between 1 and 1024".into());
    }
    let auth = match &args.bearer_file {
        Some(p) => Some(format!(
            "Bearer {}",
            std::fs::read_to_string(p)
                .map_err(|e| format!("cannot read {}: {e}", p.display()))?
                .trim()
        )),
        None => None,
    };
    let target = Arc::new(Target {
        authority: format!("{host}:{port}"),
        host,
        port,
        path,
        auth,
        bodies: bodies(&args.rows, &args.format)?,
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.clamp(1, 64))
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let timeout = Duration::from_secs_f64(args.timeout);
    let mut grand_ok = 0u64;
    let mut grand_errors = 0u64;
    eprintln!(
        "{:<10} {:>5} {:>12} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "target", "conc", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors"
    );
    for &c in &args.concurrency {
        let start = Instant::now();
        let phase = Arc::new(Phase {
            measure_from: start + Duration::from_secs_f64(args.warmup),
            end: start + Duration::from_secs_f64(args.warmup + args.duration),
            sent: AtomicU64::new(0),
            max_requests: args.max_requests,
            stop: AtomicBool::new(false),
        });
        let stats: Vec<WorkerStats> = rt.block_on(async {
            let handles: Vec<_> = (0..c)
                .map(|id| tokio::spawn(worker(target.clone(), phase.clone(), id, timeout)))
                .collect();
            let mut out = Vec::with_capacity(c);
            for h in handles {
                out.push(h.await.unwrap_or_default());
            }
            out
        });
        // When the request cap ended the level early, throughput is over the time actually measured.
        let measured_s = if phase.stop.load(Ordering::Relaxed) {
            Instant::now()
                .min(phase.end)
                .saturating_duration_since(phase.measure_from)
                .as_secs_f64()
        } else {
            args.duration
        };
        let mut lat: Vec<u32> =
            Vec::with_capacity(stats.iter().map(|s| s.latencies_us.len()).sum());
        let (mut ok_total, mut err_measured, mut err_total) = (0, 0, 0);
        let mut first_error = None;
        for s in stats {
            lat.extend_from_slice(&s.latencies_us);
            ok_total += s.ok_total;
            err_measured += s.errors_measured;
            err_total += s.errors_total;
            if first_error.is_none() {
                first_error = s.first_error;
            }
        }
        lat.sort_unstable();
        grand_ok += ok_total;
        grand_errors += err_total;
        let rps = if measured_s > 0.0 {
            lat.len() as f64 / measured_s
        } else {
            0.0
        };
        let line = json!({
            "target": args.label,
            "concurrency": c,
            "duration_s": measured_s,
            "requests": lat.len(),
            "rps": (rps * 10.0).round() / 10.0,
            "p50_ms": percentile(&lat, 0.50),
            "p90_ms": percentile(&lat, 0.90),
            "p99_ms": percentile(&lat, 0.99),
            "max_ms": lat.last().map(|x| *x as f64 / 1000.0),
            "errors": err_measured,
            "ok_total": ok_total,
            "errors_total": err_total,
            "first_error": first_error,
        });
        println!("{line}");
        eprintln!(
            "{:<10} {:>5} {:>12.0} {:>10.3} {:>10.3} {:>10.3} {:>10.3} {:>8}",
            args.label,
            c,
            rps,
            percentile(&lat, 0.50),
            percentile(&lat, 0.90),
            percentile(&lat, 0.99),
            lat.last().map(|x| *x as f64 / 1000.0).unwrap_or(f64::NAN),
            err_measured
        );
    }
    println!(
        "{}",
        json!({"target": args.label, "summary": true, "ok_total": grand_ok, "errors_total": grand_errors})
    );
    Ok(())
}
