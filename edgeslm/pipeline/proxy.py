"""S1 for agents that still call an LLM: `edgeslm proxy`, an OpenAI-compatible pass-through to the
upstream model (the teacher) that captures every call the same way `serve --capture` does.

Owns the forwarding: request bodies go upstream unchanged (the API key from an environment variable
replaces the client's), answers come back unchanged, streams are relayed chunk by chunk and also
assembled into one completion for the capture store. An agent is logged by changing only its base URL.
Upstream failures reach the client as OpenAI error JSON (502 when the teacher cannot be reached).
"""

from __future__ import annotations

import json
import os
import time

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from edgeslm.pipeline.capture import CaptureStore, client_id
from edgeslm.serving import errors


def _error(status: int, message: str, code: str) -> JSONResponse:
    return JSONResponse(errors.body(message, "server_error" if status >= 500 else "invalid_request_error", None, code),
                        status_code=status)


class _Assembler:
    """Rebuilds a chat completion from its stream chunks (content and tool-call deltas)."""

    def __init__(self):
        self.content, self.calls, self.finish, self.model, self.usage, self.id = "", {}, None, None, None, None

    def feed(self, chunk: dict) -> None:
        self.id, self.model = chunk.get("id", self.id), chunk.get("model", self.model)
        self.usage = chunk.get("usage") or self.usage
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            self.content += delta.get("content") or ""
            for tc in delta.get("tool_calls") or []:
                call = self.calls.setdefault(tc.get("index", 0), {"id": None, "type": "function",
                                                                  "function": {"name": "", "arguments": ""}})
                call["id"] = tc.get("id") or call["id"]
                fn = tc.get("function") or {}
                call["function"]["name"] += fn.get("name") or ""
                call["function"]["arguments"] += fn.get("arguments") or ""
            self.finish = choice.get("finish_reason") or self.finish

    def completion(self) -> dict:
        message = {"role": "assistant", "content": self.content or None}
        if self.calls:
            message["tool_calls"] = [self.calls[i] for i in sorted(self.calls)]
        return {"id": self.id, "object": "chat.completion", "model": self.model, "usage": self.usage,
                "choices": [{"index": 0, "message": message, "finish_reason": self.finish}]}


def create_proxy(upstream: str, capture: CaptureStore, api_key_env: str | None = None,
                 timeout: float = 600.0) -> FastAPI:
    app = FastAPI(title="edgeslm proxy")
    base = upstream.rstrip("/")
    if not base.endswith("/v1"):
        base += "/v1"
    client = httpx.AsyncClient(timeout=timeout)

    def headers(request: Request) -> dict:
        key = os.environ.get(api_key_env) if api_key_env else None
        auth = f"Bearer {key}" if key else request.headers.get("authorization")
        return {"Authorization": auth} if auth else {}

    async def record(body: dict, request: Request, started: float, response: dict) -> None:
        call = {"created": started, "source": "proxy", "client": client_id(request.headers),
                "model": response.get("model") or body.get("model"), "adapter": None,
                "latency_s": time.time() - started,
                "finish_reason": (response.get("choices") or [{}])[0].get("finish_reason"),
                "request": body, "response": response}
        await run_in_threadpool(capture.add, call)

    @app.get("/health")
    async def health():
        return {"status": "ok", "upstream": base}

    @app.get("/v1/models")
    async def models(request: Request):
        try:
            r = await client.get(base + "/models", headers=headers(request))
        except httpx.HTTPError as e:
            return _error(502, f"the upstream model at {base} cannot be reached: {type(e).__name__}", "upstream_unreachable")
        return JSONResponse(r.json(), status_code=r.status_code)

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        started = time.time()
        try:
            body = json.loads(await request.body())
        except ValueError as e:
            return _error(400, f"request body is not valid JSON: {e}", "invalid_json")
        if not isinstance(body, dict):
            return _error(400, "request body must be a JSON object", "invalid_json")
        url, hdrs = base + "/chat/completions", headers(request)
        try:
            if not body.get("stream"):
                r = await client.post(url, json=body, headers=hdrs)
                answer = r.json()
                if r.status_code == 200:
                    await record(body, request, started, answer)
                return JSONResponse(answer, status_code=r.status_code)
            upstream_req = client.build_request("POST", url, json=body, headers=hdrs)
            r = await client.send(upstream_req, stream=True)
        except httpx.HTTPError as e:
            return _error(502, f"the upstream model at {base} cannot be reached: {type(e).__name__}", "upstream_unreachable")
        except ValueError:
            return _error(502, f"the upstream model at {base} answered with something that is not JSON", "upstream_invalid")
        if r.status_code != 200:
            content = await r.aread()
            await r.aclose()
            return JSONResponse(json.loads(content or b"{}"), status_code=r.status_code)

        async def relay():
            whole = _Assembler()
            try:
                async for line in r.aiter_lines():
                    if line.startswith("data: ") and line != "data: [DONE]":
                        try:
                            whole.feed(json.loads(line[6:]))
                        except ValueError:
                            pass
                    if line == "data: [DONE]" and whole.finish:
                        await record(body, request, started, whole.completion())  # durable before [DONE] goes out
                    yield line + "\n"
            finally:
                await r.aclose()

        return StreamingResponse(relay(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    return app
