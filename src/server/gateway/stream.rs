//! Streaming answers: upstream bytes are translated chunk by chunk and forwarded as they
//! arrive. The stream is held only until its first event, so an upstream that fails before
//! saying anything can still fall back; after that, failures end the stream with an error
//! event. Dropping the body (the client went away) drops the upstream response with it, which
//! cancels the upstream call, and the request's record says the client left.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use futures_util::{Stream, StreamExt};
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use super::guard::OutputHooks;
use super::logging::add_deferred;
use crate::api::guardrails::HookResult;
use crate::gateway::providers::adapter::{StreamError, StreamTranslator, Usage};
use crate::gateway::responses::EventStream;
use crate::gateway::sse;
use crate::governance::{Actual, Reservation};
use crate::guardrails::Stage;
use crate::observe::assemble::Assembler;
use crate::observe::pricing::Price;
use crate::observe::record::{kept_json, millis, set_tokens, Entry};
use crate::observe::recorder::Recorder;

/// How long upstream silence lasts before a `: keep-alive` comment goes to the client.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// What the client gets on the wire.
pub enum Framing {
    /// OpenAI chat/completions chunks, `data: [DONE]` at the end.
    Chat { include_usage: bool },
    /// Responses API events synthesised from chat chunks.
    Responses(Box<EventStream>),
    /// The upstream's bytes unchanged (an OpenAI Responses stream passed through).
    Raw,
}

type Upstream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

pub struct Forwarder {
    upstream: Upstream,
    translator: Box<dyn StreamTranslator>,
    framing: Framing,
    queue: VecDeque<Bytes>,
    chunks: Vec<String>,
    ended: bool,
    /// When the first event was ready for the client.
    pub first_event: Option<Instant>,
    /// Usage read from a stream passed through unchanged (`Framing::Raw`).
    raw_usage: Option<(sse::Decoder, Option<Usage>)>,
    /// Why the stream ended early, if it did.
    failure: Option<String>,
    /// Rebuilds the whole answer for the record, when bodies are logged.
    assembler: Option<Assembler>,
    /// A passed-through Responses stream's final `response`, when bodies are logged.
    raw_response: Option<Value>,
    log_body: bool,
    log: Option<StreamLog>,
    /// The call's budget and rate-limit reservation, settled with the usage at the end.
    reservation: Option<Reservation>,
    /// Given the frames the client got and the usage, once the stream completes.
    keep: Option<Keep>,
    /// The frames sent so far, while `keep` waits for them.
    kept: Vec<Bytes>,
    /// Output guardrails, run on the whole answer once it has gone out.
    output_hooks: Option<OutputHooks>,
    /// A chunk of guardrail results, sent next; never cached (a replay gets its own).
    hook_frame: Option<Bytes>,
}

/// What to do with a completed stream's frames and usage (the cache stores them).
pub type Keep = Box<dyn FnOnce(Vec<Bytes>, Option<Usage>) + Send>;

/// The request's record, completed when the stream ends.
pub struct StreamLog {
    pub recorder: Arc<Recorder>,
    pub entry: Entry,
    pub price: Option<Price>,
    pub started: Instant,
    /// Async hooks still running, whose results join the record.
    pub deferred: Vec<(Stage, JoinHandle<HookResult>)>,
}

impl StreamLog {
    fn complete(
        mut self,
        usage: Option<Usage>,
        body: Option<Value>,
        outcome: &str,
        error: Option<String>,
    ) -> Entry {
        let r = &mut self.entry.record;
        r.latency_ms = millis(self.started.elapsed());
        if let Some(u) = usage {
            set_tokens(r, u);
            r.cost = self.price.map(|p| p.cost_usd(u));
        }
        r.outcome = outcome.to_string();
        if error.is_some() {
            r.error = error;
        }
        if let Some(body) = body {
            self.entry.response_body = Some(kept_json(&body));
        }
        self.entry
    }
}

fn frame(text: String) -> Bytes {
    Bytes::from(text)
}

impl Forwarder {
    pub fn new(
        response: reqwest::Response,
        translator: Box<dyn StreamTranslator>,
        mut framing: Framing,
        log_body: bool,
    ) -> Forwarder {
        let mut queue = VecDeque::new();
        if let Framing::Responses(events) = &mut framing {
            let mut out = Vec::new();
            events.start(&mut out);
            queue.extend(out.into_iter().map(frame));
        }
        let raw = matches!(framing, Framing::Raw);
        let raw_usage = raw.then(|| (sse::Decoder::default(), None));
        Forwarder {
            upstream: Box::pin(response.bytes_stream()),
            translator,
            framing,
            queue,
            chunks: Vec::new(),
            ended: false,
            first_event: None,
            raw_usage,
            failure: None,
            assembler: (log_body && !raw).then(Assembler::default),
            raw_response: None,
            log_body,
            log: None,
            reservation: None,
            keep: None,
            kept: Vec::new(),
            output_hooks: None,
            hook_frame: None,
        }
    }

    /// Reads upstream until the first translated event is ready. Fails if the upstream errs or
    /// ends before saying anything, so the caller may try another target.
    pub async fn commit(mut self) -> Result<Forwarder, StreamError> {
        let preamble = self.queue.len();
        while self.queue.len() == preamble && !self.ended {
            match self.upstream.next().await {
                Some(Ok(bytes)) => self.ingest(bytes)?,
                Some(Err(e)) => return Err(upstream_failed(&e)),
                None => self.end()?,
            }
        }
        self.first_event = Some(Instant::now());
        Ok(self)
    }

    /// Sends the input guardrails' results as the first chunk, and runs `output` on the
    /// answer when it has ended, sending its results as a last chunk after `[DONE]` (chat
    /// streams only; every stream's record gets them).
    pub fn guard(&mut self, input: &[HookResult], output: Option<OutputHooks>) {
        if matches!(self.framing, Framing::Chat { .. }) && !input.is_empty() {
            self.hook_frame = Some(hook_chunk("before_request_hooks", input));
        }
        if output.is_some() && self.assembler.is_none() && !matches!(self.framing, Framing::Raw) {
            self.assembler = Some(Assembler::default());
        }
        self.output_hooks = output;
    }

    /// Runs the output guardrails on the assembled answer.
    async fn run_output_hooks(&mut self, output: OutputHooks) {
        let Some(answer) = self.body() else {
            return;
        };
        if self.log_body {
            self.raw_response = Some(answer.clone());
        }
        let results = output(answer).await;
        if matches!(self.framing, Framing::Chat { .. }) {
            self.hook_frame = Some(hook_chunk("after_request_hooks", &results));
        }
        if let Some(log) = &mut self.log {
            let record = &mut log.entry.record;
            let all = record.hook_results.get_or_insert_with(Default::default);
            all.after_request_hooks.extend(results);
        }
    }

    pub fn hold(&mut self, reservation: Reservation) {
        self.reservation = Some(reservation);
    }

    /// Hands the frames to `keep` if the stream completes without failing.
    pub fn keep_frames(&mut self, keep: Keep) {
        self.keep = Some(keep);
    }

    /// Completes the request's record when the stream ends (or its client leaves).
    pub fn log_to(&mut self, log: StreamLog) {
        self.log = Some(log);
    }

    /// The whole answer for the record, if bodies are logged.
    fn body(&mut self) -> Option<Value> {
        match self.assembler.take() {
            Some(a) => Some(a.finish()),
            None => self.raw_response.take(),
        }
    }

    fn complete_log(
        &mut self,
        outcome: &str,
        error: Option<String>,
    ) -> Option<(Arc<Recorder>, Entry)> {
        let log = self.log.take()?;
        let usage = self.usage();
        if let Some(r) = self.reservation.take() {
            // The provider accepted the stream: without its usage (a stream cut short), what it
            // used is unknown, so the reservation stands as the spend.
            let actual = Actual::of(usage, log.price, true);
            r.settle(actual, crate::observe::record::now_ms());
        }
        let body = self.body().filter(|_| self.log_body);
        let recorder = log.recorder.clone();
        Some((recorder, log.complete(usage, body, outcome, error)))
    }

    pub fn into_body(self) -> Body {
        let stream = futures_util::stream::unfold(self, |mut f| async move {
            match f.next_frame().await {
                Some(b) => Some((Ok::<_, std::io::Error>(b), f)),
                None => {
                    f.finish_log().await;
                    None
                }
            }
        });
        Body::from_stream(stream)
    }

    fn usage(&self) -> Option<Usage> {
        match &self.raw_usage {
            Some((_, usage)) => *usage,
            None => self.translator.usage(),
        }
    }

    async fn finish_log(&mut self) {
        let (outcome, error) = match self.failure.take() {
            Some(message) => ("stream_error", Some(message)),
            None => {
                if let Some(keep) = self.keep.take() {
                    keep(std::mem::take(&mut self.kept), self.usage());
                }
                ("success", None)
            }
        };
        let deferred = self
            .log
            .as_mut()
            .map(|log| std::mem::take(&mut log.deferred))
            .unwrap_or_default();
        if let Some((recorder, mut entry)) = self.complete_log(outcome, error) {
            add_deferred(&mut entry, deferred).await;
            recorder.record(entry).await;
        }
    }

    /// A passed-through Responses stream reports usage in its `response.completed` event.
    fn read_raw_usage(&mut self, bytes: &[u8]) {
        let Some((decoder, usage)) = &mut self.raw_usage else {
            return;
        };
        let mut events = Vec::new();
        let _ = decoder.feed(bytes, &mut events);
        for e in events {
            if !e.data.contains("response.completed") {
                continue;
            }
            if let Ok(mut v) = serde_json::from_str::<Value>(&e.data) {
                if let Some(u) = v.pointer("/response/usage").and_then(Usage::from_openai) {
                    *usage = Some(u);
                }
                if self.log_body {
                    self.raw_response = v.get_mut("response").map(Value::take);
                }
            }
        }
    }

    /// Translates a piece of the upstream body into frames for the client.
    fn ingest(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        if matches!(self.framing, Framing::Raw) {
            self.read_raw_usage(&bytes);
            self.queue.push_back(bytes);
            return Ok(());
        }
        let mut chunks = std::mem::take(&mut self.chunks);
        let fed = self.translator.feed(&bytes, &mut chunks);
        self.frame_chunks(&mut chunks);
        self.chunks = chunks;
        fed
    }

    /// The upstream closed: flush the translator and close the client's stream.
    fn end(&mut self) -> Result<(), StreamError> {
        if matches!(self.framing, Framing::Raw) {
            self.ended = true;
            return Ok(());
        }
        let mut chunks = Vec::new();
        let finished = self.translator.finish(&mut chunks);
        self.frame_chunks(&mut chunks);
        finished?;
        self.close();
        Ok(())
    }

    fn frame_chunks(&mut self, chunks: &mut Vec<String>) {
        for chunk in chunks.drain(..) {
            if let Some(a) = &mut self.assembler {
                a.push(&chunk);
            }
            match &mut self.framing {
                Framing::Chat { include_usage } => {
                    if !*include_usage && chunk.contains("\"choices\":[]") {
                        continue;
                    }
                    self.queue.push_back(frame(format!("data: {chunk}\n\n")));
                }
                Framing::Responses(events) => {
                    let mut out = Vec::new();
                    events.chunk(&chunk, &mut out);
                    self.queue.extend(out.into_iter().map(frame));
                }
                Framing::Raw => {}
            }
        }
    }

    fn close(&mut self) {
        self.ended = true;
        match &mut self.framing {
            Framing::Chat { .. } => self
                .queue
                .push_back(Bytes::from_static(b"data: [DONE]\n\n")),
            Framing::Responses(events) => {
                let mut out = Vec::new();
                events.finish(self.translator.usage(), &mut out);
                self.queue.extend(out.into_iter().map(frame));
            }
            Framing::Raw => {}
        }
    }

    fn fail(&mut self, error: StreamError) {
        self.ended = true;
        self.failure = Some(error.message.clone());
        match &mut self.framing {
            Framing::Chat { .. } | Framing::Raw => {
                let body = json!({"error": {"message": error.message, "type": error.kind, "param": null, "code": null}});
                self.queue.push_back(frame(format!("data: {body}\n\n")));
                if matches!(self.framing, Framing::Chat { .. }) {
                    self.queue
                        .push_back(Bytes::from_static(b"data: [DONE]\n\n"));
                }
            }
            Framing::Responses(events) => {
                let mut out = Vec::new();
                events.fail(&error.message, &mut out);
                self.queue.extend(out.into_iter().map(frame));
            }
        }
    }

    async fn next_frame(&mut self) -> Option<Bytes> {
        loop {
            if let Some(b) = self.hook_frame.take() {
                return Some(b);
            }
            if let Some(b) = self.queue.pop_front() {
                if self.keep.is_some() {
                    self.kept.push(b.clone());
                }
                return Some(b);
            }
            if self.ended {
                match self.output_hooks.take() {
                    Some(output) if self.failure.is_none() => {
                        self.run_output_hooks(output).await;
                        continue;
                    }
                    _ => return None,
                }
            }
            match tokio::time::timeout(KEEP_ALIVE, self.upstream.next()).await {
                Err(_) => return Some(Bytes::from_static(b": keep-alive\n\n")),
                Ok(Some(Ok(bytes))) => {
                    if let Err(e) = self.ingest(bytes) {
                        self.fail(e);
                    }
                }
                Ok(Some(Err(e))) => self.fail(upstream_failed(&e)),
                Ok(None) => {
                    if let Err(e) = self.end() {
                        self.fail(e);
                    }
                }
            }
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        let left = Some("the client closed the connection before the stream ended".into());
        if let Some((recorder, entry)) = self.complete_log("client_disconnected", left) {
            recorder.record_detached(entry);
        }
    }
}

/// `data: {"hook_results": {"<stage>": [...]}}`.
pub fn hook_chunk(stage: &str, results: &[HookResult]) -> Bytes {
    let chunk = json!({"hook_results": {stage: results}});
    frame(format!("data: {chunk}\n\n"))
}

fn upstream_failed(e: &reqwest::Error) -> StreamError {
    StreamError {
        message: format!("the upstream stream broke: {e}"),
        kind: "server_error".into(),
    }
}
