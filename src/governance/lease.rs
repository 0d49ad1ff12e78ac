//! Leases of allowance (docs/postgres.md, "Leases of allowance"): with counters shared by
//! several nodes, each node takes a slice of a counter's headroom from the database and admits
//! against it in memory, so the database is off the request path while the slice lasts. A
//! lease is counted in the shared counter (`leased`) and under the node, so the nodes' use,
//! holds and leases together never pass a limit, and a dead node's leases go back with its
//! holds.

use std::sync::Arc;

use super::rules::Rule;

/// Of a counter's headroom, the part the live nodes may lease at once, split evenly among
/// them: near a limit, leases shrink towards nothing and admission goes to the database,
/// which keeps it exact.
const HEADROOM_SHARE: f64 = 0.5;

/// How long after this node last told the database it is alive it may admit against its
/// leases: well inside `store::counters::NODE_TIMEOUT_MS`, after which the other nodes take it
/// for dead and give its leases back.
pub const TRUSTED_FOR_MS: i64 = 10_000;

/// What a node with `demand` of recent use may lease of a counter with `headroom` left
/// (limit minus use, holds and leases) among `live_nodes`: its recent use, at most its share
/// of the headroom.
pub fn size(headroom: f64, live_nodes: u64, demand: f64) -> f64 {
    let share = headroom.max(0.0) * HEADROOM_SHARE / live_nodes.max(1) as f64;
    demand.min(share).max(0.0)
}

/// This node's lease of one counter in one window.
#[derive(Debug, Clone)]
pub struct Lease {
    pub rule: Arc<Rule>,
    /// Leased and not used yet.
    pub amount: f64,
    /// Admitted (against the lease or the database) in this sync period and the one before.
    demand_now: f64,
    demand_before: f64,
    /// A refill is asked for and not yet back.
    pub refilling: bool,
}

impl Lease {
    pub fn new(rule: Arc<Rule>) -> Lease {
        Lease {
            rule,
            amount: 0.0,
            demand_now: 0.0,
            demand_before: 0.0,
            refilling: false,
        }
    }

    /// This node's use over the last one or two sync periods: what a lease is sized to.
    pub fn demand(&self) -> f64 {
        self.demand_now.max(self.demand_before)
    }

    /// Counts `amount` admitted; true when the lease should be refilled now (it holds less
    /// than half the recent demand and no refill is on its way).
    pub fn admitted(&mut self, amount: f64) -> bool {
        self.demand_now += amount;
        let low = !self.refilling && self.amount < self.demand() / 2.0;
        if low {
            self.refilling = true;
        }
        low
    }

    /// Starts a sync period; true when nothing was admitted in the whole last one (idle).
    pub fn next_period(&mut self) -> bool {
        let idle = self.demand_now == 0.0;
        self.demand_before = self.demand_now;
        self.demand_now = 0.0;
        idle
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::governance::tests::budget;

    #[test]
    fn a_lease_is_the_recent_demand_within_a_share_of_the_headroom() {
        // Far from the limit: what the node used lately.
        assert_eq!(size(1000.0, 2, 30.0), 30.0);
        // Near it: a quarter of what is left with two nodes, half with one, so the nodes'
        // leases together never take all of it.
        assert_eq!(size(8.0, 2, 30.0), 2.0);
        assert_eq!(size(8.0, 1, 30.0), 4.0);
        assert_eq!(size(8.0, 0, 30.0), 4.0, "no node listed counts as one");
        // Nothing left, or nothing used: nothing leased.
        assert_eq!(size(0.0, 2, 30.0), 0.0);
        assert_eq!(size(-1.0, 2, 30.0), 0.0);
        assert_eq!(size(1000.0, 2, 0.0), 0.0);
    }

    #[test]
    fn a_lease_asks_for_a_refill_once_when_it_runs_below_half_the_demand() {
        let rule = Arc::new(budget("b", serde_json::json!({"credit_limit": 10.0})));
        let mut lease = Lease::new(rule);
        assert!(lease.admitted(1.0), "the first admission finds no lease");
        assert!(!lease.admitted(1.0), "a refill is already on its way");
        lease.refilling = false;
        lease.amount = 1.5;
        assert!(!lease.admitted(1.0), "1.5 left of a demand of 3");
        assert!(lease.admitted(1.0), "1.5 left of a demand of 4");
    }

    #[test]
    fn demand_spans_two_sync_periods_and_a_period_without_any_is_idle() {
        let rule = Arc::new(budget("b", serde_json::json!({"credit_limit": 10.0})));
        let mut lease = Lease::new(rule);
        lease.admitted(3.0);
        assert!(!lease.next_period());
        assert_eq!(lease.demand(), 3.0, "the last period's demand still counts");
        lease.admitted(1.0);
        assert_eq!(lease.demand(), 3.0);
        assert!(!lease.next_period());
        assert_eq!(lease.demand(), 1.0);
        assert!(lease.next_period(), "a whole period without any");
        assert_eq!(lease.demand(), 0.0);
    }
}
