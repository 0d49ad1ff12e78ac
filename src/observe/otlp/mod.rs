//! Export of request records as OpenTelemetry spans, over OTLP/HTTP with JSON bodies.
//!
//! The record writer hands each committed batch to [`OtlpExporter::export`], which only queues
//! it; a tokio task coalesces queued batches into POSTs of about [`SPANS_PER_POST`] spans. A
//! POST that fails for a reason that may pass (no connection, 429, 5xx) is retried a few times
//! with backoff; then, or at once on any other refusal, its spans are dropped and counted.
//! Telemetry never holds up the writer.

mod encode;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::api::logs::LogRecord;
use crate::observe::metrics::Metrics;
pub use encode::encode;
use encode::{span_count, spans_of};

const SPANS_PER_POST: usize = 512;
/// Beyond this many queued spans, new batches are dropped (and counted) rather than held.
const MAX_QUEUED_SPANS: usize = 16_384;
const MAX_RETRIES: u32 = 3;
/// Doubled at each retry, with jitter.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// A receiver's `Retry-After` is honoured up to this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
const POST_TIMEOUT: Duration = Duration::from_secs(10);
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

pub struct OtlpConfig {
    /// The receiver's base URL (`http://127.0.0.1:4318`), or its full `.../v1/traces` URL.
    pub endpoint: String,
    /// Sent with every POST, e.g. for authentication.
    pub headers: Vec<(String, String)>,
    pub service_name: String,
}

pub struct OtlpExporter {
    queue: mpsc::UnboundedSender<Vec<Arc<LogRecord>>>,
    queued_spans: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
    sender: JoinHandle<()>,
}

impl OtlpExporter {
    /// Must be called inside a tokio runtime; spawns the sender task.
    pub fn start(config: OtlpConfig, http: reqwest::Client, metrics: Arc<Metrics>) -> OtlpExporter {
        let (queue, batches) = mpsc::unbounded_channel();
        let queued_spans = Arc::new(AtomicUsize::new(0));
        let sender = Sender {
            url: traces_url(&config.endpoint),
            headers: header_map(&config.headers),
            service_name: config.service_name,
            http,
            metrics: metrics.clone(),
            queued_spans: queued_spans.clone(),
            failing: false,
        };
        OtlpExporter {
            queue,
            queued_spans,
            metrics,
            sender: tokio::spawn(sender.run(batches)),
        }
    }

    /// Queues the batch, or counts its spans as dropped when the queue is full. Never blocks.
    pub fn export(&self, batch: Vec<Arc<LogRecord>>) {
        let spans = span_count(&batch);
        if spans == 0 {
            return;
        }
        let queued = self.queued_spans.fetch_add(spans, Ordering::Relaxed);
        // An empty queue takes any batch, however large.
        let full = queued > 0 && queued + spans > MAX_QUEUED_SPANS;
        if full || self.queue.send(batch).is_err() {
            self.queued_spans.fetch_sub(spans, Ordering::Relaxed);
            self.metrics.otlp_dropped(spans as u64);
        }
    }

    /// Sends what is queued, giving up after 5 s; for graceful shutdown.
    pub async fn shutdown(self) {
        let OtlpExporter {
            queue, mut sender, ..
        } = self;
        drop(queue);
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut sender)
            .await
            .is_err()
        {
            sender.abort();
            eprintln!(
                "warning: OTLP export did not finish within 5 s; the spans still queued are lost"
            );
        }
    }
}

/// `{endpoint}/v1/traces`, unless the endpoint already is the traces URL.
fn traces_url(endpoint: &str) -> String {
    let endpoint = endpoint.trim_end_matches('/');
    if endpoint.ends_with("/v1/traces") {
        endpoint.to_string()
    } else {
        format!("{endpoint}/v1/traces")
    }
}

/// The configured headers; one that is not a valid header is left out with a warning (without
/// its value, which may be a secret).
fn header_map(headers: &[(String, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let parsed = HeaderName::from_bytes(name.as_bytes())
            .ok()
            .zip(HeaderValue::from_str(value).ok());
        match parsed {
            Some((name, mut value)) => {
                value.set_sensitive(true);
                map.append(name, value);
            }
            None => eprintln!("warning: OTLP header {name:?} is not a valid HTTP header; not sent"),
        }
    }
    map
}

/// The task that posts queued records.
struct Sender {
    url: String,
    headers: HeaderMap,
    service_name: String,
    http: reqwest::Client,
    metrics: Arc<Metrics>,
    queued_spans: Arc<AtomicUsize>,
    /// Whether the last POST failed, so that a failing receiver is reported once, not per POST.
    failing: bool,
}

/// Records taken off the queue, not yet posted.
#[derive(Default)]
struct Pending {
    records: VecDeque<Arc<LogRecord>>,
    spans: usize,
}

impl Pending {
    fn add(&mut self, batch: Vec<Arc<LogRecord>>) {
        self.spans += span_count(&batch);
        self.records.extend(batch);
    }

    /// The oldest records, up to [`SPANS_PER_POST`] spans (at least one record).
    fn next_post(&mut self) -> Vec<Arc<LogRecord>> {
        let mut post = Vec::new();
        let mut spans = 0;
        while let Some(record) = self.records.front() {
            let n = spans_of(record);
            if !post.is_empty() && spans + n > SPANS_PER_POST {
                break;
            }
            spans += n;
            post.extend(self.records.pop_front());
        }
        self.spans -= spans;
        post
    }
}

/// How one POST ended.
enum Posted {
    /// `rejected`: spans the receiver refused in a partial success.
    Accepted {
        rejected: u64,
    },
    Retryable {
        reason: String,
        retry_after: Option<Duration>,
    },
    Refused {
        reason: String,
    },
}

impl Sender {
    async fn run(mut self, mut batches: mpsc::UnboundedReceiver<Vec<Arc<LogRecord>>>) {
        let mut pending = Pending::default();
        loop {
            if pending.records.is_empty() {
                match batches.recv().await {
                    Some(batch) => self.take(&mut pending, batch),
                    None => return,
                }
            }
            while pending.spans < SPANS_PER_POST {
                match batches.try_recv() {
                    Ok(batch) => self.take(&mut pending, batch),
                    Err(_) => break,
                }
            }
            let post = pending.next_post();
            self.deliver(&post).await;
        }
    }

    fn take(&self, pending: &mut Pending, batch: Vec<Arc<LogRecord>>) {
        self.queued_spans
            .fetch_sub(span_count(&batch), Ordering::Relaxed);
        pending.add(batch);
    }

    async fn deliver(&mut self, records: &[Arc<LogRecord>]) {
        let spans = span_count(records) as u64;
        let body = serde_json::to_vec(&encode(records, &self.service_name))
            .expect("a JSON value serializes");
        let mut retries = 0;
        let failure = loop {
            match self.post(&body).await {
                Posted::Accepted { rejected } => {
                    let rejected = rejected.min(spans);
                    self.metrics.otlp_exported(spans - rejected);
                    self.metrics.otlp_dropped(rejected);
                    self.failing = false;
                    return;
                }
                Posted::Retryable { retry_after, .. } if retries < MAX_RETRIES => {
                    tokio::time::sleep(retry_after.unwrap_or_else(|| backoff(retries))).await;
                    retries += 1;
                }
                Posted::Retryable { reason, .. } | Posted::Refused { reason } => break reason,
            }
        };
        self.metrics.otlp_dropped(spans);
        if !self.failing {
            self.failing = true;
            eprintln!(
                "warning: OTLP export to {} failed ({failure}); its spans are dropped and counted in tollgate_otlp_spans_dropped_total",
                self.url
            );
        }
    }

    async fn post(&self, body: &[u8]) -> Posted {
        let sent = self
            .http
            .post(&self.url)
            .headers(self.headers.clone())
            .header(CONTENT_TYPE, "application/json")
            .timeout(POST_TIMEOUT)
            .body(body.to_vec())
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                return Posted::Retryable {
                    reason: e.to_string(),
                    retry_after: None,
                }
            }
        };
        let status = response.status();
        if status.is_success() {
            let answer: Option<Value> = response.json().await.ok();
            let rejected = answer.as_ref().and_then(rejected_spans).unwrap_or(0);
            return Posted::Accepted { rejected };
        }
        let reason = format!("the receiver answered {status}");
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            Posted::Retryable {
                retry_after: retry_after(response.headers()),
                reason,
            }
        } else {
            Posted::Refused { reason }
        }
    }
}

/// `partialSuccess.rejectedSpans` of an `ExportTraceServiceResponse` (an int64: a string, or a
/// number from lenient receivers).
fn rejected_spans(answer: &Value) -> Option<u64> {
    match answer.get("partialSuccess")?.get("rejectedSpans")? {
        Value::String(n) => n.parse().ok(),
        n => n.as_u64(),
    }
}

/// A `Retry-After` in seconds; its HTTP-date form is ignored (the backoff applies).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

/// The wait before retry number `retry + 1`: doubling from [`FIRST_BACKOFF`], ±50 % at random
/// so that exporters do not retry in step.
fn backoff(retry: u32) -> Duration {
    (FIRST_BACKOFF * 2u32.pow(retry)).mul_f64(rand::thread_rng().gen_range(0.5..1.5))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;
    use crate::observe::test_support::{attempt, custom, request, sample, store_taking_writes};

    /// A POST as the receiver read it: its head (request line and headers) and body.
    struct Received {
        head: String,
        body: Vec<u8>,
    }

    type Log = Arc<Mutex<Vec<Received>>>;

    /// A receiver answering every request with `status`; its URL and what it received.
    async fn receiver(status: u16) -> (String, Log) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let log = Log::default();
        let received = log.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(answer(stream, status, received.clone()));
            }
        });
        (url, log)
    }

    /// Reads HTTP/1.1 requests off one connection and answers each.
    async fn answer(stream: TcpStream, status: u16, log: Log) {
        let mut stream = BufReader::new(stream);
        loop {
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                if line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let length = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().unwrap())
                })
                .unwrap_or(0);
            let mut body = vec![0; length];
            stream.read_exact(&mut body).await.unwrap();
            log.lock().unwrap().push(Received { head, body });
            let reply = format!(
                "HTTP/1.1 {status} Status\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{{}}"
            );
            stream.get_mut().write_all(reply.as_bytes()).await.unwrap();
        }
    }

    fn exporter(url: String, metrics: &Arc<Metrics>) -> OtlpExporter {
        let config = OtlpConfig {
            endpoint: url,
            headers: vec![("Authorization".into(), "Bearer s3cret".into())],
            service_name: "gateway".into(),
        };
        OtlpExporter::start(config, reqwest::Client::new(), metrics.clone())
    }

    fn metric(metrics: &Metrics, name: &str) -> f64 {
        sample(&metrics.render(&store_taking_writes(0), 1), name).unwrap()
    }

    #[tokio::test]
    async fn queued_batches_are_posted_to_v1_traces_with_the_configured_headers() {
        let (url, log) = receiver(200).await;
        let metrics = Arc::new(Metrics::new());
        let exporter = exporter(url, &metrics);
        let mut retried = request();
        retried
            .attempts
            .push(attempt("2222222222222222", 900.0, 10.0, 200));
        exporter.export(vec![Arc::new(request()), Arc::new(custom())]);
        exporter.export(vec![Arc::new(retried)]);
        exporter.shutdown().await;

        let received = log.lock().unwrap();
        assert!(!received.is_empty());
        let mut spans = 0;
        for post in received.iter() {
            let head = post.head.to_ascii_lowercase();
            assert!(head.starts_with("post /v1/traces http/1.1\r\n"), "{head}");
            assert!(
                head.contains("\r\nauthorization: bearer s3cret\r\n"),
                "{head}"
            );
            assert!(
                head.contains("\r\ncontent-type: application/json\r\n"),
                "{head}"
            );
            let body: Value = serde_json::from_slice(&post.body).unwrap();
            spans += body["resourceSpans"][0]["scopeSpans"][0]["spans"]
                .as_array()
                .unwrap()
                .len();
        }
        assert_eq!(spans, 6);
        assert_eq!(metric(&metrics, "tollgate_otlp_spans_exported_total"), 6.0);
        assert_eq!(metric(&metrics, "tollgate_otlp_spans_dropped_total"), 0.0);
    }

    #[tokio::test]
    async fn spans_are_dropped_after_the_retries_or_at_once_when_refused() {
        // 500: the first POST and 3 retries; 400: refused, not retried.
        for (status, posts) in [(500, 4), (400, 1)] {
            let (url, log) = receiver(status).await;
            let metrics = Arc::new(Metrics::new());
            let exporter = exporter(format!("{url}/v1/traces"), &metrics);
            exporter.export(vec![Arc::new(request())]);
            exporter.shutdown().await;

            let received = log.lock().unwrap();
            assert_eq!(received.len(), posts, "{status}");
            assert!(received[0].head.starts_with("POST /v1/traces "));
            assert_eq!(metric(&metrics, "tollgate_otlp_spans_dropped_total"), 2.0);
            assert_eq!(metric(&metrics, "tollgate_otlp_spans_exported_total"), 0.0);
        }
    }

    #[test]
    fn the_traces_url_is_appended_unless_given() {
        assert_eq!(
            traces_url("http://127.0.0.1:4318"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            traces_url("https://otel.example/"),
            "https://otel.example/v1/traces"
        );
        assert_eq!(
            traces_url("https://otel.example/v1/traces"),
            "https://otel.example/v1/traces"
        );
    }

    #[test]
    fn posts_hold_about_512_spans_and_whole_records() {
        let mut four_spans = request();
        four_spans
            .attempts
            .push(attempt("2222222222222222", 0.0, 1.0, 200));
        four_spans
            .attempts
            .push(attempt("3333333333333333", 0.0, 1.0, 200));
        let mut five_spans = four_spans.clone();
        five_spans
            .attempts
            .push(attempt("4444444444444444", 0.0, 1.0, 200));
        let (four_spans, five_spans) = (Arc::new(four_spans), Arc::new(five_spans));

        let mut pending = Pending::default();
        pending.add(vec![four_spans.clone(); 150]);
        assert_eq!(pending.spans, 600);
        assert_eq!(span_count(&pending.next_post()), 512);
        assert_eq!(span_count(&pending.next_post()), 88);
        assert!(pending.records.is_empty());

        // A record never straddles two posts.
        pending.add(vec![four_spans; 127]);
        pending.add(vec![five_spans]);
        assert_eq!(span_count(&pending.next_post()), 508);
        assert_eq!(span_count(&pending.next_post()), 5);
        assert_eq!(pending.spans, 0);
    }

    #[test]
    fn partial_successes_and_retry_after_are_read() {
        let answer = serde_json::json!({"partialSuccess": {"rejectedSpans": "3"}});
        assert_eq!(rejected_spans(&answer), Some(3));
        assert_eq!(rejected_spans(&serde_json::json!({})), None);
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3600"));
        assert_eq!(retry_after(&headers), Some(MAX_RETRY_AFTER));
    }
}
