//! Provider streams of server-sent events that each carry one JSON object naming its `type`
//! (Anthropic, Cohere): decoding, dispatch by type, and the check that the stream ended with
//! the provider's last event. The provider's translator handles the events.

use serde_json::Value;

use crate::gateway::providers::adapter::{StreamError, StreamTranslator, Usage};
use crate::gateway::sse::{Decoder, Event};

/// What a provider's typed-event translator supplies.
pub trait TypedEvents: Send {
    /// The provider, as the stream errors name it.
    const PROVIDER: &'static str;
    /// The event that ends a whole stream.
    const LAST_EVENT: &'static str;

    /// Handles one event: `kind` is its JSON `type` (else its SSE `event:` name, else empty).
    fn event(&mut self, kind: &str, v: &Value, out: &mut Vec<String>) -> Result<(), StreamError>;
    /// The last event has been handled; later events are ignored.
    fn done(&self) -> bool;
    fn usage(&self) -> Option<Usage>;
}

/// The [`StreamTranslator`] around a [`TypedEvents`] translator.
pub struct EventStream<T> {
    decoder: Decoder,
    translator: T,
}

impl<T: TypedEvents> EventStream<T> {
    pub fn new(translator: T) -> EventStream<T> {
        EventStream {
            decoder: Decoder::default(),
            translator,
        }
    }

    fn events(&mut self, events: Vec<Event>, out: &mut Vec<String>) -> Result<(), StreamError> {
        for event in events {
            let data = event.data.trim();
            if data.is_empty() || data == "[DONE]" || self.translator.done() {
                continue;
            }
            let v: Value = serde_json::from_str(data).map_err(malformed::<T>)?;
            let kind = v
                .get("type")
                .and_then(Value::as_str)
                .or(event.event.as_deref());
            self.translator.event(kind.unwrap_or(""), &v, out)?;
        }
        Ok(())
    }
}

fn malformed<T: TypedEvents>(detail: impl std::fmt::Display) -> StreamError {
    StreamError {
        message: format!("{} sent a malformed stream event: {detail}", T::PROVIDER),
        kind: "server_error".into(),
    }
}

impl<T: TypedEvents> StreamTranslator for EventStream<T> {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<String>) -> Result<(), StreamError> {
        let mut events = Vec::new();
        let fed = self.decoder.feed(bytes, &mut events);
        self.events(events, out)?;
        fed.map_err(|_| malformed::<T>("an event exceeds the size limit"))
    }

    fn finish(&mut self, out: &mut Vec<String>) -> Result<(), StreamError> {
        let mut events = Vec::new();
        self.decoder.finish(&mut events);
        self.events(events, out)?;
        if self.translator.done() {
            Ok(())
        } else {
            Err(StreamError {
                message: format!("{} closed the stream before {}", T::PROVIDER, T::LAST_EVENT),
                kind: "server_error".into(),
            })
        }
    }

    fn usage(&self) -> Option<Usage> {
        self.translator.usage()
    }
}
