"""A scripted teacher: an OpenAI-compatible chat endpoint on 127.0.0.1 that answers the synthetic
workload's requests with their correct tool calls (several when the request asks for several), or with
its text answer when a tool's result came back.

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


def _last_user(messages: list[dict]) -> str | None:
    users = [m for m in messages if m.get("role") == "user"]
    return users[-1].get("content") if users else None


def _answer_of(c: dict) -> dict:
    """{"calls": [...]} or {"reply": text} of a workload item."""
    if c.get("reply") is not None:
        return {"reply": c["reply"]}
    return {"calls": c.get("calls") or [c["call"]]}


def create_teacher(calls: list[dict], model: str = "scripted-teacher") -> FastAPI:
    """`calls`: synthetic.workload() items; each is answered by the user text it was scripted with and by
    whether a tool's result came last: its tool calls, or its text reply after a tool result."""
    script = {(_last_user(c["messages"]), c.get("reply") is not None): _answer_of(c) for c in calls}
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
        messages = body.get("messages", [])
        after_tool = bool(messages) and messages[-1].get("role") == "tool"
        answer = script.get((_last_user(messages), after_tool))
        if answer is None:
            return JSONResponse({"error": {"message": "the scripted teacher has no answer for this request",
                                           "type": "invalid_request_error", "param": "messages",
                                           "code": "not_scripted"}}, status_code=404)
        rid, created = f"chatcmpl-{uuid.uuid4().hex[:12]}", int(time.time())
        tool_calls = [{"id": f"call_{uuid.uuid4().hex[:12]}", "type": "function",
                       "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])}}
                      for c in answer.get("calls", [])]
        reply = answer.get("reply")
        usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        finish = "tool_calls" if tool_calls else "stop"
        if not body.get("stream"):
            return {"id": rid, "object": "chat.completion", "created": created, "model": model, "usage": usage,
                    "choices": [{"index": 0, "finish_reason": finish,
                                 "message": {"role": "assistant", "content": reply, "tool_calls": tool_calls or None}}]}

        def chunk(delta: dict, finish: str | None = None) -> str:
            return "data: " + json.dumps({"id": rid, "object": "chat.completion.chunk", "created": created,
                                          "model": model, "choices": [{"index": 0, "delta": delta,
                                                                       "finish_reason": finish}]}) + "\n\n"

        def stream():
            yield chunk({"role": "assistant"})
            for i in range(0, len(reply or ""), 16):
                yield chunk({"content": reply[i : i + 16]})
            for n, tc in enumerate(tool_calls):
                args = tc["function"]["arguments"]
                yield chunk({"tool_calls": [{**tc, "index": n, "function": {"name": tc["function"]["name"], "arguments": ""}}]})
                for i in range(0, len(args), 16):  # arguments arrive in pieces, as a real API sends them
                    yield chunk({"tool_calls": [{"index": n, "function": {"arguments": args[i : i + 16]}}]})
            yield chunk({}, finish)
            yield "data: [DONE]\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    return app
