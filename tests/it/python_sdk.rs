//! The official `openai` Python SDK (pinned in tests/python/requirements.txt) against the
//! gateway: chat, stream with usage, embeddings, a tool call round trip and errors, through a
//! mock OpenAI upstream. The SDK is installed into `target/python-sdk-venv` on first use.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{add_openai_integration, gateway_env, openai_chat_json, openai_chat_sse};
use crate::upstream::{Recorded, Reply, Upstream};

fn sse(events: Vec<String>) -> Reply {
    Reply::Chunks {
        content_type: "text/event-stream",
        chunks: events
            .into_iter()
            .map(|e| (Duration::ZERO, e.into_bytes()))
            .collect(),
    }
}

/// What a minimal OpenAI answers: embeddings, a `get_weather` tool call (and the text after the
/// tool's result), or plain text, whole or streamed.
fn mock_openai(req: &Recorded) -> Reply {
    let body = req.json();
    let model = body["model"].as_str().unwrap_or("?").to_string();
    if req.path.ends_with("/embeddings") {
        let n = match &body["input"] {
            Value::Array(items) => items.len(),
            _ => 1,
        };
        let data: Vec<Value> = (0..n)
            .map(|i| json!({"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3, i]}))
            .collect();
        return Reply::ok(json!({"object": "list", "data": data, "model": model,
                                "usage": {"prompt_tokens": 4, "total_tokens": 4}}));
    }
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let has_tool_result = messages.iter().any(|m| m["role"] == "tool");
    if has_tool_result {
        return Reply::ok(openai_chat_json(&model, "It is 18C and sunny in Paris."));
    }
    if body.get("tools").is_some() {
        return Reply::ok(json!({
            "id": "chatcmpl-tools", "object": "chat.completion", "created": 1_700_000_000,
            "model": model,
            "choices": [{"index": 0, "finish_reason": "tool_calls", "logprobs": null,
                "message": {"role": "assistant", "content": null, "tool_calls": [{
                    "id": "call_1", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28}
        }));
    }
    if body["stream"] == true {
        return sse(openai_chat_sse(&model, &["One, ", "two, ", "three."]));
    }
    Reply::ok(openai_chat_json(&model, "Hello from the mock."))
}

fn has_openai(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import openai"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A Python with `openai` installed: `target/python-sdk-venv`, created on first use.
fn python_with_openai() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv = root.join("target").join("python-sdk-venv");
    let python = venv.join("bin").join("python");
    if has_openai(&python) {
        return python;
    }
    let started = Instant::now();
    let run = |cmd: &mut Command, what: &str| {
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("{what}: cannot run it ({e}); is python3 installed?"));
        assert!(
            out.status.success(),
            "{what} failed\n--- stdout ---\n{}\n--- stderr ---\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    if !python.exists() {
        run(
            Command::new("python3").arg("-m").arg("venv").arg(&venv),
            "python3 -m venv target/python-sdk-venv",
        );
    }
    run(
        Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "-r"])
            .arg(root.join("tests/python/requirements.txt")),
        "pip install -r tests/python/requirements.txt",
    );
    assert!(
        has_openai(&python),
        "openai is still not importable after pip install"
    );
    eprintln!(
        "installed the openai SDK into {} in {:?}",
        venv.display(),
        started.elapsed()
    );
    python
}

#[test]
fn the_openai_python_sdk_works_against_the_gateway() {
    let python = python_with_openai();
    let env = gateway_env(&[]);
    let upstream = Upstream::start(mock_openai);
    add_openai_integration(&env, "mock", &upstream.url);
    let (_, key) = env.create_key("python-sdk", &[]);

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/openai_sdk.py");
    let started = Instant::now();
    let out = Command::new(&python)
        .arg(&script)
        .arg(format!("{}/v1", env.url))
        .arg(&key)
        .arg("@mock/gpt-4o")
        .arg("@mock/text-embedding-3-small")
        .env("PYTHONUNBUFFERED", "1")
        .output()
        .expect("run tests/python/openai_sdk.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("openai_sdk.py took {:?}\n{stdout}", started.elapsed());
    assert!(
        out.status.success(),
        "openai_sdk.py exited {:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        out.status.code()
    );
    assert!(stdout.contains(" 0 failed"), "{stdout}");

    // What the SDK sent went upstream with the bare model names.
    let requests = upstream.requests();
    let models: Vec<String> = requests
        .iter()
        .map(|r| r.json()["model"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(models.iter().any(|m| m == "gpt-4o"), "{models:?}");
    assert!(
        models.iter().any(|m| m == "text-embedding-3-small"),
        "{models:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.path == "/v1/embeddings" && r.json()["input"] == json!(["one", "two"])),
        "{models:?}"
    );
}
