//! tollgate: an AI gateway (data plane), its control plane, and the CLI that drives both.
#![forbid(unsafe_code)]

pub mod api;
pub mod cache;
pub mod cli;
pub mod client;
pub mod env;
pub mod error;
pub mod gateway;
pub mod governance;
pub mod guardrails;
pub mod observe;
pub mod output;
pub mod prompts;
pub mod server;
pub mod store;
