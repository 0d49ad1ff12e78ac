//! The cache at a leaf. After the target is resolved and before governance admits it, a hit
//! answers at once: no upstream call, no budget. After the upstream answers, a success is
//! stored (a stream once it completes). A semantic lookup embeds the prompt by sending an
//! embeddings request through the gateway itself, as the same caller, in the same trace.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue};
use futures_util::future::BoxFuture;
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedReceiver;

use super::attempt::Resolved;
use super::call::Call;
use super::respond::{Answer, AnswerBody, CacheNote, Served};
use super::{execute, logging};
use crate::cache::{self, semantic, Entry, Key, Parts, Status, Write};
use crate::gateway::providers::adapter::{Endpoint, Usage};
use crate::gateway::routing::Inherited;
use crate::observe::record::now_ms;
use crate::server::auth::Caller;
use crate::server::state::AppState;
use crate::store::StoreError;

/// Writes sent to the store at most in one transaction.
const WRITE_BATCH: usize = 256;
/// How often expired entries are swept out of memory and the store.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// A lookup that found nothing: how it is reported, and where the answer goes once known.
pub struct Miss {
    status: Status,
    key: Key,
    /// With the embedding, for semantic entries.
    semantic: Option<(Key, Vec<f32>)>,
    partition: String,
    namespace: Option<String>,
    max_age: u64,
}

/// Looks the request up in the cache its target's config asks for. `Ok`: a hit, the answer
/// to send. `Err(None)`: no cache applies; `Err(Some)`: a miss, to pass to [`store`].
pub async fn lookup(
    state: &Arc<AppState>,
    call: &Call,
    inherited: &Inherited,
    resolved: &Resolved,
    body: &Value,
) -> Result<Answer, Option<Box<Miss>>> {
    let Some(config) = &inherited.cache else {
        return Err(None);
    };
    let partition = call.key.workspace_id.clone().unwrap_or_default();
    let namespace = call.header("x-portkey-cache-namespace");
    let parts = Parts {
        partition: &partition,
        namespace,
        provider: resolved.provider.slug,
        integration: resolved.integration.as_ref().map(|(slug, _)| slug.as_str()),
        base_url: &resolved.base_url,
        settings: &resolved.settings,
        endpoint: call.endpoint.openai_path(),
        stream: call.stream,
        body,
    };
    let key = parts.exact();
    let refresh = call
        .header("x-portkey-cache-force-refresh")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let found = |status: Status, entry: Arc<Entry>| {
        state.cache.counters.count(status);
        Ok(hit(resolved, status, &entry))
    };
    if !refresh {
        if let Some(entry) = state.cache.get(&key, now_ms()) {
            return found(Status::Hit, entry);
        }
    }
    let mut semantic = None;
    if let Some(s) = &config.semantic {
        if let Some(text) = semantic::prompt_text(body) {
            if let Some(embedding) = embed(state, call, &s.embedding_model, text).await {
                let group = parts.group();
                let near = (!refresh)
                    .then(|| {
                        state
                            .cache
                            .nearest(&group, &embedding, s.threshold, now_ms())
                    })
                    .flatten();
                if let Some(entry) = near {
                    return found(Status::SemanticHit, entry);
                }
                semantic = Some((group, embedding));
            }
        }
    }
    let status = match (refresh, &config.semantic) {
        (true, _) => Status::Refresh,
        (false, Some(_)) => Status::SemanticMiss,
        (false, None) => Status::Miss,
    };
    state.cache.counters.count(status);
    Err(Some(Box::new(Miss {
        status,
        key,
        semantic,
        namespace: namespace.map(String::from),
        partition,
        max_age: config.max_age,
    })))
}

/// The cached answer, as the target would have sent it.
fn hit(resolved: &Resolved, status: Status, entry: &Entry) -> Answer {
    let body = match &entry.answer {
        cache::Answer::Json(bytes) => AnswerBody::RawJson(bytes.clone()),
        cache::Answer::Frames(frames) => AnswerBody::Replay(frames.clone()),
    };
    Answer {
        body,
        served: Some(Served {
            integration: entry.integration.clone(),
            model: entry.model.clone(),
            price: None,
            usage: None,
        }),
        cache: Some(CacheNote {
            status,
            saved: entry.cost,
        }),
        ..Answer::from_status(200, Value::Null, Some(resolved.provider.slug))
    }
}

/// Notes the lookup's outcome on the answer and keeps a successful answer in the cache.
pub fn store(state: &Arc<AppState>, miss: Option<Box<Miss>>, answer: &mut Answer) {
    let Some(miss) = miss else {
        return;
    };
    answer.cache = Some(CacheNote {
        status: miss.status,
        saved: None,
    });
    if answer.status != 200 {
        return;
    }
    let served = answer.served.clone().unwrap_or_default();
    let price = served.price;
    let cost = move |usage: Option<Usage>| Some(price?.cost_usd(usage?));
    let body = match &mut answer.body {
        AnswerBody::Json(v) => Bytes::from(serde_json::to_vec(v).unwrap_or_default()),
        AnswerBody::RawJson(bytes) => bytes.clone(),
        AnswerBody::Stream(forwarder) => {
            let cache = state.cache.clone();
            forwarder.keep_frames(Box::new(move |frames, usage| {
                let entry = (*miss).entry(cache::Answer::Frames(frames), cost(usage), &served);
                cache.put(entry);
            }));
            return;
        }
        AnswerBody::Replay(_) => return,
    };
    let usage = served.usage;
    state
        .cache
        .put((*miss).entry(cache::Answer::Json(body), cost(usage), &served));
}

impl Miss {
    fn entry(self, answer: cache::Answer, cost: Option<f64>, served: &Served) -> Entry {
        let created_ms = now_ms();
        let (group, embedding) = self.semantic.unzip();
        Entry {
            key: self.key,
            group,
            embedding,
            partition: self.partition,
            namespace: self.namespace,
            answer,
            integration: served.integration.clone(),
            model: served.model.clone(),
            cost,
            created_ms,
            expires_ms: created_ms.saturating_add((self.max_age as i64).saturating_mul(1000)),
        }
    }
}

/// Embeds `text` with `model` (`@integration/model`) through the gateway: a request of its own,
/// routed, governed and recorded like a client's, a child span of the calling request. Boxed:
/// the leaf's future would otherwise contain itself.
fn embed<'a>(
    state: &'a Arc<AppState>,
    call: &'a Call,
    model: &'a str,
    text: String,
) -> BoxFuture<'a, Option<Vec<f32>>> {
    Box::pin(async move {
        let body = json!({"model": model, "input": text});
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("x-portkey-trace-id", call.trace.trace_id.as_str()),
            ("x-portkey-parent-span-id", call.trace.span_id.as_str()),
            ("x-portkey-span-name", "semantic cache embedding"),
        ] {
            headers.insert(name, HeaderValue::from_str(value).ok()?);
        }
        let mut inner = Call::new(
            state,
            &Caller(call.key.clone()),
            headers,
            "/v1/embeddings",
            Bytes::from(body.to_string()),
            Endpoint::Embeddings,
            Instant::now(),
        );
        inner.body = body.as_object().cloned().unwrap_or_default();
        inner.metadata = call.metadata.clone();
        inner.log_bodies = call.log_bodies;
        let answer = execute::run(state, &inner).await;
        let vector = answer.is_success().then(|| embedding_of(&answer)).flatten();
        drop(logging::respond(inner, answer).await);
        vector
    })
}

/// `data[0].embedding` of an embeddings answer.
fn embedding_of(answer: &Answer) -> Option<Vec<f32>> {
    let parsed;
    let v = match &answer.body {
        AnswerBody::Json(v) => v,
        AnswerBody::RawJson(bytes) => {
            parsed = serde_json::from_slice::<Value>(bytes).ok()?;
            &parsed
        }
        _ => return None,
    };
    let numbers = v.pointer("/data/0/embedding")?.as_array()?;
    numbers
        .iter()
        .map(|n| n.as_f64().map(|x| x as f32))
        .collect()
}

/// The writer task: applies the cache's changes to the store in batches, and sweeps expired
/// entries out now and then. Ends when the cache is closed, after the last write.
/// While the store refuses them, writes are dropped (the cache in memory is whole; only its
/// copy for the next start misses them), said once per outage.
pub async fn persist(state: Arc<AppState>, mut writes: UnboundedReceiver<Write>) {
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    let mut failing = false;
    loop {
        tokio::select! {
            write = writes.recv() => {
                let Some(first) = write else { break };
                let mut batch = vec![first];
                while batch.len() < WRITE_BATCH {
                    match writes.try_recv() {
                        Ok(w) => batch.push(w),
                        Err(_) => break,
                    }
                }
                let s = state.clone();
                match tokio::task::spawn_blocking(move || s.store.apply_cache_writes(&batch)).await {
                    Ok(Ok(())) if failing => {
                        failing = false;
                        eprintln!("the cache's copy in the store is updated again");
                    }
                    Ok(Ok(())) => {}
                    Ok(Err(StoreError::Unavailable(_))) if failing => {}
                    Ok(Err(e)) => {
                        failing = matches!(e, StoreError::Unavailable(_));
                        eprintln!("warning: the cache's copy in the store was not updated: {e}");
                    }
                    Err(e) => eprintln!("warning: the cache's writer failed: {e}"),
                }
            }
            _ = sweep.tick() => state.cache.sweep(now_ms()),
        }
    }
}
