#!/usr/bin/env python3
"""Foundation figures for docs/performance.md: CLI wall times and the server's idle RSS.

Usage: cargo build --release && python3 scripts/bench-cli.py [--runs 50]

Starts the release binary's server on a free port with a temporary data and config dir,
creates 100 API keys, then times `tollgate --version` and `tollgate keys list` (the CLI's
whole life: start, read contexts and credential, HTTP round trip, render the table) and reads
the server's resident memory after it has been idle for two seconds.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from local_server import LocalServer, isolated_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "tollgate")


def timed(cmd, env, runs):
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {
        "min_ms": round(samples[0], 2),
        "median_ms": round(statistics.median(samples), 2),
        "p90_ms": round(samples[int(len(samples) * 0.9) - 1], 2),
    }


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--keys", type=int, default=100)
    args = parser.parse_args()
    if not os.path.exists(BIN):
        sys.exit(f"{BIN} is missing: run `cargo build --release` first")

    tmp = tempfile.mkdtemp(prefix="tollgate-bench-")
    env = isolated_env(tmp)
    local = LocalServer([BIN, "serve", "--addr", "127.0.0.1:0"], env)
    server, admin, url = local.process, local.admin_key, local.url
    try:
        for i in range(args.keys - 1):
            req = urllib.request.Request(
                f"{url}/v1/api-keys/workspace/service",
                data=json.dumps({"name": f"bench-{i}"}).encode(),
                headers={"x-portkey-api-key": admin, "content-type": "application/json"},
            )
            urllib.request.urlopen(req).read()
        time.sleep(2)
        results = {
            "tollgate --version": timed([BIN, "--version"], env, args.runs),
            f"tollgate keys list ({args.keys} keys)": timed([BIN, "keys", "list"], env, args.runs),
            "server idle RSS (MiB)": round(rss_kib(server.pid) / 1024, 1),
        }
        print(json.dumps(results, indent=2))
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
