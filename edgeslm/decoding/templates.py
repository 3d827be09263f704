"""Chat templates: messages (+ tools) → the prompt string a model was trained on.

The model's own Jinja template from its GGUF metadata is used when present; otherwise a built-in
template for the catalog's `chat_format`. Templates that know tools (they mention `tools`) get
them natively; for the others tools are described in the system turn, assistant tool calls are
written in the family's envelope, and tool results become user turns (the generic fallback).

Templates with a thinking switch (Qwen3, SmolLM3) render with `enable_thinking=False`: an agent's
tool call is wanted at once, and the call grammar starts at the first token.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Protocol

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from edgeslm.decoding.tools import Envelope, tools_system_prompt
from edgeslm.errors import InvalidRequest
from edgeslm.types import Message, ToolSpec

BUILTIN = {
    # Gemma: the system text opens the first user turn; the assistant role is called "model".
    "gemma": (
        "{{ bos_token }}{% set first_user_prefix = '' %}{% set loop_messages = messages %}"
        "{% if messages and messages[0].role == 'system' %}{% set first_user_prefix = messages[0].content + '\n\n' %}"
        "{% set loop_messages = messages[1:] %}{% endif %}"
        "{% for m in loop_messages %}{% if (m.role == 'user') != (loop.index0 % 2 == 0) %}"
        "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
        "<start_of_turn>{{ 'model' if m.role == 'assistant' else m.role }}\n"
        "{{ (first_user_prefix if loop.first else '') + (m.content | trim) }}<end_of_turn>\n{% endfor %}"
        "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
    ),
    # FunctionGemma (Gemma 3 270M tuned for calls): the system text is a "developer" turn, where its tools
    # are declared; reconstructed from prompts FunctionGemma's users publish (no template in llama.cpp's tree)
    "functiongemma": (
        "{# <start_function_call> #}{{ bos_token }}{% for m in messages %}{% if m.role == 'system' %}"
        "<start_of_turn>developer\n{{ m.content }}<end_of_turn>\n{% else %}"
        "<start_of_turn>{{ 'model' if m.role == 'assistant' else m.role }}\n"
        "{{ m.content | trim }}<end_of_turn>\n{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
    ),
    "chatml": (
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    ),
    "llama3": (
        "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m.role }}<|end_header_id|>\n\n"
        "{{ m.content | trim }}<|eot_id|>{% endfor %}"
        "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
    ),
    # Granite 3.x/4.0: role markers; IBM's GGUFs carry their template, this is the fallback without tools
    "granite": (
        "{% for m in messages %}<|start_of_role|>{{ m.role }}<|end_of_role|>{{ m.content }}<|end_of_text|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|start_of_role|>assistant<|end_of_role|>{% endif %}"
    ),
    "phi4": (
        "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}<|end|>{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    ),
}


def _raise(message: str):
    raise InvalidRequest(f"chat template: {message}", param="messages")


class ChatTemplate:
    def __init__(self, source: str | None, chat_format: str, envelope: Envelope, bos_token: str = ""):
        if not source:
            source = BUILTIN.get(chat_format or "chatml", BUILTIN["chatml"])
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, undefined=jinja2.Undefined)
        env.globals["raise_exception"] = _raise
        env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
        env.filters["tojson"] = lambda x, indent=None, **_: json.dumps(x, ensure_ascii=False, indent=indent)
        try:
            self.template = env.from_string(source)
        except jinja2.TemplateSyntaxError as e:
            raise InvalidRequest(f"the model's chat template does not parse: {e}") from e
        self.native_tools = "tools" in source
        # a template that lists tools but writes no calls (LFM2's): the calls go into the content, as written
        self.calls_in_content = self.native_tools and "tool_calls" not in source
        self.envelope = envelope
        self.bos_token = bos_token
        # every text this class or the template writes around the request's fields (decoding/prompt.py
        # guards the tokens named here, so a field can never produce them)
        self.markup = "\n".join([source, tools_system_prompt([], envelope), envelope.render([("f", "{}")]),
                                  envelope.result("f", "")])

    def render(self, messages: list[Message], tools: list[ToolSpec], scrub: Scrub | None = None) -> str:
        """The prompt text. With `scrub` (decoding/prompt.Scrubber), every field's text goes through it
        first: what a client wrote is then told apart from the template's markup."""
        sc = scrub or _Same()
        if self.native_tools:
            msgs = [self._native(m, sc, self.envelope if self.calls_in_content else None) for m in messages]
            extra = {"tools": [sc.data(_tool_json(t)) for t in tools] or None}
        else:
            msgs, extra = self._generic(messages, tools, sc), {}
        try:
            return self.template.render(
                messages=msgs, add_generation_prompt=True, bos_token=self.bos_token, eos_token="",
                enable_thinking=False, **extra
            )
        except InvalidRequest:
            raise
        except Exception as e:  # a template that fails on these messages is the caller's problem to fix
            raise InvalidRequest(f"chat template failed on these messages: {e}", param="messages") from e

    @staticmethod
    def _native(m: Message, sc: Scrub, fold: Envelope | None = None) -> dict:
        out: dict = {"role": m.role, "content": sc(m.content or "")}
        if m.tool_calls and fold is not None:
            calls = [(sc(c.name), fold.written_args(c.arguments, sc)) for c in m.tool_calls]
            out["content"] = (out["content"] + fold.render(calls)).strip()
        elif m.tool_calls:
            # arguments are parsed first: a JSON escape (\u003c) would otherwise come back as the text
            out["tool_calls"] = [
                {"id": sc(c.id), "type": "function",
                 "function": {"name": sc(c.name), "arguments": sc.data(json.loads(c.arguments))}}
                for c in m.tool_calls
            ]
        if m.tool_call_id:
            out["tool_call_id"] = sc(m.tool_call_id)
        if m.name:
            out["name"] = sc(m.name)
        return out

    def _generic(self, messages: list[Message], tools: list[ToolSpec], sc: Scrub) -> list[dict]:
        out: list[dict] = []
        names = {c.id: c.name for m in messages for c in m.tool_calls or []}  # a result's call, by id
        if tools:
            tools = [ToolSpec(sc(t.name), sc(t.description), sc.data(t.parameters)) for t in tools]
            out.append({"role": "system", "content": tools_system_prompt(tools, self.envelope)})
        for m in messages:
            if m.role == "tool":
                role, content = "user", self.envelope.result(sc(names.get(m.tool_call_id or "", m.name or "")),
                                                             m.content or "", sc)
            elif m.role == "assistant" and m.tool_calls:
                # the arguments' text as sent (a JSON escape stays an escape in it)
                calls = self.envelope.render([(sc(c.name), self.envelope.written_args(c.arguments, sc))
                                              for c in m.tool_calls])
                role, content = "assistant", (sc(m.content or "") + "\n" + calls).strip()
            else:
                role, content = m.role, sc(m.content or "")
            if out and out[-1]["role"] == role:  # tool results and system texts merge into one turn
                out[-1]["content"] += "\n\n" + content
            else:
                out.append({"role": role, "content": content})
        return out




class Scrub(Protocol):
    def __call__(self, text: str) -> str: ...

    def data(self, value: Any) -> Any: ...


class _Same:
    """No scrubbing: the plain prompt text (for our own markup, measurements and exports)."""

    def __call__(self, text: str) -> str:
        return text

    def data(self, value: Any) -> Any:
        return value


def _tool_json(t: ToolSpec) -> dict:
    return {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}


def generic_jinja(chat_format: str, env: Envelope) -> str:
    """A Jinja chat template that renders exactly what ChatTemplate's generic path renders (tools in
    the system turn, calls in the family's envelope, tool results as user turns, same-role turns
    merged), for engines that render with Hugging Face's `apply_chat_template` (vLLM, SGLang): an
    exported model then sees the prompts it was fine-tuned on."""
    marker = "\x00TOOLS\x00"
    head, tail = tools_system_prompt([], env).replace("<tools>\n\n</tools>", marker).split(marker)
    lit = json.dumps  # a JSON string is a valid Jinja string literal
    return (
        "{%- set ns = namespace(turns=[]) -%}"
        "{%- if tools -%}{%- set listing = namespace(text='') -%}{%- for t in tools -%}"
        "{%- set f = t.function if t.function is defined else t -%}"
        "{%- set one = {'type': 'function', 'function': {'name': f.name, 'description': f.description or '', "
        "'parameters': f.parameters}} | tojson -%}"
        "{%- set listing.text = listing.text + ('\\n' if not loop.first else '') + one -%}{%- endfor -%}"
        f"{{%- set ns.turns = [{{'role': 'system', 'content': {lit(head)} + '<tools>\\n' + listing.text + "
        f"'\\n</tools>' + {lit(tail)}}}] -%}}"
        "{%- endif -%}"
        "{%- for m in messages -%}"
        "{%- if m.role == 'tool' -%}{%- set role, text = 'user', '<tool_response>\\n' + (m.content or '') + '\\n</tool_response>' -%}"
        "{%- elif m.role == 'assistant' and m.tool_calls -%}{%- set calls = namespace(text='') -%}"
        "{%- for c in m.tool_calls -%}{%- set f = c.function if c.function is defined else c -%}"
        "{%- set args = f.arguments if f.arguments is string else (f.arguments | tojson) -%}"
        f"{{%- set calls.text = calls.text + ({lit(env.sep)} if not loop.first else '') + {lit(env.open)} + "
        f"'{{\"name\": \"' + f.name + '\", \"{env.args_key}\": ' + args + '}}' + {lit(env.close)} -%}}"
        "{%- endfor -%}{%- set role, text = 'assistant', ((m.content or '') + '\\n' + calls.text) | trim -%}"
        "{%- else -%}{%- set role, text = m.role, (m.content or '') -%}{%- endif -%}"
        "{%- if ns.turns and ns.turns[-1].role == role -%}"
        "{%- set ns.turns = ns.turns[:-1] + [{'role': role, 'content': ns.turns[-1].content + '\\n\\n' + text}] -%}"
        "{%- else -%}{%- set ns.turns = ns.turns + [{'role': role, 'content': text}] -%}{%- endif -%}"
        "{%- endfor -%}{%- set messages = ns.turns -%}"
        + BUILTIN.get(chat_format or "chatml", BUILTIN["chatml"])
    )
