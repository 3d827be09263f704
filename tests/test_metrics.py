"""/metrics in Prometheus text format, read by prometheus-client's own parser: counters move with the
requests the server answered, gauges say what each model holds, and labels stay bounded."""

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from conftest import WEATHER
from edgeslm.config import get_settings
from edgeslm.engine import Engine
from edgeslm.serving.app import create_app
from tests.cores import THREADS


@pytest.fixture(scope="module")
def http(home):
    # fold off: the default adapter applied at decode time, as a LoRA, so that its switches are counted
    e = Engine(get_settings(home=home, threads=THREADS, n_ctx=1024, parallel=2, fold=False))
    yield TestClient(create_app(e), base_url="http://localhost")
    e.close()


def scrape(http) -> dict:
    r = http.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(r.text) for s in fam.samples}


def value(m: dict, name: str, **labels) -> float:
    return sum(v for (n, ls), v in m.items() if n == name and set(labels.items()) <= set(ls))


def test_counters_follow_the_requests(http):
    before = scrape(http)
    body = {"messages": [{"role": "user", "content": "What's the weather in Paris?"}], "tools": [WEATHER],
            "tool_choice": "required", "max_tokens": 32}
    r = http.post("/v1/chat/completions", json=body)
    assert r.status_code == 200
    usage = r.json()["usage"]
    http.post("/v1/chat/completions", json={"messages": []})  # a 400
    http.get("/no/such/route/" + "x" * 50)  # a 404 whose path must not become a label
    m = scrape(http)
    route = "/v1/chat/completions"
    ok = dict(route=route, model="gemma-3-270m-q4_k_m", adapter="tools", status="200")
    assert value(m, "edgeslm_requests_total", **ok) - value(before, "edgeslm_requests_total", **ok) == 1
    assert value(m, "edgeslm_requests_total", route=route, status="400") >= 1
    assert value(m, "edgeslm_requests_total", route="other", status="404") >= 1
    assert not any("no/such" in str(ls) for _, ls in m)
    grew = value(m, "edgeslm_tokens_total", direction="completion") - value(before, "edgeslm_tokens_total",
                                                                             direction="completion")
    assert grew == usage["completion_tokens"]
    forced = value(m, "edgeslm_forced_tokens_total") - value(before, "edgeslm_forced_tokens_total")
    assert 0 < forced < grew  # a tool call: most of it forced by the grammar, never all of it
    assert value(m, "edgeslm_time_to_first_token_seconds_count") >= 1
    assert value(m, "edgeslm_requests_in_model", model="gemma-3-270m-q4_k_m", state="running") == 0
    assert value(m, "edgeslm_kv_cells_used") > 0 and value(m, "edgeslm_models_loaded") == 1
    assert value(m, "edgeslm_adapter_switches_total") >= 1  # the tools adapter was applied
