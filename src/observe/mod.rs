//! Observability: what a request cost and which models a provider offers (more to come).

pub mod assemble;
pub mod pricing;
pub mod record;
pub mod recorder;
pub mod trace;
