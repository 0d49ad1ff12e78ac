//! The counters: admission reserves the most a call can use against every rule that applies,
//! atomically; settlement replaces the reservation with what the call used. Counters are keyed
//! by rule, group value and window start, so a new window starts from zero by itself and a
//! late settlement of an old window's call touches nothing.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use tokio::sync::mpsc::UnboundedSender;

use super::estimate::Demand;
use super::lease::{self, Lease};
use super::rules::{Facts, Kind, Metric, Rule};
use super::shared::{Admission, Claim, Current, Release, Shared, SharedCounters, SharedKey};
use crate::api::governance::{Owner, OWNER_API_KEY, OWNER_INTEGRATION, OWNER_WORKSPACE};
use crate::gateway::providers::adapter::Usage;
use crate::observe::pricing::Price;

/// Sums of floating-point costs may land a hair above a limit they exactly reach.
const EPSILON: f64 = 1e-9;

type CounterKey = (Arc<str>, String);
/// A counter's key and window start.
type LeaseKey = (Arc<str>, String, i64);

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counter {
    pub window_start: i64,
    pub used: f64,
    pub reserved: f64,
    pub alerted: bool,
    pub exhausted: bool,
    /// With shared counters: use settled here and not yet sent to them.
    pub unsent_used: f64,
    /// With shared counters: reservation given back here and not yet in them.
    pub unsent_release: f64,
    /// With shared counters: this node's lease turned into holds here and not yet in them.
    pub unsent_from_lease: f64,
}

impl Counter {
    /// Whether what was used reaches `limit` (sums of costs may fall a hair short of it).
    pub fn reached(&self, limit: f64) -> bool {
        self.used >= limit - EPSILON
    }

    /// Takes the shared counter's values, plus what this node settled and has not sent yet.
    fn mirror(&mut self, shared: Shared) {
        self.used = shared.used + self.unsent_used;
        self.reserved =
            at_least_nothing(shared.reserved + self.unsent_from_lease - self.unsent_release);
    }
}

/// The rules in force, indexed by the resource that owns them.
#[derive(Default)]
pub struct RuleSet {
    owned: HashMap<(String, String), Vec<Arc<Rule>>>,
    general: Vec<Arc<Rule>>,
}

impl RuleSet {
    pub fn new(rules: Vec<Rule>) -> RuleSet {
        let mut set = RuleSet::default();
        for rule in rules.into_iter().map(Arc::new) {
            match &rule.owner {
                Some(o) => set
                    .owned
                    .entry((o.kind.clone(), o.id.clone()))
                    .or_default()
                    .push(rule),
                None => set.general.push(rule),
            }
        }
        set
    }

    fn owned_by(&self, kind: &str, id: Option<&str>) -> &[Arc<Rule>] {
        id.and_then(|id| self.owned.get(&(kind.to_string(), id.to_string())))
            .map_or(&[], Vec::as_slice)
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<Rule>> {
        self.owned.values().flatten().chain(&self.general)
    }

    /// The rules that apply to a call, rate limits first.
    fn applicable<'a>(&'a self, facts: &Facts) -> Vec<&'a Arc<Rule>> {
        let mut rules: Vec<&Arc<Rule>> = self
            .owned_by(OWNER_API_KEY, Some(facts.api_key))
            .iter()
            .chain(self.owned_by(OWNER_WORKSPACE, facts.workspace))
            .chain(self.owned_by(OWNER_INTEGRATION, facts.integration))
            .chain(&self.general)
            .filter(|r| r.applies(facts))
            .collect();
        rules.sort_by_key(|r| r.kind != Kind::Rate);
        rules
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Rule>> {
        self.all().find(|r| &*r.id == id)
    }
}

/// A budget crossing its alert threshold or its limit, once per window and group value.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub rule_id: Arc<str>,
    pub rule_name: String,
    /// `alert` or `exhausted`.
    pub kind: &'static str,
    pub value_key: String,
    pub usage: f64,
    pub limit: f64,
    pub window_start: i64,
    pub resets_at: Option<i64>,
}

/// Why a call was refused.
#[derive(Debug)]
pub struct Denial {
    pub rule: Arc<Rule>,
    pub group: String,
    pub reason: Reason,
}

#[derive(Debug)]
pub enum Reason {
    /// The rule cannot fit the call in its window.
    Exceeded {
        used: f64,
        reserved: f64,
        needed: f64,
        resets_at: Option<i64>,
    },
    /// A cost budget applies and the model has no price.
    Unpriced,
    /// The counters shared with other nodes cannot be reached (why).
    Unavailable(String),
}

fn describe(rule: &Rule, value: f64) -> String {
    match rule.metric {
        Metric::Cost => format!("${value:.6}"),
        Metric::Tokens => format!("{value:.0} tokens"),
        Metric::Requests => format!("{value:.0} requests"),
    }
}

impl Denial {
    pub fn message(&self, model: &str) -> String {
        let what = match self.rule.kind {
            Kind::Budget => "budget",
            Kind::Rate => "rate limit",
        };
        let group = if self.group.is_empty() {
            String::new()
        } else {
            format!(" for {}", self.group)
        };
        match &self.reason {
            Reason::Unpriced => format!(
                "{what} {:?} ({}) counts cost, and model {model} has no price: add it to the integration's configurations.pricing",
                self.rule.name, self.rule.id
            ),
            Reason::Unavailable(why) => format!(
                "{what} {:?} ({}) applies, and the counters this gateway shares with its other nodes cannot be reached ({why}); requests a budget or rate limit applies to are refused until the database answers again",
                self.rule.name, self.rule.id
            ),
            Reason::Exceeded { used, reserved, needed, resets_at } => {
                let until = resets_at.map_or(String::new(), |at| {
                    format!("; it resets at {}", crate::observe::record::format_ms(at))
                });
                format!(
                    "{what} {:?} ({}){group} is exhausted: {} used and {} held by requests in flight, of {}; this request may need {}{until}",
                    self.rule.name,
                    self.rule.id,
                    describe(&self.rule, *used),
                    describe(&self.rule, *reserved),
                    describe(&self.rule, self.rule.limit),
                    describe(&self.rule, *needed),
                )
            }
        }
    }

    /// Whole seconds until the rule's window ends, at least 1.
    pub fn retry_after(&self, now_ms: i64) -> Option<u64> {
        match self.reason {
            Reason::Exceeded {
                resets_at: Some(at),
                ..
            } => Some(((at - now_ms).max(1) as u64).div_ceil(1000)),
            _ => None,
        }
    }
}

/// What a settled call used.
#[derive(Debug, Clone, Copy, Default)]
pub struct Actual {
    /// `None`: unknown, so the reservation is kept as the spend.
    pub cost: Option<f64>,
    pub tokens: Option<u64>,
}

impl Actual {
    /// What a call with `usage` at `price` used: nothing for a failure without usage, unknown
    /// for a success without it (so its reservation is kept as the spend).
    pub fn of(usage: Option<Usage>, price: Option<Price>, success: bool) -> Actual {
        match usage {
            Some(u) => Actual {
                cost: price.map(|p| p.cost_usd(u)),
                tokens: Some(u.prompt_tokens + u.completion_tokens),
            },
            None if success => Actual::default(),
            None => Actual {
                cost: Some(0.0),
                tokens: Some(0),
            },
        }
    }
}

struct Hold {
    rule: Arc<Rule>,
    group: String,
    window_start: i64,
    amount: f64,
}

impl Hold {
    fn key(&self) -> SharedKey<'_> {
        SharedKey {
            rule_id: &self.rule.id,
            counting: &self.rule.counting,
            group: &self.group,
            window_start: self.window_start,
        }
    }
}

/// A settlement, lease use or lease give-back the shared counters have not heard of yet
/// (see [`Release`]; `hold.amount` is what is released).
struct Unsent {
    hold: Hold,
    spent: f64,
    from_lease: f64,
    give_back: f64,
    /// When settlements are merged into one: each one's spend, in order, so the events they
    /// set off are those they would have set off one by one.
    steps: Vec<f64>,
}

impl Unsent {
    fn settled(hold: Hold, spent: f64) -> Unsent {
        Unsent {
            hold,
            spent,
            from_lease: 0.0,
            give_back: 0.0,
            steps: Vec::new(),
        }
    }

    /// `amount` of this node's lease of `rule`'s counter given back.
    fn give_back(rule: Arc<Rule>, group: String, window_start: i64, amount: f64) -> Unsent {
        Unsent {
            hold: Hold {
                rule,
                group,
                window_start,
                amount: 0.0,
            },
            spent: 0.0,
            from_lease: 0.0,
            give_back: amount,
            steps: Vec::new(),
        }
    }
}

/// Held against the rules until settled; released untouched if dropped unsettled (a call that
/// never reached the provider, or whose client left).
pub struct Reservation {
    governor: Option<Arc<Governor>>,
    holds: Vec<Hold>,
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation")
            .field("holds", &self.holds.len())
            .finish()
    }
}

impl Reservation {
    pub fn settle(mut self, actual: Actual, now_ms: i64) {
        if let Some(g) = self.governor.take() {
            g.settle(std::mem::take(&mut self.holds), Some(actual), now_ms);
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(g) = self.governor.take() {
            let now = crate::observe::record::now_ms();
            g.settle(std::mem::take(&mut self.holds), None, now);
        }
    }
}

/// A record's part in the counters, read back at start.
pub struct SpentRecord {
    pub created_ms: i64,
    pub api_key: String,
    pub integration: Option<String>,
    pub provider: String,
    pub model: String,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub cost: Option<f64>,
    pub tokens: u64,
}

pub struct Governor {
    rules: RwLock<Arc<RuleSet>>,
    /// This node's counters; with `shared`, a mirror of the shared ones.
    counters: Mutex<HashMap<CounterKey, Counter>>,
    events: Option<UnboundedSender<Event>>,
    /// The counters of every node (Postgres); `None`: this node's are the only ones.
    shared: Option<Arc<dyn SharedCounters>>,
    /// Settlements waiting to be sent to `shared`, oldest first.
    unsent: Mutex<VecDeque<Unsent>>,
    /// Told when a settlement waits or a lease runs low.
    pub unsent_waiting: tokio::sync::Notify,
    /// With `shared`: this node's leases of allowance.
    leases: Mutex<HashMap<LeaseKey, Lease>>,
    /// Until when (ms) the leases may be admitted against: a while after the last sync.
    leases_trusted_until: AtomicI64,
    /// Some lease asks for a refill.
    refill_wanted: AtomicBool,
    /// Written while leases are refilled (from the database to the leases), read while a
    /// request claims in the database.
    refills: RwLock<()>,
}

impl Governor {
    pub fn new(
        events: Option<UnboundedSender<Event>>,
        shared: Option<Arc<dyn SharedCounters>>,
    ) -> Governor {
        Governor {
            rules: RwLock::default(),
            counters: Mutex::default(),
            events,
            shared,
            unsent: Mutex::default(),
            unsent_waiting: tokio::sync::Notify::new(),
            leases: Mutex::default(),
            leases_trusted_until: AtomicI64::new(0),
            refill_wanted: AtomicBool::new(false),
            refills: RwLock::default(),
        }
    }

    /// Whether the counters are shared with other nodes.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    pub fn rules(&self) -> Arc<RuleSet> {
        self.rules.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts `rules` in force; counters of rules that are gone are dropped, and leases taken
    /// under a rule that is gone or changed are given back.
    pub fn set_rules(&self, rules: Vec<Rule>) {
        let set = Arc::new(RuleSet::new(rules));
        let ids: HashSet<Arc<str>> = set.all().map(|r| r.id.clone()).collect();
        *self.rules.write().unwrap_or_else(|e| e.into_inner()) = set.clone();
        self.counters().retain(|(id, _), _| ids.contains(id));
        self.give_back_leases(|_, lease| {
            set.get(&lease.rule.id)
                .is_none_or(|r| r.limit != lease.rule.limit || !r.same_counting(&lease.rule))
        });
    }

    fn counters(&self) -> MutexGuard<'_, HashMap<CounterKey, Counter>> {
        self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves `demand` against every rule that applies, or refuses with the first rule
    /// that cannot fit it. Request-count rules already counted for this client request (an
    /// earlier fallback target) are in `counted` and are not counted again.
    pub fn admit(
        self: &Arc<Self>,
        facts: &Facts,
        demand: &Demand,
        counted: &mut Vec<Arc<str>>,
        now_ms: i64,
    ) -> Result<Reservation, Denial> {
        let rules = self.rules();
        let mut wanted = Vec::new();
        for rule in rules.applicable(facts) {
            let amount = match rule.metric {
                Metric::Requests if counted.contains(&rule.id) => continue,
                Metric::Requests => 1.0,
                Metric::Tokens => demand.tokens as f64,
                Metric::Cost => match demand.cost {
                    Some(c) => c,
                    None => {
                        return Err(Denial {
                            rule: rule.clone(),
                            group: rule.group(facts),
                            reason: Reason::Unpriced,
                        })
                    }
                },
            };
            wanted.push((rule.clone(), rule.group(facts), amount));
        }
        if wanted.is_empty() {
            return Ok(Reservation {
                governor: None,
                holds: Vec::new(),
            });
        }
        if let Some(shared) = &self.shared {
            return self.admit_shared(shared.as_ref(), wanted, counted, now_ms);
        }
        let mut counters = self.counters();
        for (rule, group, amount) in &wanted {
            let (start, end) = rule.period.window(now_ms);
            let c = current(&mut counters, rule, group, start);
            if c.reached(rule.limit) || c.used + c.reserved + amount > rule.limit + EPSILON {
                return Err(Denial {
                    rule: rule.clone(),
                    group: group.clone(),
                    reason: Reason::Exceeded {
                        used: c.used,
                        reserved: c.reserved,
                        needed: *amount,
                        resets_at: end,
                    },
                });
            }
        }
        let mut admitted = Vec::with_capacity(wanted.len());
        for (rule, group, amount) in wanted {
            let (start, _) = rule.period.window(now_ms);
            let c = current(&mut counters, &rule, &group, start);
            if rule.metric == Metric::Requests {
                c.used += 1.0;
            } else {
                c.reserved += amount;
            }
            admitted.push((rule, group, start, amount));
        }
        Ok(self.reservation(admitted, counted))
    }

    /// What admitted claims (rule, group value, window start, amount) leave: request counts
    /// counted for the client request, the rest held until settled.
    fn reservation(
        self: &Arc<Self>,
        admitted: Vec<(Arc<Rule>, String, i64, f64)>,
        counted: &mut Vec<Arc<str>>,
    ) -> Reservation {
        let mut holds = Vec::with_capacity(admitted.len());
        for (rule, group, window_start, amount) in admitted {
            if rule.metric == Metric::Requests {
                counted.push(rule.id.clone());
            } else {
                holds.push(Hold {
                    rule,
                    group,
                    window_start,
                    amount,
                });
            }
        }
        Reservation {
            governor: Some(self.clone()),
            holds,
        }
    }

    /// [`Governor::admit`] against the shared counters: what this node's leases cover is
    /// taken from them in memory, and only the rest is claimed in the database, which decides.
    fn admit_shared(
        self: &Arc<Self>,
        shared: &dyn SharedCounters,
        wanted: Vec<(Arc<Rule>, String, f64)>,
        counted: &mut Vec<Arc<str>>,
        now_ms: i64,
    ) -> Result<Reservation, Denial> {
        let starts: Vec<i64> = wanted
            .iter()
            .map(|(rule, _, _)| rule.period.window(now_ms).0)
            .collect();
        let mut taken = self.take_from_leases(&wanted, &starts, now_ms, true);
        let mut values = Vec::new();
        let mut rest = uncovered(&wanted, &taken);
        if !rest.is_empty() {
            // Taken again with refills kept out, so none lands between what the claim takes
            // from the leases and the claim (its headroom would then be in the lease, unseen).
            self.return_to_leases(&wanted, &starts, &taken);
            let _claiming = self.refills.read().unwrap_or_else(|e| e.into_inner());
            taken = self.take_from_leases(&wanted, &starts, now_ms, false);
            rest = uncovered(&wanted, &taken);
            if !rest.is_empty() {
                // Settlements this node has not sent yet still hold their reservations there:
                // sent first, so a claim near a limit sees what was really spent. (If this
                // fails, the claim will say why.)
                let _ = self.send_settlements(now_ms);
                match self.claim_shared(shared, &wanted, &starts, &taken, &rest, now_ms) {
                    Ok(claimed) => values = claimed,
                    Err(denial) => {
                        self.return_to_leases(&wanted, &starts, &taken);
                        return Err(denial);
                    }
                }
            }
        }
        let mut used_leases = Vec::new();
        {
            let mut counters = self.counters();
            for (((rule, group, _), start), taken) in wanted.iter().zip(&starts).zip(&taken) {
                if *taken <= 0.0 {
                    continue;
                }
                let c = current(&mut counters, rule, group, *start);
                c.unsent_from_lease += taken;
                // A request count is used at once: its part of the lease goes straight to use.
                let counts = rule.metric == Metric::Requests;
                if counts {
                    c.used += taken;
                    c.unsent_used += taken;
                    c.unsent_release += taken;
                } else {
                    c.reserved += taken;
                }
                let counted_now = if counts { *taken } else { 0.0 };
                used_leases.push(Unsent {
                    hold: Hold {
                        rule: rule.clone(),
                        group: group.clone(),
                        window_start: *start,
                        amount: counted_now,
                    },
                    spent: counted_now,
                    from_lease: *taken,
                    give_back: 0.0,
                    steps: Vec::new(),
                });
            }
            for (i, values) in rest.iter().zip(values) {
                let (rule, group, _) = &wanted[*i];
                current(&mut counters, rule, group, starts[*i]).mirror(values);
            }
        }
        self.queue(used_leases);
        let admitted = wanted
            .into_iter()
            .zip(starts)
            .map(|((rule, group, amount), start)| (rule, group, start, amount))
            .collect();
        Ok(self.reservation(admitted, counted))
    }

    /// Takes what this node's leases hold of each claim (all of it, or what is left), and
    /// counts the claims as demand if `demand`; takes nothing while the leases are not trusted.
    fn take_from_leases(
        &self,
        wanted: &[(Arc<Rule>, String, f64)],
        starts: &[i64],
        now_ms: i64,
        demand: bool,
    ) -> Vec<f64> {
        let trusted = now_ms < self.leases_trusted_until.load(Ordering::Relaxed);
        let mut refill = false;
        let taken = {
            let mut leases = self.leases();
            wanted
                .iter()
                .zip(starts)
                .map(|((rule, group, amount), start)| {
                    let lease = lease_of(&mut leases, rule, group, *start);
                    let taken = match trusted {
                        false => 0.0,
                        true if lease.amount >= amount - EPSILON => *amount,
                        true => lease.amount,
                    };
                    lease.amount = (lease.amount - taken).max(0.0);
                    refill |= demand && lease.admitted(*amount);
                    taken
                })
                .collect()
        };
        if refill {
            self.refill_wanted.store(true, Ordering::Relaxed);
            self.unsent_waiting.notify_one();
        }
        taken
    }

    /// Puts back into the leases what a refused admission took from them.
    fn return_to_leases(&self, wanted: &[(Arc<Rule>, String, f64)], starts: &[i64], taken: &[f64]) {
        let mut leases = self.leases();
        for (((rule, group, _), start), taken) in wanted.iter().zip(starts).zip(taken) {
            if *taken > 0.0 {
                lease_of(&mut leases, rule, group, *start).amount += taken;
            }
        }
    }

    /// Claims in the database what the leases did not cover (the claims at `rest`): the
    /// counters after it, in `rest`'s order, or the denial.
    fn claim_shared(
        &self,
        shared: &dyn SharedCounters,
        wanted: &[(Arc<Rule>, String, f64)],
        starts: &[i64],
        taken: &[f64],
        rest: &[usize],
        now_ms: i64,
    ) -> Result<Vec<Shared>, Denial> {
        let seeds: Vec<f64> = {
            let mut counters = self.counters();
            rest.iter()
                .map(|&i| current(&mut counters, &wanted[i].0, &wanted[i].1, starts[i]).used)
                .collect()
        };
        let claims: Vec<Claim> = rest
            .iter()
            .zip(&seeds)
            .map(|(&i, seed)| {
                let (rule, group, amount) = &wanted[i];
                let need = amount - taken[i];
                let counts = rule.metric == Metric::Requests;
                Claim {
                    key: SharedKey {
                        rule_id: &rule.id,
                        counting: &rule.counting,
                        group,
                        window_start: starts[i],
                    },
                    seed: *seed,
                    hold: if counts { 0.0 } else { need },
                    count: if counts { need } else { 0.0 },
                    below: rule.limit - EPSILON,
                    at_most: rule.limit + EPSILON,
                }
            })
            .collect();
        match shared.reserve(&claims) {
            Ok(Admission::Held(values)) => Ok(values),
            Ok(Admission::Refused(j, values)) => {
                let i = rest[j];
                let (rule, group, amount) = &wanted[i];
                current(&mut self.counters(), rule, group, starts[i]).mirror(values);
                Err(Denial {
                    rule: rule.clone(),
                    group: group.clone(),
                    reason: Reason::Exceeded {
                        used: values.used,
                        // The nodes' unused leases hold headroom as requests in flight do.
                        reserved: values.reserved + values.leased,
                        needed: *amount,
                        resets_at: rule.period.window(now_ms).1,
                    },
                })
            }
            Err(why) => {
                let (rule, group, _) = &wanted[rest[0]];
                Err(Denial {
                    rule: rule.clone(),
                    group: group.clone(),
                    reason: Reason::Unavailable(why),
                })
            }
        }
    }

    fn leases(&self) -> MutexGuard<'_, HashMap<LeaseKey, Lease>> {
        self.leases.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues what the shared counters have to hear of.
    fn queue(&self, unsent: Vec<Unsent>) {
        if unsent.is_empty() {
            return;
        }
        self.unsent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(unsent);
        self.unsent_waiting.notify_one();
    }

    /// Gives back the leases `which` picks (by window start), and forgets them.
    fn give_back_leases(&self, mut which: impl FnMut(i64, &mut Lease) -> bool) {
        let mut back = Vec::new();
        self.leases().retain(|(_, group, start), lease| {
            if !which(*start, lease) {
                return true;
            }
            if lease.amount > 0.0 {
                back.push(Unsent::give_back(
                    lease.rule.clone(),
                    group.clone(),
                    *start,
                    lease.amount,
                ));
            }
            false
        });
        self.queue(back);
    }

    /// Gives back every lease (on shutdown).
    pub fn give_back_all_leases(&self) {
        self.give_back_leases(|_, _| true);
    }

    /// Refills the leases that ran low, each up to its recent demand, as far as the shared
    /// counters' headroom allows ([`lease::size`]).
    pub fn refill_leases(&self, now_ms: i64) -> Result<(), String> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        if !self.refill_wanted.swap(false, Ordering::Relaxed) {
            return Ok(());
        }
        if now_ms >= self.leases_trusted_until.load(Ordering::Relaxed) {
            // This node may not admit against leases yet (before its first sync, or while
            // syncs fail): a lease now would only hold headroom from every node, its own next
            // claims included. The refill waits for a sync.
            self.refill_wanted.store(true, Ordering::Relaxed);
            return Ok(());
        }
        let _refilling = self.refills.write().unwrap_or_else(|e| e.into_inner());
        let asks: Vec<(LeaseKey, Arc<Rule>, f64)> = self
            .leases()
            .iter()
            .filter(|(_, l)| l.refilling)
            .map(|(k, l)| (k.clone(), l.rule.clone(), (l.demand() - l.amount).max(0.0)))
            .collect();
        let mut failed = None;
        for (k, rule, want) in asks {
            let (_, group, start) = &k;
            let got = match &failed {
                Some(_) => None,
                // A lease of a window that has ended is given back at the next sync.
                None if rule.period.window(now_ms).0 != *start => None,
                None => {
                    let seed = current(&mut self.counters(), &rule, group, *start).used;
                    let key = SharedKey {
                        rule_id: &rule.id,
                        counting: &rule.counting,
                        group,
                        window_start: *start,
                    };
                    match shared.lease(key, seed, want, rule.limit) {
                        Ok(got) => Some(got),
                        Err(e) => {
                            failed = Some(e);
                            None
                        }
                    }
                }
            };
            let mut leases = self.leases();
            let lease = leases.get_mut(&k);
            let Some((amount, values)) = got else {
                if let Some(l) = lease {
                    l.refilling = false;
                }
                continue;
            };
            match lease {
                Some(l) => {
                    l.amount += amount;
                    l.refilling = false;
                }
                // Given back while the refill was on its way (idle, or its rule changed).
                None if amount > 0.0 => {
                    drop(leases);
                    self.queue(vec![Unsent::give_back(
                        rule.clone(),
                        group.clone(),
                        *start,
                        amount,
                    )]);
                    continue;
                }
                None => continue,
            }
            drop(leases);
            current(&mut self.counters(), &rule, group, *start).mirror(values);
        }
        failed.map_or(Ok(()), Err)
    }

    fn settle(&self, holds: Vec<Hold>, actual: Option<Actual>, now_ms: i64) {
        if self.shared.is_some() {
            self.settle_here(holds, actual);
            return;
        }
        let mut events = Vec::new();
        {
            let mut counters = self.counters();
            for h in holds {
                let Some(c) = counters.get_mut(&(h.rule.id.clone(), h.group.clone())) else {
                    continue;
                };
                if c.window_start != h.window_start {
                    continue;
                }
                c.reserved = at_least_nothing(c.reserved - h.amount);
                let Some(actual) = actual else {
                    continue;
                };
                c.used += spent(&h, actual);
                events.extend(crossings(&h.rule, &h.group, c, now_ms));
            }
        }
        self.send_events(events);
    }

    fn send_events(&self, events: Vec<Event>) {
        if let Some(tx) = &self.events {
            for e in events {
                let _ = tx.send(e);
            }
        }
    }

    /// With shared counters: settles in the local counters at once (so this node's usage
    /// shows it) and queues the settlement for the shared ones, which hold the reservation
    /// until it arrives: a late settlement makes admission stricter, never looser.
    fn settle_here(&self, holds: Vec<Hold>, actual: Option<Actual>) {
        if holds.is_empty() {
            return;
        }
        {
            let mut counters = self.counters();
            let mut unsent = self.unsent.lock().unwrap_or_else(|e| e.into_inner());
            for hold in holds {
                let spent = actual.map_or(0.0, |a| spent(&hold, a));
                if let Some(c) = counters
                    .get_mut(&(hold.rule.id.clone(), hold.group.clone()))
                    .filter(|c| c.window_start == hold.window_start)
                {
                    c.reserved = at_least_nothing(c.reserved - hold.amount);
                    c.used += spent;
                    c.unsent_used += spent;
                    c.unsent_release += hold.amount;
                }
                unsent.push_back(Unsent::settled(hold, spent));
            }
        }
        self.unsent_waiting.notify_one();
    }

    /// Sends what is queued now to the shared counters, one statement per counter (what is
    /// queued meanwhile waits for the next call, so a busy node's calls each carry many
    /// requests); stops at the first that fails, which stays queued with the rest. Budget
    /// events come from here: the settlement that takes the shared counter across a threshold
    /// sets it off, on whichever node it ran, so each is sent once.
    pub fn send_settlements(&self, now_ms: i64) -> Result<(), String> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        let queue = || self.unsent.lock().unwrap_or_else(|e| e.into_inner());
        // Taken whole, and not locked while sending: requests settle meanwhile.
        let mut batch = merged(std::mem::take(&mut *queue()));
        while let Some(u) = batch.pop() {
            let release = Release {
                key: u.hold.key(),
                from_lease: u.from_lease,
                release: u.hold.amount,
                spent: u.spent,
                give_back: u.give_back,
            };
            let settled = match shared.settle(&release) {
                Ok(settled) => settled,
                Err(e) => {
                    let mut queue = queue();
                    queue.push_front(u);
                    queue.extend(batch);
                    return Err(e);
                }
            };
            self.settled(&u, settled, now_ms);
        }
        Ok(())
    }

    /// Takes a settlement the shared counters applied into the local counter.
    fn settled(&self, u: &Unsent, settled: Option<(f64, Shared)>, now_ms: i64) {
        let mut counters = self.counters();
        let Some(c) = counters
            .get_mut(&(u.hold.rule.id.clone(), u.hold.group.clone()))
            .filter(|c| c.window_start == u.hold.window_start)
        else {
            return;
        };
        c.unsent_used -= u.spent;
        c.unsent_release -= u.hold.amount;
        c.unsent_from_lease -= u.from_lease;
        let Some((before, after)) = settled else {
            return;
        };
        passed(&u.hold.rule, c, before);
        // The use after each merged settlement (just the counter's, if none was merged),
        // counted back from the counter's: `before` is a difference, so counting forward from
        // it would report 49.99999999999999 % for 50 %.
        let mut after_each = vec![after.used];
        for step in u.steps.iter().skip(1).rev() {
            after_each.push(after_each[after_each.len() - 1] - step);
        }
        let mut events = Vec::new();
        for used in after_each.into_iter().rev() {
            c.used = used;
            events.extend(crossings(&u.hold.rule, &u.hold.group, c, now_ms));
        }
        c.mirror(after);
        drop(counters);
        self.send_events(events);
    }

    /// Settlements not yet sent to the shared counters.
    pub fn unsent(&self) -> usize {
        self.unsent.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Brings the local counters of every rule in force to the shared values (so usage shows
    /// what every node spent), and keeps this node's holds and leases alive there. Gives back
    /// the leases of windows that have ended and those nothing used since the last sync.
    pub fn sync_shared(&self, now_ms: i64) -> Result<(), String> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        self.give_back_leases(|start, lease| {
            let idle = lease.next_period();
            idle || lease.rule.period.window(now_ms).0 != start
        });
        let rules = self.rules();
        let current_windows: Vec<Current> = rules
            .all()
            .map(|r| Current {
                rule_id: &r.id,
                counting: &r.counting,
                window_start: r.period.window(now_ms).0,
            })
            .collect();
        let synced = shared.sync(now_ms, &current_windows)?;
        if synced.forgotten {
            // The other nodes gave this node's leases back already.
            self.leases().clear();
        }
        self.leases_trusted_until
            .store(now_ms + lease::TRUSTED_FOR_MS, Ordering::Relaxed);
        let mut counters = self.counters();
        for l in synced.listed {
            if let Some(rule) = rules.get(&l.rule_id) {
                current(&mut counters, rule, &l.group, l.window_start).mirror(l.values);
            }
        }
        Ok(())
    }

    /// Starts the counters of `only` (or of every rule) again from `records`: the request log
    /// is the source of truth. `resets` holds manual resets by (rule id, group value);
    /// `alerted` the (rule id, group value, window start) whose alert was already sent.
    pub fn rebuild(
        &self,
        only: Option<&HashSet<Arc<str>>>,
        records: impl IntoIterator<Item = SpentRecord>,
        workspace_of: impl Fn(&str) -> Option<String>,
        resets: &HashMap<(String, String), i64>,
        alerted: &HashSet<(String, String, i64)>,
        now_ms: i64,
    ) -> Result<(), String> {
        let rules = self.rules();
        let chosen: Vec<&Arc<Rule>> = rules
            .all()
            .filter(|r| only.is_none_or(|ids| ids.contains(&r.id)))
            .collect();
        let mut fresh: HashMap<CounterKey, Counter> = HashMap::new();
        for record in records {
            let workspace = workspace_of(&record.api_key);
            let facts = Facts {
                api_key: &record.api_key,
                workspace: workspace.as_deref(),
                integration: record.integration.as_deref(),
                provider: &record.provider,
                model: &record.model,
                metadata: &record.metadata,
            };
            for rule in &chosen {
                let (start, _) = rule.period.window(now_ms);
                if record.created_ms < start || !rule.applies(&facts) {
                    continue;
                }
                let group = rule.group(&facts);
                let reset = resets.get(&(rule.id.to_string(), group.clone()));
                if reset.is_some_and(|at| record.created_ms < *at) {
                    continue;
                }
                let c = current(&mut fresh, rule, &group, start);
                c.used += match rule.metric {
                    Metric::Cost => record.cost.unwrap_or(0.0),
                    Metric::Tokens => record.tokens as f64,
                    Metric::Requests => 1.0,
                };
            }
        }
        let mut seeds = Vec::new();
        for ((id, group), c) in fresh.iter_mut() {
            let rule = chosen
                .iter()
                .find(|r| r.id == *id)
                .expect("counted rules are chosen");
            c.alerted = alerted.contains(&(id.to_string(), group.clone(), c.window_start));
            c.exhausted = c.reached(rule.limit);
            seeds.push(((*rule).clone(), group.clone(), c.window_start, c.used));
        }
        {
            let mut counters = self.counters();
            counters.retain(|(id, _), _| !chosen.iter().any(|r| r.id == *id));
            counters.extend(fresh);
        }
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        // A shared counter no node has made yet starts from this count of the request log
        // (which every node shares), so upgrading to shared counters keeps the spend.
        for (rule, group, start, used) in seeds {
            let key = SharedKey {
                rule_id: &rule.id,
                counting: &rule.counting,
                group: &group,
                window_start: start,
            };
            let values = shared.seed(key, used)?;
            current(&mut self.counters(), &rule, &group, start).mirror(values);
        }
        Ok(())
    }

    /// The earliest time any window of `only` (or of every rule) starts: where a rebuild must
    /// read records from.
    pub fn rebuild_from(&self, only: Option<&HashSet<Arc<str>>>, now_ms: i64) -> Option<i64> {
        self.rules()
            .all()
            .filter(|r| only.is_none_or(|ids| ids.contains(&r.id)))
            .map(|r| r.period.window(now_ms).0)
            .min()
    }

    /// Sets one group value's usage in its current window back to zero (on every node, with
    /// shared counters).
    pub fn reset(&self, rule_id: &str, group: &str, now_ms: i64) -> Result<(), String> {
        let Some(rule) = self.rules().get(rule_id).cloned() else {
            return Ok(());
        };
        let (start, _) = rule.period.window(now_ms);
        let key = SharedKey {
            rule_id: &rule.id,
            counting: &rule.counting,
            group,
            window_start: start,
        };
        let values = self.shared.as_ref().map(|s| s.reset(key)).transpose()?;
        let mut counters = self.counters();
        let c = current(&mut counters, &rule, group, start);
        match values {
            Some(v) => c.mirror(v),
            None => c.used = 0.0,
        }
        c.alerted = false;
        c.exhausted = false;
        Ok(())
    }

    /// The counters of a rule in their current windows, fullest first.
    pub fn counters_of(&self, rule_id: &str, now_ms: i64) -> Vec<(String, Counter)> {
        let Some(rule) = self.rules().get(rule_id).cloned() else {
            return Vec::new();
        };
        let (start, _) = rule.period.window(now_ms);
        let mut list: Vec<(String, Counter)> = self
            .counters()
            .iter()
            .filter(|((id, _), _)| *id == rule.id)
            .map(|((_, group), c)| {
                let c = if c.window_start == start {
                    *c
                } else {
                    Counter {
                        window_start: start,
                        ..Counter::default()
                    }
                };
                (group.clone(), c)
            })
            .collect();
        list.sort_by(|a, b| (b.1.used + b.1.reserved).total_cmp(&(a.1.used + a.1.reserved)));
        list
    }

    /// Whether a budget owned by `owner` has reached its limit in its current window.
    pub fn exhausted(&self, owner: &Owner, now_ms: i64) -> bool {
        let rules = self.rules();
        let owned = rules.owned_by(&owner.kind, Some(&owner.id));
        owned.iter().filter(|r| r.kind == Kind::Budget).any(|r| {
            self.counters_of(&r.id, now_ms)
                .iter()
                .any(|(_, c)| c.reached(r.limit))
        })
    }
}

/// The counter of `rule` and `group` in the window starting at `start`, started afresh when
/// the one kept is from an earlier window.
fn current<'a>(
    counters: &'a mut HashMap<CounterKey, Counter>,
    rule: &Rule,
    group: &str,
    start: i64,
) -> &'a mut Counter {
    let c = counters
        .entry((rule.id.clone(), group.to_string()))
        .or_insert(Counter {
            window_start: start,
            ..Counter::default()
        });
    if c.window_start != start {
        *c = Counter {
            window_start: start,
            ..Counter::default()
        };
    }
    c
}

/// What the shared counters have to hear of one counter added up, so each takes one statement.
fn merged(batch: VecDeque<Unsent>) -> Vec<Unsent> {
    let mut index: HashMap<(Arc<str>, Arc<str>, String, i64), usize> = HashMap::new();
    let mut out: Vec<Unsent> = Vec::with_capacity(batch.len());
    for u in batch {
        let h = &u.hold;
        let key = (
            h.rule.id.clone(),
            h.rule.counting.clone(),
            h.group.clone(),
            h.window_start,
        );
        match index.get(&key) {
            Some(&i) => {
                let m = &mut out[i];
                if m.steps.is_empty() {
                    m.steps.push(m.spent);
                }
                match u.steps.is_empty() {
                    true => m.steps.push(u.spent),
                    false => m.steps.extend(&u.steps),
                }
                m.hold.amount += u.hold.amount;
                m.spent += u.spent;
                m.from_lease += u.from_lease;
                m.give_back += u.give_back;
            }
            None => {
                index.insert(key, out.len());
                out.push(u);
            }
        }
    }
    out
}

/// This node's lease of `rule`'s counter of `group` in the window from `start`, made empty if
/// it has none.
fn lease_of<'a>(
    leases: &'a mut HashMap<LeaseKey, Lease>,
    rule: &Arc<Rule>,
    group: &str,
    start: i64,
) -> &'a mut Lease {
    leases
        .entry((rule.id.clone(), group.to_string(), start))
        .or_insert_with(|| Lease::new(rule.clone()))
}

/// The claims (by index) that what was `taken` from the leases does not cover.
fn uncovered(wanted: &[(Arc<Rule>, String, f64)], taken: &[f64]) -> Vec<usize> {
    (0..wanted.len())
        .filter(|&i| wanted[i].2 - taken[i] > EPSILON)
        .collect()
}

/// What is left of sums and differences of the same amounts is nothing.
fn at_least_nothing(held: f64) -> f64 {
    if held < EPSILON {
        0.0
    } else {
        held
    }
}

/// What a held claim used, by what its rule counts.
fn spent(hold: &Hold, actual: Actual) -> f64 {
    match hold.rule.metric {
        Metric::Cost => actual.cost.unwrap_or(hold.amount),
        Metric::Tokens => actual.tokens.map_or(hold.amount, |t| t as f64),
        Metric::Requests => 0.0,
    }
}

/// With shared counters, which thresholds the counter had passed before a settlement (on
/// whichever node): only the settlement that passes one sets off its event.
fn passed(rule: &Rule, c: &mut Counter, before: f64) {
    c.alerted = rule
        .alert_at
        .is_some_and(|at| before >= rule.limit * at - EPSILON);
    c.exhausted = before >= rule.limit - EPSILON;
}

/// The events a settlement that left `c` where it is sets off, each once per window.
fn crossings(rule: &Rule, group: &str, c: &mut Counter, now_ms: i64) -> Vec<Event> {
    let mut out = Vec::new();
    let event = |kind, c: &Counter| Event {
        rule_id: rule.id.clone(),
        rule_name: rule.name.clone(),
        kind,
        value_key: group.to_string(),
        usage: c.used,
        limit: rule.limit,
        window_start: c.window_start,
        resets_at: rule.period.window(now_ms).1,
    };
    if rule.kind != Kind::Budget {
        return out;
    }
    if let Some(at) = rule.alert_at {
        if !c.alerted && c.used >= rule.limit * at - EPSILON {
            c.alerted = true;
            out.push(event("alert", c));
        }
    }
    if !c.exhausted && c.reached(rule.limit) {
        c.exhausted = true;
        out.push(event("exhausted", c));
    }
    out
}
