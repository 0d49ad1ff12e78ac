//! Prometheus metrics of the gateway's traffic, in the text exposition format (version 0.0.4).
//!
//! The traffic series are counted from request records once they are committed, off the request
//! path; custom records (`kind = custom`) are only counted. Label values come from clients and
//! providers, so `model`, `provider` and `endpoint` each keep a bounded number of distinct values;
//! later new values are reported as `other`, and a missing value as `none`.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::sync::Mutex;

use super::recorder::Snapshot;
use crate::api::logs::{LogRecord, KIND_CUSTOM, KIND_REQUEST};

const MAX_MODELS: usize = 100;
const MAX_PROVIDERS: usize = 50;
const MAX_ENDPOINTS: usize = 50;

/// Upper bounds in seconds, from a cached answer to a long generation.
const LATENCY_BUCKETS: [f64; 15] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0,
];

/// The gateway's metrics; shared in an `Arc` by the record writer and the HTTP handlers.
pub struct Metrics {
    traffic: Mutex<Traffic>,
    custom_records: AtomicU64,
    recorder_waits: AtomicU64,
    records_written: AtomicU64,
    otlp_exported: AtomicU64,
    otlp_dropped: AtomicU64,
}

/// A label value, shared by every series that has it: counting a record allocates nothing.
type Label = Arc<str>;

/// The labelled series, keyed by their label values in the order of their label names.
struct Traffic {
    models: BoundedLabel,
    providers: BoundedLabel,
    endpoints: BoundedLabel,
    requests: BTreeMap<[Label; 4], f64>,
    duration: BTreeMap<[Label; 2], Histogram>,
    time_to_first_token: BTreeMap<[Label; 1], Histogram>,
    tokens: BTreeMap<[Label; 3], f64>,
    cost: BTreeMap<[Label; 2], f64>,
    cost_unknown: BTreeMap<[Label; 2], f64>,
    errors: BTreeMap<[Label; 2], f64>,
    retries: BTreeMap<[Label; 1], f64>,
    attempts: BTreeMap<[Label; 2], f64>,
    /// [`STATUS_CLASSES`], made once.
    classes: [Label; STATUS_CLASSES.len()],
    /// [`TOKEN_KINDS`], made once.
    token_kinds: [Label; TOKEN_KINDS.len()],
}

const STATUS_CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "unknown"];
const TOKEN_KINDS: [&str; 3] = ["input", "output", "cached"];

/// The distinct values a label has taken, up to a limit.
struct BoundedLabel {
    limit: usize,
    seen: HashSet<Label>,
    none: Label,
    other: Label,
    /// The value given last: records in a row mostly share it, and comparing it costs less
    /// than hashing.
    last: Option<Label>,
}

impl BoundedLabel {
    fn new(limit: usize) -> BoundedLabel {
        BoundedLabel {
            limit,
            seen: HashSet::new(),
            none: Arc::from("none"),
            other: Arc::from("other"),
            last: None,
        }
    }

    fn value(&mut self, raw: Option<&str>) -> Label {
        let Some(raw) = raw.filter(|v| !v.is_empty()) else {
            return self.none.clone();
        };
        if let Some(last) = self.last.as_ref().filter(|l| ***l == *raw) {
            return last.clone();
        }
        let value = match self.seen.get(raw) {
            Some(known) => known.clone(),
            None if self.seen.len() >= self.limit => return self.other.clone(),
            None => {
                let value: Label = Arc::from(raw);
                self.seen.insert(value.clone());
                value
            }
        };
        self.last = Some(value.clone());
        value
    }
}

/// Observations per bucket of [`LATENCY_BUCKETS`] (not cumulative; values above the last
/// bound are only in `count`).
#[derive(Default)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if let Some(i) = LATENCY_BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum += seconds;
    }

    fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.buckets.iter_mut().zip(other.buckets) {
            *mine += theirs;
        }
        self.count += other.count;
        self.sum += other.sum;
    }
}

/// The index of a status's class in [`STATUS_CLASSES`].
fn status_class(status: u16) -> usize {
    match status / 100 {
        class @ 1..=5 => usize::from(class - 1),
        _ => STATUS_CLASSES.len() - 1,
    }
}

fn add<const N: usize>(series: &mut BTreeMap<[Label; N], f64>, labels: [Label; N], n: f64) {
    *series.entry(labels).or_default() += n;
}

impl Traffic {
    fn new() -> Traffic {
        Traffic {
            models: BoundedLabel::new(MAX_MODELS),
            providers: BoundedLabel::new(MAX_PROVIDERS),
            endpoints: BoundedLabel::new(MAX_ENDPOINTS),
            requests: BTreeMap::new(),
            duration: BTreeMap::new(),
            time_to_first_token: BTreeMap::new(),
            tokens: BTreeMap::new(),
            cost: BTreeMap::new(),
            cost_unknown: BTreeMap::new(),
            errors: BTreeMap::new(),
            retries: BTreeMap::new(),
            attempts: BTreeMap::new(),
            classes: STATUS_CLASSES.map(Arc::from),
            token_kinds: TOKEN_KINDS.map(Arc::from),
        }
    }

    /// Adds what a batch of request records counts, one label set at a time.
    fn observe_requests<'a>(&mut self, records: impl IntoIterator<Item = &'a LogRecord>) {
        let mut tallies: Vec<Tally> = Vec::new();
        let mut attempts: Vec<([Label; 2], f64)> = Vec::new();
        for record in records {
            let labels = Labels {
                provider: self.providers.value(record.provider.as_deref()),
                model: self.models.value(record.model.as_deref()),
                endpoint: self.endpoints.value(Some(&record.endpoint)),
                class: status_class(record.status),
            };
            let tally = match tallies.iter().position(|t| t.labels.same(&labels)) {
                Some(i) => &mut tallies[i],
                None => {
                    tallies.push(Tally::new(labels));
                    tallies.last_mut().expect("just pushed")
                }
            };
            tally.add(record);
            for attempt in &record.attempts {
                let labels = [
                    self.providers.value(Some(&attempt.provider)),
                    self.classes[status_class(attempt.status)].clone(),
                ];
                match attempts.iter_mut().find(|(l, _)| same_labels(l, &labels)) {
                    Some((_, n)) => *n += 1.0,
                    None => attempts.push((labels, 1.0)),
                }
            }
        }
        for t in tallies {
            self.add_tally(t);
        }
        for (labels, n) in attempts {
            add(&mut self.attempts, labels, n);
        }
    }

    fn add_tally(&mut self, t: Tally) {
        let Labels {
            provider,
            model,
            endpoint,
            class,
        } = t.labels;
        let class = self.classes[class].clone();
        add(
            &mut self.requests,
            [
                provider.clone(),
                model.clone(),
                endpoint.clone(),
                class.clone(),
            ],
            t.requests,
        );
        if t.duration.count > 0 {
            self.duration
                .entry([provider.clone(), endpoint])
                .or_default()
                .merge(&t.duration);
        }
        if t.time_to_first_token.count > 0 {
            self.time_to_first_token
                .entry([provider.clone()])
                .or_default()
                .merge(&t.time_to_first_token);
        }
        for (kind, n) in self.token_kinds.iter().zip(t.tokens) {
            let labels = [provider.clone(), model.clone(), kind.clone()];
            add(&mut self.tokens, labels, n);
        }
        if let Some(cost) = t.cost {
            add(&mut self.cost, [provider.clone(), model.clone()], cost);
        }
        if t.unpriced > 0.0 {
            add(
                &mut self.cost_unknown,
                [provider.clone(), model],
                t.unpriced,
            );
        }
        if t.errors > 0.0 {
            add(&mut self.errors, [provider.clone(), class], t.errors);
        }
        add(&mut self.retries, [provider], t.retries);
    }
}

/// The labels of a request's series.
struct Labels {
    provider: Label,
    model: Label,
    endpoint: Label,
    class: usize,
}

impl Labels {
    fn same(&self, other: &Labels) -> bool {
        Arc::ptr_eq(&self.provider, &other.provider)
            && Arc::ptr_eq(&self.model, &other.model)
            && Arc::ptr_eq(&self.endpoint, &other.endpoint)
            && self.class == other.class
    }
}

/// Label values are shared, so equal values are the same `Arc` (see [`BoundedLabel::value`]).
fn same_labels<const N: usize>(a: &[Label; N], b: &[Label; N]) -> bool {
    a.iter().zip(b).all(|(a, b)| Arc::ptr_eq(a, b))
}

/// What the requests of one label set in a batch add to their series. A batch's requests mostly
/// share their provider, model, endpoint and status class, so each series is looked up once
/// per batch rather than once per request.
struct Tally {
    labels: Labels,
    requests: f64,
    duration: Histogram,
    time_to_first_token: Histogram,
    /// Input, output and cached, as [`TOKEN_KINDS`].
    tokens: [f64; 3],
    /// The sum of the known costs; `None` while no request had one.
    cost: Option<f64>,
    /// Requests whose cost is unknown.
    unpriced: f64,
    /// Requests answered with a status of 400 or more.
    errors: f64,
    retries: f64,
}

impl Tally {
    fn new(labels: Labels) -> Tally {
        Tally {
            labels,
            requests: 0.0,
            duration: Histogram::default(),
            time_to_first_token: Histogram::default(),
            tokens: [0.0; 3],
            cost: None,
            unpriced: 0.0,
            errors: 0.0,
            retries: 0.0,
        }
    }

    fn add(&mut self, record: &LogRecord) {
        self.requests += 1.0;
        if record.latency_ms.is_finite() {
            self.duration.observe(record.latency_ms / 1000.0);
        }
        if let Some(ttft) = record.ttft_ms.filter(|t| t.is_finite()) {
            self.time_to_first_token.observe(ttft / 1000.0);
        }
        let counts = [
            record.input_tokens,
            record.output_tokens,
            record.cached_tokens,
        ];
        for (sum, n) in self.tokens.iter_mut().zip(counts) {
            *sum += n as f64;
        }
        match record.cost.filter(|c| c.is_finite()) {
            Some(cost) => *self.cost.get_or_insert(0.0) += cost,
            None => self.unpriced += 1.0,
        }
        if record.status >= 400 {
            self.errors += 1.0;
        }
        self.retries += record.attempts.len().saturating_sub(1) as f64;
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics {
            traffic: Mutex::new(Traffic::new()),
            custom_records: AtomicU64::new(0),
            recorder_waits: AtomicU64::new(0),
            records_written: AtomicU64::new(0),
            otlp_exported: AtomicU64::new(0),
            otlp_dropped: AtomicU64::new(0),
        }
    }

    fn traffic(&self) -> std::sync::MutexGuard<'_, Traffic> {
        self.traffic.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts committed records.
    pub fn observe<'a>(&self, records: impl IntoIterator<Item = &'a LogRecord>) {
        let mut custom = 0;
        let requests = records.into_iter().filter(|r| {
            custom += u64::from(r.kind == KIND_CUSTOM);
            r.kind == KIND_REQUEST
        });
        self.traffic().observe_requests(requests);
        self.custom_records.fetch_add(custom, Ordering::Relaxed);
    }

    /// A request waited because the record queue was full.
    pub fn recorder_waited(&self) {
        self.recorder_waits.fetch_add(1, Ordering::Relaxed);
    }

    pub fn records_written(&self, n: u64) {
        self.records_written.fetch_add(n, Ordering::Relaxed);
    }

    pub fn otlp_exported(&self, spans: u64) {
        self.otlp_exported.fetch_add(spans, Ordering::Relaxed);
    }

    /// Spans given up on: the export queue was full, or the receiver refused them or kept
    /// failing.
    pub fn otlp_dropped(&self, spans: u64) {
        self.otlp_dropped.fetch_add(spans, Ordering::Relaxed);
    }

    /// The metrics as Prometheus text, series sorted by name and then label values.
    /// `store`: the store's state and the records held for it; `queue_capacity`: the
    /// channel's.
    pub fn render(&self, store: &Snapshot, queue_capacity: usize) -> String {
        let mut out = Exposition::default();
        {
            let t = self.traffic();
            out.counters(
                "tollgate_requests_total",
                "Gateway requests, by the provider and model that answered.",
                ["provider", "model", "endpoint", "status_class"],
                &t.requests,
            );
            out.histograms(
                "tollgate_request_duration_seconds",
                "From a request's arrival to the last byte of its answer.",
                ["provider", "endpoint"],
                &t.duration,
            );
            out.histograms(
                "tollgate_time_to_first_token_seconds",
                "Streams: from a request's arrival to the first event sent to the client.",
                ["provider"],
                &t.time_to_first_token,
            );
            out.counters(
                "tollgate_tokens_total",
                "Tokens reported by providers; `cached`: input tokens read from a prompt cache.",
                ["provider", "model", "type"],
                &t.tokens,
            );
            out.counters(
                "tollgate_cost_usd_total",
                "USD spent, over the requests whose cost is known.",
                ["provider", "model"],
                &t.cost,
            );
            out.counters(
                "tollgate_cost_unknown_requests_total",
                "Requests whose cost is unknown (a model without a price).",
                ["provider", "model"],
                &t.cost_unknown,
            );
            out.counters(
                "tollgate_errors_total",
                "Gateway requests answered with a status of 400 or more.",
                ["provider", "status_class"],
                &t.errors,
            );
            out.counters(
                "tollgate_retries_total",
                "Upstream calls beyond the first of each request (retries and fallbacks).",
                ["provider"],
                &t.retries,
            );
            out.counters(
                "tollgate_upstream_attempts_total",
                "Upstream calls, by the provider called and the status it answered.",
                ["provider", "status_class"],
                &t.attempts,
            );
        }
        let plain = [
            (
                "tollgate_custom_records_total",
                "Custom records posted to /v1/logs.",
                &self.custom_records,
            ),
            (
                "tollgate_recorder_waits_total",
                "Requests that waited because the record queue was full.",
                &self.recorder_waits,
            ),
            (
                "tollgate_records_written_total",
                "Records committed to the store.",
                &self.records_written,
            ),
            (
                "tollgate_otlp_spans_exported_total",
                "Spans accepted by the OTLP receiver.",
                &self.otlp_exported,
            ),
            (
                "tollgate_otlp_spans_dropped_total",
                "Spans not exported: the export queue was full, or the receiver refused them or kept failing.",
                &self.otlp_dropped,
            ),
        ];
        for (name, help, value) in plain {
            out.header(name, help, "counter");
            out.sample(name, &[], value.load(Ordering::Relaxed) as f64);
        }
        out.header(
            "tollgate_records_dropped_total",
            "Records dropped because the queue was full while the store was unavailable.",
            "counter",
        );
        out.sample("tollgate_records_dropped_total", &[], store.dropped as f64);
        for (name, help, value) in [
            (
                "tollgate_recorder_queue_depth",
                "Records waiting to be committed (held in memory while the store is unavailable).",
                store.held,
            ),
            (
                "tollgate_recorder_queue_capacity",
                "Records the queue holds before requests wait.",
                queue_capacity,
            ),
            (
                "tollgate_recorder_queue_limit",
                "Records held at most while the store is unavailable; later ones are dropped.",
                store.limit.records,
            ),
            (
                "tollgate_store_up",
                "1 while the store takes writes, 0 while it refuses them.",
                usize::from(store.refused.is_none()),
            ),
        ] {
            out.header(name, help, "gauge");
            out.sample(name, &[], value as f64);
        }
        out.text
    }
}

/// A gauge family for values kept elsewhere (budget headroom), in the exposition format.
pub fn gauge_family<const N: usize>(
    name: &str,
    help: &str,
    samples: &[([(&str, &str); N], f64)],
) -> String {
    let mut out = Exposition::default();
    out.header(name, help, "gauge");
    for (labels, value) in samples {
        out.sample(name, labels, *value);
    }
    out.text
}

/// Text being written in the exposition format.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn header(&mut self, name: &str, help: &str, kind: &str) {
        self.text
            .push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            let pairs: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape_label_value(v)))
                .collect();
            self.text.push('{');
            self.text.push_str(&pairs.join(","));
            self.text.push('}');
        }
        self.text.push_str(&format!(" {value}\n"));
    }

    fn counters<const N: usize>(
        &mut self,
        name: &str,
        help: &str,
        label_names: [&str; N],
        series: &BTreeMap<[Label; N], f64>,
    ) {
        self.header(name, help, "counter");
        for (values, value) in series {
            self.sample(name, &label_pairs(&label_names, values), *value);
        }
    }

    fn histograms<const N: usize>(
        &mut self,
        name: &str,
        help: &str,
        label_names: [&str; N],
        series: &BTreeMap<[Label; N], Histogram>,
    ) {
        self.header(name, help, "histogram");
        let bucket = format!("{name}_bucket");
        let bounds: Vec<String> = LATENCY_BUCKETS.iter().map(|b| b.to_string()).collect();
        for (values, histogram) in series {
            let labels = label_pairs(&label_names, values);
            let mut cumulative = 0;
            for (bound, n) in bounds.iter().zip(histogram.buckets) {
                cumulative += n;
                let with_le = [labels.as_slice(), &[("le", bound.as_str())]].concat();
                self.sample(&bucket, &with_le, cumulative as f64);
            }
            let with_le = [labels.as_slice(), &[("le", "+Inf")]].concat();
            self.sample(&bucket, &with_le, histogram.count as f64);
            self.sample(&format!("{name}_sum"), &labels, histogram.sum);
            self.sample(&format!("{name}_count"), &labels, histogram.count as f64);
        }
    }
}

fn label_pairs<'a, const N: usize>(
    names: &[&'a str; N],
    values: &'a [Label; N],
) -> Vec<(&'a str, &'a str)> {
    names.iter().zip(values).map(|(n, v)| (*n, &**v)).collect()
}

/// A label value as the exposition format quotes it: backslash, double quote and line feed
/// escaped.
fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::recorder::Limit;
    use crate::observe::test_support::{attempt, custom, request, sample, store_taking_writes};

    #[test]
    fn records_are_counted_by_their_labels() {
        let metrics = Metrics::new();
        let mut retried = request();
        retried.status = 502;
        retried.cost = None;
        retried.attempts = vec![
            attempt("1111111111111111", 0.0, 100.0, 503),
            attempt("2222222222222222", 300.0, 100.0, 502),
        ];
        metrics.observe([&request()]);
        metrics.observe([&request()]);
        metrics.observe([&retried]);
        metrics.observe([&custom()]);
        metrics.recorder_waited();
        metrics.records_written(4);
        metrics.otlp_exported(5);
        metrics.otlp_dropped(2);
        let store = Snapshot {
            refused: Some("connection refused".into()),
            since_ms: 0,
            held: 3,
            dropped: 6,
            limit: Limit::default(),
        };
        let text = metrics.render(&store, 1024);

        let ok = r#"tollgate_requests_total{provider="openai",model="gpt-4o-2024-08-06",endpoint="/v1/chat/completions",status_class="2xx"}"#;
        assert_eq!(sample(&text, ok), Some(2.0));
        let tokens =
            r#"tollgate_tokens_total{provider="openai",model="gpt-4o-2024-08-06",type="cached"}"#;
        assert_eq!(sample(&text, tokens), Some(120.0));
        let cost = r#"tollgate_cost_usd_total{provider="openai",model="gpt-4o-2024-08-06"}"#;
        assert_eq!(sample(&text, cost), Some(0.001));
        let unknown =
            r#"tollgate_cost_unknown_requests_total{provider="openai",model="gpt-4o-2024-08-06"}"#;
        assert_eq!(sample(&text, unknown), Some(1.0));
        let errors = r#"tollgate_errors_total{provider="openai",status_class="5xx"}"#;
        assert_eq!(sample(&text, errors), Some(1.0));
        let retries = r#"tollgate_retries_total{provider="openai"}"#;
        assert_eq!(sample(&text, retries), Some(1.0));
        let attempts = r#"tollgate_upstream_attempts_total{provider="openai",status_class="5xx"}"#;
        assert_eq!(sample(&text, attempts), Some(2.0));
        for (series, expected) in [
            ("tollgate_custom_records_total", 1.0),
            ("tollgate_recorder_waits_total", 1.0),
            ("tollgate_records_written_total", 4.0),
            ("tollgate_otlp_spans_exported_total", 5.0),
            ("tollgate_otlp_spans_dropped_total", 2.0),
            ("tollgate_recorder_queue_depth", 3.0),
            ("tollgate_recorder_queue_capacity", 1024.0),
            ("tollgate_recorder_queue_limit", 100_000.0),
            ("tollgate_records_dropped_total", 6.0),
            ("tollgate_store_up", 0.0),
        ] {
            assert_eq!(sample(&text, series), Some(expected), "{series}");
        }
        // The custom record feeds no traffic series.
        assert!(!text.contains("provider=\"none\""));
    }

    #[test]
    fn histograms_have_cumulative_buckets_a_sum_and_a_count() {
        let metrics = Metrics::new();
        for (latency_ms, ttft_ms) in [(40.0, Some(30.0)), (700.0, Some(200.0)), (200_000.0, None)] {
            let mut r = request();
            r.latency_ms = latency_ms;
            r.ttft_ms = ttft_ms;
            metrics.observe([&r]);
        }
        let text = metrics.render(&store_taking_writes(0), 1);
        let bucket = |le: &str| {
            let series = format!(
                r#"tollgate_request_duration_seconds_bucket{{provider="openai",endpoint="/v1/chat/completions",le="{le}"}}"#
            );
            sample(&text, &series)
        };
        assert_eq!(bucket("0.025"), Some(0.0));
        assert_eq!(bucket("0.05"), Some(1.0));
        assert_eq!(bucket("0.5"), Some(1.0));
        assert_eq!(bucket("1"), Some(2.0));
        assert_eq!(bucket("120"), Some(2.0));
        assert_eq!(bucket("+Inf"), Some(3.0));
        let labels = r#"{provider="openai",endpoint="/v1/chat/completions"}"#;
        let sum = sample(
            &text,
            &format!("tollgate_request_duration_seconds_sum{labels}"),
        )
        .unwrap();
        assert!((sum - 200.74).abs() < 1e-9, "{sum}");
        assert_eq!(
            sample(
                &text,
                &format!("tollgate_request_duration_seconds_count{labels}")
            ),
            Some(3.0)
        );
        let ttft = r#"tollgate_time_to_first_token_seconds_count{provider="openai"}"#;
        assert_eq!(sample(&text, ttft), Some(2.0));
    }

    #[test]
    fn at_most_100_models_are_tracked_and_missing_labels_read_none() {
        let metrics = Metrics::new();
        for i in 0..105 {
            let mut r = request();
            r.model = Some(format!("model-{i:03}"));
            metrics.observe([&r]);
        }
        let mut unnamed = request();
        unnamed.provider = None;
        unnamed.model = None;
        metrics.observe([&unnamed]);
        let text = metrics.render(&store_taking_writes(0), 1);

        let requests: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("tollgate_requests_total{"))
            .collect();
        assert_eq!(requests.len(), 102, "100 models, other and none");
        assert!(text.contains(r#"model="model-099""#));
        assert!(!text.contains(r#"model="model-100""#));
        let other = r#"tollgate_requests_total{provider="openai",model="other",endpoint="/v1/chat/completions",status_class="2xx"}"#;
        assert_eq!(sample(&text, other), Some(5.0));
        let none = r#"tollgate_requests_total{provider="none",model="none",endpoint="/v1/chat/completions",status_class="2xx"}"#;
        assert_eq!(sample(&text, none), Some(1.0));
        // A model seen before the bound keeps its own series.
        let mut again = request();
        again.model = Some("model-000".into());
        metrics.observe([&again]);
        let first = r#"tollgate_requests_total{provider="openai",model="model-000",endpoint="/v1/chat/completions",status_class="2xx"}"#;
        assert_eq!(
            sample(&metrics.render(&store_taking_writes(0), 1), first),
            Some(2.0)
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label_value(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape_label_value("line\nbreak"), r"line\nbreak");
        let metrics = Metrics::new();
        let mut r = request();
        r.model = Some("we\"ird\\\nmodel".into());
        metrics.observe([&r]);
        assert!(metrics
            .render(&store_taking_writes(0), 1)
            .contains(r#"model="we\"ird\\\nmodel""#));
    }

    type Labels = Vec<(String, String)>;

    /// Reads a sample line as `name{labels} value` with the format's quoting rules.
    fn parse_sample(line: &str) -> Result<(String, Labels, f64), String> {
        let name_end = line.find(['{', ' ']).ok_or("no value")?;
        let name = &line[..name_end];
        let valid_name = name.chars().enumerate().all(|(i, c)| {
            c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
        });
        if name.is_empty() || !valid_name {
            return Err(format!("bad metric name {name:?}"));
        }
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(mut inner) = rest.strip_prefix('{') {
            while !inner.starts_with('}') {
                let eq = inner.find("=\"").ok_or("label without a quoted value")?;
                let key = inner[..eq].to_string();
                let mut chars = inner[eq + 2..].char_indices();
                let mut value = String::new();
                let end = loop {
                    match chars.next().ok_or("unterminated label value")? {
                        (i, '"') => break eq + 2 + i + 1,
                        (_, '\\') => match chars.next().ok_or("dangling escape")?.1 {
                            'n' => value.push('\n'),
                            c @ ('\\' | '"') => value.push(c),
                            c => return Err(format!("bad escape \\{c}")),
                        },
                        (_, c) => value.push(c),
                    }
                };
                labels.push((key, value));
                inner = &inner[end..];
                inner = inner.strip_prefix(',').unwrap_or(inner);
            }
            rest = &inner[1..];
        }
        let value = rest.strip_prefix(' ').ok_or("no space before the value")?;
        let value = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().map_err(|_| format!("bad value {v:?}"))?,
        };
        Ok((name.to_string(), labels, value))
    }

    #[test]
    fn every_line_is_a_comment_or_a_typed_sample() {
        let metrics = Metrics::new();
        let mut r = request();
        r.ttft_ms = Some(150.0);
        r.model = Some("a \"quoted\", {braced} model".into());
        metrics.observe([&r]);
        metrics.observe([&custom()]);
        let text = metrics.render(&store_taking_writes(1), 2);
        assert_eq!(
            text,
            metrics.render(&store_taking_writes(1), 2),
            "rendering is deterministic"
        );
        assert!(text.ends_with('\n'));

        let mut typed = Vec::new();
        let mut samples = 0;
        for line in text.lines() {
            if let Some(comment) = line.strip_prefix("# ") {
                let mut words = comment.splitn(3, ' ');
                match (words.next(), words.next(), words.next()) {
                    (Some("HELP"), Some(_), Some(_)) => {}
                    (Some("TYPE"), Some(name), Some("counter" | "gauge" | "histogram")) => {
                        typed.push(name.to_string())
                    }
                    _ => panic!("bad comment line {line:?}"),
                }
                continue;
            }
            let (name, labels, _) = parse_sample(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| {
                    name.strip_suffix(s)
                        .filter(|f| typed.iter().any(|t| t == f))
                })
                .unwrap_or(&name);
            assert_eq!(typed.last().map(String::as_str), Some(family), "{line}");
            if name.ends_with("_bucket") {
                assert_eq!(labels.last().unwrap().0, "le");
            }
            samples += 1;
        }
        assert!(samples > 20);
        let model = parse_sample(
            text.lines()
                .find(|l| l.starts_with("tollgate_requests_total"))
                .unwrap(),
        )
        .unwrap()
        .1
        .into_iter()
        .find(|(k, _)| k == "model")
        .unwrap()
        .1;
        assert_eq!(model, "a \"quoted\", {braced} model");
    }
}
