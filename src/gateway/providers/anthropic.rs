//! Placeholder until this adapter is written; every call is refused with a clear error.

use serde_json::Value;

use super::adapter::{Adapter, AdapterError, Endpoint, StreamTranslator, Target, UpstreamRequest};
use super::Provider;

pub struct Anthropic;

impl Adapter for Anthropic {
    fn request(
        &self,
        _: &Target,
        _: Endpoint,
        _: &Value,
        _: bool,
    ) -> Result<UpstreamRequest, AdapterError> {
        Err(AdapterError("not written yet".into()))
    }
    fn response(&self, _: Endpoint, _: &[u8], _: &str) -> Result<Value, AdapterError> {
        Err(AdapterError("not written yet".into()))
    }
    fn stream(&self, _: Endpoint, _: &str) -> Box<dyn StreamTranslator> {
        unimplemented!()
    }
    fn error(&self, provider: &Provider, status: u16, body: &[u8]) -> (u16, Value) {
        super::adapter::normalised_error(provider, status, &String::from_utf8_lossy(body), None)
    }
}
