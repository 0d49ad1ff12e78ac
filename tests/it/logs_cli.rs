//! `tollgate logs list|get|tail|export`, `trace show` and `usage` against a real server whose
//! requests go to a fake OpenAI upstream.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{
    add_openai_integration, gateway_env, openai_chat_json, post_json, HttpAnswer, TestEnv, DOWN_URL,
};
use crate::upstream::{Reply, Upstream};

const CHAT: &str = "/v1/chat/completions";
const WAIT: Duration = Duration::from_secs(20);

/// An OpenAI upstream that echoes the model, and fails requests for the model `broken`.
pub(crate) fn upstream() -> Upstream {
    Upstream::start(|req| {
        let model = req.json()["model"].as_str().unwrap_or("?").to_string();
        if model == "broken" {
            Reply::status(
                500,
                json!({"error": {"message": "upstream broke", "type": "server_error"}}),
            )
        } else {
            Reply::ok(openai_chat_json(&model, "the answer"))
        }
    })
}

fn with_integration(upstream: &Upstream) -> TestEnv {
    let env = gateway_env(&[]);
    add_openai_integration(&env, "openai-dev", &upstream.url);
    env
}

/// A chat request for `@openai-dev/MODEL` in trace `trace_id`, with extra headers.
pub(crate) fn chat(
    env: &TestEnv,
    model: &str,
    trace_id: &str,
    headers: &[(&str, &str)],
) -> HttpAnswer {
    let mut all = vec![
        ("x-portkey-api-key", env.admin_key.as_str()),
        ("x-portkey-trace-id", trace_id),
    ];
    all.extend_from_slice(headers);
    let body = json!({"model": format!("@openai-dev/{model}"),
                      "messages": [{"role": "user", "content": "hello from the test"}]});
    post_json(env, CHAT, &all, &body)
}

/// `GET /v1/logs/count?QUERY`.
fn count(env: &TestEnv, query: &str) -> u64 {
    let (status, body) = env.http(
        "GET",
        &format!("/v1/logs/count?{query}"),
        &[("x-portkey-api-key", &env.admin_key)],
    );
    assert_eq!(status, 200, "count: {body}");
    serde_json::from_str::<Value>(&body).unwrap()["total"]
        .as_u64()
        .expect("total")
}

/// Records may be written just after the answer: waits until `n` match `query`.
#[track_caller]
fn wait_for_records(env: &TestEnv, query: &str, n: u64) {
    let deadline = Instant::now() + WAIT;
    while count(env, query) < n {
        assert!(
            Instant::now() < deadline,
            "fewer than {n} records match {query:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `logs list ARGS -o json`: the records.
#[track_caller]
fn list(env: &TestEnv, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["logs", "list", "-o", "json"];
    all.extend_from_slice(args);
    let out = env.run(&all).ok();
    out.json().as_array().expect("an array").clone()
}

fn ids(records: &[Value]) -> BTreeSet<String> {
    records
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_string())
        .collect()
}

#[test]
fn list_filters_return_exactly_the_matching_records() {
    let upstream = upstream();
    let env = with_integration(&upstream);
    let search = [("x-portkey-metadata", r#"{"team":"search","_user":"alice"}"#)];
    let ads = [("x-portkey-metadata", r#"{"team":"ads"}"#)];
    assert_eq!(chat(&env, "gpt-4o", "list-a", &search).status, 200);
    assert_eq!(chat(&env, "gpt-4o", "list-b", &ads).status, 200);
    assert_eq!(chat(&env, "broken", "list-c", &[]).status, 500);
    wait_for_records(&env, "", 3);

    let all = list(&env, &[]);
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(all[0]["trace_id"], "list-c", "newest first");
    let id: BTreeMap<&str, String> = all
        .iter()
        .map(|r| {
            (
                r["trace_id"].as_str().unwrap(),
                r["id"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expect =
        |traces: &[&str]| -> BTreeSet<String> { traces.iter().map(|t| id[t].clone()).collect() };
    let matching = |args: &[&str]| ids(&list(&env, args));
    assert_eq!(matching(&["--status", "5xx"]), expect(&["list-c"]));
    assert_eq!(
        matching(&["--status", "200"]),
        expect(&["list-a", "list-b"])
    );
    assert_eq!(
        matching(&["--metadata", "team=search"]),
        expect(&["list-a"])
    );
    assert_eq!(
        matching(&["--model", "gpt-4o"]),
        expect(&["list-a", "list-b"])
    );
    assert_eq!(matching(&["--trace-id", "list-b"]), expect(&["list-b"]));
    assert_eq!(
        matching(&["--provider", "openai", "--since", "1h"]),
        expect(&["list-a", "list-b", "list-c"])
    );
    assert_eq!(matching(&["--until", "1h"]), BTreeSet::new());
    assert_eq!(matching(&["--user", "alice"]), expect(&["list-a"]));
    assert_eq!(
        matching(&["--min-cost", "0.000001"]),
        expect(&["list-a", "list-b"]),
        "priced answers, not the failure"
    );
    let key_id = all[0]["api_key_id"].as_str().unwrap();
    assert_eq!(matching(&["--key", key_id]), ids(&all));
    assert_eq!(matching(&["--key", "someone-else"]), BTreeSet::new());

    // Paging: the cursor is a hint on stderr, and the pages together are the whole list.
    let first = env
        .run(&["logs", "list", "--limit", "2", "-o", "json"])
        .ok();
    let cursor = first
        .stderr
        .split("--cursor ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no cursor hint\n{first}"))
        .to_string();
    let second = env
        .run(&[
            "logs", "list", "--limit", "2", "--cursor", &cursor, "-o", "json",
        ])
        .ok();
    assert!(!second.stderr.contains("--cursor"), "{second}");
    let mut paged = ids(first.json().as_array().unwrap());
    paged.extend(ids(second.json().as_array().unwrap()));
    assert_eq!(paged, ids(&all));

    let ndjson = env.run(&["logs", "list", "-o", "ndjson"]).ok();
    let lines: Vec<Value> = ndjson
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines, all);

    let table = env.run(&["logs", "list", "--status", "5xx"]).ok();
    table
        .stdout_has("STATUS")
        .stdout_has("500")
        .stdout_has("list-c");

    env.run(&["logs", "list", "--status", "6xx"]).code(2);
    env.run(&["logs", "list", "--since", "yesterday"]).code(2);
    env.run(&["logs", "list", "--limit", "0"]).code(2);
}

#[test]
fn get_shows_a_record_with_its_bodies() {
    let upstream = upstream();
    let env = with_integration(&upstream);
    assert_eq!(chat(&env, "gpt-4o", "get-a", &[]).status, 200);
    wait_for_records(&env, "trace_id=get-a", 1);
    let id = list(&env, &["--trace-id", "get-a"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    env.run(&["logs", "get", &id])
        .ok()
        .stdout_has(&id)
        .stdout_has("get-a")
        .stdout_has("Request body:")
        .stdout_has("hello from the test")
        .stdout_has("Response body:")
        .stdout_has("the answer");
    let record = env.run(&["logs", "get", &id, "-o", "json"]).ok().json();
    assert_eq!(record["id"], id.as_str());
    assert_eq!(
        record["request_body"]["messages"][0]["content"],
        "hello from the test"
    );
    assert_eq!(
        record["response_body"]["choices"][0]["message"]["content"],
        "the answer"
    );
    env.run(&["logs", "get", "no-such-record"])
        .code(4)
        .error_and_hint();
}

/// A running `tollgate logs tail`, its stdout lines and stderr lines as they come.
pub(crate) struct Tail {
    child: Child,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    pub(crate) seen: Vec<String>,
    notes: Vec<String>,
}

impl Tail {
    pub(crate) fn start(env: &TestEnv, args: &[&str]) -> Tail {
        let mut child = env
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tollgate logs tail");
        let lines = |pipe: Box<dyn std::io::Read + Send>| {
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    let _ = tx.send(line);
                }
            });
            rx
        };
        Tail {
            stdout: lines(Box::new(child.stdout.take().unwrap())),
            stderr: lines(Box::new(child.stderr.take().unwrap())),
            child,
            seen: Vec::new(),
            notes: Vec::new(),
        }
    }

    #[track_caller]
    pub(crate) fn wait_note(&mut self, needle: &str) {
        let deadline = Instant::now() + WAIT;
        while !self.notes.iter().any(|n| n.contains(needle)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => self.notes.push(line),
                Err(_) => panic!("tail never said {needle:?}; stderr: {:?}", self.notes),
            }
        }
    }

    /// Waits for the record of `trace_id` on stdout.
    #[track_caller]
    pub(crate) fn wait_record(&mut self, trace_id: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.stdout.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "no record of {trace_id}; stdout: {:?}; stderr: {:?}",
                    self.seen, self.notes
                )
            });
            self.seen.push(line.clone());
            let record: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            if record["trace_id"] == trace_id {
                return record;
            }
        }
    }

    /// Ctrl-C; returns the exit code.
    fn interrupt(mut self) -> i32 {
        Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("tail did not stop on SIGINT");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn tail_follows_new_requests_across_a_server_restart() {
    let upstream = upstream();
    let mut env = with_integration(&upstream);
    let port = env.url.rsplit(':').next().unwrap().to_string();
    let mut tail = Tail::start(&env, &["logs", "tail", "--model", "gpt-4o", "-o", "ndjson"]);
    tail.wait_note("following records");

    assert_eq!(chat(&env, "broken", "tail-filtered-out", &[]).status, 500);
    assert_eq!(chat(&env, "gpt-4o", "tail-1", &[]).status, 200);
    let first = tail.wait_record("tail-1");
    assert_eq!(first["status"], 200);

    env.stop();
    env.start_server_on(&format!("127.0.0.1:{port}"), &[]);
    tail.wait_note("reconnected");
    assert_eq!(chat(&env, "gpt-4o", "tail-2", &[]).status, 200);
    tail.wait_record("tail-2");

    let traces: Vec<String> = tail
        .seen
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["trace_id"].to_string())
        .collect();
    assert_eq!(traces, ["\"tail-1\"", "\"tail-2\""], "once each, in order");
    assert!(
        tail.notes.iter().any(|n| n.contains("connection lost")),
        "{:?}",
        tail.notes
    );
    assert_eq!(tail.interrupt(), 0);

    // With --since, the records already there come first.
    let mut replay = Tail::start(
        &env,
        &[
            "logs", "tail", "--since", "1h", "--model", "gpt-4o", "-o", "ndjson",
        ],
    );
    replay.wait_record("tail-1");
    replay.wait_record("tail-2");
    assert_eq!(replay.seen.len(), 2, "{:?}", replay.seen);
    assert_eq!(replay.interrupt(), 0);
}

/// Splits RFC 4180 text into rows of fields.
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut field) = (Vec::new(), Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (_, c) => field.push(c),
        }
    }
    rows
}

fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn export_writes_every_record_as_ndjson_or_csv() {
    let upstream = upstream();
    let env = with_integration(&upstream);
    assert_eq!(chat(&env, "gpt-4o", "export-a", &[]).status, 200);
    assert_eq!(chat(&env, "broken", "export-b", &[]).status, 500);
    // More custom spans than one page holds, so the export has to follow the cursor.
    let spans: Vec<Value> = (0..1001)
        .map(|i| {
            json!({
                "request": {"url": "https://agent.example/step", "method": "POST", "body": {"step": i}},
                "response": {"status": 200, "body": {"ok": true}, "response_time": 5},
                "metadata": {"trace_id": "export-bulk", "span_name": format!("step, \"{i}\"")}
            })
        })
        .collect();
    let posted = post_json(
        &env,
        "/v1/logs",
        &[("x-portkey-api-key", &env.admin_key)],
        &Value::Array(spans),
    );
    assert!(posted.status < 300, "{posted}");
    wait_for_records(&env, "", 1003);
    let total = count(&env, "");

    let ndjson = env.run(&["logs", "export", "--format", "ndjson"]).ok();
    let records: Vec<Value> = ndjson
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(records.len() as u64, total);
    let exported = ids(&records);
    assert_eq!(exported.len() as u64, total, "no record twice");

    std::fs::create_dir(env.root().join("exports")).unwrap();
    env.run(&[
        "logs",
        "export",
        "--format",
        "csv",
        "--out",
        "exports/all.csv",
    ])
    .ok()
    .stderr_has(&format!("exported {total} records"));
    let rows = csv_rows(&std::fs::read_to_string(env.root().join("exports/all.csv")).unwrap());
    assert_eq!(rows[0][..3], ["id", "created_at", "kind"]);
    assert_eq!(rows.len() as u64, total + 1, "a header and every record");
    assert!(rows.iter().all(|r| r.len() == rows[0].len()), "ragged rows");
    let csv_ids: BTreeSet<String> = rows[1..].iter().map(|r| r[0].clone()).collect();
    assert_eq!(csv_ids, exported);
    let span_name = rows[0].iter().position(|h| h == "span_name").unwrap();
    assert!(
        rows.iter().any(|r| r[span_name] == "step, \"7\""),
        "quoting"
    );
    assert_eq!(count(&env, "status=5xx"), 1);

    env.run(&[
        "logs",
        "export",
        "--format",
        "csv",
        "--include-bodies",
        "--trace-id",
        "export-a",
        "--out",
        "exports/one.csv",
    ])
    .ok();
    let rows = csv_rows(&std::fs::read_to_string(env.root().join("exports/one.csv")).unwrap());
    assert_eq!(rows.len(), 2);
    let body = rows[0].iter().position(|h| h == "request_body").unwrap();
    let request: Value = serde_json::from_str(&rows[1][body]).unwrap();
    assert_eq!(request["messages"][0]["content"], "hello from the test");

    // A failed export leaves neither the file nor its temp file.
    env.cmd(&["logs", "export", "--out", "exports/failed.ndjson"])
        .var("TOLLGATE_URL", DOWN_URL)
        .run()
        .code(6);
    assert_eq!(
        files_in(&env.root().join("exports")),
        ["all.csv", "one.csv"]
    );
}

#[test]
fn trace_show_draws_a_fallback_and_a_custom_span() {
    let failing = Upstream::start(|_| {
        Reply::status(
            503,
            json!({"error": {"message": "overloaded", "type": "server_error"}}),
        )
    });
    let good = upstream();
    let env = gateway_env(&[]);
    add_openai_integration(&env, "bad", &failing.url);
    add_openai_integration(&env, "good", &good.url);
    let key = env.admin_key.as_str();

    let span = json!({
        "request": {"url": "https://agent.example/run", "method": "POST", "body": {"task": "plan"}},
        "response": {"status": 200, "body": {"ok": true}, "response_time": 1500},
        "metadata": {"trace_id": "trace-fb", "span_id": "agent-1", "span_name": "agent run"}
    });
    let posted = post_json(&env, "/v1/logs", &[("x-portkey-api-key", key)], &span);
    assert!(posted.status < 300, "{posted}");
    let config = json!({"strategy": {"mode": "fallback"},
                        "targets": [{"provider": "@bad"}, {"provider": "@good"}]})
    .to_string();
    let answer = post_json(
        &env,
        CHAT,
        &[
            ("x-portkey-api-key", key),
            ("x-portkey-trace-id", "trace-fb"),
            ("x-portkey-parent-span-id", "agent-1"),
            ("x-portkey-config", &config),
        ],
        &json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(answer.status, 200, "{answer}");
    let feedback = post_json(
        &env,
        "/v1/feedback",
        &[("x-portkey-api-key", key)],
        &json!({"trace_id": "trace-fb", "value": 5}),
    );
    assert!(feedback.status < 300, "{feedback}");
    wait_for_records(&env, "trace_id=trace-fb", 2);

    let out = env.run(&["trace", "show", "trace-fb"]).ok();
    out.clone()
        .stdout_has("trace trace-fb")
        .stdout_has("agent run")
        .stdout_has("└─ ")
        .stdout_has("█")
        .stdout_has("503")
        .stdout_has("gpt-4o")
        .stdout_has("feedback:")
        .stdout_has("+5");
    assert!(!out.stdout.contains('\x1b'), "no colour in a pipe\n{out}");
    let span_lines: Vec<&str> = out.stdout.lines().filter(|l| l.contains('█')).collect();
    assert!(span_lines.len() >= 4, "agent, request, two attempts\n{out}");

    let trace = env
        .run(&["trace", "show", "trace-fb", "-o", "json"])
        .ok()
        .json();
    fn all_spans(spans: &Value, out: &mut Vec<Value>) {
        for s in spans.as_array().unwrap() {
            out.push(s.clone());
            all_spans(&s["children"], out);
        }
    }
    let mut spans = Vec::new();
    all_spans(&trace["spans"], &mut spans);
    let request = spans
        .iter()
        .find(|s| s["kind"] == "request")
        .unwrap_or_else(|| panic!("no request span: {trace}"));
    let attempts: Vec<&Value> = request["children"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "attempt")
        .collect();
    let statuses: Vec<&Value> = attempts.iter().map(|a| &a["status"]).collect();
    assert_eq!(statuses, [&json!(503), &json!(200)], "{trace}");
    let agent = spans.iter().find(|s| s["name"] == "agent run").unwrap();
    assert_eq!(agent["kind"], "custom");
    assert_eq!(trace["feedback"][0]["value"], 5);

    env.run(&["trace", "show", "no-such-trace"]).code(4);
}

#[test]
fn usage_by_model_adds_up_to_the_requests_made() {
    let upstream = upstream();
    let env = with_integration(&upstream);
    let search = [("x-portkey-metadata", r#"{"team":"search"}"#)];
    for i in 0..3 {
        chat(&env, "gpt-4o", &format!("usage-a{i}"), &search);
    }
    for i in 0..2 {
        chat(&env, "gpt-4o-mini", &format!("usage-b{i}"), &[]);
    }
    chat(&env, "broken", "usage-c", &[]);
    wait_for_records(&env, "", 6);

    let usage = env
        .run(&["usage", "--by", "model", "-o", "json"])
        .ok()
        .json();
    assert_eq!(usage["group_by"], "ai-models");
    let groups: BTreeMap<String, (u64, u64)> = usage["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["group"].as_str().unwrap_or("(none)").to_string(),
                (
                    g["requests"].as_u64().unwrap(),
                    g["errors"].as_u64().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(groups["gpt-4o"], (3, 0));
    assert_eq!(groups["gpt-4o-mini"], (2, 0));
    assert_eq!(groups["broken"], (1, 1));
    assert_eq!(groups.values().map(|(r, _)| r).sum::<u64>(), 6);

    let table = env.run(&["usage", "--by", "model", "--since", "1h"]).ok();
    let total = table
        .stdout
        .lines()
        .find(|l| l.contains("total"))
        .unwrap_or_else(|| panic!("no total row\n{table}"));
    assert!(total.split_whitespace().any(|c| c == "6"), "{total}");
    table.stdout_has("SHARE OF").stdout_has("gpt-4o-mini");

    let by_team = env
        .run(&["usage", "--by", "metadata.team", "-o", "json"])
        .ok()
        .json();
    let search_group = by_team["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == "search")
        .unwrap_or_else(|| panic!("no search group: {by_team}"));
    assert_eq!(search_group["requests"], 3);

    env.run(&["usage", "--by", "colour"]).code(2);
}
