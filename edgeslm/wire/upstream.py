"""The upstream model (the teacher LLM) as an OpenAI-compatible HTTP endpoint: forwarding a chat
completion to it, stream or not, and handing the finished answer to a callback.

Used by `edgeslm proxy` (every call goes upstream and is captured) and by `serve` (requests for
model "auto" the router does not keep local fall back to it). Request bodies go upstream unchanged
(an API key from an environment variable replaces the client's); answers come back unchanged.
Streams are relayed chunk by chunk and assembled into one completion for the callback, which runs
before the final [DONE] leaves. Upstream failures become OpenAI error JSON (502 when unreachable).
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable

import httpx
from fastapi.responses import JSONResponse, Response, StreamingResponse

from edgeslm.wire import errors

OnAnswer = Callable[[dict], Awaitable[None]]


def error(status: int, message: str, code: str) -> JSONResponse:
    return JSONResponse(errors.body(message, "server_error" if status >= 500 else "invalid_request_error", None, code),
                        status_code=status)


class Assembler:
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


class Upstream:
    def __init__(self, url: str, api_key_env: str | None = None, timeout: float = 600.0,
                 forward_client_auth: bool = True):
        base = url.rstrip("/")
        self.base = base if base.endswith("/v1") else base + "/v1"
        self.api_key_env = api_key_env
        self.forward_client_auth = forward_client_auth
        self.client = httpx.AsyncClient(timeout=timeout)

    def headers(self, incoming) -> dict:
        """The upstream's Authorization: the key from `api_key_env` when that is named (and never the
        client's then, even when the variable is unset), else the client's own only when forwarding
        it was asked for (the proxy's purpose; `serve --upstream-forward-client-auth`)."""
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            return {"Authorization": f"Bearer {key}"} if key else {}
        auth = incoming.get("authorization") if self.forward_client_auth else None
        return {"Authorization": auth} if auth else {}

    def _unreachable(self, e: Exception) -> JSONResponse:
        return error(502, f"the upstream model at {self.base} cannot be reached: {type(e).__name__}",
                     "upstream_unreachable")

    async def models(self, incoming) -> JSONResponse:
        try:
            r = await self.client.get(self.base + "/models", headers=self.headers(incoming))
            return JSONResponse(r.json(), status_code=r.status_code)
        except httpx.HTTPError as e:
            return self._unreachable(e)
        except ValueError:
            return error(502, f"the upstream model at {self.base} answered with something that is not JSON",
                         "upstream_invalid")

    async def chat(self, body: dict, incoming, on_answer: OnAnswer, extra_headers: dict | None = None) -> Response:
        """Forward one chat completion; `on_answer(completion)` runs for every successful answer."""
        url, hdrs = self.base + "/chat/completions", self.headers(incoming)
        try:
            if not body.get("stream"):
                r = await self.client.post(url, json=body, headers=hdrs)
                answer = r.json()
                if r.status_code == 200:
                    await on_answer(answer)
                return JSONResponse(answer, status_code=r.status_code, headers=extra_headers)
            r = await self.client.send(self.client.build_request("POST", url, json=body, headers=hdrs), stream=True)
        except httpx.HTTPError as e:
            return self._unreachable(e)
        except ValueError:
            return error(502, f"the upstream model at {self.base} answered with something that is not JSON",
                         "upstream_invalid")
        if r.status_code != 200:
            content = await r.aread()
            await r.aclose()
            try:
                return JSONResponse(json.loads(content or b"{}"), status_code=r.status_code, headers=extra_headers)
            except ValueError:
                return error(502, f"the upstream model at {self.base} failed with HTTP {r.status_code}",
                             "upstream_error")

        async def relay():
            whole = Assembler()
            try:
                async for line in r.aiter_lines():
                    if line.startswith("data: ") and line != "data: [DONE]":
                        try:
                            whole.feed(json.loads(line[6:]))
                        except ValueError:
                            pass
                    if line == "data: [DONE]" and whole.finish:
                        await on_answer(whole.completion())  # durable before [DONE] goes out
                    yield line + "\n"
            finally:
                await r.aclose()

        return StreamingResponse(relay(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", **(extra_headers or {})})
