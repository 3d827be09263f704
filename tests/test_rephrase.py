"""Other wordings of captured requests for the pipeline's students (pipeline/rephrase.py): by rule, and by
the teacher over real HTTP. The teacher here is a stand-in HTTP server that answers with fixed rewordings
(a hosted LLM cannot be reached from this machine); what is tested is edgeslm's side: the prompt goes out,
a rewording that lost or changed a value is thrown away, an unreachable teacher costs nothing."""

from __future__ import annotations

import json
import random
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from edgeslm.pipeline import rephrase, widen

REQUESTS = [("Send an email to ana.silva@example.com about the Q3 report, please.", ["ana.silva@example.com", "Q3 report"]),
            ("Convert 3 cups to milliliters", [3, "cups", "milliliters"]),
            ("Can you book a table for 4 at Nopa on 2026-03-14?", [4, "Nopa", "2026-03-14"]),
            ("What's the weather in Kraków tomorrow?", ["Kraków"])]


def test_a_rule_wording_differs_and_keeps_every_value_as_written():
    rng = random.Random(0)
    for text, values in REQUESTS:
        got = {rephrase.by_rule(text, values, rng) for _ in range(12)} - {None}
        assert len(got) >= 3, (text, got)  # several wordings, not one
        for g in got:
            assert g != text and rephrase.keeps(g, values), (text, g)
    assert rephrase.by_rule("Convert 3 cups to milliliters", [3], random.Random(1)) == \
        rephrase.by_rule("Convert 3 cups to milliliters", [3], random.Random(1))  # seeded
    # the rules word English only: an English opener on a Spanish request would teach a mixed one
    assert rephrase.by_rule("¿Qué tiempo hace en Sevilla?", ["Sevilla"], rng) is None
    assert not rephrase.keeps("Convert 30 cups", [3]) and rephrase.keeps("convert 3 cups", [3, "cups"])


def _example(text, name, args):
    return {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": text}],
            "tools": [{"type": "function", "function": {"name": name, "parameters": {}}}],
            "answer": {"tool_calls": [{"type": "function", "function": {"name": name, "arguments": json.dumps(args)}}]}}


def test_widened_adds_reworded_copies_with_the_same_answer():
    fit = [_example("Convert 3 cups to milliliters", "convert_units", {"value": 3, "from_unit": "cups",
                                                                      "to_unit": "milliliters"}),
           _example("Send an email to ana.silva@example.com about the Q3 report", "send_email",
                    {"to": "ana.silva@example.com", "subject": "Q3 report"})] * 10
    out, added = widen.widened(fit, 0, seed=3, reword=1.0)
    assert added >= 15 and len(out) == len(fit) + added
    for e in out[len(fit):]:
        text = e["messages"][-1]["content"]
        twin = next(f for f in fit if f["answer"] == e["answer"])
        assert text != twin["messages"][-1]["content"] and rephrase.keeps(text, rephrase.taken(twin))
    assert widen.widened(fit, 0, seed=3)[1] == 0  # off by default


class _Teacher(BaseHTTPRequestHandler):
    seen: list = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Teacher.seen.append((self.path, self.headers.get("Authorization"), body))
        content = ("1. Please turn 3 cups into milliliters\n2) How many milliliters are 3 cups?\n"
                   "- Convert three cups to milliliters\n\"How many milliliters are 3 cups?\"\nConvert 3 cups to milliliters")
        data = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture()
def teacher():
    server = HTTPServer(("127.0.0.1", 0), _Teacher)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()


def test_the_teacher_words_it_and_a_lost_value_is_thrown_away(teacher, monkeypatch):
    monkeypatch.setenv("TEACHER_KEY", "sk-test")
    got = rephrase.by_teacher("Convert 3 cups to milliliters", [3, "cups", "milliliters"], 3, teacher, "big",
                              "TEACHER_KEY")
    # numbering stripped, the duplicate and the unchanged request dropped, "three cups" lost the value 3
    assert got == ["Please turn 3 cups into milliliters", "How many milliliters are 3 cups?"]
    path, auth, body = _Teacher.seen[-1]
    assert path == "/v1/chat/completions" and auth == "Bearer sk-test" and body["model"] == "big"
    assert "exactly as written" in body["messages"][0]["content"]
    e = rephrase.reworded(_example("Convert 3 cups to milliliters", "convert_units", {"value": 3}), [3, "cups"],
                          random.Random(0), {"upstream": teacher, "model": None, "key_env": None})
    assert e["messages"][-1]["content"] in got


def test_an_unreachable_teacher_leaves_the_rules():
    assert rephrase.by_teacher("Convert 3 cups to milliliters", [3], 3, "http://127.0.0.1:9/v1", timeout=2) == []
    e = rephrase.reworded(_example("Convert 3 cups to milliliters", "convert_units", {"value": 3}), [3],
                          random.Random(0), {"upstream": "http://127.0.0.1:9/v1"})
    assert e is not None and rephrase.keeps(e["messages"][-1]["content"], [3])
