"""Bad input gets an OpenAI error JSON with the right status, never a 500; the server keeps serving."""

import contextlib
import threading
import time

import httpx
import openai
import pytest
from conftest import WEATHER

MSG = [{"role": "user", "content": "Hi"}]


def post(server, body, **kw):
    return httpx.post(server + "/v1/chat/completions", timeout=60, **({"json": body} if body is not None else kw))


def error_of(r, status):
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert "Traceback" not in err["message"]
    return err


BAD = [
    ("malformed json", dict(content=b'{"model": "default", "messages": [', headers={"content-type": "application/json"}),
     400, None, "invalid_json"),
    ("messages missing", {"model": "default"}, 400, "messages", "invalid_value"),
    ("messages not a list", {"messages": "hello"}, 400, "messages", "invalid_value"),
    ("bad role", {"messages": [{"role": "wizard", "content": "x"}]}, 400, "messages[0].role", "invalid_value"),
    ("empty messages", {"messages": []}, 400, "messages", "invalid_request"),
    ("negative max_tokens", {"messages": MSG, "max_tokens": -1}, 400, "max_tokens", "invalid_value"),
    ("temperature too high", {"messages": MSG, "temperature": 7}, 400, "temperature", "invalid_value"),
    ("n > 1", {"messages": MSG, "n": 2}, 400, "n", "invalid_request"),
    ("logprobs", {"messages": MSG, "logprobs": True}, 400, "logprobs", "invalid_request"),
    ("too many stops", {"messages": MSG, "stop": ["a", "b", "c", "d", "e"]}, 400, "stop", "invalid_request"),
    ("image part", {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
     400, "messages[0].content", "invalid_request"),
    ("invalid tool schema", {"messages": MSG, "tools": [{"type": "function", "function": {
        "name": "f", "parameters": {"type": "object", "properties": {"x": {"type": "banana"}}}}}]},
     400, "tools[0].function.parameters", "invalid_schema"),
    ("dangling $ref", {"messages": MSG, "tools": [{"type": "function", "function": {
        "name": "f", "parameters": {"type": "object", "properties": {"x": {"$ref": "#/$defs/missing"}}}}}]},
     400, "tools", "invalid_schema"),
    ("non-object parameters", {"messages": MSG, "tools": [{"type": "function", "function": {
        "name": "f", "parameters": {"type": "string"}}}]}, 400, "tools[0].function.parameters", "invalid_request"),
    ("bad function name", {"messages": MSG, "tools": [{"type": "function", "function": {"name": "a b"}}]},
     400, "tools[0].function.name", "invalid_request"),
    ("unknown tool_choice", {"messages": MSG, "tools": [WEATHER],
                             "tool_choice": {"type": "function", "function": {"name": "nope"}}},
     400, "tool_choice", "invalid_request"),
    ("required without tools", {"messages": MSG, "tool_choice": "required"}, 400, "tool_choice", "invalid_request"),
    ("json_schema without schema", {"messages": MSG, "response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
     400, "response_format.json_schema", "invalid_request"),
    ("bad tool-call arguments in history", {"messages": [
        {"role": "assistant", "tool_calls": [{"id": "1", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}]},
     400, "messages[0].tool_calls[0].function.arguments", "invalid_request"),
    ("prompt longer than the context", {"messages": [{"role": "user", "content": "word " * 9000}]},
     400, "messages", "context_length_exceeded"),
]


@pytest.mark.parametrize("name,body,status,param,code", BAD, ids=[b[0] for b in BAD])
def test_bad_input_gets_a_clear_error(server, name, body, status, param, code):
    r = post(server, None, **body) if name == "malformed json" else post(server, body)
    err = error_of(r, status)
    assert err["param"] == param and err["code"] == code
    assert err["type"] == "invalid_request_error"


def test_unknown_route_and_method(server):
    assert error_of(httpx.get(server + "/v1/nothing"), 404)["code"] == "not_found"
    assert error_of(httpx.get(server + "/v1/chat/completions"), 405)["code"] == "method_not_allowed"


def test_catalog_model_that_is_not_in_the_store(server):
    err = error_of(post(server, {"model": "qwen2.5-0.5b-instruct-q4_k_m", "messages": MSG}), 404)
    assert "edgeslm models pull" in err["message"]


def test_openai_client_raises_typed_errors(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="default", messages=[])
    assert e.value.body["param"] == "messages"


def test_server_still_serves_after_bad_input(server, client):
    for name, body, *_ in BAD[:5]:
        post(server, None, **body) if name == "malformed json" else post(server, body)
    r = client.chat.completions.create(model="default", messages=MSG, max_tokens=3)
    assert r.choices[0].message.content is not None


def test_client_disconnect_mid_stream_frees_the_model(server, client):
    body = {"messages": [{"role": "user", "content": "Tell me a very long story."}], "stream": True,
            "max_tokens": 2000, "temperature": 0}
    with httpx.stream("POST", server + "/v1/chat/completions", json=body, timeout=60) as r:
        lines = r.iter_lines()
        got = [next(lines) for _ in range(6)]
        assert any(line.startswith("data: ") for line in got)
    # leaving the block closed the connection; the 2000-token job must stop, not block the next request
    t0 = time.time()
    r = client.chat.completions.create(model="default", messages=MSG, max_tokens=3)
    assert r.choices[0].message.content is not None
    assert time.time() - t0 < 15  # 2000 tokens at ~50 tok/s would take ~40 s


def test_cancelling_a_request_frees_its_slot(server, client):
    """Four long streams fill the server's four slots; closing one must let a new request in at once."""
    body = {"messages": [{"role": "user", "content": "Tell me a very long story."}], "stream": True,
            "max_tokens": 1500, "temperature": 0}
    with contextlib.ExitStack() as stack:
        streams = []
        for _ in range(4):
            r = stack.enter_context(httpx.stream("POST", server + "/v1/chat/completions", json=body, timeout=60))
            lines = r.iter_lines()
            assert any(next(lines).startswith("data: ") for _ in range(4))
            streams.append(r)
        streams[0].close()
        t0 = time.time()
        r = client.chat.completions.create(model="default", messages=MSG, max_tokens=3)
        assert r.choices[0].message.content is not None
        # the other three still hold 1500-token jobs (~40 s at 4 x ~30 tok/s): without the freed slot
        # this request would wait for one of them to end
        assert time.time() - t0 < 15
    t0 = time.time()
    client.chat.completions.create(model="default", messages=MSG, max_tokens=3)
    assert time.time() - t0 < 15  # closing the rest freed the server too


def test_health_answers_while_a_completion_decodes(server, client):
    done = threading.Event()

    def long_job():
        client.chat.completions.create(model="default", messages=MSG, max_tokens=100, temperature=0)
        done.set()

    threading.Thread(target=long_job, daemon=True).start()
    time.sleep(0.5)
    t0 = time.time()
    assert httpx.get(server + "/health", timeout=5).status_code == 200
    assert time.time() - t0 < 1.0
    assert done.wait(180)  # generous: a loaded 2-core machine decodes far slower than the ~2 s this takes
