//! The data plane's domain rules: providers and their adapters, routing configs and their
//! validation, upstream stream decoding.

pub mod config;
pub mod providers;
pub mod sse;
