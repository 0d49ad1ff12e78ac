//! The data plane's domain rules: providers, routing configs and their validation.

pub mod config;
pub mod providers;
