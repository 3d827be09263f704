"""S1 for agents that still call an LLM: `edgeslm proxy`, an OpenAI-compatible pass-through to the
upstream model (the teacher) that captures every call the same way `serve --capture` does.

Owns the proxy app; the forwarding itself (unchanged bodies and answers, streams relayed and
assembled, 502 when the teacher cannot be reached) is wire/upstream.py, which `serve` also uses
to fall back to the teacher. An agent is logged by changing only its base URL.
"""

from __future__ import annotations

import time

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool

from edgeslm.config import Settings, get_settings
from edgeslm.store.capture import CaptureStore, client_id
from edgeslm.wire.middleware import Guard
from edgeslm.wire.upstream import Upstream


def create_proxy(upstream: str, capture: CaptureStore, upstream_key_env: str | None = None,
                 timeout: float = 600.0, hosts: list[str] | None = None, *, client_key: str | None = None,
                 settings: Settings | None = None) -> FastAPI:
    """`hosts`: the Host names it answers (DNS-rebinding defence; default the localhost names).
    `client_key`: what clients must send as their bearer token (the guard checks it); with it the
    client's Authorization is the proxy's key and never goes upstream. Without it the client's own
    Authorization goes upstream unless `upstream_key_env` names the key: forwarding it is what a
    pass-through is for."""
    st = settings or get_settings()
    app = FastAPI(title="edgeslm proxy")
    app.add_middleware(Guard, allowed_hosts=hosts or ["localhost", "127.0.0.1", "[::1]"], api_key=client_key,
                       max_body_bytes=st.max_body_bytes, settings=st)
    up = Upstream(upstream, upstream_key_env, timeout, forward_client_auth=client_key is None)

    @app.get("/health")
    async def health():
        return {"status": "ok", "upstream": up.base}

    @app.get("/v1/models")
    async def models(request: Request):
        return await up.models(request.headers)

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        started = time.time()
        body = request.state.json  # a JSON object within the request limits: the guard parsed and checked it

        async def record(response: dict) -> None:
            call = {"created": started, "source": "proxy", "client": client_id(request.headers),
                    "model": response.get("model") or body.get("model"), "adapter": None,
                    "latency_s": time.time() - started,
                    "finish_reason": (response.get("choices") or [{}])[0].get("finish_reason"),
                    "request": body, "response": response}
            await run_in_threadpool(capture.add, call)

        return await up.chat(body, request.headers, record)

    return app
