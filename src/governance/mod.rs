//! Governance of the data plane: budgets, rate limits and model access, enforced in memory on
//! the hot path (see ARCHITECTURE.md, "Rules of the hot path") and rebuilt from the request
//! log at start.

pub mod estimate;
pub mod lease;
pub mod ledger;
pub mod rules;
pub mod shared;
pub mod window;

#[cfg(test)]
mod tests;

pub use ledger::{Actual, Denial, Event, Governor, Reservation, SpentRecord};
pub use rules::{Facts, Rule};
