"""Drives a running tollgate gateway with the official `openai` Python SDK.

Usage: python openai_sdk.py BASE_URL API_KEY MODEL EMBEDDING_MODEL

The gateway must route MODEL and EMBEDDING_MODEL to an upstream that answers (the Rust test
starts a mock OpenAI-compatible upstream and an integration for it). Prints one line per check
and a closing "N passed, N failed" line; exits 1 if any check failed.
"""
import json
import sys

import openai

base_url, api_key, model, embedding_model = sys.argv[1:5]
client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=30)
results = []


def check(name):
    def run(fn):
        try:
            fn()
            results.append((name, None))
        except Exception as e:  # a failed check is reported, not raised
            results.append((name, f"{type(e).__name__}: {e}"))
        return fn

    return run


@check("chat")
def _():
    r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Say hello"}])
    assert r.choices[0].message.content, r
    assert r.choices[0].finish_reason == "stop", r.choices[0].finish_reason
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0, r.usage


@check("chat with raw headers")
def _():
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers.get("x-portkey-provider"), dict(raw.headers)
    assert raw.headers.get("x-portkey-trace-id"), dict(raw.headers)


@check("stream")
def _():
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Count to three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage, finish = "", None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert text, "no streamed text"
    assert finish == "stop", finish
    assert usage and usage.completion_tokens > 0, usage


@check("embeddings")
def _():
    r = client.embeddings.create(model=embedding_model, input=["one", "two"])
    assert len(r.data) == 2, r
    assert len(r.data[0].embedding) > 0
    assert r.usage.prompt_tokens > 0


@check("tools round trip")
def _():
    tools = [{
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }]
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.chat.completions.create(model=model, messages=messages, tools=tools)
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls", first
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"}]
    second = client.chat.completions.create(model=model, messages=messages, tools=tools)
    assert "18C" in second.choices[0].message.content, second


@check("errors keep the OpenAI shape")
def _():
    try:
        client.chat.completions.create(model="@no-such-integration/x", messages=[{"role": "user", "content": "x"}])
    except openai.BadRequestError as e:
        assert "no-such-integration" in str(e), e
    else:
        raise AssertionError("expected a 400")


@check("a wrong key is 401")
def _():
    bad = openai.OpenAI(base_url=base_url, api_key="tgk_wrong", max_retries=0)
    try:
        bad.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}])
    except openai.AuthenticationError:
        pass
    else:
        raise AssertionError("expected a 401")


failed = [r for r in results if r[1]]
for name, error in results:
    print(f"{'ok  ' if not error else 'FAIL'} {name}{'' if not error else ': ' + error}")
print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
