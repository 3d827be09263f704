"""OpenAI's Responses API (`POST /v1/responses`) ↔ the chat-completions request the engine serves.

A request becomes a `ChatCompletionRequest` (instructions → a system message, input items → messages,
function tools, `tool_choice`, `text.format` → `response_format`); its answer, a chat completion body,
becomes a `response` object with `message` and `function_call` output items, or a stream of the API's
named events. Owns the responses kept for `previous_response_id`: a bounded in-memory LRU for the
server's lifetime (`store: false` keeps nothing; an unknown or evicted id is a 404).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import OrderedDict
from typing import Any

from pydantic import Field

from edgeslm.errors import InvalidRequest, NotFound
from edgeslm.types import Generation
from edgeslm.wire.protocol import ChatCompletionRequest, _Loose


class ResponsesRequest(_Loose):
    model: str = "default"
    adapter: str | None = None  # edgeslm extension, as in chat completions
    input: str | list[Any]
    instructions: str | None = None
    tools: list[Any] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    max_output_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=-1)
    seed: int | None = None
    stream: bool = False
    store: bool = True
    previous_response_id: str | None = None
    text: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


class Kept:
    """The conversations of stored responses (chat messages up to and including each answer), the
    least recently used dropped past `size`."""

    def __init__(self, size: int):
        self.size, self._items, self._lock = size, OrderedDict[str, list[dict]](), threading.Lock()

    def get(self, rid: str) -> list[dict]:
        with self._lock:
            if rid not in self._items:
                raise NotFound(f"previous_response_id '{rid}' is not held by this server (unknown, stored with "
                               f"store=false, evicted past the last {self.size}, or from before a restart)",
                               param="previous_response_id", code="previous_response_not_found")
            self._items.move_to_end(rid)
            return list(self._items[rid])

    def put(self, rid: str, messages: list[dict]) -> None:
        with self._lock:
            self._items[rid] = messages
            while len(self._items) > self.size:
                self._items.popitem(last=False)


def _text(content, where: str, kinds: tuple[str, ...]) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequest(f"{where} must be a string or a list of content parts", param=where)
    out = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in kinds or not isinstance(part.get("text"), str):
            raise InvalidRequest(f"content part type '{kind}' is not supported here; this model reads "
                                 f"{' and '.join(kinds)} parts", param=f"{where}[{i}]")
        out.append(part["text"])
    return "\n".join(out)


def _messages(items: str | list, where: str = "input") -> list[dict]:
    """Input items as chat messages: consecutive function calls join the assistant message before them."""
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    out: list[dict] = []
    for i, item in enumerate(items):
        at = f"{where}[{i}]"
        if not isinstance(item, dict):
            raise InvalidRequest(f"{at} must be an object", param=at)
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "system", "developer", "assistant"):
                raise InvalidRequest(f"{at}.role must be user, system, developer or assistant, not {role!r}",
                                     param=f"{at}.role")
            kinds = ("output_text", "refusal", "input_text") if role == "assistant" else ("input_text", "output_text", "text")
            if role == "assistant" and isinstance(item.get("content"), list):  # a refusal part is text too
                item = {**item, "content": [{**p, "type": "output_text", "text": p.get("refusal", p.get("text"))}
                                            if isinstance(p, dict) and p.get("type") == "refusal" else p
                                            for p in item["content"]]}
            out.append({"role": role, "content": _text(item.get("content"), f"{at}.content", kinds)})
        elif kind == "function_call":
            name, args, cid = item.get("name"), item.get("arguments", "{}"), item.get("call_id")
            if not isinstance(name, str) or not isinstance(args, str) or not isinstance(cid, str):
                raise InvalidRequest(f"{at}: a function_call needs name, call_id and arguments as strings", param=at)
            call = {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}
            last = out[-1] if out else None
            if last and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            cid, output = item.get("call_id"), item.get("output")
            if not isinstance(cid, str):
                raise InvalidRequest(f"{at}.call_id must be a string", param=f"{at}.call_id")
            out.append({"role": "tool", "tool_call_id": cid,
                        "content": _text(output, f"{at}.output", ("input_text", "output_text", "text"))})
        elif kind == "reasoning":
            continue  # another model's reasoning summary: nothing this model reads
        else:
            raise InvalidRequest(f"input item type '{kind}' is not supported; use message, function_call or "
                                 "function_call_output", param=f"{at}.type")
    return out


def _tools(tools: list | None) -> list[dict] | None:
    if tools is None:
        return None
    out = []
    for i, t in enumerate(tools):
        kind = t.get("type") if isinstance(t, dict) else None
        if kind != "function":
            raise InvalidRequest(f"tool type '{kind}' is not supported; this server runs function tools only",
                                 param=f"tools[{i}].type")
        fn = {k: t[k] for k in ("name", "description", "parameters", "strict") if k in t and t[k] is not None}
        out.append({"type": "function", "function": fn})
    return out


def _choice(choice):
    if choice is None or isinstance(choice, str):
        return choice
    if choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise InvalidRequest("tool_choice must be none, auto, required or {\"type\": \"function\", \"name\": ...}",
                         param="tool_choice")


def _format(text: dict | None) -> dict | None:
    fmt = (text or {}).get("format")
    if fmt is None or not isinstance(fmt, dict) or fmt.get("type") == "text":
        return None
    if fmt.get("type") == "json_object":
        return {"type": "json_object"}
    if fmt.get("type") == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": fmt.get("name", "response"),
                                                        "schema": fmt.get("schema"), "strict": fmt.get("strict")}}
    raise InvalidRequest(f"text.format.type '{fmt.get('type')}' is not supported; use text, json_object or "
                         "json_schema", param="text.format.type")


class Responses:
    """One request in the Responses format: its chat form, and its answer as a response or events."""

    def __init__(self, req: ResponsesRequest, kept: Kept):
        self.req, self.kept = req, kept
        self.id = "resp_" + uuid.uuid4().hex
        self.created = int(time.time())
        self.history = kept.get(req.previous_response_id) if req.previous_response_id else []
        self.new = _messages(req.input)
        system = [{"role": "system", "content": req.instructions}] if req.instructions else []
        body: dict[str, Any] = {
            "model": req.model, "adapter": req.adapter, "messages": system + self.history + self.new,
            "tools": _tools(req.tools), "tool_choice": _choice(req.tool_choice),
            "parallel_tool_calls": req.parallel_tool_calls, "max_tokens": req.max_output_tokens,
            "temperature": req.temperature, "top_p": req.top_p, "top_k": req.top_k, "seed": req.seed,
            "response_format": _format(req.text), "stream": req.stream}
        self.chat = ChatCompletionRequest.model_validate({k: v for k, v in body.items() if v is not None})

    def _shell(self, status: str) -> dict:
        r = self.req
        return {"id": self.id, "object": "response", "created_at": self.created, "status": status, "error": None,
                "incomplete_details": None, "instructions": r.instructions, "max_output_tokens": r.max_output_tokens,
                "model": r.model, "output": [], "parallel_tool_calls": r.parallel_tool_calls is not False,
                "previous_response_id": r.previous_response_id, "reasoning": {"effort": None, "summary": None},
                "store": r.store, "temperature": r.temperature, "top_p": r.top_p,
                "text": r.text or {"format": {"type": "text"}}, "tool_choice": r.tool_choice or "auto",
                "tools": r.tools or [], "truncation": "disabled", "usage": None, "user": None,
                "metadata": r.metadata or {}}

    def message_item(self, text: str, status: str = "completed") -> dict:
        return {"type": "message", "id": "msg_" + self.id[5:], "status": status, "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}] if text else []}

    @staticmethod
    def call_item(cid: str, name: str, arguments: str, status: str = "completed") -> dict:
        return {"type": "function_call", "id": "fc_" + cid.removeprefix("call_"), "call_id": cid, "name": name,
                "arguments": arguments, "status": status}

    def answer(self, body: dict) -> dict:
        """The response object for a chat completion body (restored already, when routed); kept for
        `previous_response_id` unless the request said store=false."""
        message = body["choices"][0]["message"]
        finish = body["choices"][0]["finish_reason"]
        out = self._shell("incomplete" if finish == "length" else "completed")
        out["model"] = body.get("model", out["model"])
        if finish == "length":
            out["incomplete_details"] = {"reason": "max_output_tokens"}
        if message.get("content"):
            out["output"].append(self.message_item(message["content"]))
        for c in message.get("tool_calls") or []:
            out["output"].append(self.call_item(c["id"], c["function"]["name"], c["function"]["arguments"]))
        u = body.get("usage") or {}
        out["usage"] = {"input_tokens": u.get("prompt_tokens", 0),
                        "input_tokens_details": {"cached_tokens": (u.get("prompt_tokens_details") or {}).get("cached_tokens", 0)},
                        "output_tokens": u.get("completion_tokens", 0), "output_tokens_details": {"reasoning_tokens": 0},
                        "total_tokens": u.get("total_tokens", 0)}
        if self.req.store:
            said = {k: v for k, v in message.items() if k in ("role", "content", "tool_calls") and v is not None}
            self.kept.put(self.id, self.history + self.new + [said])
        return out

    def writer(self, rid: str, model: str, prompt_tokens: int) -> ResponsesWriter:
        return ResponsesWriter(self)


class ResponsesWriter:
    """The named server-sent events of one streamed response."""

    def __init__(self, fmt: Responses):
        self.fmt, self.seq = fmt, 0
        self.items: list[dict] = []  # output items so far; the last may be open
        self.open: dict | None = None

    def _ev(self, kind: str, **data) -> str:
        body = {"type": kind, "sequence_number": self.seq, **data}
        self.seq += 1
        return f"event: {kind}\ndata: {json.dumps(body, ensure_ascii=False)}\n\n"

    def start(self) -> str:
        shell = self.fmt._shell("in_progress")
        return self._ev("response.created", response=shell) + self._ev("response.in_progress", response=shell)

    def _close(self) -> str:
        item, self.open = self.open, None
        if item is None:
            return ""
        i = len(self.items) - 1
        if item["type"] == "message":
            text = item["content"][0]["text"]
            done = self.fmt.message_item(text)
            self.items[i] = done
            part = done["content"][0]
            return (self._ev("response.output_text.done", item_id=item["id"], output_index=i, content_index=0, text=text,
                             logprobs=[])
                    + self._ev("response.content_part.done", item_id=item["id"], output_index=i, content_index=0, part=part)
                    + self._ev("response.output_item.done", output_index=i, item=done))
        done = {**item, "status": "completed"}
        self.items[i] = done
        return (self._ev("response.function_call_arguments.done", item_id=item["id"], output_index=i,
                         name=item["name"], arguments=item["arguments"])
                + self._ev("response.output_item.done", output_index=i, item=done))

    def event(self, ev: tuple) -> str:
        out = ""
        if ev[0] == "text":
            if self.open is None or self.open["type"] != "message":
                out += self._close()
                item = self.fmt.message_item("", "in_progress")
                self.items.append(item)
                self.open = item
                part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
                item["content"] = [part]
                out += self._ev("response.output_item.added", output_index=len(self.items) - 1,
                                item={**item, "content": []})
                out += self._ev("response.content_part.added", item_id=item["id"], output_index=len(self.items) - 1,
                                content_index=0, part=dict(part))
            self.open["content"][0]["text"] += ev[1]
            return out + self._ev("response.output_text.delta", item_id=self.open["id"], output_index=len(self.items) - 1,
                                  content_index=0, delta=ev[1], logprobs=[])
        if ev[0] == "call":
            out += self._close()
            item = self.fmt.call_item(ev[2], ev[3], "", "in_progress")
            self.items.append(item)
            self.open = item
            return out + self._ev("response.output_item.added", output_index=len(self.items) - 1, item=dict(item))
        assert self.open is not None and self.open["type"] == "function_call"
        self.open["arguments"] += ev[2]
        return self._ev("response.function_call_arguments.delta", item_id=self.open["id"],
                        output_index=len(self.items) - 1, delta=ev[2])

    def end(self, g: Generation | None, body: dict) -> str:
        out = self._close()
        final = self.fmt.answer(body)
        return out + self._ev("response.incomplete" if final["status"] == "incomplete" else "response.completed",
                              response=final)

    def error(self, status: int, etype: str, message: str, code: str | None, param: str | None) -> str:
        failed = self.fmt._shell("failed")
        failed["error"] = {"code": code or "server_error", "message": message}
        return (self._ev("error", code=code, message=message, param=param)
                + self._ev("response.failed", response=failed))
