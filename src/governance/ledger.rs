//! The counters: admission reserves the most a call can use against every rule that applies,
//! atomically; settlement replaces the reservation with what the call used. Counters are keyed
//! by rule, group value and window start, so a new window starts from zero by itself and a
//! late settlement of an old window's call touches nothing.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use tokio::sync::mpsc::UnboundedSender;

use super::estimate::Demand;
use super::rules::{Facts, Kind, Metric, Rule};
use crate::api::governance::{Owner, OWNER_API_KEY, OWNER_INTEGRATION, OWNER_WORKSPACE};
use crate::gateway::providers::adapter::Usage;
use crate::observe::pricing::Price;

/// Sums of floating-point costs may land a hair above a limit they exactly reach.
const EPSILON: f64 = 1e-9;

type CounterKey = (Arc<str>, String);

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counter {
    pub window_start: i64,
    pub used: f64,
    pub reserved: f64,
    pub alerted: bool,
    pub exhausted: bool,
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
    counters: Mutex<HashMap<CounterKey, Counter>>,
    events: Option<UnboundedSender<Event>>,
}

impl Governor {
    pub fn new(events: Option<UnboundedSender<Event>>) -> Governor {
        Governor {
            rules: RwLock::default(),
            counters: Mutex::default(),
            events,
        }
    }

    pub fn rules(&self) -> Arc<RuleSet> {
        self.rules.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts `rules` in force; counters of rules that are gone are dropped.
    pub fn set_rules(&self, rules: Vec<Rule>) {
        let set = Arc::new(RuleSet::new(rules));
        let ids: HashSet<Arc<str>> = set.all().map(|r| r.id.clone()).collect();
        *self.rules.write().unwrap_or_else(|e| e.into_inner()) = set;
        self.counters().retain(|(id, _), _| ids.contains(id));
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
        let mut holds = Vec::with_capacity(wanted.len());
        if wanted.is_empty() {
            return Ok(Reservation {
                governor: None,
                holds,
            });
        }
        let mut counters = self.counters();
        for (rule, group, amount) in &wanted {
            let (start, end) = rule.period.window(now_ms);
            let c = current(&mut counters, rule, group, start);
            if c.used >= rule.limit - EPSILON || c.used + c.reserved + amount > rule.limit + EPSILON
            {
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
        for (rule, group, amount) in wanted {
            let (start, _) = rule.period.window(now_ms);
            let c = current(&mut counters, &rule, &group, start);
            if rule.metric == Metric::Requests {
                c.used += 1.0;
                counted.push(rule.id.clone());
            } else {
                c.reserved += amount;
                holds.push(Hold {
                    rule,
                    group,
                    window_start: start,
                    amount,
                });
            }
        }
        Ok(Reservation {
            governor: Some(self.clone()),
            holds,
        })
    }

    fn settle(&self, holds: Vec<Hold>, actual: Option<Actual>, now_ms: i64) {
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
                c.reserved = (c.reserved - h.amount).max(0.0);
                let Some(actual) = actual else {
                    continue;
                };
                c.used += match h.rule.metric {
                    Metric::Cost => actual.cost.unwrap_or(h.amount),
                    Metric::Tokens => actual.tokens.map_or(h.amount, |t| t as f64),
                    Metric::Requests => 0.0,
                };
                events.extend(crossings(&h.rule, &h.group, c, now_ms));
            }
        }
        if let Some(tx) = &self.events {
            for e in events {
                let _ = tx.send(e);
            }
        }
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
    ) {
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
        for ((id, group), c) in fresh.iter_mut() {
            let rule = chosen
                .iter()
                .find(|r| r.id == *id)
                .expect("counted rules are chosen");
            c.alerted = alerted.contains(&(id.to_string(), group.clone(), c.window_start));
            c.exhausted = c.used >= rule.limit - EPSILON;
        }
        let mut counters = self.counters();
        counters.retain(|(id, _), _| !chosen.iter().any(|r| r.id == *id));
        counters.extend(fresh);
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

    /// Sets one group value's usage in its current window back to zero.
    pub fn reset(&self, rule_id: &str, group: &str, now_ms: i64) {
        let Some(rule) = self.rules().get(rule_id).cloned() else {
            return;
        };
        let (start, _) = rule.period.window(now_ms);
        let mut counters = self.counters();
        let c = current(&mut counters, &rule, group, start);
        c.used = 0.0;
        c.alerted = false;
        c.exhausted = false;
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
                .any(|(_, c)| c.used >= r.limit - EPSILON)
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
    if !c.exhausted && c.used >= rule.limit - EPSILON {
        c.exhausted = true;
        out.push(event("exhausted", c));
    }
    out
}
