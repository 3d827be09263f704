"""Wire ↔ internal: OpenAI requests become (messages, output spec, sampling); generations and
engine events become OpenAI responses and stream chunks. All request checks that need no model
live here and raise typed errors naming the field."""

from __future__ import annotations

import json
import re
import time
import uuid

from edgeslm import __version__
from edgeslm.config import Settings
from edgeslm.decoding.schemas import check_schema
from edgeslm.errors import InvalidRequest
from edgeslm.types import Generation, Message, OutputSpec, SamplingParams, ToolCall, ToolSpec
from edgeslm.wire import errors
from edgeslm.wire.protocol import ChatCompletionRequest, NamedToolChoice

_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
FINGERPRINT = f"edgeslm-{__version__}"


def _unsupported(req: ChatCompletionRequest) -> None:
    if (req.n or 1) != 1:
        raise InvalidRequest(f"n={req.n} is not supported; edgeslm returns one choice (n=1)", param="n")
    if req.logprobs or req.top_logprobs:
        raise InvalidRequest("logprobs are not supported; send logprobs=false or leave it out", param="logprobs")
    for name in ("frequency_penalty", "presence_penalty"):
        if getattr(req, name):
            raise InvalidRequest(f"{name} is not supported; send 0 or leave it out", param=name)
    if req.logit_bias:
        raise InvalidRequest("logit_bias is not supported; leave it out", param="logit_bias")


def _messages(req: ChatCompletionRequest) -> list[Message]:
    if not req.messages:
        raise InvalidRequest("messages must hold at least one message", param="messages")
    out = []
    for i, m in enumerate(req.messages):
        if isinstance(m.content, list):
            texts = []
            for part in m.content:
                if part.type != "text" or part.text is None:
                    raise InvalidRequest(
                        f"content part type '{part.type}' is not supported; this model reads text parts only",
                        param=f"messages[{i}].content",
                    )
                texts.append(part.text)
            content: str | None = "\n".join(texts)
        else:
            content = m.content
        calls = []
        for j, c in enumerate(m.tool_calls or []):
            try:
                if not isinstance(json.loads(c.function.arguments), dict):
                    raise ValueError
            except ValueError:
                raise InvalidRequest(
                    "tool call arguments must be a JSON object serialized as a string",
                    param=f"messages[{i}].tool_calls[{j}].function.arguments",
                ) from None
            calls.append(ToolCall(c.id, c.function.name, c.function.arguments))
        role = "system" if m.role == "developer" else m.role
        out.append(Message(role, content, calls, m.tool_call_id, m.name))
    return out


def _tools(req: ChatCompletionRequest) -> list[ToolSpec]:
    tools, seen = [], set()
    for i, t in enumerate(req.tools or []):
        f, where = t.function, f"tools[{i}].function"
        if not _NAME.match(f.name):
            raise InvalidRequest(
                f"invalid function name '{f.name}': use 1-64 of a-z, A-Z, 0-9, '_' and '-'", param=f"{where}.name"
            )
        if f.name in seen:
            raise InvalidRequest(f"function name '{f.name}' is given twice", param=f"{where}.name")
        seen.add(f.name)
        params = f.parameters if f.parameters is not None else {"type": "object", "properties": {}}
        check_schema(params, f"{where}.parameters")
        if params.get("type", "object") != "object":
            raise InvalidRequest(
                f"function parameters must be a JSON Schema of type 'object', got '{params.get('type')}'",
                param=f"{where}.parameters",
            )
        tools.append(ToolSpec(f.name, f.description or "", {"type": "object", **params}))
    return tools


def _output(req: ChatCompletionRequest, tools: list[ToolSpec]) -> OutputSpec:
    choice: str | NamedToolChoice = req.tool_choice or ("auto" if tools else "none")
    if isinstance(choice, NamedToolChoice):
        names = [t.name for t in tools]
        if choice.function.name not in names:
            raise InvalidRequest(
                f"tool_choice names '{choice.function.name}', which is not among the tools: "
                f"{', '.join(names) or '(no tools given)'}",
                param="tool_choice",
            )
        choice = choice.function.name
    elif choice == "required" and not tools:
        raise InvalidRequest("tool_choice 'required' needs at least one tool in tools", param="tool_choice")
    fmt = req.response_format
    if fmt is not None and fmt.type != "text":
        if tools and choice != "none":
            raise InvalidRequest(
                "response_format json output together with callable tools is not supported; "
                "set tool_choice to 'none' or drop response_format",
                param="response_format",
            )
        if fmt.type == "json_object":
            return OutputSpec(kind="json", schema={"type": "object"})
        if fmt.json_schema is None or fmt.json_schema.schema_ is None:
            raise InvalidRequest("response_format json_schema needs json_schema.schema", param="response_format.json_schema")
        check_schema(fmt.json_schema.schema_, "response_format.json_schema.schema")
        return OutputSpec(kind="json", schema=fmt.json_schema.schema_)
    if not tools:
        return OutputSpec(kind="text")
    # a request that names its function gets one call of it unless it asks for parallel calls
    named = choice not in ("auto", "required", "none")
    parallel = req.parallel_tool_calls is True if named else req.parallel_tool_calls is not False
    return OutputSpec(kind="tools", tools=tools, tool_choice=choice, parallel=parallel)


def to_internal(req: ChatCompletionRequest, settings: Settings) -> tuple[list[Message], OutputSpec, SamplingParams]:
    _unsupported(req)
    messages = _messages(req)
    spec = _output(req, _tools(req))
    stop = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
    if len(stop) > 4:
        raise InvalidRequest(f"stop holds {len(stop)} sequences; at most 4 are allowed", param="stop")
    params = SamplingParams(
        max_tokens=req.max_completion_tokens or req.max_tokens or settings.default_max_tokens,
        # what the request leaves out stays None: the model's and adapter's defaults fill it (sampler.resolve)
        temperature=req.temperature,
        top_p=req.top_p,
        top_k=None if req.top_k is None else max(req.top_k, 0),
        min_p=req.min_p,
        repetition_penalty=req.repetition_penalty,
        copy_bias=req.copy_bias,
        tool_bias=req.tool_bias,
        call_bias=req.call_bias,
        more_bias=req.more_bias,
        arg_bias=req.arg_bias,
        close_bias=req.close_bias,
        left_bias=req.left_bias,
        seed=req.seed,
        stop=[s for s in stop if s],
        max_tokens_given=(req.max_completion_tokens or req.max_tokens) is not None,
    )
    return messages, spec, params


# ---- responses ---------------------------------------------------------------------------------

def new_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex


def _usage(g: Generation) -> dict:
    u = g.usage
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
    }


def completion(g: Generation, rid: str) -> dict:
    message: dict = {"role": "assistant", "content": g.content, "refusal": None}
    if g.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in g.tool_calls
        ]
    return {
        "id": rid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": g.model,
        "system_fingerprint": FINGERPRINT,
        # stop_reason (as vLLM has it): the request's stop string that ended the text, if one did
        "choices": [{"index": 0, "message": message, "finish_reason": g.finish_reason, "logprobs": None,
                     "truncated": g.truncated, "stop_reason": g.stop_sequence}],
        "usage": _usage(g),
        "timings": g.timings,
    }


def replay(body: dict) -> list[tuple]:
    """A finished chat completion body as the engine's stream events (a teacher's answer streamed in
    another format)."""
    message = body["choices"][0]["message"]
    events: list[tuple] = [("text", message["content"])] if message.get("content") else []
    for i, c in enumerate(message.get("tool_calls") or []):
        events += [("call", i, c["id"], c["function"]["name"]), ("args", i, c["function"]["arguments"])]
    return events


class Chat:
    """A chat completions request, the engine's own form: its answer is the completion body as it is."""

    def __init__(self, req: ChatCompletionRequest):
        self.chat = req

    def answer(self, body: dict) -> dict:
        return body

    def writer(self, rid: str, model: str, prompt_tokens: int) -> ChunkWriter:
        return ChunkWriter(rid, model, bool(self.chat.stream_options and self.chat.stream_options.include_usage))


class ChunkWriter:
    """Builds the SSE chunks of one streamed completion."""

    def __init__(self, rid: str, model: str, include_usage: bool):
        self.rid, self.model, self.include_usage = rid, model, include_usage
        self.created = int(time.time())

    def _chunk(self, delta: dict, finish: str | None = None, **extra) -> str:
        body = {
            "id": self.rid,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": FINGERPRINT,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None, **extra}],
        }
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    def start(self) -> str:
        return self._chunk({"role": "assistant", "content": ""})

    def event(self, ev: tuple) -> str:
        if ev[0] == "text":
            return self._chunk({"content": ev[1]})
        if ev[0] == "call":
            _, i, cid, name = ev
            return self._chunk({"tool_calls": [{"index": i, "id": cid, "type": "function",
                                                "function": {"name": name, "arguments": ""}}]})
        _, i, frag = ev
        return self._chunk({"tool_calls": [{"index": i, "function": {"arguments": frag}}]})

    def end(self, g: Generation, body: dict | None = None) -> str:
        out = self._chunk({}, g.finish_reason, truncated=g.truncated)
        if self.include_usage:
            body = {"id": self.rid, "object": "chat.completion.chunk", "created": self.created,
                    "model": self.model, "system_fingerprint": FINGERPRINT, "choices": [], "usage": _usage(g)}
            out += f"data: {json.dumps(body)}\n\n"
        return out + "data: [DONE]\n\n"

    @staticmethod
    def error(status: int, etype: str, message: str, code: str | None, param: str | None) -> str:
        return f"data: {json.dumps(errors.body(message, etype, param, code))}\n\ndata: [DONE]\n\n"
