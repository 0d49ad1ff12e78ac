//! `tollgate chat`: ad-hoc requests through the gateway, streamed to the terminal.

use std::io::{IsTerminal, Write};
use std::time::Instant;

use clap::Args;
use futures_util::StreamExt;
use serde_json::{json, Map, Value};

use super::args::{metadata, parse_pair};
use super::ctx::Ctx;
use crate::client::ApiClient;
use crate::error::{CliError, ExitKind, Result};
use crate::gateway::sse;
use crate::output::{prompt, Format};

const EXAMPLES: &str = "\
Examples:
  tollgate chat -m @openai-dev/gpt-4o \"Why is the sky blue?\"
  echo 'Summarise: ...' | tollgate chat -m @claude/claude-sonnet-4-20250514 --max-tokens 200
  tollgate chat -m gpt-4o --config pc-prod-a1b2c3 --metadata _user=alice   # interactive on a terminal
  tollgate chat -m @openai-dev/gpt-4o \"hi\" -o ndjson | jq -r '.choices[0].delta.content // empty'";

#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct ChatArgs {
    /// The message; without one, stdin is read, or on a terminal a conversation starts
    message: Option<String>,
    /// The model, e.g. @openai-dev/gpt-4o (may be left to the config)
    #[arg(short, long)]
    model: Option<String>,
    /// A saved config (pc-...) or a config file (YAML or JSON)
    #[arg(long, value_name = "SLUG|FILE")]
    config: Option<String>,
    /// Request metadata (repeatable)
    #[arg(long, value_parser = parse_pair, value_name = "KEY=VALUE")]
    metadata: Vec<(String, String)>,
    #[arg(long)]
    trace_id: Option<String>,
    /// A system message
    #[arg(long)]
    system: Option<String>,
    #[arg(long)]
    temperature: Option<f64>,
    #[arg(long)]
    max_tokens: Option<u64>,
}

/// One finished turn: the text, and what the footer shows.
pub(super) struct Turn {
    text: String,
    model: Option<String>,
    provider: Option<String>,
    usage: Option<Value>,
}

fn config_header(config: &str) -> Result<String> {
    if config.starts_with("pc-") {
        return Ok(config.to_string());
    }
    let value =
        crate::gateway::config::parse_document(&std::fs::read_to_string(config).map_err(|e| {
            CliError::failed(format!("cannot read {config}: {e}"))
                .hint("give a pc-... slug or a config file")
        })?)
        .map_err(|e| CliError::failed(format!("{config}: {e}")))?;
    Ok(value.to_string())
}

fn headers(args: &ChatArgs) -> Result<Vec<(&'static str, String)>> {
    let mut headers = Vec::new();
    if let Some(c) = &args.config {
        headers.push(("x-portkey-config", config_header(c)?));
    }
    if !args.metadata.is_empty() {
        headers.push((
            "x-portkey-metadata",
            Value::Object(metadata(&args.metadata)).to_string(),
        ));
    }
    if let Some(t) = &args.trace_id {
        headers.push(("x-portkey-trace-id", t.clone()));
    }
    Ok(headers)
}

fn request_body(args: &ChatArgs, messages: &[Value], stream: bool) -> Value {
    let mut body = Map::new();
    if let Some(m) = &args.model {
        body.insert("model".into(), json!(m));
    }
    body.insert("messages".into(), json!(messages));
    if let Some(t) = args.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(n) = args.max_tokens {
        body.insert("max_tokens".into(), json!(n));
    }
    if stream {
        body.insert("stream".into(), json!(true));
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Value::Object(body)
}

pub async fn run(ctx: &Ctx, args: ChatArgs) -> Result<()> {
    let client = ctx.client()?;
    let headers = headers(&args)?;
    let mut messages: Vec<Value> = args
        .system
        .iter()
        .map(|s| json!({"role": "system", "content": s}))
        .collect();
    let message = match &args.message {
        Some(m) => Some(m.clone()),
        None if !std::io::stdin().is_terminal() => Some(std::io::read_to_string(std::io::stdin())?),
        None => None,
    };
    if let Some(message) = message {
        messages.push(json!({"role": "user", "content": message.trim_end()}));
        turn(ctx, &client, &args, &headers, &messages).await?;
        return Ok(());
    }
    if !prompt::can_prompt(ctx.global.no_input) {
        return Err(CliError::usage("no message to send")
            .hint("give the message as an argument or on standard input"));
    }
    ctx.printer
        .note("Interactive chat: /exit or Ctrl-D to leave.");
    loop {
        let Some(line) = prompt::line("you")? else {
            return Ok(());
        };
        if line.trim() == "/exit" {
            return Ok(());
        }
        if line.trim().is_empty() {
            continue;
        }
        messages.push(json!({"role": "user", "content": line}));
        let reply = turn(ctx, &client, &args, &headers, &messages).await?;
        messages.push(json!({"role": "assistant", "content": reply}));
    }
}

/// Sends the conversation and prints the answer; returns the assistant's text.
async fn turn(
    ctx: &Ctx,
    client: &ApiClient,
    args: &ChatArgs,
    headers: &[(&'static str, String)],
    messages: &[Value],
) -> Result<String> {
    let started = Instant::now();
    let whole = matches!(ctx.printer.format, Format::Json | Format::Yaml);
    let body = request_body(args, messages, !whole);
    let response = client
        .post_raw("/v1/chat/completions", &body, headers)
        .await?;
    let provider = response
        .headers()
        .get("x-portkey-provider")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let mut turn = if whole {
        let answer: Value = response
            .json()
            .await
            .map_err(|e| CliError::failed(format!("unreadable answer: {e}")))?;
        ctx.printer.document(&answer)?;
        Turn {
            text: answer["choices"][0]["message"]["content"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            model: answer["model"].as_str().map(String::from),
            provider: None,
            usage: answer.get("usage").cloned(),
        }
    } else {
        stream(ctx, response).await?
    };
    turn.provider = provider;
    footer(ctx, &turn, started);
    Ok(turn.text)
}

pub(super) async fn stream(ctx: &Ctx, response: reqwest::Response) -> Result<Turn> {
    let ndjson = ctx.printer.format == Format::Ndjson;
    let mut turn = Turn {
        text: String::new(),
        model: None,
        provider: None,
        usage: None,
    };
    let mut decoder = sse::Decoder::default();
    let mut events = Vec::new();
    let mut bytes = response.bytes_stream();
    let mut out = std::io::stdout().lock();
    loop {
        let chunk = bytes.next().await;
        match &chunk {
            Some(Ok(b)) => decoder
                .feed(b, &mut events)
                .map_err(|_| CliError::failed("the gateway sent an event over 16 MiB"))?,
            Some(Err(e)) => return Err(CliError::failed(format!("the stream broke: {e}"))),
            None => decoder.finish(&mut events),
        }
        for event in events.drain(..) {
            if event.data == "[DONE]" {
                continue;
            }
            let Ok(value) = serde_json::from_str::<Value>(&event.data) else {
                continue;
            };
            if let Some(error) = value.get("error") {
                return Err(CliError::failed(format!(
                    "the stream ended with an error: {}",
                    error["message"].as_str().unwrap_or("unknown error")
                )));
            }
            if ndjson {
                ctx.printer.line(&value)?;
            }
            if let Some(m) = value["model"].as_str() {
                turn.model = Some(m.to_string());
            }
            if value.get("usage").is_some_and(|u| !u.is_null()) {
                turn.usage = value.get("usage").cloned();
            }
            if let Some(text) = value["choices"][0]["delta"]["content"].as_str() {
                turn.text.push_str(text);
                if !ndjson {
                    write!(out, "{text}")
                        .and_then(|_| out.flush())
                        .map_err(broken_pipe)?;
                }
            }
        }
        if chunk.is_none() {
            break;
        }
    }
    if !ndjson {
        writeln!(out).map_err(broken_pipe)?;
    }
    Ok(turn)
}

fn broken_pipe(e: std::io::Error) -> CliError {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        CliError::new(ExitKind::BrokenPipe, "")
    } else {
        CliError::from(e)
    }
}

fn footer(ctx: &Ctx, turn: &Turn, started: Instant) {
    let tokens = turn.usage.as_ref().map_or_else(
        || "tokens unknown".to_string(),
        |u| {
            format!(
                "{} in / {} out tokens",
                u["prompt_tokens"].as_u64().unwrap_or(0),
                u["completion_tokens"].as_u64().unwrap_or(0)
            )
        },
    );
    ctx.printer.note(&ctx.printer.paint(
        &format!(
            "— {} via {} · {tokens} · {:.2} s",
            turn.model.as_deref().unwrap_or("?"),
            turn.provider.as_deref().unwrap_or("?"),
            started.elapsed().as_secs_f64()
        ),
        "2",
    ));
}
