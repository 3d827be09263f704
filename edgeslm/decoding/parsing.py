"""Streaming parsers of constrained output: the calls a model writes, as events the server streams
(("name", i, name), ("args", i, fragment), ("end", i)) and as the completed (name, JSON arguments).

`CallParser` reads JSON envelopes and streams the arguments as they are written; `SyntaxParser` reads
the other syntaxes (decoding/callsyntax.py) and hands each call's arguments over as JSON once it closes.
"""

from __future__ import annotations

from edgeslm.decoding.callsyntax import call_end, to_json
from edgeslm.decoding.tools import Envelope


class CallParser:
    """Incremental parser of envelope-formatted calls, as the grammar forces them to be written.

    feed() returns events: ("name", index, name) when a call's name is known,
    ("args", index, fragment) as its arguments stream and ("end", index) when it is complete.
    `calls` holds the completed calls.
    """

    def __init__(self, env: Envelope):
        self.env = env
        self.buf, self.pos = "", 0
        self.calls: list[tuple[str, str]] = []
        self._steps: list[tuple[str, str]] = []
        self._name, self._args = "", []  # type: str, list[str]
        self._depth, self._in_str, self._esc = 0, False, False
        self._begin_call()

    def _begin_call(self) -> None:
        lead = self.env.sep if self.calls else ""
        self._steps = [("lit", lead + self.env.start), ("name", ""), ("lit", f'", "{self.env.args_key}": '),
                       ("args", ""), ("lit", self.env.tail())]

    @property
    def naming(self) -> str | None:
        """The name written so far while a call's name is being written, else None."""
        if self._steps and self._steps[0][0] == "name":
            return self.buf[self.pos:]
        return None

    def feed(self, text: str) -> list[tuple]:
        self.buf += text
        events: list[tuple] = []
        index = len(self.calls)
        while self._steps and self.pos < len(self.buf):
            kind, lit = self._steps[0]
            if kind == "lit":
                if len(self._steps) == 1:  # the tail: GBNF may pad the arguments with whitespace
                    while self.pos < len(self.buf) and self.buf[self.pos] in " \t\n":
                        self.pos += 1
                got = self.buf[self.pos : self.pos + len(lit)]
                if not lit.startswith(got):
                    raise ValueError(f"unexpected tool-call text {got!r}, expected {lit!r}")
                if len(got) < len(lit):
                    break
                self.pos += len(lit)
            elif kind == "name":
                end = self.buf.find('"', self.pos)
                if end < 0:
                    break
                self._name = self.buf[self.pos : end]
                self.pos = end
                events.append(("name", index, self._name))
            else:
                start = self.pos
                while self.pos < len(self.buf):
                    ch = self.buf[self.pos]
                    self.pos += 1
                    if self._in_str:
                        if self._esc:
                            self._esc = False
                        elif ch == "\\":
                            self._esc = True
                        elif ch == '"':
                            self._in_str = False
                    elif ch == '"':
                        self._in_str = True
                    elif ch in "{[":
                        self._depth += 1
                    elif ch in "}]":
                        self._depth -= 1
                    if self._depth == 0 and not self._in_str:
                        break
                frag = self.buf[start : self.pos]
                if frag:
                    self._args.append(frag)
                    events.append(("args", index, frag))
                if self._depth != 0 or self._in_str:
                    break
            self._steps.pop(0)
            if not self._steps:
                self.calls.append((self._name, "".join(self._args)))
                events.append(("end", index))
                self._name, self._args, index = "", [], index + 1
                self._begin_call()
                if self.pos >= len(self.buf):
                    break
        return events


class SyntaxParser:
    """CallParser's twin for these syntaxes (same events: ("name", i, name), ("args", i, json),
    ("end", i); `calls` the completed ones). A call's arguments are emitted whole, as JSON, once the
    call is closed: they are converted, not copied."""

    naming: str | None = None  # the request lean follows JSON envelopes only (decoding/copying.py)

    def __init__(self, env):
        self.env, self.syntax = env, env.syntax
        self.buf, self.pos = "", 0
        self.calls: list[tuple[str, str]] = []
        self.state = "open"  # open, name, body, after
        self._start = 0

    def _expect(self, lit: str) -> bool | None:
        """True: `lit` is at pos (consumed); None: the text so far is a prefix of it; ValueError else."""
        got = self.buf[self.pos:self.pos + len(lit)]
        if not lit.startswith(got):
            raise ValueError(f"unexpected tool-call text {got!r}, expected {lit!r}")
        if len(got) < len(lit):
            return None
        self.pos += len(lit)
        return True

    def feed(self, text: str) -> list[tuple]:
        self.buf += text
        events: list[tuple] = []
        env, grouped = self.env, self.env.grouped
        while self.pos < len(self.buf):
            i = len(self.calls)
            if self.state == "open":
                lead = env.open if (not grouped or not self.calls) else ""
                head = lead + ("call:" if self.syntax == "functiongemma" else "")
                if self._expect(head) is None:
                    break
                self.state, self._start = "name", self.pos
            elif self.state == "name":
                stop = self.buf.find("(" if self.syntax == "python" else "{", self.pos)
                if stop < 0:
                    break
                events.append(("name", i, self.buf[self.pos:stop]))
                self.state, self.pos = "body", stop
            elif self.state == "body":
                end = call_end(self.syntax, self.buf, self.pos)
                if end < 0:
                    break
                whole = self.buf[self._start:end]
                name, args = to_json(self.syntax, whole if self.syntax == "python" else "call:" + whole)
                self.calls.append((name, args))
                events += [("args", i, args), ("end", i)]
                self.pos, self.state = end, "after"
            else:  # after a call: its close (per call), or the list's separator or close (grouped)
                rest = self.buf[self.pos:]
                if grouped:
                    if env.sep.startswith(rest[:len(env.sep)]) and (len(rest) < len(env.sep) or rest.startswith(env.sep)):
                        if len(rest) < len(env.sep):
                            break
                        self.pos += len(env.sep)
                        self.state, self._start = "name", self.pos
                        continue
                    if self._expect(env.close) is None:
                        break
                    self.state = "done"
                    continue
                if self._expect(env.close) is None:
                    break
                self.state = "sep"
            if self.state == "sep":
                if env.sep and self._expect(env.sep) is None:
                    break
                self.state = "open"
            if self.state == "done":
                self.pos = len(self.buf)  # nothing follows a closed list (the grammar allows nothing)
        return events


def parser_for(env: Envelope) -> CallParser | SyntaxParser:
    """A streaming parser of this envelope's constrained output."""
    return CallParser(env) if env.syntax == "json" else SyntaxParser(env)
