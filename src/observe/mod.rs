//! Observability: what a request cost and which models a provider offers (more to come).

pub mod pricing;
