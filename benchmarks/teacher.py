"""A scripted teacher: an OpenAI-compatible chat endpoint on 127.0.0.1 that answers the synthetic
workload's requests with their correct tool calls.

It stands in for a real LLM API, which cannot be reached from this machine: the pipeline's tests and
demo capture through `edgeslm proxy` in front of it exactly as they would in front of a hosted model.
It answers every request whose last user message it was scripted with (streaming included), and a
404 error JSON for any other, so a test never mistakes silence for an answer.
"""

from __future__ import annotations

import json
import time
import uuid

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse


def create_teacher(calls: list[dict], model: str = "scripted-teacher") -> FastAPI:
    """`calls`: synthetic.workload() items; each user text is answered with its "call"."""
    script = {c["messages"][-1]["content"]: c["call"] for c in calls}
    app = FastAPI(title="scripted teacher")

    @app.get("/health")
    async def health():
        return {"status": "ok", "scripted": len(script)}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": model, "object": "model", "created": 0, "owned_by": "script"}]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        users = [m for m in body.get("messages", []) if m.get("role") == "user"]
        call = script.get(users[-1].get("content") if users else None)
        if call is None:
            return JSONResponse({"error": {"message": "the scripted teacher has no answer for this request",
                                           "type": "invalid_request_error", "param": "messages",
                                           "code": "not_scripted"}}, status_code=404)
        rid, created = f"chatcmpl-{uuid.uuid4().hex[:12]}", int(time.time())
        tool_call = {"id": f"call_{uuid.uuid4().hex[:12]}", "type": "function",
                     "function": {"name": call["name"], "arguments": json.dumps(call["arguments"])}}
        usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        if not body.get("stream"):
            return {"id": rid, "object": "chat.completion", "created": created, "model": model, "usage": usage,
                    "choices": [{"index": 0, "finish_reason": "tool_calls",
                                 "message": {"role": "assistant", "content": None, "tool_calls": [tool_call]}}]}

        def chunk(delta: dict, finish: str | None = None) -> str:
            return "data: " + json.dumps({"id": rid, "object": "chat.completion.chunk", "created": created,
                                          "model": model, "choices": [{"index": 0, "delta": delta,
                                                                       "finish_reason": finish}]}) + "\n\n"

        args = tool_call["function"]["arguments"]

        def stream():
            yield chunk({"role": "assistant", "tool_calls": [{**tool_call, "index": 0,
                                                               "function": {"name": call["name"], "arguments": ""}}]})
            for i in range(0, len(args), 16):  # arguments arrive in pieces, as a real API sends them
                yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": args[i : i + 16]}}]})
            yield chunk({}, "tool_calls")
            yield "data: [DONE]\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    return app
