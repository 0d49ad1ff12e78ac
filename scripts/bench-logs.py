#!/usr/bin/env python3
"""Request-log figures (issue 4): insert rate, `logs list` latency over many records, bytes on
disk per record, and how soon a stored record reaches a live tail.

Usage: cargo build --release && python3 scripts/bench-logs.py [--records 1000000]
       [--mode bodies --database-url postgres://USER@HOST/EMPTY_DATABASE]

With --database-url the server keeps its store in that Postgres database (docs/postgres.md), and the
script runs ANALYZE on the records before timing the filters.

Builds nothing. For each mode it starts `tollgate serve --addr 127.0.0.1:0` with temporary data
and config dirs and posts custom records (`POST /v1/logs`, arrays of --batch):

* `no-bodies`: the server runs with TOLLGATE_LOG_BODIES=false, so the records carry model,
  tokens and cost from the posted bodies but the bodies are not stored; the server is then
  stopped (it commits and checkpoints) and the database's bytes per record are measured.
* `bodies`: the same records with their bodies stored; then the list filters are timed, then
  `GET /v1/logs/{id}` of records spread over the time range (one read each, with bodies), the
  live tail is measured, and the bytes per record are measured as above.

The records: ~20 models over 5 providers (skewed popularity), statuses mostly 200 with some
429/500/502, `_user` among 10,000 users, metadata `team` among 20 values, traces of 1-4 spans,
a chat request body and a response body with usage (1% long-context outliers). The admin key
posts them; a second key posts one more record after every RARE_KEY_EVERY arrays, for a rare
`api_key` value. The server sets a custom record's created_at to its arrival minus
`response.response_time`, so records are spread over the last --spread-days (oldest first) by
adding each record's age to its response time; that also makes their `latency_ms` that large,
which no figure here reads.

The insert rate is given over the wall time and over the time spent waiting for the server's
answers (the next batch is generated meanwhile, on the other core). List latency is the client's
round trip at limit 50, after warm-ups; the sparse filters match fewer rows than a page (or
none), the worst case for a filter without an index of its own. The tail figure is taken from the
POST being sent, because `POST /v1/logs` answers only once its records are stored, and the tail
usually has the event by then.

Prints a table and then a JSON summary. Targets: list under 100 ms at limit 50, under 1 KB per
record without bodies, tail under 100 ms.
"""
import argparse
import http.client
import json
import math
import os
import queue
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from datetime import datetime, timezone

from local_server import LocalServer, isolated_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DAY_MS = 86_400_000

# ((provider, model), relative popularity); every model is in data/pricing.json.
MODELS = [
    (("openai", "gpt-4o-mini"), 30), (("openai", "gpt-4o"), 14), (("openai", "gpt-4.1"), 8),
    (("openai", "gpt-4.1-mini"), 10), (("openai", "gpt-4.1-nano"), 4),
    (("anthropic", "claude-sonnet-4-5"), 16), (("anthropic", "claude-haiku-4-5"), 9),
    (("anthropic", "claude-opus-4-5"), 3), (("anthropic", "claude-sonnet-4-6"), 6),
    (("google", "gemini-2.5-flash"), 12), (("google", "gemini-2.5-pro"), 5),
    (("google", "gemini-2.5-flash-lite"), 4), (("google", "gemini-3-flash-preview"), 2),
    (("mistral-ai", "mistral-large-latest"), 3), (("mistral-ai", "mistral-small-latest"), 4),
    (("mistral-ai", "codestral-latest"), 2), (("mistral-ai", "ministral-8b-latest"), 1),
    (("deepseek", "deepseek-chat"), 6), (("deepseek", "deepseek-reasoner"), 2),
    (("deepseek", "deepseek-v3.2"), 1),
]
STATUSES = [(200, 955), (429, 25), (500, 10), (502, 10)]
USERS = 10_000
TEAMS = 20
QUESTIONS = [
    "Summarise the attached incident report in three bullet points.",
    "Write a SQL query that returns the ten most active customers this month.",
    "Translate the following paragraph into German, keeping the technical terms.",
    "What is the difference between a mutex and a semaphore? Give an example.",
    "Draft a polite reply declining the meeting and proposing Thursday instead.",
    "Explain why this Rust function does not compile and suggest a fix.",
]
ANSWERS = [
    "Here is a summary: the outage began at 09:14 UTC when the cache cluster ran out of memory.",
    "SELECT customer_id, COUNT(*) AS orders FROM orders WHERE created_at >= date_trunc('month', now()) GROUP BY 1 ORDER BY 2 DESC LIMIT 10;",
    "Gern. Die folgende Übersetzung behält die Fachbegriffe bei, wie gewünscht.",
    "A mutex gives one owner exclusive access; a semaphore counts permits, so N holders may proceed.",
]
SYSTEM = "You are a helpful assistant for the platform team. Answer concisely."

# Filters timed over the records; placeholders are filled from what was inserted.
FILTERS = [
    ("none", ""),
    ("model=X", "model={model}"),
    ("status=5xx", "status=5xx"),
    ("user=U", "user={user}"),
    ("metadata.team=T", "metadata.team={team}"),
    ("provider=P&status=429", "provider={provider}&status=429"),
    ("since=1h", "since=1h"),
    ("trace_id=T", "trace_id={trace}"),
    ("min_cost=C", "min_cost={min_cost}"),
    ("cursor (deep page)", "cursor={cursor}"),
    ("model=rare (0.7 %)", "model={rare_model}"),
    ("api_key=K (every record)", "api_key={key}"),
    ("api_key=NAME (every record)", "api_key={key_name}"),
]
# Filters that match fewer rows than the page holds: the worst case of a filter without an
# index of its own, which before block summaries read the whole table (up to a second), so they
# run fewer times.
SPARSE_FILTERS = [
    ("since=1m (few rows)", "since=1m"),
    ("min_cost=1000 (no rows)", "min_cost=1000"),
    ("min_cost=C99.99 (rare)", "min_cost={rare_cost}"),
    ("max_cost=0&status=200 (no rows)", "max_cost=0&status=200"),
    ("min_latency_ms=1e12 (no rows)", "min_latency_ms=1000000000000"),
    ("metadata.team=absent (no rows)", "metadata.team=absent"),
    ("metadata.team=T&user=U (rare)", "metadata.team={team}&user={user}"),
    ("model=X&metadata.team=absent (no rows)", "model={model}&metadata.team=absent"),
    ("provider=absent (no rows)", "provider=absent"),
    ("provider=P&min_cost=1000 (no rows)", "provider={provider}&min_cost=1000"),
    ("cache_status=HIT (no rows)", "cache_status=HIT"),
    ("kind=request (no rows)", "kind=request"),
    ("model=absent (no rows)", "model=absent"),
    ("api_key=rare (0.01 %)", "api_key={rare_key}"),
    ("api_key=absent (no rows)", "api_key=absent"),
]
SPARSE_RUNS, SPARSE_WARMUPS = 5, 1
# Records read one by one (each from a different payload chunk) for the `get` figure.
GET_SAMPLES = 40
# A second key posts one record after every this many arrays, for the rare `api_key` filter.
RARE_KEY_EVERY = 10


def weighted(pairs):
    """A list to draw from with random.choice, each item repeated by its weight."""
    return [item for item, weight in pairs for _ in range(weight)]


def percentile(sorted_samples, p):
    """Nearest-rank percentile."""
    rank = max(1, math.ceil(p / 100 * len(sorted_samples)))
    return sorted_samples[rank - 1]


def rfc3339(ms):
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Server(LocalServer):
    """`tollgate serve` on a free loopback port, with its own data and config dirs."""

    def __init__(self, binary, root, log_bodies, database_url=None):
        self.data_dir = os.path.join(root, "data")
        env = isolated_env(root, TOLLGATE_LOG_BODIES="true" if log_bodies else "false")
        if database_url:
            env["TOLLGATE_DATABASE_URL"] = database_url
        super().__init__([binary, "serve", "--addr", "127.0.0.1:0"], env)

    def connect(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=120)

    def headers(self, key=None):
        return {"x-portkey-api-key": key or self.admin_key, "content-type": "application/json"}

    def call(self, conn, method, path, body=None, key=None):
        conn.request(method, path, body=body, headers=self.headers(key))
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            sys.exit(f"{method} {path}: {response.status} {data[:500]!r}")
        return json.loads(data)

    def stop(self):
        """SIGTERM: the server commits every record and checkpoints before it exits."""
        self.process.terminate()
        try:
            self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            sys.exit("the server did not stop within 120 s of SIGTERM")


class Records:
    """Custom records in Portkey's shape, oldest first, ages spread over `spread_ms`."""

    def __init__(self, total, spread_ms, prices, seed=7):
        self.total = total
        self.spread_ms = spread_ms
        self.prices = prices
        self.rng = random.Random(seed)
        self.models = weighted(MODELS)
        self.statuses = weighted(STATUSES)
        self.trace = self._hex(32)
        self.costs = []  # a sample of estimated costs, to pick a selective min_cost
        self.middle_trace = None

    def _hex(self, digits):
        return f"{self.rng.getrandbits(digits * 4):0{digits}x}"

    def age_ms(self, i):
        return int(self.spread_ms * (1 - i / self.total))

    def one(self, i):
        rng = self.rng
        provider, model = rng.choice(self.models)
        status = rng.choice(self.statuses)
        if rng.random() < 0.4:
            self.trace = self._hex(32)
        if i == self.total // 2:
            self.middle_trace = self.trace
        long_context = rng.random() < 0.01
        prompt = int(rng.uniform(60_000, 180_000)) if long_context else 40 + int(rng.expovariate(1 / 900))
        request = {
            "url": "https://api.example.com/v1/chat/completions",
            "method": "POST",
            "provider": provider,
            "body": {"model": model, "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": rng.choice(QUESTIONS)},
            ], "temperature": 0.2},
        }
        if status == 200:
            completion = 1 + int(rng.expovariate(1 / 250))
            body = {
                "id": "chatcmpl-" + self._hex(24), "object": "chat.completion", "model": model,
                "choices": [{"index": 0, "finish_reason": "stop", "message": {
                    "role": "assistant", "content": rng.choice(ANSWERS)}}],
                "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                          "total_tokens": prompt + completion},
            }
            if i % 100 == 0:
                price = self.prices[(provider, model)]
                self.costs.append((prompt * price[0] + completion * price[1]) / 1e6)
        else:
            kind = "rate_limit_error" if status == 429 else "server_error"
            body = {"error": {"message": f"{provider}: upstream answered {status}",
                              "type": kind, "param": None, "code": None}}
        latency = 300 + rng.expovariate(1 / 1200)
        return {
            "request": request,
            "response": {"status": status, "body": body,
                         "response_time": round(self.age_ms(i) + latency, 1)},
            "metadata": {"trace_id": self.trace, "span_id": self._hex(16), "span_name": "llm",
                         "_user": f"user-{rng.randrange(USERS):05d}",
                         "team": f"team-{rng.randrange(TEAMS):02d}", "env": "prod"},
        }

    def batches(self, size):
        for start in range(0, self.total, size):
            end = min(start + size, self.total)
            yield end - start, json.dumps([self.one(i) for i in range(start, end)]).encode()


def load_prices():
    """USD per 1M tokens (input, output) of the benchmark's models, from data/pricing.json."""
    with open(os.path.join(ROOT, "data", "pricing.json")) as f:
        table = json.load(f)["providers"]
    return {(p, m): (table[p][m]["input"], table[p][m]["output"]) for (p, m), _ in MODELS}


def insert(server, records, batch, rare):
    """Posts every record, generating the next batch while the server stores the last one, and
    after every RARE_KEY_EVERY arrays one record of `rare` with the second key."""
    ready = queue.Queue(maxsize=4)

    def produce():
        for item in records.batches(batch):
            ready.put(item)
        ready.put(None)

    threading.Thread(target=produce, daemon=True).start()
    conn = server.connect()
    posted = 0
    answering = 0.0  # time spent waiting for the server's answers
    rare_key = server.call(conn, "POST", "/v1/api-keys/workspace/service",
                           json.dumps({"name": "bench-rare", "scopes": ["logs.write"]}).encode())
    started = time.perf_counter()
    while (item := ready.get()) is not None:
        count, body = item
        sent = time.perf_counter()
        answer = server.call(conn, "POST", "/v1/logs", body)
        answering += time.perf_counter() - sent
        assert len(answer["log_ids"]) == count, answer
        if posted % (batch * RARE_KEY_EVERY) == 0:
            server.call(conn, "POST", "/v1/logs", json.dumps(rare.one(posted)).encode(),
                        key=rare_key["key"])
        posted += count
        if posted % (batch * 100) == 0:
            rate = posted / (time.perf_counter() - started)
            print(f"  {posted:>9,} records, {rate:,.0f}/s", file=sys.stderr)
    seconds = time.perf_counter() - started
    conn.close()
    return {"records": posted, "seconds": round(seconds, 1),
            "records_per_s": round(posted / seconds),
            "records_per_s_of_server_time": round(posted / answering),
            "rare_key_id": rare_key["id"]}


def disk_bytes(data_dir):
    """Size of the stopped server's database after a full checkpoint, per table and index."""
    path = os.path.join(data_dir, "tollgate.db")
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    records = db.execute("SELECT COUNT(*) FROM logs").fetchone()[0]
    objects = dict(db.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall())
    db.close()
    total = sum(os.path.getsize(path + suffix) for suffix in ("", "-wal")
                if os.path.exists(path + suffix))
    return {
        "records": records,
        "bytes": total,
        "bytes_per_record": round(total / records),
        "bytes_per_record_by_object": {name: round(size / records)
                                       for name, size in sorted(objects.items(), key=lambda kv: -kv[1])
                                       if size / records >= 1},
    }


def psql(database_url, sql):
    return subprocess.run(["psql", database_url, "-Atc", sql], check=True,
                          capture_output=True, text=True).stdout


def postgres_bytes(database_url):
    """Size of the Postgres database the server used (tables, indexes and TOAST), per record."""
    def scalar(sql):
        return int(psql(database_url, sql).strip())
    records = scalar("SELECT COUNT(*) FROM logs")
    total = scalar("SELECT pg_database_size(current_database())")
    return {"records": records, "bytes": total, "bytes_per_record": round(total / records),
            "bytes_per_record_by_object": {}}


def timed_queries(server, params, filters, runs, warmups):
    conn = server.connect()
    results = {}
    for name, template in filters:
        query = template.format(**params)
        path = "/v1/logs?" + "&".join(filter(None, [query, "limit=50"]))
        samples = []
        rows = 0
        for attempt in range(warmups + runs):
            start = time.perf_counter()
            conn.request("GET", path, headers=server.headers())
            response = conn.getresponse()
            body = response.read()
            elapsed = (time.perf_counter() - start) * 1000
            if response.status != 200:
                sys.exit(f"GET {path}: {response.status} {body[:300]!r}")
            if attempt >= warmups:
                samples.append(elapsed)
            rows = len(json.loads(body)["data"])
        samples.sort()
        results[name] = {"query": query, "rows": rows, "runs": runs,
                         "median_ms": round(statistics.median(samples), 1),
                         "p95_ms": round(percentile(samples, 95), 1)}
        print(f"  {name}: median {results[name]['median_ms']} ms", file=sys.stderr)
    conn.close()
    return results


def query_params(server, records, until_ms, rare_key_id):
    """Values for the filter placeholders, all drawn from the inserted records."""
    conn = server.connect()
    page = server.call(conn, "GET", "/v1/logs?limit=1&until=" + urllib.parse.quote(rfc3339(until_ms)))
    admin = server.call(conn, "GET", "/v1/api-keys/self")
    conn.close()
    costs = sorted(records.costs)
    return {
        "model": "claude-sonnet-4-5", "provider": "google", "user": "user-04242",
        "team": "team-07", "trace": records.middle_trace,
        "min_cost": f"{percentile(costs, 99):.4f}", "rare_cost": f"{percentile(costs, 99.99):.4f}",
        "cursor": page["next_cursor"], "rare_model": "deepseek-v3.2",
        "key": admin["id"], "key_name": admin["name"], "rare_key": rare_key_id,
    }


def timed_gets(server, spread_ms, samples):
    """`GET /v1/logs/{id}` (the record with its bodies) for records spread over the time
    range, each read once: each is in a payload chunk of its own that the server decompresses."""
    conn = server.connect()
    now_ms = time.time() * 1000
    ids = []
    for i in range(samples):
        until = rfc3339(now_ms - spread_ms * (i + 0.5) / samples)
        page = server.call(conn, "GET", "/v1/logs?limit=1&until=" + urllib.parse.quote(until))
        ids.extend(r["id"] for r in page["data"])
    times = []
    for record_id in ids:
        start = time.perf_counter()
        record = server.call(conn, "GET", f"/v1/logs/{record_id}")
        times.append((time.perf_counter() - start) * 1000)
        if "request_body" not in record:
            sys.exit(f"GET /v1/logs/{record_id} came without its request body")
    conn.close()
    times.sort()
    return {"records": len(times), "median_ms": round(statistics.median(times), 1),
            "p95_ms": round(percentile(times, 95), 1)}


class Tail:
    """Reads `GET /v1/logs/stream` on a thread and notes when each record's event arrives."""

    def __init__(self, server):
        self.arrivals = {}
        self.arrived = threading.Condition()
        self.conn = server.connect()
        self.conn.request("GET", "/v1/logs/stream", headers=server.headers())
        self.response = self.conn.getresponse()
        if self.response.status != 200:
            sys.exit(f"GET /v1/logs/stream: {self.response.status}")
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            while line := self.response.readline():
                if line.startswith(b"data: "):
                    now = time.perf_counter()
                    record_id = json.loads(line[6:])["id"]
                    with self.arrived:
                        self.arrivals[record_id] = now
                        self.arrived.notify_all()
        except (http.client.HTTPException, OSError):
            pass  # the server stopped: the stream ends with it

    def wait_for(self, record_id, timeout=10):
        with self.arrived:
            if self.arrived.wait_for(lambda: record_id in self.arrivals, timeout):
                return self.arrivals[record_id]
        return None


def tail_latency(server, records, samples, gap_s):
    """From each single POST's answer (and from its start) to its event on the live tail."""
    tail = Tail(server)
    time.sleep(0.5)
    conn = server.connect()
    after_answer, after_start, early, missing = [], [], 0, 0
    for i in range(samples):
        body = json.dumps(records.one(records.total)).encode()
        start = time.perf_counter()
        record_id = server.call(conn, "POST", "/v1/logs", body)["log_ids"][0]
        answered = time.perf_counter()
        arrival = tail.wait_for(record_id)
        if arrival is None:
            missing += 1
        else:
            early += arrival < answered
            after_answer.append(max(0.0, arrival - answered) * 1000)
            after_start.append((arrival - start) * 1000)
        time.sleep(gap_s)
    conn.close()

    def summary(values):
        values.sort()
        return {"median_ms": round(statistics.median(values), 2),
                "p99_ms": round(percentile(values, 99), 2)} if values else None

    return {"samples": samples, "missing": missing, "arrived_before_post_answer": early,
            "from_post_answer": summary(after_answer), "from_post_start": summary(after_start)}


def run_mode(args, root, log_bodies, measure_reads):
    mode = "bodies" if log_bodies else "no-bodies"
    print(f"[{mode}] starting the server", file=sys.stderr)
    server = Server(args.bin, os.path.join(root, mode), log_bodies, args.database_url)
    records = Records(args.records, args.spread_days * DAY_MS, load_prices())
    rare = Records(args.records, args.spread_days * DAY_MS, load_prices(), seed=8)
    result = {"mode": mode}
    try:
        print(f"[{mode}] inserting {args.records:,} records", file=sys.stderr)
        insert_started_ms = time.time() * 1000
        result["insert"] = insert(server, records, args.batch, rare)
        if measure_reads:
            insert_ms = time.time() * 1000 - insert_started_ms
            if args.database_url:
                # The planner needs the partitions' statistics, which autovacuum gathers a
                # minute or so after a bulk insert; gathered now, the timings do not depend on
                # how far it got.
                print(f"[{mode}] analyzing the records' partitions", file=sys.stderr)
                psql(args.database_url, "ANALYZE logs")
            middle_ms = insert_started_ms + insert_ms / 2 - records.age_ms(records.total // 2)
            params = query_params(server, records, middle_ms, result["insert"]["rare_key_id"])
            print(f"[{mode}] timing list filters", file=sys.stderr)
            result["list"] = timed_queries(server, params, FILTERS, args.runs, args.warmups)
            result["list"].update(timed_queries(server, params, SPARSE_FILTERS, SPARSE_RUNS,
                                                SPARSE_WARMUPS))
            if log_bodies:
                print(f"[{mode}] timing reads of one record with its bodies", file=sys.stderr)
                result["get"] = timed_gets(server, args.spread_days * DAY_MS, GET_SAMPLES)
            print(f"[{mode}] measuring the live tail", file=sys.stderr)
            result["tail"] = tail_latency(server, records, args.tail_samples, args.tail_gap_ms / 1000)
    finally:
        server.stop()
    result["disk"] = (postgres_bytes(args.database_url) if args.database_url
                      else disk_bytes(server.data_dir))
    return result


def row(label, value, target=""):
    print(f"{label:<68} {value:>16}   {target}")


def print_table(results, args):
    print()
    print(f"tollgate request log: {args.records:,} records per mode, created_at spread over "
          f"{args.spread_days} days (through response.response_time)")
    row("figure", "value", "target")
    for r in results:
        mode, insert, disk = r["mode"], r["insert"], r["disk"]
        row(f"insert, {mode}, arrays of {args.batch}", f"{insert['records_per_s']:,} rec/s")
        row("  over the time spent waiting for the server",
            f"{insert['records_per_s_of_server_time']:,} rec/s")
        row(f"bytes on disk per record, {mode}", f"{disk['bytes_per_record']:,} B",
            "< 1024" if mode == "no-bodies" else "")
        for name, q in r.get("list", {}).items():
            verdict = "ok" if q["p95_ms"] < 100 else "MISSED"
            row(f"list {name}: median / p95 ({q['rows']} rows, {q['runs']} runs)",
                f"{q['median_ms']} / {q['p95_ms']} ms", f"< 100 ms: {verdict}")
        if "get" in r:
            g = r["get"]
            row(f"get one record with bodies: median / p95 ({g['records']} records)",
                f"{g['median_ms']} / {g['p95_ms']} ms")
        if "tail" in r:
            t = r["tail"]
            for label, key in (("tail, POST answered → event: median / p99", "from_post_answer"),
                               ("tail, POST sent → event: median / p99", "from_post_start")):
                v = t[key]
                row(label, f"{v['median_ms']} / {v['p99_ms']} ms" if v else "none arrived",
                    "< 100 ms")
            row("tail events missing, arrived before the POST's answer",
                f"{t['missing']}, {t['arrived_before_post_answer']} of {t['samples']}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "tollgate"))
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--mode", choices=["both", "bodies", "no-bodies"], default="both",
                        help="list filters and the tail are measured in the bodies mode, or in "
                             "the only mode run")
    parser.add_argument("--spread-days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmups", type=int, default=2)
    parser.add_argument("--tail-samples", type=int, default=200)
    parser.add_argument("--tail-gap-ms", type=float, default=20)
    parser.add_argument("--database-url",
                        help="an empty Postgres database for the server (one mode only; the "
                             "disk figure is then the whole database's size, read with psql)")
    args = parser.parse_args()
    if args.database_url and args.mode == "both":
        sys.exit("--database-url needs --mode bodies or --mode no-bodies: each mode needs an "
                 "empty database")
    if not os.path.exists(args.bin):
        sys.exit(f"{args.bin} is missing: run `cargo build --release` first")

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tollgate-bench-logs-") as root:
        results = []
        if args.mode in ("both", "no-bodies"):
            results.append(run_mode(args, root, log_bodies=False,
                                    measure_reads=args.mode == "no-bodies"))
        if args.mode in ("both", "bodies"):
            results.append(run_mode(args, root, log_bodies=True, measure_reads=True))
    print_table(results, args)
    summary = {"command": " ".join(sys.argv), "records": args.records,
               "spread_days": args.spread_days, "wall_s": round(time.perf_counter() - started),
               "modes": results}
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
