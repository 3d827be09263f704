"""What each sequence of a unified KV cache holds, kept beside llama.cpp (which cannot say): the tokens,
the adapter set they were computed under, and which KV cell holds each token. A prefix one sequence
shares with another (llama_memory_seq_cp) is one set of cells, so the cells in use are counted exactly.
Pure bookkeeping: no llama.cpp call is made here."""

from __future__ import annotations

from edgeslm.backends.base import AdapterKey


class KVBook:
    def __init__(self, n_seq: int):
        self.n_seq = n_seq
        self.clear()

    def clear(self) -> None:
        self.tokens: list[list[int]] = [[] for _ in range(self.n_seq)]
        self.keys: list[AdapterKey] = [() for _ in range(self.n_seq)]
        self._cells: list[list[int]] = [[] for _ in range(self.n_seq)]
        self._refs: dict[int, int] = {}
        self._next = 0

    def used(self) -> int:
        """KV cells in use, shared prefixes counted once."""
        return len(self._refs)

    def trim(self, seq: int, n: int) -> None:
        """Sequence `seq` keeps its first `n` tokens; cells no sequence holds any more are free."""
        for c in self._cells[seq][n:]:
            left = self._refs[c] - 1
            if left:
                self._refs[c] = left
            else:
                del self._refs[c]
        del self._cells[seq][n:]
        del self.tokens[seq][n:]
        if n == 0:
            self.keys[seq] = ()

    def grow(self, seq: int, tokens: list[int]) -> None:
        """`tokens` were evaluated onto sequence `seq`, each in a new cell."""
        new = range(self._next, self._next + len(tokens))
        self._next += len(tokens)
        self._cells[seq].extend(new)
        self._refs.update(dict.fromkeys(new, 1))
        self.tokens[seq].extend(tokens)

    def share(self, src: int, dst: int, n: int) -> None:
        """An empty `dst` now holds the first `n` tokens of `src`, in the same cells."""
        self._cells[dst] = self._cells[src][:n]
        for c in self._cells[dst]:
            self._refs[c] += 1
        self.tokens[dst] = self.tokens[src][:n]
        self.keys[dst] = self.keys[src]
