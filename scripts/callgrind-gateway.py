#!/usr/bin/env python3
"""Instructions per gateway request, counted by valgrind's callgrind: a measure that does not
move with the load of a shared machine, unlike CPU time (docs/performance.md, issue 7).

Usage: cargo bench --bench gateway --no-run && python3 scripts/callgrind-gateway.py
       [--bin target/release/tollgate] [--guarded] [--cached] [--requests 300] [--keep FILE]
       [--clients N]

Starts the bench's mock upstream (`TOLLGATE_BENCH_ROLE=mock` on the newest
target/release/deps/gateway-* executable) and `tollgate serve` under callgrind with temporary
data and config dirs, creates the integration `mock`, and with --guarded/--cached gives the
admin key the same default config as `TOLLGATE_BENCH_GUARDED`/`TOLLGATE_BENCH_CACHED` do in
benches/gateway.rs. It sends 50 chat requests (the bench's body with 900 bytes of padding) to
warm up, waits for the recorder, zeroes the counters, sends --requests more one after another
on one keep-alive connection (or split over --clients connections sending at once, so that the
recorder's commits carry several records, as under load), waits 3 s so their records are
written, and prints the instructions counted in between divided by the requests. --keep copies
the dump, for `callgrind_annotate` (a binary built without `strip` names the functions).
"""
import argparse
import glob
import http.client
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

from local_server import LocalServer, isolated_env

PROSE = " The quick brown fox jumps over the lazy dog, then asks about the weather."


def bench_exe():
    found = [
        p
        for p in glob.glob("target/release/deps/gateway-*")
        if os.access(p, os.X_OK) and not p.endswith(".d")
    ]
    if not found:
        raise SystemExit("no bench executable: run `cargo bench --bench gateway --no-run`")
    return max(found, key=os.path.getmtime)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/tollgate")
    ap.add_argument("--guarded", action="store_true")
    ap.add_argument("--cached", action="store_true")
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--keep")
    ap.add_argument("--clients", type=int, default=1,
                    help="send the counted requests from this many connections at once")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="tg-callgrind-")
    mock = subprocess.Popen(
        [bench_exe()],
        env={"TOLLGATE_BENCH_ROLE": "mock"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    mock_port = int(mock.stdout.readline())
    out = os.path.join(tmp, "callgrind.out")
    local = LocalServer(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", args.bin, "serve",
         "--addr", "127.0.0.1:0"],
        isolated_env(tmp),
    )
    gateway, admin = local.process, local.admin_key
    try:
        conn = http.client.HTTPConnection(local.host, local.port, timeout=600)

        def send(method, path, body=None, headers=None):
            h = {"x-portkey-api-key": admin, "content-type": "application/json"}
            h.update(headers or {})
            conn.request(method, path, body=None if body is None else json.dumps(body), headers=h)
            reply = conn.getresponse()
            data = reply.read()
            if not 200 <= reply.status < 300:
                raise SystemExit(f"{method} {path}: {reply.status} {data[:300]!r}")
            return data

        send("POST", "/v1/integrations", {
            "slug": "mock", "ai_provider_id": "openai", "key": "sk-bench",
            "configurations": {"custom_host": f"http://127.0.0.1:{mock_port}/v1"},
        })
        config = {}
        if args.guarded:
            def check(id, parameters):
                return {"id": id, "parameters": parameters}
            hook = [{"checks": [
                check("default.regexMatch", {"rule": "(?i)ignore (all|previous) instructions", "not": True}),
                check("default.regexMatch", {"rule": "\\b\\d{3}-\\d{2}-\\d{4}\\b", "not": True}),
                check("default.regexMatch", {"rule": "(?i)password\\s*[:=]", "not": True}),
                check("portkey.pii", {"redact": True}),
                check("default.wordCount", {"maxWords": 5000}),
            ]}]
            config["before_request_hooks"] = hook
            config["after_request_hooks"] = hook
        if args.cached:
            config["cache"] = {"mode": "simple", "max_age": 86400}
        if config:
            slug = json.loads(send("POST", "/v1/configs", {"name": "bench", "config": config}))["data"]["slug"]
            key = json.loads(send("GET", "/v1/api-keys/self"))["id"]
            send("PUT", f"/v1/api-keys/{key}", {"defaults": {"config_id": slug}})
        body = {
            "model": "@mock/gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "You are a terse assistant."},
                {"role": "user", "content": "Say hello to the benchmark." + (PROSE * 20)[:900]},
            ],
            "max_tokens": 32,
        }

        def chat():
            return send("POST", "/v1/chat/completions", body, {"authorization": f"Bearer {admin}"})

        for _ in range(50):
            chat()
        time.sleep(3)
        subprocess.run(["callgrind_control", "-z", str(gateway.pid)], check=True, capture_output=True)
        answers = []

        def client(requests):
            # A connection of its own: `send` shares one and is not thread-safe.
            own = http.client.HTTPConnection(local.host, local.port, timeout=600)
            headers = {"authorization": f"Bearer {admin}", "content-type": "application/json"}
            for _ in range(requests):
                own.request("POST", "/v1/chat/completions", body=json.dumps(body), headers=headers)
                reply = own.getresponse()
                answers.append((reply.status, reply.read()))

        share, rest = divmod(args.requests, args.clients)
        clients = [threading.Thread(target=client, args=(share + (i < rest),))
                   for i in range(args.clients)]
        for c in clients:
            c.start()
        for c in clients:
            c.join()
        failed = [status for status, _ in answers if status != 200]
        if failed or len(answers) != args.requests:
            raise SystemExit(f"{len(answers)} answers of {args.requests}, failed: {failed[:5]}")
        answer = answers[-1][1]
        time.sleep(3)
        subprocess.run(["callgrind_control", "-d", str(gateway.pid)], check=True, capture_output=True)
        time.sleep(1)
        dumps = [f for f in glob.glob(out + ".*")]
        total = 0
        for dump in dumps:
            for line in open(dump):
                if line.startswith(("summary:", "totals:")):
                    total = max(total, int(line.split()[1]))
        if args.keep and dumps:
            shutil.copy(max(dumps, key=os.path.getmtime), args.keep)
        print(f"{args.bin}: guarded={args.guarded} cached={args.cached} requests={args.requests} "
              f"answer={len(answer)} bytes instructions={total} per request={total / args.requests:,.0f}")
    finally:
        gateway.terminate()
        mock.terminate()
        gateway.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
