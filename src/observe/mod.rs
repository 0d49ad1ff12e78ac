//! Observability: request records and their writer, traces, cost and pricing, the gateway's
//! Prometheus metrics, and the export of records as OpenTelemetry spans.

pub mod assemble;
pub mod metrics;
pub mod otlp;
pub mod pricing;
pub mod record;
pub mod recorder;
pub mod trace;

#[cfg(test)]
pub(crate) mod test_support;
