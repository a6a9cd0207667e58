//! Real receivers on real sockets for notification tests: an HTTP endpoint that records what it gets
//! (and can be told to fail the first N times) and a minimal SMTP server.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[derive(Clone, Default)]
pub struct HttpReceiver {
    pub received: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    pub attempts: Arc<AtomicUsize>,
    fail_first: Arc<AtomicUsize>,
    pub url: String,
}

impl HttpReceiver {
    /// Starts a receiver whose first `fail_first` requests get a 500.
    pub async fn start(fail_first: usize) -> HttpReceiver {
        let mut r = HttpReceiver {
            fail_first: Arc::new(AtomicUsize::new(fail_first)),
            ..Default::default()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        r.url = format!("http://{}/hook", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(hook))
            .with_state(r.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        r
    }
    pub fn bodies(&self) -> Vec<serde_json::Value> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| serde_json::from_slice(b).unwrap())
            .collect()
    }
}

async fn hook(State(r): State<HttpReceiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    r.attempts.fetch_add(1, Ordering::SeqCst);
    if r.fail_first.load(Ordering::SeqCst) > 0 {
        r.fail_first.fetch_sub(1, Ordering::SeqCst);
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    r.received.lock().unwrap().push((headers, body));
    StatusCode::OK
}

/// A received message: its recipients and text.
pub type Message = (Vec<String>, String);

/// A minimal SMTP server: accepts any login, records each message's recipients and text.
#[derive(Clone, Default)]
pub struct SmtpReceiver {
    pub messages: Arc<Mutex<Vec<Message>>>,
    pub auth_lines: Arc<Mutex<Vec<String>>>,
    pub port: u16,
}

impl SmtpReceiver {
    pub async fn start() -> SmtpReceiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let r = SmtpReceiver {
            port: listener.local_addr().unwrap().port(),
            ..SmtpReceiver::default()
        };
        let rr = r.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let rr = rr.clone();
                tokio::spawn(async move {
                    let (rd, mut wr) = sock.into_split();
                    let mut lines = BufReader::new(rd).lines();
                    let _ = wr.write_all(b"220 localhost ESMTP test\r\n").await;
                    let mut rcpt = Vec::new();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let upper = line.to_ascii_uppercase();
                        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO")
                        {
                            b"250-localhost\r\n250 AUTH PLAIN LOGIN\r\n"
                        } else if upper.starts_with("AUTH") {
                            rr.auth_lines.lock().unwrap().push(line.clone());
                            b"235 2.7.0 Authentication successful\r\n"
                        } else if upper.starts_with("MAIL FROM") {
                            b"250 OK\r\n"
                        } else if upper.starts_with("RCPT TO") {
                            rcpt.push(line[8..].trim().trim_matches(['<', '>']).to_string());
                            b"250 OK\r\n"
                        } else if upper.starts_with("DATA") {
                            let _ = wr
                                .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                                .await;
                            let mut text = String::new();
                            while let Ok(Some(l)) = lines.next_line().await {
                                if l == "." {
                                    break;
                                }
                                text.push_str(&l);
                                text.push('\n');
                            }
                            rr.messages
                                .lock()
                                .unwrap()
                                .push((std::mem::take(&mut rcpt), text));
                            b"250 OK queued\r\n"
                        } else if upper.starts_with("QUIT") {
                            let _ = wr.write_all(b"221 Bye\r\n").await;
                            break;
                        } else {
                            b"250 OK\r\n"
                        };
                        if wr.write_all(reply).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        r
    }
}
