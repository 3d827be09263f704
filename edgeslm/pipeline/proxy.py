"""S1 for agents that still call an LLM: `edgeslm proxy`, an OpenAI-compatible pass-through to the
upstream model (the teacher) that captures every call the same way `serve --capture` does.

Owns the proxy app; the forwarding itself (unchanged bodies and answers, streams relayed and
assembled, 502 when the teacher cannot be reached) is serving/upstream.py, which `serve` also uses
to fall back to the teacher. An agent is logged by changing only its base URL.
"""

from __future__ import annotations

import json
import time

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool

from edgeslm.store.capture import CaptureStore, client_id
from edgeslm.wire.middleware import Guard
from edgeslm.wire.upstream import Upstream, error


def create_proxy(upstream: str, capture: CaptureStore, api_key_env: str | None = None,
                 timeout: float = 600.0, hosts: list[str] | None = None, max_body_bytes: int = 4 << 20) -> FastAPI:
    """`hosts`: the Host names it answers (DNS-rebinding defence; default the localhost names). The
    client's own Authorization goes upstream unless `api_key_env` names the key: forwarding it is
    what a pass-through is for."""
    app = FastAPI(title="edgeslm proxy")
    app.add_middleware(Guard, allowed_hosts=hosts or ["localhost", "127.0.0.1", "[::1]"], api_key=None,
                       max_body_bytes=max_body_bytes)
    up = Upstream(upstream, api_key_env, timeout)

    @app.get("/health")
    async def health():
        return {"status": "ok", "upstream": up.base}

    @app.get("/v1/models")
    async def models(request: Request):
        return await up.models(request.headers)

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        started = time.time()
        try:
            body = json.loads(await request.body())
        except ValueError as e:
            return error(400, f"request body is not valid JSON: {e}", "invalid_json")
        if not isinstance(body, dict):
            return error(400, "request body must be a JSON object", "invalid_json")

        async def record(response: dict) -> None:
            call = {"created": started, "source": "proxy", "client": client_id(request.headers),
                    "model": response.get("model") or body.get("model"), "adapter": None,
                    "latency_s": time.time() - started,
                    "finish_reason": (response.get("choices") or [{}])[0].get("finish_reason"),
                    "request": body, "response": response}
            await run_in_threadpool(capture.add, call)

        return await up.chat(body, request.headers, record)

    return app
