//! Counters several nodes share (on Postgres): what the governor asks of the store that keeps
//! them. Each counter there is keyed as the node's own are, plus the rule's counting
//! definition, so a changed definition starts a counter of its own (seeded from the request
//! log) instead of inheriting one that counted other requests.

/// One shared counter.
#[derive(Debug, Clone, Copy)]
pub struct SharedKey<'a> {
    pub rule_id: &'a str,
    /// [`super::Rule::counting`].
    pub counting: &'a str,
    pub group: &'a str,
    pub window_start: i64,
}

/// A shared counter's values.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Shared {
    pub used: f64,
    /// Held by requests in flight.
    pub reserved: f64,
    /// Leased by nodes and not used yet ([`super::lease`]).
    pub leased: f64,
}

/// What admission asks of one counter.
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    pub key: SharedKey<'a>,
    /// What the counter starts from if no node has made it yet: this node's count of the
    /// request log.
    pub seed: f64,
    /// Held until settled (budgets, token rate limits).
    pub hold: f64,
    /// Counted as used at once (request-count rate limits).
    pub count: f64,
    /// The claim fits if used stays below `below` and used + reserved + leased + the claim at
    /// most `at_most` (the limit, with the tolerance of floating-point sums).
    pub below: f64,
    pub at_most: f64,
}

/// How admission went.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// Every claim is held; the counters after it, in the claims' order.
    Held(Vec<Shared>),
    /// The claim at this index does not fit; nothing is held.
    Refused(usize, Shared),
}

/// What this node sends of one counter after the fact, applied in this order: `from_lease` of
/// its lease turned into holds (requests it admitted against the lease), `release` of its
/// holds given back, `spent` added to use, and `give_back` of its lease returned unused.
#[derive(Debug, Clone, Copy)]
pub struct Release<'a> {
    pub key: SharedKey<'a>,
    pub from_lease: f64,
    pub release: f64,
    pub spent: f64,
    pub give_back: f64,
}

/// A counter of a rule in its current window, as listed by [`SharedCounters::sync`].
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    pub rule_id: String,
    pub group: String,
    pub window_start: i64,
    pub values: Shared,
}

/// A rule in force and its current window, as [`SharedCounters::sync`] is told them.
#[derive(Debug, Clone, Copy)]
pub struct Current<'a> {
    pub rule_id: &'a str,
    pub counting: &'a str,
    pub window_start: i64,
}

/// What [`SharedCounters::sync`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Synced {
    pub listed: Vec<Listed>,
    /// The other nodes had taken this node for dead and given back what it held, its leases
    /// too.
    pub forgotten: bool,
}

/// The store of shared counters. Errors are messages saying what failed.
pub trait SharedCounters: Send + Sync {
    /// Holds every claim, or none, atomically with every other node's claims (taking the
    /// counters in an order of its own, the same on every node).
    fn reserve(&self, claims: &[Claim]) -> Result<Admission, String>;

    /// Applies a [`Release`], bounded by what this node still holds; returns the use before it
    /// and the counter after it (`None`: the counter is gone, its window long over).
    fn settle(&self, release: &Release) -> Result<Option<(f64, Shared)>, String>;

    /// Leases this node up to `demand` of the counter's headroom below `limit` (sized by
    /// [`super::lease::size`]), making the counter from `seed` if needed; returns what it got
    /// and the counter after it.
    fn lease(
        &self,
        key: SharedKey,
        seed: f64,
        demand: f64,
        limit: f64,
    ) -> Result<(f64, Shared), String>;

    /// The counter, made from `seed` if it does not exist yet.
    fn seed(&self, key: SharedKey, seed: f64) -> Result<Shared, String>;

    /// Sets the counter's use back to zero (what requests in flight hold stays held).
    fn reset(&self, key: SharedKey) -> Result<Shared, String>;

    /// Says this node is alive, gives back what nodes not seen for a while held, drops the
    /// counters of windows that have ended, and lists the counters of `current`.
    fn sync(&self, now_ms: i64, current: &[Current]) -> Result<Synced, String>;
}
