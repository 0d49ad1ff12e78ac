//! A programmable stand-in for an LLM provider: a real HTTP server on a free loopback port,
//! whose answers each test scripts in the provider's own wire format, and which records every
//! request it receives.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::Value;

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query, e.g. `/v1/chat/completions` or `/model/x/converse?a=b`.
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What the upstream answers.
pub enum Reply {
    /// A status, headers and a JSON body.
    Json(u16, Value, Vec<(&'static str, String)>),
    /// A 200 whose body is sent in pieces, each after its delay: SSE text, event-stream
    /// frames, anything.
    Chunks {
        content_type: &'static str,
        chunks: Vec<(Duration, Vec<u8>)>,
    },
    /// Waits this long, then answers (for timeouts).
    Delay(Duration, Box<Reply>),
}

impl Reply {
    pub fn ok(body: Value) -> Reply {
        Reply::Json(200, body, Vec::new())
    }

    pub fn status(status: u16, body: Value) -> Reply {
        Reply::Json(status, body, Vec::new())
    }

    /// Server-sent events, one chunk per event, sent at once.
    pub fn sse(events: &[&str]) -> Reply {
        Reply::Chunks {
            content_type: "text/event-stream",
            chunks: events
                .iter()
                .map(|e| (Duration::ZERO, e.as_bytes().to_vec()))
                .collect(),
        }
    }
}

type Handler = dyn Fn(&Recorded) -> Reply + Send + Sync;

pub struct Upstream {
    pub url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn into_response(reply: Reply) -> futures_util::future::BoxFuture<'static, Response> {
    Box::pin(async move {
        match reply {
            Reply::Json(status, body, headers) => {
                let mut r = Response::new(Body::from(body.to_string()));
                *r.status_mut() = StatusCode::from_u16(status).unwrap();
                r.headers_mut()
                    .insert("content-type", HeaderValue::from_static("application/json"));
                for (k, v) in headers {
                    r.headers_mut().insert(
                        HeaderName::from_static(k),
                        HeaderValue::from_str(&v).unwrap(),
                    );
                }
                r
            }
            Reply::Chunks {
                content_type,
                chunks,
            } => {
                let stream =
                    futures_util::stream::unfold(chunks.into_iter(), |mut it| async move {
                        let (delay, bytes) = it.next()?;
                        if !delay.is_zero() {
                            tokio::time::sleep(delay).await;
                        }
                        Some((Ok::<_, std::io::Error>(Bytes::from(bytes)), it))
                    });
                let mut r = Response::new(Body::from_stream(stream));
                r.headers_mut()
                    .insert("content-type", HeaderValue::from_static(content_type));
                r
            }
            Reply::Delay(delay, reply) => {
                tokio::time::sleep(delay).await;
                into_response(*reply).await
            }
        }
    })
}

impl Upstream {
    /// Starts a server that answers every request with `handler`.
    pub fn start(handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Upstream {
        let handler: Arc<Handler> = Arc::new(handler);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let recorded = requests.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = axum::Router::new().fallback(move |req: Request| {
                    let handler = handler.clone();
                    let recorded = recorded.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
                        let request = Recorded {
                            method: parts.method.to_string(),
                            path: parts
                                .uri
                                .path_and_query()
                                .map(|p| p.to_string())
                                .unwrap_or_default(),
                            headers: parts.headers,
                            body,
                        };
                        let reply = handler(&request);
                        recorded.lock().unwrap().push(request);
                        into_response(reply).await
                    }
                });
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        Upstream {
            url,
            requests,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // A test that ends while the gateway still holds a streaming connection must not
        // hang here: the thread is detached if it does not stop promptly.
        if let Some(t) = self.thread.take() {
            let deadline = std::time::Instant::now() + Duration::from_secs(2);
            while !t.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

/// A loopback address where nothing listens (connection refused).
pub fn refused_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}
