"""Schema fuzzing: schemathesis generates requests for every operation of the real server's /openapi.json
(valid ones and deliberately invalid ones) and sends them over HTTP; none may get a 5xx. A 4xx is the
server's answer to a bad request, not a failure. Bounded and deterministic: 30 examples per operation and
generation mode, derandomized, no example database.

Driven through schemathesis's Python API (operation.as_strategy under hypothesis's @given) rather than its
pytest integration: `schemathesis.pytest.from_fixture`, the only way to reach the session `server` fixture
from `schema.parametrize()`, sets `request.node._nodeid`, which pytest 9.2 no longer has (schemathesis 4.32)."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from pydantic import TypeAdapter, ValidationError
from schemathesis import GenerationMode

CAP = 8  # completion tokens a fuzzed request may generate
EXAMPLES = 30  # per operation and generation mode


def cheap(body: dict) -> None:
    """A fuzzed request may well be a valid one, and then it generates text: up to the server's default of
    1024 tokens when it names no max_tokens, far too slow for a test on a small machine. So a valid token
    limit (whatever the server reads as a positive integer: 4567, 4567.0, "4567") is capped at CAP and a
    missing one set to CAP; a bad value the fuzzer chose on purpose (0, -3, 1.5, "x", a list) is kept, for
    the server to refuse with a 400."""
    keys = ("max_tokens", "max_completion_tokens", "max_output_tokens")  # the last is the Responses API's
    for key in keys:
        try:
            n = TypeAdapter(int).validate_python(body.get(key))  # pydantic's lax int, as the server parses it
        except ValidationError:
            continue
        if n >= 1:
            body[key] = min(n, CAP)
    if all(body.get(key) is None for key in keys):
        body["max_tokens"] = body["max_output_tokens"] = CAP  # each API ignores the other's field


def test_no_server_error(server):
    schema = schemathesis.openapi.from_url(server + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} >= {"GET /health", "GET /v1/models", "POST /v1/chat/completions",
                                              "POST /v1/responses", "POST /v1/messages", "POST /v1/messages/count_tokens"}
    failures: dict[tuple, str] = {}  # one reproducer per (operation, status, first line of the answer)
    sent = 0

    for op in operations:
        for mode in GenerationMode:
            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=op.as_strategy(mode))
            def fuzz(case):
                nonlocal sent
                if isinstance(case.body, dict):
                    cheap(case.body)
                response = case.call(base_url=server, timeout=60)
                sent += 1
                if response.status_code >= 500:
                    key = (op.label, response.status_code, response.text[:120])
                    failures.setdefault(key, f"{op.label} -> {response.status_code} {response.text[:300]}\n"
                                             f"  {case.as_curl_command(base_url=server)}")

            try:
                fuzz()
            except Unsatisfiable:  # nothing to make invalid: GET /health has no parameters
                assert mode is GenerationMode.NEGATIVE

    print(f"{sent} fuzzed requests over {len(operations)} operations")
    assert not failures, f"{len(failures)} distinct server errors:\n" + "\n".join(failures.values())
