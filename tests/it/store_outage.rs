//! A node whose store goes away keeps serving: gateway requests are answered, their records are
//! held in memory (up to the queue limit) and written once the store is back, and `/v1/health`,
//! `tollgate status` and admin writes say what is going on.
//!
//! On Postgres the server reaches its database through a TCP forwarder that can drop every
//! connection and refuse new ones; on SQLite another connection holds the database's write lock.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};

use crate::common::{add_openai_integration, http_send, openai_chat_json, wait_for_logs, TestEnv};
use crate::upstream::{Reply, Upstream};

/// Forwards TCP connections to `target`, until cut: then drops every connection and closes new
/// ones at once, until restored.
struct Forwarder {
    addr: SocketAddr,
    cut: Arc<AtomicBool>,
    /// Ends every forwarded connection when sent to.
    drop_all: tokio::sync::watch::Sender<u64>,
    _runtime: tokio::runtime::Runtime,
}

impl Forwarder {
    fn start(target: String) -> Forwarder {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let (drop_all, dropped) = tokio::sync::watch::channel(0u64);
        let is_cut = cut.clone();
        runtime.spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                if is_cut.load(Ordering::SeqCst) {
                    continue;
                }
                let target = target.clone();
                let mut dropped = dropped.clone();
                // Only cuts after this connection began end it.
                dropped.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = dropped.changed() => {}
                    }
                });
            }
        });
        Forwarder {
            addr,
            cut,
            drop_all,
            _runtime: runtime,
        }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.drop_all.send_modify(|n| *n += 1);
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// What takes the store away and gives it back.
enum Outage {
    Postgres(Forwarder),
    /// A connection of the test's own, holding the write lock while the outage lasts.
    Sqlite(std::path::PathBuf, Option<rusqlite::Connection>),
}

impl Outage {
    fn begin(&mut self) {
        match self {
            Outage::Postgres(f) => f.cut(),
            Outage::Sqlite(path, lock) => {
                let conn = rusqlite::Connection::open(path.as_path()).unwrap();
                conn.execute_batch("BEGIN IMMEDIATE").unwrap();
                *lock = Some(conn);
            }
        }
    }

    fn end(&mut self) {
        match self {
            Outage::Postgres(f) => f.restore(),
            Outage::Sqlite(_, lock) => {
                if let Some(conn) = lock.take() {
                    conn.execute_batch("ROLLBACK").unwrap();
                }
            }
        }
    }
}

/// A server (with `extra` flags) whose store can be taken away, with an upstream that answers.
fn server_with_outage(extra: &[&str]) -> (TestEnv, Outage, Upstream) {
    let mut env = TestEnv::offline();
    let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let outage = match env.database_url() {
        Some(url) => {
            let mut url = url::Url::parse(url).unwrap();
            let target = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
            let forwarder = Forwarder::start(target);
            url.set_port(Some(forwarder.addr.port())).unwrap();
            args.extend(["--database-url".into(), url.to_string()]);
            Outage::Postgres(forwarder)
        }
        None => Outage::Sqlite(env.data_dir().join("tollgate.db"), None),
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    env.admin_key = env
        .start_server(&args)
        .expect("a first start prints the admin key on stdout");
    let up = Upstream::start(|req| {
        let model = req.json()["model"].as_str().unwrap_or("?").to_string();
        Reply::ok(openai_chat_json(&model, "Hello"))
    });
    add_openai_integration(&env, "up", &up.url);
    (env, outage, up)
}

/// A chat completion in trace `trace`; it must be answered.
#[track_caller]
fn chat(env: &TestEnv, trace: &str) {
    let body = json!({"model": "@up/gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
    let reply = http_send(
        &env.url,
        "POST",
        "/v1/chat/completions",
        &[
            ("x-portkey-api-key", &env.admin_key),
            ("x-portkey-trace-id", trace),
        ],
        Some(&body.to_string()),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
}

fn store_health(env: &TestEnv) -> Value {
    let reply = http_send(&env.url, "GET", "/v1/health", &[], None);
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()
}

/// Polls `/v1/health` until `done` holds of it (within a generous deadline); returns it.
#[track_caller]
fn health_until(env: &TestEnv, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let health = store_health(env);
        if done(&health) {
            return health;
        }
        assert!(Instant::now() < deadline, "{what}: {health:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The trace ids of the records `tollgate logs list` shows for `query` (CLI filter flags).
fn listed_traces(env: &TestEnv, query: &[&str]) -> Vec<String> {
    let mut args = vec!["logs", "list", "--limit", "500", "-o", "json"];
    args.extend_from_slice(query);
    let out = env.run(&args).ok();
    let records = out.json();
    let mut traces: Vec<String> = records
        .as_array()
        .unwrap_or_else(|| panic!("a list: {records}"))
        .iter()
        .map(|r| r["trace_id"].as_str().unwrap().to_string())
        .collect();
    traces.sort();
    traces
}

#[test]
fn a_node_that_loses_its_store_keeps_serving_and_writes_what_it_held_once_back() {
    let (env, mut outage, _up) = server_with_outage(&[]);
    for _ in 0..5 {
        chat(&env, "before");
    }
    wait_for_logs(&env, "trace_id=before", 5);
    assert_eq!(store_health(&env)["status"], "ok");

    outage.begin();
    let started = Instant::now();
    for _ in 0..30 {
        chat(&env, "during");
    }
    // Answered without waiting for the store (SQLite's lock is waited for 5 s per try).
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "30 requests took {:?}",
        started.elapsed()
    );
    let health = health_until(&env, "the store reported unavailable, 30 held", |h| {
        h["store"]["state"] == "unavailable" && h["store"]["queued_records"] == 30
    });
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["store"]["dropped_records"], 0);
    assert!(
        !health["store"]["error"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "{health}"
    );

    let status = env.run(&["status", "-o", "json"]).ok();
    let store = &status.json()["store"];
    assert_eq!(store["state"], "unavailable", "{status}");
    assert_eq!(store["queued_records"], 30, "{status}");
    env.run(&["status"])
        .ok()
        .stdout_has("unavailable since")
        .stdout_has("30 (at most 100000 held)")
        .stderr_has("database is unavailable");

    let write = env.admin(
        "POST",
        "/v1/configs",
        Some(json!({"name": "during the outage", "config": {"retry": {"attempts": 1}}})),
    );
    assert_eq!(write.status, 503, "{write}");
    let error = &write.json()["error"];
    assert_eq!(error["type"], "service_unavailable_error", "{write}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("the database is unreachable, so this request could not be done"),
        "{write}"
    );
    env.run(&["keys", "create", "--name", "during"])
        .code(1)
        .stderr_has("the database is unreachable")
        .stderr_has("tollgate status");
    // Custom records are taken and held too.
    let custom = env.admin(
        "POST",
        "/v1/logs",
        Some(json!({
            "request": {"url": "https://agent.local/tool", "method": "POST", "body": {}},
            "response": {"status": 200, "body": {}, "response_time": 5},
            "metadata": {"trace_id": "custom-during"}
        })),
    );
    assert_eq!(custom.status, 202, "{custom}");
    assert_eq!(custom.json()["status"], "queued");

    outage.end();
    health_until(&env, "the store available again with nothing held", |h| {
        h["status"] == "ok" && h["store"]["queued_records"] == 0
    });
    assert_eq!(listed_traces(&env, &["--trace-id", "during"]).len(), 30);
    assert_eq!(
        listed_traces(&env, &["--trace-id", "custom-during"]).len(),
        1
    );
    assert_eq!(listed_traces(&env, &[]).len(), 36);
    // Admin writes work again.
    env.run(&["keys", "create", "--name", "after"]).ok();
}

#[test]
fn records_past_the_queue_limit_are_dropped_newest_first_and_counted() {
    let (mut env, mut outage, _up) = server_with_outage(&["--record-queue-limit", "10"]);
    chat(&env, "before");
    wait_for_logs(&env, "trace_id=before", 1);
    outage.begin();
    for i in 0..25 {
        chat(&env, &format!("r{i:02}"));
    }
    let health = health_until(&env, "15 records dropped", |h| {
        h["store"]["dropped_records"] == 15
    });
    assert_eq!(health["store"]["queued_records"], 10, "{health}");
    assert_eq!(health["store"]["queue_limit"], 10, "{health}");
    let (status, metrics) = env.http(
        "GET",
        "/metrics",
        &[("authorization", &format!("Bearer {}", env.admin_key))],
    );
    assert_eq!(status, 200, "{metrics}");
    for series in [
        "tollgate_records_dropped_total 15\n",
        "tollgate_recorder_queue_depth 10\n",
        "tollgate_store_up 0\n",
    ] {
        assert!(metrics.contains(series), "{series}: {metrics}");
    }

    outage.end();
    health_until(&env, "the store available again with nothing held", |h| {
        h["status"] == "ok" && h["store"]["queued_records"] == 0
    });
    // The first ten held were written; the fifteen after them were dropped.
    let expected: Vec<String> = (0..10).map(|i| format!("r{i:02}")).collect();
    let mut written = listed_traces(&env, &[]);
    written.retain(|t| t != "before");
    assert_eq!(written, expected);
    let exit = env.stop();
    assert!(
        exit.stderr
            .contains("15 request records were dropped while the store was unavailable"),
        "{}",
        exit.stderr
    );
}

#[test]
fn a_shutdown_without_the_store_says_how_many_records_it_could_not_write() {
    let (mut env, mut outage, _up) = server_with_outage(&[]);
    outage.begin();
    for _ in 0..4 {
        chat(&env, "unwritten");
    }
    health_until(&env, "4 records held", |h| {
        h["store"]["state"] == "unavailable" && h["store"]["queued_records"] == 4
    });
    let exit = env.stop();
    assert!(exit.status.success(), "{exit:?}");
    assert!(
        exit.stderr.contains(
            "4 request records could not be written before shutdown: the store is unavailable"
        ),
        "{}",
        exit.stderr
    );
    outage.end();
}
