#!/usr/bin/env python3
"""Generates data/pricing.json, tollgate's model price table, from the public price list.

Usage: python3 scripts/gen-pricing.py [SOURCE] [--out data/pricing.json] [--fetched 2026-11]

SOURCE defaults to ../shared/data/model-prices.json relative to the repository root: prices
per token (USD) and context limits keyed by model name, as LiteLLM publishes them
(model_prices_and_context_window, MIT licence). Only the facts are used (names, prices,
limits); the mapping below is tollgate's own.

What the script does:
  * maps the source's provider names to tollgate's provider slugs (src/gateway/providers/mod.rs)
    and drops providers tollgate does not speak to (azure_ai: Azure AI Foundry, whose
    `services.ai.azure.com/models` API is not the Azure OpenAI deployment API tollgate calls);
  * strips the source's routing prefixes from the model names so that each key is the model id
    a request (or a response) carries: `gemini/gemini-2.5-pro` -> `gemini-2.5-pro`,
    `bedrock/us-east-1/meta.llama3-8b-instruct-v1:0` -> `meta.llama3-8b-instruct-v1:0`,
    `azure/eu/gpt-4o` -> `gpt-4o`. Bedrock inference-profile ids (`us.`, `eu.`, `global.`, ...)
    are ids requests use, so they stay distinct models;
  * when several source entries land on the same (provider, model), keeps the first in a stable
    order: the entry with the plainest key first (no region or deployment zone, then fewest
    stripped segments), then the default region (Bedrock us-east-1; Azure global), then other
    regions, government regions last, ties by key. Entries whose prices differ from the kept
    one are reported as collisions;
  * converts prices to USD per 1M tokens, rounded to 6 significant digits, and omits missing
    fields. An entry with no input or no output price is skipped (an embedding with no output
    price gets 0: embeddings produce no output tokens).

The output is deterministic: providers and models sorted, fixed field order, one model per
line so that a regeneration diffs well.
"""
import argparse
import json
import os
import re
import sys
from collections import Counter, defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SOURCE = os.path.join(ROOT, "..", "shared", "data", "model-prices.json")
DEFAULT_OUT = os.path.join(ROOT, "data", "pricing.json")
LITELLM_VERSION = "1.108.7"

# Source provider name -> tollgate slug. None: known but deliberately dropped.
PROVIDERS = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "azure": "azure-openai",
    "azure_ai": None,  # Azure AI Foundry, not Azure OpenAI
    "anthropic": "anthropic",
    "gemini": "google",
    "vertex_ai": "vertex-ai",  # and every vertex_ai-* family, see slug_for()
    "bedrock": "bedrock",
    "bedrock_converse": "bedrock",
    "mistral": "mistral-ai",
    "cohere": "cohere",
    "cohere_chat": "cohere",
    "groq": "groq",
    "together_ai": "together-ai",
    "fireworks_ai": "fireworks-ai",
    "deepseek": "deepseek",
    "xai": "x-ai",
    "openrouter": "openrouter",
    "perplexity": "perplexity-ai",
    "deepinfra": "deepinfra",
    "cerebras": "cerebras",
    "ollama": "ollama",
    "sambanova": "sambanova",
    "nebius": "nebius",
    "hyperbolic": "hyperbolic",
    "lambda_ai": "lambda",
    "moonshot": "moonshot",
    "novita": "novita-ai",
}


AWS_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d+$")
COMMITMENT = re.compile(r"^\d+-month-commitment$")
AZURE_ZONES = {"global", "global-standard", "eu", "us", "apac", "us-gov"}


def slug_for(provider):
    if provider.startswith("vertex_ai"):
        return "vertex-ai"
    return PROVIDERS.get(provider, "?")


def normalise(slug, key):
    """Returns (model id, region preference, stripped segments) or a skip reason (str)."""
    parts = key.split("/")
    stripped = 0
    # A first segment naming the entry's own provider is a routing prefix. Exactly one is
    # stripped: `perplexity/perplexity/sonar` keeps its second `perplexity/`, and
    # `groq/openai/gpt-oss-120b` becomes `openai/gpt-oss-120b` (a vendor name in a Groq id).
    if len(parts) > 1 and parts[0] in PROVIDERS and slug_for(parts[0]) == slug:
        parts = parts[1:]
        stripped = 1
    region = None  # None: no region; 0: the default one; 1: another region; 2: government / any
    if slug == "bedrock" and len(parts) > 1:
        if parts[0] == "*" or AWS_REGION.match(parts[0]):
            r = parts[0]
            region = 0 if r == "us-east-1" else 2 if (r == "*" or "-gov-" in r) else 1
            parts = parts[1:]
            stripped += 1
            if len(parts) > 1 and COMMITMENT.match(parts[0]):
                return "bedrock provisioned throughput (commitment) entry"
        if parts[0] in ("invoke", "converse"):
            parts = parts[1:]
            stripped += 1
        elif parts[0] == "claude_platform":
            return "bedrock/claude_platform: Anthropic's own ids, not Bedrock model ids"
    if slug == "azure-openai" and len(parts) > 1 and parts[0] in AZURE_ZONES:
        z = parts[0]
        region = 0 if z in ("global", "global-standard") else 2 if z == "us-gov" else 1
        parts = parts[1:]
        stripped += 1
    model = "/".join(parts)
    if slug == "together-ai" and "/" not in key and key.startswith("together-ai-"):
        return "together size-tier price bucket, not a model id"
    if not model:
        return "empty model name"
    return model, region, stripped


def per_million(x):
    if x is None:
        return None
    v = float(f"{float(x) * 1_000_000:.6g}")
    return int(v) if v.is_integer() else v


def convert(entry):
    """The table record for one source entry, or a skip reason (str)."""
    inp = per_million(entry.get("input_cost_per_token"))
    out = per_million(entry.get("output_cost_per_token"))
    mode = entry.get("mode")
    if mode == "embedding" and out is None and inp is not None:
        out = 0
    if inp is None or out is None:
        return "no input or output price"
    rec = {"mode": mode, "input": inp, "output": out}
    for field, src in (
        ("cache_read", "cache_read_input_token_cost"),
        ("cache_write", "cache_creation_input_token_cost"),
    ):
        v = per_million(entry.get(src))
        if v is not None:
            rec[field] = v
    for field, src in (("max_input", "max_input_tokens"), ("max_output", "max_output_tokens")):
        v = entry.get(src)
        if v is not None:
            rec[field] = int(v)
    return rec


PRICE_FIELDS = ("input", "output", "cache_read", "cache_write")


def build(source):
    skipped = Counter()
    candidates = defaultdict(list)  # (slug, model) -> [(order, key, record)]
    for key, entry in source.items():
        slug = slug_for(entry.get("provider", ""))
        if slug == "?":
            skipped[f"unknown provider {entry.get('provider')!r}"] += 1
            continue
        if slug is None:
            skipped[f"provider {entry['provider']} dropped"] += 1
            continue
        if entry.get("mode") not in ("chat", "responses", "completion", "embedding"):
            skipped[f"mode {entry.get('mode')!r}"] += 1
            continue
        norm = normalise(slug, key)
        if isinstance(norm, str):
            skipped[norm] += 1
            continue
        model, region, stripped = norm
        rec = convert(entry)
        if isinstance(rec, str):
            skipped[rec] += 1
            continue
        order = (region is not None, region or 0, stripped, key)
        candidates[(slug, model)].append((order, key, rec))

    table = defaultdict(dict)
    duplicates = 0
    collisions = []
    regional_only = []  # models whose only prices are regional: the kept one is a region's
    for (slug, model), cands in sorted(candidates.items()):
        cands.sort(key=lambda c: c[0])
        kept_order, kept_key, kept = cands[0]
        table[slug][model] = kept
        if kept_order[0]:
            regional_only.append((slug, model, kept_key))
        for order, key, rec in cands[1:]:
            if all(rec.get(f) == kept.get(f) for f in PRICE_FIELDS):
                duplicates += 1
            else:
                regional = order[0]  # the dropped entry is a region / deployment-zone price
                collisions.append((slug, model, kept_key, key, regional))
    return table, skipped, duplicates, collisions, regional_only


def render(table, fetched):
    source = (
        f"LiteLLM model_prices_and_context_window (MIT) as shipped in litellm {LITELLM_VERSION}, "
        f"fetched {fetched}; converted by scripts/gen-pricing.py"
    )
    dumps = lambda v: json.dumps(v, separators=(",", ":"), ensure_ascii=False)
    fields = ("mode", "input", "output", "cache_read", "cache_write", "max_input", "max_output")
    lines = ["{" + f'"source":{dumps(source)},"unit":"USD per 1M tokens","providers":{{']
    slugs = sorted(table)
    for i, slug in enumerate(slugs):
        lines.append(f"{dumps(slug)}:{{")
        models = sorted(table[slug])
        for j, model in enumerate(models):
            rec = table[slug][model]
            body = ",".join(f"{dumps(f)}:{dumps(rec[f])}" for f in fields if f in rec)
            lines.append(f"{dumps(model)}:{{{body}}}" + ("," if j + 1 < len(models) else ""))
        lines.append("}" + ("," if i + 1 < len(slugs) else ""))
    lines.append("}}")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("source", nargs="?", default=DEFAULT_SOURCE)
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--fetched", default="2026-11", help="when the source was fetched (YYYY-MM)")
    ap.add_argument("-v", "--verbose", action="store_true", help="list every collision")
    args = ap.parse_args()

    with open(args.source, encoding="utf-8") as f:
        source = json.load(f)
    table, skipped, duplicates, collisions, regional_only = build(source)
    text = render(table, args.fetched)
    json.loads(text)  # sanity: the output parses
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)

    total = sum(len(m) for m in table.values())
    print(f"{len(source)} source entries -> {total} models, {len(table)} providers")
    for slug in sorted(table):
        print(f"  {slug:<14} {len(table[slug]):>4}")
    print(f"collapsed with identical prices: {duplicates}")
    regional = [c for c in collisions if c[4]]
    other = [c for c in collisions if not c[4]]
    print(f"collisions with different prices (first kept): {len(collisions)}")
    print(f"  {len(regional)} regional / deployment-zone prices dropped"
          + ("" if args.verbose else " (-v lists them)"))
    for slug, model, kept, dropped, _ in regional if args.verbose else []:
        print(f"    {slug} {model}: kept {kept}, dropped {dropped}")
    print(f"  {len(other)} others:")
    for slug, model, kept, dropped, _ in other:
        print(f"    {slug} {model}: kept {kept}, dropped {dropped}")
    print(f"models priced only per region (kept the preferred region's price): {len(regional_only)}")
    for slug, model, kept in regional_only if args.verbose else []:
        print(f"    {slug} {model}: {kept}")
    print(f"skipped: {sum(skipped.values())}")
    for reason, n in sorted(skipped.items(), key=lambda r: (-r[1], r[0])):
        print(f"  {n:>4}  {reason}")
    print(f"wrote {os.path.relpath(args.out)} ({len(text.encode()):,} bytes)")


if __name__ == "__main__":
    sys.exit(main())
