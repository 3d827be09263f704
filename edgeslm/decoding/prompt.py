"""Prompt tokens where only the chat template's markup can become control tokens.

A tokenizer asked to parse special tokens turns the *text* `<end_of_turn>` (or Qwen's `<tool_call>`)
into the control token wherever it appears. Tokenizing a whole rendered prompt that way lets any field
a client fills (user, system or assistant text, tool results, tool descriptions, call arguments) close
the turn, open a model turn and write a call the template never produced.

So the fields are scrubbed before the template renders them: every text in them that names a guarded
token of this model (a control token, or a token the template itself writes as markup, such as Qwen's
`<tool_call>` and `<tool_response>`), and every character of the placeholder range (Unicode plane 16),
is swapped for a private placeholder character. In the rendered prompt every guarded text left is the
template's own markup. The prompt is cut where the tokenizer would cut it, at its special tokens; the
markup becomes its tokens, and each piece between gets its placeholders back and is tokenized as
plain text, cut after the first character of each guarded text so no tokenizer can match it whole.
Other user-defined tokens (Gemma's `<table>`, runs of newlines) stay what the tokenizer makes of text.
For a prompt whose fields name no guarded token this is exactly the tokenizer's own parse (llama.cpp
also tokenizes the pieces between special tokens one by one, with the same whitespace stripping).
Serving and fine-tuning both take their prompt tokens from here.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from edgeslm.backends.base import SpecialToken
from edgeslm.errors import InvalidRequest

_PLANE16 = "\U00100000-\U0010fffd"
_MAX_PLACEHOLDERS = 0xFFFD


def _alternation(texts) -> str:
    """A regex matching any of `texts`, the longest at each position (as llama.cpp matches), written as a
    trie: a flat alternation of Gemma's 6,000 special texts makes `re` try each of them at every character
    (30 s for a 1 MB message; the trie takes well under a second)."""
    trie: dict = {}
    for t in texts:
        node = trie
        for ch in t:
            node = node.setdefault(ch, {})
        node[""] = {}

    def pattern(node: dict) -> str:
        alts = [re.escape(ch) + pattern(child) for ch, child in sorted(node.items()) if ch]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        if "" in node:  # a text ends here, and longer ones go on: try them first (greedy)
            return ("(?:" + body + ")?") if len(alts) == 1 else body + "?"
        return body

    return pattern(trie)


class Specials:
    """The texts a model's tokenizer reads as special tokens, and which of them fields may never produce:
    control and unknown tokens, and user-defined ones that occur in `markup` (the template's own text)."""

    def __init__(self, tokens: dict[str, SpecialToken], markup: str):
        self.tokens = {t: s for t, s in tokens.items() if t}
        self.guarded = frozenset(t for t, s in self.tokens.items()
                                 if s.kind != "user" or (t.strip() and t in markup))
        self.markup = re.compile(f"({_alternation(self.tokens)})") if self.tokens else None
        alts = _alternation(self.guarded)
        self.in_data = re.compile(f"{alts}|[{_PLANE16}]" if alts else f"[{_PLANE16}]")

    def scrubber(self) -> Scrubber:
        return Scrubber(self)


class Scrubber:
    """One prompt's placeholders: what each stands for, so the pieces get their text back."""

    def __init__(self, specials: Specials):
        self.specials = specials
        self.table: dict[str, str] = {}  # placeholder -> the text it hides
        self._of: dict[str, str] = {}  # text -> its placeholder

    def __call__(self, text: str) -> str:
        """`text` (a field's value) with every special-token text and plane-16 character hidden."""
        if not isinstance(text, str) or not text:
            return text
        return self.specials.in_data.sub(self._hide, text)

    def _hide(self, m: re.Match) -> str:
        got = self._of.get(m.group())
        if got is None:
            if len(self.table) >= _MAX_PLACEHOLDERS:
                raise InvalidRequest("the request holds too many distinct special-token texts and private-use "
                                     f"characters (over {_MAX_PLACEHOLDERS})", param="messages",
                                     code="too_many_special_texts")
            got = self._of[m.group()] = chr(0x100000 + len(self.table))
            self.table[got] = m.group()
        return got

    def pieces(self, text: str) -> list[str]:
        """`text` with its placeholders' texts back, cut after the first character of each guarded text
        (a tokenizer matches user-defined tokens even when told not to parse specials)."""
        if not self.table:
            return [text]
        out, cur, at = [], [], 0
        for m in re.finditer(f"[{_PLANE16}]", text):
            cur.append(text[at:m.start()])
            original = self.table.get(m.group(), m.group())
            if original in self.specials.guarded:
                out.append("".join(cur) + original[0])
                cur = [original[1:]]
            else:
                cur.append(original)
            at = m.end()
        cur.append(text[at:])
        out.append("".join(cur))
        return [p for p in out if p]

    def data(self, value):
        """Every string of a JSON-like value (keys too) scrubbed: tool schemas, call arguments."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self(k): self.data(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.data(v) for v in value]
        return value


def encode(rendered: str, scrub: Scrubber, tokenize: Callable[[str], list[int]]) -> list[int]:
    """The tokens of a prompt rendered from scrubbed fields: the markup's special-token texts as their
    tokens, every other piece (placeholders restored) through `tokenize`, which must not parse specials."""
    sp = scrub.specials
    parts = sp.markup.split(rendered) if sp.markup else [rendered]
    out: list[int] = []
    # parts alternate: text, special, text, special, ..., text
    for i in range(0, len(parts), 2):
        text = parts[i]
        before = sp.tokens[parts[i - 1]] if i > 0 else None  # llama.cpp's LSTRIP/RSTRIP attributes
        after = sp.tokens[parts[i + 1]] if i + 1 < len(parts) else None
        if before is not None and before.rstrip:
            text = text.lstrip()
        if after is not None and after.lstrip:
            text = text.rstrip()
        for piece in scrub.pieces(text) if text else ():
            out += tokenize(piece)
        if after is not None:
            out.append(after.id)
    return out
