"""Prometheus metrics at /metrics (prometheus-client, one registry per app): requests by route, model,
adapter and status; tokens in and out (and embedded); the grammar's forced-token share; time to first token and
request latency; slots and queue per model; adapter switches; capture writes; upstream fallbacks.

Labels take only bounded values: routes outside the API are "other", models are catalog ids and
adapters are store tasks (an unknown one is a 404 before it is counted).
"""

from __future__ import annotations

import statistics
from collections import deque

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

ROUTES = {"/v1/chat/completions", "/v1/responses", "/v1/messages", "/v1/messages/count_tokens", "/v1/embeddings",
          "/v1/models", "/v1/status", "/health", "/metrics", "/", "/openapi.json", "/docs"}
SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120)


class _Workers:
    """Read at scrape time from the engine: what each resident model is doing now."""

    def __init__(self, engine):
        self.engine = engine

    def collect(self):
        slots = GaugeMetricFamily("edgeslm_requests_in_model", "Requests held by a model's worker, by state "
                                  "(running in a slot, paused, waiting in its queue)", labels=["model", "state"])
        switches = CounterMetricFamily("edgeslm_adapter_switches", "Times the active LoRA set changed",
                                       labels=["model"])
        cells = GaugeMetricFamily("edgeslm_kv_cells_used", "KV cache cells in use", labels=["model"])
        for w in self.engine.loaded():
            for state, n in w.busy().items():
                slots.add_metric([w.name, state], n)
            switches.add_metric([w.name], getattr(w.backend, "adapter_switches", 0))
            if w.backend.capabilities.prefix_share:
                cells.add_metric([w.name], w.backend.used_cells())
        yield slots
        yield switches
        yield cells
        yield GaugeMetricFamily("edgeslm_models_loaded", "Models resident now", value=len(self.engine.loaded()))


class Metrics:
    def __init__(self, engine):
        r = self.registry = CollectorRegistry()
        self.requests = Counter("edgeslm_requests", "Requests answered", ["route", "model", "adapter", "status"],
                                registry=r)
        self.latency = Histogram("edgeslm_request_seconds", "Request latency, until the last byte", ["route"],
                                 buckets=SECONDS, registry=r)
        self.tokens = Counter("edgeslm_tokens", "Tokens by direction", ["model", "direction"], registry=r)
        self.forced = Counter("edgeslm_forced_tokens", "Completion tokens the grammar forced (fed without "
                              "sampling); divide by completion tokens for the forced share", ["model"], registry=r)
        self.ttft = Histogram("edgeslm_time_to_first_token_seconds", "Time to the first token", ["model"],
                              buckets=SECONDS, registry=r)
        self.capture_writes = Counter("edgeslm_capture_writes", "Calls written to the capture store", registry=r)
        self.upstream = Counter("edgeslm_upstream_fallbacks", "Requests for model 'auto' sent to the teacher",
                                registry=r)
        r.register(_Workers(engine))
        self._speeds: deque[float] = deque(maxlen=20)

    def request(self, line: dict) -> None:
        """One access line (serving/logs.py): the request, its status and latency."""
        route = line.get("route") if line.get("route") in ROUTES else "other"
        self.requests.labels(route, line.get("model", "-"), line.get("adapter", "-"), str(line.get("status"))).inc()
        self.latency.labels(route).observe(line.get("latency_s", 0.0))

    def generation(self, model: str, g) -> None:
        self.tokens.labels(model, "prompt").inc(g.usage.prompt_tokens)
        self.tokens.labels(model, "completion").inc(g.usage.completion_tokens)
        self.forced.labels(model).inc(g.timings.get("forced_tokens", 0))
        self.ttft.labels(model).observe(g.timings.get("ttft_s", 0.0))
        if g.timings.get("tokens_per_s"):
            self._speeds.append(g.timings["tokens_per_s"])

    def embedded(self, model: str, tokens: int) -> None:
        self.tokens.labels(model, "embedded").inc(tokens)

    def recent_speed(self) -> float | None:
        """Median decode tokens/s of the last 20 answers (None before any)."""
        return statistics.median(self._speeds) if self._speeds else None

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
