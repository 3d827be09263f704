"""Internal dataclasses shared across layers. Wire formats (OpenAI JSON) live in wire/protocol.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str  # a JSON object, serialized


@dataclass
class Message:
    role: Role
    content: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None


@dataclass
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]


@dataclass
class SamplingParams:
    """A request's sampling. A field left None was not given: decoding/sampler.resolve fills it from the
    adapter's, the catalog's or the GGUF's defaults, else OpenAI's (temperature 1, top_p 1, no top_k,
    min_p 0, repetition_penalty 1, copy_bias 0, tool_bias 0, call_bias 0, more_bias 0, arg_bias 0, close_bias 0, left_bias 0)."""

    max_tokens: int
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None  # 0: no top-k cut
    min_p: float | None = None
    repetition_penalty: float | None = None
    copy_bias: float | None = None  # edgeslm's: decoding/copying.py
    tool_bias: float | None = None
    call_bias: float | None = None
    more_bias: float | None = None
    arg_bias: float | None = None
    close_bias: float | None = None
    left_bias: float | None = None
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    max_tokens_given: bool = False  # the caller set max_tokens (over the context it is refused, not cut)


@dataclass
class OutputSpec:
    """What the output must look like.

    kind: "text" (free), "tools" (text or tool calls, decided by `tool_choice`) or "json" (one JSON
    value under `schema`). For "tools": `tool_choice` is "auto", "required" or a tool name.
    """

    kind: Literal["text", "tools", "json"] = "text"
    tools: list[ToolSpec] = field(default_factory=list)
    tool_choice: str = "auto"
    parallel: bool = True
    schema: dict[str, Any] | None = None


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


FinishReason = Literal["stop", "length", "tool_calls", "cancelled"]


@dataclass
class Generation:
    """The result of one chat completion."""

    model: str
    content: str | None
    tool_calls: list[ToolCall]
    finish_reason: FinishReason
    usage: Usage
    truncated: bool = False  # max_tokens cut a tool call or JSON answer short
    stop_sequence: str | None = None  # the request's stop string that ended the text, if one did
    timings: dict[str, float] = field(default_factory=dict)


def common_prefix(a: Sequence, b: Sequence) -> int:
    """How many leading items `a` and `b` share (tokens, or a prompt's block hashes)."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
