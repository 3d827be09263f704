"""Tool calls: how a family writes them (envelopes), how we describe tools in a prompt, and the schema
checks and bounds applied before decoding (the parsers of constrained output are decoding/parsing.py, parser_for).

Owns the text format of calls; knows nothing about tokens or grammars engines.
"""

from __future__ import annotations

import json
import secrets
import string
from dataclasses import dataclass

import jsonschema

from edgeslm.types import ToolSpec


@dataclass(frozen=True)
class Envelope:
    """One family's way of writing a tool call: open + {"name": "N", "<args_key>": ARGS} + close."""

    name: str
    open: str
    close: str
    sep: str
    args_key: str
    instructions: str
    parallel: bool = True  # several calls per turn (Llama 3.x templates refuse a turn with more than one)
    # how the arguments are written: "json", or "python" / "functiongemma" (decoding/callsyntax.py)
    syntax: str = "json"
    grouped: bool = False  # open and close wrap the whole list of calls, not each call (LFM2's [f(), g()])
    mark: str = ""  # what marks a call when it is not the stripped `open` (LFM2: the token before its "[")

    @property
    def start(self) -> str:
        """The text that marks the output as a tool call (what auto mode watches for)."""
        if self.syntax == "python":
            return self.open
        if self.syntax == "functiongemma":
            return self.open + "call:"
        return self.open + '{"name": "'

    @property
    def marker(self) -> str:
        """Plain text may not open with this (so a call can never come back as text)."""
        return self.mark or self.open.strip() or self.start

    @property
    def result_open(self) -> str:
        """What opens a tool's result where a prompt shows it (`result`): an answer that writes it echoes the
        result block into text (preparation.Preparer._shun)."""
        return "<start_function_response>" if self.syntax == "functiongemma" else "<tool_response>"

    def head(self, tool: str) -> str:
        """What precedes a call's arguments (a grouped list's opener excluded: it comes once)."""
        if self.syntax == "python":
            return f"{tool}("
        if self.syntax == "functiongemma":
            return f"{self.start}{tool}"
        return f'{self.start}{tool}", "{self.args_key}": '

    def tail(self) -> str:
        if self.syntax == "python":
            return ")"
        if self.syntax == "functiongemma":
            return self.close
        return "}" + self.close

    def render(self, calls: list[tuple[str, str]]) -> str:
        if self.syntax == "json":
            return self.sep.join(self.head(n) + a + self.tail() for n, a in calls)
        from edgeslm.decoding import callsyntax

        written = [callsyntax.render(self.syntax, n, a) for n, a in calls]
        if self.grouped:
            return self.open + self.sep.join(written) + self.close
        return self.sep.join(self.open + w + self.close for w in written)

    def result(self, name: str, content: str, scrub=None) -> str:
        """A tool's result as a prompt shows it to a template that has no tool role. `scrub`
        (decoding/prompt.Scrubber): applied to the text, or to the values once a JSON result is decoded
        (a JSON escape would otherwise turn back into the text it hides)."""
        text, data = (scrub, scrub.data) if scrub is not None else (str, lambda v: v)
        if self.syntax == "functiongemma":
            from edgeslm.decoding import callsyntax

            try:
                value = json.loads(content)
            except ValueError:
                value = None
            value = data(value) if isinstance(value, dict) else {"value": text(content)}
            body = callsyntax.render(self.syntax, name, json.dumps(value, ensure_ascii=False))
            return "<start_function_response>response:" + body[len("call:"):] + "<end_function_response>"
        return f"<tool_response>\n{text(content)}\n</tool_response>"

    def written_args(self, arguments: str, scrub=None) -> str:
        """A call's arguments as `render` takes them from a conversation: JSON text as sent (an escape
        stays an escape), or for the other syntaxes, which write the values themselves, JSON whose
        decoded values went through `scrub`."""
        if scrub is None:
            return arguments
        if self.syntax == "json":
            return scrub(arguments)
        return json.dumps(scrub.data(json.loads(arguments)), ensure_ascii=False)


ENVELOPES = {
    "hermes": Envelope(
        "hermes",
        open="<tool_call>\n",
        close="\n</tool_call>",
        sep="\n",
        args_key="arguments",
        instructions=(
            "For each function call, return a json object with function name and arguments within "
            "<tool_call></tool_call> XML tags:\n<tool_call>\n"
            '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
        ),
    ),
    # LFM2 / LFM2.5: a Python list of calls between its tool-call tokens (its template, llama.cpp's tree)
    "lfm2": Envelope(
        "lfm2",
        open="<|tool_call_start|>[",
        close="]<|tool_call_end|>",
        sep=", ",
        args_key="",
        instructions=(
            "Output function calls as a Python list between <|tool_call_start|> and <|tool_call_end|>: "
            '<|tool_call_start|>[function_name(argument="value")]<|tool_call_end|>'
        ),
        syntax="python",
        grouped=True,
        mark="<|tool_call_start|>",
    ),
    # FunctionGemma: call:NAME{key:value} with strings between <escape> tokens, one call per pair of markers
    "functiongemma": Envelope(
        "functiongemma",
        open="<start_function_call>",
        close="<end_function_call>",
        sep="",
        args_key="",
        instructions="",
        syntax="functiongemma",
    ),
    "llama3-json": Envelope(
        "llama3-json",
        open="",
        close="",
        sep="; ",
        args_key="parameters",
        instructions=(
            "Respond with a JSON for a function call with its proper arguments that best answers the given "
            'prompt, in the format {"name": function name, "parameters": dictionary of argument name and '
            "its value}. Do not use variables."
        ),
        parallel=False,
    ),
}


def envelope_for(tool_format: str) -> Envelope:
    return ENVELOPES.get(tool_format, ENVELOPES["hermes"])


def format_of_template(source: str | None) -> str | None:
    """The call format a model's own chat template teaches it, where the template says: Qwen2.5/3,
    Hermes 2/3, SmolLM3 and Granite 4 write `<tool_call>` JSON (hermes); Llama 3.1-3.3 write a bare
    {"name", "parameters"} object after their header (llama3-json); LFM2 a Python list (lfm2);
    FunctionGemma its own call:NAME{...} (functiongemma). None when the template names no
    format (then the catalog's `tool_format` holds)."""
    if not source:
        return None
    if "<start_function_call>" in source or "<start_function_declaration>" in source:
        return "functiongemma"
    if "<|tool_call_start|>" in source or "List of tools: [" in source:  # LFM2's template lists its tools so
        return "lfm2"
    if "<tool_call>" in source:
        return "hermes"
    if "<|start_header_id|>" in source and '"parameters": ' in source:
        return "llama3-json"
    return None


def tools_system_prompt(tools: list[ToolSpec], env: Envelope) -> str:
    if env.syntax == "functiongemma":  # its developer turn, as FunctionGemma's template writes it
        from edgeslm.decoding.callsyntax import fg_declaration

        return ("You are a model that can do function calling with the following functions"
                + "".join(fg_declaration(t.name, t.description, t.parameters) for t in tools))
    listing = "\n".join(
        json.dumps({"type": "function", "function": {"name": t.name, "description": t.description,
                                                      "parameters": t.parameters}}, ensure_ascii=False)
        for t in tools
    )
    # The tool list comes first: small base models continue what opens the turn (measured on
    # Gemma 3 270M: 12/12 BFCL prompts opened a call this way, 0/12 with the instructions first).
    return (
        f"<tools>\n{listing}\n</tools>\n\n"
        "You are provided with function signatures within <tools></tools> XML tags. You may call one or "
        "more functions to assist with the user query. Don't make assumptions about what values to plug "
        f"into functions.\n{env.instructions}"
    )


_ID_CHARS = string.ascii_letters + string.digits


def new_call_id() -> str:
    return "call_" + "".join(secrets.choice(_ID_CHARS) for _ in range(24))


def as_grammar_writes(args: dict, schema: dict | None) -> str:
    """Call arguments as the constrained grammar writes them: keys in the schema's property order
    (undeclared ones last), ", " and ": " separators, no other whitespace."""
    order = list((schema or {}).get("properties", {}))
    ranked = sorted(args.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order))
    return json.dumps(dict(ranked), ensure_ascii=False, separators=(", ", ": "))


def validate_arguments(arguments: str, schema: dict) -> str | None:
    """None when `arguments` is a JSON object valid under `schema`; else why not."""
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError as e:
        return f"not JSON: {e}"
    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError as e:
        return e.message
    return None
