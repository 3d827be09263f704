"""Output constraints: tool-call envelopes, JSON Schema and "text, but not a call" as llguidance
grammars, and the per-step token mask they put on the logits.

Owns building the llguidance tokenizer of a model and grammar construction.
Knows nothing about HTTP or prompts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
from pathlib import Path

import llguidance
import numpy as np

from edgeslm.decoding import callsyntax
from edgeslm.decoding.schemas import Bounds, bounded
from edgeslm.decoding.tools import Envelope
from edgeslm.errors import BackendError, GrammarError
from edgeslm.types import OutputSpec

log = logging.getLogger("edgeslm.constraints")
_JSON_STYLE = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


def _token_table(backend) -> list[bytes]:
    """Every token's bytes, control tokens marked with a 0xFF prefix (llguidance's convention)."""
    import ctypes

    import llama_cpp

    vocab, buf, out = backend.native_vocab(), ctypes.create_string_buffer(16 * 1024), []
    for t in range(backend.n_vocab):
        n = llama_cpp.llama_token_to_piece(vocab, t, buf, len(buf) - 1, 0, True)
        tok = buf.raw[: max(n, 0)]
        attr = llama_cpp.llama_vocab_get_attr(vocab, t)
        if attr & llama_cpp.LLAMA_TOKEN_ATTR_CONTROL or (
            attr & llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED and tok.startswith(b"<") and tok.endswith(b">")
        ):
            tok = b"\xff" + tok
        out.append(tok)
    return out


class Vocab:
    """A model's llguidance tokenizer, its token bytes, and per-token masks for the digit bound."""

    def markers(self, env: Envelope) -> frozenset[str]:
        """The envelope's markers that are single special tokens of this model: its open and close, or
        tags within them (LFM2's `<|tool_call_start|>` before its "["), and FunctionGemma's `<escape>`."""
        tags = re.findall(r"<[^<>\s]+>", env.open + env.close + (callsyntax.ESCAPE if env.syntax == "functiongemma" else ""))
        return frozenset(m for m in (env.open.strip(), env.close.strip(), *tags) if m and m in self.specials)

    def __init__(self, ll: llguidance.LLTokenizer, table: list[bytes], n_vocab: int):
        self.ll, self.table = ll, table
        self.words = (max(ll.vocab_size, n_vocab) + 31) // 32
        lead = np.zeros(self.words * 32, dtype=np.int32)  # digits each token starts with
        for t, tok in enumerate(table):
            n = len(tok) - len(tok.lstrip(b"0123456789"))
            if n:
                lead[t] = n
        self.max_lead = int(lead.max())
        self.specials = frozenset(t[1:].decode("utf-8", "replace") for t in table if t.startswith(b"\xff"))
        # keep[k]: the bitmask of tokens that start with at most k digits (llguidance's bit layout)
        self.keep = [np.packbits(lead <= k, bitorder="little").view(np.int32) for k in range(self.max_lead)]


def marker_pieces(backend, vocab: Vocab, env: Envelope) -> dict[int, bytes]:
    """The text of the envelope's markers that are control tokens of the model, by token id. llama.cpp
    renders a control token as nothing (LFM2's `<|tool_call_start|>`), and the output parser must see
    the marker to know a call began."""
    out = {}
    for m in vocab.markers(env):
        ids = backend.tokenize(m, add_bos=False, special=True)
        if len(ids) == 1:
            out[ids[0]] = m.encode()
    return out


def call_openers(vocab: Vocab, env: Envelope, pieces: dict[int, bytes]) -> np.ndarray:
    """The tokens that can begin a call as a response's first token: whose text, less leading
    whitespace, begins the envelope's start (`<`, `<tool`, ...), and its marker tokens (`pieces`)."""
    start = env.start.encode()
    ids = [t for t, tok in enumerate(vocab.table)
           if tok[:1] != b"\xff" and (bare := tok.lstrip(b" \t\r\n")) and start.startswith(bare)]
    ids += [t for t, text in pieces.items() if start.startswith(text.lstrip(b" \t\r\n"))]
    return np.unique(np.asarray(ids, dtype=np.int64))


def comma_tokens(vocab: Vocab) -> np.ndarray:
    """The tokens that go on to another argument or close the arguments (arg_bias's and close_bias's,
    decoding/copying.py): whose text, less leading whitespace, opens with "," or "}", or with a closing
    quote and then one of them (`",`, `"}`: Gemma writes the end of a string value and what follows as one
    token)."""
    def leans(tok: bytes) -> bool:
        tok = tok.lstrip(b" \t\r\n")
        return tok[:1] in (b",", b"}") or (tok[:1] == b'"' and tok[1:].lstrip(b" \t\r\n")[:1] in (b",", b"}"))
    return np.asarray([t for t, tok in enumerate(vocab.table) if leans(tok)], dtype=np.int64)


def build_tokenizer(backend, cache_dir: Path | None = None) -> Vocab:
    """The llguidance tokenizer of a loaded model. Reading 262k token strings through ctypes takes
    ~2 s, so the table is cached on disk per model file (size + mtime + path)."""
    if not backend.capabilities.native_vocab:  # a Hugging Face tokenizer (the ONNX backend)
        from llguidance.hf import from_tokenizer  # (not `import llguidance.hf`: that would shadow the module)

        ll = from_tokenizer(backend.hf_tokenizer(), n_vocab=backend.n_vocab, eos_token=sorted(backend.eog_tokens))
        return Vocab(ll, [backend.piece(t) for t in range(backend.n_vocab)], backend.n_vocab)
    import ctypes

    import llama_cpp

    table = None
    cache = None
    if cache_dir is not None:
        st = backend.path.stat()
        key = hashlib.sha256(f"{backend.path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:32]
        cache = cache_dir / f"{key}.npz"
        if cache.is_file():
            try:
                with np.load(cache) as z:
                    blob, ends = z["blob"].tobytes(), z["ends"]
                table = [blob[s:e] for s, e in zip(np.r_[0, ends[:-1]], ends, strict=False)]
            except (OSError, ValueError, KeyError):
                table = None  # a damaged cache is rebuilt
    if table is None or len(table) != backend.n_vocab:
        table = _token_table(backend)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(".tmp.npz")
            np.savez(tmp, blob=np.frombuffer(b"".join(table), dtype=np.uint8),
                     ends=np.cumsum([len(t) for t in table], dtype=np.int64))
            os.replace(tmp, cache)
    fptr = ctypes.cast(llama_cpp.llama_cpp._lib.llama_tokenize, ctypes.c_void_p).value
    ll = llguidance.LLTokenizer.from_llamacpp(  # type: ignore[attr-defined]  # not in llguidance's stubs
        tokens=table, vocab_ptr=backend.native_vocab(), tokenize_fptr=fptr,
        eos_token=sorted(backend.eog_tokens), slices=None,
    )
    return Vocab(ll, table, backend.n_vocab)


def _lit(text: str, specials: frozenset[str] = frozenset()) -> str:
    """A grammar literal; a marker that is one special token of the model (Qwen's `<tool_call>`) is
    referenced as that token, which is how the model writes it (its spelling in bytes is another,
    out-of-distribution token sequence that llama.cpp's tokenizer would not even produce)."""
    parts, rest = [], text
    while rest:
        hits = [(rest.find(s), s) for s in specials if s and s in rest]
        if not hits:
            parts.append(json.dumps(rest, ensure_ascii=False))
            break
        at, s = min(hits)
        if at:
            parts.append(json.dumps(rest[:at], ensure_ascii=False))
        parts.append(s)
        rest = rest[at + len(s):]
    return " ".join(parts) or '""'


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
    """TEXT: plain text with the call marker (a tag's opening: `<tool_call`) nowhere in it (a call never
    comes back as content), not opening with the prompt's own "<tools>" listing (pretrained small models
    echo the start of their prompt). SAID: such text with something besides whitespace in it (what may come before a call)."""
    m = env.marker
    # a tag's opening, whatever follows: the 270M model wrote "<tool_call >" around a tool's result in text
    marker = _regex_escape(m[:-1] if m.startswith("<") and m.endswith(">") and len(m) > 2 else m)
    return ("TEXT: /(?s:.+)/ & ~/(?s:[ \\t\\r\\n]*<tools>.*)/ & ~/(?s:.*" + marker + ".*)/\n"
            "SAID: TEXT & /(?s:.*[^ \\t\\r\\n].*)/")


def _said_then_calls(env: Envelope, names: list[str], calls_of, specials: frozenset[str]) -> list[str]:
    """Text followed by calls (`said_calls`): the text goes to `content`, the calls to `tool_calls`.
    A marker that is one special token of the model (Qwen's `<tool_call>`) simply follows the text; a
    marker written in bytes ends the text's own lexeme (LEAD: a lexeme cannot end inside the text and
    leave the marker to the next one), and the first call goes on after it."""
    if env.marker in specials:
        return ["said_calls: SAID " + calls_of("call")]
    lines = [f"LEAD: SAID {_lit(env.marker)}"]
    if env.grouped:  # the list opener's rest ("[" after LFM2's marker), then the calls
        rest = env.open[len(env.marker):]
        return lines + ["said_calls: LEAD " + calls_of("call", (_lit(rest, specials) + " ") if rest else "")]
    for i, name in enumerate(names):
        head = env.head(name)  # every envelope's call opens with its marker (Envelope.marker)
        lines.append(f"after_{i}: {_lit(head[len(env.marker):], specials)} args_{i} {_lit(env.tail(), specials)}")
    lines.append("after: " + " | ".join(f"after_{i}" for i in range(len(names))))
    lines.append("said_calls: LEAD " + calls_of("after"))
    return lines


def grammar_for(spec: OutputSpec, env: Envelope, bounds: Bounds, max_calls: int,
                specials: frozenset[str] = frozenset()) -> str | None:
    """The lark grammar for an output spec, or None when the output is free text. `specials`: the
    envelope's markers that are single special tokens of the model (Vocab.markers). With tool_choice
    auto the output is calls, text, or text then calls; the marker is in no text."""
    if spec.kind == "json":
        schema = bounded(spec.schema or {"type": "object"}, bounds)
        return f"start: {_json_rule(schema)}\n"
    if spec.kind != "tools":
        return None
    if spec.tool_choice == "none":
        return f"start: TEXT\n{_text_rule(env)}\n"
    tools = [t for t in spec.tools if spec.tool_choice in ("auto", "required") or t.name == spec.tool_choice]
    lines = []
    rules = None if env.syntax == "json" else callsyntax.Rules(env.syntax, _json_rule, _lit(callsyntax.ESCAPE, specials))
    for i, t in enumerate(tools):
        if rules is None:
            lines.append(f"args_{i}: {_json_rule(bounded(t.parameters, bounds))}")
        else:  # these syntaxes write no JSON numbers in quotes-aware text: bounds go into the schema
            bound = bounded(t.parameters, dataclasses.replace(bounds, numbers_in_schema=True))
            lines.append(f"args_{i}: {rules.arguments(bound)}")
        lines.append(f"call_{i}: {_lit(env.head(t.name), specials)} args_{i} {_lit(env.tail(), specials)}")
    lines += rules.lines if rules is not None else []
    lines.append("call: " + " | ".join(f"call_{i}" for i in range(len(tools))))
    n = max_calls if spec.parallel and env.parallel else 1
    # a grouped envelope (LFM2) opens once, before the first call, and closes after the last
    opener, closer = (_lit(env.open, specials) + " ", " " + _lit(env.close, specials)) if env.grouped else ("", "")

    def calls_of(first: str, lead: str | None = None) -> str:  # `first`, then up to n-1 more calls
        alts = " | ".join(" ".join([first] + [f"{_lit(env.sep, specials)} call"] * k) for k in range(n))
        return (opener if lead is None else lead) + (f"({alts})" if n > 1 else alts) + closer

    lines.append("calls: " + calls_of("call"))
    if spec.tool_choice == "auto":
        lines += ["start: calls | TEXT | said_calls", _text_rule(env)]
        lines += _said_then_calls(env, [t.name for t in tools], calls_of, specials)
    else:
        lines.append("start: calls")
    return "\n".join(lines) + "\n"


class DigitLimit:
    """Bounds runs of digits in the JSON numbers of constrained output, token by token.

    Small models run digits on ("days": 3000000000000000). Bounding numbers in the schema
    (minimum/maximum) would also forbid exponents, so 8.854e-12 could not be written; instead the
    output is scanned as it is decoded and, inside a number, tokens that would make the integer part,
    the decimals or the exponent longer than its limit are masked out. Strings are never limited here."""

    def __init__(self, limits: tuple[int, int, int]):
        self.limits = limits
        self.in_string = self.escaped = False
        self.part, self.run = -1, 0  # part: -1 outside a number, 0 integer, 1 decimals, 2 exponent

    def budget(self) -> int | None:
        """How many more digits may follow now, or None when unlimited (inside a string)."""
        if self.in_string:
            return None
        return self.limits[max(self.part, 0)] - self.run

    def feed(self, data: bytes) -> None:
        for c in data:
            if self.in_string:
                if self.escaped:
                    self.escaped = False
                elif c == 0x5C:  # backslash
                    self.escaped = True
                elif c == 0x22:
                    self.in_string = False
            elif 0x30 <= c <= 0x39:
                self.part, self.run = max(self.part, 0), self.run + 1
            elif c == 0x2E and self.part == 0:  # "."
                self.part, self.run = 1, 0
            elif c in (0x65, 0x45) and self.part in (0, 1):  # "e" / "E"
                self.part, self.run = 2, 0
            elif c in (0x2B, 0x2D) and self.part == 2 and self.run == 0:  # exponent sign
                pass
            else:
                self.in_string = c == 0x22
                self.part, self.run = -1, 0


class Constraint:
    """One request's grammar state: the token mask per step, forced tokens, and what was sampled."""

    samples = False  # the engine samples, with mask()

    def __init__(self, vocab: Vocab, grammar: str, digits: tuple[int, int, int] | None = None):
        self.matcher = llguidance.LLMatcher(vocab.ll, grammar, log_level=0)
        if self.matcher.is_error():
            log.info("grammar refused: %s", self.matcher.get_error())
            raise GrammarError(f"cannot build a grammar from this schema: {_public(self.matcher.get_error())}")
        self.vocab = vocab
        self.digits = DigitLimit(digits) if digits else None
        # the kernel reads ceil(n_vocab/32) words; llguidance fills its own vocabulary's worth
        self._words = (vocab.ll.vocab_size + 31) // 32
        self._mask = np.zeros(vocab.words, dtype=np.int32)
        # the first mask now, while the request can still get a 400: a schema with no finite value
        # (`{"$ref": "#"}`) fails here rather than on the worker
        self.matcher.unsafe_compute_mask_ptr(self._mask.ctypes.data, self._words * 4)
        if self.matcher.is_error() or not self._mask.any():
            log.info("grammar has no first token: %s", self.matcher.get_error())
            raise GrammarError("this schema admits no JSON value the grammar can start (does it refer to itself "
                               "with no way to end?)", code="schema_unsatisfiable")

    def mask(self) -> np.ndarray | None:
        """The allowed-token bitmask for the next step (bit i = token i), or None if all are allowed."""
        m = self._mask
        self.matcher.unsafe_compute_mask_ptr(m.ctypes.data, self._words * 4)
        if self.matcher.is_error():
            raise self._failed("computing the token mask")
        budget = self.digits.budget() if self.digits else None
        if budget is not None and budget < self.vocab.max_lead:
            limited = m & self.vocab.keep[max(budget, 0)]
            if limited.any():  # a number can always end after a digit; never leave nothing to sample
                m[:] = limited
        return None if (m == -1).all() else m

    def _advance(self, tokens: list[int]) -> None:
        if self.digits:
            for t in tokens:
                self.digits.feed(self.vocab.table[t])

    def consume(self, token: int) -> None:
        if not self.matcher.consume_token(token):
            raise self._failed(f"consuming sampled token {token}")
        self._advance([token])

    def forced(self, limit: int) -> list[int]:
        """Tokens the grammar allows no alternative to, consumed already; at most `limit`."""
        tokens = self.matcher.compute_ff_tokens()[: max(limit, 0)]
        if tokens and not self.matcher.consume_tokens(tokens):
            raise self._failed("consuming forced tokens")
        self._advance(tokens)
        return tokens

    def _failed(self, doing: str) -> BackendError:
        """The grammar engine's state stays in the log (it holds the grammar and the parser's stack)."""
        log.error("grammar failed while %s: %s", doing, self.matcher.get_error())
        return BackendError("the output grammar failed while decoding; the server log has the details",
                            code="grammar_failed")

    @property
    def finished(self) -> bool:
        return self.matcher.is_stopped()

    def close(self) -> None:
        pass


def _public(error: str | None) -> str:
    """The part of llguidance's message a caller can act on: its first line, without grammar text."""
    first = (error or "unknown error").strip().splitlines()[0] if (error or "").strip() else "unknown error"
    return first[:200]
