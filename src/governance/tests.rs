//! The ledger under concurrency, at window boundaries (with the clock passed in), with alerts,
//! and with key, workspace and policy rules applying together.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::estimate::Demand;
use super::ledger::{Actual, Governor, Reason, SpentRecord};
use super::rules::{Facts, Rule};
use crate::api::governance::{RateLimitPolicy, UsageLimitPolicy};

const DAY: i64 = 86_400_000;
/// 2026-12-01T00:00:00Z.
const DEC_1: i64 = 1_796_083_200_000;

pub(super) fn budget(id: &str, body: Value) -> Rule {
    let mut v = json!({"id": id, "name": id, "status": "active", "created_at": "",
        "last_updated_at": "", "object": "usage-limit-policy", "conditions": [], "group_by": []});
    v.as_object_mut()
        .unwrap()
        .extend(body.as_object().unwrap().clone());
    let p: UsageLimitPolicy = serde_json::from_value(v).unwrap();
    Rule::budget(&p, DEC_1).unwrap()
}

fn rate(id: &str, body: Value) -> Rule {
    let mut v = json!({"id": id, "name": id, "status": "active", "created_at": "",
        "last_updated_at": "", "object": "rate-limit-policy", "conditions": [], "group_by": []});
    v.as_object_mut()
        .unwrap()
        .extend(body.as_object().unwrap().clone());
    let p: RateLimitPolicy = serde_json::from_value(v).unwrap();
    Rule::rate(&p).unwrap()
}

fn facts<'a>(key: &'a str, metadata: &'a Map<String, Value>) -> Facts<'a> {
    Facts {
        api_key: key,
        workspace: Some("ws-research"),
        integration: Some("openai-dev"),
        provider: "openai",
        model: "gpt-4o-mini",
        metadata,
    }
}

const CENT: Demand = Demand {
    tokens: 100,
    cost: Some(0.01),
};

/// What [`CENT`] asks for, spent.
const CENT_SPENT: Actual = Actual {
    cost: Some(0.01),
    tokens: Some(100),
};

#[test]
fn concurrent_admission_never_passes_the_limit_and_leaks_nothing() {
    let g = Arc::new(Governor::new(None, None));
    g.set_rules(vec![budget(
        "b",
        json!({"credit_limit": 0.5, "conditions": [{"key": "api_key", "value": "k"}]}),
    )]);
    let admitted = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for i in 0..200 {
            let (g, admitted) = (&g, &admitted);
            s.spawn(move || {
                let m = Map::new();
                let mut counted = Vec::new();
                if let Ok(r) = g.admit(&facts("k", &m), &CENT, &mut counted, DEC_1) {
                    admitted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    // Half settle below the reservation, half use all of it.
                    let cost = if i % 2 == 0 { 0.01 } else { 0.004 };
                    r.settle(
                        Actual {
                            cost: Some(cost),
                            tokens: Some(40),
                        },
                        DEC_1,
                    );
                }
            });
        }
    });
    let counters = g.counters_of("b", DEC_1);
    let c = counters[0].1;
    assert!(c.used <= 0.5 + 1e-9, "spent {}", c.used);
    assert_eq!(c.reserved, 0.0, "every reservation was settled or released");
    assert!(
        admitted.into_inner() >= 50,
        "at least the 50 that fit were admitted"
    );
}

#[test]
fn a_dropped_reservation_is_released_untouched() {
    let g = Arc::new(Governor::new(None, None));
    g.set_rules(vec![budget("b", json!({"credit_limit": 0.02}))]);
    let m = Map::new();
    let first = g
        .admit(&facts("k", &m), &CENT, &mut Vec::new(), DEC_1)
        .unwrap();
    let second = g
        .admit(&facts("k", &m), &CENT, &mut Vec::new(), DEC_1)
        .unwrap();
    let third = g.admit(&facts("k", &m), &CENT, &mut Vec::new(), DEC_1);
    assert!(matches!(third.unwrap_err().reason, Reason::Exceeded { .. }));
    drop(first);
    drop(second);
    let c = g.counters_of("b", DEC_1)[0].1;
    assert_eq!((c.used, c.reserved), (0.0, 0.0));
}

#[test]
fn a_monthly_budget_starts_again_at_the_boundary() {
    let g = Arc::new(Governor::new(None, None));
    g.set_rules(vec![budget(
        "b",
        json!({"credit_limit": 0.01, "periodic_reset": "monthly"}),
    )]);
    let m = Map::new();
    let last_moment = DEC_1 + 31 * DAY - 1;
    let r = g
        .admit(&facts("k", &m), &CENT, &mut Vec::new(), last_moment)
        .unwrap();
    r.settle(
        Actual {
            cost: Some(0.01),
            tokens: Some(1),
        },
        last_moment,
    );
    let denied = g
        .admit(&facts("k", &m), &CENT, &mut Vec::new(), last_moment)
        .unwrap_err();
    assert!(
        denied
            .message("gpt-4o-mini")
            .contains("2027-01-01T00:00:00"),
        "{}",
        denied.message("m")
    );
    let jan_1 = DEC_1 + 31 * DAY;
    assert!(g
        .admit(&facts("k", &m), &CENT, &mut Vec::new(), jan_1)
        .is_ok());
}

#[test]
fn a_call_settled_after_its_window_ended_touches_the_new_one_not() {
    let g = Arc::new(Governor::new(None, None));
    g.set_rules(vec![rate(
        "r",
        json!({"type": "tokens", "unit": "rpm", "value": 1000}),
    )]);
    let m = Map::new();
    let r = g
        .admit(&facts("k", &m), &CENT, &mut Vec::new(), DEC_1 + 59_999)
        .unwrap();
    r.settle(
        Actual {
            cost: None,
            tokens: Some(900),
        },
        DEC_1 + 60_001,
    );
    let c = g.counters_of("r", DEC_1 + 60_001);
    assert!(c.iter().all(|(_, c)| c.used == 0.0 && c.reserved == 0.0));
}

#[test]
fn request_rate_limits_count_exactly_and_say_when_to_retry() {
    let g = Arc::new(Governor::new(None, None));
    g.set_rules(vec![rate("r", json!({"unit": "rpm", "value": 60}))]);
    let ok = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..200 {
            s.spawn(|| {
                let m = Map::new();
                if g.admit(&facts("k", &m), &CENT, &mut Vec::new(), DEC_1 + 10_000)
                    .is_ok()
                {
                    ok.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(ok.into_inner(), 60);
    let m = Map::new();
    let denied = g
        .admit(&facts("k", &m), &CENT, &mut Vec::new(), DEC_1 + 10_000)
        .unwrap_err();
    assert_eq!(denied.retry_after(DEC_1 + 10_000), Some(50));
    assert!(g
        .admit(&facts("k", &m), &CENT, &mut Vec::new(), DEC_1 + 60_000)
        .is_ok());
}

#[test]
fn a_fallback_target_does_not_count_the_request_twice() {
    let g = Arc::new(Governor::new(None, None));
    g.set_rules(vec![rate("r", json!({"unit": "rpm", "value": 1}))]);
    let m = Map::new();
    let mut counted = Vec::new();
    drop(
        g.admit(&facts("k", &m), &CENT, &mut counted, DEC_1)
            .unwrap(),
    );
    assert!(g.admit(&facts("k", &m), &CENT, &mut counted, DEC_1).is_ok());
    assert!(g
        .admit(&facts("k", &m), &CENT, &mut Vec::new(), DEC_1)
        .is_err());
}

#[test]
fn alerts_fire_once_per_window() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let g = Arc::new(Governor::new(Some(tx), None));
    g.set_rules(vec![budget(
        "b",
        json!({"credit_limit": 0.1, "alert_threshold": 50, "periodic_reset": "weekly"}),
    )]);
    let m = Map::new();
    let spend = |at: i64| {
        let r = g
            .admit(&facts("k", &m), &CENT, &mut Vec::new(), at)
            .unwrap();
        r.settle(
            Actual {
                cost: Some(0.01),
                tokens: Some(1),
            },
            at,
        );
    };
    for _ in 0..8 {
        spend(DEC_1);
    }
    let mut kinds = Vec::new();
    while let Ok(e) = rx.try_recv() {
        kinds.push((e.kind, e.usage));
    }
    assert_eq!(kinds.len(), 1, "{kinds:?}");
    assert_eq!(kinds[0].0, "alert");
    assert!((kinds[0].1 - 0.05).abs() < 1e-9);
    // The next week (2026-12-07 is a Monday) alerts again, once.
    for _ in 0..6 {
        spend(DEC_1 + 6 * DAY);
    }
    assert_eq!(rx.try_recv().unwrap().kind, "alert");
    assert!(rx.try_recv().is_err());
}

#[test]
fn the_tightest_of_key_workspace_and_policy_rules_refuses() {
    let g = Arc::new(Governor::new(None, None));
    g.set_rules(vec![
        budget("key", json!({"credit_limit": 1.0, "conditions": [{"key": "api_key", "value": "k"}]})),
        budget(
            "workspace",
            json!({"credit_limit": 0.05, "conditions": [{"key": "workspace_id", "value": "ws-research"}]}),
        ),
        budget(
            "per-user",
            json!({"credit_limit": 0.02, "group_by": [{"key": "metadata._user"}]}),
        ),
    ]);
    let mut alice = Map::new();
    alice.insert("_user".into(), json!("alice"));
    let mut bob = Map::new();
    bob.insert("_user".into(), json!("bob"));
    let spend = |m: &Map<String, Value>| {
        g.admit(&facts("k", m), &CENT, &mut Vec::new(), DEC_1)
            .map(|r| {
                r.settle(
                    Actual {
                        cost: Some(0.01),
                        tokens: Some(1),
                    },
                    DEC_1,
                )
            })
    };
    assert!(spend(&alice).is_ok() && spend(&alice).is_ok());
    let denied = spend(&alice).unwrap_err();
    assert_eq!(
        (&*denied.rule.id, denied.group.as_str()),
        ("per-user", "metadata._user=alice")
    );
    assert!(spend(&bob).is_ok() && spend(&bob).is_ok());
    // Bob's own budget has room for one more, but the workspace's $0.05 is the tighter now.
    assert!(spend(&bob).is_err());
    let mut carol = Map::new();
    carol.insert("_user".into(), json!("carol"));
    assert!(spend(&carol).is_ok());
    let denied = spend(&carol).unwrap_err();
    assert_eq!(&*denied.rule.id, "workspace");
}

#[test]
fn a_cost_budget_refuses_a_model_without_a_price() {
    let g = Arc::new(Governor::new(None, None));
    g.set_rules(vec![budget("b", json!({"credit_limit": 1.0}))]);
    let m = Map::new();
    let unpriced = Demand {
        tokens: 10,
        cost: None,
    };
    let denied = g
        .admit(&facts("k", &m), &unpriced, &mut Vec::new(), DEC_1)
        .unwrap_err();
    assert!(matches!(denied.reason, Reason::Unpriced));
    assert!(denied.message("gpt-x").contains("configurations.pricing"));
}

#[test]
fn a_rebuild_counts_the_window_after_the_last_reset() {
    let g = Arc::new(Governor::new(None, None));
    g.set_rules(vec![budget(
        "b",
        json!({"credit_limit": 1.0, "periodic_reset": "monthly", "group_by": [{"key": "metadata._user"}]}),
    )]);
    let record = |at: i64, user: &str, cost: f64| SpentRecord {
        created_ms: at,
        api_key: "k".into(),
        integration: Some("openai-dev".into()),
        provider: "openai".into(),
        model: "gpt-4o-mini".into(),
        metadata: json!({"_user": user}).as_object().unwrap().clone(),
        cost: Some(cost),
        tokens: 10,
    };
    let records = vec![
        record(DEC_1 - 1, "alice", 0.5),
        record(DEC_1 + 10, "alice", 0.25),
        record(DEC_1 + 20, "alice", 0.125),
        record(DEC_1 + 30, "bob", 0.5),
    ];
    let mut resets = HashMap::new();
    resets.insert(
        ("b".to_string(), "metadata._user=bob".to_string()),
        DEC_1 + 40,
    );
    let mut alerted = HashSet::new();
    alerted.insert(("b".to_string(), "metadata._user=alice".to_string(), DEC_1));
    g.rebuild(None, records, |_| None, &resets, &alerted, DEC_1 + DAY)
        .unwrap();
    let counters: HashMap<String, _> = g.counters_of("b", DEC_1 + DAY).into_iter().collect();
    assert_eq!(counters["metadata._user=alice"].used, 0.375);
    assert!(counters["metadata._user=alice"].alerted);
    assert!(
        !counters.contains_key("metadata._user=bob"),
        "bob's spend was all before his reset"
    );
    assert_eq!(g.rebuild_from(None, DEC_1 + DAY), Some(DEC_1));
}

/// A budget of `limit` on API key `k`, for the lease tests.
fn key_budget(limit: f64) -> Rule {
    budget(
        "b",
        json!({"credit_limit": limit, "conditions": [{"key": "api_key", "value": "k"}]}),
    )
}

/// What the shared row of `rule`'s counter (this window, no group) reserves and leases now.
fn shared_row(store: &crate::store::Store, rule: &Rule) -> impl Fn() -> (f64, f64) {
    let probe = store.shared_counters().unwrap().unwrap();
    let (id, counting) = (rule.id.clone(), rule.counting.clone());
    let (start, _) = rule.period.window(crate::observe::record::now_ms());
    move || {
        let key = super::shared::SharedKey {
            rule_id: &id,
            counting: &counting,
            group: "",
            window_start: start,
        };
        let v = probe.seed(key, 0.0).unwrap();
        (v.reserved, v.leased)
    }
}

/// Two nodes on one Postgres database, each admitting against its leases, refilled as the
/// server's sender task refills them.
#[test]
fn leases_of_two_nodes_admit_in_memory_and_never_pass_a_limit_under_concurrency() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use crate::observe::record::now_ms;

    let Some(store) = crate::store::tests::postgres_store() else {
        eprintln!("note: skipped: leases need TOLLGATE_TEST_DATABASE_URL");
        return;
    };
    let nodes: Vec<Arc<Governor>> = (0..2)
        .map(|_| {
            let g = Arc::new(Governor::new(None, store.shared_counters().unwrap()));
            g.set_rules(vec![key_budget(1.0)]);
            g.sync_shared(now_ms()).unwrap();
            g
        })
        .collect();
    let m = Map::new();
    let admit = |g: &Arc<Governor>| g.admit(&facts("k", &m), &CENT, &mut Vec::new(), now_ms());

    // The first admission claims in the database; its demand asks for a lease, and the next
    // admission takes it from the lease without a word to the database.
    let row = shared_row(&store, &key_budget(1.0));
    let first = admit(&nodes[0]).unwrap();
    nodes[0].refill_leases(now_ms()).unwrap();
    assert_eq!(row(), (0.01, 0.01));
    let second = admit(&nodes[0]).unwrap();
    assert_eq!(row(), (0.01, 0.01), "taken from the lease in memory");
    nodes[0].send_settlements(now_ms()).unwrap();
    assert_eq!(row(), (0.02, 0.0), "the lease turned into a hold");
    first.settle(CENT_SPENT, now_ms());
    second.settle(CENT_SPENT, now_ms());

    let admitted = AtomicUsize::new(2);
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        for g in &nodes {
            s.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    g.send_settlements(now_ms()).unwrap();
                    g.refill_leases(now_ms()).unwrap();
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            });
        }
        let workers: Vec<_> = (0..8)
            .map(|i| {
                let g = &nodes[i % 2];
                let (admit, admitted) = (&admit, &admitted);
                s.spawn(move || {
                    for _ in 0..40 {
                        if let Ok(r) = admit(g) {
                            admitted.fetch_add(1, Ordering::Relaxed);
                            r.settle(CENT_SPENT, now_ms());
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        done.store(true, Ordering::Relaxed);
    });
    let admitted = admitted.into_inner();
    assert!(
        admitted <= 100,
        "{admitted} admitted against a limit that fits 100"
    );

    // Nothing leaked: with the leases given back, the rest of the limit is admitted, exactly.
    for g in &nodes {
        g.give_back_all_leases();
        g.send_settlements(now_ms()).unwrap();
    }
    let (reserved, leased) = row();
    assert!(
        reserved < 1e-9 && leased < 1e-9,
        "{reserved} held, {leased} leased"
    );
    let mut more = 0;
    while let Ok(r) = admit(&nodes[1]) {
        more += 1;
        r.settle(CENT_SPENT, now_ms());
        nodes[1].send_settlements(now_ms()).unwrap();
    }
    assert_eq!(admitted + more, 100, "{admitted} admitted, then {more}");
}

/// Before its first sync a node may not admit against leases, so it takes none: a lease would
/// hold headroom that its own next claim then could not use (a request that fit was refused).
#[test]
fn a_node_takes_no_lease_before_it_has_synced() {
    use crate::observe::record::now_ms;

    let Some(store) = crate::store::tests::postgres_store() else {
        eprintln!("note: skipped: leases need TOLLGATE_TEST_DATABASE_URL");
        return;
    };
    let g = Arc::new(Governor::new(None, store.shared_counters().unwrap()));
    g.set_rules(vec![key_budget(0.02)]);
    let row = shared_row(&store, &key_budget(0.02));
    let leased = || row().1;
    let m = Map::new();
    let admit = || g.admit(&facts("k", &m), &CENT, &mut Vec::new(), now_ms());

    admit().unwrap().settle(CENT_SPENT, now_ms());
    g.send_settlements(now_ms()).unwrap();
    g.refill_leases(now_ms()).unwrap();
    assert_eq!(leased(), 0.0, "no lease before the first sync");
    let second = admit().expect("the second cent fits the limit");
    second.settle(CENT_SPENT, now_ms());
    g.send_settlements(now_ms()).unwrap();
    assert!(admit().is_err(), "the limit is reached");
}

#[test]
fn settlements_sent_together_set_off_the_events_they_would_one_by_one() {
    use crate::observe::record::now_ms;

    let Some(store) = crate::store::tests::postgres_store() else {
        eprintln!("note: skipped: shared counters need TOLLGATE_TEST_DATABASE_URL");
        return;
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let g = Arc::new(Governor::new(Some(tx), store.shared_counters().unwrap()));
    g.set_rules(vec![budget(
        "b",
        json!({"credit_limit": 0.1, "alert_threshold": 50}),
    )]);
    g.sync_shared(now_ms()).unwrap();
    let m = Map::new();
    let held: Vec<_> = (0..10)
        .map(|_| {
            g.admit(&facts("k", &m), &CENT, &mut Vec::new(), now_ms())
                .unwrap()
        })
        .collect();
    // All ten settle before one send, which then carries them in one statement.
    for r in held {
        r.settle(
            Actual {
                cost: Some(0.01),
                tokens: Some(1),
            },
            now_ms(),
        );
    }
    g.send_settlements(now_ms()).unwrap();
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push((e.kind, (e.usage * 100.0).round() / 100.0));
    }
    assert_eq!(events, [("alert", 0.05), ("exhausted", 0.1)]);
}
