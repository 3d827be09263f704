"""The tokenizer's own split of a request's words: which next token copies a value the way the model reads it.

A model sees every text it was trained on in its tokenizer's own split ("Thessaloniki": The|ss|alon|iki),
so a value copied along another split is a path it has rarely seen, and it tends to stop there: a student
wrote "Thessa" (The|ss|a, where "a" led "alon" by 3.8 logits) and then closed the string 29.5 logits above
any piece that went on; "Brug" (B|rug, where "B" led "Bru" by 0.3). Owns the split of each piece of the
request it is asked about (tokenized once); copying.Copier asks it which of the pieces it lifts follow it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from edgeslm.decoding.said import found, starts_word

_GAP = re.compile(r"\s")


class Splits:
    """`source`'s words as `tokenize` splits them: `next(value)`, the tokens that go on from a value along
    that split; `first(piece)`, whether a value's first token begins a word's split."""

    def __init__(self, source: str, tokenize: Callable[[str], list[int]], piece: Callable[[int], bytes]):
        self.source, self.tokenize, self.piece = source, tokenize, piece
        self._splits: dict[tuple[int, int], list[tuple[int, int]]] = {}

    def _split(self, i: int, j: int) -> list[tuple[int, int]]:
        """source[i:j]'s tokens, each with the byte offset where it starts."""
        if (i, j) not in self._splits:
            out, at = [], 0
            for t in self.tokenize(self.source[i:j]):
                out.append((at, t))
                at += len(self.piece(t))
            self._splits[i, j] = out
        return self._splits[i, j]

    def _chunk(self, i: int, after: int) -> list[tuple[int, int]]:
        """The split of the source from i to the first space at or after `after`."""
        gap = _GAP.search(self.source, after)
        return self._split(i, gap.start() if gap else len(self.source))

    def first(self, token: int, text: str) -> bool:
        """`token` (its piece `text`) is the first token of the split of a word the source begins with it."""
        return bool(text) and any(starts_word(self.source, i) and self._chunk(i, i + len(text))[0][1] == token
                                  for i in found(self.source, text))

    def next(self, value: str) -> set[int]:
        """The tokens that go on from `value` along the split, wherever the source holds it from a word's
        start and goes on after it (to the end of the word after it where it stops at a space)."""
        out: set[int] = set()
        n = len(value.encode())
        for i in found(self.source, value):
            end = i + len(value)
            if value and starts_word(self.source, i) and end < len(self.source):
                out.update(t for at, t in self._chunk(i, end + 1) if at == n)
        return out
