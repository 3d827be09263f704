"""Output constraints: tool-call envelopes, JSON Schema and "text, but not a call" as llguidance
grammars, and the per-step token mask they put on the logits.

Owns building the llguidance tokenizer of a model and grammar construction.
Knows nothing about HTTP or prompts.
"""

from __future__ import annotations

import json

import llguidance
import numpy as np

from edgeslm.decoding.tools import Envelope, bounded
from edgeslm.errors import GrammarError
from edgeslm.types import OutputSpec

_JSON_STYLE = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


def build_tokenizer(backend) -> llguidance.LLTokenizer:
    """The llguidance tokenizer of a loaded model (~2 s for a 262k vocab: build once per model)."""
    if not backend.capabilities.native_vocab:
        raise NotImplementedError("constrained decoding needs a backend with a llama.cpp vocab")
    from llguidance.llamacpp import lltokenizer_from_vocab

    return lltokenizer_from_vocab(backend.native_vocab(), eos_token=sorted(backend.eog_tokens))


def _lit(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _json_rule(schema: dict) -> str:
    return "%json " + json.dumps({**schema, "x-guidance": _JSON_STYLE}, ensure_ascii=False)


def _regex_escape(text: str) -> str:
    out = []
    for ch in text:
        if ch in "\n\t\r":
            out.append({"\n": "\\n", "\t": "\\t", "\r": "\\r"}[ch])
        elif ch in ".^$*+?()[]{}|\\/":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def _text_rule(env: Envelope) -> str:
    # Plain text may not open with the call marker, nor with the prompt's own "<tools>" listing
    # (pretrained small models echo the start of their prompt).
    starts = "|".join(_regex_escape(m) for m in (env.marker, "<tools>"))
    return "TEXT: /(?s:.+)/ & ~/(?s:[ \\t\\r\\n]*(" + starts + ").*)/"


def grammar_for(spec: OutputSpec, env: Envelope, max_chars: int, max_calls: int) -> str | None:
    """The lark grammar for an output spec, or None when the output is free text."""
    if spec.kind == "json":
        schema = bounded(spec.schema or {"type": "object"}, max_chars)
        return f"start: {_json_rule(schema)}\n"
    if spec.kind != "tools":
        return None
    if spec.tool_choice == "none":
        return f"start: TEXT\n{_text_rule(env)}\n"
    tools = [t for t in spec.tools if spec.tool_choice in ("auto", "required") or t.name == spec.tool_choice]
    lines = []
    for i, t in enumerate(tools):
        lines.append(f"call_{i}: {_lit(env.head(t.name))} {_json_rule(bounded(t.parameters, max_chars))} {_lit(env.tail())}")
    lines.append("call: " + " | ".join(f"call_{i}" for i in range(len(tools))))
    n = max_calls if spec.parallel else 1
    lines.append("calls: " + " | ".join(" ".join(["call"] + [f"{_lit(env.sep)} call"] * k) for k in range(n)))
    if spec.tool_choice == "auto":
        lines += ["start: calls | TEXT", _text_rule(env)]
    else:
        lines.append("start: calls")
    return "\n".join(lines) + "\n"


class Constraint:
    """One request's grammar state: masks logits in place and follows the sampled tokens."""

    def __init__(self, tokenizer: llguidance.LLTokenizer, grammar: str, n_vocab: int):
        self.matcher = llguidance.LLMatcher(tokenizer, grammar, log_level=0)
        if self.matcher.is_error():
            raise GrammarError(f"cannot build a grammar from this schema: {self.matcher.get_error()}")
        self.n_vocab = n_vocab
        self._mask = np.zeros((tokenizer.vocab_size + 31) // 32, dtype=np.int32)
        self._bit = np.arange(32, dtype=np.int64)

    def apply(self, logits: np.ndarray) -> None:
        """Set the logits of every token the grammar forbids to -inf."""
        m = self._mask
        self.matcher.unsafe_compute_mask_ptr(m.ctypes.data, m.nbytes)
        if self.matcher.is_error():
            raise GrammarError(f"grammar failed: {self.matcher.get_error()}")
        words = np.flatnonzero(m)
        if len(words) == len(m) and (m == -1).all():
            return
        # expand only the non-zero mask words: cheap when few tokens are allowed (the usual case)
        bits = (m[words].astype(np.int64)[:, None] >> self._bit) & 1
        allowed = (words[:, None] * 32 + self._bit)[bits.astype(bool)]
        allowed = allowed[allowed < self.n_vocab]
        keep = logits[allowed]
        logits.fill(-np.inf)
        logits[allowed] = keep

    def consume(self, token: int) -> None:
        if not self.matcher.consume_token(token):
            raise GrammarError(f"sampled token {token} violates the grammar: {self.matcher.get_error()}")

    @property
    def finished(self) -> bool:
        return self.matcher.is_stopped()
