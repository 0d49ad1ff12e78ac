//! Streaming answers: upstream bytes are translated chunk by chunk and forwarded as they
//! arrive. The stream is held only until its first event, so an upstream that fails before
//! saying anything can still fall back; after that, failures end the stream with an error
//! event. Dropping the body (the client went away) drops the upstream response with it, which
//! cancels the upstream call.

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

use axum::body::{Body, Bytes};
use futures_util::{Stream, StreamExt};
use serde_json::json;

use crate::gateway::providers::adapter::{StreamError, StreamTranslator};
use crate::gateway::responses::EventStream;

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
}

fn frame(text: String) -> Bytes {
    Bytes::from(text)
}

impl Forwarder {
    pub fn new(
        response: reqwest::Response,
        translator: Box<dyn StreamTranslator>,
        mut framing: Framing,
    ) -> Forwarder {
        let mut queue = VecDeque::new();
        if let Framing::Responses(events) = &mut framing {
            let mut out = Vec::new();
            events.start(&mut out);
            queue.extend(out.into_iter().map(frame));
        }
        Forwarder {
            upstream: Box::pin(response.bytes_stream()),
            translator,
            framing,
            queue,
            chunks: Vec::new(),
            ended: false,
        }
    }

    /// Reads upstream until the first translated event is ready. Fails if the upstream errs or
    /// ends before saying anything, so the caller may try another target.
    pub async fn commit(mut self) -> Result<Body, StreamError> {
        let preamble = self.queue.len();
        while self.queue.len() == preamble && !self.ended {
            match self.upstream.next().await {
                Some(Ok(bytes)) => self.ingest(bytes)?,
                Some(Err(e)) => return Err(upstream_failed(&e)),
                None => self.end()?,
            }
        }
        let stream = futures_util::stream::unfold(self, |mut f| async move {
            f.next_frame()
                .await
                .map(|b| (Ok::<_, std::io::Error>(b), f))
        });
        Ok(Body::from_stream(stream))
    }

    /// Translates a piece of the upstream body into frames for the client.
    fn ingest(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        if matches!(self.framing, Framing::Raw) {
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
            if let Some(b) = self.queue.pop_front() {
                return Some(b);
            }
            if self.ended {
                return None;
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

fn upstream_failed(e: &reqwest::Error) -> StreamError {
    StreamError {
        message: format!("the upstream stream broke: {e}"),
        kind: "server_error".into(),
    }
}
