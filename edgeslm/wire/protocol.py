"""OpenAI wire types for /v1/chat/completions. Requests convert themselves to internal types
(translate.py); unknown fields that OpenAI clients send are accepted and ignored."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class FunctionCallIn(_Loose):
    name: str
    arguments: str = "{}"


class ToolCallIn(_Loose):
    id: str = ""
    type: Literal["function"] = "function"
    function: FunctionCallIn


class ContentPart(_Loose):
    type: str
    text: str | None = None


class ChatMessage(_Loose):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: str | None = None
    name: str | None = None


class FunctionDef(_Loose):
    name: str
    description: str = ""
    parameters: Any = None
    strict: bool | None = None


class Tool(_Loose):
    type: Literal["function"]
    function: FunctionDef


class NamedFunction(_Loose):
    name: str


class NamedToolChoice(_Loose):
    type: Literal["function"]
    function: NamedFunction


class JsonSchemaFormat(_Loose):
    name: str = "response"
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Loose):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class StreamOptions(_Loose):
    include_usage: bool = False


class ChatCompletionRequest(_Loose):
    model: str = "default"
    adapter: str | None = None  # edgeslm extension (extra_body): a task adapter of the model; or model "BASE@TASK"
    messages: list[ChatMessage]
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    # extensions vLLM accepts too (extra_body): -1 or 0 is no top-k cut
    top_k: int | None = Field(None, ge=-1)
    min_p: float | None = Field(None, ge=0, le=1)
    repetition_penalty: float | None = Field(None, gt=0)
    # edgeslm extensions: a tool call's values and tool lean toward the request's words (decoding/copying.py)
    copy_bias: float | None = Field(None, ge=0, le=10)
    tool_bias: float | None = Field(None, ge=0, le=10)
    call_bias: float | None = Field(None, ge=0, le=10)
    more_bias: float | None = Field(None, ge=0, le=10)
    arg_bias: float | None = Field(None, ge=0, le=10)
    close_bias: float | None = Field(None, ge=0, le=10)
    left_bias: float | None = Field(None, ge=0, le=10)
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    n: int | None = Field(None, ge=1)
    logprobs: bool | None = None
    top_logprobs: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
