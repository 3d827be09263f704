"""The tokenizer's own split of a request's words: which next token copies a value the way the model reads it.

A model sees every text it was trained on in its tokenizer's own split ("Thessaloniki": The|ss|alon|iki),
so a value copied along another split is a path it has rarely seen, and it tends to stop there: a student
wrote "Thessa" (The|ss|a, where "a" led "alon" by 3.8 logits) and then closed the string 29.5 logits above
any piece that went on; "Brug" (B|rug, where "B" led "Bru" by 0.3). Owns the split of the windows of the
request it is asked about (a word or two, each tokenized once); copying.Copier asks it which pieces go on
along it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from edgeslm.decoding.said import found, starts_word

_GAP = re.compile(r"\s")
WINDOW = 64  # longest text tokenized at once: a run with no space in it (a URL, compact JSON) is not split
KEEP = 4096  # windows kept per request


class Splits:
    """`source`'s words as `tokenize` splits them: `next(value)`, the tokens that go on from a value along
    that split; `first(token, text)`, whether a value's first token begins a word's split."""

    def __init__(self, source: str, tokenize: Callable[[str], list[int]], piece: Callable[[int], bytes]):
        self.source, self.tokenize, self.piece = source, tokenize, piece
        self._splits: dict[tuple[int, int], list[tuple[int, int]]] = {}

    def _split(self, i: int, j: int) -> list[tuple[int, int]]:
        """source[i:j]'s tokens, each with the byte offset where it starts; [] where the window is longer
        than WINDOW or the pieces do not give its text back (a tokenizer that adds or normalizes)."""
        if (i, j) not in self._splits:
            text, out, at = self.source[i:j], [], 0
            if j - i <= 2 * WINDOW + 2:
                pieces = [(t, self.piece(t)) for t in self.tokenize(text)]
                for t, piece in pieces:
                    out.append((at, t))
                    at += len(piece)
                if b"".join(piece for _, piece in pieces) != text.encode():
                    out = []
            if len(self._splits) >= KEEP:
                self._splits.clear()
            self._splits[i, j] = out
        return self._splits[i, j]

    def _gap(self, after: int) -> int:
        """The first space at or after `after` (or the end), at most WINDOW on."""
        gap = _GAP.search(self.source, after, min(after + WINDOW + 1, len(self.source)))
        return gap.start() if gap else min(after + WINDOW + 1, len(self.source))

    def first(self, token: int, text: str) -> bool:
        """`token` (its piece `text`) is the first token of the split of a word the source begins with it."""
        return bool(text) and any(starts_word(self.source, i) and self._split(i, self._gap(i + len(text)))[:1] == [(0, token)]
                                  for i in found(self.source, text))

    def bare(self, text: str) -> set[int]:
        """The first tokens of the split of each word the source begins with `text` (" teaspoons" of "into teaspoons": "te" of
        te|as|poons, as a value begins it)."""
        return {s[0][1] for i in found(self.source, text) if starts_word(self.source, i) and (s := self._split(i, self._gap(i + 1)))}

    def next(self, value: str) -> set[int]:
        """The tokens that go on from `value` along the split, wherever the source holds it from a word's
        start and goes on after it. The window: from the value's last space (or its start) to the first
        space after its end and one more character; for a value of one word, also from the space before it, as the request's own
        tokens write the word: "Cz" of " Cz|yn|sz" goes on with "yn", though "Czynsz" alone splits C|zyn|sz."""
        out: set[int] = set()
        for i in found(self.source, value):
            end = i + len(value)
            if not (value and starts_word(self.source, i) and end < len(self.source)):
                continue
            w = max(i, *(self.source.rfind(c, i, end) for c in " \t\n"))
            if end - w > WINDOW:
                continue
            for a in (w, w - 1) if w == i and i and self.source[i - 1] == " " else (w,):
                n = len(self.source[a:end].encode())
                out.update(t for at, t in self._split(a, self._gap(end + 1)) if at == n)
        return out
