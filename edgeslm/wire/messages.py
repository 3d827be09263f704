"""Anthropic's Messages API (`POST /v1/messages`, `/v1/messages/count_tokens`) ↔ the chat-completions
request the engine serves.

A request becomes a `ChatCompletionRequest`: `system` → a system message; content blocks → messages
(`tool_use` → the assistant's tool calls, `tool_result` → tool messages); `tools[].input_schema`;
`tool_choice` auto / any / tool / none; `stop_sequences`; `output_config.format`. Its answer, a chat completion body, becomes a
`message` with `text` and `tool_use` blocks and a `stop_reason`, or the API's event stream. Errors on
these routes use Anthropic's shape (wire/errors.anthropic).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from pydantic import Field

from edgeslm.errors import InvalidRequest
from edgeslm.types import Generation
from edgeslm.wire.errors import anthropic_type
from edgeslm.wire.protocol import ChatCompletionRequest, _Loose


class MessagesRequest(_Loose):
    model: str = "default"
    adapter: str | None = None  # edgeslm extension, as in chat completions
    max_tokens: int = Field(ge=1)
    messages: list[Any]
    system: str | list[Any] | None = None
    tools: list[Any] | None = None
    tool_choice: dict[str, Any] | None = None
    stop_sequences: list[str] | None = None
    temperature: float | None = Field(None, ge=0, le=1)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=0)
    output_config: dict[str, Any] | None = None  # its `format` (a json_schema) constrains the answer
    stream: bool = False
    metadata: dict[str, Any] | None = None


class CountRequest(MessagesRequest):
    max_tokens: int = 1  # count_tokens takes no max_tokens


def _blocks(content, where: str) -> list[dict]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise InvalidRequest(f"{where} must be a string or a list of content blocks", param=where)
    for i, b in enumerate(content):
        if not isinstance(b, dict) or not isinstance(b.get("type"), str):
            raise InvalidRequest(f"{where}[{i}] must be a content block with a type", param=f"{where}[{i}]")
    return content


def _text_of(blocks: list[dict], where: str) -> str:
    out = []
    for i, b in enumerate(blocks):
        if b["type"] != "text" or not isinstance(b.get("text"), str):
            raise InvalidRequest(f"content block type '{b['type']}' is not supported here; this model reads text "
                                 "blocks", param=f"{where}[{i}]")
        out.append(b["text"])
    return "\n".join(out)


def _messages(req: MessagesRequest) -> list[dict]:
    out: list[dict] = []
    if req.system:
        system = req.system if isinstance(req.system, str) else _text_of(_blocks(req.system, "system"), "system")
        out.append({"role": "system", "content": system})
    for i, m in enumerate(req.messages):
        at = f"messages[{i}]"
        role = m.get("role") if isinstance(m, dict) else None
        if role not in ("user", "assistant"):
            raise InvalidRequest(f"{at}.role must be user or assistant, not {role!r}", param=f"{at}.role")
        blocks, texts, calls = _blocks(m.get("content"), f"{at}.content"), [], []
        for j, b in enumerate(blocks):
            where = f"{at}.content[{j}]"
            if b["type"] == "text" and isinstance(b.get("text"), str):
                texts.append(b["text"])
            elif b["type"] == "tool_use" and role == "assistant":
                if not isinstance(b.get("id"), str) or not isinstance(b.get("name"), str) or not isinstance(b.get("input"), dict):
                    raise InvalidRequest(f"{where}: a tool_use block needs id, name and an input object", param=where)
                calls.append({"id": b["id"], "type": "function",
                              "function": {"name": b["name"], "arguments": json.dumps(b["input"], ensure_ascii=False)}})
            elif b["type"] == "tool_result" and role == "user":
                if not isinstance(b.get("tool_use_id"), str):
                    raise InvalidRequest(f"{where}.tool_use_id must be a string", param=f"{where}.tool_use_id")
                result = b.get("content", "")
                text = result if isinstance(result, str) else _text_of(_blocks(result, f"{where}.content"), f"{where}.content")
                out.append({"role": "tool", "tool_call_id": b["tool_use_id"],
                            "content": ("Error: " + text) if b.get("is_error") else text})
            elif b["type"] in ("thinking", "redacted_thinking") and role == "assistant":
                continue  # another model's reasoning: nothing this model reads
            else:
                raise InvalidRequest(f"content block type '{b['type']}' is not supported in a {role} message; "
                                     "use text, tool_use (assistant) or tool_result (user)", param=f"{where}.type")
        if calls:
            out.append({"role": "assistant", "content": "\n".join(texts) or None, "tool_calls": calls})
        elif texts:
            out.append({"role": role, "content": "\n".join(texts)})
    return out


def _tools(tools: list | None) -> list[dict] | None:
    if tools is None:
        return None
    out = []
    for i, t in enumerate(tools):
        if not isinstance(t, dict) or t.get("type", "custom") != "custom" or not isinstance(t.get("name"), str):
            kind = t.get("type") if isinstance(t, dict) else None
            raise InvalidRequest(f"tools[{i}]: only custom tools with a name and input_schema are supported (got type "
                                 f"{kind!r})", param=f"tools[{i}]")
        out.append({"type": "function", "function": {"name": t["name"], "description": t.get("description") or "",
                                                      "parameters": t.get("input_schema")}})
    return out


def _choice(choice: dict | None):
    """(chat tool_choice, parallel_tool_calls)."""
    if choice is None:
        return None, None
    kind = choice.get("type")
    parallel = False if choice.get("disable_parallel_tool_use") else None
    if kind == "auto":
        return "auto", parallel
    if kind == "any":
        return "required", parallel
    if kind == "none":
        return "none", None
    if kind == "tool" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}, parallel
    raise InvalidRequest("tool_choice.type must be auto, any, tool (with a name) or none", param="tool_choice")


def _format(config: dict | None) -> dict | None:
    fmt = (config or {}).get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
        raise InvalidRequest("output_config.format must be {\"type\": \"json_schema\", \"schema\": {...}}",
                             param="output_config.format")
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": fmt["schema"]}}


def to_chat(req: MessagesRequest) -> ChatCompletionRequest:
    choice, parallel = _choice(req.tool_choice)
    body: dict[str, Any] = {
        "model": req.model, "adapter": req.adapter, "messages": _messages(req), "tools": _tools(req.tools),
        "tool_choice": choice, "parallel_tool_calls": parallel, "max_tokens": req.max_tokens,
        "stop": req.stop_sequences, "temperature": req.temperature, "top_p": req.top_p, "top_k": req.top_k,
        "response_format": _format(req.output_config), "stream": req.stream}
    return ChatCompletionRequest.model_validate({k: v for k, v in body.items() if v is not None})


def _stop_reason(choice: dict) -> tuple[str, str | None]:
    finish = choice.get("finish_reason")
    if finish == "tool_calls":
        return "tool_use", None
    if finish == "length":
        return "max_tokens", None
    if choice.get("stop_reason"):
        return "stop_sequence", choice["stop_reason"]
    return "end_turn", None


class Messages:
    """One request in the Messages format: its chat form, and its answer as a message or events."""

    def __init__(self, req: MessagesRequest):
        self.req, self.id = req, "msg_" + uuid.uuid4().hex
        self.chat = to_chat(req)

    @staticmethod
    def tool_id(cid: str) -> str:
        return "toolu_" + cid.removeprefix("call_")

    def answer(self, body: dict) -> dict:
        message = body["choices"][0]["message"]
        content: list[dict] = [{"type": "text", "text": message["content"]}] if message.get("content") else []
        for c in message.get("tool_calls") or []:
            content.append({"type": "tool_use", "id": self.tool_id(c["id"]), "name": c["function"]["name"],
                            "input": json.loads(c["function"]["arguments"])})
        reason, sequence = _stop_reason(body["choices"][0])
        u = body.get("usage") or {}
        cached = (u.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
        # Anthropic's input_tokens leave out what was read from the cache (billed: input + cache read)
        return {"id": self.id, "type": "message", "role": "assistant", "model": body.get("model", self.req.model),
                "content": content, "stop_reason": reason, "stop_sequence": sequence,
                "usage": {"input_tokens": u.get("prompt_tokens", 0) - cached, "output_tokens": u.get("completion_tokens", 0),
                          "cache_creation_input_tokens": 0, "cache_read_input_tokens": cached}}

    def writer(self, rid: str, model: str, prompt_tokens: int) -> MessagesWriter:
        return MessagesWriter(self, model, prompt_tokens)


class MessagesWriter:
    """The event stream of one streamed message: message_start, a block per text or tool call
    (content_block_start / _delta / _stop), message_delta with the stop reason, message_stop."""

    def __init__(self, fmt: Messages, model: str, prompt_tokens: int):
        self.fmt, self.model, self.prompt_tokens = fmt, model, prompt_tokens
        self.index, self.open = -1, None  # type: int, str | None  # the open block's kind: "text" or "tool_use"

    @staticmethod
    def _ev(kind: str, **data) -> str:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **data}, ensure_ascii=False)}\n\n"

    def start(self) -> str:
        message: dict[str, Any] = {"id": self.fmt.id, "type": "message", "role": "assistant", "model": self.model, "content": [],
                   "stop_reason": None, "stop_sequence": None,
                   "usage": {"input_tokens": self.prompt_tokens, "output_tokens": 0}}
        return self._ev("message_start", message=message) + self._ev("ping")

    def _close(self) -> str:
        if self.open is None:
            return ""
        self.open = None
        return self._ev("content_block_stop", index=self.index)

    def event(self, ev: tuple) -> str:
        out = ""
        if ev[0] == "text":
            if self.open != "text":
                out += self._close()
                self.index, self.open = self.index + 1, "text"
                out += self._ev("content_block_start", index=self.index, content_block={"type": "text", "text": ""})
            return out + self._ev("content_block_delta", index=self.index, delta={"type": "text_delta", "text": ev[1]})
        if ev[0] == "call":
            out += self._close()
            self.index, self.open = self.index + 1, "tool_use"
            block = {"type": "tool_use", "id": self.fmt.tool_id(ev[2]), "name": ev[3], "input": {}}
            return out + self._ev("content_block_start", index=self.index, content_block=block)
        return self._ev("content_block_delta", index=self.index, delta={"type": "input_json_delta", "partial_json": ev[2]})

    def end(self, g: Generation | None, body: dict) -> str:
        reason, sequence = _stop_reason(body["choices"][0])
        usage = {"output_tokens": (body.get("usage") or {}).get("completion_tokens", 0)}
        return (self._close() + self._ev("message_delta", delta={"stop_reason": reason, "stop_sequence": sequence},
                                         usage=usage) + self._ev("message_stop"))

    def error(self, status: int, etype: str, message: str, code: str | None, param: str | None) -> str:
        return self._ev("error", error={"type": anthropic_type(status), "message": message})

