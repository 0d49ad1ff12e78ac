//! Gateway benchmark (issue 3): the data plane's overhead against a fast local upstream.
//!
//! Run: `cargo bench --bench gateway`. Cargo builds the package's binaries before its
//! benchmarks, so this also builds `target/release/tollgate` (the bench profile inherits the
//! release profile); `TOLLGATE_BIN=/path/to/tollgate` measures another build instead.
//!
//! What it does, on loopback only, every step bounded in time (about a minute in all):
//!
//! 1. starts a mock OpenAI upstream in a child process (this binary again, with
//!    `TOLLGATE_BENCH_ROLE=mock`), so its CPU is not counted as the gateway's;
//! 2. starts `tollgate serve --addr 127.0.0.1:0` with a temporary data and config dir, reads the
//!    admin key and the port, and creates the integration `mock` pointing at the upstream;
//! 3. closed loop: N keep-alive connections (default 32) send chat completions back to back
//!    for a warm-up and a measured window, through the gateway and then straight to the mock;
//!    requests/s, and the gateway's CPU per request from `/proc/PID/stat`;
//! 4. open loop: requests at fixed instants (default 100/s to each of gateway and mock,
//!    interleaved), latency measured from the scheduled instant, so a slow answer that delays
//!    the next send is charged to it (no coordinated omission); added p50/p99;
//! 5. streams: sequential `"stream": true` requests, alternating gateway and mock, each sent a
//!    fixed gap (default 5 ms) after the previous one ended; added time to the first body byte
//!    (the first SSE event);
//! 6. the gateway's peak RSS (`VmHWM`).
//!
//! It prints a table with the targets beside the figures and exits 0 whatever they are.
//! Without `--bench` (e.g. `cargo test --benches`) it does a quick check of a few seconds.
//!
//! Knobs (environment): `TOLLGATE_BENCH_CONC` (32), `TOLLGATE_BENCH_WARMUP` (2 s),
//! `TOLLGATE_BENCH_SECS` (10 s, closed loop), `TOLLGATE_BENCH_RATE` (100 req/s),
//! `TOLLGATE_BENCH_RATE_SECS` (10 s), `TOLLGATE_BENCH_STREAMS` (500 samples). The gateway runs with
//! a cleared environment; `TOKIO_WORKER_THREADS`, `TOLLGATE_LOG_BODIES` and `TOLLGATE_DATABASE_URL`
//! (an empty Postgres database), if set, are passed on to it. `TOLLGATE_BENCH_GOVERNED=1` gives the
//! calling key a monthly budget, a request rate limit and a model allow-list (none of them
//! reached), to measure what governance costs per request. `TOLLGATE_BENCH_GUARDED=1` gives it a
//! default config with five checks on the input and five on the output (three regexes, PII
//! detection and a word count), and `TOLLGATE_BENCH_PAD=N` adds N bytes of prose to the request's
//! user message, to measure what guardrails cost on a request of a given size.
//! `TOLLGATE_BENCH_CACHED=1` gives the key a default config with a simple cache, so every request
//! after the first of each kind is a cache hit, and prints the hits' server-side time from their
//! request records. `TOLLGATE_BENCH_PAIRED=N` measures instead, in N rounds of alternating
//! closed-loop phases (0.5 s warm-up and 2 s measured unless set), what that config adds per
//! request, or with `TOLLGATE_BENCH_BASELINE_BIN=PATH` what the build under test adds to the
//! gateway built at PATH (see `paired`).
//!
//! The load generator is deliberately small: pre-built requests written on raw sockets and
//! answers framed by `Content-Length` or chunked encoding, one tokio thread for the closed
//! loop, blocking sockets for the latency samples. Its own CPU, the mock's and the rest of the
//! machine's are printed, because all of them share the cores with the gateway.

use std::collections::{HashMap, VecDeque};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream as StdStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ROLE_ENV: &str = "TOLLGATE_BENCH_ROLE";
const IO_TIMEOUT: Duration = Duration::from_secs(10);

const MODEL: &str = "gpt-4o-mini";
const ANSWER: &str = "Hello from the bench upstream.";
const STREAM_PIECES: [&str; 5] = ["Hello", " from", " the", " bench", " upstream."];

/// Changes the bench's own key (`PUT /v1/api-keys/{id}` with `change`).
fn update_admin_key(
    addr: SocketAddr,
    admin_key: &str,
    change: &serde_json::Value,
) -> Result<(), String> {
    let auth = [("x-portkey-api-key", admin_key)];
    let own = build_request(addr, "GET", "/v1/api-keys/self", &auth, "");
    let (_, body) = request_once(addr, &own).map_err(|e| format!("reading the key: {e}"))?;
    let id = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["id"].as_str().map(String::from))
        .ok_or_else(|| format!("reading the key: {body}"))?;
    let put = build_request(
        addr,
        "PUT",
        &format!("/v1/api-keys/{id}"),
        &auth,
        &change.to_string(),
    );
    match request_once(addr, &put) {
        Ok((200, _)) => Ok(()),
        Ok((status, body)) => Err(format!("changing the key: {status} {body}")),
        Err(e) => Err(format!("changing the key: {e}")),
    }
}

/// A budget, a rate limit and a model rule on the bench's key, set high enough never to refuse.
fn govern_admin_key(addr: SocketAddr, admin_key: &str) -> Result<(), String> {
    let limits = serde_json::json!({
        "usage_limits": {"type": "cost", "credit_limit": 1e9, "periodic_reset": "monthly"},
        "rate_limits": [{"type": "requests", "unit": "rpm", "value": 1_000_000_000u64}],
        "allowed_models": ["@mock/*"],
    });
    update_admin_key(addr, admin_key, &limits)
}

/// The bench key's default config for the modes asked for: with `TOLLGATE_BENCH_GUARDED`, five
/// checks on the input and five on the output (three regexes, PII detection with redaction, a
/// word count; none fails on the bench's texts); with `TOLLGATE_BENCH_CACHED`, a simple cache.
/// Saved, so the gateway reads it once, not with every request.
fn bench_config() -> Option<serde_json::Value> {
    let mut config = serde_json::Map::new();
    if std::env::var_os("TOLLGATE_BENCH_GUARDED").is_some() {
        let check = |id: &str, parameters: serde_json::Value| serde_json::json!({"id": id, "parameters": parameters});
        let hook = serde_json::json!([{"checks": [
            check("default.regexMatch", serde_json::json!({"rule": "(?i)ignore (all|previous) instructions", "not": true})),
            check("default.regexMatch", serde_json::json!({"rule": "\\b\\d{3}-\\d{2}-\\d{4}\\b", "not": true})),
            check("default.regexMatch", serde_json::json!({"rule": "(?i)password\\s*[:=]", "not": true})),
            check("portkey.pii", serde_json::json!({"redact": true})),
            check("default.wordCount", serde_json::json!({"maxWords": 5000})),
        ]}]);
        config.insert("before_request_hooks".into(), hook.clone());
        config.insert("after_request_hooks".into(), hook);
    }
    if std::env::var_os("TOLLGATE_BENCH_CACHED").is_some() {
        config.insert(
            "cache".into(),
            serde_json::json!({"mode": "simple", "max_age": 86400}),
        );
    }
    (!config.is_empty()).then_some(serde_json::Value::Object(config))
}

/// Saves `config`; its slug.
fn save_config(
    addr: SocketAddr,
    admin_key: &str,
    config: serde_json::Value,
) -> Result<String, String> {
    let body = serde_json::json!({"name": "bench", "config": config}).to_string();
    let auth = [("x-portkey-api-key", admin_key)];
    let create = build_request(addr, "POST", "/v1/configs", &auth, &body);
    let (status, body) = request_once(addr, &create).map_err(|e| format!("config: {e}"))?;
    serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["data"]["slug"].as_str().map(String::from))
        .ok_or_else(|| format!("saving the bench config: {status} {body}"))
}

/// Saves `config` and makes it the bench key's default.
fn set_default_config(
    addr: SocketAddr,
    admin_key: &str,
    config: serde_json::Value,
) -> Result<(), String> {
    let slug = save_config(addr, admin_key, config)?;
    update_admin_key(
        addr,
        admin_key,
        &serde_json::json!({"defaults": {"config_id": slug}}),
    )
}

fn main() {
    if std::env::var(ROLE_ENV).as_deref() == Ok("mock") {
        mock::main();
        return;
    }
    let full = std::env::args().any(|a| a == "--bench");
    let settings = Settings::from_env(full);
    let procs = Arc::new(Procs::default());
    let _guard = KillOnDrop(procs.clone());
    {
        // A hang guard: children first, then this process.
        let procs = procs.clone();
        let limit = settings.hang_guard();
        thread::spawn(move || {
            thread::sleep(limit);
            eprintln!("gateway bench: still running after {limit:?}; stopping");
            procs.kill_all();
            std::process::exit(2);
        });
    }
    if let Err(e) = run(&settings, &procs) {
        eprintln!("gateway bench failed: {e}");
        procs.kill_all();
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------------------------
// Settings

struct Settings {
    full: bool,
    conc: usize,
    warmup: Duration,
    secs: Duration,
    rate: f64,
    rate_secs: f64,
    streams: usize,
    /// Rounds of the paired measurement (`TOLLGATE_BENCH_PAIRED`); 0 for the usual run.
    pairs: usize,
}

fn knob(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
        .unwrap_or(default)
}

impl Settings {
    fn from_env(full: bool) -> Settings {
        let pairs = knob("TOLLGATE_BENCH_PAIRED", 0.0) as usize;
        let (warmup, secs, rate_secs, streams) = match (full, pairs) {
            (true, 0) => (2.0, 10.0, 10.0, 500.0),
            (true, _) => (0.5, 2.0, 0.0, 0.0),
            (false, _) => (0.2, 1.0, 1.0, 20.0),
        };
        Settings {
            full,
            conc: knob("TOLLGATE_BENCH_CONC", 32.0).max(1.0) as usize,
            warmup: Duration::from_secs_f64(knob("TOLLGATE_BENCH_WARMUP", warmup)),
            secs: Duration::from_secs_f64(knob("TOLLGATE_BENCH_SECS", secs).max(0.1)),
            rate: knob("TOLLGATE_BENCH_RATE", 100.0).max(1.0),
            rate_secs: knob("TOLLGATE_BENCH_RATE_SECS", rate_secs).max(0.1),
            streams: knob("TOLLGATE_BENCH_STREAMS", streams).max(1.0) as usize,
            pairs,
        }
    }

    /// Twice the expected run time (streams allowed 50 ms each) plus a minute.
    fn hang_guard(&self) -> Duration {
        let closed = 2.0 * (self.warmup + self.secs).as_secs_f64() + 1.0;
        let open = 1.0 + self.rate_secs;
        let streams = 2.0 * (20 + self.streams) as f64 * 0.05;
        let paired = 2.0 * self.pairs as f64 * closed;
        Duration::from_secs_f64(60.0 + 2.0 * (closed + open + streams + paired))
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1 framing, just enough for both ends of the benchmark

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn bad(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_string())
}

/// A message head: its first line, its length (with the blank line) and its body framing.
struct Head<'a> {
    first: &'a str,
    len: usize,
    content_length: usize,
    chunked: bool,
}

fn head(buf: &[u8]) -> io::Result<Option<Head<'_>>> {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| bad("a head that is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let mut content_length = 0;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = value.parse().map_err(|_| bad("a bad content-length"))?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        }
    }
    Ok(Some(Head {
        first,
        len: end + 4,
        content_length,
        chunked,
    }))
}

/// Walks a chunked body: (some chunk data has arrived, the last chunk has arrived).
fn scan_chunked(body: &[u8]) -> io::Result<(bool, bool)> {
    let mut pos = 0;
    let mut started = false;
    loop {
        let Some(eol) = find(&body[pos..], b"\r\n") else {
            return Ok((started, false));
        };
        let line = std::str::from_utf8(&body[pos..pos + eol]).map_err(|_| bad("chunk size"))?;
        let digits = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(digits, 16).map_err(|_| bad("a bad chunk size"))?;
        let data = pos + eol + 2;
        if size == 0 {
            let rest = &body[data..];
            return Ok((
                started,
                rest.starts_with(b"\r\n") || find(rest, b"\r\n\r\n").is_some(),
            ));
        }
        started |= body.len() > data;
        if body.len() < data + size + 2 {
            return Ok((started, false));
        }
        pos = data + size + 2;
    }
}

/// How far a response in `buf` has arrived.
struct Progress {
    status: u16,
    head_len: usize,
    body_started: bool,
    complete: bool,
}

fn response_progress(buf: &[u8]) -> io::Result<Option<Progress>> {
    let Some(h) = head(buf)? else {
        return Ok(None);
    };
    let status = h
        .first
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("a bad status line"))?;
    let body = &buf[h.len..];
    let (body_started, complete) = if h.chunked {
        scan_chunked(body)?
    } else {
        (
            !body.is_empty() || h.content_length == 0,
            body.len() >= h.content_length,
        )
    };
    Ok(Some(Progress {
        status,
        head_len: h.len,
        body_started,
        complete,
    }))
}

fn build_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Vec<u8> {
    let mut text = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        text.push_str("content-type: application/json\r\n");
    }
    text.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    text.into_bytes()
}

/// `TOLLGATE_BENCH_PAD` bytes of prose, for requests of a chosen size.
fn padding() -> String {
    let n = knob("TOLLGATE_BENCH_PAD", 0.0) as usize;
    let prose = " The quick brown fox jumps over the lazy dog, then asks about the weather.";
    prose.chars().cycle().take(n).collect()
}

fn chat_body(model: &str, stream: bool) -> String {
    let mut body = serde_json::json!({
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a terse assistant."},
            {"role": "user", "content": format!("Say hello to the benchmark.{}", padding())}
        ],
        "max_tokens": 32,
    });
    if stream {
        body["stream"] = true.into();
        body["stream_options"] = serde_json::json!({"include_usage": true});
    }
    body.to_string()
}

// ---------------------------------------------------------------------------------------------
// The mock upstream (child process)

mod mock {
    use super::*;

    /// Every answer, framed once.
    struct Replies {
        json: Vec<u8>,
        /// Writes of a stream: the head with the first event, then one event per write.
        stream: Vec<Vec<u8>>,
    }

    fn chunk(data: &str) -> String {
        format!("{:x}\r\n{data}\r\n", data.len())
    }

    fn replies() -> Replies {
        let body = serde_json::json!({
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": MODEL,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": ANSWER, "refusal": null},
                "logprobs": null,
                "finish_reason": "stop"
            }],
            "usage": {"prompt_tokens": 21, "completion_tokens": 7, "total_tokens": 28},
            "system_fingerprint": "fp_bench"
        })
        .to_string();
        let json = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes();
        let event = |choices: serde_json::Value, usage: serde_json::Value| {
            let chunk = serde_json::json!({
                "id": "chatcmpl-bench",
                "object": "chat.completion.chunk",
                "created": 1_700_000_000,
                "model": MODEL,
                "choices": choices,
                "usage": usage,
            });
            format!("data: {chunk}\n\n")
        };
        let mut events: Vec<String> = STREAM_PIECES
            .iter()
            .enumerate()
            .map(|(i, piece)| {
                let delta = if i == 0 {
                    serde_json::json!({"role": "assistant", "content": piece})
                } else {
                    serde_json::json!({"content": piece})
                };
                let finish = (i + 1 == STREAM_PIECES.len()).then_some("stop");
                let choice = serde_json::json!({
                    "index": 0,
                    "delta": delta,
                    "logprobs": null,
                    "finish_reason": finish,
                });
                event(serde_json::json!([choice]), serde_json::Value::Null)
            })
            .collect();
        events.push(event(
            serde_json::json!([]),
            serde_json::json!({"prompt_tokens": 21, "completion_tokens": 5, "total_tokens": 26}),
        ));
        let mut stream: Vec<Vec<u8>> = events.iter().map(|e| chunk(e).into_bytes()).collect();
        let mut first = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        first.extend_from_slice(&stream[0]);
        stream[0] = first;
        stream.push(format!("{}0\r\n\r\n", chunk("data: [DONE]\n\n")).into_bytes());
        Replies { json, stream }
    }

    /// `"stream": true` anywhere in the body (compact or spaced).
    fn wants_stream(body: &[u8]) -> bool {
        let key = b"\"stream\"";
        let mut from = 0;
        while let Some(i) = find(&body[from..], key) {
            let rest = &body[from + i + key.len()..];
            let rest = rest.trim_ascii_start();
            if let Some(rest) = rest.strip_prefix(b":") {
                if rest.trim_ascii_start().starts_with(b"true") {
                    return true;
                }
            }
            from += i + key.len();
        }
        false
    }

    enum Route {
        Json,
        Stream,
        Stats,
        NotFound,
    }

    /// The next whole request in `buf`: its length and where it goes.
    fn next_request(buf: &[u8]) -> io::Result<Option<(usize, Route)>> {
        let Some(h) = head(buf)? else {
            return Ok(None);
        };
        if h.chunked {
            return Err(bad("chunked request bodies are not supported"));
        }
        let total = h.len + h.content_length;
        if buf.len() < total {
            return Ok(None);
        }
        let mut parts = h.first.split(' ');
        let route = match (parts.next(), parts.next()) {
            (Some("POST"), Some("/v1/chat/completions" | "/chat/completions")) => {
                if wants_stream(&buf[h.len..total]) {
                    Route::Stream
                } else {
                    Route::Json
                }
            }
            (Some("GET"), Some("/stats")) => Route::Stats,
            _ => Route::NotFound,
        };
        Ok(Some((total, route)))
    }

    async fn connection(
        mut socket: tokio::net::TcpStream,
        replies: Arc<Replies>,
        served: Arc<AtomicU64>,
    ) -> io::Result<()> {
        socket.set_nodelay(true)?;
        let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
        loop {
            while let Some((total, route)) = next_request(&buf)? {
                match route {
                    Route::Json => {
                        served.fetch_add(1, Ordering::Relaxed);
                        socket.write_all(&replies.json).await?;
                    }
                    Route::Stream => {
                        served.fetch_add(1, Ordering::Relaxed);
                        for piece in &replies.stream {
                            socket.write_all(piece).await?;
                        }
                    }
                    Route::Stats => {
                        let body = format!("{{\"requests\":{}}}", served.load(Ordering::Relaxed));
                        let reply = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        socket.write_all(reply.as_bytes()).await?;
                    }
                    Route::NotFound => {
                        socket
                            .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                            .await?;
                    }
                }
                buf.drain(..total);
            }
            if buf.capacity() - buf.len() < 4096 {
                buf.reserve(16 * 1024);
            }
            if socket.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        }
    }

    /// One tokio thread; prints its port, serves until its stdin closes (the parent is gone).
    pub fn main() {
        thread::spawn(|| {
            let _ = io::copy(&mut io::stdin(), &mut io::sink());
            std::process::exit(0);
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .expect("a tokio runtime");
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind a loopback port");
            let port = listener.local_addr().expect("a bound address").port();
            println!("{port}");
            let _ = io::stdout().flush();
            let replies = Arc::new(replies());
            let served = Arc::new(AtomicU64::new(0));
            loop {
                if let Ok((socket, _)) = listener.accept().await {
                    tokio::spawn(connection(socket, replies.clone(), served.clone()));
                }
            }
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Child processes

#[derive(Default)]
struct Procs(Mutex<Vec<Child>>);

impl Procs {
    fn add(&self, child: Child) -> u32 {
        let pid = child.id();
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(child);
        pid
    }

    fn kill_all(&self) {
        let children = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        for mut child in children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Kills every child when `main` returns or unwinds.
struct KillOnDrop(Arc<Procs>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.0.kill_all();
    }
}

/// Forwards a child's output lines to a channel (dropped when nobody listens) and keeps the
/// last few for error messages.
fn pump(
    reader: impl Read + Send + 'static,
    tail: Arc<Mutex<VecDeque<String>>>,
) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::sync_channel(64);
    thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            {
                let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
                if tail.len() == 20 {
                    tail.pop_front();
                }
                tail.push_back(line.clone());
            }
            let _ = tx.try_send(line);
        }
    });
    rx
}

struct Mock {
    addr: SocketAddr,
    pid: u32,
    /// Held open: the mock exits when it closes.
    _stdin: ChildStdin,
}

fn start_mock(procs: &Procs) -> Result<Mock, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut child = Command::new(exe)
        .env(ROLE_ENV, "mock")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start the mock upstream: {e}"))?;
    let stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    let pid = procs.add(child);
    let lines = pump(stdout, Arc::default());
    let port: u16 = lines
        .recv_timeout(Duration::from_secs(10))
        .map_err(|_| "the mock upstream did not print its port".to_string())?
        .trim()
        .parse()
        .map_err(|_| "the mock upstream printed a bad port".to_string())?;
    Ok(Mock {
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        pid,
        _stdin: stdin,
    })
}

struct Gateway {
    addr: SocketAddr,
    pid: u32,
    admin_key: String,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

impl Gateway {
    fn tail(&self) -> String {
        let tail = self.stderr_tail.lock().unwrap_or_else(|e| e.into_inner());
        tail.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

fn gateway_binary() -> PathBuf {
    std::env::var_os("TOLLGATE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_tollgate")))
}

/// Creates the integration `mock`, pointing at the mock upstream.
fn add_mock_integration(gw: &Gateway, mock: &Mock) -> Result<(), String> {
    let integration = serde_json::json!({
        "slug": "mock",
        "ai_provider_id": "openai",
        "key": "sk-bench",
        "configurations": {"custom_host": format!("http://{}/v1", mock.addr)},
    })
    .to_string();
    let create = build_request(
        gw.addr,
        "POST",
        "/v1/integrations",
        &[("x-portkey-api-key", &gw.admin_key)],
        &integration,
    );
    let (status, body) =
        request_once(gw.addr, &create).map_err(|e| format!("creating the integration: {e}"))?;
    if !(200..300).contains(&status) {
        return Err(format!("creating the integration: {status} {body}"));
    }
    Ok(())
}

fn start_gateway(procs: &Procs, bin: &Path, dir: &Path) -> Result<Gateway, String> {
    if !bin.exists() {
        return Err(format!(
            "{} is missing: run `cargo build --release` (or `cargo bench --bench gateway`, which builds it)",
            bin.display()
        ));
    }
    let mut command = Command::new(bin);
    command.env_clear();
    for passed in [
        "TOKIO_WORKER_THREADS",
        "TOLLGATE_LOG_BODIES",
        "TOLLGATE_DATABASE_URL",
    ] {
        if let Some(value) = std::env::var_os(passed) {
            command.env(passed, value);
        }
    }
    let mut child = command
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("TOLLGATE_DATA_DIR", dir.join("data"))
        .env("TOLLGATE_CONFIG_DIR", dir.join("config"))
        .env("TOLLGATE_NO_KEYRING", "1")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let pid = procs.add(child);
    let stderr_tail: Arc<Mutex<VecDeque<String>>> = Arc::default();
    let out = pump(stdout, Arc::default());
    let err = pump(stderr, stderr_tail.clone());
    let deadline = Instant::now() + Duration::from_secs(20);
    let admin_key = out
        .recv_timeout(Duration::from_secs(20))
        .map_err(|_| "the gateway printed no admin key on stdout".to_string())?
        .trim()
        .to_string();
    let addr = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = err
            .recv_timeout(left)
            .map_err(|_| "the gateway never said `listening on http://`".to_string())?;
        if let Some((_, rest)) = line.split_once("listening on http://") {
            let addr = rest.split_whitespace().next().unwrap_or_default();
            break addr
                .parse::<SocketAddr>()
                .map_err(|_| format!("cannot read the address in {line:?}"))?;
        }
    };
    Ok(Gateway {
        addr,
        pid,
        admin_key,
        stderr_tail,
    })
}

fn connect(addr: SocketAddr) -> io::Result<StdStream> {
    let conn = StdStream::connect(addr)?;
    conn.set_nodelay(true)?;
    conn.set_read_timeout(Some(IO_TIMEOUT))?;
    conn.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(conn)
}

/// When the first body byte and the end of a response arrived.
struct Timing {
    status: u16,
    first_byte: Instant,
    done: Instant,
}

/// Writes a request and reads its whole response on a blocking connection.
fn exchange_sync(conn: &mut StdStream, request: &[u8], buf: &mut Vec<u8>) -> io::Result<Timing> {
    conn.write_all(request)?;
    buf.clear();
    let mut chunk = [0u8; 16 * 1024];
    let mut first_byte = None;
    loop {
        let n = conn.read(&mut chunk)?;
        let now = Instant::now();
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = response_progress(buf)? {
            if p.body_started && first_byte.is_none() {
                first_byte = Some(now);
            }
            if p.complete {
                return Ok(Timing {
                    status: p.status,
                    first_byte: first_byte.unwrap_or(now),
                    done: now,
                });
            }
        }
    }
}

/// One request on a new connection: status and body (chunked bodies as they came).
fn request_once(addr: SocketAddr, request: &[u8]) -> io::Result<(u16, String)> {
    let mut conn = connect(addr)?;
    let mut buf = Vec::new();
    let timing = exchange_sync(&mut conn, request, &mut buf)?;
    let head_len = response_progress(&buf)?.map_or(0, |p| p.head_len);
    Ok((
        timing.status,
        String::from_utf8_lossy(&buf[head_len..]).into_owned(),
    ))
}

fn mock_served(mock: SocketAddr) -> u64 {
    let request = build_request(mock, "GET", "/stats", &[], "");
    request_once(mock, &request)
        .ok()
        .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(&body).ok())
        .and_then(|v| v["requests"].as_u64())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// /proc

fn clock_ticks_per_sec() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of a whole process (all its threads), in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    cpu_ticks_of(&pid.to_string())
}

/// utime + stime of `/proc/{path}/stat` (a process or one of its threads), in clock ticks.
fn cpu_ticks_of(path: &str) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{path}/stat")) else {
        return 0;
    };
    let Some(close) = stat.rfind(')') else {
        return 0;
    };
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // After "pid (comm)": state is field 3, utime 14, stime 15.
    field(11) + field(12)
}

/// utime + stime of a process's threads named `name`, in clock ticks.
fn thread_ticks(pid: u32, name: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| {
            let comm = std::fs::read_to_string(t.path().join("comm")).ok()?;
            let tid: u32 = t.file_name().to_str()?.parse().ok()?;
            (comm.trim_end() == name).then(|| cpu_ticks_of(&format!("{pid}/task/{tid}")))
        })
        .sum()
}

fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// Idle and steal ticks of the whole machine (`/proc/stat`).
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(cpu) = stat.lines().next() else {
        return (0, 0);
    };
    let v: Vec<u64> = cpu
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal
    (at(3) + at(4), at(7))
}

/// CPU ticks of every process but the three of the benchmark (kernel threads included).
fn others_ticks(pids: Pids) -> HashMap<u32, u64> {
    let ours = [pids.gateway, pids.mock, std::process::id()];
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| !ours.contains(pid))
        .map(|pid| (pid, cpu_ticks(pid)))
        .collect()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into())
}

#[derive(Clone, Copy)]
struct Pids {
    gateway: u32,
    mock: u32,
}

struct Snap {
    at: Instant,
    gateway: u64,
    /// The gateway's request-record writer thread.
    recorder: u64,
    mock: u64,
    me: u64,
    others: HashMap<u32, u64>,
    idle: u64,
    steal: u64,
}

fn snap(pids: Pids) -> Snap {
    let (idle, steal) = machine_ticks();
    Snap {
        at: Instant::now(),
        gateway: cpu_ticks(pids.gateway),
        // The intake and `tollgate-recorder` (cut to the kernel's 15 characters of a
        // thread's name) threads.
        recorder: thread_ticks(pids.gateway, "tollgate-intake")
            + thread_ticks(pids.gateway, "tollgate-record"),
        mock: cpu_ticks(pids.mock),
        me: cpu_ticks(std::process::id()),
        others: others_ticks(pids),
        idle,
        steal,
    }
}

/// CPU seconds over a window.
struct Usage {
    secs: f64,
    gateway: f64,
    recorder: f64,
    mock: f64,
    me: f64,
    /// Every other process, kernel threads included (processes that ended in the window are
    /// missed).
    other: f64,
    /// Idle time of all CPUs together.
    idle: f64,
    steal: f64,
}

fn usage(a: &Snap, b: &Snap, hz: f64) -> Usage {
    let d = |x: u64, y: u64| y.saturating_sub(x) as f64 / hz;
    let other = b
        .others
        .iter()
        .map(|(pid, t)| d(a.others.get(pid).copied().unwrap_or(0), *t))
        .sum();
    Usage {
        secs: (b.at - a.at).as_secs_f64(),
        gateway: d(a.gateway, b.gateway),
        recorder: d(a.recorder, b.recorder),
        mock: d(a.mock, b.mock),
        me: d(a.me, b.me),
        other,
        idle: d(a.idle, b.idle),
        steal: d(a.steal, b.steal),
    }
}

// ---------------------------------------------------------------------------------------------
// Measurements

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[derive(Default)]
struct Flags {
    stop: AtomicBool,
    measuring: AtomicBool,
    done: AtomicU64,
}

async fn exchange(
    conn: &mut tokio::net::TcpStream,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> io::Result<u16> {
    conn.write_all(request).await?;
    buf.clear();
    loop {
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(16 * 1024);
        }
        if conn.read_buf(buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if let Some(p) = response_progress(buf)? {
            if p.complete {
                return Ok(p.status);
            }
        }
    }
}

/// One connection of the closed loop: latencies of the measured 200s, and errors.
async fn worker(addr: SocketAddr, request: Arc<[u8]>, flags: Arc<Flags>) -> (Vec<Duration>, u64) {
    let mut latencies = Vec::with_capacity(64 * 1024);
    let mut errors = 0;
    let mut conn: Option<tokio::net::TcpStream> = None;
    let mut buf = Vec::with_capacity(16 * 1024);
    while !flags.stop.load(Ordering::Relaxed) {
        if conn.is_none() {
            match tokio::net::TcpStream::connect(addr).await {
                Ok(c) => {
                    let _ = c.set_nodelay(true);
                    conn = Some(c);
                }
                Err(_) => {
                    errors += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let c = conn.as_mut().expect("connected above");
        let start = Instant::now();
        match exchange(c, &request, &mut buf).await {
            Ok(200) => {
                flags.done.fetch_add(1, Ordering::Relaxed);
                if flags.measuring.load(Ordering::Relaxed) {
                    latencies.push(start.elapsed());
                }
            }
            Ok(_) => errors += 1,
            Err(_) => {
                errors += 1;
                conn = None;
            }
        }
    }
    (latencies, errors)
}

struct ClosedLoop {
    /// 200s completed in the measured window.
    requests: u64,
    /// 200s over the whole loop, warm-up included.
    total: u64,
    errors: u64,
    usage: Usage,
    latencies: Vec<Duration>,
}

impl ClosedLoop {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.usage.secs
    }
}

fn closed_loop(
    s: &Settings,
    addr: SocketAddr,
    request: &[u8],
    pids: Pids,
    hz: f64,
) -> Result<ClosedLoop, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let request: Arc<[u8]> = request.into();
    runtime.block_on(async {
        let flags = Arc::new(Flags::default());
        let workers: Vec<_> = (0..s.conc)
            .map(|_| tokio::spawn(worker(addr, request.clone(), flags.clone())))
            .collect();
        tokio::time::sleep(s.warmup).await;
        let (d0, s0) = (flags.done.load(Ordering::Relaxed), snap(pids));
        flags.measuring.store(true, Ordering::Relaxed);
        tokio::time::sleep(s.secs).await;
        flags.measuring.store(false, Ordering::Relaxed);
        let (d1, s1) = (flags.done.load(Ordering::Relaxed), snap(pids));
        flags.stop.store(true, Ordering::Relaxed);
        let mut latencies = Vec::new();
        let mut errors = 0;
        for w in workers {
            let abort = w.abort_handle();
            match tokio::time::timeout(Duration::from_secs(5), w).await {
                Ok(Ok((l, e))) => {
                    latencies.extend(l);
                    errors += e;
                }
                _ => {
                    abort.abort();
                    errors += 1;
                }
            }
        }
        latencies.sort_unstable();
        Ok(ClosedLoop {
            requests: d1 - d0,
            total: flags.done.load(Ordering::Relaxed),
            errors,
            usage: usage(&s0, &s1, hz),
            latencies,
        })
    })
}

/// Sleeps until shortly before `t`, then spins to it (a plain sleep wakes up to ~0.1 ms late).
fn wait_until(t: Instant) {
    loop {
        let now = Instant::now();
        if now >= t {
            return;
        }
        let left = t - now;
        if left > Duration::from_micros(400) {
            thread::sleep(left - Duration::from_micros(300));
        } else {
            std::hint::spin_loop();
        }
    }
}

struct OpenLoop {
    gateway: Vec<Duration>,
    direct: Vec<Duration>,
    errors: u64,
    gateway_cpu_us: f64,
    /// How late the worst send left after its scheduled instant.
    worst_send_delay: Duration,
}

/// Requests at fixed instants, alternating gateway and mock (each at `rate`), one blocking
/// connection each; latency runs from the scheduled instant to the last byte of the answer.
fn open_loop(s: &Settings, targets: [(&[u8], SocketAddr); 2], pids: Pids, hz: f64) -> OpenLoop {
    let mut conns: [Option<StdStream>; 2] = [None, None];
    let mut buf = Vec::with_capacity(16 * 1024);
    let slot = Duration::from_secs_f64(1.0 / (2.0 * s.rate));
    let warm_slots = (2.0 * s.rate).ceil() as usize; // one second
    let slots = warm_slots + (2.0 * s.rate * s.rate_secs).round() as usize;
    let mut out = OpenLoop {
        gateway: Vec::new(),
        direct: Vec::new(),
        errors: 0,
        gateway_cpu_us: 0.0,
        worst_send_delay: Duration::ZERO,
    };
    let mut cpu0 = 0;
    let t0 = Instant::now() + Duration::from_millis(20);
    for k in 0..slots {
        if k == warm_slots {
            cpu0 = cpu_ticks(pids.gateway);
        }
        let which = k % 2;
        let (request, addr) = targets[which];
        let scheduled = t0 + slot * k as u32;
        wait_until(scheduled);
        if k >= warm_slots {
            out.worst_send_delay = out.worst_send_delay.max(scheduled.elapsed());
        }
        if conns[which].is_none() {
            match connect(addr) {
                Ok(c) => conns[which] = Some(c),
                Err(_) => {
                    out.errors += 1;
                    continue;
                }
            }
        }
        let conn = conns[which].as_mut().expect("connected above");
        match exchange_sync(conn, request, &mut buf) {
            Ok(t) if t.status == 200 => {
                if k >= warm_slots {
                    let latency = t.done - scheduled;
                    [&mut out.gateway, &mut out.direct][which].push(latency);
                }
            }
            Ok(_) => out.errors += 1,
            Err(_) => {
                out.errors += 1;
                conns[which] = None;
            }
        }
    }
    let gateway_ticks = cpu_ticks(pids.gateway).saturating_sub(cpu0) as f64;
    out.gateway_cpu_us = gateway_ticks / hz * 1e6 / out.gateway.len().max(1) as f64;
    out.gateway.sort_unstable();
    out.direct.sort_unstable();
    out
}

struct Streams {
    gateway_ttfb: Vec<Duration>,
    direct_ttfb: Vec<Duration>,
    gateway_total: Vec<Duration>,
    direct_total: Vec<Duration>,
    errors: u64,
}

/// Sequential stream requests, alternating gateway and mock on one keep-alive connection each.
/// Each is sent a fixed gap after the previous one ended (half the open loop's interval), so
/// both see a request about as often as in the open loop whatever the other's stream takes.
fn streams(s: &Settings, targets: [(&[u8], SocketAddr); 2]) -> Streams {
    let mut conns: [Option<StdStream>; 2] = [None, None];
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut out = Streams {
        gateway_ttfb: Vec::new(),
        direct_ttfb: Vec::new(),
        gateway_total: Vec::new(),
        direct_total: Vec::new(),
        errors: 0,
    };
    let warm = 20;
    let gap = Duration::from_secs_f64(1.0 / (2.0 * s.rate));
    let mut next = Instant::now();
    for i in 0..warm + s.streams {
        for (which, (request, addr)) in targets.iter().enumerate() {
            wait_until(next);
            next = Instant::now() + gap;
            if conns[which].is_none() {
                match connect(*addr) {
                    Ok(c) => conns[which] = Some(c),
                    Err(_) => {
                        out.errors += 1;
                        continue;
                    }
                }
            }
            let conn = conns[which].as_mut().expect("connected above");
            let start = Instant::now();
            match exchange_sync(conn, request, &mut buf) {
                Ok(t) if t.status == 200 => {
                    if i >= warm {
                        let (ttfb, total) = if which == 0 {
                            (&mut out.gateway_ttfb, &mut out.gateway_total)
                        } else {
                            (&mut out.direct_ttfb, &mut out.direct_total)
                        };
                        ttfb.push(t.first_byte - start);
                        total.push(t.done - start);
                    }
                    next = t.done + gap;
                }
                Ok(_) => out.errors += 1,
                Err(_) => {
                    out.errors += 1;
                    conns[which] = None;
                }
            }
        }
    }
    for v in [
        &mut out.gateway_ttfb,
        &mut out.direct_ttfb,
        &mut out.gateway_total,
        &mut out.direct_total,
    ] {
        v.sort_unstable();
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The run

fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "MISSED"
    }
}

fn run(s: &Settings, procs: &Procs) -> Result<(), String> {
    let hz = clock_ticks_per_sec();
    let bin = gateway_binary();
    let load_before = load_average();
    let dir = tempfile::Builder::new()
        .prefix("tollgate-bench-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;
    let mock = start_mock(procs)?;
    let gw = start_gateway(procs, &bin, dir.path())?;
    let pids = Pids {
        gateway: gw.pid,
        mock: mock.pid,
    };

    add_mock_integration(&gw, &mock)?;
    if std::env::var_os("TOLLGATE_BENCH_GOVERNED").is_some() {
        govern_admin_key(gw.addr, &gw.admin_key)?;
    }
    if s.pairs > 0 {
        return paired(s, procs, &gw, &mock, hz);
    }
    if let Some(config) = bench_config() {
        set_default_config(gw.addr, &gw.admin_key, config)?;
    }
    let cached = std::env::var_os("TOLLGATE_BENCH_CACHED").is_some();
    let direct_headers = [("authorization", "Bearer sk-bench")];
    let path = "/v1/chat/completions";
    let gw_json = chat_request(&gw, false, &[]);
    let gw_stream = chat_request(&gw, true, &[]);
    let direct_json = build_request(
        mock.addr,
        "POST",
        path,
        &direct_headers,
        &chat_body(MODEL, false),
    );
    let direct_stream = build_request(
        mock.addr,
        "POST",
        path,
        &direct_headers,
        &chat_body(MODEL, true),
    );
    for (name, addr, request, expect) in [
        ("chat", gw.addr, &gw_json, ANSWER),
        ("stream", gw.addr, &gw_stream, "[DONE]"),
        ("direct chat", mock.addr, &direct_json, ANSWER),
        ("direct stream", mock.addr, &direct_stream, "[DONE]"),
    ] {
        let (status, body) =
            request_once(addr, request).map_err(|e| format!("check {name}: {e}"))?;
        if status != 200 || !body.contains(expect) {
            return Err(format!(
                "check {name}: {status} {body}\ngateway stderr:\n{}",
                gw.tail()
            ));
        }
    }
    let idle_rss = status_kib(gw.pid, "VmRSS:").unwrap_or(0);

    println!(
        "tollgate gateway benchmark{}",
        if s.full {
            ""
        } else {
            " (quick check: `cargo bench --bench gateway` for figures)"
        }
    );
    let workers = std::env::var("TOKIO_WORKER_THREADS").unwrap_or_else(|_| "one per CPU".into());
    println!(
        "  gateway  {} (pid {}, tokio workers: {workers})",
        bin.display(),
        gw.pid
    );
    println!(
        "  machine  {} CPUs, {}; load average before the run: {load_before}",
        thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model()
    );
    println!(
        "  settings {} connections, {:.1} s warm-up + {:.1} s closed loop; {} req/s for {:.1} s open loop; {} stream samples",
        s.conc,
        s.warmup.as_secs_f64(),
        s.secs.as_secs_f64(),
        s.rate,
        s.rate_secs,
        s.streams
    );
    let _ = io::stdout().flush();

    let served0 = mock_served(mock.addr);
    let gw_loop = closed_loop(s, gw.addr, &gw_json, pids, hz)?;
    let upstream_per_ok = (mock_served(mock.addr) - served0) as f64 / gw_loop.total.max(1) as f64;
    thread::sleep(Duration::from_millis(300));
    let direct_loop = closed_loop(s, mock.addr, &direct_json, pids, hz)?;
    thread::sleep(Duration::from_millis(300));
    let open = open_loop(
        s,
        [(&gw_json, gw.addr), (&direct_json, mock.addr)],
        pids,
        hz,
    );
    let stream = streams(s, [(&gw_stream, gw.addr), (&direct_stream, mock.addr)]);
    let hwm_kib = status_kib(gw.pid, "VmHWM:").unwrap_or(0);
    let rss_kib = status_kib(gw.pid, "VmRSS:").unwrap_or(0);
    let load_after = load_average();

    // The table.
    let cpu_us = gw_loop.usage.gateway * 1e6 / gw_loop.requests.max(1) as f64;
    let (gp50, gp99) = (
        percentile(&open.gateway, 0.5),
        percentile(&open.gateway, 0.99),
    );
    let (dp50, dp99) = (
        percentile(&open.direct, 0.5),
        percentile(&open.direct, 0.99),
    );
    let added_p50 = ms(gp50) - ms(dp50);
    let added_p99 = ms(gp99) - ms(dp99);
    let (gt50, gt99) = (
        percentile(&stream.gateway_ttfb, 0.5),
        percentile(&stream.gateway_ttfb, 0.99),
    );
    let (dt50, dt99) = (
        percentile(&stream.direct_ttfb, 0.5),
        percentile(&stream.direct_ttfb, 0.99),
    );
    let added_t50 = ms(gt50) - ms(dt50);
    let added_t99 = ms(gt99) - ms(dt99);
    let hwm_mb = hwm_kib as f64 * 1024.0 / 1e6;
    let rows: Vec<[String; 6]> = vec![
        [
            format!("requests/s, {} connections", s.conc),
            thousands(gw_loop.rps()),
            thousands(direct_loop.rps()),
            "-".into(),
            ">= 15,000".into(),
            verdict(gw_loop.rps() >= 15_000.0).into(),
        ],
        [
            "gateway CPU per request".into(),
            format!("{cpu_us:.1} µs"),
            "-".into(),
            "-".into(),
            "<= 50 µs".into(),
            verdict(cpu_us <= 50.0).into(),
        ],
        [
            format!("latency p50 at {} req/s", s.rate),
            format!("{:.3} ms", ms(gp50)),
            format!("{:.3} ms", ms(dp50)),
            format!("{added_p50:.3} ms"),
            "-".into(),
            "".into(),
        ],
        [
            format!("latency p99 at {} req/s", s.rate),
            format!("{:.3} ms", ms(gp99)),
            format!("{:.3} ms", ms(dp99)),
            format!("{added_p99:.3} ms"),
            "added <= 1 ms".into(),
            verdict(added_p99 <= 1.0).into(),
        ],
        [
            "stream TTFB median".into(),
            format!("{:.3} ms", ms(gt50)),
            format!("{:.3} ms", ms(dt50)),
            format!("{added_t50:.3} ms"),
            "added <= 0.5 ms".into(),
            verdict(added_t50 <= 0.5).into(),
        ],
        [
            "stream TTFB p99".into(),
            format!("{:.3} ms", ms(gt99)),
            format!("{:.3} ms", ms(dt99)),
            format!("{added_t99:.3} ms"),
            "-".into(),
            "".into(),
        ],
        [
            "gateway peak RSS (VmHWM)".into(),
            format!("{hwm_mb:.1} MB"),
            "-".into(),
            "-".into(),
            "<= 40 MB".into(),
            verdict(hwm_mb <= 40.0).into(),
        ],
    ];
    let header = ["measure", "gateway", "direct", "added", "target", ""];
    let widths: Vec<usize> = (0..6)
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .chain([header[c].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: [&str; 6]| {
        let mut out = format!("{:<w$}", cells[0], w = widths[0]);
        for c in 1..6 {
            let pad = widths[c] - cells[c].chars().count();
            out.push_str("  ");
            if c < 4 {
                out.push_str(&" ".repeat(pad));
                out.push_str(cells[c]);
            } else {
                out.push_str(cells[c]);
                out.push_str(&" ".repeat(pad));
            }
        }
        out.trim_end().to_string()
    };
    println!();
    println!("{}", line(header));
    for r in &rows {
        println!("{}", line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]]));
    }

    // What else was going on.
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    let describe = |name: &str, l: &ClosedLoop| {
        let u = &l.usage;
        println!(
            "  closed loop, {name}: {} ok in {:.2} s, {} errors; latency p50 {:.3} ms, p99 {:.3} ms",
            l.requests,
            u.secs,
            l.errors,
            ms(percentile(&l.latencies, 0.5)),
            ms(percentile(&l.latencies, 0.99)),
        );
        println!(
            "    CPU s: gateway {:.2}, load generator {:.2} ({:.1} µs/req), mock {:.2}, other processes {:.2}, idle {:.2} of {:.0}, steal {:.2}",
            u.gateway,
            u.me,
            u.me * 1e6 / l.requests.max(1) as f64,
            u.mock,
            u.other,
            u.idle,
            u.secs * cpus as f64,
            u.steal
        );
        if u.recorder > 0.0 {
            println!(
                "    recorder threads: {:.2} CPU s, {:.1} µs per request",
                u.recorder,
                u.recorder * 1e6 / l.requests.max(1) as f64
            );
        }
    };
    println!();
    describe("gateway", &gw_loop);
    println!("    upstream requests per gateway 200: {upstream_per_ok:.2}");
    describe("direct", &direct_loop);
    let over_1ms = |v: &[Duration]| v.iter().filter(|d| **d > Duration::from_millis(1)).count();
    println!(
        "  open loop: {} + {} samples, {} errors; over 1 ms: gateway {}, direct {}; worst send delay {:.3} ms; gateway CPU {:.0} µs/req at this rate",
        open.gateway.len(),
        open.direct.len(),
        open.errors,
        over_1ms(&open.gateway),
        over_1ms(&open.direct),
        ms(open.worst_send_delay),
        open.gateway_cpu_us
    );
    println!(
        "  streams: {} + {} samples, {} errors; time to [DONE] median gateway {:.3} ms, direct {:.3} ms",
        stream.gateway_ttfb.len(),
        stream.direct_ttfb.len(),
        stream.errors,
        ms(percentile(&stream.gateway_total, 0.5)),
        ms(percentile(&stream.direct_total, 0.5)),
    );
    println!(
        "  gateway RSS: {:.1} MB idle after start, {:.1} MB at the end, peak {hwm_mb:.1} MB ({:.1} MiB)",
        idle_rss as f64 * 1024.0 / 1e6,
        rss_kib as f64 * 1024.0 / 1e6,
        hwm_kib as f64 / 1024.0
    );
    if cached {
        cache_hit_times(gw.addr, &gw.admin_key)?;
    }
    println!("  load average after the run: {load_after}");
    Ok(())
}

/// The server-side time of the newest 1,000 cache hits: their records' `latency_ms`, from the
/// request's arrival to its record being handed on (the body is then sent).
fn cache_hit_times(addr: SocketAddr, admin_key: &str) -> Result<(), String> {
    let auth = [("x-portkey-api-key", admin_key)];
    let query = "/v1/logs?cache_status=HIT&limit=1000";
    let (status, body) = request_once(addr, &build_request(addr, "GET", query, &auth, ""))
        .map_err(|e| format!("reading the hits' records: {e}"))?;
    let page: serde_json::Value = serde_json::from_str(&body)
        .map_err(|e| format!("reading the hits' records: {status} {e}"))?;
    let mut times: Vec<Duration> = page["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["latency_ms"].as_f64())
        .map(|ms| Duration::from_secs_f64(ms / 1000.0))
        .collect();
    times.sort();
    println!(
        "  cache hits, server-side time of the newest {}: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        times.len(),
        percentile(&times, 0.5).as_secs_f64() * 1e6,
        percentile(&times, 0.99).as_secs_f64() * 1e6,
        times.last().copied().unwrap_or_default().as_secs_f64() * 1e6,
    );
    Ok(())
}

/// One side of a paired measurement: a gateway and the request sent to it.
struct Side<'a> {
    label: &'static str,
    gw: &'a Gateway,
    request: Vec<u8>,
}

/// The bench's chat request to `gw` for the integration `mock`, with `headers` besides its
/// authorization.
fn chat_request(gw: &Gateway, stream: bool, headers: &[(&str, &str)]) -> Vec<u8> {
    let auth = format!("Bearer {}", gw.admin_key);
    let mut all = vec![("authorization", auth.as_str())];
    all.extend_from_slice(headers);
    let body = chat_body(&format!("@mock/{MODEL}"), stream);
    build_request(gw.addr, "POST", "/v1/chat/completions", &all, &body)
}

/// `TOLLGATE_BENCH_PAIRED=N`: N rounds of two closed-loop phases, one per side, the order
/// flipped every round. Separate runs drift apart with the host's speed by more than the
/// differences under test; phases seconds apart share it. Each phase's warm-up keeps the
/// writer's commits of the phase before out of its window. The sides:
/// - by default, plain requests against requests naming the bench's config (guardrails,
///   cache) in `x-portkey-config`, in the one gateway: what the config adds;
/// - with `TOLLGATE_BENCH_BASELINE_BIN=PATH`, the same requests (with the bench's config as
///   the key's default, if any) to a gateway started from PATH and to the one under test:
///   what the build under test adds to the baseline's (such as recording, against a build
///   that records nothing).
fn paired(s: &Settings, procs: &Procs, gw: &Gateway, mock: &Mock, hz: f64) -> Result<(), String> {
    let baseline_dir = tempfile::Builder::new()
        .prefix("tollgate-bench-baseline-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;
    let baseline;
    let baseline_bin = std::env::var_os("TOLLGATE_BENCH_BASELINE_BIN");
    let configured = baseline_bin.is_none();
    let sides = match baseline_bin {
        Some(bin) => {
            baseline = start_gateway(procs, Path::new(&bin), baseline_dir.path())?;
            add_mock_integration(&baseline, mock)?;
            if std::env::var_os("TOLLGATE_BENCH_GOVERNED").is_some() {
                govern_admin_key(baseline.addr, &baseline.admin_key)?;
            }
            for g in [gw, &baseline] {
                if let Some(config) = bench_config() {
                    set_default_config(g.addr, &g.admin_key, config)?;
                }
            }
            [
                Side {
                    label: "baseline",
                    gw: &baseline,
                    request: chat_request(&baseline, false, &[]),
                },
                Side {
                    label: "build",
                    gw,
                    request: chat_request(gw, false, &[]),
                },
            ]
        }
        None => {
            let config = bench_config().ok_or(
                "TOLLGATE_BENCH_PAIRED compares requests without and with the bench's config: \
                 set TOLLGATE_BENCH_GUARDED=1 or TOLLGATE_BENCH_CACHED=1, or give a \
                 TOLLGATE_BENCH_BASELINE_BIN to compare with",
            )?;
            let slug = save_config(gw.addr, &gw.admin_key, config)?;
            [
                Side {
                    label: "plain",
                    gw,
                    request: chat_request(gw, false, &[]),
                },
                Side {
                    label: "configured",
                    gw,
                    request: chat_request(gw, false, &[("x-portkey-config", &slug)]),
                },
            ]
        }
    };
    for side in &sides {
        let (status, answer) = request_once(side.gw.addr, &side.request)
            .map_err(|e| format!("check {}: {e}", side.label))?;
        if status != 200 || !answer.contains(ANSWER) {
            return Err(format!(
                "check {}: {status} {answer}\n{}",
                side.label,
                side.gw.tail()
            ));
        }
    }
    let [a, b] = &sides;
    println!(
        "tollgate gateway benchmark, paired: {} ({}) against {} ({})",
        a.label, a.gw.pid, b.label, b.gw.pid
    );
    println!(
        "  {} connections; each phase {:.1} s warm-up + {:.1} s measured; load average before: {}",
        s.conc,
        s.warmup.as_secs_f64(),
        s.secs.as_secs_f64(),
        load_average()
    );
    println!(
        "  round   gateway CPU µs/req: {} then {}, added   (recorder threads µs/req)",
        a.label, b.label
    );
    // Gateway CPU and recorder threads per request over one phase.
    let phase = |side: &Side| -> Result<(f64, f64), String> {
        let pids = Pids {
            gateway: side.gw.pid,
            mock: mock.pid,
        };
        let l = closed_loop(s, side.gw.addr, &side.request, pids, hz)?;
        if l.errors > 0 {
            return Err(format!("{} requests failed\n{}", l.errors, side.gw.tail()));
        }
        let n = l.requests.max(1) as f64;
        Ok((l.usage.gateway * 1e6 / n, l.usage.recorder * 1e6 / n))
    };
    let mut added = Vec::with_capacity(s.pairs);
    for round in 1..=s.pairs {
        let (pa, pb) = if round % 2 == 1 {
            let pa = phase(a)?;
            (pa, phase(b)?)
        } else {
            let pb = phase(b)?;
            (phase(a)?, pb)
        };
        println!(
            "  {round:5}   {:8.1} {:8.1} {:8.1}   ({:.1}, {:.1})",
            pa.0,
            pb.0,
            pb.0 - pa.0,
            pa.1,
            pb.1
        );
        added.push(pb.0 - pa.0);
    }
    added.sort_by(f64::total_cmp);
    let median = added[added.len() / 2];
    let mean = added.iter().sum::<f64>() / added.len() as f64;
    println!(
        "  {} adds per request: median {median:.1} µs, mean {mean:.1} µs, {:.1} to {:.1} µs over {} rounds",
        b.label,
        added[0],
        added[added.len() - 1],
        added.len()
    );
    if configured && std::env::var_os("TOLLGATE_BENCH_GUARDED").is_some() {
        println!(
            "  target (issue 7, five checks on input and output of a 1 KB request, TOLLGATE_BENCH_PAD=900): added <= 30 µs: {}",
            verdict(median <= 30.0)
        );
    }
    Ok(())
}
