"""Hostile and careless clients against the real server: every request over a limit gets a 4xx naming
the field and the limit, in bounded time, and a short request right after it is answered in <= 2 s."""

import json
import threading
import time

import httpx
import pytest

MSG = [{"role": "user", "content": "Hi"}]
SHORT = {"messages": MSG, "max_tokens": 3, "temperature": 0}
# a JSON answer that cannot end early: the grammar allows no end before 20,000 characters
LONG_JSON = {"type": "json_schema", "json_schema": {"name": "essay", "schema": {
    "type": "object", "properties": {"s": {"type": "string", "minLength": 20000, "maxLength": 20000}},
    "required": ["s"]}}}


def post(server, body=None, timeout=60, **kw):
    return httpx.post(server + "/v1/chat/completions", timeout=timeout, **({"json": body} if body is not None else kw))


def short_is_answered(server, within=2.0):
    t0 = time.monotonic()
    r = post(server, SHORT)
    took = time.monotonic() - t0
    assert r.status_code == 200, r.text
    assert took <= within, f"a 3-token request took {took:.1f} s"


def nested(depth):
    s = {"type": "string"}
    for _ in range(depth):
        s = {"type": "object", "properties": {"a": s}}
    return s


def tool(params, name="f"):
    return {"type": "function", "function": {"name": name, "parameters": params}}


CASES = [
    ("schema nested 200 deep", {"messages": MSG, "tools": [tool(nested(200))]},
     400, "tools[0].function.parameters", "schema_too_deep"),
    ("response schema that refers to itself", {"messages": MSG, "response_format": {
        "type": "json_schema", "json_schema": {"name": "x", "schema": {"$ref": "#"}}}},
     400, "response_format", "schema_unsatisfiable"),
    ("max_tokens far above the context", {"messages": MSG, "max_tokens": 1_000_000_000_000},
     400, "max_tokens", "context_length_exceeded"),
    ("stop strings of 200 KB", {"messages": MSG, "stop": ["ab" * 100_000] * 4}, 400, "stop", "stop_too_long"),
    ("too many messages", {"messages": MSG * 2000}, 400, "messages", "too_many_messages"),
    ("too many tools", {"messages": MSG, "tools": [tool({"type": "object"}, f"f{i}") for i in range(200)]},
     400, "tools", "too_many_tools"),
    ("schema of 100 KB", {"messages": MSG, "tools": [tool({"type": "object", "properties": {
        f"p{i}": {"type": "string", "description": "x" * 100} for i in range(1000)}})]},
     400, "tools[0].function.parameters", "schema_too_large"),
    ("JSON nested 100 deep in an extra field", {"messages": MSG, "metadata": json.loads("[" * 100 + "]" * 100)},
     400, None, "json_too_deep"),
]


@pytest.mark.parametrize("name,body,status,param,code", CASES, ids=[c[0] for c in CASES])
def test_hostile_request_gets_a_4xx_naming_the_limit(server, name, body, status, param, code):
    t0 = time.monotonic()
    r = post(server, body)
    assert time.monotonic() - t0 < 5
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code
    if param is not None:
        assert err["param"] == param
    else:
        assert err["param"]  # names where the deep value sits
    short_is_answered(server)


@pytest.mark.parametrize("raw,param", [
    (b'{"messages": [{"role": "user", "content": "\\ud800"}]}', "messages[0].content"),
    (b'{"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function", "function": '
     b'{"name": "f", "description": "\\udc00 lone"}}]}', "tools[0].function.description"),
])
def test_lone_surrogates_are_a_400(server, raw, param):
    r = post(server, content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_unicode" and r.json()["error"]["param"] == param
    short_is_answered(server)


def test_body_over_the_limit_is_a_413_before_it_is_read(server):
    big = b'{"messages": [{"role": "user", "content": "' + b"x" * (5 << 20) + b'"}]}'
    r = post(server, content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(6):
            yield b"x" * (1 << 20)

    r = post(server, content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
    short_is_answered(server)


def test_other_host_names_are_refused(server):
    r = httpx.get(server + "/v1/models", headers={"Host": "attacker.example:8000"})
    assert r.status_code == 421 and r.json()["error"]["code"] == "host_not_allowed"
    assert httpx.get(server + "/v1/models", headers={"Host": "localhost:8000"}).status_code == 200


def test_largest_max_tokens_does_not_hold_the_cache(server):
    """A request allowed every token the context has left runs beside short ones, not in front of them."""
    probe = post(server, {**SHORT, "response_format": LONG_JSON, "max_tokens": 1})
    room = 8192 - probe.json()["usage"]["prompt_tokens"]
    body = {"messages": MSG, "response_format": LONG_JSON, "max_tokens": room, "stream": True}
    with httpx.stream("POST", server + "/v1/chat/completions", json=body, timeout=60) as r:
        assert r.status_code == 200
        lines = r.iter_lines()
        for _ in range(8):
            next(lines)  # it is decoding
        for _ in range(3):
            short_is_answered(server)
    short_is_answered(server)


def test_non_streaming_clients_that_hang_up_free_their_slots(server):
    body = {"messages": MSG, "response_format": LONG_JSON, "max_tokens": 3000}

    def hang_up():
        try:
            post(server, body, timeout=0.5)
        except httpx.TimeoutException:
            pass

    clients = [threading.Thread(target=hang_up) for _ in range(6)]
    for c in clients:
        c.start()
    for c in clients:
        c.join()
    time.sleep(1.0)  # cancelled within a second of the hang-up
    short_is_answered(server)
    slots = httpx.get(server + "/health").json()["slots"]
    assert all(s["running"] + s["paused"] + s["waiting"] == 0 for s in slots.values()), slots


def test_many_stop_strings_cost_time_linear_in_the_output(server):
    stops = ["q" * 250 + "x", "z" * 250 + "y", "w" * 250 + "v", "k" * 250 + "j"]  # 1,004 characters: allowed
    t0 = time.monotonic()
    r = post(server, {"messages": MSG, "max_tokens": 16, "stop": stops, "temperature": 0})
    assert r.status_code == 200 and time.monotonic() - t0 < 5


def test_health_reports_slots(server):
    body = httpx.get(server + "/health").json()
    assert body["status"] == "ok" and all({"running", "paused", "waiting"} <= set(s) for s in body["slots"].values())


def test_stop_matcher_agrees_with_a_naive_search_and_is_linear():
    import random

    from edgeslm.output import StopMatcher

    rng = random.Random(7)
    for _ in range(300):
        stops = ["".join(rng.choice("ab") for _ in range(rng.randint(1, 5))) for _ in range(rng.randint(1, 4))]
        text = "".join(rng.choice("abc") for _ in range(rng.randint(0, 40)))
        m, got, fed = StopMatcher(stops), -1, 0
        for cut in sorted(rng.sample(range(len(text) + 1), min(4, len(text) + 1))) + [len(text)]:
            got = m.feed(text[:cut], fed)  # text arrives in pieces, as tokens do
            fed = cut
            if got >= 0:
                break
        ends = [(text.find(s) + len(s), text.find(s)) for s in stops if s in text]
        assert got == (min(ends)[1] if ends else -1), (stops, text)
    m = StopMatcher(["ab" * 100_000] * 4)  # what the limit refuses over HTTP, timed directly
    t0 = time.monotonic()
    text = ""
    for i in range(16):
        text += "ab" * 8
        assert m.feed(text, len(text) - 16) == -1
    assert time.monotonic() - t0 < 0.5 and m.hold == 256


def test_redaction_is_linear_in_the_personal_values():
    from edgeslm.privacy import Redactor, Restorer

    text = " ".join(f"user{i}@example.com" for i in range(16_000))
    t0 = time.monotonic()
    r = Redactor()
    clean = r(text)
    assert Restorer(r)(clean) == text and "<EMAIL_16000>" in clean
    assert time.monotonic() - t0 < 3  # was 10.8 s: quadratic in the number of values
