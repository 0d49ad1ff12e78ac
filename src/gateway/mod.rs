//! The data plane's domain rules: providers and their adapters, routing configs (validation,
//! the runtime tree, conditions, parameter rewrites), model strings, upstream stream decoding.
//! Nothing here knows about HTTP servers; `server::gateway` drives it.

pub mod conditions;
pub mod config;
pub mod embeddings;
pub mod hook_set;
pub mod model;
pub mod params;
pub mod providers;
pub mod responses;
pub mod routing;
pub mod sse;
